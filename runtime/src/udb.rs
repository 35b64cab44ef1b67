//! The upgrade database (UDB): upgrade definitions, every node and its
//! version and status, and the history of upgrade events.
//!
//! The coordinator keeps the UDB's content in memory and writes every change
//! through [`Udb::write`] before it answers, so a coordinator that restarts
//! resumes from exactly what it acknowledged. [`RedbUdb`] is the embedded
//! default: one file, nothing to install or start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::schedule::ScheduleSpec;

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

/// A node as the UDB records it.
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

/// An upgrade as an operator publishes it.
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
    /// Where the new code is (a binary's path and checksum in restart mode;
    /// informational for in-process upgrades).
    pub artifact: String,
    /// Free text for operators.
    pub notes: String,
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

/// An upgrade with its identity and progress.
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
}

/// Everything the UDB holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
pub struct UdbContent {
    /// Nodes by id.
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Upgrades by id.
    pub upgrades: BTreeMap<u64, UpgradeRecord>,
    /// History, oldest first.
    pub events: Vec<Event>,
}

/// Changes written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Nodes to insert or replace.
    pub nodes: Vec<NodeRecord>,
    /// Upgrades to insert or replace.
    pub upgrades: Vec<UpgradeRecord>,
    /// Events to append.
    pub events: Vec<Event>,
}

/// Why the UDB could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("upgrade database {path}: {detail}")]
pub struct UdbError {
    /// The database file (or endpoint).
    pub path: PathBuf,
    /// What failed.
    pub detail: String,
}

/// Storage of the upgrade database. Implementations make each
/// [`Udb::write`] atomic and durable before returning.
pub trait Udb: Send + Sync + 'static {
    /// Everything stored.
    fn read_all(&self) -> Result<UdbContent, UdbError>;
    /// Applies `batch` atomically.
    fn write(&self, batch: &Batch) -> Result<(), UdbError>;
}

const NODES: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("nodes");
const UPGRADES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("upgrades");
const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");

/// The embedded UDB: a single redb file.
///
/// redb is an ACID, copy-on-write B-tree store written in Rust: every commit
/// is durable and atomic, a crash leaves the last committed transaction, and
/// it needs no server or C library.
pub struct RedbUdb {
    db: redb::Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbUdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbUdb").field("path", &self.path).finish()
    }
}

impl RedbUdb {
    /// Opens the UDB file at `path`, creating it if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, UdbError> {
        let path = path.as_ref().to_path_buf();
        let db = redb::Database::create(&path).map_err(|e| err(&path, "open", e))?;
        let udb = RedbUdb { db, path };
        // Create the tables so that reads of a fresh file find them.
        udb.write(&Batch::default())?;
        Ok(udb)
    }
}

fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> UdbError {
    UdbError {
        path: path.to_path_buf(),
        detail: format!("{what}: {e}"),
    }
}

impl Udb for RedbUdb {
    fn read_all(&self) -> Result<UdbContent, UdbError> {
        use redb::{ReadableDatabase, ReadableTable};
        let p = &self.path;
        let txn = self.db.begin_read().map_err(|e| err(p, "begin read", e))?;
        let mut content = UdbContent::default();
        let nodes = txn.open_table(NODES).map_err(|e| err(p, "open nodes", e))?;
        for row in nodes.iter().map_err(|e| err(p, "read nodes", e))? {
            let (_, v) = row.map_err(|e| err(p, "read node", e))?;
            let node: NodeRecord =
                postcard::from_bytes(v.value()).map_err(|e| err(p, "decode node", e))?;
            content.nodes.insert(node.info.id.clone(), node);
        }
        let upgrades = txn
            .open_table(UPGRADES)
            .map_err(|e| err(p, "open upgrades", e))?;
        for row in upgrades.iter().map_err(|e| err(p, "read upgrades", e))? {
            let (_, v) = row.map_err(|e| err(p, "read upgrade", e))?;
            let up: UpgradeRecord =
                postcard::from_bytes(v.value()).map_err(|e| err(p, "decode upgrade", e))?;
            content.upgrades.insert(up.id, up);
        }
        let events = txn
            .open_table(EVENTS)
            .map_err(|e| err(p, "open events", e))?;
        for row in events.iter().map_err(|e| err(p, "read events", e))? {
            let (_, v) = row.map_err(|e| err(p, "read event", e))?;
            content
                .events
                .push(postcard::from_bytes(v.value()).map_err(|e| err(p, "decode event", e))?);
        }
        Ok(content)
    }

    fn write(&self, batch: &Batch) -> Result<(), UdbError> {
        let p = &self.path;
        let txn = self
            .db
            .begin_write()
            .map_err(|e| err(p, "begin write", e))?;
        {
            let mut nodes = txn.open_table(NODES).map_err(|e| err(p, "open nodes", e))?;
            for n in &batch.nodes {
                nodes
                    .insert(n.info.id.as_str(), encode(p, n)?.as_slice())
                    .map_err(|e| err(p, "write node", e))?;
            }
            let mut upgrades = txn
                .open_table(UPGRADES)
                .map_err(|e| err(p, "open upgrades", e))?;
            for u in &batch.upgrades {
                upgrades
                    .insert(u.id, encode(p, u)?.as_slice())
                    .map_err(|e| err(p, "write upgrade", e))?;
            }
            let mut events = txn
                .open_table(EVENTS)
                .map_err(|e| err(p, "open events", e))?;
            for ev in &batch.events {
                events
                    .insert(ev.seq, encode(p, ev)?.as_slice())
                    .map_err(|e| err(p, "write event", e))?;
            }
        }
        txn.commit().map_err(|e| err(p, "commit", e))
    }
}

fn encode<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, UdbError> {
    postcard::to_allocvec(value).map_err(|e| err(path, "encode", e))
}
