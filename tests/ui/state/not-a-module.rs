#[upshift::state]
pub struct Store { pub items: Vec<String> }

fn main() {}
