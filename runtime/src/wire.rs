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

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The two bytes every frame body starts with.
pub const MAGIC: [u8; 2] = *b"US";
/// The version of this wire format; bumped on any incompatible change.
pub const WIRE_VERSION: u8 = 1;
/// Default upper bound on a frame body, in bytes.
pub const DEFAULT_MAX_FRAME: usize = 8 * 1024 * 1024;

const KIND_CALL: u8 = 1;
const KIND_REPLY: u8 = 2;
/// Bytes before the kind-specific part: magic, wire version, kind, call id.
const COMMON_HEADER: usize = 2 + 1 + 1 + 8;
const CALL_HEADER: usize = COMMON_HEADER + 4 + 2 + 1;
const REPLY_HEADER: usize = COMMON_HEADER + 4 + 1;

/// Outcome of a call, carried in every reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// The payload is the method's return value.
    Ok = 0,
    /// An SO declined the call; the payload is its UTF-8 message.
    Disallowed = 1,
    /// The node serves neither this version nor an SO chain to it; no payload.
    VersionUnsupported = 2,
    /// The node hosts no service of that name; the payload is a UTF-8 message.
    UnknownService = 3,
    /// The version has no method with that index; the payload is a UTF-8 message.
    UnknownMethod = 4,
    /// The call's payload did not decode as the method's arguments.
    BadRequest = 5,
    /// The call frame's header was malformed; the connection stays open.
    BadFrame = 6,
    /// The service object panicked while serving the call.
    Internal = 7,
    /// The node is switching versions; the call did not run. Retry shortly.
    Upgrading = 8,
}

impl Status {
    /// Parses a status byte; unknown values are a [`FrameError`].
    pub fn from_byte(b: u8) -> Result<Self, FrameError> {
        Ok(match b {
            0 => Status::Ok,
            1 => Status::Disallowed,
            2 => Status::VersionUnsupported,
            3 => Status::UnknownService,
            4 => Status::UnknownMethod,
            5 => Status::BadRequest,
            6 => Status::BadFrame,
            7 => Status::Internal,
            8 => Status::Upgrading,
            other => return Err(FrameError::UnknownStatus(other)),
        })
    }
}

/// Why a frame could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The length prefix announced more than the configured maximum.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    Oversized {
        /// Announced body length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// The body does not start with the magic bytes `US`.
    #[error(
        "frame does not start with the magic bytes \"US\" (got {0:02x?}); the peer does not speak upshift"
    )]
    BadMagic([u8; 2]),
    /// The peer speaks another version of the wire format.
    #[error("peer speaks wire format version {0}, this build speaks {WIRE_VERSION}")]
    WireVersion(u8),
    /// The body is shorter than its header.
    #[error("frame body of {len} bytes is shorter than its {need}-byte header")]
    ShortHeader {
        /// Body length.
        len: usize,
        /// Header length the kind requires.
        need: usize,
    },
    /// The frame kind byte is neither call nor reply.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The service name is empty or not UTF-8.
    #[error("service name is empty or not UTF-8")]
    BadServiceName,
    /// The reply status byte is unknown.
    #[error("unknown reply status {0}")]
    UnknownStatus(u8),
    /// Reading from the transport failed.
    #[error("transport error: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the connection can keep going after this error: the frame
    /// boundary is intact and the peer speaks our wire version.
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            FrameError::ShortHeader { .. }
                | FrameError::UnknownKind(_)
                | FrameError::BadServiceName
                | FrameError::UnknownStatus(_)
        )
    }
}

/// A decoded call frame, borrowing from the body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// Chosen by the caller; echoed in the reply.
    pub call_id: u64,
    /// Interface version the caller speaks.
    pub version: u32,
    /// Index of the method in that version's declaration order.
    pub method: u16,
    /// Name of the service.
    pub service: &'a str,
    /// postcard-encoded arguments.
    pub payload: &'a [u8],
}

/// A decoded reply frame, borrowing from the body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The id of the call this answers.
    pub call_id: u64,
    /// The version the node runs now.
    pub node_version: u32,
    /// Outcome of the call.
    pub status: Status,
    /// Return value or error detail, depending on `status`.
    pub payload: &'a [u8],
}

impl fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("call_id", &self.call_id)
            .field("service", &self.service)
            .field("version", &self.version)
            .field("method", &self.method)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl fmt::Debug for Reply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("call_id", &self.call_id)
            .field("node_version", &self.node_version)
            .field("status", &self.status)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Any decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A call from a client.
    Call(Call<'a>),
    /// A reply from a node.
    Reply(Reply<'a>),
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// Reads the call id of a body whose magic and wire version are valid, so a
/// malformed call can still be answered.
pub fn peek_call_id(body: &[u8]) -> Option<u64> {
    (body.len() >= COMMON_HEADER && body[..2] == MAGIC && body[2] == WIRE_VERSION)
        .then(|| be_u64(&body[4..12]))
}

/// Decodes one frame body (without its length prefix).
pub fn decode(body: &[u8]) -> Result<Frame<'_>, FrameError> {
    if body.len() < 3 {
        return Err(FrameError::ShortHeader {
            len: body.len(),
            need: COMMON_HEADER,
        });
    }
    if body[..2] != MAGIC {
        return Err(FrameError::BadMagic([body[0], body[1]]));
    }
    if body[2] != WIRE_VERSION {
        return Err(FrameError::WireVersion(body[2]));
    }
    if body.len() < COMMON_HEADER {
        return Err(FrameError::ShortHeader {
            len: body.len(),
            need: COMMON_HEADER,
        });
    }
    let call_id = be_u64(&body[4..12]);
    match body[3] {
        KIND_CALL => {
            if body.len() < CALL_HEADER {
                return Err(FrameError::ShortHeader {
                    len: body.len(),
                    need: CALL_HEADER,
                });
            }
            let version = be_u32(&body[12..16]);
            let method = u16::from_be_bytes([body[16], body[17]]);
            let svc_len = usize::from(body[18]);
            let need = CALL_HEADER + svc_len;
            if body.len() < need {
                return Err(FrameError::ShortHeader {
                    len: body.len(),
                    need,
                });
            }
            let service = std::str::from_utf8(&body[CALL_HEADER..need])
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or(FrameError::BadServiceName)?;
            Ok(Frame::Call(Call {
                call_id,
                version,
                method,
                service,
                payload: &body[need..],
            }))
        }
        KIND_REPLY => {
            if body.len() < REPLY_HEADER {
                return Err(FrameError::ShortHeader {
                    len: body.len(),
                    need: REPLY_HEADER,
                });
            }
            Ok(Frame::Reply(Reply {
                call_id,
                node_version: be_u32(&body[12..16]),
                status: Status::from_byte(body[16])?,
                payload: &body[REPLY_HEADER..],
            }))
        }
        other => Err(FrameError::UnknownKind(other)),
    }
}

/// Reads one frame body into `buf`. Returns `Ok(false)` on a clean end of
/// stream before the first byte of a frame.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(false)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    buf.clear();
    buf.resize(len, 0);
    match r.read_exact(buf).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

fn begin(out: &mut Vec<u8>, kind: u8, call_id: u64) {
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&MAGIC);
    out.push(WIRE_VERSION);
    out.push(kind);
    out.extend_from_slice(&call_id.to_be_bytes());
}

/// Appends the length prefix and header of a call frame to `out`; the caller
/// appends the payload and then calls [`finish`].
///
/// Returns the offset of the frame in `out`, for [`finish`]. Service names are
/// 1 to 255 bytes; longer names are rejected by [`crate::Service`] up front.
pub fn begin_call(
    out: &mut Vec<u8>,
    call_id: u64,
    service: &str,
    version: u32,
    method: u16,
) -> usize {
    let start = out.len();
    begin(out, KIND_CALL, call_id);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&method.to_be_bytes());
    let name = &service.as_bytes()[..service.len().min(255)];
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    start
}

/// Appends the length prefix and header of a reply frame to `out`; see
/// [`begin_call`].
pub fn begin_reply(out: &mut Vec<u8>, call_id: u64, node_version: u32, status: Status) -> usize {
    let start = out.len();
    begin(out, KIND_REPLY, call_id);
    out.extend_from_slice(&node_version.to_be_bytes());
    out.push(status as u8);
    start
}

/// Writes the length prefix of the frame that starts at `start`.
pub fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// A complete reply frame with a UTF-8 message as payload.
pub fn reply_with_message(
    call_id: u64,
    node_version: u32,
    status: Status,
    message: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(REPLY_HEADER + 4 + message.len());
    let start = begin_reply(&mut out, call_id, node_version, status);
    out.extend_from_slice(message.as_bytes());
    finish(&mut out, start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frame: &[u8]) -> &[u8] {
        &frame[4..]
    }

    #[test]
    fn call_round_trips() {
        let mut out = Vec::new();
        let start = begin_call(&mut out, 7, "Kv", 3, 2);
        out.extend_from_slice(b"abc");
        finish(&mut out, start);
        assert_eq!(be_u32(&out) as usize, out.len() - 4);
        let Frame::Call(c) = decode(body(&out)).expect("decodes") else {
            panic!("not a call")
        };
        assert_eq!(
            (c.call_id, c.service, c.version, c.method, c.payload),
            (7, "Kv", 3, 2, &b"abc"[..])
        );
    }

    #[test]
    fn reply_round_trips() {
        let out = reply_with_message(9, 2, Status::Disallowed, "no");
        let Frame::Reply(r) = decode(body(&out)).expect("decodes") else {
            panic!("not a reply")
        };
        assert_eq!(
            (r.call_id, r.node_version, r.status, r.payload),
            (9, 2, Status::Disallowed, &b"no"[..])
        );
    }

    #[test]
    fn bad_magic_is_fatal() {
        let e = decode(b"XX\x01\x01aaaaaaaa").unwrap_err();
        assert!(matches!(e, FrameError::BadMagic(_)), "{e}");
        assert!(!e.is_recoverable());
    }

    #[test]
    fn short_call_header_is_recoverable() {
        let mut out = Vec::new();
        let start = begin_call(&mut out, 1, "Kv", 1, 0);
        finish(&mut out, start);
        let cut = &body(&out)[..CALL_HEADER];
        let e = decode(cut).unwrap_err();
        assert!(matches!(e, FrameError::ShortHeader { .. }), "{e}");
        assert!(e.is_recoverable());
        assert_eq!(peek_call_id(cut), Some(1));
    }
}
