#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn get(key: String) -> Option<String>;
    }
}

fn main() {}
