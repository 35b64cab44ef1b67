// A field the next version removed comes back on rollback with its type's
// default; this one's type has none.
#[upshift::state(rollback)]
mod store {
    #[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
    pub struct Handle(pub u32);

    #[version(1)]
    pub struct Store {
        pub count: u32,
        pub handle: Handle,
    }

    #[version(2)]
    pub struct Store {
        pub count: u32,
    }
}

fn main() {}
