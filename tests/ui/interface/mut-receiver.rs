#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn put(&mut self, key: String, value: String);
    }
}

fn main() {}
