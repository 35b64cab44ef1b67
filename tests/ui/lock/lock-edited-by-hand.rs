// Editing a locked section by hand to match changed code is caught: the
// section's lines no longer hash to its fingerprint.
#[upshift::interface(lock = "edited.lock")]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
        async fn put(&self, key: String, value: String, ttl_secs: Option<u64>);
    }
}

fn main() {}
