// `put` changed between v1 and v2, so the past SO must say what a v1 `put` does.
#[upshift::interface]
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

impl<N: kv::v2::Interface> kv::v1::Past for kv::v1::PastSo<N> {}

fn main() {}
