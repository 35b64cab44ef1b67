#[upshift::interface(name = "example.Counter")]
pub mod counter {
    /// Counts.
    #[version(1)]
    pub trait Counter {
        async fn add(&self, n: u64) -> u64;
        async fn reset(&self);
    }
}

struct Count(std::sync::atomic::AtomicU64);

impl counter::v1::Counter for Count {
    async fn add(&self, n: u64) -> u64 {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n
    }
    async fn reset(&self) {
        self.0.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

fn main() {
    let svc = counter::v1::service(Count(Default::default()));
    assert_eq!(svc.name(), "example.Counter");
    assert_eq!(counter::SERVICE, "example.Counter");
    assert_eq!(counter::v1::SCHEMA.methods.len(), 2);
}
