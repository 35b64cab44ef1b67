//! Expansion snapshots: the key-value example's interface, expanded and
//! pretty-printed, compared with `tests/expand/kv_interface.expanded.rs`, so
//! a reviewer reads what the macro emits. Set `UPSHIFT_BLESS=1` to rewrite
//! the snapshot after an intended change.

use std::path::PathBuf;

use quote::ToTokens;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Expands the first `#[upshift::interface]` module of a source file.
fn expand_first_interface(source: &str) -> String {
    let file = syn::parse_file(source).expect("example source parses");
    let mut module = file
        .items
        .into_iter()
        .find_map(|item| match item {
            syn::Item::Mod(m)
                if m.attrs.iter().any(|a| {
                    a.path()
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "interface")
                }) =>
            {
                Some(m)
            }
            _ => None,
        })
        .expect("an #[upshift::interface] module");
    let attr_at = module
        .attrs
        .iter()
        .position(|a| {
            a.path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "interface")
        })
        .expect("the attribute");
    module.attrs.remove(attr_at);
    let expanded = crate::expand::interface(Default::default(), module.into_token_stream());
    let file: syn::File = syn::parse2(expanded).expect("expansion parses as a file");
    prettyplease::unparse(&file)
}

#[test]
fn kv_interface_expansion_matches_the_snapshot() {
    let source =
        std::fs::read_to_string(workspace().join("examples/src/kv.rs")).expect("read the example");
    let actual = format!(
        "// Expansion of the #[upshift::interface] module in examples/src/kv.rs.\n\
         // Regenerate with: UPSHIFT_BLESS=1 cargo test -p upshift-macros\n\n{}",
        expand_first_interface(&source)
    );
    let path = workspace().join("tests/expand/kv_interface.expanded.rs");
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
