//! A version's schema as JSON, in the format `upshift::docs::json` and
//! `upshift::docs::state_json` write from the runtime metadata. The macros
//! write it for `upshift docs` (which has no way to link the user's crate)
//! and embed it as `__DOCS_JSON`, so a test keeps both writers equal.

use crate::diff::{self, Relation};
use crate::model::Service;

/// A JSON string literal.
pub fn string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON array of string literals.
pub fn strings<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|i| string(i.as_ref())).collect();
    format!("[{}]", items.join(","))
}

/// `{"kind":K,"name":value,..}`.
pub fn tagged(kind: &str, fields: &[(&str, &str)]) -> String {
    let mut out = format!("{{\"kind\":{}", string(kind));
    for (name, value) in fields {
        out.push_str(&format!(",\"{name}\":{}", string(value)));
    }
    out.push('}');
    out
}

/// Every version of an interface, as `upshift::docs::json` writes it.
pub fn interface(svc: &Service) -> String {
    let versions: Vec<String> = svc
        .versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let prev = i.checked_sub(1).map(|p| &svc.versions[p]);
            let methods: Vec<String> = v
                .methods
                .iter()
                .enumerate()
                .map(|(index, m)| {
                    let args: Vec<String> = m
                        .args
                        .iter()
                        .map(|a| {
                            format!(
                                "{{\"name\":{},\"type\":{}}}",
                                string(&a.ident.to_string()),
                                string(&a.ty_text)
                            )
                        })
                        .collect();
                    let change = match (prev, diff::relation(m, prev)) {
                        (Some(_), Relation::Same) => "unchanged",
                        (Some(_), Relation::Changed) => "changed",
                        _ => "added",
                    };
                    format!(
                        "{{\"name\":{},\"index\":{index},\"args\":[{}],\"returns\":{},\"change\":{}}}",
                        string(&m.ident.to_string()),
                        args.join(","),
                        string(&m.ret_text),
                        string(change)
                    )
                })
                .collect();
            let removed: Vec<String> = diff::removed(prev, v)
                .iter()
                .map(|m| m.ident.to_string())
                .collect();
            format!(
                "{{\"service\":{},\"version\":{},\"doc\":{},\"methods\":[{}],\"removed\":{}}}",
                string(&svc.wire_name),
                v.number,
                string(&crate::attr::doc_text(&v.docs)),
                methods.join(","),
                strings(&removed)
            )
        })
        .collect();
    format!("[{}]\n", versions.join(","))
}
