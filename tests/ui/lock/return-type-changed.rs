#[upshift::interface(lock = "released.lock")]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<Vec<u8>>;
        async fn put(&self, key: String, value: String);
    }
}

fn main() {}
