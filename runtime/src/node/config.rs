//! A node's settings and the errors of starting or upgrading it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::state::{StateError, StoreError};
use crate::upgrade::ArtifactError;

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
    /// An upgrade goes from the running version to the next, a rollback
    /// to the one before.
    #[error(
        "the node runs v{running}; it can only upgrade to v{} or roll back to v{}",
        running + 1,
        running.saturating_sub(1)
    )]
    NotNext {
        /// The version running.
        running: u32,
    },
    /// The running version's stage cannot turn its state back into the
    /// previous version's.
    #[error(
        "v{version} cannot be rolled back: its stage has no downgrade of the state; build it with \
         `durable_stage(..).reversible()`, on a state declared with #[upshift::state(rollback)]"
    )]
    NotReversible {
        /// The version running.
        version: u32,
    },
    /// Calls in flight did not finish in time; the upgrade was called off.
    #[error("{0} calls were still running after {1:?}; the upgrade was called off")]
    Busy(usize, Duration),
    /// The upgrade's artifact is unusable.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A stage failed to start, for the reason it gave.
    #[error("v{version} did not start: {reason}")]
    Start {
        /// The version.
        version: u32,
        /// Why.
        reason: String,
    },
    /// Preparing the next version in the background failed; the node stays
    /// on the version it runs.
    #[error("preparing v{version} beside the running version failed: {reason}")]
    Prepare {
        /// The version being prepared.
        version: u32,
        /// Why.
        reason: String,
    },
    /// The next version, run as a shadow before the switch, did not answer
    /// as the running version did (or saw too few calls to tell); the node
    /// stays on the version it runs.
    #[error("shadowing v{version} before switching to it failed: {reason}")]
    Shadow {
        /// The version shadowed.
        version: u32,
        /// What it answered otherwise, first; or why it could not tell.
        reason: String,
    },
    /// A stage built a service of another version than its state's.
    #[error(
        "the stage for v{state} built a service that runs v{service}; a stage's service and state must have one version"
    )]
    VersionMismatch {
        /// The version of the service the stage built.
        service: u32,
        /// The version of its state.
        state: u32,
    },
    /// The state could not be encoded for a snapshot.
    #[error("the v{version} state did not encode: {reason}")]
    EncodeState {
        /// The state's version.
        version: u32,
        /// What the encoder said.
        reason: String,
    },
    /// A restart-mode upgrade reached a node that was given no restart hook.
    #[error(
        "this node has no restart hook (`NodeConfig::restart`), so it cannot restart into the binary of v{version}"
    )]
    NoRestartHook {
        /// The version the binary runs.
        version: u32,
    },
    /// The restart hook returned instead of ending the process.
    #[error(
        "the restart hook returned without restarting into v{version}; the node keeps serving its version"
    )]
    RestartReturned {
        /// The version the binary runs.
        version: u32,
    },
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
    /// Called with the verified binary of a restart-mode upgrade before the
    /// node quiesces, so the next process can start (and bind the node's
    /// port, see [`bind_shared`](crate::rpc::bind_shared)) while this one
    /// still serves; the next process then waits for the state directory,
    /// which this one frees when it exits after [`NodeConfig::restart`].
    /// It runs off the runtime's threads and may block until the next
    /// process has bound the port (so this one never stops listening first).
    pub handover: Option<Arc<dyn Fn(std::path::PathBuf) + Send + Sync>>,
    /// Versions below this are no longer answered: their past SOs are
    /// dropped, and their callers get `VersionUnsupported`. Set it once the
    /// reported call counts show nobody calls them any more.
    pub oldest_answered: Option<u32>,
    /// Limits of the node's server: frame size, calls and reply bytes per
    /// connection, connections, timeouts.
    pub server: crate::rpc::ServerConfig,
    /// When a write to a journaled state is acknowledged
    /// ([`durable_stage`](super::durable_stage)); default: once synced.
    pub durability: crate::state::Durability,
    /// The release keys this node trusts and where it finds signed
    /// binaries. When set, a restart-mode upgrade runs only a release
    /// signed by enough of the keys, current and not expired, and never a
    /// `file:` path; when unset (development), signed releases are refused.
    pub releases: Option<ReleasePolicy>,
    /// Shadow verification of in-process upgrades: before switching, the
    /// next version runs beside the current one on a copy of the state,
    /// every call is mirrored to it for the soak, and the node switches
    /// only if the shadow answered every compared call as the current
    /// version did ([`ShadowPolicy`](super::ShadowPolicy)). Off by default.
    pub shadow: Option<super::ShadowPolicy>,
    /// Mutual TLS to the coordinator: the coordinators' CA and this node's
    /// certificate, which must name it (`upshift://node/ID`, the node's
    /// `id`). Without it the agent calls the coordinator over plain TCP.
    /// TLS on the node's own RPC is `server.tls`.
    pub coordinator_tls: Option<crate::rpc::ClientTls>,
}

/// How a node checks and fetches signed releases
/// ([`release`](crate::upgrade::release)).
#[derive(Debug, Clone)]
pub struct ReleasePolicy {
    /// The keys it trusts, and how many must sign.
    pub keys: crate::upgrade::release::ReleaseKeys,
    /// Where signed binaries are found, each named `sha256-<hex>` (a
    /// directory the deployment fills, a shared mount).
    pub source: std::path::PathBuf,
    /// Where the node keeps verified copies, and `seen`: the highest
    /// release sequence it accepted per service (rollback protection).
    pub store: std::path::PathBuf,
}

impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConfig")
            .field("id", &self.id)
            .field("group", &self.group)
            .field("heartbeat", &self.heartbeat)
            .field("quiesce_timeout", &self.quiesce_timeout)
            .field("oldest_answered", &self.oldest_answered)
            .field("server", &self.server)
            .field("durability", &self.durability)
            .field("releases", &self.releases)
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
            handover: None,
            oldest_answered: None,
            server: crate::rpc::ServerConfig::default(),
            durability: crate::state::Durability::default(),
            releases: None,
            shadow: None,
            coordinator_tls: None,
        }
    }
}
