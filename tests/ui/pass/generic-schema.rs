// A generic type derives its schema once: its shape names the parameter,
// and each instance needs schemas for its arguments.
#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<u64>,
}

#[derive(serde::Serialize, serde::Deserialize, upshift::Schema)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

#[upshift::interface]
pub mod catalog {
    use super::{Either, Page};

    #[version(1)]
    pub trait Catalog {
        async fn list(&self, after: Option<u64>) -> Page<String>;
        async fn find(&self, name: String) -> Either<u64, Page<String>>;
    }
}

fn main() {
    use upshift::schema::{Schema, encoding::render};
    assert_eq!(
        render(<Page<String> as Schema>::ENCODING).as_str(),
        "{items: seq<string>, next: option<u64>}"
    );
    assert_eq!(
        render(<Either<u8, u16> as Schema>::ENCODING).as_str(),
        "enum {Left: {0: u8}, Right: {0: u16}}"
    );
}
