#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store { pub items: Vec<String> }

    #[version(1)]
    pub struct Store { pub items: Vec<u64> }
}

fn main() {}
