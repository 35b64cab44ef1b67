//! The node's upgrade layer: runs one service at version N over its state
//! store, and moves it to N+1 inside the running process — quiesce,
//! transform and commit the state, start the new object with its SOs,
//! resume — on the coordinator's schedule.

mod agent;
mod config;
mod metrics;
mod restart;
mod rollback;
mod shadow;
mod stage;
mod upgrade;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub use config::{NodeConfig, NodeError, ReleasePolicy};
pub use metrics::NodeMetrics;
pub use shadow::{ShadowPolicy, ShadowReport};
pub use stage::{DurableStage, Prepared, Running, Stage, Storage, durable_stage, stage};

use crate::rpc::stats::CallStats;
use crate::rpc::{Listener, Server, Service};
use crate::state::{FileStore, Snapshot, SnapshotStore, StateHandle};
use crate::sync::{blocking, lock};
use stage::retire;

/// A restart-mode successor's newest state, prepared while the previous
/// process still owned the state directory ([`Node::prepare_newest`]).
pub struct Prestart {
    version: u32,
    prepared: Box<dyn stage::Prepared>,
}

impl fmt::Debug for Prestart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prestart")
            .field("version", &self.version)
            .field("applied", &self.prepared.applied())
            .finish()
    }
}

struct Current {
    snapshot: Box<dyn Fn() -> Result<Snapshot, NodeError> + Send + Sync>,
}

/// After a snapshot of a journaled state is committed: its journal drops
/// what the snapshot holds. A failure stops the state taking writes (its
/// journal can no longer be trusted to stay bounded, or to be this one).
fn compacted(state: Option<&StateHandle>, upto: u64) {
    if let Some(state) = state
        && let Err(e) = state.compact(upto)
    {
        state.fail(&format!(
            "the journal could not be compacted after a checkpoint: {e}"
        ));
    }
}

/// What the agent measured of the rollouts it took part in.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timings {
    /// The upgrade the node is waiting for a slot in, and since when.
    pub(crate) waiting: Option<(u64, std::time::Instant)>,
    /// How long each granted slot was waited for.
    pub(crate) slot_waits: Vec<Duration>,
    /// Each upgrade the node made (transform or restart), and whether it
    /// succeeded.
    pub(crate) upgrades: Vec<(Duration, bool)>,
    /// Values its rollbacks dropped (the older version could not hold
    /// them), per place (`Type.field`).
    pub(crate) dropped: std::collections::BTreeMap<&'static str, u64>,
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
    /// What the agent's rollouts took: slot waits, upgrades.
    timings: std::sync::Mutex<Timings>,
    /// The running version's journaled state, if its stage keeps one.
    state: std::sync::Mutex<Option<StateHandle>>,
    /// What the last shadowing saw ([`NodeConfig::shadow`]).
    shadowed: std::sync::Mutex<Option<ShadowReport>>,
    /// What the calls of each service this process served did: (node
    /// version, call version, counters), kept across upgrades so that the
    /// heartbeat tells the coordinator what each version did.
    traffic: std::sync::Mutex<Vec<(u32, u32, Arc<CallStats>)>>,
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
    /// restart-mode upgrade. A state a rollback took back
    /// ([`FileStore::rolled_back_to`]) starts at the version it went back
    /// to, so a restart does not undo the rollback.
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
        // A rollback to the committed version holds: this binary's newest
        // stage is where the node came back from.
        let rolled_back = store.rolled_back_to()?;
        let newest = match (&committed, rolled_back) {
            (Some(c), Some(to)) if c.version == to && to < newest => {
                tracing::info!(
                    version = to,
                    newest,
                    "the state was rolled back to v{to}: starting there, not at v{newest}"
                );
                to
            }
            _ => newest,
        };
        let find = |version: u32| {
            stages
                .iter()
                .find(|s| s.version() == version)
                .ok_or(NodeError::NoStage {
                    version,
                    known: stages.iter().map(|s| s.version()).collect(),
                })
        };
        let storage = Storage::of(&store, &config);
        if let Some(older) = committed.as_ref().filter(|s| s.version != newest) {
            // The committed version first, to replay its journal: the
            // snapshot it gives holds every change acknowledged at it.
            let at = find(older.version)?.start(Some(older), storage)?;
            let caught_up = (at.snapshot)()?;
            drop(at);
            let running = find(newest)?.start(Some(&caught_up), storage)?;
            // Commit the transformed state before serving from it; only
            // then may the journal start over at the new version.
            store.write(&(running.snapshot)()?)?;
            if let Some(state) = &running.state {
                state.restart_journal()?;
            }
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
        let storage = Storage::of(&store, &config);
        let running = stage.start(committed.as_ref().map(|(s, _)| s), storage)?;
        if committed.is_none() {
            store.write(&(running.snapshot)()?)?;
        }
        Ok(Self::assemble(config, store, stages, version, running))
    }

    /// Prepares the newest stage's state in `dir` without taking the
    /// directory over, while the process that owns it still serves: a
    /// restart-mode successor calls it before it waits for the directory,
    /// and passes the result to [`Node::start_newest_prepared`], which then
    /// only follows the changes written since. `None` when there is nothing
    /// to gain (no committed snapshot of the version before the newest, or
    /// a newest stage that does not follow) or preparing failed (logged;
    /// the start then transforms as [`Node::start_newest`] does).
    pub fn prepare_newest(dir: &Path, name: &str, stages: &[Box<dyn Stage>]) -> Option<Prestart> {
        let began = std::time::Instant::now();
        let newest = stages.iter().max_by_key(|s| s.version())?;
        let store = FileStore::open_read_only(dir, name).ok()?;
        let (committed, _) = store.read().ok()??;
        if committed.version + 1 != newest.version() {
            return None;
        }
        match newest.prepare(&store)? {
            Ok(prepared) => {
                tracing::info!(version = newest.version(), took = ?began.elapsed(), "prepared beside the running process");
                Some(Prestart {
                    version: newest.version(),
                    prepared,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not prepare beside the running process; the start transforms");
                None
            }
        }
    }

    /// [`Node::start_newest`], from a state [prepared](Node::prepare_newest)
    /// before `store` was taken over: it follows the journal written since,
    /// commits the new version's snapshot and serves. Falls back to
    /// transforming when the committed state moved on (another version, a
    /// checkpoint that compacted what it needs).
    pub fn start_newest_prepared(
        config: NodeConfig,
        store: FileStore,
        stages: Vec<Box<dyn Stage>>,
        prestart: Option<Prestart>,
    ) -> Result<Self, NodeError> {
        let Some(Prestart {
            version,
            mut prepared,
        }) = prestart
        else {
            return Self::start_newest(config, store, stages);
        };
        let committed = store.read()?.map(|(s, _)| s.version);
        let caught_up = match committed {
            Some(v) if v + 1 == version => prepared.catch_up(&store),
            _ => Err(NodeError::Prepare {
                version,
                reason: format!("the committed state is now at {committed:?}"),
            }),
        };
        if let Err(e) = caught_up {
            tracing::warn!(error = %e, "the prepared state is stale; the start transforms");
            return Self::start_newest(config, store, stages);
        }
        // Committed before anything is served from it; the journal then
        // starts over at the new version (`Prepared::start` replaces it).
        store.write(&prepared.snapshot()?)?;
        let running = prepared.start(Storage::of(&store, &config))?;
        let stages = stages.into_iter().map(|s| (s.version(), s)).collect();
        Ok(Self::assemble(config, store, stages, version, running))
    }

    fn assemble(
        config: NodeConfig,
        store: FileStore,
        stages: BTreeMap<u32, Box<dyn Stage>>,
        version: u32,
        running: Running,
    ) -> Self {
        let service = running.service.name();
        let served = retire(running.service, config.oldest_answered);
        let traffic = std::sync::Mutex::new(counters(&served));
        let server = Server::with_config(served, config.server.clone());
        Node {
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
                timings: std::sync::Mutex::new(Timings::default()),
                state: std::sync::Mutex::new(running.state),
                shadowed: std::sync::Mutex::new(None),
                traffic,
            }),
        }
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

    /// Serves the node on a bound listener (one from
    /// [`bind_shared`](crate::rpc::bind_shared), to take over a port).
    pub fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<Listener> {
        self.inner.server.serve_tcp(listener)
    }

    /// For each in-process upgrade so far: the version reached, and how long
    /// the node held calls back (from quiesce to switch) — its unavailable window.
    pub fn pauses(&self) -> Vec<(u32, Duration)> {
        lock(&self.inner.pauses).clone()
    }

    /// Why the node's state takes no writes, once its journal or a
    /// checkpoint failed: the node reports itself unhealthy and answers
    /// writes with `CallError::Unavailable` until it restarts.
    pub fn problem(&self) -> Option<String> {
        let state = lock(&self.inner.state).clone();
        state.and_then(|s| s.failure()).map(|why| why.to_string())
    }

    /// What the last shadowing of an upgrade saw, if one ran
    /// ([`NodeConfig::shadow`]).
    pub fn shadowed(&self) -> Option<ShadowReport> {
        lock(&self.inner.shadowed).clone()
    }

    /// This binary's stage of `version`.
    fn stage(&self, version: u32) -> Result<&dyn Stage, NodeError> {
        let stages = &self.inner.stages;
        stages
            .get(&version)
            .map(AsRef::as_ref)
            .ok_or_else(|| NodeError::NoStage {
                version,
                known: stages.keys().copied().collect(),
            })
    }

    /// Saves the current state as the committed snapshot; for a journaled
    /// state, the journal then drops what the snapshot holds. A failure
    /// makes the node unhealthy and stops it acknowledging writes (see
    /// [`Node::problem`]).
    pub async fn checkpoint(&self) -> Result<(), NodeError> {
        let current = self.inner.current.lock().await;
        self.checkpoint_with(&current).await
    }

    /// [`Node::checkpoint`] with the upgrade lock held.
    async fn checkpoint_with(&self, current: &Current) -> Result<(), NodeError> {
        let state = lock(&self.inner.state).clone();
        let saved = async {
            let snapshot = (current.snapshot)()?;
            let applied = snapshot.applied;
            // Writing and syncing the file blocks for milliseconds or more,
            // and nodes checkpoint while they serve: off the runtime's
            // threads. The lock stays held, so checkpoints commit in order.
            // So does the journal's compaction, which rewrites the entries
            // the snapshot does not hold.
            let store = self.inner.store.clone();
            let journaled = state.clone();
            blocking(move || {
                store.write(&snapshot)?;
                compacted(journaled.as_ref(), applied);
                Ok::<_, NodeError>(())
            })
            .await
        }
        .await;
        if let (Err(e), Some(state)) = (&saved, &state) {
            state.fail(&format!("a checkpoint failed: {e}"));
        }
        saved
    }
}

/// The counters of every version `service` answers, with the version of
/// the node that answers them.
fn counters(service: &Service) -> Vec<(u32, u32, Arc<CallStats>)> {
    service
        .versions()
        .filter_map(|v| service.stats(v).map(|s| (service.version(), v, s)))
        .collect()
}
