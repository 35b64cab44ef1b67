// v1 callers on a v2 node need `v1::Past`; without it, `v2::service` says so.
#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn put(&self, key: String, value: String);
    }

    #[version(2)]
    pub trait Kv {
        async fn put(&self, key: String, value: String, ttl_secs: Option<u64>);
    }
}

struct Store;

impl kv::v2::Kv for Store {
    async fn put(&self, _key: String, _value: String, _ttl_secs: Option<u64>) {}
}

fn main() {
    let _ = kv::v2::service(Store);
}
