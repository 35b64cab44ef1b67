#[upshift::interface(lock = "released.lock")]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: u64) -> Option<String>;
        async fn put(&self, key: String, value: String);
    }
}

fn main() {}
