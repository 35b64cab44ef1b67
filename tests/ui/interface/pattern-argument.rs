#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        async fn put(&self, (key, value): (String, String));
    }
}

fn main() {}
