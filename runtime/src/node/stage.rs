//! Stages: the code of one version in a node's binary, and how it starts
//! from a snapshot of its own or an older version.

use std::fmt;

use super::NodeError;
use crate::rpc::Service;
use crate::state::{Durability, Durable, FileStore, Journaled, Snapshot, StateHandle, Versioned};

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
}

/// A stage whose state is [`Durable`]: every write the service makes
/// through it is journaled and synced before the call is answered, and
/// starting replays the journal after the snapshot, so a node killed at any
/// moment comes back with every write it acknowledged. `build` makes the
/// service around the state (the service object keeps a clone).
pub fn durable_stage<S, F>(build: F) -> impl Stage
where
    S: Journaled + Default,
    F: Fn(Durable<S>) -> Service + Send + Sync + 'static,
{
    DurableStage {
        build,
        _state: std::marker::PhantomData::<fn() -> S>,
    }
}

struct DurableStage<F, S> {
    build: F,
    _state: std::marker::PhantomData<fn() -> S>,
}

impl<S, F> Stage for DurableStage<F, S>
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
        let state = Durable::<S>::recover(storage.store, snapshot, storage.durability)?;
        let service = (self.build)(state.clone());
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

    fn start(&self, snapshot: Option<&Snapshot>, _: Storage<'_>) -> Result<Running, NodeError> {
        let state = match snapshot {
            Some(s) => S::decode_from(s.version, &s.payload)?,
            None => S::default(),
        };
        let (service, read) = (self.build)(state);
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
