#[upshift::interface]
pub mod kv {
    pub struct Entry;
}

fn main() {}
