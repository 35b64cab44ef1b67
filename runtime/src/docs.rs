//! Version diff documentation, rendered from the metadata the macros emit
//! (`VERSIONS` of an interface or a state): a Markdown page with a table of
//! versions and a diff per step, and the same as JSON for tools.

use std::fmt::Write;

use crate::schema::{
    Change, InterfaceSchema, MemberChange, MemberSchema, Origin, StateSchema, TypeKind, TypeSchema,
};

/// A Markdown page for one service: its versions, then what changed at each
/// step and which SO methods the step asks for.
pub fn markdown(versions: &[&InterfaceSchema]) -> String {
    let mut out = String::new();
    let Some(first) = versions.first() else {
        return out;
    };
    let _ = writeln!(out, "# `{}`: versions and what changed\n", first.service);
    version_table(
        &mut out,
        "methods",
        versions.iter().map(|v| {
            (
                v.version,
                v.methods.iter().map(|m| &*m.name).collect(),
                &*v.doc,
            )
        }),
    );
    for v in versions {
        let _ = writeln!(out, "\n## v{}\n", v.version);
        for m in v.methods.iter() {
            let args: Vec<String> = m
                .args
                .iter()
                .map(|a| format!("{}: {}", a.name, a.ty))
                .collect();
            let tag = match m.change {
                Change::Added if v.version == first.version => "",
                Change::Added => " — **added**",
                Change::Changed => " — **changed**",
                Change::Unchanged => "",
            };
            let _ = writeln!(
                out,
                "- `{}({}) -> {}`{tag}",
                m.name,
                args.join(", "),
                m.returns
            );
        }
        for r in v.removed.iter() {
            let _ = writeln!(out, "- `{r}` — **removed**");
        }
        if v.version > first.version {
            let prev = v.version - 1;
            let needs_past: Vec<String> = versions
                .iter()
                .find(|p| p.version == prev)
                .map(|p| {
                    p.methods
                        .iter()
                        .filter(|pm| {
                            v.method_named(&pm.name)
                                .is_none_or(|m| m.change == Change::Changed)
                        })
                        .map(|pm| format!("`{}`", pm.name))
                        .collect()
                })
                .unwrap_or_default();
            let needs_future: Vec<String> = v
                .methods
                .iter()
                .filter(|m| m.change != Change::Unchanged)
                .map(|m| format!("`{}`", m.name))
                .collect();
            let list = |l: &[String]| {
                if l.is_empty() {
                    "none (all delegate)".to_string()
                } else {
                    l.join(", ")
                }
            };
            let _ = writeln!(
                out,
                "\nv{prev} → v{}: `v{prev}::Past` must implement {}; `v{}::Future` must implement {}.",
                v.version,
                list(&needs_past),
                v.version,
                list(&needs_future)
            );
        }
    }
    out
}

/// The table of versions opening a page: each version's methods or types,
/// and the first line of its doc comment.
fn version_table<'a>(
    out: &mut String,
    column: &str,
    rows: impl Iterator<Item = (u32, Vec<&'a str>, &'a str)>,
) {
    let _ = writeln!(out, "| version | {column} | summary |\n|---|---|---|");
    for (version, names, doc) in rows {
        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        let summary = doc.lines().next().unwrap_or("").trim();
        let _ = writeln!(out, "| v{version} | {} | {summary} |", names.join(", "));
    }
}

/// The same content as JSON, for tools: one line, in the format of
/// `upshift::schema` (serde), the same that `upshift docs --json` writes.
pub fn json(versions: &[&InterfaceSchema]) -> String {
    upshift_schema::interface_json(versions.iter().copied())
}

/// A Markdown page for one versioned state: its versions, each version's
/// types, and for each step what changed and which transform attribute
/// covers it.
pub fn state_markdown(versions: &[&StateSchema]) -> String {
    let mut out = String::new();
    let Some(first) = versions.first() else {
        return out;
    };
    let _ = writeln!(
        out,
        "# State `{}`: versions and what changed\n",
        first.state
    );
    version_table(
        &mut out,
        "types",
        versions.iter().map(|v| {
            (
                v.version,
                v.types.iter().map(|t| &*t.name).collect(),
                &*v.doc,
            )
        }),
    );
    for v in versions {
        let _ = writeln!(out, "\n## v{}\n", v.version);
        for t in v.types.iter() {
            let tag = match &t.origin {
                Origin::New if v.version == first.version => String::new(),
                Origin::New => " — **new type**".to_string(),
                Origin::Continues { from } if *from != t.name => {
                    format!(" — **renamed** from `{from}` (`from = \"{from}\"`)")
                }
                Origin::Continues { .. } => String::new(),
                Origin::Transform { from, with } => {
                    format!(" — **converted** from `{from}` by `transform = {with}`")
                }
            };
            let _ = writeln!(out, "- `{}`{tag}", t.shape);
            for m in t.members.iter() {
                if let Some(change) = member_change(t, m) {
                    let _ = writeln!(out, "  - `{}` — {change}", m.name);
                }
            }
            for r in t.removed.iter() {
                let _ = writeln!(out, "  - `{r}` — **removed**");
            }
        }
        for r in v.removed.iter() {
            let _ = writeln!(out, "- `{r}` — **removed type**");
        }
    }
    out
}

/// What a member's change says in the Markdown page; `None` when it is
/// carried over as it was.
fn member_change(t: &TypeSchema, m: &MemberSchema) -> Option<String> {
    let renamed = |from: &str| {
        if from == m.name {
            String::new()
        } else {
            format!(", from `{from}` (`from = \"{from}\"`)")
        }
    };
    Some(match &m.change {
        // Members of a new type are not news of their own.
        MemberChange::New if t.kind == TypeKind::Enum && t.origin != Origin::New => {
            "**added** variant".to_string()
        }
        MemberChange::New | MemberChange::ByTransform => return None,
        MemberChange::Kept { from } if *from == m.name => return None,
        MemberChange::Kept { from } => format!("**renamed**{}", renamed(from)),
        MemberChange::Upgraded { from } => {
            format!(
                "**upgraded** through the changed types it holds{}",
                renamed(from)
            )
        }
        MemberChange::Converted {
            from,
            from_ty,
            with,
        } => format!("**retyped** from `{from}: {from_ty}` by `with = {with}`"),
        MemberChange::Defaulted { with: None } => {
            format!("**added** `{}`, starts from `default`", m.ty)
        }
        MemberChange::Defaulted { with: Some(path) } => {
            format!("**added** `{}`, starts from `default = {path}`", m.ty)
        }
        MemberChange::Reshaped { from } => {
            format!(
                "**changed fields**{}; each field by its own rule",
                renamed(from)
            )
        }
    })
}

/// The same content as [`state_markdown`], as JSON for tools; see [`json`].
pub fn state_json(versions: &[&StateSchema]) -> String {
    upshift_schema::state_json(versions.iter().copied())
}
