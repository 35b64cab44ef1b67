#[upshift::state]
pub mod store {
    pub struct Store { pub items: Vec<String> }
}

fn main() {}
