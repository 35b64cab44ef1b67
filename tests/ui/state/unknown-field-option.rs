#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store { pub items: Vec<String> }

    #[version(2)]
    pub struct Store {
        #[upshift(rename = "items")]
        pub entries: Vec<String>,
    }
}

fn main() {}
