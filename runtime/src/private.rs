//! What generated code names: re-exported crates and small helpers. Not a
//! public API; it changes with the macros.

pub use ::core;
pub use ::serde;
pub use ::std;

pub use crate::state::Outcome;
pub use crate::state::{Probe, ProbeAny, ProbeEq, restored};

/// Decodes a method's arguments, rejecting trailing bytes.
pub fn decode_args<T: ::serde::de::DeserializeOwned>(
    service: &'static str,
    version: u32,
    method: &'static str,
    payload: &[u8],
) -> Result<T, crate::error::DispatchError> {
    let bad = |reason: String| crate::error::DispatchError::BadRequest {
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
) -> Result<(), crate::error::DispatchError> {
    // Writing into the Vec in place: no move of the reply buffer.
    postcard::to_io(value, out)
        .map(drop)
        .map_err(|e| crate::error::DispatchError::EncodeReturn(e.to_string()))
}

/// Reads a reply payload as a method's return value; `None` when it is not
/// one (trailing bytes included).
pub fn decode_reply<T: ::serde::de::DeserializeOwned>(payload: &[u8]) -> Option<T> {
    match postcard::take_from_bytes(payload) {
        Ok((value, [])) => Some(value),
        _ => None,
    }
}
