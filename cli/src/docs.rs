//! `upshift docs`: the version diff pages of every interface and state in
//! the workspace. The CLI cannot link the user's crate, so the macros write
//! each definition's versions into their report during a `cargo check`
//! (`upshift::schema::report`, the same types as `upshift::schema`); this
//! renders them with `upshift::docs`, the same functions a crate calls on
//! its own `VERSIONS`.

use std::path::PathBuf;

use upshift::schema::report::Definition;

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
    for (key, definition) in &found.docs {
        let name = key.split_once(' ').map_or(key.as_str(), |(_, name)| name);
        let page = match definition {
            Definition::Interface(parsed) => {
                let versions: Vec<_> = parsed.iter().collect();
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
            }
            Definition::State(parsed) => {
                let versions: Vec<_> = parsed.iter().collect();
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
            }
        };
        pages.push(page);
    }
    // Interfaces first, then states, each by name.
    pages.sort_by(|a, b| (a.state, &a.name).cmp(&(b.state, &b.name)));
    let Some(out) = &opts.out else {
        if opts.json {
            // One document: {"interfaces":{name:[..]},"states":{name:[..]}},
            // each page parsed back so the document is built by serde.
            let section =
                |state: bool| -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
                    pages
                        .iter()
                        .filter(|p| p.state == state)
                        .map(|p| {
                            serde_json::from_str(&p.text)
                                .map(|value| (p.name.clone(), value))
                                .map_err(|e| {
                                    Failure(format!("page {} is not JSON: {e}", p.file), 2)
                                })
                        })
                        .collect()
                };
            let document = serde_json::json!({
                "interfaces": section(false)?,
                "states": section(true)?,
            });
            println!("{document}");
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
