#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        type Value;
        async fn get(&self, key: String) -> Option<String>;
    }
}

fn main() {}
