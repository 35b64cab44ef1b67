//! The book, the README and the code agree about what exists: every page
//! is in the summary and compiled by `lib.rs`, nothing in the summary is
//! missing, and every link between pages, and every path the README,
//! ARCHITECTURE.md and the book name in the repository, points at
//! something that is there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every `.md` file under `dir`, relative to it.
fn pages(dir: &Path, under: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            pages(&path, under, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            let relative = path.strip_prefix(under).expect("under");
            out.insert(relative.to_string_lossy().into_owned());
        }
    }
}

/// The targets of Markdown links `](target)` in `text`.
fn links(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            rest.find(')').map(|end| &rest[..end])
        })
        .collect()
}

#[test]
fn every_page_is_in_the_summary_and_compiled() {
    let src = root().join("book/src");
    let summary = read(&src.join("SUMMARY.md"));
    let listed: BTreeSet<String> = links(&summary).iter().map(|s| s.to_string()).collect();
    let mut found = BTreeSet::new();
    pages(&src, &src, &mut found);
    found.remove("SUMMARY.md");
    let missing: Vec<_> = listed.difference(&found).collect();
    assert!(
        missing.is_empty(),
        "SUMMARY.md lists pages that do not exist: {missing:?}"
    );
    let orphans: Vec<_> = found.difference(&listed).collect();
    assert!(orphans.is_empty(), "pages not in SUMMARY.md: {orphans:?}");
    let lib = read(&root().join("book/lib.rs"));
    let uncompiled: Vec<_> = listed
        .iter()
        .filter(|page| !lib.contains(&format!("include_str!(\"src/{page}\")")))
        .collect();
    assert!(
        uncompiled.is_empty(),
        "pages whose code `cargo test` does not compile (add them to book/lib.rs): {uncompiled:?}"
    );
}

#[test]
fn links_between_pages_and_named_paths_resolve() {
    let root = root();
    let src = root.join("book/src");
    let mut found = BTreeSet::new();
    pages(&src, &src, &mut found);
    let mut broken = Vec::new();
    for page in &found {
        let path = src.join(page);
        let text = read(&path);
        // mdBook's `{{#include path}}`: the file it inlines must exist.
        for included in text.split("{{#include ").skip(1) {
            let file = included.split("}}").next().unwrap_or(included).trim();
            if !path.parent().expect("a directory").join(file).exists() {
                broken.push(format!("{page} includes {file}"));
            }
        }
        for target in links(&text) {
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap_or(target);
            let resolved = path.parent().expect("a directory").join(file);
            if !resolved.exists() {
                broken.push(format!("{page} -> {target}"));
            }
        }
    }
    // Repository paths named in backticks: `book/src/…`, `runtime/src/…`,
    // `examples/…`, `tests/…`, `benches/…`, `cli/…`, `macros/…`.
    let prefixes = [
        "book/src/",
        "runtime/src/",
        "runtime/tests/",
        "runtime/doc/",
        "examples/",
        "tests/tests/",
        "tests/src/",
        "benches/benches/",
        "cli/src/",
        "cli/tests/",
        "macros/src/",
        "schema/src/",
    ];
    let named = ["README.md", "ARCHITECTURE.md"]
        .iter()
        .map(|f| (f.to_string(), read(&root.join(f))))
        .chain(
            found
                .iter()
                .map(|p| (format!("book/src/{p}"), read(&src.join(p)))),
        );
    for (file, text) in named {
        for quoted in text.split('`').skip(1).step_by(2) {
            let candidate = quoted.split([' ', ':', '#']).next().unwrap_or(quoted);
            let is_path = prefixes.iter().any(|p| candidate.starts_with(p))
                && (candidate.ends_with(".rs")
                    || candidate.ends_with(".md")
                    || candidate.ends_with('/'));
            if is_path && !candidate.contains('*') && !root.join(candidate).exists() {
                broken.push(format!("{file} names `{candidate}`"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links and paths to nothing:\n{}",
        broken.join("\n")
    );
}
