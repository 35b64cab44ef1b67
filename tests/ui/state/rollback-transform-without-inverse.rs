// A state that can be rolled back needs the inverse of every `transform`.
#[upshift::state(rollback)]
mod store {
    #[version(1)]
    pub struct Store {
        pub count: u32,
    }

    #[version(2)]
    #[upshift(transform = grown)]
    pub struct Store {
        pub total: u64,
    }

    fn grown(old: v1::Store) -> v2::Store {
        v2::Store {
            total: old.count.into(),
        }
    }
}

fn main() {}
