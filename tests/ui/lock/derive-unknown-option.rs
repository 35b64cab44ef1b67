// The derive takes one option, `lock`.
#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
#[upshift(rename = "Other")]
pub struct Entry {
    pub value: String,
}

fn main() {}
