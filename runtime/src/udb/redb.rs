//! The embedded UDB: one redb file.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Batch, Content, Udb, UdbError};
use crate::upgrade::{NodeRecord, UpgradeRecord};

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
    fn read_all(&self) -> Result<Content, UdbError> {
        use redb::{ReadableDatabase, ReadableTable};
        let p = &self.path;
        let txn = self.db.begin_read().map_err(|e| err(p, "begin read", e))?;
        let mut content = Content::default();
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
