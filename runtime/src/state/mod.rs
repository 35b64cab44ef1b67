//! Versioned state: the transform between neighbouring versions, and the
//! store that keeps a node's snapshot crash-safe across saves and upgrades.
//!
//! `#[upshift::state]` implements [`Versioned`] for each version's root type
//! and [`Upgrade`] for each type from its previous version. A [`SnapshotStore`]
//! holds the encoded snapshot; [`FileStore`] is the embedded default. A
//! [`Durable`] state journals every change before acknowledging it, so a
//! node loses nothing it answered for.

mod durable;
mod file;
mod journal;
mod transform;

pub use durable::{
    Durability, Durable, Follower, Follows, Journaled, StateHandle, WriteError, follower,
};
pub use file::{FileStore, Staged, Step};
pub use transform::{Downgrade, Dropped, Outcome, TransformError, Upgrade};
#[doc(hidden)]
pub use transform::{Probe, ProbeAny, ProbeEq, Restored, restored};

use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::schema::Schema;

/// The root type of one version of a node's state. Its [`Schema`] says what
/// a snapshot's payload encodes as, so states can be drawn for the
/// conformance tests (`upshift::conformance`).
pub trait Versioned: Serialize + DeserializeOwned + Schema + Sized {
    /// Name of the state, written in every snapshot's header.
    const NAME: &'static str;
    /// This type's version.
    const VERSION: u32;
    /// The oldest version this type can be transformed from.
    const OLDEST: u32;

    /// Decodes a payload written at `version` and transforms it, step by step,
    /// to this version.
    fn decode_from(version: u32, payload: &[u8]) -> Result<Self, StateError>;
}

/// A version of a node's state that can be rolled back to the version
/// before it, with its state: `#[upshift::state(rollback)]` implements it
/// for the root of every version after the first (see [`Downgrade`]).
pub trait Reversible: Versioned {
    /// The root of the version before.
    type Previous: Versioned;
    /// This version's state transformed back; what the previous version
    /// cannot hold is counted in `dropped`.
    fn downgrade(self, dropped: &mut Dropped) -> Result<Self::Previous, TransformError>;
}

/// Why a payload could not become state of the wanted version.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The payload was written by a newer version than this binary knows.
    #[error(
        "state of v{found} is newer than v{known}, the version being loaded; run code that knows \
         v{found} (a rollback converts state back only in a node running v{found})"
    )]
    FutureVersion {
        /// Version in the snapshot.
        found: u32,
        /// Version being loaded.
        known: u32,
    },
    /// The payload is older than the oldest version this binary declares.
    #[error("state of v{found} is older than v{oldest}, the oldest version this binary declares")]
    TooOld {
        /// Version in the snapshot.
        found: u32,
        /// Oldest declared version.
        oldest: u32,
    },
    /// The payload does not decode as the version's root type.
    #[error("state payload of v{version} does not decode: {reason}")]
    Decode {
        /// Version in the snapshot.
        version: u32,
        /// What the decoder said.
        reason: String,
    },
    /// A transform step failed.
    #[error(transparent)]
    Transform(#[from] TransformError),
}

/// An encoded snapshot: the version it was written at and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// State version of the payload.
    pub version: u32,
    /// The sequence number of the last journal entry the payload holds
    /// (0 for state kept without a journal).
    pub applied: u64,
    /// postcard-encoded root value.
    pub payload: Vec<u8>,
}

/// Why a store could not read or write a snapshot. Every variant names the
/// file (or key) involved; a bad snapshot is never replaced by a default.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system refused an operation.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not start with upshift's snapshot magic.
    #[error(
        "{path} is not an upshift snapshot (bad magic bytes); move it out of the state directory"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// The file ends before its header or payload does.
    #[error("{path} is truncated: {detail}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Which part is missing.
        detail: String,
    },
    /// The checksum or framing of the file does not match its content.
    #[error("{path} is corrupt: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What does not match.
        detail: String,
    },
    /// The snapshot belongs to another state.
    #[error("{path} holds state {found:?}, not {expected:?}; is this the right state directory?")]
    WrongState {
        /// The file.
        path: PathBuf,
        /// The state this store is for.
        expected: String,
        /// The state the file names.
        found: String,
    },
    /// The snapshot's format version is unknown.
    #[error("{path} uses snapshot format {found}; this binary reads format {known}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Format byte in the file.
        found: u8,
        /// Format this binary writes.
        known: u8,
    },
    /// Another process (or another store in this one) has the state
    /// directory: two writers would overwrite each other's commits.
    #[error(
        "the state directory is in use: {path} is locked by {holder}; stop that node first, or give this one its own directory"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as the holder wrote it.
        holder: String,
    },
    /// A save would replace a newer version with an older one.
    #[error("refusing to save v{saving} over v{existing} in {path}: downgrades are not supported")]
    Downgrade {
        /// The state directory.
        path: PathBuf,
        /// Version being saved.
        saving: u32,
        /// Version on disk.
        existing: u32,
    },
    /// The snapshot is intact but cannot become the wanted version.
    #[error("{path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        source: StateError,
    },
}

/// Where a node's snapshot lives. Implementations write atomically: after a
/// crash, [`SnapshotStore::read`] returns the last committed snapshot whole.
pub trait SnapshotStore {
    /// The committed snapshot, if any was ever written.
    fn read(&self) -> Result<Option<(Snapshot, PathBuf)>, StoreError>;

    /// Commits `snapshot`, replacing the previous one (of the same or an
    /// older version) only once the new one is durable.
    fn write(&self, snapshot: &Snapshot) -> Result<(), StoreError>;
}

/// Typed loading and saving on any [`SnapshotStore`].
pub trait StateStore: SnapshotStore {
    /// Loads the committed state and transforms it to `S`'s version, without
    /// writing anything. `None` when no state was ever saved.
    fn load<S: Versioned>(&self) -> Result<Option<S>, StoreError> {
        let Some((snapshot, path)) = self.read()? else {
            return Ok(None);
        };
        S::decode_from(snapshot.version, &snapshot.payload)
            .map(Some)
            .map_err(|source| StoreError::State { path, source })
    }

    /// Saves `state` at `S`'s version.
    fn save<S: Versioned>(&self, state: &S) -> Result<(), StoreError> {
        let payload = postcard::to_allocvec(state).map_err(|e| StoreError::State {
            path: PathBuf::new(),
            source: StateError::Decode {
                version: S::VERSION,
                reason: format!("encoding failed: {e}"),
            },
        })?;
        self.write(&Snapshot {
            version: S::VERSION,
            applied: 0,
            payload,
        })
    }

    /// Moves the committed state to `S`'s version: loads it, transforms it,
    /// and commits the result. The old snapshot stays until the new one is
    /// committed. Returns the state, or `None` when nothing was saved yet.
    fn upgrade<S: Versioned>(&self) -> Result<Option<S>, StoreError> {
        let Some(state) = self.load::<S>()? else {
            return Ok(None);
        };
        self.save(&state)?;
        Ok(Some(state))
    }
}

impl<T: SnapshotStore + ?Sized> StateStore for T {}

/// Decodes the payload of `version` as `T`, rejecting trailing bytes.
#[doc(hidden)]
pub fn decode_payload<T: DeserializeOwned>(version: u32, payload: &[u8]) -> Result<T, StateError> {
    match postcard::take_from_bytes(payload) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(StateError::Decode {
            version,
            reason: format!("{} trailing bytes", rest.len()),
        }),
        Err(e) => Err(StateError::Decode {
            version,
            reason: e.to_string(),
        }),
    }
}
