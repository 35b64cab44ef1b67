#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        fn get(&self, key: String) -> Option<String>;
    }
}

fn main() {}
