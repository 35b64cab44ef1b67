//! Stages: the code of one version in a node's binary, and how it starts
//! from a snapshot of its own or an older version.

use std::fmt;

use super::NodeError;
use crate::rpc::Service;
use crate::state::{Snapshot, Versioned};

/// A service running at one version, and how to snapshot its state.
pub struct Running {
    /// What the server serves.
    pub service: Service,
    /// Encodes the current state, at this version.
    pub snapshot: Box<dyn Fn() -> Result<Snapshot, NodeError> + Send + Sync>,
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
    /// state when there is none.
    fn start(&self, snapshot: Option<&Snapshot>) -> Result<Running, NodeError>;
}

/// A stage from a state type and a function that builds the service around
/// the state; the function also returns how to read the state back.
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

    fn start(&self, snapshot: Option<&Snapshot>) -> Result<Running, NodeError> {
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
                    payload,
                })
            }),
        })
    }
}

/// Drops the SO chains of versions below `oldest`.
pub(super) fn retire(service: Service, oldest: Option<u32>) -> Service {
    let Some(oldest) = oldest else { return service };
    let old: Vec<u32> = service.versions().filter(|v| *v < oldest).collect();
    old.into_iter().fold(service, Service::without_version)
}
