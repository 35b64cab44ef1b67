#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
    }

    #[version(2)]
    pub trait Store {
        async fn get(&self, key: String) -> Option<String>;
    }
}

fn main() {}
