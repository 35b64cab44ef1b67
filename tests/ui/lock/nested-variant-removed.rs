// Old peers still send `Unknown`: it cannot go from a released type.
#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
#[upshift(lock = "released.lock")]
pub enum Expiry {
    Never,
    AtUnixMs(u64),
}

fn main() {}
