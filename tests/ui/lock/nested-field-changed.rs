// `Entry` travels in a released version; retyping one of its fields is as
// breaking as changing a method.
#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
#[upshift(lock = "released.lock")]
pub struct Entry {
    pub value: String,
    pub expires_at_ms: Option<i64>,
}

fn main() {}
