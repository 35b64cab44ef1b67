// A derive with an error still implements `Schema` (as a stub), so the
// interface that uses the type reports nothing more: one mistake, one error.
#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
#[upshift(rename = "Other")]
pub struct Entry {
    pub value: String,
}

#[upshift::interface]
pub mod store {
    use super::Entry;

    #[version(1)]
    pub trait Store {
        async fn get(&self, key: String) -> Option<Entry>;
    }
}

fn main() {}
