#[upshift::interface]
pub mod kv {
    #[version(2)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
        async fn put(&self, key: String, value: String);
    }

    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
    }
}

fn main() {}
