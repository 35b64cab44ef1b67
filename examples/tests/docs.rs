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
