// A lock violation is the only error: the generated code is still emitted,
// so code that uses it (a client, a service) does not fail as well.
#[upshift::interface(lock = "released.lock")]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
        async fn put(&self, key: String, value: String, ttl_secs: Option<u64>);
    }
}

pub async fn read(client: &kv::v1::Client) -> Option<String> {
    client.get("k".to_string()).await.ok().flatten()
}

fn main() {
    assert_eq!(kv::v1::SCHEMA.methods.len(), 2);
}
