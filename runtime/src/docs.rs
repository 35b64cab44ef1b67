//! Version diff documentation, rendered from the metadata the interface
//! macro emits (`VERSIONS`): a Markdown page per service with a table of
//! versions and a diff per step, and the same as JSON for tools.

use std::fmt::Write;

use crate::schema::{Change, InterfaceSchema};

/// A Markdown page for one service: its versions, then what changed at each
/// step and which SO methods the step asks for.
pub fn markdown(versions: &[&InterfaceSchema]) -> String {
    let mut out = String::new();
    let Some(first) = versions.first() else {
        return out;
    };
    let _ = writeln!(out, "# `{}`: versions and what changed\n", first.service);
    let _ = writeln!(out, "| version | methods | summary |\n|---|---|---|");
    for v in versions {
        let names: Vec<String> = v.methods.iter().map(|m| format!("`{}`", m.name)).collect();
        let summary = v.doc.lines().next().unwrap_or("");
        let _ = writeln!(
            out,
            "| v{} | {} | {} |",
            v.version,
            names.join(", "),
            summary
        );
    }
    for v in versions {
        let _ = writeln!(out, "\n## v{}\n", v.version);
        for m in v.methods {
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
        for r in v.removed {
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
                            v.method_named(pm.name)
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

/// The same content as JSON, for tools.
pub fn json(versions: &[&InterfaceSchema]) -> String {
    fn s(text: &str) -> String {
        let mut out = String::from("\"");
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
    let items: Vec<String> = versions
        .iter()
        .map(|v| {
            let methods: Vec<String> = v
                .methods
                .iter()
                .map(|m| {
                    let args: Vec<String> = m
                        .args
                        .iter()
                        .map(|a| format!("{{\"name\":{},\"type\":{}}}", s(a.name), s(a.ty)))
                        .collect();
                    format!(
                        "{{\"name\":{},\"index\":{},\"args\":[{}],\"returns\":{},\"change\":{}}}",
                        s(m.name),
                        m.index,
                        args.join(","),
                        s(m.returns),
                        s(&format!("{:?}", m.change).to_lowercase())
                    )
                })
                .collect();
            let removed: Vec<String> = v.removed.iter().map(|r| s(r)).collect();
            format!(
                "{{\"service\":{},\"version\":{},\"doc\":{},\"methods\":[{}],\"removed\":[{}]}}",
                s(v.service),
                v.version,
                s(v.doc),
                methods.join(","),
                removed.join(",")
            )
        })
        .collect();
    format!("[{}]\n", items.join(","))
}
