#[upshift::interface]
pub mod kv {
    pub struct Request;

    #[version(1)]
    pub trait Kv {
        async fn get(&self, key: String) -> Option<String>;
    }
}

fn main() {}
