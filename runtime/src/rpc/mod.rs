//! Calls between clients and nodes, over [`crate::wire`] frames.
//!
//! Inside, dependencies run one way: `dispatch` ← `service` ← `server`;
//! `client` sees only the wire format and the errors; `memory` is the one
//! file that sees both the server and the client; `tls` (mutual TLS and
//! the caller's identity) is seen by the server, the client and dispatch.

pub mod client;
pub(crate) mod dispatch;
mod memory;
pub mod server;
pub mod service;
pub mod stats;
pub mod tls;

pub use client::{CallOptions, ClientConfig, Connection, RetryPolicy};
pub use dispatch::Dispatch;
#[cfg(unix)]
pub use server::UnixListener;
#[cfg(unix)]
pub use server::bind_shared;
pub use server::{Listener, Server, ServerConfig};
pub use service::{Guard, Route, Service};
pub use tls::{ClientTls, Identity, Role, ServerTls, TlsError, TlsFiles, caller};
