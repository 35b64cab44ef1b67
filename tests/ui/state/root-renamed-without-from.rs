#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store { pub items: Vec<String> }

    #[version(2)]
    pub struct Database { pub items: Vec<String> }
}

fn main() {}
