//! State that loses nothing it acknowledged: a [`Durable`] cell holds a
//! version's state in memory, and every change to it goes through the
//! journal, synced before the write returns.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::journal::{self, Journal};
use super::{FileStore, Snapshot, StateError, StoreError, Versioned, decode_payload};
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

/// A state that takes its previous version's changes: what lets an upgrade
/// to this version transform the state in the background while the
/// previous version keeps serving and writing. The upgrade transforms a
/// consistent copy, then *follows* the changes the previous version made
/// since, and holds calls only for the last few; its pause does not grow
/// with the state. A node's stage opts in with
/// [`DurableStage::following`](crate::node::DurableStage::following).
///
/// `follow` must agree with the transform: for every previous state `s`
/// and change `c`, transforming `s` after applying `c` gives the state that
/// following `c` gives after transforming `s`. Like `apply`, it must be
/// deterministic: recovery replays the previous version's journal through
/// it after a crash that came right after the switch.
pub trait Follows: Journaled {
    /// The previous version's state.
    type Previous: Journaled;

    /// Applies a change the previous version made to this version's state.
    fn follow(&mut self, change: <Self::Previous as Journaled>::Change);
}

/// How a state applies an encoded change of its previous version, for
/// code that does not know the types (the node's stages).
pub type Follower<S> = fn(&mut S, u32, &[u8]) -> Result<(), StateError>;

/// The [`Follower`] of a state that [`Follows`] its previous version.
pub fn follower<S: Follows>() -> Follower<S> {
    |state, version, payload| {
        state.follow(decode_payload(version, payload)?);
        Ok(())
    }
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

/// The changes a journal entry carries, as `(seq, encoded change)`.
pub(crate) type Entries = Vec<(u64, Vec<u8>)>;

struct Applied<S> {
    state: S,
    /// The sequence number of the last change applied.
    seq: u64,
    /// While a background upgrade prepares the next version: every change
    /// journaled since it began, for it to follow.
    tap: Option<Entries>,
    /// Why this state takes no more changes: the node switched away from it.
    sealed: Option<Arc<str>>,
}

impl<S> Applied<S> {
    fn new(state: S, seq: u64) -> Self {
        Applied {
            state,
            seq,
            tap: None,
            sealed: None,
        }
    }
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
                applied: RwLock::new(Applied::new(state, 0)),
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
            if let Some(why) = &applied.sealed {
                return Err(WriteError::Failed(why.clone()));
            }
            // Applied first: a change whose `apply` panics is never
            // journaled, so recovery cannot replay the panic.
            let output = applied.state.apply(change);
            // In the lock, so the journal's order is the order of applying.
            let seq = journal.append(&payload).map_err(WriteError::Failed)?;
            applied.seq = seq;
            if let Some(tap) = &mut applied.tap {
                tap.push((seq, payload));
            }
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
        if let (Some(journal), Some(payload), None) = (&self.cell.journal, payload, &applied.sealed)
            && let Ok(seq) = journal.append(&payload)
        {
            applied.seq = seq;
            if let Some(tap) = &mut applied.tap {
                tap.push((seq, payload));
            }
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
        Self::recover(store, snapshot.as_ref(), durability, None)
    }

    /// [`Durable::open`] for a state that [`Follows`] its previous version:
    /// after a crash right after a background upgrade's switch, the
    /// previous version's journal is replayed through `follow`.
    pub fn open_following(store: &FileStore, durability: Durability) -> Result<Self, StoreError>
    where
        S: Default + Follows,
    {
        let snapshot = super::SnapshotStore::read(store)?.map(|(s, _)| s);
        Self::recover(store, snapshot.as_ref(), durability, Some(follower::<S>()))
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

    /// Reads the state of `S`'s version from `snapshot` (of this or an
    /// older version, transformed) and the journals after it, writing
    /// nothing: entries of `S`'s version are applied, entries of the version
    /// before it followed (with `follow`), in one unbroken numbering.
    fn replay(
        store: &FileStore,
        snapshot: Option<&Snapshot>,
        follow: Option<Follower<S>>,
    ) -> Result<Replayed<S>, StoreError>
    where
        S: Default,
    {
        let (dir, name) = (store.dir(), store.name());
        let (mut state, applied) = match snapshot {
            Some(s) => (
                S::decode_from(s.version, &s.payload).map_err(|source| StoreError::State {
                    path: dir.to_path_buf(),
                    source,
                })?,
                s.applied,
            ),
            None => (S::default(), 0),
        };
        let corrupt = |path: &std::path::Path, detail: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        };
        let mut prev =
            journal::recover_prev(dir, name)?.map(|r| (journal::prev_path(dir, name), r));
        let mut current = journal::recover(dir, name)?.map(|r| (journal::path(dir, name), r));
        // A switch that never committed: the journal moved aside is still
        // the committed snapshot's, and the new one must be empty.
        let restore = match (&prev, snapshot) {
            (Some((_, p)), Some(s)) if p.version == s.version => {
                if let Some((path, c)) = current.as_ref().filter(|(_, c)| !c.entries.is_empty()) {
                    return Err(corrupt(
                        path,
                        format!(
                            "it holds {} changes of v{}, but the snapshot of v{} was never committed",
                            c.entries.len(),
                            c.version,
                            c.version
                        ),
                    ));
                }
                current = prev.take();
                true
            }
            _ => false,
        };
        let mut seq = applied;
        Self::replay_journals([&prev, &current], &mut state, &mut seq, follow)?;
        Ok(Replayed {
            state,
            seq,
            current: current.map(|(_, r)| r),
            restore,
        })
    }

    /// Applies (entries of `S`'s version) or follows (entries of the
    /// version before) every entry after `seq` in `files`, in order.
    fn replay_journals(
        files: [&Option<(std::path::PathBuf, journal::Recovered)>; 2],
        state: &mut S,
        seq: &mut u64,
        follow: Option<Follower<S>>,
    ) -> Result<(), StoreError> {
        let corrupt = |path: &std::path::Path, detail: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        };
        for (path, file) in files.into_iter().flatten() {
            let after: Vec<&(u64, Vec<u8>)> =
                file.entries.iter().filter(|(s, _)| *s > *seq).collect();
            let Some((first, _)) = after.first() else {
                continue;
            };
            if *first != *seq + 1 {
                return Err(corrupt(
                    path,
                    format!(
                        "the state holds the changes up to {seq}, but the journal continues at {first}: changes are missing"
                    ),
                ));
            }
            let follows = file.version + 1 == S::VERSION;
            let follow = match follow {
                Some(f) if follows => Some(f),
                _ if file.version == S::VERSION => None,
                _ => {
                    let hint = if follows {
                        format!(
                            "v{} does not follow v{}'s changes (its stage is not `.following()`)",
                            S::VERSION,
                            file.version
                        )
                    } else {
                        format!("v{} cannot replay them", S::VERSION)
                    };
                    return Err(corrupt(
                        path,
                        format!(
                            "the journal holds {} changes of v{} after the snapshot, and {hint}; start the node with the code of v{} first",
                            after.len(),
                            file.version,
                            file.version
                        ),
                    ));
                }
            };
            for (s, payload) in after {
                let source = |source| StoreError::State {
                    path: path.clone(),
                    source,
                };
                match follow {
                    Some(f) => f(state, file.version, payload).map_err(source)?,
                    None => {
                        let change: S::Change =
                            decode_payload(file.version, payload).map_err(source)?;
                        state.apply(change);
                    }
                }
                *seq = *s;
            }
        }
        Ok(())
    }

    /// Brings a prepared `state` holding the changes up to `seq` up to date
    /// with the journals in `store` (written since by the process that
    /// owned the directory); an error when they no longer hold the change
    /// after `seq` (a checkpoint compacted it away).
    pub(crate) fn catch_up(
        store: &FileStore,
        state: &mut S,
        seq: &mut u64,
        follow: Follower<S>,
    ) -> Result<(), StoreError> {
        let (dir, name) = (store.dir(), store.name());
        let prev = journal::recover_prev(dir, name)?.map(|r| (journal::prev_path(dir, name), r));
        let current = journal::recover(dir, name)?.map(|r| (journal::path(dir, name), r));
        Self::replay_journals([&prev, &current], state, seq, Some(follow))
    }

    /// Opens the state of `S`'s version in `store`: `snapshot` (of this or
    /// an older version, transformed), then every journal entry after it
    /// (see [`Durable::replay`]).
    pub(crate) fn recover(
        store: &FileStore,
        snapshot: Option<&Snapshot>,
        durability: Durability,
        follow: Option<Follower<S>>,
    ) -> Result<Self, StoreError>
    where
        S: Default,
    {
        let Replayed {
            state,
            seq,
            current,
            restore,
        } = Self::replay(store, snapshot, follow)?;
        if restore {
            journal::restore(store.dir(), store.name())?;
        }
        // A journal of an older version may be replaced only once a
        // snapshot of this version is committed: now, when the snapshot
        // read is one; else after the node commits the transformed state
        // (`restart_journal`), and until then this one takes no writes.
        let committed = snapshot.is_none_or(|s| s.version == S::VERSION);
        Self::with_journal(store, state, seq, current.as_ref(), committed, durability)
    }

    /// The state of `S`'s version made from the committed snapshot and the
    /// journals after it, without touching them: an upgrade prepares the
    /// next version this way while the running one keeps writing.
    pub(crate) fn prepare(store: &FileStore, follow: Follower<S>) -> Result<(S, u64), StoreError>
    where
        S: Default,
    {
        let snapshot = super::SnapshotStore::read(store)?.map(|(s, _)| s);
        let replayed = Self::replay(store, snapshot.as_ref(), Some(follow))?;
        Ok((replayed.state, replayed.seq))
    }

    /// A prepared state, journaling after `seq` in a new journal (the
    /// previous version's was moved aside).
    pub(crate) fn resume(
        store: &FileStore,
        state: S,
        seq: u64,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        Self::with_journal(store, state, seq, None, true, durability)
    }

    fn with_journal(
        store: &FileStore,
        state: S,
        seq: u64,
        found: Option<&journal::Recovered>,
        committed: bool,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let journal = match durability {
            Durability::Snapshots => None,
            Durability::Sync => Some(Duration::ZERO),
            Durability::Window(w) => Some(w),
        }
        .map(|window| {
            Journal::open(
                store.dir(),
                store.name(),
                S::VERSION,
                seq,
                found,
                committed,
                window,
            )
        })
        .transpose()?;
        Ok(Durable {
            cell: Arc::new(Cell {
                applied: RwLock::new(Applied::new(state, seq)),
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

/// What [`Durable::replay`] found.
struct Replayed<S> {
    state: S,
    /// The last change applied.
    seq: u64,
    /// The journal to append to.
    current: Option<journal::Recovered>,
    /// Whether an uncommitted switch's journal must be moved back.
    restore: bool,
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
    fn journal(&self) -> Option<Journal>;
    fn tap(&self) -> Option<u64>;
    fn drain(&self, seal: Option<&str>) -> Entries;
    fn release(&self);
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
    fn journal(&self) -> Option<Journal> {
        self.cell.journal.clone()
    }
    fn tap(&self) -> Option<u64> {
        self.cell.journal.as_ref()?;
        let mut applied = write(&self.cell.applied);
        applied.tap = Some(Vec::new());
        Some(applied.seq)
    }
    fn drain(&self, seal: Option<&str>) -> Entries {
        let mut applied = write(&self.cell.applied);
        if let Some(why) = seal {
            applied.sealed = Some(why.into());
            return applied.tap.take().unwrap_or_default();
        }
        applied.tap.as_mut().map(std::mem::take).unwrap_or_default()
    }
    fn release(&self) {
        let mut applied = write(&self.cell.applied);
        applied.tap = None;
        applied.sealed = None;
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

    /// Starts keeping every change journaled from now on, for a background
    /// upgrade to follow; the last change before it. `None` for a state
    /// without a journal, or one whose previous version's journal is still
    /// kept (a checkpoint removes it).
    pub(crate) fn tap(&self) -> Option<u64> {
        if self.0.journal()?.has_prev() {
            return None;
        }
        self.0.tap()
    }

    /// The changes kept since the last drain.
    pub(crate) fn drain(&self) -> Entries {
        self.0.drain(None)
    }

    /// The last changes kept; after this the state refuses writes with
    /// `why` (the node switches away from it).
    pub(crate) fn seal(&self, why: &str) -> Entries {
        self.0.drain(Some(why))
    }

    /// An upgrade was called off: the state takes writes again and keeps
    /// no more changes for it.
    pub(crate) fn release(&self) {
        self.0.release();
    }

    /// Waits until the journal holds change `seq` on disk.
    pub(crate) async fn synced(&self, seq: u64) -> Result<(), Arc<str>> {
        match self.0.journal() {
            Some(j) => j.synced(seq).await,
            None => Ok(()),
        }
    }

    /// Moves the journal aside as the previous version's (see the journal
    /// module's notes on switching).
    pub(crate) fn retire_journal(&self) -> Result<(), StoreError> {
        match self.0.journal() {
            Some(j) => j.retire(),
            None => Ok(()),
        }
    }

    /// Whether every acknowledged change is journaled (a checkpoint then
    /// only bounds the replay).
    pub(crate) fn journaled(&self) -> bool {
        self.0.journal().is_some()
    }

    /// Whether a previous version's journal is still kept (until the next
    /// checkpoint after a background upgrade).
    pub(crate) fn has_prev_journal(&self) -> bool {
        self.0.journal().is_some_and(|j| j.has_prev())
    }

    /// Moves a journal set aside by [`StateHandle::retire_journal`] back,
    /// when the switch did not commit.
    pub(crate) fn restore_journal(&self) -> Result<(), StoreError> {
        match self.0.journal() {
            Some(j) => {
                let (dir, name) = j.place();
                journal::restore(dir, name)
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SnapshotStore;

    /// A state where applying a change twice shows: a running sum and the
    /// list of what was added.
    #[derive(
        Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize, upshift::Schema,
    )]
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
        Durable::recover(store, snapshot.as_ref(), Durability::Sync, None).expect("recover")
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

    /// A state dropped and opened again in one process (a node started
    /// again): the old journal's writer is done before the new one reads
    /// the file, so the two never append the same sequence numbers.
    #[test]
    fn a_state_opened_again_in_process_finds_the_old_writer_done() {
        let dir = dir("reopen");
        let store = FileStore::open(&dir, "sum").expect("open");
        for round in 0..3u64 {
            let snapshot = store.read().expect("read").map(|(s, _)| s);
            // A window keeps the writer asleep with the entry unwritten
            // when the state is dropped.
            let window = Durability::Window(Duration::from_millis(100));
            let state: Durable<Sum> =
                Durable::recover(&store, snapshot.as_ref(), window, None).expect("recover");
            state.write_relaxed(round + 1);
            drop(state);
        }
        // Each round's write, once each, in order: none duplicated or lost.
        let state = open(&store);
        assert_eq!(state.read(|s| s.added.clone()), vec![1, 2, 3]);
    }

    /// Compactions while writers append: every acknowledged write is in the
    /// journal or the snapshot, once, whatever a compaction's copy missed.
    #[test]
    fn compactions_during_writes_keep_every_write_once() {
        let dir = dir("compact-live");
        let store = FileStore::open(&dir, "sum").expect("open");
        let writers = 4u64;
        let each = 300u64;
        {
            let state = std::sync::Arc::new(open(&store));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let checkpoints = {
                let (state, store, done) = (state.clone(), store.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut rounds = 0;
                    while !done.load(std::sync::atomic::Ordering::SeqCst) || rounds < 3 {
                        let snapshot = state.snapshot().expect("snapshot");
                        store.write(&snapshot).expect("commit");
                        state.compact(snapshot.applied).expect("compact");
                        rounds += 1;
                    }
                    rounds
                })
            };
            runtime.block_on(async {
                let tasks: Vec<_> = (0..writers)
                    .map(|w| {
                        let state = state.clone();
                        tokio::spawn(async move {
                            for i in 0..each {
                                state.write(1 + w * each + i).await;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("writer");
                }
            });
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            assert!(checkpoints.join().expect("checkpoints") >= 3);
        }
        let state = open(&store);
        let mut added = state.read(|s| s.added.clone());
        added.sort_unstable();
        assert_eq!(added, (1..=writers * each).collect::<Vec<_>>());
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
        let err = Durable::<Sum>::recover(&store, snapshot.as_ref(), Durability::Sync, None)
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
            let state =
                Durable::<Sum>::recover(&store, None, Durability::Snapshots, None).expect("open");
            block_on(state.write(1));
            store
                .write(&state.snapshot().expect("snapshot"))
                .expect("commit");
            block_on(state.write(2));
        }
        assert!(!journal::path(&dir, "sum").exists());
        assert_eq!(open(&store).read(|s| s.added.clone()), vec![1]);
    }

    /// The next version of `Sum`: signed amounts. Its transform keeps the
    /// total and the list; it follows `Sum`'s changes as the same amounts.
    #[derive(
        Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize, upshift::Schema,
    )]
    struct Tally {
        total: i64,
        log: Vec<i64>,
    }

    impl Versioned for Tally {
        const NAME: &'static str = "sum";
        const VERSION: u32 = 2;
        const OLDEST: u32 = 1;
        fn decode_from(version: u32, payload: &[u8]) -> Result<Self, StateError> {
            if version == 1 {
                let sum: Sum = decode_payload(version, payload)?;
                return Ok(Tally {
                    total: sum.total as i64,
                    log: sum.added.iter().map(|n| *n as i64).collect(),
                });
            }
            decode_payload(version, payload)
        }
    }

    impl Journaled for Tally {
        type Change = i64;
        type Output = i64;
        fn apply(&mut self, n: i64) -> i64 {
            self.total += n;
            self.log.push(n);
            self.total
        }
    }

    impl Follows for Tally {
        type Previous = Sum;
        fn follow(&mut self, n: u64) {
            self.apply(n as i64);
        }
    }

    /// Where a background switch from `Sum` to `Tally` stops (a crash).
    #[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
    enum Point {
        Sealed,
        Retired,
        Resumed,
        Committed,
        Written,
        Checkpointed,
    }

    /// Runs a background switch from v1 to v2 up to `stop` and drops
    /// everything there; returns what was acknowledged, in order.
    fn switch_until(dir: &std::path::Path, stop: Point) -> Vec<i64> {
        let store = FileStore::open(dir, "sum").expect("open");
        let v1 = open(&store);
        block_on(async {
            for n in 1..=3 {
                v1.write(n).await;
            }
        });
        let snapshot = v1.snapshot().expect("snapshot");
        store.write(&snapshot).expect("commit");
        v1.compact(snapshot.applied).expect("compact");
        block_on(async {
            v1.write(4).await;
            v1.write(5).await;
        });
        let handle = StateHandle::of(&v1);
        let from = handle.tap().expect("a journal to tap");
        assert_eq!(from, 5);
        block_on(handle.synced(from)).expect("synced");
        let follow = follower::<Tally>();
        let (mut next, mut seq) = Durable::<Tally>::prepare(&store, follow).expect("prepare");
        assert_eq!((next.log.clone(), seq), (vec![1, 2, 3, 4, 5], 5));
        let staged = store
            .stage(&Snapshot {
                version: 2,
                applied: seq,
                payload: postcard::to_allocvec(&next).expect("encode"),
            })
            .expect("stage");
        // The running version keeps writing while the next one is prepared.
        block_on(async {
            v1.write(6).await;
            v1.write(7).await;
        });
        let mut acked: Vec<i64> = (1..=7).collect();
        for (s, payload) in handle.seal("switched") {
            follow(&mut next, 1, &payload).expect("follow");
            seq = s;
        }
        assert_eq!(seq, 7);
        assert!(
            block_on(v1.try_write(99)).is_err(),
            "a sealed state refuses writes"
        );
        block_on(handle.synced(seq)).expect("synced");
        if stop == Point::Sealed {
            return acked;
        }
        handle.retire_journal().expect("retire");
        if stop == Point::Retired {
            return acked;
        }
        let v2 = Durable::<Tally>::resume(&store, next, seq, Durability::Sync).expect("resume");
        if stop == Point::Resumed {
            return acked;
        }
        staged.commit().expect("commit the switch");
        if stop == Point::Committed {
            return acked;
        }
        block_on(v2.write(-8));
        acked.push(-8);
        if stop == Point::Written {
            return acked;
        }
        let snapshot = v2.snapshot().expect("snapshot");
        store.write(&snapshot).expect("checkpoint");
        v2.compact(snapshot.applied).expect("compact");
        assert!(
            !journal::prev_path(dir, "sum").exists(),
            "a checkpoint removes .prev"
        );
        block_on(v2.write(9));
        acked.push(9);
        acked
    }

    #[test]
    fn a_crash_anywhere_in_a_background_switch_keeps_one_version_and_every_write() {
        for stop in [
            Point::Sealed,
            Point::Retired,
            Point::Resumed,
            Point::Committed,
            Point::Written,
            Point::Checkpointed,
        ] {
            let dir = dir(&format!("switch-{stop:?}"));
            let acked = switch_until(&dir, stop);
            let store = FileStore::open(&dir, "sum").expect("reopen");
            let (snapshot, _) = store.read().expect("read").expect("a snapshot");
            let committed = stop >= Point::Committed;
            assert_eq!(snapshot.version, if committed { 2 } else { 1 }, "{stop:?}");
            if committed {
                let state = Durable::<Tally>::recover(
                    &store,
                    Some(&snapshot),
                    Durability::Sync,
                    Some(follower::<Tally>()),
                )
                .expect("recover v2");
                assert_eq!(state.read(|s| s.log.clone()), acked, "{stop:?}");
                // It goes on writing, and a restart still finds everything.
                block_on(state.write(10));
                drop(state);
                let snapshot = store.read().expect("read").map(|(s, _)| s);
                let again = Durable::<Tally>::recover(
                    &store,
                    snapshot.as_ref(),
                    Durability::Sync,
                    Some(follower::<Tally>()),
                )
                .expect("recover v2 again");
                assert_eq!(again.read(|s| s.log.last().copied()), Some(10), "{stop:?}");
                assert_eq!(again.read(|s| s.log.len()), acked.len() + 1, "{stop:?}");
            } else {
                let state = open(&store);
                let added: Vec<i64> = state.read(|s| s.added.iter().map(|n| *n as i64).collect());
                assert_eq!(added, acked, "{stop:?}");
                // The journal moved aside is the journal again.
                assert!(!journal::prev_path(&dir, "sum").exists(), "{stop:?}");
                block_on(state.write(10));
                drop(state);
                assert_eq!(open(&store).read(|s| s.total), 38, "{stop:?}");
            }
        }
    }

    #[test]
    fn a_stage_that_does_not_follow_says_so_after_a_switch() {
        let dir = dir("unfollowed");
        switch_until(&dir, Point::Committed);
        let store = FileStore::open(&dir, "sum").expect("reopen");
        let snapshot = store.read().expect("read").map(|(s, _)| s);
        let err = Durable::<Tally>::recover(&store, snapshot.as_ref(), Durability::Sync, None)
            .expect_err("v1 changes after the v2 snapshot");
        assert!(
            err.to_string()
                .contains("v2 does not follow v1's changes (its stage is not `.following()`)"),
            "{err}"
        );
    }
}
