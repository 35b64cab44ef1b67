//! The coordinator's RPC interface, declared with upshift's own macro: what
//! nodes (their agents) and operators (the CLI) call.
//!
//! v6 (the newest) adds analysis gates: heartbeats carry what the node's
//! calls did (how many, how many failed, how long they took, per version),
//! and a rollout can halt when the new version fails more calls, or answers
//! slower, than the old one (`errors:P%`, `p99:Fx`); v5 callers are served
//! through v5's past SO (their heartbeats carry no such counts, and their
//! view of gates leaves analysis gates out). v6 also adds `wait_slot`: a
//! slot request held until the schedule lets the node go, so that freed
//! slots are taken at once rather than at each node's next heartbeat.
//!
//! v5 adds `rollback`: an upgrade that is not final is
//! aborted and its upgraded nodes are taken back, with their state, by a
//! rollout on its schedule; v4 callers are served through v4's past SO.
//!
//! v4 adds gates to rollouts — another service first (`after:S@N`), an
//! operator's approval (`approval[:N]`) — with `approve` and a view of each
//! rollout's gates; v3 callers are served through v3's past SO (their calls
//! mean the same in v4).
//!
//! v3 holds each node id for one live node, carries why a node is
//! unhealthy and who asked for each change, refuses upgrades that could not
//! finish, and forgets nodes that are gone; v2 callers are served through
//! v2's past SO, v1 callers through v1's on top of it.
//!
//! v2 answers every request that the UDB could not record with a typed error
//! (never as if it had succeeded), names each way a publish or a control can
//! be refused, and returns a status view with recent history instead of the
//! whole UDB (the rest is paged by `history`). v1 callers (older agents and
//! CLIs) are served by the v2 coordinator through v1's past SO below: their
//! refusals arrive as `Disallowed` with the same message, and `status` is
//! assembled from v2's status and history pages.

pub use coordinator::*;

/// The coordinator's RPC interface.
#[crate::interface(name = "upshift.Coordinator")]
pub mod coordinator {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use crate::upgrade::{Gate, Gate6, NodeInfo, NodeState, RolloutState, ScheduleSpec, Upgrade};

    /// What a node reports on every heartbeat.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct Heartbeat {
        /// The node's id.
        pub id: String,
        /// The version it runs.
        pub version: u32,
        /// Whether its health check passes.
        pub healthy: bool,
        /// Calls served per call version so far.
        pub calls: Vec<(u32, u64)>,
    }

    /// An upgrade the node should take part in.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct Pending {
        /// The upgrade's id.
        pub upgrade: u64,
        /// The version the node runs.
        pub from: u32,
        /// The version to move to.
        pub to: u32,
        /// Where the new code is.
        pub artifact: String,
    }

    /// The answer to a slot request.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub enum Slot {
        /// Upgrade now; the slot is held until the node reports.
        Granted,
        /// Not yet, and why.
        Wait(String),
        /// The rollout is halted, and why.
        Halted(String),
        /// The upgrade is over (final or aborted) or does not apply.
        Gone(String),
    }

    /// How a node's upgrade went.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub enum Outcome {
        /// The node runs `version` now.
        Upgraded {
            /// The version it runs.
            version: u32,
        },
        /// The node stayed on its version.
        Failed {
            /// Why.
            reason: String,
        },
    }

    /// An operator's command for a rollout.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub enum Control {
        /// Grant no new slots.
        Pause,
        /// Grant slots again (also after a halt).
        Resume,
        /// Abandon the upgrade.
        Abort,
    }

    // v1's status shapes, frozen by the lock: the coordinator keeps its own
    // records (`crate::upgrade::NodeRecord`, …) and converts.

    /// v1: an upgrade as published (v2 names it [`Upgrade`]).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct UpgradeDef {
        /// Service to upgrade.
        pub service: String,
        /// Version the nodes run now.
        pub from: u32,
        /// Version they move to; always `from + 1`.
        pub to: u32,
        /// When each node may upgrade.
        pub schedule: ScheduleSpec,
        /// Where the new code is.
        pub artifact: String,
        /// Free text for operators.
        pub notes: String,
    }

    /// A node as v1's status shows it, and as v2's does.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct NodeRecord {
        /// What the node said about itself.
        pub info: NodeInfo,
        /// Where it stands.
        pub state: NodeState,
        /// Last heartbeat, Unix milliseconds.
        pub last_seen_ms: u64,
        /// Whether its latest heartbeat said its health check passes.
        pub healthy: bool,
        /// Since when it has been healthy without interruption, Unix milliseconds.
        pub healthy_since_ms: Option<u64>,
        /// When it finished its latest upgrade, Unix milliseconds.
        pub upgraded_at_ms: Option<u64>,
        /// Calls it served per call version (object and each SO chain), as reported.
        pub calls: BTreeMap<u32, u64>,
    }

    /// v1: an upgrade with its identity and progress.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct UpgradeRecord {
        /// Assigned by the coordinator, ascending.
        pub id: u64,
        /// What was published.
        pub def: UpgradeDef,
        /// Where the rollout stands.
        pub state: RolloutState,
        /// When it was published, Unix milliseconds.
        pub published_ms: u64,
    }

    /// One line of upgrade history.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct Event {
        /// Ascending sequence number, from 1.
        pub seq: u64,
        /// When, Unix milliseconds.
        pub at_ms: u64,
        /// The node concerned, if one is.
        pub node: Option<String>,
        /// The upgrade concerned, if one is.
        pub upgrade: Option<u64>,
        /// What happened, in words.
        pub what: String,
    }

    /// v1: everything the UDB holds.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct UdbContent {
        /// Nodes by id.
        pub nodes: BTreeMap<String, NodeRecord>,
        /// Upgrades by id.
        pub upgrades: BTreeMap<u64, UpgradeRecord>,
        /// History, oldest first.
        pub events: Vec<Event>,
    }

    // v2's shapes.

    /// The coordinator could not record a change in its UDB, so it made none:
    /// the request did nothing and may be sent again.
    #[derive(
        Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema, thiserror::Error,
    )]
    #[error("the coordinator could not record the change in its UDB, so nothing changed: {detail}")]
    pub struct Unrecorded {
        /// What the UDB said.
        pub detail: String,
    }

    /// Why the coordinator did not take a node's request.
    #[derive(
        Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema, thiserror::Error,
    )]
    pub enum RequestError {
        /// The UDB refused the write; nothing changed.
        #[error(transparent)]
        Unrecorded(Unrecorded),
        /// A field is longer than the coordinator keeps.
        #[error("`{field}` is {len} bytes; the coordinator accepts at most {max}")]
        TooLong {
            /// The field.
            field: String,
            /// Its limit in bytes (or entries, for lists).
            max: u32,
            /// Its length.
            len: u64,
        },
    }

    /// Why an upgrade was not published.
    #[derive(
        Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema, thiserror::Error,
    )]
    pub enum PublishError {
        /// `to` is not `from + 1`.
        #[error(
            "an upgrade moves one version at a time: v{from} -> v{to} skips a version; publish v{from} -> v{} first",
            .from.saturating_add(1)
        )]
        SkipsVersion {
            /// The published `from`.
            from: u32,
            /// The published `to`.
            to: u32,
        },
        /// The schedule names an unregistered custom schedule or impossible numbers.
        #[error("{0}")]
        Schedule(String),
        /// No node of the service is registered.
        #[error("no node of service {service:?} is registered (services with nodes: {known:?})")]
        NoNodes {
            /// The published service.
            service: String,
            /// Services that have nodes.
            known: Vec<String>,
        },
        /// The service has a rollout that is not over.
        #[error(
            "upgrade #{open} of {service} (v{from} -> v{to}) is still {state:?}; abort it or let it finish first"
        )]
        StillOpen {
            /// The open upgrade.
            open: u64,
            /// Its service.
            service: String,
            /// Its `from`.
            from: u32,
            /// Its `to`.
            to: u32,
            /// Where it stands.
            state: RolloutState,
        },
        /// The artifact is neither `in-process` nor `file:PATH?sha256=HEX`.
        #[error("{0}")]
        Artifact(String),
        /// A field is longer than the coordinator keeps.
        #[error("`{field}` is {len} bytes; the coordinator accepts at most {max}")]
        TooLong {
            /// The field.
            field: String,
            /// Its limit in bytes.
            max: u32,
            /// Its length.
            len: u64,
        },
        /// The UDB refused the write; nothing was published.
        #[error(transparent)]
        Unrecorded(Unrecorded),
    }

    /// Why an operator's command was not carried out.
    #[derive(
        Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema, thiserror::Error,
    )]
    pub enum ControlError {
        /// No upgrade has this id.
        #[error("no upgrade #{0}")]
        NoSuchUpgrade(u64),
        /// The command does not apply in the rollout's state (resume an active one, say).
        #[error("cannot {action:?} upgrade #{upgrade}: it is {state:?}")]
        NotNow {
            /// The upgrade.
            upgrade: u64,
            /// The command.
            action: Control,
            /// Where the rollout stands.
            state: RolloutState,
        },
        /// The UDB refused the write; nothing changed.
        #[error(transparent)]
        Unrecorded(Unrecorded),
    }

    /// A rollout as v2's status shows it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct RolloutStatus {
        /// Assigned by the coordinator, ascending.
        pub id: u64,
        /// What was published.
        pub upgrade: Upgrade,
        /// Where the rollout stands.
        pub state: RolloutState,
        /// When it was published, Unix milliseconds.
        pub published_ms: u64,
    }

    /// What v2's `status` returns: every node and rollout, and the newest
    /// events; older events are paged with `history`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct StatusView {
        /// Nodes by id.
        pub nodes: BTreeMap<String, NodeRecord>,
        /// Rollouts by id.
        pub rollouts: BTreeMap<u64, RolloutStatus>,
        /// The newest events, oldest first (at most [`RECENT_EVENTS`]).
        pub recent: Vec<Event>,
        /// How many events the history holds in all.
        pub events: u64,
        /// Why the UDB refused the latest write, while writes fail: the
        /// coordinator is unhealthy and records nothing until one succeeds.
        pub udb_failing: Option<String>,
    }

    // v3's shapes.

    /// What a node reports on every heartbeat, from v3: also where it
    /// serves (so a second process started with its id is told apart) and
    /// why it is unhealthy.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct Heartbeat3 {
        /// The node's id.
        pub id: String,
        /// Where it serves calls, as it registered.
        pub address: String,
        /// The version it runs.
        pub version: u32,
        /// Whether its health check passes.
        pub healthy: bool,
        /// Why it is unhealthy (its state takes no writes, its check fails).
        pub problem: Option<String>,
        /// Calls served per call version so far.
        pub calls: Vec<(u32, u64)>,
    }

    /// A node as v3's status shows it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct NodeView {
        /// What the node said about itself.
        pub info: NodeInfo,
        /// Where it stands.
        pub state: NodeState,
        /// Last heartbeat, Unix milliseconds.
        pub last_seen_ms: u64,
        /// Whether its latest heartbeat said its health check passes.
        pub healthy: bool,
        /// Why it is unhealthy, as it said (nodes on v2 agents do not say).
        pub problem: Option<String>,
        /// Since when it has been healthy without interruption, Unix milliseconds.
        pub healthy_since_ms: Option<u64>,
        /// When it finished its latest upgrade, Unix milliseconds.
        pub upgraded_at_ms: Option<u64>,
        /// Calls it served per call version (object and each SO chain), as reported.
        pub calls: BTreeMap<u32, u64>,
    }

    /// One line of upgrade history, from v3 with who asked for it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct Event3 {
        /// Ascending sequence number, from 1.
        pub seq: u64,
        /// When, Unix milliseconds.
        pub at_ms: u64,
        /// The node concerned, if one is.
        pub node: Option<String>,
        /// The upgrade concerned, if one is.
        pub upgrade: Option<u64>,
        /// What happened, in words.
        pub what: String,
        /// Who asked for it (`operator alice`), from the caller's
        /// certificate; `None` for what the coordinator did by itself (an
        /// expired slot) and for callers without TLS.
        pub by: Option<String>,
    }

    /// What v3's `status` returns.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct StatusView3 {
        /// Nodes by id.
        pub nodes: BTreeMap<String, NodeView>,
        /// Rollouts by id.
        pub rollouts: BTreeMap<u64, RolloutStatus>,
        /// The newest events, oldest first (at most [`RECENT_EVENTS`]).
        pub recent: Vec<Event3>,
        /// How many events the history holds in all.
        pub events: u64,
        /// Why the UDB refused the latest write, while writes fail.
        pub udb_failing: Option<String>,
    }

    /// Why the coordinator did not take a node's request (v3).
    #[derive(
        Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema, thiserror::Error,
    )]
    pub enum RequestError3 {
        /// The UDB refused the write; nothing changed.
        #[error(transparent)]
        Unrecorded(Unrecorded),
        /// A field is longer than the coordinator keeps.
        #[error("`{field}` is {len} bytes; the coordinator accepts at most {max}")]
        TooLong {
            /// The field.
            field: String,
            /// Its limit in bytes (or entries, for lists).
            max: u32,
            /// Its length.
            len: u64,
        },
        /// Another live node is registered with this id.
        #[error(
            "node id {id:?} is taken by a live node at {address} (heard from {heard_ms_ago} ms ago): \
             give this node another id; the id is freed once that node has been silent for \
             {within_ms} ms or is forgotten (`upshift forget {id}`)"
        )]
        DuplicateNode {
            /// The id asked for.
            id: String,
            /// Where the node that holds it serves.
            address: String,
            /// When the holder was last heard from.
            heard_ms_ago: u64,
            /// How long a holder must be silent for its id to be taken.
            within_ms: u64,
        },
        /// No node is registered with this id (it was forgotten, or never
        /// registered): register first.
        #[error(
            "node {0:?} is not registered (it was forgotten, or never registered); register it again"
        )]
        NotRegistered(String),
    }

    /// Why an upgrade was not published (v3).
    #[derive(
        Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema, thiserror::Error,
    )]
    pub enum PublishError3 {
        /// Every refusal of v2.
        #[error(transparent)]
        V2(PublishError),
        /// Not every node could reach `to` through this upgrade: none runs
        /// `from`, or some run an older version (which could then take no
        /// upgrade while this one is open).
        #[error(
            "no rollout of {service} v{from} -> v{to} could finish: its nodes run {}; every node \
             must run v{from} (or v{to} already){}",
            show_running(.running),
            behind_hint(.running, *.from)
        )]
        Untakeable {
            /// The published service.
            service: String,
            /// The published `from`.
            from: u32,
            /// The published `to`.
            to: u32,
            /// (version, how many of the service's nodes run it), ascending.
            running: Vec<(u32, u64)>,
        },
    }

    /// "v1 (3 nodes), v2 (1 node)".
    fn show_running(running: &[(u32, u64)]) -> String {
        let parts: Vec<String> = running
            .iter()
            .map(|(v, n)| format!("v{v} ({n} node{})", if *n == 1 { "" } else { "s" }))
            .collect();
        parts.join(", ")
    }

    /// What to do when nodes run a version older than `from`.
    fn behind_hint(running: &[(u32, u64)], from: u32) -> &'static str {
        if running.iter().any(|(v, _)| *v < from) {
            ": upgrade the older nodes first, or forget those that are gone (`upshift forget NODE`)"
        } else {
            ""
        }
    }

    /// Why a node was not forgotten.
    #[derive(
        Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema, thiserror::Error,
    )]
    pub enum ForgetError {
        /// No node has this id.
        #[error("no node {0:?} is registered")]
        NoSuchNode(String),
        /// The node is alive: it would register again at its next heartbeat.
        #[error(
            "node {node:?} was heard from {heard_ms_ago} ms ago; only a node silent for {within_ms} ms \
             can be forgotten: stop it first"
        )]
        StillHeard {
            /// The node.
            node: String,
            /// When it was last heard from.
            heard_ms_ago: u64,
            /// How long it must be silent.
            within_ms: u64,
        },
        /// The UDB refused the write; nothing changed.
        #[error(transparent)]
        Unrecorded(Unrecorded),
    }

    /// A rollout's gates as v4's `gates` shows them.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct GateView {
        /// What the rollout waits on besides its schedule.
        pub gates: Vec<Gate>,
        /// When an operator approved it, Unix milliseconds.
        pub approved_ms: Option<u64>,
        /// Who approved it, when their certificate named them.
        pub approved_by: Option<String>,
        /// What a gate holds the rollout's nodes for now, while it is open.
        pub waiting: Option<String>,
    }

    /// Why an approval was not taken (v4).
    #[derive(
        Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema, thiserror::Error,
    )]
    pub enum ApproveError {
        /// No upgrade has this id.
        #[error("no upgrade #{0}")]
        NoSuchUpgrade(u64),
        /// The upgrade was published without an approval gate.
        #[error("upgrade #{0} has no approval gate: there is nothing to approve")]
        NoApprovalGate(u64),
        /// The rollout is over.
        #[error("upgrade #{upgrade} is {state:?}: there is nothing to approve")]
        NotNow {
            /// The upgrade.
            upgrade: u64,
            /// Where the rollout stands.
            state: RolloutState,
        },
        /// Approved before.
        #[error("upgrade #{upgrade} was approved already (at {at_ms}{})", by.as_ref().map(|b| format!(", by {b}")).unwrap_or_default())]
        AlreadyApproved {
            /// The upgrade.
            upgrade: u64,
            /// When.
            at_ms: u64,
            /// By whom.
            by: Option<String>,
        },
        /// The UDB refused the write; nothing changed.
        #[error(transparent)]
        Unrecorded(Unrecorded),
    }

    /// Why a rollback was not started (v5).
    #[derive(
        Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema, thiserror::Error,
    )]
    pub enum RollbackError {
        /// No upgrade has this id.
        #[error("no upgrade #{0}")]
        NoSuchUpgrade(u64),
        /// The upgrade is final: every node runs its new version, and the
        /// window for a rollback is closed.
        #[error(
            "upgrade #{upgrade} is final: every node runs v{to}, and a final upgrade is not rolled back \
             (to keep the window open after the last node, publish with an approval gate over every node: \
             the rollout stays open until `upshift approve`)"
        )]
        Final {
            /// The upgrade.
            upgrade: u64,
            /// The version every node runs.
            to: u32,
        },
        /// The upgrade was aborted, or rolled back already.
        #[error("upgrade #{upgrade} is {state:?}: there is nothing to roll back")]
        NotNow {
            /// The upgrade.
            upgrade: u64,
            /// Where it stands.
            state: RolloutState,
        },
        /// The upgrade is itself a rollback.
        #[error("upgrade #{0} is a rollback; publish the upgrade again to go forward")]
        IsRollback(u64),
        /// The UDB refused the write; nothing changed.
        #[error(transparent)]
        Unrecorded(Unrecorded),
    }

    // v6's shapes.

    /// What a node's calls of one version did since the node started (v6).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct Traffic {
        /// The version the node ran when it answered them.
        pub node_version: u32,
        /// The calls' version: the node's own (its object answered), older
        /// (past SOs) or newer (future SOs).
        pub call_version: u32,
        /// Calls that ran.
        pub calls: u64,
        /// Of them, calls answered with an error ([`crate::rpc::stats::CallCounts::errors`]).
        pub errors: u64,
        /// Calls per latency bucket ([`crate::rpc::stats::bucket_bound`]),
        /// trailing empty buckets left out; at most
        /// [`crate::rpc::stats::LATENCY_BUCKETS`].
        pub latency: Vec<u64>,
    }

    /// What a node reports on every heartbeat, from v6: v3's and what its
    /// calls did.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct Heartbeat6 {
        /// The node's id.
        pub id: String,
        /// Where it serves calls, as it registered.
        pub address: String,
        /// The version it runs.
        pub version: u32,
        /// Whether its health check passes.
        pub healthy: bool,
        /// Why it is unhealthy (its state takes no writes, its check fails).
        pub problem: Option<String>,
        /// Calls served per call version at the version it runs.
        pub calls: Vec<(u32, u64)>,
        /// What its calls did, per version it ran and call version (at
        /// most [`MAX_CALL_COUNTS`] entries).
        pub traffic: Vec<Traffic>,
    }

    /// What the nodes of a service served at one version, added up, as an
    /// analysis gate judges it (v6).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct Cohort {
        /// The version the nodes ran.
        pub version: u32,
        /// Calls they served.
        pub calls: u64,
        /// Of them, calls answered with an error.
        pub errors: u64,
        /// Their p99 latency in microseconds (a latency bucket's bound),
        /// if they served any.
        pub p99_us: Option<u64>,
    }

    /// A rollout's gates as v6's `gates` shows them.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct GateView6 {
        /// What the rollout waits on besides its schedule.
        pub gates: Vec<Gate6>,
        /// When an operator approved it, Unix milliseconds.
        pub approved_ms: Option<u64>,
        /// Who approved it, when their certificate named them.
        pub approved_by: Option<String>,
        /// What a gate holds the rollout's nodes for now, while it is open.
        pub waiting: Option<String>,
        /// With analysis gates: what the new version (first) and the old
        /// one served, as the gates judge it now.
        pub cohorts: Vec<Cohort>,
    }

    /// The longest node id, group, service name or address the coordinator keeps.
    pub const MAX_NAME: usize = 255;
    /// The longest reason, note or artifact the coordinator keeps.
    pub const MAX_TEXT: usize = 4096;
    /// The most per-version call counts, or traffic entries, a heartbeat carries.
    pub const MAX_CALL_COUNTS: usize = 1024;

    /// The longest a `wait_slot` call is held (v6).
    pub const MAX_SLOT_WAIT_MS: u32 = 10_000;

    /// How many of the newest events v2's `status` includes.
    pub const RECENT_EVENTS: usize = 20;
    /// The most events one `history` page holds.
    pub const MAX_HISTORY_PAGE: u32 = 1000;

    /// v1 of the coordinator's interface.
    #[version(1)]
    pub trait Coordinator {
        /// Records a node (again, after a restart).
        async fn register(&self, node: NodeInfo);
        /// Reports liveness, health and call counts; returns the upgrade the
        /// node should take part in, if any.
        async fn heartbeat(&self, beat: Heartbeat) -> Option<Pending>;
        /// Asks for a slot to upgrade now.
        async fn request_slot(&self, node: String, upgrade: u64) -> Slot;
        /// Reports how the node's upgrade went.
        async fn report(&self, node: String, upgrade: u64, outcome: Outcome);
        /// Publishes an upgrade; returns its id.
        async fn publish(&self, upgrade: UpgradeDef) -> Result<u64, String>;
        /// Pauses, resumes or aborts a rollout.
        async fn control(&self, upgrade: u64, action: Control) -> Result<(), String>;
        /// Everything the UDB holds.
        async fn status(&self) -> UdbContent;
    }

    /// v2: typed errors; a request the UDB could not record fails; status
    /// is a view with recent history, older history is paged.
    #[version(2)]
    pub trait Coordinator {
        /// Records a node (again, after a restart).
        async fn register(&self, node: NodeInfo) -> Result<(), RequestError>;
        /// Reports liveness, health and call counts; returns the upgrade the
        /// node should take part in, if any.
        async fn heartbeat(&self, beat: Heartbeat) -> Result<Option<Pending>, RequestError>;
        /// Asks for a slot to upgrade now.
        async fn request_slot(&self, node: String, upgrade: u64) -> Result<Slot, RequestError>;
        /// Reports how the node's upgrade went.
        async fn report(
            &self,
            node: String,
            upgrade: u64,
            outcome: Outcome,
        ) -> Result<(), RequestError>;
        /// Publishes an upgrade; returns its id.
        async fn publish(&self, upgrade: Upgrade) -> Result<u64, PublishError>;
        /// Pauses, resumes or aborts a rollout.
        async fn control(&self, upgrade: u64, action: Control) -> Result<(), ControlError>;
        /// Every node and rollout, and the newest events.
        async fn status(&self) -> StatusView;
        /// Up to `limit` events (at most [`MAX_HISTORY_PAGE`]) with a
        /// sequence number above `after`, oldest first.
        async fn history(&self, after: u64, limit: u32) -> Vec<Event>;
    }

    /// v3: a node id is held by one live node; heartbeats say where the
    /// node serves and why it is unhealthy; events say who asked; publish
    /// refuses an upgrade that could not finish; nodes that are gone can be
    /// forgotten.
    #[version(3)]
    pub trait Coordinator {
        /// Records a node (again, after a restart); refused while another
        /// live node holds its id.
        async fn register(&self, node: NodeInfo) -> Result<(), RequestError3>;
        /// Reports liveness, health (and why not) and call counts; returns
        /// the upgrade the node should take part in, if any.
        async fn heartbeat(&self, beat: Heartbeat3) -> Result<Option<Pending>, RequestError3>;
        /// Asks for a slot to upgrade now.
        async fn request_slot(&self, node: String, upgrade: u64) -> Result<Slot, RequestError3>;
        /// Reports how the node's upgrade went.
        async fn report(
            &self,
            node: String,
            upgrade: u64,
            outcome: Outcome,
        ) -> Result<(), RequestError3>;
        /// Publishes an upgrade; returns its id.
        async fn publish(&self, upgrade: Upgrade) -> Result<u64, PublishError3>;
        /// Pauses, resumes or aborts a rollout.
        async fn control(&self, upgrade: u64, action: Control) -> Result<(), ControlError>;
        /// Every node and rollout, and the newest events.
        async fn status(&self) -> StatusView3;
        /// Up to `limit` events (at most [`MAX_HISTORY_PAGE`]) with a
        /// sequence number above `after`, oldest first.
        async fn history(&self, after: u64, limit: u32) -> Vec<Event3>;
        /// Removes a node that is gone for good (silent for longer than the
        /// coordinator's liveness window), so it no longer holds a rollout
        /// open or its id; recorded in the history.
        async fn forget(&self, node: String) -> Result<(), ForgetError>;
    }

    /// v4: rollouts with gates — after another service, an operator's
    /// approval — and `approve`.
    #[version(4)]
    pub trait Coordinator {
        /// Records a node (again, after a restart); refused while another
        /// live node holds its id.
        async fn register(&self, node: NodeInfo) -> Result<(), RequestError3>;
        /// Reports liveness, health (and why not) and call counts; returns
        /// the upgrade the node should take part in, if any.
        async fn heartbeat(&self, beat: Heartbeat3) -> Result<Option<Pending>, RequestError3>;
        /// Asks for a slot to upgrade now.
        async fn request_slot(&self, node: String, upgrade: u64) -> Result<Slot, RequestError3>;
        /// Reports how the node's upgrade went.
        async fn report(
            &self,
            node: String,
            upgrade: u64,
            outcome: Outcome,
        ) -> Result<(), RequestError3>;
        /// Publishes an upgrade; returns its id.
        async fn publish(&self, upgrade: Upgrade) -> Result<u64, PublishError3>;
        /// Publishes an upgrade whose nodes also wait on `gates`.
        async fn publish_gated(
            &self,
            upgrade: Upgrade,
            gates: Vec<Gate>,
        ) -> Result<u64, PublishError3>;
        /// Approves a rollout its approval gate holds.
        async fn approve(&self, upgrade: u64) -> Result<(), ApproveError>;
        /// Pauses, resumes or aborts a rollout.
        async fn control(&self, upgrade: u64, action: Control) -> Result<(), ControlError>;
        /// Every node and rollout, and the newest events.
        async fn status(&self) -> StatusView3;
        /// The gates of every rollout published with some.
        async fn gates(&self) -> BTreeMap<u64, GateView>;
        /// Up to `limit` events (at most [`MAX_HISTORY_PAGE`]) with a
        /// sequence number above `after`, oldest first.
        async fn history(&self, after: u64, limit: u32) -> Vec<Event3>;
        /// Removes a node that is gone for good (silent for longer than the
        /// coordinator's liveness window), so it no longer holds a rollout
        /// open or its id; recorded in the history.
        async fn forget(&self, node: String) -> Result<(), ForgetError>;
    }

    /// v5: `rollback`, which takes the nodes of an upgrade that is not
    /// final back to its previous version, with their state.
    #[version(5)]
    pub trait Coordinator {
        /// Records a node (again, after a restart); refused while another
        /// live node holds its id.
        async fn register(&self, node: NodeInfo) -> Result<(), RequestError3>;
        /// Reports liveness, health (and why not) and call counts; returns
        /// the upgrade the node should take part in, if any.
        async fn heartbeat(&self, beat: Heartbeat3) -> Result<Option<Pending>, RequestError3>;
        /// Asks for a slot to upgrade now.
        async fn request_slot(&self, node: String, upgrade: u64) -> Result<Slot, RequestError3>;
        /// Reports how the node's upgrade went.
        async fn report(
            &self,
            node: String,
            upgrade: u64,
            outcome: Outcome,
        ) -> Result<(), RequestError3>;
        /// Publishes an upgrade; returns its id.
        async fn publish(&self, upgrade: Upgrade) -> Result<u64, PublishError3>;
        /// Publishes an upgrade whose nodes also wait on `gates`.
        async fn publish_gated(
            &self,
            upgrade: Upgrade,
            gates: Vec<Gate>,
        ) -> Result<u64, PublishError3>;
        /// Rolls an upgrade that is not final back: it is aborted, and a
        /// rollout on its schedule takes the upgraded nodes back to its
        /// `from`; returns that rollout's id.
        async fn rollback(&self, upgrade: u64) -> Result<u64, RollbackError>;
        /// Approves a rollout its approval gate holds.
        async fn approve(&self, upgrade: u64) -> Result<(), ApproveError>;
        /// Pauses, resumes or aborts a rollout.
        async fn control(&self, upgrade: u64, action: Control) -> Result<(), ControlError>;
        /// Every node and rollout, and the newest events.
        async fn status(&self) -> StatusView3;
        /// The gates of every rollout published with some.
        async fn gates(&self) -> BTreeMap<u64, GateView>;
        /// Up to `limit` events (at most [`MAX_HISTORY_PAGE`]) with a
        /// sequence number above `after`, oldest first.
        async fn history(&self, after: u64, limit: u32) -> Vec<Event3>;
        /// Removes a node that is gone for good (silent for longer than the
        /// coordinator's liveness window), so it no longer holds a rollout
        /// open or its id; recorded in the history.
        async fn forget(&self, node: String) -> Result<(), ForgetError>;
    }

    /// v6: heartbeats say what the node's calls did, and rollouts take
    /// analysis gates that judge the new version by them; a node waiting
    /// for a slot can be answered as soon as one frees.
    #[version(6)]
    pub trait Coordinator {
        /// Records a node (again, after a restart); refused while another
        /// live node holds its id.
        async fn register(&self, node: NodeInfo) -> Result<(), RequestError3>;
        /// Reports liveness, health (and why not) and what its calls did; returns
        /// the upgrade the node should take part in, if any.
        async fn heartbeat(&self, beat: Heartbeat6) -> Result<Option<Pending>, RequestError3>;
        /// Asks for a slot to upgrade now.
        async fn request_slot(&self, node: String, upgrade: u64) -> Result<Slot, RequestError3>;
        /// Asks for a slot to upgrade now and, while the answer is to wait,
        /// waits up to `wait_ms` (at most [`MAX_SLOT_WAIT_MS`]) for the
        /// schedule to let the node go: a freed slot is taken at once
        /// instead of at the node's next heartbeat.
        async fn wait_slot(
            &self,
            node: String,
            upgrade: u64,
            wait_ms: u32,
        ) -> Result<Slot, RequestError3>;
        /// Reports how the node's upgrade went.
        async fn report(
            &self,
            node: String,
            upgrade: u64,
            outcome: Outcome,
        ) -> Result<(), RequestError3>;
        /// Publishes an upgrade; returns its id.
        async fn publish(&self, upgrade: Upgrade) -> Result<u64, PublishError3>;
        /// Publishes an upgrade whose nodes also wait on `gates`.
        async fn publish_gated(
            &self,
            upgrade: Upgrade,
            gates: Vec<Gate6>,
        ) -> Result<u64, PublishError3>;
        /// Rolls an upgrade that is not final back: it is aborted, and a
        /// rollout on its schedule takes the upgraded nodes back to its
        /// `from`; returns that rollout's id.
        async fn rollback(&self, upgrade: u64) -> Result<u64, RollbackError>;
        /// Approves a rollout its approval gate holds.
        async fn approve(&self, upgrade: u64) -> Result<(), ApproveError>;
        /// Pauses, resumes or aborts a rollout.
        async fn control(&self, upgrade: u64, action: Control) -> Result<(), ControlError>;
        /// Every node and rollout, and the newest events.
        async fn status(&self) -> StatusView3;
        /// The gates of every rollout published with some.
        async fn gates(&self) -> BTreeMap<u64, GateView6>;
        /// Up to `limit` events (at most [`MAX_HISTORY_PAGE`]) with a
        /// sequence number above `after`, oldest first.
        async fn history(&self, after: u64, limit: u32) -> Vec<Event3>;
        /// Removes a node that is gone for good (silent for longer than the
        /// coordinator's liveness window), so it no longer holds a rollout
        /// open or its id; recorded in the history.
        async fn forget(&self, node: String) -> Result<(), ForgetError>;
    }
}

use crate::error::Disallowed;
use crate::upgrade::{Gate, Gate6, NodeInfo, Upgrade};
use std::collections::BTreeMap;

/// Refusals reach v1 callers as `Disallowed` with the v2 message.
fn refused(e: impl std::fmt::Display) -> Disallowed {
    Disallowed::new(e.to_string())
}

impl From<UpgradeDef> for crate::upgrade::Upgrade {
    fn from(d: UpgradeDef) -> Self {
        crate::upgrade::Upgrade {
            service: d.service,
            from: d.from,
            to: d.to,
            schedule: d.schedule,
            artifact: d.artifact,
            notes: d.notes,
        }
    }
}

impl From<crate::upgrade::Upgrade> for UpgradeDef {
    fn from(u: crate::upgrade::Upgrade) -> Self {
        UpgradeDef {
            service: u.service,
            from: u.from,
            to: u.to,
            schedule: u.schedule,
            artifact: u.artifact,
            notes: u.notes,
        }
    }
}

// v1 callers on the v2 coordinator. Every method changed its return type,
// so each is written out; the v1 contract (no error, or a `String`) is kept
// by turning v2's typed errors into `Disallowed`, never into silent success.
impl<N: v2::Interface> v1::Past for v1::PastSo<N> {
    async fn register(&self, node: NodeInfo) -> Result<(), Disallowed> {
        self.next.register(node).await?.map_err(refused)
    }

    async fn heartbeat(&self, beat: Heartbeat) -> Result<Option<Pending>, Disallowed> {
        self.next.heartbeat(beat).await?.map_err(refused)
    }

    async fn request_slot(&self, node: String, upgrade: u64) -> Result<Slot, Disallowed> {
        self.next
            .request_slot(node, upgrade)
            .await?
            .map_err(refused)
    }

    async fn report(&self, node: String, upgrade: u64, outcome: Outcome) -> Result<(), Disallowed> {
        self.next
            .report(node, upgrade, outcome)
            .await?
            .map_err(refused)
    }

    async fn publish(&self, upgrade: UpgradeDef) -> Result<Result<u64, String>, Disallowed> {
        Ok(self
            .next
            .publish(upgrade.into())
            .await?
            .map_err(|e| e.to_string()))
    }

    async fn control(
        &self,
        upgrade: u64,
        action: Control,
    ) -> Result<Result<(), String>, Disallowed> {
        Ok(self
            .next
            .control(upgrade, action)
            .await?
            .map_err(|e| e.to_string()))
    }

    /// v1's whole content: v2's view plus every page of history.
    async fn status(&self) -> Result<UdbContent, Disallowed> {
        let view = self.next.status().await?;
        let mut events = Vec::with_capacity(view.events as usize);
        loop {
            let after = events.last().map_or(0, |e: &Event| e.seq);
            let page = self.next.history(after, MAX_HISTORY_PAGE).await?;
            if page.is_empty() {
                break;
            }
            events.extend(page);
        }
        Ok(UdbContent {
            nodes: view.nodes,
            upgrades: view
                .rollouts
                .into_values()
                .map(|r| {
                    let record = UpgradeRecord {
                        id: r.id,
                        def: r.upgrade.into(),
                        state: r.state,
                        published_ms: r.published_ms,
                    };
                    (r.id, record)
                })
                .collect(),
            events,
        })
    }
}

/// v3's refusals of a node reach v2 callers as v2's where v2 has them, as
/// `Disallowed` with the v3 message where not (a duplicate id, a forgotten
/// node): refused either way, never taken silently.
fn request_v2(e: RequestError3) -> Result<RequestError, Disallowed> {
    match e {
        RequestError3::Unrecorded(u) => Ok(RequestError::Unrecorded(u)),
        RequestError3::TooLong { field, max, len } => Ok(RequestError::TooLong { field, max, len }),
        other => Err(refused(other)),
    }
}

/// A v3 answer for a v2 caller: v2's error where it has one.
fn answer_v2<T>(answer: Result<T, RequestError3>) -> Result<Result<T, RequestError>, Disallowed> {
    match answer {
        Ok(t) => Ok(Ok(t)),
        Err(e) => request_v2(e).map(Err),
    }
}

/// v3 named the caller in a field; v2 callers read it in the words, as
/// v2 coordinators wrote it.
fn event_v2(e: Event3) -> Event {
    Event {
        seq: e.seq,
        at_ms: e.at_ms,
        node: e.node,
        upgrade: e.upgrade,
        what: match e.by {
            Some(by) => format!("{} (on a call by {by})", e.what),
            None => e.what,
        },
    }
}

// v2 callers (agents and CLIs of the previous release) on the v3
// coordinator. `control` is unchanged and forwarded by the macro.
impl<N: v3::Interface> v2::Past for v2::PastSo<N> {
    async fn register(&self, node: NodeInfo) -> Result<Result<(), RequestError>, Disallowed> {
        answer_v2(self.next.register(node).await?)
    }

    /// A v2 heartbeat does not say where the node serves: it is taken as
    /// from the registered node (the id's holder was checked at register).
    async fn heartbeat(
        &self,
        beat: Heartbeat,
    ) -> Result<Result<Option<Pending>, RequestError>, Disallowed> {
        let beat = Heartbeat3 {
            id: beat.id,
            address: String::new(),
            version: beat.version,
            healthy: beat.healthy,
            problem: None,
            calls: beat.calls,
        };
        answer_v2(self.next.heartbeat(beat).await?)
    }

    async fn request_slot(
        &self,
        node: String,
        upgrade: u64,
    ) -> Result<Result<Slot, RequestError>, Disallowed> {
        answer_v2(self.next.request_slot(node, upgrade).await?)
    }

    async fn report(
        &self,
        node: String,
        upgrade: u64,
        outcome: Outcome,
    ) -> Result<Result<(), RequestError>, Disallowed> {
        answer_v2(self.next.report(node, upgrade, outcome).await?)
    }

    async fn publish(&self, upgrade: Upgrade) -> Result<Result<u64, PublishError>, Disallowed> {
        match self.next.publish(upgrade).await? {
            Ok(id) => Ok(Ok(id)),
            Err(PublishError3::V2(e)) => Ok(Err(e)),
            Err(other) => Err(refused(other)),
        }
    }

    async fn status(&self) -> Result<StatusView, Disallowed> {
        let view = self.next.status().await?;
        Ok(StatusView {
            nodes: view
                .nodes
                .into_iter()
                .map(|(id, n)| {
                    let record = NodeRecord {
                        info: n.info,
                        state: n.state,
                        last_seen_ms: n.last_seen_ms,
                        healthy: n.healthy,
                        healthy_since_ms: n.healthy_since_ms,
                        upgraded_at_ms: n.upgraded_at_ms,
                        calls: n.calls,
                    };
                    (id, record)
                })
                .collect(),
            rollouts: view.rollouts,
            recent: view.recent.into_iter().map(event_v2).collect(),
            events: view.events,
            udb_failing: view.udb_failing,
        })
    }

    async fn history(&self, after: u64, limit: u32) -> Result<Vec<Event>, Disallowed> {
        let page = self.next.history(after, limit).await?;
        Ok(page.into_iter().map(event_v2).collect())
    }
}

/// v3's calls mean the same in v4, and v4's in v5: the macro's default
/// methods pass each on as it is.
impl<N: v4::Interface> v3::Past for v3::PastSo<N> {}

impl<N: v5::Interface> v4::Past for v4::PastSo<N> {}

/// v5's calls mean the same in v6 but for three: a v5 heartbeat carries no
/// traffic (so its node is not part of any analysis), gates come as v6's,
/// and v5's view of gates leaves out the analysis gates it cannot show.
impl<N: v6::Interface> v5::Past for v5::PastSo<N> {
    async fn heartbeat(
        &self,
        beat: Heartbeat3,
    ) -> Result<Result<Option<Pending>, RequestError3>, Disallowed> {
        self.next.heartbeat(beat.into()).await
    }

    async fn publish_gated(
        &self,
        upgrade: Upgrade,
        gates: Vec<Gate>,
    ) -> Result<Result<u64, PublishError3>, Disallowed> {
        let gates = gates.into_iter().map(Gate6::from).collect();
        self.next.publish_gated(upgrade, gates).await
    }

    async fn gates(&self) -> Result<BTreeMap<u64, GateView>, Disallowed> {
        let views = self.next.gates().await?;
        Ok(views
            .into_iter()
            .map(|(id, v)| {
                let view = GateView {
                    gates: v
                        .gates
                        .into_iter()
                        .filter_map(|g| Gate::try_from(g).ok())
                        .collect(),
                    approved_ms: v.approved_ms,
                    approved_by: v.approved_by,
                    waiting: v.waiting,
                };
                (id, view)
            })
            .collect())
    }
}

/// A v3 heartbeat as v6 takes it: without traffic, so its node is not
/// part of any analysis.
impl From<Heartbeat3> for Heartbeat6 {
    fn from(b: Heartbeat3) -> Self {
        Heartbeat6 {
            id: b.id,
            address: b.address,
            version: b.version,
            healthy: b.healthy,
            problem: b.problem,
            calls: b.calls,
            traffic: Vec::new(),
        }
    }
}

/// A heartbeat for a coordinator older than v6: its traffic left out.
impl From<Heartbeat6> for Heartbeat3 {
    fn from(b: Heartbeat6) -> Self {
        Heartbeat3 {
            id: b.id,
            address: b.address,
            version: b.version,
            healthy: b.healthy,
            problem: b.problem,
            calls: b.calls,
        }
    }
}

/// "v2: 240 calls, 1 failed (0.42%), p99 3.1 ms".
impl std::fmt::Display for Cohort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}: {} calls", self.version, self.calls)?;
        if self.calls > 0 {
            let share = self.errors as f64 * 100.0 / self.calls as f64;
            write!(f, ", {} failed ({share:.2}%)", self.errors)?;
        }
        if let Some(us) = self.p99_us {
            write!(f, ", p99 {:.1} ms", us as f64 / 1000.0)?;
        }
        Ok(())
    }
}

impl From<crate::upgrade::NodeRecord> for NodeView {
    fn from(n: crate::upgrade::NodeRecord) -> Self {
        NodeView {
            info: n.info,
            state: n.state,
            last_seen_ms: n.last_seen_ms,
            healthy: n.healthy,
            problem: n.problem,
            healthy_since_ms: n.healthy_since_ms,
            upgraded_at_ms: n.upgraded_at_ms,
            calls: n.calls,
        }
    }
}

/// A node as v3's status shows it, as the coordinator keeps it: for a dry
/// run of a schedule ([`crate::schedule::plan`]) on a status.
impl From<NodeView> for crate::upgrade::NodeRecord {
    fn from(n: NodeView) -> Self {
        crate::upgrade::NodeRecord {
            info: n.info,
            state: n.state,
            last_seen_ms: n.last_seen_ms,
            healthy: n.healthy,
            problem: n.problem,
            healthy_since_ms: n.healthy_since_ms,
            upgraded_at_ms: n.upgraded_at_ms,
            calls: n.calls,
        }
    }
}

impl From<crate::upgrade::UpgradeRecord> for RolloutStatus {
    fn from(r: crate::upgrade::UpgradeRecord) -> Self {
        RolloutStatus {
            id: r.id,
            upgrade: r.def,
            state: r.state,
            published_ms: r.published_ms,
        }
    }
}

impl From<crate::upgrade::Event> for Event3 {
    fn from(e: crate::upgrade::Event) -> Self {
        Event3 {
            seq: e.seq,
            at_ms: e.at_ms,
            node: e.node,
            upgrade: e.upgrade,
            what: e.what,
            by: e.by,
        }
    }
}
