#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store {
        #[upshift(default)]
        pub items: Vec<String>,
    }
}

fn main() {}
