//! The coordinator's RPC interface, declared with upshift's own macro: what
//! nodes (their agents) and operators (the CLI) call.
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

    use crate::upgrade::{NodeInfo, NodeState, RolloutState, ScheduleSpec, Upgrade};

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

    /// The longest node id, group, service name or address the coordinator keeps.
    pub const MAX_NAME: usize = 255;
    /// The longest reason, note or artifact the coordinator keeps.
    pub const MAX_TEXT: usize = 4096;
    /// The most per-version call counts a heartbeat carries.
    pub const MAX_CALL_COUNTS: usize = 1024;

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
}

use crate::error::Disallowed;
use crate::upgrade::NodeInfo;

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

impl From<crate::upgrade::NodeRecord> for NodeRecord {
    fn from(n: crate::upgrade::NodeRecord) -> Self {
        NodeRecord {
            info: n.info,
            state: n.state,
            last_seen_ms: n.last_seen_ms,
            healthy: n.healthy,
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

impl From<crate::upgrade::Event> for Event {
    fn from(e: crate::upgrade::Event) -> Self {
        Event {
            seq: e.seq,
            at_ms: e.at_ms,
            node: e.node,
            upgrade: e.upgrade,
            what: e.what,
        }
    }
}
