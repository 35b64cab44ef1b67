// A version may declare no methods (a service being introduced).
#[upshift::interface]
pub mod empty {
    #[version(1)]
    pub trait Empty {}

    #[version(2)]
    pub trait Empty {
        async fn ping(&self) -> u32;
    }
}

struct Node;
impl empty::v2::Empty for Node {
    async fn ping(&self) -> u32 {
        2
    }
}
impl<N: empty::v2::Interface> empty::v1::Past for empty::v1::PastSo<N> {}

fn main() {
    let svc = empty::v2::service(Node);
    assert_eq!(svc.versions().collect::<Vec<_>>(), vec![1, 2]);
}
