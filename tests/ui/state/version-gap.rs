#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store { pub items: Vec<String> }

    #[version(3)]
    pub struct Store { pub items: Vec<String> }
}

fn main() {}
