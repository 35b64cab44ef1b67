//! The book's version diff page of the key-value interface must match what
//! the metadata renders now. Regenerate with:
//! `cargo run -p upshift-examples --bin kv-docs > book/src/reference/kv-versions.md`

#[test]
fn the_books_diff_page_is_fresh() {
    let rendered = upshift::docs::markdown(upshift_examples::kv::interface::VERSIONS);
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
fn the_json_lists_every_version_and_method() {
    let json = upshift::docs::json(upshift_examples::kv::interface::VERSIONS);
    assert!(json.starts_with("[{\"service\":\"Kv\",\"version\":1"));
    assert!(json.contains("{\"name\":\"keys\",\"index\":3,\"args\":[{\"name\":\"prefix\",\"type\":\"String\"}],\"returns\":\"Vec<String>\",\"change\":\"added\"}"));
    assert!(json.contains("\"change\":\"changed\""));
}
