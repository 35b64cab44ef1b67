#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store<T> { pub items: Vec<T> }
}

fn main() {}
