//! Services that exist only to test the runtime: one that waits for many
//! callers at once, one that sleeps, one that panics.

use std::time::Duration;

use tokio::sync::Barrier;
use upshift::{Connection, Server};

#[upshift::interface]
pub mod probe {
    /// Methods that exercise the runtime rather than store anything.
    #[version(1)]
    pub trait Probe {
        /// Returns `x` after every other caller of `rendezvous` has arrived.
        async fn rendezvous(&self, x: u64) -> u64;
        /// Sleeps for `millis` and returns them.
        async fn sleep(&self, millis: u64) -> u64;
        /// Panics with `message`.
        async fn panic(&self, message: String);
        /// Returns `x + 1`.
        async fn inc(&self, x: u64) -> u64;
    }
}

/// The probe's service object.
#[derive(Debug)]
pub struct ProbeObject {
    barrier: Barrier,
}

impl ProbeObject {
    /// A probe whose `rendezvous` waits for `callers` calls.
    pub fn new(callers: usize) -> Self {
        ProbeObject {
            barrier: Barrier::new(callers),
        }
    }
}

impl probe::v1::Probe for ProbeObject {
    async fn rendezvous(&self, x: u64) -> u64 {
        self.barrier.wait().await;
        x
    }

    async fn sleep(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    async fn panic(&self, message: String) {
        panic!("{message}");
    }

    async fn inc(&self, x: u64) -> u64 {
        x + 1
    }
}

/// A key-value node at `version` listening on loopback TCP, with a client
/// connection to it.
pub async fn kv_node(version: u32, with_future: bool) -> (Server, upshift::Listener, Connection) {
    let server = Server::new(upshift_examples::kv::service(version, with_future));
    let listener = server.listen("127.0.0.1:0").await.expect("bind loopback");
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect to the node");
    (server, listener, conn)
}
