// Renaming a field of a locked type is reported as a rename: the wire shape
// of self-describing formats changes with the name.
#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
#[upshift(lock = "released.lock")]
pub struct Entry {
    pub value: String,
    pub expires_ms: Option<u64>,
}

fn main() {}
