// `inverse` is only run by rollbacks, which the state does not declare.
#[upshift::state]
mod store {
    #[version(1)]
    pub struct Store {
        pub count: u32,
    }

    #[version(2)]
    pub struct Store {
        #[upshift(with = u64::from, inverse = u32::try_from)]
        pub count: u64,
    }
}

fn main() {}
