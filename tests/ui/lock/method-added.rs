#[upshift::interface(lock = "released.lock")]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
        async fn put(&self, key: String, value: String);
        async fn delete(&self, key: String) -> bool;
    }
}

fn main() {}
