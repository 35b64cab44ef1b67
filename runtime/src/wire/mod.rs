//! The wire format: length-delimited frames that carry calls and replies.
//!
//! The book's "Wire format" page is the normative description; this module is
//! its implementation. Every frame is a big-endian `u32` body length followed by
//! the body. A body starts with the magic bytes `US`, the wire version and a
//! frame kind, then a call id:
//!
//! ```text
//! call:  magic(2) wire(1) kind=1(1) call_id(8) version(4) method(2) svc_len(1) service(svc_len) payload
//! reply: magic(2) wire(1) kind=2(1) call_id(8) node_version(4) status(1) payload
//! ```
//!
//! Decoding never panics: every malformed body maps to a [`FrameError`].
//! Two values are in-band signals, named here: [`CONNECTION_CALL_ID`] and
//! [`UNKNOWN_VERSION`].

mod frame;
mod io;
mod status;

pub use frame::{
    Call, Frame, Reply, begin_call, begin_reply, decode, finish, peek_call_id, reply_with_message,
};
pub use io::{Outgoing, Slots, read_frame, write_frames};
pub use status::{FrameError, Status};

/// The two bytes every frame body starts with.
pub const MAGIC: [u8; 2] = *b"US";
/// The version of this wire format; bumped on any incompatible change.
pub const WIRE_VERSION: u8 = 1;
/// Default upper bound on a frame body, in bytes.
pub const DEFAULT_MAX_FRAME: usize = 8 * 1024 * 1024;
/// The call id of a reply about the connection rather than a call: going
/// away (`Upgrading`: send no new calls here; calls already sent are still
/// answered), refused (`Refused`), or a frame too short to carry a call id
/// (`BadFrame`). Clients number their calls from 1, so no call is ever
/// answered with it.
pub const CONNECTION_CALL_ID: u64 = 0;

/// Whether `body` starts with the magic bytes and this wire version: a
/// malformed frame from a peer that speaks upshift, which is answered, not
/// hung up on.
pub fn speaks_upshift(body: &[u8]) -> bool {
    body.len() >= 3 && body[..2] == MAGIC && body[2] == WIRE_VERSION
}
/// The node version of a reply that no service could be attributed to (an
/// unknown service, a malformed call, going away).
pub const UNKNOWN_VERSION: u32 = 0;
/// Service names are 1 to this many bytes: the call header stores the length in one byte.
pub const MAX_SERVICE_NAME: usize = 255;

/// Whether `name` can be sent as a service name: 1 to [`MAX_SERVICE_NAME`] bytes.
pub fn valid_service_name(name: &str) -> bool {
    (1..=MAX_SERVICE_NAME).contains(&name.len())
}

const KIND_CALL: u8 = 1;
const KIND_REPLY: u8 = 2;
/// Bytes before the kind-specific part: magic, wire version, kind, call id.
const COMMON_HEADER: usize = 2 + 1 + 1 + 8;
const CALL_HEADER: usize = COMMON_HEADER + 4 + 2 + 1;
const REPLY_HEADER: usize = COMMON_HEADER + 4 + 1;
