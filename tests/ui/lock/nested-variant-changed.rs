// Retyping a variant's field, deep inside a released version.
#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
#[upshift(lock = "released.lock")]
pub enum Expiry {
    Never,
    AtUnixMs(i64),
    Unknown,
}

fn main() {}
