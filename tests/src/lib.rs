//! Services that exist only to test the runtime: one that waits for many
//! callers at once, one that sleeps, one that panics.

pub mod base64;
pub mod browser;
pub mod etcd;
pub mod fleet;

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

/// The key-value service's upgrade from `from` to the next version, in
/// process, on `schedule`: what most rollout tests publish.
pub fn kv_upgrade(
    from: u32,
    schedule: upshift::schedule::ScheduleSpec,
) -> upshift::coordinator::api::UpgradeDef {
    upshift::coordinator::api::UpgradeDef {
        service: "Kv".into(),
        from,
        to: from + 1,
        schedule,
        artifact: "in-process".into(),
        notes: String::new(),
    }
}

/// Where the program `name` is on the `PATH`, if it is: the real servers
/// and browsers the tests start.
pub fn on_path(name: &str) -> Option<std::path::PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
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

/// A coordinator with a real UDB file, and key-value nodes with real state
/// directories, all on loopback TCP.
pub mod cluster {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::task::JoinHandle;
    use upshift::coordinator::api::UdbContent;
    use upshift::coordinator::{Coordinator, api};
    use upshift::node::{Node, NodeConfig, Stage};
    use upshift::schedule::Registry;
    use upshift::state::FileStore;
    use upshift::udb::{EtcdUdb, Leadership, RedbUdb};
    use upshift::upgrade::Coordinators;
    use upshift::{Connection, Listener, Server};

    use crate::etcd::EtcdServer;

    /// Where a test coordinator keeps its UDB.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Backend {
        /// A redb file in the test's directory.
        Redb,
        /// The test process's etcd ([`EtcdServer::shared`]), under a prefix
        /// named after the test's directory.
        Etcd,
    }

    /// A fresh directory for one test.
    pub fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("upshift-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// A running coordinator.
    #[derive(Debug)]
    pub struct RunningCoordinator {
        /// Its server.
        pub server: Server,
        /// Its listener; dropping it closes every connection, as a crash would.
        pub listener: Listener,
        /// A client for operator calls.
        pub client: api::v1::Client,
        /// On etcd: its leadership, given up (the lease revoked) when it is
        /// dropped, as a stopped coordinator's would be.
        pub leadership: Option<Leadership>,
    }

    impl RunningCoordinator {
        /// Starts a coordinator over the UDB file in `dir`, on `addr`.
        pub async fn start(dir: &Path, addr: &str, schedules: Registry) -> Self {
            Self::start_with(dir, addr, schedules, |c| c).await
        }

        /// The same, with the coordinator configured by `configure`.
        pub async fn start_with(
            dir: &Path,
            addr: &str,
            schedules: Registry,
            configure: impl FnOnce(Coordinator) -> Coordinator,
        ) -> Self {
            Self::start_on(Backend::Redb, dir, addr, schedules, configure).await
        }

        /// The same on `backend`. On etcd it first becomes the leader of
        /// the prefix (a coordinator before it on the same directory must
        /// be dropped first).
        pub async fn start_on(
            backend: Backend,
            dir: &Path,
            addr: &str,
            schedules: Registry,
            configure: impl FnOnce(Coordinator) -> Coordinator,
        ) -> Self {
            let (coordinator, leadership) = match backend {
                Backend::Redb => {
                    let udb = RedbUdb::open(dir.join("udb.redb")).expect("open the UDB");
                    (Coordinator::open(udb, schedules), None)
                }
                Backend::Etcd => {
                    let name = dir.file_name().expect("a named dir").to_string_lossy();
                    let url = EtcdServer::shared().url(&format!("/upshift-test/{name}/"));
                    let address = addr.to_string();
                    let (udb, leadership) = tokio::task::spawn_blocking(move || {
                        let udb = EtcdUdb::open(&url).expect("open the etcd UDB");
                        let leadership = udb
                            .campaign(&address, Duration::from_secs(2), |_| {})
                            .expect("lead");
                        (udb, leadership)
                    })
                    .await
                    .expect("campaign");
                    (Coordinator::open(udb, schedules), Some(leadership))
                }
            };
            let coordinator = configure(coordinator.expect("read the UDB"));
            let (server, listener) = coordinator
                .serve(addr)
                .await
                .expect("serve the coordinator");
            let conn = Connection::connect(listener.local_addr())
                .await
                .expect("connect");
            let client = api::v1::Client::new(conn).with_deadline(Duration::from_secs(10));
            RunningCoordinator {
                server,
                listener,
                client,
                leadership,
            }
        }

        /// The coordinator's address.
        pub fn addr(&self) -> SocketAddr {
            self.listener.local_addr()
        }

        /// Everything the UDB holds.
        pub async fn status(&self) -> UdbContent {
            self.client.status().await.expect("status")
        }
    }

    /// A running key-value node with its agent.
    #[derive(Debug)]
    pub struct RunningNode {
        /// The node.
        pub node: Node,
        /// Its listener.
        pub listener: Listener,
        /// Its agent.
        pub agent: JoinHandle<()>,
    }

    impl RunningNode {
        /// Starts node `id` over the state in `dir/id`, at v1 when it has none.
        pub async fn start(
            dir: &Path,
            id: &str,
            group: &str,
            coordinator: impl Into<Coordinators>,
            health: Arc<dyn Fn() -> bool + Send + Sync>,
        ) -> Self {
            Self::start_with(
                dir,
                id,
                group,
                coordinator,
                health,
                upshift_examples::kv::stages(),
            )
            .await
        }

        /// The same with other stages (for example, one whose transform fails).
        pub async fn start_with(
            dir: &Path,
            id: &str,
            group: &str,
            coordinator: impl Into<Coordinators>,
            health: Arc<dyn Fn() -> bool + Send + Sync>,
            stages: Vec<Box<dyn Stage>>,
        ) -> Self {
            let store = FileStore::open(dir.join(id), upshift_examples::kv::state::NAME)
                .expect("state dir");
            let mut config = NodeConfig::new(id);
            config.group = group.to_string();
            config.heartbeat = Duration::from_millis(20);
            config.health = health;
            let node = Node::start(config, store, stages, 1).expect("start the node");
            let listener = node.listen("127.0.0.1:0").await.expect("listen");
            let agent = node.run_agent(coordinator, listener.local_addr().to_string());
            RunningNode {
                node,
                listener,
                agent,
            }
        }

        /// Stops the agent and closes the node's connections, as a crash would.
        pub fn stop(self) {
            self.agent.abort();
            drop(self.listener);
        }
    }

    /// Everything the UDB holds, as whichever of `coordinators` leads
    /// answers it now; `None` while none does.
    pub async fn status_of(coordinators: impl Into<Coordinators>) -> Option<UdbContent> {
        let coordinators = coordinators.into();
        let conn = coordinators
            .connect(&upshift::ClientConfig::default())
            .await
            .ok()?;
        let client = api::v1::Client::new(conn).with_deadline(Duration::from_secs(5));
        let status = client.status().await.ok();
        if status.is_none() {
            // Accepted but did not answer (stalled): the next one next time.
            coordinators.passed_over(client.connection());
        }
        status
    }

    /// How many nodes the UDB has at `version`.
    pub fn nodes_at(content: &UdbContent, version: u32) -> usize {
        content
            .nodes
            .values()
            .filter(|n| n.info.version == version)
            .count()
    }

    /// Polls `check` every 20 ms until it holds or `timeout` passes.
    pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        while !check().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
