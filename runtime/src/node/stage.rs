//! Stages: the code of one version in a node's binary, and how it starts
//! from a snapshot of its own or an older version.

use std::fmt;
use std::sync::Arc;

use super::NodeError;
use crate::rpc::Service;
use crate::schema::Encoding;
use crate::state::{
    Dropped, Durability, Durable, FileStore, Follower, Follows, Journaled, Reversible, Snapshot,
    StateHandle, Versioned, follower,
};

/// A service running at one version, and how to snapshot its state.
pub struct Running {
    /// What the server serves.
    pub service: Service,
    /// Encodes the current state, at this version.
    pub snapshot: Box<dyn Fn() -> Result<Snapshot, NodeError> + Send + Sync>,
    /// The journaled state, for a stage that keeps one ([`durable_stage`]).
    pub state: Option<StateHandle>,
}

/// Where a stage's state lives: the node's store, and when its writes are
/// acknowledged (for stages that journal them).
#[derive(Debug, Clone, Copy)]
pub struct Storage<'a> {
    /// The node's snapshot store; journals live beside its snapshots.
    pub store: &'a FileStore,
    /// When a journaled write is acknowledged.
    pub durability: Durability,
}

impl<'a> Storage<'a> {
    /// A node's storage: its store, with its configured durability.
    pub(super) fn of(store: &'a FileStore, config: &super::NodeConfig) -> Self {
        Storage {
            store,
            durability: config.durability,
        }
    }
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("service", &self.service)
            .finish()
    }
}

/// The code of one version in a node's binary: how to start it from a
/// snapshot of its own or any older version (transforming), or from nothing.
pub trait Stage: Send + Sync + 'static {
    /// The version this stage runs.
    fn version(&self) -> u32;
    /// Starts from `snapshot` (transformed to this version), or from fresh
    /// state when there is none; a journaling stage also replays the
    /// journal in `storage` after the snapshot.
    fn start(
        &self,
        snapshot: Option<&Snapshot>,
        storage: Storage<'_>,
    ) -> Result<Running, NodeError>;

    /// Prepares this version's state from the committed snapshot and the
    /// previous version's journal in `store`, reading only, while the
    /// previous version still serves: `None` when this stage cannot follow
    /// the previous version's changes, and the upgrade then transforms
    /// during its pause. See [`DurableStage::following`].
    fn prepare(&self, store: &FileStore) -> Option<Result<Box<dyn Prepared>, NodeError>> {
        let _ = store;
        None
    }

    /// Starts from `snapshot` (transformed to this version) or fresh state,
    /// in memory: nothing is read or written on disk. What the conformance
    /// tests (`upshift::conformance`) run each version on; `None` for a
    /// stage that cannot.
    fn start_in_memory(&self, snapshot: Option<&Snapshot>) -> Option<Result<Running, NodeError>> {
        let _ = snapshot;
        None
    }

    /// What this version's state encodes as, so states can be drawn for the
    /// conformance tests; `None` for a stage that does not say.
    fn state_encoding(&self) -> Option<&'static Encoding> {
        None
    }

    /// The state in `snapshot` (of this version) transformed back into the
    /// previous version's, with what that version cannot hold: what a
    /// rollback commits. [`NodeError::NotReversible`] for a stage that
    /// cannot roll back (see [`DurableStage::reversible`]).
    fn downgrade(&self, snapshot: &Snapshot) -> Result<(Snapshot, Dropped), NodeError> {
        let _ = snapshot;
        Err(NodeError::NotReversible {
            version: self.version(),
        })
    }

    /// Whether [`Stage::downgrade`] can roll this version back (asked
    /// before a rollback holds calls back).
    fn reversible(&self) -> bool {
        false
    }
}

/// How a reversible stage turns a snapshot of its version into one of the
/// version before.
type Downgrader = fn(&Snapshot) -> Result<(Snapshot, Dropped), NodeError>;

fn downgrader<S: Reversible>() -> Downgrader {
    |snapshot| {
        let state = S::decode_from(snapshot.version, &snapshot.payload)?;
        let mut dropped = Dropped::default();
        let older = state
            .downgrade(&mut dropped)
            .map_err(|e| NodeError::State(e.into()))?;
        let payload = postcard::to_allocvec(&older).map_err(|e| NodeError::EncodeState {
            version: S::Previous::VERSION,
            reason: e.to_string(),
        })?;
        let older = Snapshot {
            version: S::Previous::VERSION,
            applied: snapshot.applied,
            payload,
        };
        Ok((older, dropped))
    }
}

/// The state of `S`'s version from `snapshot` (transformed), or fresh.
fn decode_or_default<S: Versioned + Default>(snapshot: Option<&Snapshot>) -> Result<S, NodeError> {
    Ok(match snapshot {
        Some(s) => S::decode_from(s.version, &s.payload)?,
        None => S::default(),
    })
}

/// A stage whose state is [`Durable`]: every write the service makes
/// through it is journaled and synced before the call is answered, and
/// starting replays the journal after the snapshot, so a node killed at any
/// moment comes back with every write it acknowledged. `build` makes the
/// service around the state (the service object keeps a clone).
///
/// An upgrade to this stage transforms the state while calls are held back,
/// for a time that grows with the state; for a state that [`Follows`] its
/// previous version, [`DurableStage::following`] makes it transform in the
/// background instead.
pub fn durable_stage<S, F>(build: F) -> DurableStage<S, F>
where
    S: Journaled + Default,
    F: Fn(Durable<S>) -> Service + Send + Sync + 'static,
{
    DurableStage {
        build: Arc::new(build),
        follow: None,
        reverse: None,
    }
}

/// The stage [`durable_stage`] makes.
pub struct DurableStage<S: Journaled, F> {
    build: Arc<F>,
    follow: Option<Follower<S>>,
    reverse: Option<Downgrader>,
}

impl<S: Journaled, F> fmt::Debug for DurableStage<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableStage")
            .field("version", &S::VERSION)
            .field("following", &self.follow.is_some())
            .field("reversible", &self.reverse.is_some())
            .finish()
    }
}

impl<S, F> DurableStage<S, F>
where
    S: Follows + Default,
    F: Fn(Durable<S>) -> Service + Send + Sync + 'static,
{
    /// Upgrades to this stage transform in the background: the previous
    /// version keeps serving while its state is transformed, and its
    /// changes since are followed ([`Follows::follow`]); calls are held
    /// back only to follow the last few and switch, a pause that does not
    /// grow with the state.
    pub fn following(mut self) -> Self {
        self.follow = Some(follower::<S>());
        self
    }
}

impl<S, F> DurableStage<S, F>
where
    S: Journaled + Reversible + Default,
    F: Fn(Durable<S>) -> Service + Send + Sync + 'static,
{
    /// This version can be rolled back to the one before, with its state:
    /// the node commits the state transformed back ([`Reversible`], which
    /// `#[upshift::state(rollback)]` generates) and starts the previous
    /// version's stage on it. See `Node::upgrade_to`.
    pub fn reversible(mut self) -> Self {
        self.reverse = Some(downgrader::<S>());
        self
    }
}

impl<S, F> DurableStage<S, F>
where
    S: Journaled + Default,
    F: Fn(Durable<S>) -> Service + Send + Sync + 'static,
{
    fn running(build: &F, state: Durable<S>) -> Result<Running, NodeError> {
        let service = build(state.clone());
        if service.version() != S::VERSION {
            return Err(NodeError::VersionMismatch {
                service: service.version(),
                state: S::VERSION,
            });
        }
        let handle = StateHandle::of(&state);
        Ok(Running {
            service,
            snapshot: Box::new(move || {
                state.snapshot().map_err(|reason| NodeError::EncodeState {
                    version: S::VERSION,
                    reason,
                })
            }),
            state: Some(handle),
        })
    }
}

impl<S, F> Stage for DurableStage<S, F>
where
    S: Journaled + Default,
    F: Fn(Durable<S>) -> Service + Send + Sync + 'static,
{
    fn version(&self) -> u32 {
        S::VERSION
    }

    fn start(
        &self,
        snapshot: Option<&Snapshot>,
        storage: Storage<'_>,
    ) -> Result<Running, NodeError> {
        let state =
            Durable::<S>::recover(storage.store, snapshot, storage.durability, self.follow)?;
        Self::running(&self.build, state)
    }

    fn start_in_memory(&self, snapshot: Option<&Snapshot>) -> Option<Result<Running, NodeError>> {
        Some(
            decode_or_default::<S>(snapshot)
                .and_then(|state| Self::running(&self.build, Durable::in_memory(state))),
        )
    }

    fn state_encoding(&self) -> Option<&'static Encoding> {
        Some(S::ENCODING)
    }

    fn downgrade(&self, snapshot: &Snapshot) -> Result<(Snapshot, Dropped), NodeError> {
        match self.reverse {
            Some(reverse) => reverse(snapshot),
            None => Err(NodeError::NotReversible {
                version: S::VERSION,
            }),
        }
    }

    fn reversible(&self) -> bool {
        self.reverse.is_some()
    }

    fn prepare(&self, store: &FileStore) -> Option<Result<Box<dyn Prepared>, NodeError>> {
        let follow = self.follow?;
        Some(
            Durable::<S>::prepare(store, follow)
                .map(|(state, seq)| {
                    Box::new(PreparedState {
                        state,
                        seq,
                        follow,
                        build: self.build.clone(),
                    }) as Box<dyn Prepared>
                })
                .map_err(NodeError::from),
        )
    }
}

/// A version's state made ready while the previous version still serves:
/// transformed from a consistent copy, and then kept up with the previous
/// version's changes until the switch ([`Stage::prepare`]).
pub trait Prepared: Send {
    /// The last of the previous version's changes it holds.
    fn applied(&self) -> u64;
    /// Follows the previous version's changes made since, in order
    /// (`(seq, encoded change)`; the ones it holds already are skipped).
    fn follow(&mut self, changes: &[(u64, Vec<u8>)]) -> Result<(), NodeError>;
    /// Follows what the journals in `store` hold after
    /// [`Prepared::applied`]: a restart-mode successor catches up this way
    /// once the previous process has exited. An error when they no longer
    /// hold the next change (a checkpoint compacted it away).
    fn catch_up(&mut self, store: &FileStore) -> Result<(), NodeError>;
    /// Encodes it, to stage its snapshot before the switch.
    fn snapshot(&self) -> Result<Snapshot, NodeError>;
    /// Starts the service on it, journaling after [`Prepared::applied`]
    /// (the previous version's journal was moved aside).
    fn start(self: Box<Self>, storage: Storage<'_>) -> Result<Running, NodeError>;
}

struct PreparedState<S: Journaled, F> {
    state: S,
    seq: u64,
    follow: Follower<S>,
    build: Arc<F>,
}

impl<S, F> Prepared for PreparedState<S, F>
where
    S: Journaled + Default,
    F: Fn(Durable<S>) -> Service + Send + Sync + 'static,
{
    fn applied(&self) -> u64 {
        self.seq
    }

    fn follow(&mut self, changes: &[(u64, Vec<u8>)]) -> Result<(), NodeError> {
        let from = S::VERSION - 1;
        let held = self.seq;
        for (seq, payload) in changes.iter().filter(|(s, _)| *s > held) {
            if *seq != self.seq + 1 {
                return Err(NodeError::Prepare {
                    version: S::VERSION,
                    reason: format!(
                        "it holds the changes up to {}, and the next one kept is {seq}",
                        self.seq
                    ),
                });
            }
            (self.follow)(&mut self.state, from, payload)?;
            self.seq = *seq;
        }
        Ok(())
    }

    fn catch_up(&mut self, store: &FileStore) -> Result<(), NodeError> {
        Durable::catch_up(store, &mut self.state, &mut self.seq, self.follow)?;
        Ok(())
    }

    fn snapshot(&self) -> Result<Snapshot, NodeError> {
        let payload = postcard::to_allocvec(&self.state).map_err(|e| NodeError::EncodeState {
            version: S::VERSION,
            reason: e.to_string(),
        })?;
        Ok(Snapshot {
            version: S::VERSION,
            applied: self.seq,
            payload,
        })
    }

    fn start(self: Box<Self>, storage: Storage<'_>) -> Result<Running, NodeError> {
        let this = *self;
        let state = Durable::resume(storage.store, this.state, this.seq, storage.durability)?;
        DurableStage::<S, F>::running(&this.build, state)
    }
}

/// A stage from a state type and a function that builds the service around
/// the state; the function also returns how to read the state back. Its
/// state is saved only by checkpoints and upgrades: a crash loses the writes
/// since the last one. [`durable_stage`] loses nothing.
pub fn stage<S, F, G>(build: F) -> impl Stage
where
    S: Versioned + Default + 'static,
    F: Fn(S) -> (Service, G) + Send + Sync + 'static,
    G: Fn() -> S + Send + Sync + 'static,
{
    StageFn {
        build,
        _state: std::marker::PhantomData::<fn() -> (S, G)>,
    }
}

struct StageFn<F, S, G> {
    build: F,
    _state: std::marker::PhantomData<fn() -> (S, G)>,
}

impl<S, F, G> Stage for StageFn<F, S, G>
where
    S: Versioned + Default + 'static,
    F: Fn(S) -> (Service, G) + Send + Sync + 'static,
    G: Fn() -> S + Send + Sync + 'static,
{
    fn version(&self) -> u32 {
        S::VERSION
    }

    // Its state lives in memory; the store is not read at all.
    fn start(&self, snapshot: Option<&Snapshot>, _: Storage<'_>) -> Result<Running, NodeError> {
        self.run(snapshot)
    }

    fn start_in_memory(&self, snapshot: Option<&Snapshot>) -> Option<Result<Running, NodeError>> {
        Some(self.run(snapshot))
    }

    fn state_encoding(&self) -> Option<&'static Encoding> {
        Some(S::ENCODING)
    }
}

impl<S, F, G> StageFn<F, S, G>
where
    S: Versioned + Default + 'static,
    F: Fn(S) -> (Service, G) + Send + Sync + 'static,
    G: Fn() -> S + Send + Sync + 'static,
{
    fn run(&self, snapshot: Option<&Snapshot>) -> Result<Running, NodeError> {
        let (service, read) = (self.build)(decode_or_default::<S>(snapshot)?);
        if service.version() != S::VERSION {
            return Err(NodeError::VersionMismatch {
                service: service.version(),
                state: S::VERSION,
            });
        }
        Ok(Running {
            service,
            snapshot: Box::new(move || {
                let payload =
                    postcard::to_allocvec(&read()).map_err(|e| NodeError::EncodeState {
                        version: S::VERSION,
                        reason: e.to_string(),
                    })?;
                Ok(Snapshot {
                    version: S::VERSION,
                    applied: 0,
                    payload,
                })
            }),
            state: None,
        })
    }
}

/// Drops the SO chains of versions below `oldest`.
pub(super) fn retire(service: Service, oldest: Option<u32>) -> Service {
    let Some(oldest) = oldest else { return service };
    let old: Vec<u32> = service.versions().filter(|v| *v < oldest).collect();
    old.into_iter().fold(service, Service::without_version)
}
