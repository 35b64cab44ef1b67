//! `upshift docs`: the version diff pages of every interface and state in
//! the workspace. The CLI cannot link the user's crate, so the macros write
//! each definition's schema as JSON during a `cargo check` (the format of
//! `upshift::docs::json`); this rebuilds the runtime's schema values from it
//! and renders them with `upshift::docs`, the same functions a crate calls on
//! its own `VERSIONS`.

use std::path::PathBuf;

use serde::Deserialize;
use upshift::schema::{
    ArgSchema, Change, InterfaceSchema, MemberChange, MemberSchema, MethodSchema, Origin,
    StateSchema, TypeKind, TypeSchema,
};

use crate::Failure;
use crate::lock::{self, Cargo, Mode};

/// Options of `upshift docs`.
pub struct Run {
    pub out: Option<PathBuf>,
    pub check: bool,
    pub json: bool,
    pub cargo: Cargo,
}

/// One rendered page.
struct Page {
    /// A state's page, or an interface's.
    state: bool,
    /// The service or state name.
    name: String,
    /// Its file name under `--out`.
    file: String,
    text: String,
}

pub fn run(opts: Run) -> Result<(), Failure> {
    let found = lock::collect(Mode::Check, &opts.cargo)?;
    if !found.cargo_ok {
        return Err(Failure(
            "cargo check failed (see its errors above); no pages rendered".into(),
            2,
        ));
    }
    if found.docs.is_empty() {
        println!(
            "no versions found: no crate here uses #[upshift::interface] or #[upshift::state]"
        );
        return Ok(());
    }
    let ext = if opts.json { "json" } else { "md" };
    let mut pages = Vec::new();
    for (key, json) in &found.docs {
        // Only a CLI older or newer than the crate's upshift writes
        // something else; say so rather than render half a page.
        let bad = |e: serde_json::Error| {
            Failure(
                format!(
                    "the schema of {key} is unreadable ({e}); is this upshift CLI the same version as the crate's upshift?"
                ),
                2,
            )
        };
        let page = if let Some(name) = key.strip_prefix("interface ") {
            let parsed: Vec<InterfaceJson> = serde_json::from_str(json).map_err(bad)?;
            let versions: Vec<&'static InterfaceSchema> =
                parsed.into_iter().map(InterfaceJson::into_static).collect();
            Page {
                state: false,
                name: name.to_string(),
                file: format!("{name}.{ext}"),
                text: if opts.json {
                    upshift::docs::json(&versions)
                } else {
                    upshift::docs::markdown(&versions)
                },
            }
        } else if let Some(name) = key.strip_prefix("state ") {
            let parsed: Vec<StateJson> = serde_json::from_str(json).map_err(bad)?;
            let versions: Vec<&'static StateSchema> =
                parsed.into_iter().map(StateJson::into_static).collect();
            Page {
                state: true,
                name: name.to_string(),
                file: format!("state-{name}.{ext}"),
                text: if opts.json {
                    upshift::docs::state_json(&versions)
                } else {
                    upshift::docs::state_markdown(&versions)
                },
            }
        } else {
            continue;
        };
        pages.push(page);
    }
    // Interfaces first, then states, each by name.
    pages.sort_by(|a, b| (a.state, &a.name).cmp(&(b.state, &b.name)));
    let Some(out) = &opts.out else {
        if opts.json {
            // One document: {"interfaces":{name:[..]},"states":{name:[..]}}.
            let entries = |state: bool| {
                pages
                    .iter()
                    .filter(|p| p.state == state)
                    .map(|p| format!("{}:{}", quote(&p.name), p.text.trim_end()))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            println!(
                "{{\"interfaces\":{{{}}},\"states\":{{{}}}}}",
                entries(false),
                entries(true)
            );
        } else {
            let texts: Vec<&str> = pages.iter().map(|p| p.text.as_str()).collect();
            print!("{}", texts.join("\n"));
        }
        return Ok(());
    };
    if opts.check {
        let stale: Vec<&str> = pages
            .iter()
            .filter(|p| std::fs::read_to_string(out.join(&p.file)).ok().as_ref() != Some(&p.text))
            .map(|p| p.file.as_str())
            .collect();
        if !stale.is_empty() {
            return Err(Failure(
                format!(
                    "{} of {} page(s) in {} are stale or missing: {}; regenerate them with `upshift docs --out {}`",
                    stale.len(),
                    pages.len(),
                    out.display(),
                    stale.join(", "),
                    out.display()
                ),
                1,
            ));
        }
        println!(
            "{} page(s) in {} are up to date",
            pages.len(),
            out.display()
        );
        return Ok(());
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Failure(format!("cannot create {}: {e}", out.display()), 2))?;
    for p in &pages {
        let path = out.join(&p.file);
        std::fs::write(&path, &p.text)
            .map_err(|e| Failure(format!("cannot write {}: {e}", path.display()), 2))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// A JSON string literal for a name (service and state names are plain).
fn quote(name: &str) -> String {
    serde_json::Value::String(name.to_string()).to_string()
}

/// The schema types hold `&'static` data, as the macros emit it; a CLI run
/// renders once and exits, so leaking what it parsed is the simple way there.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_all<T>(items: Vec<T>) -> &'static [T] {
    Box::leak(items.into_boxed_slice())
}

fn leak_strs(items: Vec<String>) -> &'static [&'static str] {
    leak_all(items.into_iter().map(leak).collect())
}

#[derive(Deserialize)]
struct InterfaceJson {
    service: String,
    version: u32,
    doc: String,
    methods: Vec<MethodJson>,
    removed: Vec<String>,
}

#[derive(Deserialize)]
struct MethodJson {
    name: String,
    index: u16,
    args: Vec<ArgJson>,
    returns: String,
    change: ChangeJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChangeJson {
    Added,
    Unchanged,
    Changed,
}

#[derive(Deserialize)]
struct ArgJson {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

impl InterfaceJson {
    fn into_static(self) -> &'static InterfaceSchema {
        let methods = self
            .methods
            .into_iter()
            .map(|m| MethodSchema {
                name: leak(m.name),
                index: m.index,
                args: leak_all(
                    m.args
                        .into_iter()
                        .map(|a| ArgSchema {
                            name: leak(a.name),
                            ty: leak(a.ty),
                        })
                        .collect(),
                ),
                returns: leak(m.returns),
                change: match m.change {
                    ChangeJson::Added => Change::Added,
                    ChangeJson::Unchanged => Change::Unchanged,
                    ChangeJson::Changed => Change::Changed,
                },
            })
            .collect();
        Box::leak(Box::new(InterfaceSchema {
            service: leak(self.service),
            version: self.version,
            doc: leak(self.doc),
            methods: leak_all(methods),
            removed: leak_strs(self.removed),
        }))
    }
}

#[derive(Deserialize)]
struct StateJson {
    state: String,
    version: u32,
    doc: String,
    types: Vec<TypeJson>,
    removed: Vec<String>,
}

#[derive(Deserialize)]
struct TypeJson {
    name: String,
    kind: KindJson,
    shape: String,
    origin: OriginJson,
    members: Vec<MemberJson>,
    removed: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum KindJson {
    Struct,
    Enum,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum OriginJson {
    New,
    Continues { from: String },
    Transform { from: String, with: String },
}

#[derive(Deserialize)]
struct MemberJson {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    change: MemberJsonChange,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum MemberJsonChange {
    New,
    Kept {
        from: String,
    },
    Upgraded {
        from: String,
    },
    Converted {
        from: String,
        from_type: String,
        with: String,
    },
    Defaulted {
        #[serde(default)]
        with: Option<String>,
    },
    Reshaped {
        from: String,
    },
    ByTransform,
}

impl StateJson {
    fn into_static(self) -> &'static StateSchema {
        let types = self
            .types
            .into_iter()
            .map(|t| TypeSchema {
                name: leak(t.name),
                kind: match t.kind {
                    KindJson::Struct => TypeKind::Struct,
                    KindJson::Enum => TypeKind::Enum,
                },
                shape: leak(t.shape),
                origin: match t.origin {
                    OriginJson::New => Origin::New,
                    OriginJson::Continues { from } => Origin::Continues { from: leak(from) },
                    OriginJson::Transform { from, with } => Origin::Transform {
                        from: leak(from),
                        with: leak(with),
                    },
                },
                members: leak_all(
                    t.members
                        .into_iter()
                        .map(|m| MemberSchema {
                            name: leak(m.name),
                            ty: leak(m.ty),
                            change: member_change(m.change),
                        })
                        .collect(),
                ),
                removed: leak_strs(t.removed),
            })
            .collect();
        Box::leak(Box::new(StateSchema {
            state: leak(self.state),
            version: self.version,
            doc: leak(self.doc),
            types: leak_all(types),
            removed: leak_strs(self.removed),
        }))
    }
}

fn member_change(c: MemberJsonChange) -> MemberChange {
    match c {
        MemberJsonChange::New => MemberChange::New,
        MemberJsonChange::Kept { from } => MemberChange::Kept { from: leak(from) },
        MemberJsonChange::Upgraded { from } => MemberChange::Upgraded { from: leak(from) },
        MemberJsonChange::Converted {
            from,
            from_type,
            with,
        } => MemberChange::Converted {
            from: leak(from),
            from_ty: leak(from_type),
            with: leak(with),
        },
        MemberJsonChange::Defaulted { with } => MemberChange::Defaulted {
            with: with.map(leak),
        },
        MemberJsonChange::Reshaped { from } => MemberChange::Reshaped { from: leak(from) },
        MemberJsonChange::ByTransform => MemberChange::ByTransform,
    }
}
