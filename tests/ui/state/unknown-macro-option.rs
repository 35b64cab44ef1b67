#[upshift::state(root = Store)]
pub mod store {
    #[version(1)]
    pub struct Store { pub items: Vec<String> }
}

fn main() {}
