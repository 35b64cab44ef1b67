//! The book's version diff page of the key-value example must match what
//! the metadata renders now. Regenerate with:
//! `cargo run -p upshift-examples --bin kv-docs > book/src/reference/kv-versions.md`

#[test]
fn the_books_diff_page_is_fresh() {
    let rendered = upshift_examples::kv::versions_page(false);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../book/src/reference/kv-versions.md"
    );
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == rendered,
        "book/src/reference/kv-versions.md is stale; regenerate it with \
         `cargo run -p upshift-examples --bin kv-docs > book/src/reference/kv-versions.md`"
    );
}

#[test]
fn the_json_lists_every_version_method_and_field() {
    let json = upshift_examples::kv::versions_page(true);
    assert!(json.starts_with("{\"interfaces\":{\"Kv\":[{\"service\":\"Kv\",\"version\":1"));
    assert!(json.contains("{\"name\":\"keys\",\"index\":3,\"args\":[{\"name\":\"prefix\",\"type\":\"String\"}],\"returns\":\"Vec<String>\",\"change\":\"added\"}"));
    assert!(json.contains("\"change\":\"changed\""));
    assert!(json.contains("\"states\":{\"kv\":[{\"state\":\"kv\",\"version\":1"));
    assert!(json.contains(
        "{\"name\":\"expiry\",\"type\":\"Expiry\",\"change\":{\"kind\":\"converted\",\"from\":\"expires_at_ms\",\"from_type\":\"Option<u64>\",\"with\":\"Expiry::from_unix_ms\"}}"
    ));
    assert!(json.contains(
        "{\"name\":\"entries\",\"type\":\"BTreeMap<String, Entry>\",\"change\":{\"kind\":\"upgraded\",\"from\":\"items\"}}"
    ));
}

/// `upshift docs` reads the JSON the macros write at compile time; it must
/// be exactly what the runtime writes from the metadata.
#[test]
fn the_macros_json_equals_the_runtimes() {
    use upshift_examples::kv::{interface, state};
    assert_eq!(
        interface::__DOCS_JSON,
        upshift::docs::json(interface::VERSIONS)
    );
    assert_eq!(
        state::__DOCS_JSON,
        upshift::docs::state_json(state::VERSIONS)
    );
    assert_eq!(
        upshift::coordinator::api::__DOCS_JSON,
        upshift::docs::json(upshift::coordinator::api::VERSIONS)
    );
}
