// One build reports every mistake: a gap, a non-async method and a reference.
#[upshift::interface]
pub mod kv {
    #[version(1)]
    pub trait Kv {
        fn get(&self, key: String) -> Option<String>;
    }

    #[version(3)]
    pub trait Kv {
        async fn get(&self, key: &str) -> Option<String>;
    }
}

fn main() {}
