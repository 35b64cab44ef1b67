// Every type inside a versioned interface is locked with it, so it needs a schema.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub value: String,
}

#[upshift::interface]
pub mod kv {
    use super::Entry;

    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<Entry>;
    }
}

fn main() {}
