// An instance of a generic type needs schemas for its arguments.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Opaque(pub u64);

#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
pub struct Page<T> {
    pub items: Vec<T>,
}

#[upshift::interface]
pub mod catalog {
    use super::{Opaque, Page};

    #[version(1)]
    pub trait Catalog {
        async fn list(&self) -> Page<Opaque>;
    }
}

fn main() {}
