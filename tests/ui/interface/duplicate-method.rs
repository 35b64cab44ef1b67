#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
        async fn get(&self, key: u64) -> Option<String>;
    }
}

fn main() {}
