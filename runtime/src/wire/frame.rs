//! Frame bodies: decoding calls and replies, and building them in place.

use std::fmt;

use super::{
    CALL_HEADER, COMMON_HEADER, FrameError, KIND_CALL, KIND_REPLY, MAGIC, REPLY_HEADER, Status,
    WIRE_VERSION,
};

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
    (body.len() >= COMMON_HEADER && super::speaks_upshift(body)).then(|| be_u64(&body[4..12]))
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
/// Returns the offset of the frame in `out`, for [`finish`], or
/// [`FrameError::BadServiceName`] (and leaves `out` as it was) when the
/// service name is not 1 to [`MAX_SERVICE_NAME`](super::MAX_SERVICE_NAME) bytes.
pub fn begin_call(
    out: &mut Vec<u8>,
    call_id: u64,
    service: &str,
    version: u32,
    method: u16,
) -> Result<usize, FrameError> {
    if !super::valid_service_name(service) {
        return Err(FrameError::BadServiceName);
    }
    let start = out.len();
    begin(out, KIND_CALL, call_id);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&method.to_be_bytes());
    // Fits: checked against MAX_SERVICE_NAME (255) above.
    out.push(service.len() as u8);
    out.extend_from_slice(service.as_bytes());
    Ok(start)
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
    use crate::wire::MAX_SERVICE_NAME;

    fn body(frame: &[u8]) -> &[u8] {
        &frame[4..]
    }

    #[test]
    fn call_round_trips() {
        let mut out = Vec::new();
        let start = begin_call(&mut out, 7, "Kv", 3, 2).expect("a valid name");
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
    fn service_names_outside_1_to_255_bytes_are_refused_not_truncated() {
        let mut out = Vec::new();
        for name in ["", &"x".repeat(MAX_SERVICE_NAME + 1)] {
            let e = begin_call(&mut out, 1, name, 1, 0).unwrap_err();
            assert!(matches!(e, FrameError::BadServiceName), "{e}");
            assert!(out.is_empty(), "nothing written for a refused name");
        }
        let longest = "x".repeat(MAX_SERVICE_NAME);
        let start = begin_call(&mut out, 1, &longest, 1, 0).expect("255 bytes fit");
        finish(&mut out, start);
        let Frame::Call(c) = decode(body(&out)).expect("decodes") else {
            panic!("not a call")
        };
        assert_eq!(c.service, longest);
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
        let start = begin_call(&mut out, 1, "Kv", 1, 0).expect("a valid name");
        finish(&mut out, start);
        let cut = &body(&out)[..CALL_HEADER];
        let e = decode(cut).unwrap_err();
        assert!(matches!(e, FrameError::ShortHeader { .. }), "{e}");
        assert!(e.is_recoverable());
        assert_eq!(peek_call_id(cut), Some(1));
    }
}
