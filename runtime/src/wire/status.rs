//! Reply statuses and the errors of reading or decoding a frame.

use super::WIRE_VERSION;
use crate::error::{CallError, Disallowed, DispatchError};

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
    /// Sent with call id 0 instead of serving a new connection (too many
    /// connections); the payload says why. No call on it ran.
    Refused = 9,
    /// The node's state could not make the call's changes durable (its
    /// journal or a checkpoint failed); the payload says why. The call was
    /// not acknowledged, and the node takes no writes until it restarts.
    Unavailable = 10,
    /// The caller's identity does not allow the call; the payload says why.
    /// The call did not run.
    Forbidden = 11,
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
            9 => Status::Refused,
            10 => Status::Unavailable,
            11 => Status::Forbidden,
            other => return Err(FrameError::UnknownStatus(other)),
        })
    }
}

impl Status {
    /// The status that answers a dispatcher's error.
    pub fn of(error: &DispatchError) -> Self {
        match error {
            DispatchError::Disallowed(_) => Status::Disallowed,
            DispatchError::UnknownMethod { .. } => Status::UnknownMethod,
            DispatchError::BadRequest { .. } => Status::BadRequest,
            DispatchError::EncodeReturn(_) => Status::Internal,
            DispatchError::Forbidden(_) => Status::Forbidden,
        }
    }

    /// What a caller of `call_version` sees for a reply with this status
    /// from a node at `node_version`; `None` for [`Status::Ok`].
    pub fn call_error(
        self,
        payload: &[u8],
        node_version: u32,
        call_version: u32,
    ) -> Option<CallError> {
        let message = || String::from_utf8_lossy(payload).into_owned();
        Some(match self {
            Status::Ok => return None,
            Status::Disallowed => CallError::Disallowed(Disallowed::new(message())),
            Status::VersionUnsupported => CallError::VersionUnsupported {
                node: node_version,
                call: call_version,
            },
            Status::UnknownService => CallError::UnknownService(message()),
            Status::UnknownMethod => CallError::UnknownMethod(message()),
            Status::BadRequest => CallError::BadRequest(message()),
            Status::BadFrame => CallError::BadFrame(message()),
            Status::Internal => CallError::Internal(message()),
            Status::Upgrading => CallError::Upgrading { node: node_version },
            Status::Refused => {
                CallError::Unreachable(format!("the node refused the connection: {}", message()))
            }
            Status::Unavailable => CallError::Unavailable(message()),
            Status::Forbidden => CallError::Forbidden(message()),
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
    /// The service name is empty, longer than 255 bytes, or not UTF-8.
    #[error("service name is empty, longer than 255 bytes, or not UTF-8")]
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
