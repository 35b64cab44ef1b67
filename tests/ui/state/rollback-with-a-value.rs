// `rollback` is a flag.
#[upshift::state(rollback = "yes")]
mod store {
    #[version(1)]
    pub struct Store {
        pub count: u32,
    }
}

fn main() {}
