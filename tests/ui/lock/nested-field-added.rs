#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
#[upshift(lock = "released.lock")]
pub struct Entry {
    pub value: String,
    pub expires_at_ms: Option<u64>,
    pub hits: u64,
}

fn main() {}
