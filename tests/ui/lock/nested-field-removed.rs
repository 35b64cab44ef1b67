// Dropping a field of a type inside a released version breaks old peers
// that still send or expect it.
#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
#[upshift(lock = "released.lock")]
pub struct Entry {
    pub value: String,
}

fn main() {}
