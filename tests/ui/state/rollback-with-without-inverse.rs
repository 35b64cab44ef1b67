// A state that can be rolled back needs the inverse of every `with`.
#[upshift::state(rollback)]
mod store {
    #[version(1)]
    pub struct Store {
        pub count: u32,
    }

    #[version(2)]
    pub struct Store {
        #[upshift(with = u64::from)]
        pub count: u64,
    }
}

fn main() {}
