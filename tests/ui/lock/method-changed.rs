// v1 was released with `put(key, value)`; changing it breaks every v1 caller.
#[upshift::interface(lock = "released.lock")]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
        async fn put(&self, key: String, value: String, ttl_secs: Option<u64>);
    }
}

fn main() {}
