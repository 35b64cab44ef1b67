#[upshift::interface]
pub struct Kv;

fn main() {}
