#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv: Clone {
        async fn get(&self, key: String) -> Option<String>;
    }
}

fn main() {}
