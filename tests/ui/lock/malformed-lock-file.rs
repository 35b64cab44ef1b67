// A lock file that is not in the lock format says where and how.
#[upshift::interface(lock = "malformed.lock")]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
        async fn put(&self, key: String, value: String);
    }
}

fn main() {}
