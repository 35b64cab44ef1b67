#[upshift::state]
pub mod store {
    #[version(1)]
    pub struct Store { pub items: Vec<String> }

    #[version(2)]
    pub struct Store { pub items: Vec<String> }

    #[version(2)]
    #[upshift(transform = make)]
    pub struct Stats { pub count: u64 }

    fn make(_: ()) -> v2::Stats { v2::Stats { count: 0 } }
}

fn main() {}
