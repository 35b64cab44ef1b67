#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
    }

    #[version(3)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
        async fn put(&self, key: String, value: String);
    }
}

fn main() {}
