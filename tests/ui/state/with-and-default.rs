#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store { pub items: Vec<String> }

    #[version(2)]
    pub struct Store {
        #[upshift(default, with = convert)]
        pub items: Vec<u64>,
    }

    fn convert(_: Vec<String>) -> Vec<u64> { Vec::new() }
}

fn main() {}
