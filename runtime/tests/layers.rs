//! The dependency rule of `runtime/src/lib.rs`, enforced: every `crate::`
//! and `super::` path in the runtime's sources is checked against the layer
//! table, and the macro and CLI crates must have no import cycle between
//! their modules. A change that adds an upward import or a circle fails here,
//! naming the file and the path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The runtime's modules and what each may import (besides itself).
const L0: &[&str] = &["error", "clock", "sync", "schema", "http", "net"];

fn allowed(unit: &str) -> Option<Vec<&'static str>> {
    let with_l0 = |more: &[&'static str]| {
        let mut v = L0.to_vec();
        v.extend_from_slice(more);
        v
    };
    Some(match unit {
        // Leaves: nothing from the crate.
        "error" | "clock" | "sync" | "schema" | "logs" | "http" | "net" => vec![],
        "wire" => with_l0(&[]),
        // The text format and the scrape endpoint, for node and coordinator.
        "metrics" => with_l0(&[]),
        "rpc" => with_l0(&["wire"]),
        "state" => with_l0(&[]),
        "upgrade" => with_l0(&["wire", "rpc"]),
        "schedule" => with_l0(&["upgrade"]),
        // TLS to etcd with the RPC layer's PEM reading.
        "udb" => with_l0(&["upgrade", "rpc"]),
        "node" => with_l0(&["wire", "rpc", "state", "upgrade", "metrics"]),
        "coordinator" => with_l0(&["wire", "rpc", "upgrade", "schedule", "udb", "metrics"]),
        "docs" => vec!["schema"],
        // Side, like docs: runs stages; nothing in the crate imports it.
        "conformance" => with_l0(&["rpc", "state", "node"]),
        _ => return None,
    })
}

/// Inside `rpc`: dispatch ← service ← server; client alone; memory sees
/// both sides; tls (mutual TLS, the caller's identity) and stats (what
/// each version's calls did) below all of them.
fn rpc_allowed(part: &str) -> Option<&'static [&'static str]> {
    Some(match part {
        "tls" | "stats" => &[],
        "dispatch" => &["stats", "tls"],
        "client" => &["tls"],
        "service" => &["dispatch", "stats", "tls"],
        "server" => &["dispatch", "service", "tls"],
        "memory" => &["server", "client"],
        _ => return None,
    })
}

/// Names `lib.rs` re-exports at the crate root, and the module each comes from.
fn root_reexport(name: &str) -> Option<&'static str> {
    Some(match name {
        "CallError" | "Disallowed" | "DispatchError" => "error",
        "CallOptions" | "ClientConfig" | "Connection" | "Dispatch" | "Listener" | "RetryPolicy"
        | "Route" | "Server" | "ServerConfig" | "Service" | "UnixListener" => "rpc",
        // The macros: generated code names `::upshift::…`, never a module here.
        "Schema" | "interface" => "macros",
        _ => return None,
    })
}

/// Source text without comments, string and char literals, so only code is read.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'r' && b.get(i + 1) == Some(&b'#') {
            // Raw strings r#"…"#; the runtime uses no deeper nesting.
            let end = src[i..].find("\"#").map_or(b.len(), |e| i + e + 2);
            i = end;
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Module path of a source file relative to `src/`: `rpc/server/mod.rs` → [rpc, server].
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every module path a file names: `crate::a::b`, `crate::{a, b::c}`, `super::x`.
fn referenced(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut refs = Vec::new();
    // `super::` in a file's own `mod tests` means the file itself; stop at it.
    let main_part = code.split("#[cfg(test)]").next().unwrap_or(code);
    for (text, is_super) in [(code, false), (main_part, true)] {
        let key = if is_super { "super" } else { "crate" };
        let mut rest = text;
        while let Some(at) = rest.find(key) {
            let before = rest[..at].chars().last();
            let tail = rest[at + key.len()..].trim_start();
            rest = &rest[at + key.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let Some(tail) = tail.strip_prefix("::") else {
                continue;
            };
            let base: Vec<String> = if is_super {
                // The module path already drops `mod`: `super` is one step up.
                module[..module.len().saturating_sub(1)].to_vec()
            } else {
                Vec::new()
            };
            for path in expand_paths(tail.trim_start()) {
                let mut full = base.clone();
                full.extend(path);
                refs.push(full);
            }
        }
    }
    refs
}

/// `a::b::C` → [[a, b, C]]; `{a, b::{c, d}}` → [[a], [b, c], [b, d]].
fn expand_paths(tail: &str) -> Vec<Vec<String>> {
    if let Some(group) = tail.strip_prefix('{') {
        let mut depth = 1;
        let mut end = group.len();
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let inner = &group[..end];
        let mut items = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&inner[start..]);
        return items
            .into_iter()
            .map(str::trim)
            .filter(|i| !i.is_empty() && *i != "self")
            .flat_map(expand_paths)
            .collect();
    }
    let mut path = Vec::new();
    let mut rest = tail;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            if let Some(group) = rest.strip_prefix('{') {
                return expand_paths(&format!("{{{group}"))
                    .into_iter()
                    .map(|tail| path.iter().cloned().chain(tail).collect())
                    .collect();
            }
            break;
        }
        rest = rest[ident.len()..].trim_start();
        path.push(ident);
        match rest.strip_prefix("::") {
            Some(r) => rest = r.trim_start(),
            None => break,
        }
    }
    vec![path]
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (file, module path, code) of every source file under `src`.
fn sources(src: &Path) -> Vec<(PathBuf, Vec<String>, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(src).expect("under src").to_path_buf();
            let text = std::fs::read_to_string(&f).expect("readable source");
            (rel.clone(), module_of(&rel), code_only(&text))
        })
        .collect()
}

/// Every breach of the runtime's layer table, as "file: path (why)".
fn layer_violations(files: &[(PathBuf, Vec<String>, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, module, code) in files {
        // lib.rs and private.rs only re-export.
        let Some(unit) = module.first() else { continue };
        if unit == "private" {
            continue;
        }
        let Some(may) = allowed(unit) else {
            bad.push(format!(
                "{}: module `{unit}` is not in the layer table; add it to lib.rs and runtime/tests/layers.rs",
                rel.display()
            ));
            continue;
        };
        for path in referenced(code, module) {
            let Some(first) = path.first() else { continue };
            let target = match root_reexport(first) {
                Some("macros") => continue,
                Some(module) => module.to_string(),
                None => first.clone(),
            };
            if target == *unit {
                if unit == "rpc" {
                    let (Some(from), Some(to)) = (module.get(1), path.get(1)) else {
                        continue;
                    };
                    if from == to {
                        continue;
                    }
                    match rpc_allowed(from) {
                        Some(ok) if ok.contains(&to.as_str()) => {}
                        Some(_) => bad.push(format!(
                            "{}: rpc::{from} must not import rpc::{to} (`{}`)",
                            rel.display(),
                            path.join("::")
                        )),
                        None => bad.push(format!(
                            "{}: rpc::{from} is not in the rpc table of runtime/tests/layers.rs",
                            rel.display()
                        )),
                    }
                }
                continue;
            }
            if !may.contains(&target.as_str()) {
                bad.push(format!(
                    "{}: `{unit}` must not import `{target}` (`crate::{}`); it may import {may:?}",
                    rel.display(),
                    path.join("::")
                ));
            }
        }
    }
    bad
}

/// A cycle among a crate's top-level modules, if there is one.
fn find_cycle(files: &[(PathBuf, Vec<String>, String)]) -> Option<Vec<String>> {
    let units: BTreeSet<String> = files.iter().filter_map(|f| f.1.first().cloned()).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, module, code) in files {
        let Some(unit) = module.first() else { continue };
        for path in referenced(code, module) {
            if let Some(to) = path.first()
                && to != unit
                && units.contains(to)
            {
                edges.entry(unit.clone()).or_default().insert(to.clone());
            }
        }
    }
    // Depth-first search with colours; returns the first circle found.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    units
        .iter()
        .find_map(|u| visit(u, &edges, &mut Vec::new(), &mut done))
}

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

#[test]
fn the_runtime_imports_only_downward() {
    let files = sources(&crate_src("runtime"));
    assert!(files.len() > 30, "read {} runtime files", files.len());
    let bad = layer_violations(&files);
    assert!(bad.is_empty(), "layer rule broken:\n{}", bad.join("\n"));
    assert_eq!(find_cycle(&files), None);
}

#[test]
fn the_macro_and_cli_crates_have_no_import_cycle() {
    for name in ["macros", "cli"] {
        let files = sources(&crate_src(name));
        assert!(!files.is_empty(), "no sources read for {name}");
        if let Some(cycle) = find_cycle(&files) {
            panic!("import cycle in {name}: {}", cycle.join(" -> "));
        }
    }
}

/// In the macro crate, expansion reads the model and the plan and never
/// reports a user error: every error is found before anything is generated.
#[test]
fn macro_expansion_reports_no_errors() {
    let files = sources(&crate_src("macros"));
    let expanding: Vec<_> = files
        .iter()
        .filter(|(_, module, _)| module.get(1).is_some_and(|m| m == "expand"))
        .collect();
    assert!(
        expanding.len() >= 8,
        "expansion files read: {}",
        expanding.len()
    );
    for (rel, _, code) in expanding {
        for word in ["Ctxt", "error_spanned_by", "syn_error", "syn::Error"] {
            assert!(
                !code.contains(word),
                "{}: expansion names `{word}`; report the error in the model, check or plan stage instead",
                rel.display()
            );
        }
    }
}

/// The checker itself: an upward import, a sibling import and a circle are found.
#[test]
fn the_checker_finds_upward_and_sibling_imports_and_circles() {
    let file = |rel: &str, code: &str| {
        let rel = PathBuf::from(rel);
        let module = module_of(&rel);
        (rel, module, code_only(code))
    };
    let files = vec![
        file("wire/frame.rs", "use crate::rpc::Server;\n"),
        file(
            "schedule/mod.rs",
            "use crate::{upgrade::NodeRecord, udb::Batch};",
        ),
        file("rpc/client/link.rs", "use crate::rpc::server::Server;"),
        file(
            "state/mod.rs",
            "// use crate::rpc::Server; only a comment\nfn f() { let _ = \"crate::rpc\"; }",
        ),
        file(
            "node/agent.rs",
            "use super::Node;\nuse crate::coordinator::Coordinator;",
        ),
    ];
    let bad = layer_violations(&files);
    let named = |needle: &str| bad.iter().any(|b| b.contains(needle));
    assert!(named("`wire` must not import `rpc`"), "{bad:#?}");
    assert!(named("`schedule` must not import `udb`"), "{bad:#?}");
    assert!(named("rpc::client must not import rpc::server"), "{bad:#?}");
    assert!(named("`node` must not import `coordinator`"), "{bad:#?}");
    assert!(!bad.iter().any(|b| b.starts_with("state")), "{bad:#?}");
    assert_eq!(bad.len(), 4, "{bad:#?}");

    let circle = vec![
        file("a.rs", "use crate::b::X;"),
        file("b/mod.rs", "use crate::c::{Y, Z};"),
        file("c.rs", "fn f() { crate::a::g(); }"),
    ];
    assert_eq!(
        find_cycle(&circle),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
