#[upshift::state]
pub mod store {
    #[version(1)]
    #[derive(Debug, serde::Serialize)]
    pub struct Store { pub items: Vec<String> }
}

fn main() {}
