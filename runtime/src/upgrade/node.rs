//! Nodes as the coordinator knows them: what a node says of itself, where it
//! stands in upgrades, and its record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a node tells the coordinator about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
pub struct NodeInfo {
    /// Unique within the cluster.
    pub id: String,
    /// Where the node serves calls.
    pub address: String,
    /// Schedules order and limit upgrades per group (for example "servers").
    pub group: String,
    /// The service the node runs.
    pub service: String,
    /// The version the node runs.
    pub version: u32,
}

/// Where a node stands in upgrades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
pub enum NodeState {
    /// Serving its version.
    Running,
    /// Holds a slot and is upgrading to `to`.
    Upgrading {
        /// Target version.
        to: u32,
    },
    /// Its upgrade to `to` failed; it stayed on its version.
    Failed {
        /// Target version.
        to: u32,
        /// What the node reported.
        reason: String,
    },
}

/// A node as the coordinator keeps it (its API shows [`super::api::NodeRecord`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// What the node said about itself.
    pub info: NodeInfo,
    /// Where it stands.
    pub state: NodeState,
    /// Last heartbeat, Unix milliseconds.
    pub last_seen_ms: u64,
    /// Whether its latest heartbeat said its health check passes.
    pub healthy: bool,
    /// Why it is unhealthy, as its latest heartbeat said (agents of
    /// coordinator API v3 and later say why; older ones do not).
    pub problem: Option<String>,
    /// Since when it has been healthy without interruption, Unix milliseconds.
    pub healthy_since_ms: Option<u64>,
    /// When it finished its latest upgrade, Unix milliseconds.
    pub upgraded_at_ms: Option<u64>,
    /// Calls it served per call version (object and each SO chain), as reported.
    pub calls: BTreeMap<u32, u64>,
}
