#[upshift::interface(version = 2)]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
    }
}

fn main() {}
