//! Renders the key-value interface's version diff page: Markdown by default,
//! `--json` for tools. The book's copy is `book/src/reference/kv-versions.md`;
//! a test fails when it is stale.

fn main() {
    let versions = upshift_examples::kv::interface::VERSIONS;
    if std::env::args().any(|a| a == "--json") {
        print!("{}", upshift::docs::json(versions));
    } else {
        print!("{}", upshift::docs::markdown(versions));
    }
}
