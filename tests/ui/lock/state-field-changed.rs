// v1 of the state was released: its snapshots are on disk in the field.
#[upshift::state(name = "demo", lock = "released.lock")]
pub mod store {
    #[version(1)]
    pub struct Store {
        pub items: Vec<String>,
        pub evictions: u32,
    }
}

fn main() {}
