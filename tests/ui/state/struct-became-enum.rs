#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store { pub items: Vec<String> }

    #[version(2)]
    pub enum Store { Empty, Full(Vec<String>) }
}

fn main() {}
