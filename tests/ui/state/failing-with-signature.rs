#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store { pub items: Vec<String> }

    #[version(2)]
    pub struct Store {
        #[upshift(with = count)]
        pub items: u64,
    }

    // Takes the wrong old type: the compiler points at the field.
    fn count(items: Vec<u64>) -> u64 { items.len() as u64 }
}

fn main() {}
