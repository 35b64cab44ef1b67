//! The embedded UDB: one redb file.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Batch, Content, Udb, UdbError};
use crate::sync::lock;
use crate::upgrade::{Event, NodeRecord, UpgradeRecord};

const NODES: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("nodes");
const UPGRADES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("upgrades");
const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
/// Gates and approvals by upgrade (format 3).
const GATES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("gates");
/// `format`: the shape of the stored records (absent in format 1).
const META: redb::TableDefinition<&str, u32> = redb::TableDefinition::new("meta");

/// See [`RedbUdb::FORMAT`].
const FORMAT: u32 = 4;

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
    /// The shape of the records this coordinator writes. 1: the first (no
    /// `meta` table); 2: nodes say why they are unhealthy, events who
    /// asked; 3: rollouts' gates and approvals (a `gates` table; a
    /// coordinator that knew no gates must not run a gated rollout); 4:
    /// analysis gates among them (records of format 3 read as they are;
    /// a coordinator that knew none must not drop them). A file
    /// of an older format is upgraded when opened, in one transaction; one
    /// of a newer format is refused.
    pub const FORMAT: u32 = FORMAT;

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
        udb.with_db("upgrade the format", |db| udb.upgrade_format(db))?;
        // Create the tables so that reads of a fresh file find them.
        udb.write(&[])?;
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

    fn write(&self, batches: &[Batch]) -> Result<(), UdbError> {
        self.with_db("write", |db| self.write_unguarded(db, batches))
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
        let gates = txn.open_table(GATES).map_err(|e| err(p, "open gates", e))?;
        for row in gates.iter().map_err(|e| err(p, "read gates", e))? {
            let (k, v) = row.map_err(|e| err(p, "read gate", e))?;
            let record = postcard::from_bytes(v.value()).map_err(|e| err(p, "decode gates", e))?;
            content.gates.insert(k.value(), record);
        }
        Ok(content)
    }

    /// Brings a file of an older format to [`FORMAT`] (the UDB's own
    /// transform), in one transaction: a crash leaves the old format, which
    /// the next open upgrades again. A newer format is refused, never read
    /// as if it were this one.
    fn upgrade_format(&self, db: &redb::Database) -> Result<(), UdbError> {
        use redb::ReadableTable;
        let p = &self.path;
        let txn = db.begin_write().map_err(|e| err(p, "begin write", e))?;
        let format = {
            let meta = txn.open_table(META).map_err(|e| err(p, "open meta", e))?;
            meta.get("format")
                .map_err(|e| err(p, "read format", e))?
                .map(|v| v.value())
        };
        match format {
            Some(FORMAT) => return txn.abort().map_err(|e| err(p, "abort", e)),
            Some(newer) if newer > FORMAT => {
                let _ = txn.abort();
                return Err(err(
                    p,
                    "open",
                    format!(
                        "the file is in UDB format {newer}, written by a newer upshift; this \
                         coordinator reads formats up to {FORMAT}: run the newer coordinator, \
                         or restore a backup"
                    ),
                ));
            }
            // Formats 2 and 3: nothing to convert; the `gates` table is new
            // in 3, analysis gates in 4.
            Some(old @ (2 | 3)) => {
                {
                    txn.open_table(GATES).map_err(|e| err(p, "open gates", e))?;
                    let mut meta = txn.open_table(META).map_err(|e| err(p, "open meta", e))?;
                    meta.insert("format", FORMAT)
                        .map_err(|e| err(p, "write format", e))?;
                }
                txn.commit().map_err(|e| err(p, "commit", e))?;
                tracing::info!(path = %p.display(), "upgraded the UDB from format {old} to {FORMAT}");
                return Ok(());
            }
            // Format 1 (or a file with no tables yet).
            _ => {}
        }
        let (mut nodes_done, mut events_done) = (0usize, 0usize);
        {
            let mut nodes = txn.open_table(NODES).map_err(|e| err(p, "open nodes", e))?;
            let old = nodes
                .iter()
                .map_err(|e| err(p, "read nodes", e))?
                .map(|row| {
                    let (_, v) = row.map_err(|e| err(p, "read node", e))?;
                    postcard::from_bytes::<format1::NodeRecord>(v.value())
                        .map_err(|e| err(p, "decode node (format 1)", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            for node in old {
                let node = NodeRecord::from(node);
                nodes
                    .insert(node.info.id.as_str(), encode(p, &node)?.as_slice())
                    .map_err(|e| err(p, "write node", e))?;
                nodes_done += 1;
            }
            let mut events = txn
                .open_table(EVENTS)
                .map_err(|e| err(p, "open events", e))?;
            // The history may be long: converted in pages so it is never
            // held twice in memory.
            let mut after = 0u64;
            loop {
                let page = events
                    .range(after.saturating_add(1)..)
                    .map_err(|e| err(p, "read events", e))?
                    .take(10_000)
                    .map(|row| {
                        let (_, v) = row.map_err(|e| err(p, "read event", e))?;
                        postcard::from_bytes::<format1::Event>(v.value())
                            .map_err(|e| err(p, "decode event (format 1)", e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let Some(last) = page.last().map(|e| e.seq) else {
                    break;
                };
                for event in page {
                    let event = Event::from(event);
                    events
                        .insert(event.seq, encode(p, &event)?.as_slice())
                        .map_err(|e| err(p, "write event", e))?;
                    events_done += 1;
                }
                if events_done % 100_000 == 0 {
                    tracing::info!(path = %p.display(), events = events_done, "upgrading the UDB's history to format {FORMAT}");
                }
                if last == u64::MAX {
                    break;
                }
                after = last;
            }
            let mut meta = txn.open_table(META).map_err(|e| err(p, "open meta", e))?;
            meta.insert("format", FORMAT)
                .map_err(|e| err(p, "write format", e))?;
        }
        txn.commit().map_err(|e| err(p, "commit", e))?;
        if nodes_done + events_done > 0 {
            tracing::info!(
                path = %p.display(),
                nodes = nodes_done,
                events = events_done,
                "upgraded the UDB to format {FORMAT}"
            );
        }
        Ok(())
    }

    fn write_unguarded(&self, db: &redb::Database, batches: &[Batch]) -> Result<(), UdbError> {
        let p = &self.path;
        let txn = db.begin_write().map_err(|e| err(p, "begin write", e))?;
        {
            let mut nodes = txn.open_table(NODES).map_err(|e| err(p, "open nodes", e))?;
            let mut upgrades = txn
                .open_table(UPGRADES)
                .map_err(|e| err(p, "open upgrades", e))?;
            let mut events = txn
                .open_table(EVENTS)
                .map_err(|e| err(p, "open events", e))?;
            let mut gates = txn.open_table(GATES).map_err(|e| err(p, "open gates", e))?;
            for batch in batches {
                for n in &batch.nodes {
                    nodes
                        .insert(n.info.id.as_str(), encode(p, n)?.as_slice())
                        .map_err(|e| err(p, "write node", e))?;
                }
                for id in &batch.forget {
                    nodes
                        .remove(id.as_str())
                        .map_err(|e| err(p, "forget node", e))?;
                }
                for u in &batch.upgrades {
                    upgrades
                        .insert(u.id, encode(p, u)?.as_slice())
                        .map_err(|e| err(p, "write upgrade", e))?;
                }
                for ev in &batch.events {
                    events
                        .insert(ev.seq, encode(p, ev)?.as_slice())
                        .map_err(|e| err(p, "write event", e))?;
                }
                for (id, record) in &batch.gates {
                    gates
                        .insert(*id, encode(p, record)?.as_slice())
                        .map_err(|e| err(p, "write gates", e))?;
                }
            }
        }
        txn.commit().map_err(|e| err(p, "commit", e))
    }
}

/// The records of format 1, as they were stored, and how each becomes
/// today's.
mod format1 {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use crate::upgrade::{NodeInfo, NodeState};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(super) struct NodeRecord {
        pub info: NodeInfo,
        pub state: NodeState,
        pub last_seen_ms: u64,
        pub healthy: bool,
        pub healthy_since_ms: Option<u64>,
        pub upgraded_at_ms: Option<u64>,
        pub calls: BTreeMap<u32, u64>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(super) struct Event {
        pub seq: u64,
        pub at_ms: u64,
        pub node: Option<String>,
        pub upgrade: Option<u64>,
        pub what: String,
    }

    impl From<NodeRecord> for crate::upgrade::NodeRecord {
        fn from(n: NodeRecord) -> Self {
            crate::upgrade::NodeRecord {
                info: n.info,
                state: n.state,
                last_seen_ms: n.last_seen_ms,
                healthy: n.healthy,
                // Format 1 kept no reason.
                problem: None,
                healthy_since_ms: n.healthy_since_ms,
                upgraded_at_ms: n.upgraded_at_ms,
                calls: n.calls,
            }
        }
    }

    impl From<Event> for crate::upgrade::Event {
        fn from(e: Event) -> Self {
            // Format 1 named the caller inside `what`; it stays there.
            crate::upgrade::Event {
                seq: e.seq,
                at_ms: e.at_ms,
                node: e.node,
                upgrade: e.upgrade,
                what: e.what,
                by: None,
            }
        }
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

    /// A UDB written by a coordinator of format 1 (before nodes said why
    /// they are unhealthy and events who asked) is upgraded when opened:
    /// every node and event is kept, the new fields empty.
    #[test]
    fn a_format_1_file_is_upgraded_when_opened_and_a_newer_one_refused() {
        let d = dir("format1");
        let path = d.join("udb.redb");
        let node = format1::NodeRecord {
            info: crate::upgrade::NodeInfo {
                id: "n1".into(),
                address: "a".into(),
                group: "g".into(),
                service: "Kv".into(),
                version: 2,
            },
            state: crate::upgrade::NodeState::Running,
            last_seen_ms: 7,
            healthy: false,
            healthy_since_ms: None,
            upgraded_at_ms: Some(5),
            calls: [(2, 40)].into_iter().collect(),
        };
        {
            let db = redb::Database::create(&path).expect("create");
            let txn = db.begin_write().expect("write");
            {
                let mut nodes = txn.open_table(NODES).expect("nodes");
                let bytes = postcard::to_allocvec(&node).expect("encode");
                nodes.insert("n1", bytes.as_slice()).expect("insert");
                let mut events = txn.open_table(EVENTS).expect("events");
                for seq in 1..=25_000u64 {
                    let event = format1::Event {
                        seq,
                        at_ms: seq * 10,
                        node: Some("n1".into()),
                        upgrade: None,
                        what: format!("event {seq} (on a call by operator alice)"),
                    };
                    let bytes = postcard::to_allocvec(&event).expect("encode");
                    events.insert(seq, bytes.as_slice()).expect("insert");
                }
            }
            txn.commit().expect("commit");
        }
        let content = RedbUdb::open(&path)
            .and_then(|u| u.read_all())
            .expect("upgraded");
        assert_eq!(content.nodes["n1"], NodeRecord::from(node.clone()));
        assert_eq!(content.nodes["n1"].problem, None);
        assert_eq!(content.events.len(), 25_000, "every event kept");
        let last = content.events.last().expect("events");
        assert_eq!(
            (last.seq, last.what.as_str(), last.by.as_deref()),
            (25_000, "event 25000 (on a call by operator alice)", None)
        );
        // Opened again: already in this format, read as it is.
        let again = RedbUdb::open(&path)
            .and_then(|u| u.read_all())
            .expect("reopen");
        assert_eq!(again, content);
        // A file from a newer upshift is refused, and left as it is.
        {
            let db = redb::Database::create(&path).expect("open");
            let txn = db.begin_write().expect("write");
            txn.open_table(META)
                .expect("meta")
                .insert("format", FORMAT + 1)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let e = RedbUdb::open(&path).expect_err("newer format refused");
        assert!(
            e.to_string().contains(&format!(
                "UDB format {}, written by a newer upshift",
                FORMAT + 1
            )),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_format_2_file_gains_the_gates_table_and_keeps_everything() {
        let d = dir("format2");
        let path = d.join("udb.redb");
        let udb = RedbUdb::open(&path).expect("open");
        let event = Event {
            seq: 1,
            at_ms: 2,
            node: None,
            upgrade: Some(1),
            what: "published".into(),
            by: Some("operator alice".into()),
        };
        let batch = Batch {
            events: vec![event],
            ..Batch::default()
        };
        udb.write(&[batch]).expect("write");
        let before = udb.read_all().expect("read");
        drop(udb);
        // As format 2 left it: no gates table, format 2.
        {
            let db = redb::Database::create(&path).expect("open");
            let txn = db.begin_write().expect("write");
            txn.delete_table(GATES).expect("drop gates");
            txn.open_table(META)
                .expect("meta")
                .insert("format", 2)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let udb = RedbUdb::open(&path).expect("upgraded");
        assert_eq!(udb.read_all().expect("read"), before);
        let mut gated = Batch::default();
        gated.gates.push((
            1,
            crate::upgrade::GateRecord {
                gates: vec![crate::upgrade::Gate6::Approval { after: 1 }],
                approved_ms: None,
                approved_by: None,
            },
        ));
        udb.write(&[gated]).expect("gates are written");
        assert_eq!(udb.read_all().expect("read").gates.len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_format_3_file_reads_its_gates_as_they_were_written() {
        use crate::upgrade::{Gate, Gate6};
        /// A gate record as format 3 wrote it, with API v4's gates.
        #[derive(serde::Serialize)]
        struct Format3 {
            gates: Vec<Gate>,
            approved_ms: Option<u64>,
            approved_by: Option<String>,
        }
        let d = dir("format3");
        let path = d.join("udb.redb");
        drop(RedbUdb::open(&path).expect("open"));
        let old = Format3 {
            gates: vec![
                Gate::After {
                    service: "Db".into(),
                    version: 2,
                },
                Gate::Approval { after: 3 },
            ],
            approved_ms: Some(7),
            approved_by: Some("operator alice".into()),
        };
        {
            let db = redb::Database::create(&path).expect("open");
            let txn = db.begin_write().expect("write");
            txn.open_table(GATES)
                .expect("gates")
                .insert(1, postcard::to_stdvec(&old).expect("encode").as_slice())
                .expect("insert");
            txn.open_table(META)
                .expect("meta")
                .insert("format", 3)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let udb = RedbUdb::open(&path).expect("upgraded");
        let record = &udb.read_all().expect("read").gates[&1];
        assert_eq!(
            record.gates,
            old.gates.into_iter().map(Gate6::from).collect::<Vec<_>>()
        );
        assert_eq!(record.approved_by.as_deref(), Some("operator alice"));
        drop(udb);
        use redb::ReadableDatabase;
        let db = redb::Database::create(&path).expect("open");
        let txn = db.begin_read().expect("read");
        let format = txn
            .open_table(META)
            .expect("meta")
            .get("format")
            .expect("get");
        assert_eq!(format.map(|v| v.value()), Some(FORMAT));
        let _ = std::fs::remove_dir_all(&d);
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
                problem: None,
                healthy_since_ms: None,
                upgraded_at_ms: None,
                calls: Default::default(),
            };
            udb.write(&[Batch {
                nodes: vec![record],
                ..Batch::default()
            }])
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
