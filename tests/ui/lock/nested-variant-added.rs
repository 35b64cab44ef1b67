// A new variant in a type of a released version is one old peers cannot decode.
#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
#[upshift(lock = "released.lock")]
pub enum Expiry {
    Never,
    AtUnixMs(u64),
    Unknown,
    InSecs(u64),
}

fn main() {}
