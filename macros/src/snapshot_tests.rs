//! Expansion snapshots: every input in `macros/fixtures/inputs/` (one
//! feature each) is expanded, pretty-printed and compared with its snapshot
//! in `macros/fixtures/snapshots/`, so a reviewer reads what the macros emit.
//! Set `UPSHIFT_BLESS=1` to rewrite the snapshots after an intended change.

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::ToTokens;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Whether `attr` is `#[upshift::NAME]` (or `#[NAME]`).
fn is(attr: &syn::Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

/// Expands the first item of `source` that carries an upshift macro: a
/// module with `#[upshift::interface]` or `#[upshift::state]`, or a type
/// deriving `upshift::Schema`.
fn expand_first(source: &str) -> Result<TokenStream, String> {
    let file = syn::parse_file(source).map_err(|e| format!("the input does not parse: {e}"))?;
    for item in file.items {
        match item {
            syn::Item::Mod(mut module) => {
                let Some(at) = module
                    .attrs
                    .iter()
                    .position(|a| is(a, "interface") || is(a, "state"))
                else {
                    continue;
                };
                let attr = module.attrs.remove(at);
                let args = match &attr.meta {
                    syn::Meta::List(list) => list.tokens.clone(),
                    _ => TokenStream::new(),
                };
                let tokens = module.into_token_stream();
                return Ok(if is(&attr, "interface") {
                    crate::interface::expand(args, tokens, None)
                } else {
                    crate::state::expand(args, tokens, None)
                });
            }
            syn::Item::Struct(syn::ItemStruct { ref attrs, .. })
            | syn::Item::Enum(syn::ItemEnum { ref attrs, .. })
                if attrs.iter().any(|a| {
                    is(a, "derive") && a.to_token_stream().to_string().contains("Schema")
                }) =>
            {
                return Ok(crate::derive::schema(item.into_token_stream(), None));
            }
            _ => {}
        }
    }
    Err(
        "no item with #[upshift::interface], #[upshift::state] or #[derive(upshift::Schema)]"
            .into(),
    )
}

fn pretty(tokens: TokenStream) -> Result<String, String> {
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| format!("the expansion does not parse as a file: {e}"))?;
    Ok(prettyplease::unparse(&file))
}

/// The difference between a snapshot and an expansion, or `None`.
fn compare(input: &Path, snapshot: &Path) -> Option<String> {
    let name = input.file_name()?.to_string_lossy().into_owned();
    let source = match std::fs::read_to_string(input) {
        Ok(s) => s,
        Err(e) => return Some(format!("{name}: cannot read: {e}")),
    };
    let actual = match expand_first(&source).and_then(pretty) {
        Ok(expanded) => format!(
            "// Expansion of macros/fixtures/inputs/{name}.\n\
             // Regenerate with: UPSHIFT_BLESS=1 cargo test -p upshift-macros\n\n{expanded}"
        ),
        Err(e) => return Some(format!("{name}: {e}")),
    };
    if std::env::var_os("UPSHIFT_BLESS").is_some() {
        return std::fs::write(snapshot, &actual)
            .err()
            .map(|e| format!("{}: cannot write: {e}", snapshot.display()));
    }
    let expected = std::fs::read_to_string(snapshot).unwrap_or_default();
    if expected == actual {
        return None;
    }
    let first_diff = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    Some(format!(
        "{name}: the expansion differs from {} from line {} on\n  --- expected: {:?}\n  +++ actual:   {:?}",
        snapshot.display(),
        first_diff + 1,
        expected.lines().nth(first_diff),
        actual.lines().nth(first_diff),
    ))
}

fn rs_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    files.sort();
    files
}

#[test]
fn every_fixture_expands_as_its_snapshot_says() {
    let inputs = rs_files(&fixtures().join("inputs"));
    assert!(inputs.len() >= 6, "fixtures read: {inputs:?}");
    let snapshots = fixtures().join("snapshots");
    let snapshot_of = |input: &Path| {
        let stem = input.file_stem().unwrap_or_default().to_string_lossy();
        snapshots.join(format!("{stem}.expanded.rs"))
    };
    let mut problems: Vec<String> = inputs
        .iter()
        .filter_map(|input| compare(input, &snapshot_of(input)))
        .collect();
    // A snapshot whose input is gone would never be checked again.
    let expected: Vec<PathBuf> = inputs.iter().map(|i| snapshot_of(i)).collect();
    for stale in rs_files(&snapshots) {
        if !expected.contains(&stale) {
            problems.push(format!(
                "{}: no input in fixtures/inputs/ expands to it; delete it",
                stale.display()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nreview the change, then run UPSHIFT_BLESS=1 cargo test -p upshift-macros",
        problems.join("\n")
    );
}

#[test]
fn a_changed_expansion_is_reported_with_its_first_differing_line() {
    let dir = std::env::temp_dir().join(format!("upshift-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = fixtures().join("inputs/interface_one_version.rs");
    let snapshot = dir.join("interface_one_version.expanded.rs");
    std::fs::write(&snapshot, "// Expansion of something else\n").expect("write");
    if std::env::var_os("UPSHIFT_BLESS").is_none() {
        let report = compare(&input, &snapshot).expect("a difference");
        assert!(report.contains("from line 1 on"), "{report}");
        assert!(report.contains("something else"), "{report}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
