#[upshift::interface]
pub mod kv {
    #[version(1)]
    #[upshift(default)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
    }
}

fn main() {}
