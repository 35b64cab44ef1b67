#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store { pub items: Vec<String> }

    #[version(2)]
    pub struct Store { pub items: Vec<String>, pub evictions: u64 }
}

fn main() {}
