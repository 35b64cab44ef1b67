// `inverse` undoes a `with`; a field moved as it is has nothing to undo.
#[upshift::state(rollback)]
mod store {
    #[version(1)]
    pub struct Store {
        pub count: u32,
    }

    #[version(2)]
    pub struct Store {
        #[upshift(inverse = u32::from)]
        pub count: u32,
    }
}

fn main() {}
