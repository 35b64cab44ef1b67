// A deriving type's fields are locked through their own schemas: a field
// type without one would be a hole in the lock.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Expiry {
    pub at_ms: u64,
}

#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
pub struct Entry {
    pub value: String,
    pub expiry: Option<Expiry>,
}

fn main() {}
