#[upshift::state]
pub mod store {
    #[version(2)]
    pub struct Store { pub items: Vec<String> }

    #[version(1)]
    pub struct Store { pub items: Vec<String> }
}

fn main() {}
