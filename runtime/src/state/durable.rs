//! State that loses nothing it acknowledged: a [`Durable`] cell holds a
//! version's state in memory, and every change to it goes through the
//! journal, synced before the write returns.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::journal::{self, Journal};
use super::{FileStore, Snapshot, StoreError, Versioned, decode_payload};
use crate::sync::{lock, read, write};

/// A state whose changes are journaled: the change type, and how a change
/// applies. `apply` must be deterministic — recovery replays the journal
/// through it — so a change carries everything it needs (a time, an id),
/// computed before it is written.
pub trait Journaled: Versioned + Send + Sync + 'static {
    /// One change to the state, as the journal records it. A journal written
    /// by one binary is replayed by the next (restart mode), so the change
    /// type is a persisted format: derive `upshift::Schema` on it, and
    /// `upshift lock` locks it like any released type.
    type Change: Serialize + DeserializeOwned + crate::schema::Schema + Send + 'static;
    /// What applying a change tells its writer (`()`, whether a key existed).
    type Output: Send + 'static;

    /// Applies `change` to the state.
    fn apply(&mut self, change: Self::Change) -> Self::Output;
}

/// When a write to a [`Durable`] state is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// When its journal entry is synced to disk. Writes that arrive while a
    /// sync runs share the next one (group commit). The default.
    #[default]
    Sync,
    /// The same, but the journal waits this long after the first write of
    /// a batch so more writes share one sync: fewer syncs under load, each
    /// write up to this much slower.
    Window(Duration),
    /// At once, without a journal: only checkpoints save the state, so a
    /// crash loses the writes since the last one. For state that can be
    /// rebuilt, and as the baseline the benchmarks compare with.
    Snapshots,
}

/// Why a write was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The journal or a checkpoint failed: the node acknowledges no more
    /// writes until it restarts (the change may be in memory, not on disk).
    #[error("{0}")]
    Failed(Arc<str>),
    /// The change did not encode.
    #[error("the change did not encode: {0}")]
    Encode(String),
}

struct Applied<S> {
    state: S,
    /// The sequence number of the last change applied.
    seq: u64,
}

struct Cell<S> {
    applied: RwLock<Applied<S>>,
    journal: Option<Journal>,
    /// A failure without a journal to hold it (`Durability::Snapshots`).
    failed: Mutex<Option<Arc<str>>>,
}

/// A version's state, shared by its service object and the node: reads see
/// every applied change, and a write returns once its change is durable
/// (per [`Durability`]). Clone it freely; clones share the state.
pub struct Durable<S: Journaled> {
    cell: Arc<Cell<S>>,
}

impl<S: Journaled> Clone for Durable<S> {
    fn clone(&self) -> Self {
        Durable {
            cell: self.cell.clone(),
        }
    }
}

impl<S: Journaled> std::fmt::Debug for Durable<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("version", &S::VERSION)
            .field("failure", &self.failure())
            .finish_non_exhaustive()
    }
}

impl<S: Journaled> Durable<S> {
    /// State held in memory only, for tests and examples that keep nothing.
    pub fn in_memory(state: S) -> Self {
        Durable {
            cell: Arc::new(Cell {
                applied: RwLock::new(Applied { state, seq: 0 }),
                journal: None,
                failed: Mutex::new(None),
            }),
        }
    }

    /// Reads the state. Keep `f` short: writes wait for it.
    pub fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&read(&self.cell.applied).state)
    }

    /// Applies `change` and returns once it is durable.
    ///
    /// When it cannot be acknowledged (the journal or a checkpoint failed)
    /// this does not return: it unwinds through
    /// [`error::unavailable`](crate::error::unavailable), and the node
    /// answers the call with `CallError::Unavailable`, so a service method
    /// that returns plain values needs no error path. Use
    /// [`Durable::try_write`] to handle the failure instead.
    pub async fn write(&self, change: S::Change) -> S::Output {
        match self.try_write(change).await {
            Ok(output) => output,
            Err(e) => crate::error::unavailable(e.to_string()),
        }
    }

    /// Applies `change` and returns once it is durable, or why it is not.
    pub async fn try_write(&self, change: S::Change) -> Result<S::Output, WriteError> {
        if let Some(why) = self.failure() {
            return Err(WriteError::Failed(why));
        }
        let Some(journal) = &self.cell.journal else {
            let mut applied = write(&self.cell.applied);
            return Ok(applied.state.apply(change));
        };
        let payload =
            postcard::to_allocvec(&change).map_err(|e| WriteError::Encode(e.to_string()))?;
        let (seq, output) = {
            let mut applied = write(&self.cell.applied);
            // Applied first: a change whose `apply` panics is never
            // journaled, so recovery cannot replay the panic.
            let output = applied.state.apply(change);
            // In the lock, so the journal's order is the order of applying.
            let seq = journal.append(&payload).map_err(WriteError::Failed)?;
            applied.seq = seq;
            (seq, output)
        };
        journal.synced(seq).await.map_err(WriteError::Failed)?;
        Ok(output)
    }

    /// Applies `change` and journals it without waiting for the sync: for
    /// changes a crash may lose (a read counter, an eviction the next read
    /// redoes). A later [`Durable::write`] waits for every change before it,
    /// so what was acknowledged never depends on a lost one; after a
    /// failure the change is applied in memory only.
    pub fn write_relaxed(&self, change: S::Change) -> S::Output {
        let payload = self
            .cell
            .journal
            .as_ref()
            .and_then(|_| postcard::to_allocvec(&change).ok());
        let mut applied = write(&self.cell.applied);
        let output = applied.state.apply(change);
        if let (Some(journal), Some(payload)) = (&self.cell.journal, payload)
            && let Ok(seq) = journal.append(&payload)
        {
            applied.seq = seq;
        }
        output
    }

    /// Why this state takes no more writes, once it failed.
    pub fn failure(&self) -> Option<Arc<str>> {
        match &self.cell.journal {
            Some(j) => j.failure(),
            None => lock(&self.cell.failed).clone(),
        }
    }

    /// Opens the state of `S`'s version in `store` outside a node: the
    /// committed snapshot (of this or an older version, transformed), then
    /// every journal entry after it; fresh state when nothing was saved.
    pub fn open(store: &FileStore, durability: Durability) -> Result<Self, StoreError>
    where
        S: Default,
    {
        let snapshot = super::SnapshotStore::read(store)?.map(|(s, _)| s);
        Self::recover(store, snapshot.as_ref(), durability)
    }

    /// The state encoded at its version, with the last change it holds.
    pub(crate) fn snapshot(&self) -> Result<Snapshot, String> {
        let applied = read(&self.cell.applied);
        let payload = postcard::to_allocvec(&applied.state).map_err(|e| e.to_string())?;
        Ok(Snapshot {
            version: S::VERSION,
            applied: applied.seq,
            payload,
        })
    }

    /// Opens the state of `S`'s version in `store`: `snapshot` (of this or
    /// an older version, transformed), then every journal entry after it.
    pub(crate) fn recover(
        store: &FileStore,
        snapshot: Option<&Snapshot>,
        durability: Durability,
    ) -> Result<Self, StoreError>
    where
        S: Default,
    {
        let (mut state, applied) = match snapshot {
            Some(s) => (
                S::decode_from(s.version, &s.payload).map_err(|source| StoreError::State {
                    path: store.dir().to_path_buf(),
                    source,
                })?,
                s.applied,
            ),
            None => (S::default(), 0),
        };
        let path = journal::path(store.dir(), store.name());
        let found = journal::recover(store.dir(), store.name())?;
        let mut seq = applied;
        if let Some(found) = &found {
            let after: Vec<&(u64, Vec<u8>)> =
                found.entries.iter().filter(|(s, _)| *s > applied).collect();
            if let Some((first, _)) = after.first()
                && *first != applied + 1
            {
                return Err(StoreError::Corrupt {
                    path,
                    detail: format!(
                        "the snapshot holds the changes up to {applied}, but the journal continues at {first}: changes are missing"
                    ),
                });
            }
            if !after.is_empty() && found.version != S::VERSION {
                return Err(StoreError::Corrupt {
                    path,
                    detail: format!(
                        "the journal holds {} changes of v{} after the snapshot, which v{} cannot replay; start the node with the code of v{} first",
                        after.len(),
                        found.version,
                        S::VERSION,
                        found.version
                    ),
                });
            }
            for (s, payload) in after {
                let change: S::Change =
                    decode_payload(found.version, payload).map_err(|source| StoreError::State {
                        path: path.clone(),
                        source,
                    })?;
                state.apply(change);
                seq = *s;
            }
        }
        let journal = match durability {
            Durability::Snapshots => None,
            Durability::Sync => Some(Duration::ZERO),
            Durability::Window(w) => Some(w),
        }
        .map(|window| {
            // A journal of an older version may be replaced only once a
            // snapshot of this version is committed: now, when the snapshot
            // read is one; else after the node commits the transformed state
            // (`restart_journal`), and until then this one takes no writes.
            let committed = snapshot.is_none_or(|s| s.version == S::VERSION);
            Journal::open(
                store.dir(),
                store.name(),
                S::VERSION,
                seq,
                found.as_ref(),
                committed,
                window,
            )
        })
        .transpose()?;
        Ok(Durable {
            cell: Arc::new(Cell {
                applied: RwLock::new(Applied { state, seq }),
                journal,
                failed: Mutex::new(None),
            }),
        })
    }

    /// Stops acknowledging writes, for `why`.
    pub(crate) fn fail(&self, why: &str) {
        match &self.cell.journal {
            Some(j) => j.fail(why),
            None => {
                lock(&self.cell.failed).get_or_insert_with(|| why.into());
            }
        }
    }

    /// After a snapshot holding the changes up to `upto` is committed.
    pub(crate) fn compact(&self, upto: u64) -> Result<(), StoreError> {
        match &self.cell.journal {
            Some(j) => j.compact(S::VERSION, upto),
            None => Ok(()),
        }
    }

    /// After this version's first snapshot is committed (an upgrade or a
    /// start that transformed): the journal starts over at this version.
    pub(crate) fn restart_journal(&self) -> Result<(), StoreError> {
        match &self.cell.journal {
            Some(j) => j.restart_at(S::VERSION),
            None => Ok(()),
        }
    }
}

/// A journaled state as the node sees it, whatever its version: whether it
/// failed, and the journal's upkeep around snapshots.
#[derive(Clone)]
pub struct StateHandle(Arc<dyn Kept>);

impl std::fmt::Debug for StateHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StateHandle").field(&self.failure()).finish()
    }
}

trait Kept: Send + Sync {
    fn failure(&self) -> Option<Arc<str>>;
    fn fail(&self, why: &str);
    fn compact(&self, upto: u64) -> Result<(), StoreError>;
    fn restart_journal(&self) -> Result<(), StoreError>;
}

impl<S: Journaled> Kept for Durable<S> {
    fn failure(&self) -> Option<Arc<str>> {
        Durable::failure(self)
    }
    fn fail(&self, why: &str) {
        Durable::fail(self, why);
    }
    fn compact(&self, upto: u64) -> Result<(), StoreError> {
        Durable::compact(self, upto)
    }
    fn restart_journal(&self) -> Result<(), StoreError> {
        Durable::restart_journal(self)
    }
}

impl StateHandle {
    /// The handle of `state`.
    pub fn of<S: Journaled>(state: &Durable<S>) -> Self {
        StateHandle(Arc::new(state.clone()))
    }

    /// Why the state takes no more writes, once it failed.
    pub fn failure(&self) -> Option<Arc<str>> {
        self.0.failure()
    }

    /// Stops the state acknowledging writes, for `why`.
    pub(crate) fn fail(&self, why: &str) {
        self.0.fail(why);
    }

    /// After a snapshot holding the changes up to `upto` is committed.
    pub(crate) fn compact(&self, upto: u64) -> Result<(), StoreError> {
        self.0.compact(upto)
    }

    /// After the first snapshot of this version is committed.
    pub(crate) fn restart_journal(&self) -> Result<(), StoreError> {
        self.0.restart_journal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{SnapshotStore, StateError};

    /// A state where applying a change twice shows: a running sum and the
    /// list of what was added.
    #[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sum {
        total: u64,
        added: Vec<u64>,
    }

    impl Versioned for Sum {
        const NAME: &'static str = "sum";
        const VERSION: u32 = 1;
        const OLDEST: u32 = 1;
        fn decode_from(version: u32, payload: &[u8]) -> Result<Self, StateError> {
            decode_payload(version, payload)
        }
    }

    impl Journaled for Sum {
        type Change = u64;
        type Output = u64;
        fn apply(&mut self, n: u64) -> u64 {
            self.total += n;
            self.added.push(n);
            self.total
        }
    }

    fn dir(label: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("upshift-durable-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn open(store: &FileStore) -> Durable<Sum> {
        let snapshot = store.read().expect("read").map(|(s, _)| s);
        Durable::recover(store, snapshot.as_ref(), Durability::Sync).expect("recover")
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn acknowledged_writes_are_replayed_after_the_snapshot() {
        let dir = dir("replay");
        let store = FileStore::open(&dir, "sum").expect("open");
        {
            let state = open(&store);
            block_on(async {
                for n in 1..=5 {
                    state.write(n).await;
                }
            });
            // A checkpoint holding 1..=5, then two more writes.
            let snapshot = state.snapshot().expect("snapshot");
            assert_eq!(snapshot.applied, 5);
            store.write(&snapshot).expect("commit");
            state.compact(snapshot.applied).expect("compact");
            block_on(async {
                state.write(6).await;
                state.write(7).await;
            });
        }
        let state = open(&store);
        assert_eq!(state.read(|s| s.added.clone()), vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(state.read(|s| s.total), 28);
    }

    #[test]
    fn a_crash_between_commit_and_compaction_applies_nothing_twice() {
        let dir = dir("twice");
        let store = FileStore::open(&dir, "sum").expect("open");
        {
            let state = open(&store);
            block_on(async {
                for n in 1..=3 {
                    state.write(n).await;
                }
            });
            // Committed, never compacted: the journal still holds 1..=3.
            store
                .write(&state.snapshot().expect("snapshot"))
                .expect("commit");
            block_on(state.write(4));
        }
        let state = open(&store);
        assert_eq!(state.read(|s| s.added.clone()), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_torn_last_entry_is_cut_and_earlier_damage_is_an_error() {
        let dir = dir("torn");
        let store = FileStore::open(&dir, "sum").expect("open");
        {
            let state = open(&store);
            block_on(async {
                for n in 1..=3 {
                    state.write(n).await;
                }
            });
        }
        let path = journal::path(&dir, "sum");
        let whole = std::fs::read(&path).expect("journal");
        // A crash inside the write of a fourth entry nobody was answered for.
        let mut torn = whole.clone();
        torn.extend_from_slice(&[0, 0, 0, 8, 1, 2, 3]);
        std::fs::write(&path, &torn).expect("tear");
        {
            let state = open(&store);
            assert_eq!(state.read(|s| s.added.clone()), vec![1, 2, 3]);
            // The tail is cut, and writing goes on after entry 3.
            block_on(state.write(4));
        }
        assert_eq!(open(&store).read(|s| s.added.clone()), vec![1, 2, 3, 4]);

        // A flipped byte in the first entry, with whole entries after it.
        let mut damaged = std::fs::read(&path).expect("journal");
        // Four entries of 16 header bytes and a one-byte payload each.
        let first_payload = damaged.len() - 4 * 17 + 16;
        damaged[first_payload] ^= 0xff;
        std::fs::write(&path, &damaged).expect("damage");
        let snapshot = store.read().expect("read").map(|(s, _)| s);
        let err = Durable::<Sum>::recover(&store, snapshot.as_ref(), Durability::Sync)
            .expect_err("damage before whole entries");
        assert!(
            err.to_string()
                .contains("is damaged and whole entries follow it"),
            "{err}"
        );
    }

    #[test]
    fn after_a_failure_writes_are_refused_with_the_reason() {
        let dir = dir("fail");
        let store = FileStore::open(&dir, "sum").expect("open");
        let state = open(&store);
        block_on(state.write(1));
        state.fail("a checkpoint failed: disk full");
        let err = block_on(state.try_write(2)).expect_err("refused");
        assert_eq!(err.to_string(), "a checkpoint failed: disk full");
        assert_eq!(state.read(|s| s.added.clone()), vec![1]);
        // Nothing after the failure reaches the journal.
        drop(state);
        assert_eq!(open(&store).read(|s| s.added.clone()), vec![1]);
    }

    #[test]
    fn without_a_journal_only_snapshots_keep_the_state() {
        let dir = dir("snapshots");
        let store = FileStore::open(&dir, "sum").expect("open");
        {
            let state = Durable::<Sum>::recover(&store, None, Durability::Snapshots).expect("open");
            block_on(state.write(1));
            store
                .write(&state.snapshot().expect("snapshot"))
                .expect("commit");
            block_on(state.write(2));
        }
        assert!(!journal::path(&dir, "sum").exists());
        assert_eq!(open(&store).read(|s| s.added.clone()), vec![1]);
    }
}
