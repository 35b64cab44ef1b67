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
//!   and generates each type's transform from the previous version;
//! - [`Schema`](macro@Schema): describes what a user type inside versioned
//!   definitions encodes, so its encoding is locked with them; options
//!   `#[upshift(lock = "file")]` on the type and `#[upshift(encoded_as = Type)]`
//!   on a type or field whose own serde code writes it.
//!
//! Released versions are recorded in `upshift.lock`; the build checks that
//! they still encode the same (or, under `compatibility wire` in the lock
//! file, that what they wrote still reads alike), and each locked section
//! gets a generated `#[cfg(test)]` test that decodes random values of its
//! locked encoding with today's types (the book's compatibility chapter).
//!
//! # Modules, in layers
//!
//! A module imports only from lower layers, and modules on one layer never
//! import each other (`runtime/tests/layers.rs` enforces this table):
//!
//! | layer | modules | job |
//! |---|---|---|
//! | L0 | [`error`], [`clock`], [`sync`], [`schema`], [`net`], `logs`, `http` | what callers see; time; locks and blocking work; version metadata; the network seam (tokio's TCP, or a simulator's); a log subscriber for binaries (feature `logs`); a blocking HTTP/1.1 client (webhooks, etcd's gateway; private) |
//! | L1 | [`wire`], [`metrics`] | the frame format shared by clients and nodes; Prometheus text and its scrape endpoint |
//! | L2 | [`rpc`] | calls: dispatch ← service ← server; the client; in-memory pairs; mutual TLS and the caller's identity |
//! | L2 | [`state`](mod@state) | transforms between state versions and the crash-safe snapshot store |
//! | L3 | [`upgrade`] | the glossary's upgrade and everything exchanged about it, with the coordinator's API |
//! | L4 | [`schedule`], [`udb`] | when a node may go; where rollouts are stored |
//! | L5 | [`node`], [`coordinator`] | the upgrade layer of one node; the service that runs rollouts |
//! | side | [`docs`] | version diff pages from [`schema`]; nothing imports it |
//! | side | [`conformance`] | property tests of the SOs and transforms of a node's stages; nothing imports it |
//!
//! `lib.rs` and the hidden `__private` module (what generated code names)
//! only re-export.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

// Lets the macros' `::upshift::...` paths resolve inside this crate (the
// coordinator's interface is declared with them).
extern crate self as upshift;

pub mod clock;
pub mod conformance;
pub mod coordinator;
pub mod docs;
pub mod error;
mod http;
#[cfg(feature = "logs")]
pub mod logs;
pub mod metrics;
pub mod net;
pub mod node;
pub mod rpc;
pub mod schedule;
pub mod schema;
pub mod state;
pub mod sync;
pub mod udb;
pub mod upgrade;
pub mod wire;

pub use error::{CallError, Disallowed, DispatchError};
#[cfg(unix)]
pub use rpc::UnixListener;
pub use rpc::{
    CallOptions, ClientConfig, Connection, Dispatch, Listener, RetryPolicy, Route, Server,
    ServerConfig, Service,
};
/// Declares every version of a service interface, in one module.
///
/// ```
/// #[upshift::interface] // options: name = "pkg.Service", lock = "path"
/// pub mod kv {
///     #[version(1)]
///     pub trait Kv {
///         async fn get(&self, key: String) -> Option<String>;
///         async fn put(&self, key: String, value: String);
///     }
///     #[version(2)]
///     pub trait Kv {
///         async fn get(&self, key: String) -> Option<String>;
///         async fn put(&self, key: String, value: String, ttl_secs: Option<u64>);
///     }
/// }
///
/// // v1 callers on a v2 node: `put` changed, so its past SO is written by
/// // hand; `get` did not, and delegates by default.
/// impl<N: kv::v2::Interface> kv::v1::Past for kv::v1::PastSo<N> {
///     async fn put(&self, key: String, value: String) -> Result<(), upshift::Disallowed> {
///         self.next.put(key, value, None).await
///     }
/// }
/// # fn main() { assert_eq!(kv::v2::VERSION, 2); }
/// ```
///
/// Each version is written out whole. Generated in `kv::vN`: the server
/// trait (`Kv`) a service object implements with `async fn`; `Interface`
/// (objects and SO chains); `Client` (one `async fn` per method, every call
/// tagged vN; `with_deadline`, `with_retry`); `PastSo`/`Past` (serves vN
/// callers on a vN+1 node) and `FutureSo`/`Future` (vN callers on a vN-1
/// node), whose methods delegate by default where the signature did not
/// change and must be written where it did; `service(object)` and
/// `service_with_future(object)`, the node's [`Service`]; `Request` and
/// `Response` (with `decode`); `SCHEMA`, the version's metadata. Arguments
/// and return values are owned types with a [`Schema`](macro@Schema).
/// Released versions are checked against `upshift.lock` at build time.
///
/// A first program: the book's `quickstart.md`. The reference follows (it
/// is also the book's `reference/interface.md`).
///
#[doc = include_str!("../doc/interface.md")]
pub use upshift_macros::interface;

/// Declares every version of a node's persistent state, in one module.
///
/// ```
/// #[upshift::state(name = "kv")] // options: name = "...", lock = "path"
/// pub mod state {
///     use std::collections::BTreeMap;
///
///     #[version(1)]
///     #[derive(Default)]
///     pub struct Store {
///         pub items: BTreeMap<String, String>,
///     }
///
///     #[version(2)]
///     #[derive(Default)]
///     pub struct Store {
///         #[upshift(with = lengths)] // a changed type: a function converts it
///         pub items: BTreeMap<String, usize>,
///         #[upshift(default)] // a new field
///         pub evictions: u64,
///     }
///
///     fn lengths(items: BTreeMap<String, String>) -> BTreeMap<String, usize> {
///         items.into_iter().map(|(k, v)| (k, v.len())).collect()
///     }
/// }
///
/// # fn main() {
/// use upshift::state::Upgrade;
/// let mut v1 = state::v1::Store::default();
/// v1.items.insert("a".into(), "abc".into());
/// let v2 = state::v2::Store::upgrade(v1).unwrap();
/// assert_eq!((v2.items["a"], v2.evictions), (3, 0));
/// # }
/// ```
///
/// Generated in `state::vN`: the types (with serde's derives: do not derive
/// them yourself), [`state::Upgrade`] from the previous version for every
/// type that has one — fields that did not change move over; a new field
/// takes `#[upshift(default)]` or `default = path`, a renamed one
/// `from = "old"`, a changed type `with = path`, a whole type
/// `transform = path` — and [`state::Versioned`] for the root, which reads a
/// snapshot of any older version and transforms it step by step. A missing
/// rule is a compile error naming the field and what to write.
///
/// The book's `state.md` walks through it. The reference follows (it is
/// also the book's `reference/state.md`).
///
#[doc = include_str!("../doc/state.md")]
pub use upshift_macros::state;

/// Describes what a user type inside versioned definitions (messages, state)
/// encodes, so its encoding is locked with the versions that use it.
///
/// Options: `#[upshift(lock = "file")]` on the type (its lock file, when not
/// the crate's `upshift.lock`), `#[upshift(encoded_as = Type)]` on a type or
/// field whose own serde code writes it as `Type`. Every type in an
/// interface's signatures or a state needs one; the compile error says so
/// at the type. Reference: the book's `reference/compatibility.md`.
pub use upshift_macros::Schema;

/// What generated code needs; not a public API.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
