//! The glossary's upgrade and everything nodes, operators and the
//! coordinator exchange about it: data only, no behaviour beyond parsing and
//! checking (a release's signatures, an artifact's digest).
//!
//! The coordinator's RPC interface ([`api`]) is declared here too, with
//! upshift's own macro, so nodes (`node`) and the coordinator
//! (`coordinator`) both depend on it and never on each other. The records
//! here are what the coordinator keeps; the API has shapes of its own (v1's
//! are frozen by the lock), so a stored field can change without changing a
//! released interface.

pub mod api;
pub mod artifact;
mod coordinators;
mod node;
pub mod release;
pub mod schedule_spec;

use serde::{Deserialize, Serialize};

pub use artifact::{Artifact, ArtifactError};
pub use coordinators::Coordinators;
pub use node::{NodeInfo, NodeRecord, NodeState};
pub use schedule_spec::{DEFAULT_MIN_CALLS, Gate, Gate6, ScheduleSpec, schedule_and_gates};

/// An upgrade as an operator publishes it: from-version, to-version,
/// schedule, artifact and notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
pub struct Upgrade {
    /// Service to upgrade.
    pub service: String,
    /// Version the nodes run now.
    pub from: u32,
    /// Version they move to: `from + 1`, or `from - 1` for a rollback
    /// (which the coordinator makes; publish takes only the next version).
    pub to: u32,
    /// When each node may upgrade.
    pub schedule: ScheduleSpec,
    /// Where the new code is (a binary's path and checksum in restart mode;
    /// informational for in-process upgrades).
    pub artifact: String,
    /// Free text for operators.
    pub notes: String,
}

impl Upgrade {
    /// Whether a node at `version` has gone where this upgrade takes it: at
    /// `to` or beyond it (below it, for a rollback).
    pub fn reached(&self, version: u32) -> bool {
        if self.to >= self.from {
            version >= self.to
        } else {
            version <= self.to
        }
    }

    /// Whether this is a rollback: it takes nodes back a version.
    pub fn is_rollback(&self) -> bool {
        self.to < self.from
    }
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
pub enum RolloutState {
    /// Nodes may take slots.
    Active,
    /// An operator paused it; no new slots.
    Paused,
    /// Stopped by a failure or a failed health gate; the reason says which.
    Halted {
        /// Why.
        reason: String,
    },
    /// Abandoned by an operator.
    Aborted,
    /// Every node of the service runs the new version.
    Final,
}

/// An upgrade with its identity and progress, as the coordinator keeps it
/// (its API shows [`api::RolloutStatus`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeRecord {
    /// Assigned by the coordinator, ascending.
    pub id: u64,
    /// What was published.
    pub def: Upgrade,
    /// Where the rollout stands.
    pub state: RolloutState,
    /// When it was published, Unix milliseconds.
    pub published_ms: u64,
}

/// A rollout's gates and its approval, as the coordinator keeps them beside
/// its [`UpgradeRecord`] (published with API v4, UDB format 3; analysis
/// gates from API v6, UDB format 4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRecord {
    /// What the rollout waits on besides its schedule.
    pub gates: Vec<Gate6>,
    /// When an operator approved it, Unix milliseconds.
    pub approved_ms: Option<u64>,
    /// Who approved it, when their certificate named them.
    pub approved_by: Option<String>,
}

impl GateRecord {
    /// Whether an operator's approval is among the gates.
    pub fn has_approval_gate(&self) -> bool {
        self.gates
            .iter()
            .any(|g| matches!(g, Gate6::Approval { .. }))
    }

    /// Whether that approval is still to come.
    pub fn awaits_approval(&self) -> bool {
        self.approved_ms.is_none() && self.has_approval_gate()
    }
}

/// One line of upgrade history, as the coordinator keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Ascending sequence number.
    pub seq: u64,
    /// When, Unix milliseconds.
    pub at_ms: u64,
    /// The node concerned, if one is.
    pub node: Option<String>,
    /// The upgrade concerned, if one is.
    pub upgrade: Option<u64>,
    /// What happened, in words.
    pub what: String,
    /// Who asked for it (`operator alice`), when the request came with an
    /// upshift identity; `None` for the coordinator's own doing and for
    /// requests without TLS.
    pub by: Option<String>,
}
