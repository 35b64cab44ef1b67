#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Client {
        async fn get(&self, key: String) -> Option<String>;
    }
}

fn main() {}
