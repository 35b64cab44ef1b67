//! Renders the key-value example's version diff page — the interface, then
//! the state — as Markdown by default, `--json` for tools. The book's copy is
//! `book/src/reference/kv-versions.md`; a test fails when it is stale.

fn main() {
    upshift::logs::init();
    let json = std::env::args().any(|a| a == "--json");
    print!("{}", upshift_examples::kv::versions_page(json));
}
