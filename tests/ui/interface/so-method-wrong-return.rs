// SO methods return Result<T, Disallowed>, so a refusal is always typed.
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

impl<N: kv::v2::Interface> kv::v1::Past for kv::v1::PastSo<N> {
    async fn put(&self, key: String, value: String) {
        let _ = self.next.put(key, value, None).await;
    }
}

fn main() {}
