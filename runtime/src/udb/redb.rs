//! The embedded UDB: one redb file.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Batch, Content, Udb, UdbError};
use crate::sync::lock;
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
    /// `None` after a write failed: redb refuses everything after an I/O
    /// error until the file is opened again, which the next use does.
    db: std::sync::Mutex<Option<redb::Database>>,
    path: PathBuf,
}

impl std::fmt::Debug for RedbUdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbUdb").field("path", &self.path).finish()
    }
}

impl RedbUdb {
    /// Opens the UDB file at `path`, creating it if missing. A file that
    /// exists but is empty or corrupt is an error, never an empty UDB: the
    /// coordinator would forget every rollout and node without a word.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, UdbError> {
        let path = path.as_ref().to_path_buf();
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
            return Err(err(
                &path,
                "open",
                "the file is empty, so it holds no UDB; restore it from a backup, or move it away to start a new UDB",
            ));
        }
        let db = open_file(&path)?;
        let udb = RedbUdb {
            db: std::sync::Mutex::new(Some(db)),
            path,
        };
        // Create the tables so that reads of a fresh file find them.
        udb.write(&Batch::default())?;
        Ok(udb)
    }
}

/// Runs a redb operation, turning its error and any panic on a corrupt file
/// into a typed error naming the file.
fn guarded<T>(
    path: &Path,
    what: &str,
    op: impl FnOnce() -> Result<T, UdbError>,
) -> Result<T, UdbError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(op)) {
        Ok(result) => result,
        Err(panic) => {
            let detail = crate::sync::panic_message(&*panic);
            Err(err(
                path,
                what,
                format!("the file looks corrupt (redb panicked: {detail})"),
            ))
        }
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
        self.with_db("read", |db| self.read_all_unguarded(db))
    }

    fn write(&self, batch: &Batch) -> Result<(), UdbError> {
        self.with_db("write", |db| self.write_unguarded(db, batch))
    }
}

/// Opens (creating) a redb file, with its panics turned into errors.
fn open_file(path: &Path) -> Result<redb::Database, UdbError> {
    guarded(path, "open", || {
        redb::Database::create(path).map_err(|e| err(path, "open", e))
    })
}

impl RedbUdb {
    /// Runs `op` on the database, its panics turned into errors. A failed
    /// commit (a full disk, say) leaves redb refusing every later one, so
    /// after any failure the next use opens the file again: the coordinator
    /// recovers once the cause is gone, without a restart.
    fn with_db<T>(
        &self,
        what: &str,
        op: impl FnOnce(&redb::Database) -> Result<T, UdbError>,
    ) -> Result<T, UdbError> {
        let mut held = lock(&self.db);
        if held.is_none() {
            *held = Some(open_file(&self.path)?);
        }
        let Some(db) = held.as_ref() else {
            return Err(err(&self.path, what, "the database is closed"));
        };
        let result = guarded(&self.path, what, || op(db));
        if result.is_err() {
            *held = None;
        }
        result
    }

    fn read_all_unguarded(&self, db: &redb::Database) -> Result<Content, UdbError> {
        use redb::{ReadableDatabase, ReadableTable};
        let p = &self.path;
        let txn = db.begin_read().map_err(|e| err(p, "begin read", e))?;
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

    fn write_unguarded(&self, db: &redb::Database, batch: &Batch) -> Result<(), UdbError> {
        let p = &self.path;
        let txn = db.begin_write().map_err(|e| err(p, "begin write", e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("upshift-redb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn an_empty_file_is_an_error_not_an_empty_udb() {
        let d = dir("empty");
        let path = d.join("udb.redb");
        std::fs::write(&path, b"").expect("write");
        let e = RedbUdb::open(&path).expect_err("refused");
        assert!(e.to_string().contains("the file is empty"), "{e}");
        assert_eq!(
            std::fs::metadata(&path).expect("kept").len(),
            0,
            "left as it was"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_corrupt_file_is_a_typed_error_never_a_panic() {
        let d = dir("corrupt");
        let good = d.join("good.redb");
        {
            let udb = RedbUdb::open(&good).expect("open");
            let record = NodeRecord {
                info: crate::upgrade::NodeInfo {
                    id: "n1".into(),
                    address: "a".into(),
                    group: "g".into(),
                    service: "Kv".into(),
                    version: 1,
                },
                state: crate::upgrade::NodeState::Running,
                last_seen_ms: 1,
                healthy: true,
                healthy_since_ms: None,
                upgraded_at_ms: None,
                calls: Default::default(),
            };
            udb.write(&Batch {
                nodes: vec![record],
                ..Batch::default()
            })
            .expect("write");
        }
        let bytes = std::fs::read(&good).expect("read");
        // Deterministic damage: truncations and byte flips across the file.
        let mut outcomes = (0, 0);
        for i in 0..40usize {
            let mut damaged = bytes.clone();
            let at = (i * 7919) % damaged.len();
            if i % 2 == 0 {
                damaged.truncate(at.max(1));
            } else {
                for b in &mut damaged[at..(at + 64).min(bytes.len())] {
                    *b ^= 0xA5;
                }
            }
            let path = d.join(format!("damaged-{i}.redb"));
            std::fs::write(&path, &damaged).expect("write");
            // Either it opens and reads, or it says why: never a panic.
            match RedbUdb::open(&path).and_then(|u| u.read_all()) {
                Ok(_) => outcomes.0 += 1,
                Err(e) => {
                    assert!(e.to_string().contains("damaged"), "names the file: {e}");
                    outcomes.1 += 1;
                }
            }
        }
        assert!(outcomes.1 > 0, "some damage is detected: {outcomes:?}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
