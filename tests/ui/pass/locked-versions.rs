// v1 matches its lock; v2 is new and may change until it is locked.
#[upshift::interface(lock = "released.lock")]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
        async fn put(&self, key: String, value: String);
    }

    #[version(2)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
        async fn put(&self, key: String, value: String, ttl_secs: Option<u64>);
    }
}

fn main() {}
