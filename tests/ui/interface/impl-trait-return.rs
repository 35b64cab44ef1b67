#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn keys(&self) -> impl Iterator<Item = String>;
    }
}

fn main() {}
