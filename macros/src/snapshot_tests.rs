//! Expansion snapshots: the key-value example's interface and state,
//! expanded and pretty-printed, compared with the files in `tests/expand/`,
//! so a reviewer reads what the macros emit. Set `UPSHIFT_BLESS=1` to rewrite
//! the snapshot after an intended change.

use std::path::PathBuf;

use quote::ToTokens;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Expands the first module of a source file with the attribute `attr`
/// (`interface` or `state`).
fn expand_first(source: &str, attr: &str) -> String {
    let file = syn::parse_file(source).expect("example source parses");
    let mut module = file
        .items
        .into_iter()
        .find_map(|item| match item {
            syn::Item::Mod(m)
                if m.attrs
                    .iter()
                    .any(|a| a.path().segments.last().is_some_and(|s| s.ident == attr)) =>
            {
                Some(m)
            }
            _ => None,
        })
        .expect("a module with the attribute");
    let attr_at = module
        .attrs
        .iter()
        .position(|a| a.path().segments.last().is_some_and(|s| s.ident == attr))
        .expect("the attribute");
    let args = match &module.attrs.remove(attr_at).meta {
        syn::Meta::List(list) => list.tokens.clone(),
        _ => Default::default(),
    };
    let expanded = match attr {
        "interface" => crate::expand::interface(args, module.into_token_stream(), None),
        _ => crate::expand::state::state(args, module.into_token_stream(), None),
    };
    let file: syn::File = syn::parse2(expanded).expect("expansion parses as a file");
    prettyplease::unparse(&file)
}

fn check_snapshot(attr: &str, snapshot: &str) {
    let source =
        std::fs::read_to_string(workspace().join("examples/src/kv.rs")).expect("read the example");
    let actual = format!(
        "// Expansion of the #[upshift::{attr}] module in examples/src/kv.rs.\n\
         // Regenerate with: UPSHIFT_BLESS=1 cargo test -p upshift-macros\n\n{}",
        expand_first(&source, attr)
    );
    let path = workspace().join("tests/expand").join(snapshot);
    if std::env::var_os("UPSHIFT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create dir");
        std::fs::write(&path, &actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let first_diff = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "the expansion differs from {} from line {} on; review the change, then run \
             UPSHIFT_BLESS=1 cargo test -p upshift-macros\n--- expected: {:?}\n+++ actual:   {:?}",
            path.display(),
            first_diff + 1,
            expected.lines().nth(first_diff),
            actual.lines().nth(first_diff),
        );
    }
}

#[test]
fn kv_interface_expansion_matches_the_snapshot() {
    check_snapshot("interface", "kv_interface.expanded.rs");
}

#[test]
fn kv_state_expansion_matches_the_snapshot() {
    check_snapshot("state", "kv_state.expanded.rs");
}
