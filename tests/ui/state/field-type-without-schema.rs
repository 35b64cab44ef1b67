// A user type stored in a state version is locked with it, so it needs a schema.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub name: String,
}

#[upshift::state(name = "ledger")]
mod ledger {
    use super::Owner;

    #[version(1)]
    pub struct Ledger {
        pub owner: Owner,
        pub entries: Vec<Entry>,
    }

    #[version(1)]
    pub struct Entry {
        pub cents: i64,
    }
}

fn main() {}
