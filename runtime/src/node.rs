//! The node's upgrade layer: runs one service at version N over its state
//! store, and moves it to N+1 inside the running process — quiesce,
//! transform and commit the state, start the new object with its SOs,
//! resume — on the coordinator's schedule.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::artifact::Artifact;
use crate::coordinator::api::{self, Heartbeat, Outcome, Slot};
use crate::server::{Listener, Server};
use crate::service::Service;
use crate::state::{FileStore, Snapshot, SnapshotStore, StateError, StoreError, Versioned};
use crate::udb::NodeInfo;
use crate::{CallError, Connection};

/// Why a node could not start or upgrade. It keeps serving its version.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The state could not become the new version.
    #[error("state transform failed: {0}")]
    State(#[from] StateError),
    /// The binary has no code for this version.
    #[error("this binary has no stage for v{version}; it has {known:?}")]
    NoStage {
        /// The version asked for.
        version: u32,
        /// The versions it has.
        known: Vec<u32>,
    },
    /// An upgrade must go from the running version to the next.
    #[error("the node runs v{running}; it can only upgrade to v{}", running + 1)]
    NotNext {
        /// The version running.
        running: u32,
    },
    /// Calls in flight did not finish in time; the upgrade was called off.
    #[error("{0} calls were still running after {1:?}; the upgrade was called off")]
    Busy(usize, Duration),
    /// The upgrade's artifact is unusable.
    #[error(transparent)]
    Artifact(#[from] crate::artifact::ArtifactError),
    /// A stage failed to start.
    #[error("v{version} did not start: {reason}")]
    Start {
        /// The version.
        version: u32,
        /// Why.
        reason: String,
    },
}

/// Drops the SO chains of versions below `oldest`.
fn retire(service: Service, oldest: Option<u32>) -> Service {
    let Some(oldest) = oldest else { return service };
    let old: Vec<u32> = service.versions().filter(|v| *v < oldest).collect();
    old.into_iter().fold(service, Service::without_version)
}

/// A service running at one version, and how to snapshot its state.
pub struct Running {
    /// What the server serves.
    pub service: Service,
    /// Encodes the current state, at this version.
    pub snapshot: Box<dyn Fn() -> Result<Snapshot, NodeError> + Send + Sync>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("service", &self.service)
            .finish()
    }
}

/// The code of one version in a node's binary: how to start it from a
/// snapshot of its own or any older version (transforming), or from nothing.
pub trait Stage: Send + Sync + 'static {
    /// The version this stage runs.
    fn version(&self) -> u32;
    /// Starts from `snapshot` (transformed to this version), or from fresh
    /// state when there is none.
    fn start(&self, snapshot: Option<&Snapshot>) -> Result<Running, NodeError>;
}

/// A stage from a state type and a function that builds the service around
/// the state; the function also returns how to read the state back.
pub fn stage<S, F, G>(build: F) -> impl Stage
where
    S: Versioned + Default + 'static,
    F: Fn(S) -> (Service, G) + Send + Sync + 'static,
    G: Fn() -> S + Send + Sync + 'static,
{
    StageFn {
        build,
        _state: std::marker::PhantomData::<fn() -> (S, G)>,
    }
}

struct StageFn<F, S, G> {
    build: F,
    _state: std::marker::PhantomData<fn() -> (S, G)>,
}

impl<S, F, G> Stage for StageFn<F, S, G>
where
    S: Versioned + Default + 'static,
    F: Fn(S) -> (Service, G) + Send + Sync + 'static,
    G: Fn() -> S + Send + Sync + 'static,
{
    fn version(&self) -> u32 {
        S::VERSION
    }

    fn start(&self, snapshot: Option<&Snapshot>) -> Result<Running, NodeError> {
        let state = match snapshot {
            Some(s) => S::decode_from(s.version, &s.payload)?,
            None => S::default(),
        };
        let (service, read) = (self.build)(state);
        if service.version() != S::VERSION {
            return Err(NodeError::Start {
                version: S::VERSION,
                reason: format!(
                    "the service runs v{} but the state is v{}",
                    service.version(),
                    S::VERSION
                ),
            });
        }
        Ok(Running {
            service,
            snapshot: Box::new(move || {
                let payload = postcard::to_allocvec(&read()).map_err(|e| NodeError::Start {
                    version: S::VERSION,
                    reason: format!("the state did not encode: {e}"),
                })?;
                Ok(Snapshot {
                    version: S::VERSION,
                    payload,
                })
            }),
        })
    }
}

/// Settings of a node; every field but `id` has a default.
#[derive(Clone)]
pub struct NodeConfig {
    /// Unique within the cluster.
    pub id: String,
    /// The group schedules order and limit.
    pub group: String,
    /// How often the agent reports to the coordinator.
    pub heartbeat: Duration,
    /// How long an upgrade waits for calls in flight before calling itself off.
    pub quiesce_timeout: Duration,
    /// The node's health check, reported with every heartbeat.
    pub health: Arc<dyn Fn() -> bool + Send + Sync>,
    /// How this node restarts into a new binary (restart-mode upgrades): it
    /// is called with the verified binary after the state is checkpointed
    /// and should not return — typically it tells a supervisor which binary
    /// to start next and exits. Without it, file artifacts fail.
    pub restart: Option<Arc<dyn Fn(std::path::PathBuf) + Send + Sync>>,
    /// Versions below this are no longer answered: their past SOs are
    /// dropped, and their callers get `VersionUnsupported`. Set it once the
    /// reported call counts show nobody calls them any more.
    pub oldest_answered: Option<u32>,
}

impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConfig")
            .field("id", &self.id)
            .field("group", &self.group)
            .field("heartbeat", &self.heartbeat)
            .field("quiesce_timeout", &self.quiesce_timeout)
            .field("oldest_answered", &self.oldest_answered)
            .finish()
    }
}

impl NodeConfig {
    /// Defaults for a node called `id`: group "default", a heartbeat every
    /// 100 ms, 5 s to quiesce, always healthy.
    pub fn new(id: impl Into<String>) -> Self {
        NodeConfig {
            id: id.into(),
            group: "default".into(),
            heartbeat: Duration::from_millis(100),
            quiesce_timeout: Duration::from_secs(5),
            health: Arc::new(|| true),
            restart: None,
            oldest_answered: None,
        }
    }
}

struct Current {
    snapshot: Box<dyn Fn() -> Result<Snapshot, NodeError> + Send + Sync>,
}

struct Inner {
    config: NodeConfig,
    server: Server,
    service: &'static str,
    store: FileStore,
    stages: BTreeMap<u32, Box<dyn Stage>>,
    version: AtomicU32,
    /// Held for the whole of an upgrade: one at a time.
    current: tokio::sync::Mutex<Current>,
    /// Wakes the agent before its next heartbeat.
    nudge: tokio::sync::Notify,
    /// For each upgrade: the version reached and how long calls were held.
    pauses: std::sync::Mutex<Vec<(u32, Duration)>>,
}

/// One node: a service at its current version, its state store, and the
/// upgrade layer that moves it to the next version.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.config.id)
            .field("version", &self.version())
            .finish()
    }
}

impl Node {
    /// Starts a node at the newest version it has a stage for: the committed
    /// snapshot, of that or any older version, is transformed and committed
    /// at the newest version. This is how a new binary starts in a
    /// restart-mode upgrade.
    pub fn start_newest(
        config: NodeConfig,
        store: FileStore,
        stages: Vec<Box<dyn Stage>>,
    ) -> Result<Self, NodeError> {
        let newest = stages
            .iter()
            .map(|s| s.version())
            .max()
            .ok_or(NodeError::NoStage {
                version: 0,
                known: Vec::new(),
            })?;
        let committed = store.read()?.map(|(s, _)| s);
        let stage = stages
            .iter()
            .find(|s| s.version() == newest)
            .ok_or(NodeError::NoStage {
                version: newest,
                known: Vec::new(),
            })?;
        if committed.as_ref().is_none_or(|s| s.version != newest) {
            let running = stage.start(committed.as_ref())?;
            // Commit the transformed state before serving from it.
            store.write(&(running.snapshot)()?)?;
        }
        Self::start(config, store, stages, newest)
    }

    /// Starts a node from its store: at the version of the committed
    /// snapshot, or at `initial` with fresh state when there is none.
    pub fn start(
        config: NodeConfig,
        store: FileStore,
        stages: Vec<Box<dyn Stage>>,
        initial: u32,
    ) -> Result<Self, NodeError> {
        let stages: BTreeMap<u32, Box<dyn Stage>> =
            stages.into_iter().map(|s| (s.version(), s)).collect();
        let known = || stages.keys().copied().collect::<Vec<_>>();
        let committed = store.read()?;
        let version = committed.as_ref().map_or(initial, |(s, _)| s.version);
        let stage = stages.get(&version).ok_or_else(|| NodeError::NoStage {
            version,
            known: known(),
        })?;
        let running = stage.start(committed.as_ref().map(|(s, _)| s))?;
        if committed.is_none() {
            store.write(&(running.snapshot)()?)?;
        }
        let service = running.service.name();
        let server = Server::new(retire(running.service, config.oldest_answered));
        Ok(Node {
            inner: Arc::new(Inner {
                config,
                server,
                service,
                store,
                stages,
                version: AtomicU32::new(version),
                current: tokio::sync::Mutex::new(Current {
                    snapshot: running.snapshot,
                }),
                nudge: tokio::sync::Notify::new(),
                pauses: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// The node's id.
    pub fn id(&self) -> &str {
        &self.inner.config.id
    }

    /// The version the node runs.
    pub fn version(&self) -> u32 {
        self.inner.version.load(Ordering::SeqCst)
    }

    /// The server that answers the node's calls.
    pub fn server(&self) -> &Server {
        &self.inner.server
    }

    /// The service as served now.
    pub fn service(&self) -> Arc<Service> {
        match self.inner.server.service(self.inner.service) {
            Some(service) => service,
            // A node installs its service at start and only ever replaces it.
            None => unreachable!("node {} lost its service", self.inner.config.id),
        }
    }

    /// Serves the node on a TCP address.
    pub async fn listen(&self, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<Listener> {
        self.inner.server.listen(addr).await
    }

    /// For each in-process upgrade so far: the version reached, and how long
    /// the node held calls back (from quiesce to switch) — its unavailable window.
    pub fn pauses(&self) -> Vec<(u32, Duration)> {
        self.inner
            .pauses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Saves the current state as the committed snapshot.
    pub async fn checkpoint(&self) -> Result<(), NodeError> {
        let current = self.inner.current.lock().await;
        let snapshot = (current.snapshot)()?;
        // Writing and syncing the file blocks for milliseconds or more, and
        // nodes checkpoint while they serve: off the runtime's threads. The
        // lock stays held, so checkpoints still commit in order.
        let store = self.inner.store.clone();
        blocking(move || store.write(&snapshot)).await?;
        drop(current);
        Ok(())
    }

    /// Moves the node to `to`, the next version, inside this process:
    /// quiesce (new calls get a retryable `Upgrading` reply; calls in flight
    /// finish within the quiesce timeout), transform the state and commit it,
    /// start the new version with its past SOs, resume. On any failure the
    /// node resumes on its version with its state as it was.
    pub async fn upgrade_to(&self, to: u32) -> Result<(), NodeError> {
        let mut current = self.inner.current.lock().await;
        let running = self.version();
        if to != running + 1 {
            return Err(NodeError::NotNext { running });
        }
        let stage = self
            .inner
            .stages
            .get(&to)
            .ok_or_else(|| NodeError::NoStage {
                version: to,
                known: self.inner.stages.keys().copied().collect(),
            })?;
        let old = self.service();
        let paused = std::time::Instant::now();
        let timeout = self.inner.config.quiesce_timeout;
        if !old.quiesce(timeout).await {
            let busy = old.in_flight();
            old.reopen();
            return Err(NodeError::Busy(busy, timeout));
        }
        let result = (|| {
            let snapshot = (current.snapshot)()?;
            let next = stage.start(Some(&snapshot))?;
            // The commit point: once this write returns, the node is at `to`.
            self.inner.store.write(&(next.snapshot)()?)?;
            Ok::<_, NodeError>(next)
        })();
        match result {
            Ok(next) => {
                self.inner
                    .server
                    .install(retire(next.service, self.inner.config.oldest_answered));
                current.snapshot = next.snapshot;
                self.inner.version.store(to, Ordering::SeqCst);
                let pause = paused.elapsed();
                self.inner
                    .pauses
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((to, pause));
                tracing::info!(node = %self.inner.config.id, version = to, ?pause, "upgraded");
                Ok(())
            }
            Err(e) => {
                old.reopen();
                tracing::warn!(node = %self.inner.config.id, error = %e, "upgrade failed; staying on v{running}");
                Err(e)
            }
        }
    }

    /// Runs the node's agent: registers with the coordinator at
    /// `coordinator`, reports every heartbeat, and upgrades when a published
    /// upgrade applies and its schedule grants a slot. The agent reconnects
    /// whenever the coordinator is unreachable; abort the handle to stop it.
    pub fn run_agent(&self, coordinator: SocketAddr, address: String) -> JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            let mut client: Option<api::v1::Client> = None;
            loop {
                if client.is_none() {
                    client = node.register(coordinator, &address).await;
                }
                if let Some(c) = &client
                    && let Err(e) = node.agent_step(c).await
                {
                    tracing::debug!(node = %node.id(), error = %e, "coordinator unreachable; reconnecting");
                    client = None;
                }
                tokio::select! {
                    () = tokio::time::sleep(node.inner.config.heartbeat) => {}
                    () = node.inner.nudge.notified() => {}
                }
            }
        })
    }

    /// Saves the state every `every`, so that a node killed in steady state
    /// loses at most the writes of the last interval (a node otherwise
    /// commits its state only when it upgrades). Abort the handle to stop.
    pub fn checkpoint_every(&self, every: Duration) -> JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = node.checkpoint().await {
                    tracing::warn!(node = %node.id(), error = %e, "checkpoint failed");
                }
            }
        })
    }

    /// Tells the node that a peer answered with `version` (every reply
    /// carries the peer's version, see [`Connection::node_version`]). A newer
    /// version means an upgrade is under way, so the agent asks the
    /// coordinator now instead of at its next heartbeat.
    pub fn saw_version(&self, version: u32) {
        if version > self.version() {
            self.inner.nudge.notify_one();
        }
    }

    async fn register(&self, coordinator: SocketAddr, address: &str) -> Option<api::v1::Client> {
        let conn = Connection::connect(coordinator).await.ok()?;
        let client = api::v1::Client::new(conn).with_deadline(Duration::from_secs(5));
        let info = NodeInfo {
            id: self.inner.config.id.clone(),
            address: address.to_string(),
            group: self.inner.config.group.clone(),
            service: self.inner.service.to_string(),
            version: self.version(),
        };
        client.register(info).await.ok()?;
        Some(client)
    }

    async fn agent_step(&self, client: &api::v1::Client) -> Result<(), CallError> {
        let service = self.service();
        let beat = Heartbeat {
            id: self.inner.config.id.clone(),
            version: self.version(),
            healthy: (self.inner.config.health)(),
            calls: service.versions().map(|v| (v, service.served(v))).collect(),
        };
        let Some(pending) = client.heartbeat(beat).await? else {
            return Ok(());
        };
        if pending.from != self.version() {
            return Ok(());
        }
        let id = self.inner.config.id.clone();
        if client.request_slot(id.clone(), pending.upgrade).await? != Slot::Granted {
            return Ok(());
        }
        let result = match Artifact::parse(&pending.artifact) {
            Ok(Artifact::InProcess) => self.upgrade_to(pending.to).await,
            Ok(file) => self.restart_into(file).await,
            Err(e) => Err(e.into()),
        };
        let outcome = match result {
            Ok(()) => Outcome::Upgraded {
                version: pending.to,
            },
            Err(e) => Outcome::Failed {
                reason: e.to_string(),
            },
        };
        client.report(id, pending.upgrade, outcome).await
    }

    /// Restart-mode upgrade: verify the binary, hold calls, checkpoint the
    /// state, and hand over to the restart hook. The new binary registers
    /// at the new version, which tells the coordinator the upgrade went.
    async fn restart_into(&self, artifact: Artifact) -> Result<(), NodeError> {
        let Artifact::File { path, .. } = &artifact else {
            return Ok(());
        };
        let restart = self
            .inner
            .config
            .restart
            .clone()
            .ok_or_else(|| NodeError::Start {
                version: self.version() + 1,
                reason: "this node has no restart hook, so it cannot restart into a binary".into(),
            })?;
        // Hashing a large binary takes seconds (4 s for a debug kv-node):
        // off the runtime's threads, so the node keeps serving meanwhile.
        let checking = artifact.clone();
        blocking(move || checking.verify()).await?;
        let service = self.service();
        let timeout = self.inner.config.quiesce_timeout;
        if !service.quiesce(timeout).await {
            let busy = service.in_flight();
            service.reopen();
            return Err(NodeError::Busy(busy, timeout));
        }
        if let Err(e) = self.checkpoint().await {
            service.reopen();
            return Err(e);
        }
        tracing::info!(node = %self.inner.config.id, binary = %path.display(), "restarting into the new binary");
        // Close connections so that no caller has a call in flight when the
        // process exits: every call is answered (`Upgrading`) or never sent.
        self.inner.server.go_away(Duration::from_secs(2)).await;
        restart(path.clone());
        // A hook that returns did not restart: keep serving the old version.
        service.reopen();
        Err(NodeError::Start {
            version: self.version() + 1,
            reason: "the restart hook returned without restarting".into(),
        })
    }
}

/// Runs blocking work (file writes, hashing) off the runtime's threads, so
/// the node serves meanwhile. A panic in it is the caller's panic.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only a runtime shutting down cancels the work, and then
            // nothing waits for this answer.
            Err(_) => std::future::pending().await,
        },
    }
}
