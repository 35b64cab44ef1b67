#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get<K: ToString>(&self, key: K) -> Option<String>;
    }
}

fn main() {}
