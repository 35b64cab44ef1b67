#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn new(&self, key: String);
    }
}

fn main() {}
