#[upshift::state]
pub mod store {
    #[version(1)]
    pub trait Store {}
}

fn main() {}
