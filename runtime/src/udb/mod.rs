//! The upgrade database (UDB): upgrade definitions, every node and its
//! version and status, and the history of upgrade events.
//!
//! The coordinator keeps the UDB's content in memory and writes every change
//! through [`Udb::write`] before it answers, so a coordinator that restarts
//! resumes from exactly what it acknowledged. [`RedbUdb`] is the embedded
//! default: one file, nothing to install or start. [`EtcdUdb`] keeps it in
//! etcd, where several coordinators share it with one leading
//! ([`EtcdUdb::campaign`]).

mod etcd;
mod memory;
mod redb;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use self::etcd::{EtcdTls, EtcdUdb, Leadership};
pub use self::memory::MemoryUdb;
pub use self::redb::RedbUdb;
use crate::upgrade::{Event, GateRecord, NodeRecord, UpgradeRecord};

/// Everything the UDB holds, as the coordinator keeps it in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content {
    /// Nodes by id.
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Upgrades by id.
    pub upgrades: BTreeMap<u64, UpgradeRecord>,
    /// History, oldest first.
    pub events: Vec<Event>,
    /// Gates and approvals, by upgrade (only upgrades published with gates).
    pub gates: BTreeMap<u64, GateRecord>,
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
    /// Ids of nodes to remove (forgotten by an operator), after `nodes`.
    pub forget: Vec<String>,
    /// Gate records to insert or replace, by upgrade.
    pub gates: Vec<(u64, GateRecord)>,
}

impl Batch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.upgrades.is_empty()
            && self.events.is_empty()
            && self.forget.is_empty()
            && self.gates.is_empty()
    }
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
    fn read_all(&self) -> Result<Content, UdbError>;
    /// Applies `batches` in order, all or none: the coordinator commits
    /// the requests that arrived during one write together in the next.
    fn write(&self, batches: &[Batch]) -> Result<(), UdbError>;
}
