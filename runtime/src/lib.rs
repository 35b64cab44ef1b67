//! upshift: automatic software upgrades for long-lived distributed services.
//!
//! A service keeps running while its nodes move from version N to N+1 of their
//! code. Nodes of different versions keep talking to each other: an upgraded
//! node serves old callers through **past simulation objects** (SOs), a node
//! not yet upgraded serves new callers through **future SOs**.
//!
//! Users depend on this crate alone. It re-exports the macros:
//!
//! - [`interface`]: declares every version of a service interface in one module
//!   and generates, per version, the server trait, the typed client, the SO
//!   traits and the version dispatcher;
//! - [`state`](macro@state): declares every version of a node's persistent state
//!   and generates each type's transform from the previous version.
//!
//! Modules, each with one job:
//!
//! - [`wire`]: the frame format shared by clients and nodes;
//! - [`server`]: accepts connections and dispatches each call by version;
//! - [`client`]: the multiplexed [`Connection`] that generated clients call through;
//! - [`service`]: a [`Service`] at one node version and the versions it answers;
//! - [`schema`]: metadata of every interface version, for checks and diff docs;
//! - [`docs`]: version diff documentation (Markdown and JSON) from that metadata;
//! - [`state`](mod@state): transforms between state versions and the crash-safe snapshot store;
//! - [`artifact`]: where a version's code is, and its checksum;
//! - [`node`]: the upgrade layer: a node's service, its store, and in-process upgrades;
//! - [`coordinator`]: the upshift service that grants upgrade slots and records rollouts;
//! - [`udb`]: the upgrade database behind the coordinator, embedded by default;
//! - [`schedule`]: when each node may upgrade;
//! - [`error`]: [`CallError`], [`Disallowed`] and the dispatcher's errors.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

// Lets the macros' `::upshift::...` paths resolve inside this crate (the
// coordinator's interface is declared with them).
extern crate self as upshift;

pub mod artifact;
pub mod client;
pub mod coordinator;
pub mod docs;
pub mod error;
pub mod node;
pub mod schedule;
pub mod schema;
pub mod server;
pub mod service;
pub mod state;
pub mod udb;
pub mod wire;

pub use client::{CallOptions, ClientConfig, Connection, RetryPolicy};
pub use error::{CallError, Disallowed, DispatchError};
#[cfg(unix)]
pub use server::UnixListener;
pub use server::{Listener, Server, ServerConfig};
pub use service::{Dispatch, Route, Service};
pub use upshift_macros::{Schema, interface, state};

/// What generated code needs; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use ::core;
    pub use ::serde;
    pub use ::std;

    pub use crate::state::Outcome;

    /// Decodes a method's arguments, rejecting trailing bytes.
    pub fn decode_args<T: ::serde::de::DeserializeOwned>(
        service: &'static str,
        version: u32,
        method: &'static str,
        payload: &[u8],
    ) -> Result<T, crate::DispatchError> {
        let bad = |reason: String| crate::DispatchError::BadRequest {
            service,
            version,
            method,
            reason,
        };
        match postcard::take_from_bytes(payload) {
            Ok((args, [])) => Ok(args),
            Ok((_, rest)) => Err(bad(format!(
                "{} trailing bytes after the arguments",
                rest.len()
            ))),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// Appends an encoded return value to a reply.
    pub fn encode_return<T: ::serde::Serialize + ?Sized>(
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), crate::DispatchError> {
        // Writing into the Vec in place: no move of the reply buffer.
        postcard::to_io(value, out)
            .map(drop)
            .map_err(|e| crate::DispatchError::EncodeReturn(e.to_string()))
    }
}
