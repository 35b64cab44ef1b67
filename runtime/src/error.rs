//! Errors a caller can see, and the `Disallowed` answer of a simulation object.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// An SO's refusal to serve a call it cannot honour.
///
/// Past and future SOs return this for calls whose meaning does not carry
/// across versions; the caller receives it as [`CallError::Disallowed`] with the
/// same message. It is never a panic and never a silent substitute.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Disallowed {
    message: Cow<'static, str>,
}

impl Disallowed {
    /// A refusal with a message for the caller, such as `"delete needs a v2 node"`.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Disallowed {
            message: message.into(),
        }
    }

    /// The message the SO gave.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for Disallowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Disallowed").field(&self.message).finish()
    }
}

impl fmt::Display for Disallowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Disallowed {}

/// Why a call made through a generated client did not return a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// A simulation object on the node refused the call.
    #[error("call disallowed by the node's simulation object: {0}")]
    Disallowed(Disallowed),
    /// The node runs a version that cannot serve this call's version.
    #[error(
        "the node runs v{node} and cannot serve v{call} calls; retry after the node upgrades, \
         or call a node that speaks v{call}"
    )]
    VersionUnsupported {
        /// Version the node runs.
        node: u32,
        /// Version of the call.
        call: u32,
    },
    /// The node is switching versions and did not run the call.
    #[error("the node (at v{node}) is upgrading and did not run the call; retry shortly")]
    Upgrading {
        /// Version the node ran when it refused.
        node: u32,
    },
    /// The node hosts no service of this name.
    #[error("{0}")]
    UnknownService(String),
    /// The node's version of the interface has no such method.
    #[error("{0}")]
    UnknownMethod(String),
    /// The node could not decode the call's arguments.
    #[error("the node could not decode the arguments: {0}")]
    BadRequest(String),
    /// The node found the call frame malformed.
    #[error("the node rejected the call frame: {0}")]
    BadFrame(String),
    /// The service object panicked while serving the call.
    #[error("the node failed while serving the call: {0}")]
    Internal(String),
    /// The node could not make the call's changes durable, so it did not
    /// acknowledge them; it takes no writes until it restarts.
    #[error(
        "the node could not make the call durable and did not acknowledge it: {0}; \
         it takes no writes until it restarts"
    )]
    Unavailable(String),
    /// The node refused the call for who made it: the identity of the
    /// client's certificate (or the lack of one) does not allow it. The
    /// call did not run.
    #[error("the call is not allowed: {0}")]
    Forbidden(String),
    /// No reply arrived within the deadline; the call may or may not have run.
    #[error("no reply within the deadline of {0:?}; the call may or may not have run")]
    DeadlineExceeded(Duration),
    /// The node could not be reached; the call was not sent.
    #[error("the node is unreachable, so the call was not sent: {0}")]
    Unreachable(String),
    /// The connection closed before the reply arrived.
    #[error("the connection closed before the reply arrived: {0}")]
    ConnectionClosed(String),
    /// The arguments could not be encoded.
    #[error("could not encode the arguments: {0}")]
    Encode(String),
    /// The reply payload did not decode as the method's return type.
    #[error("could not decode the reply: {0}; client and node disagree on this version's schema")]
    DecodeReply(String),
}

impl CallError {
    /// Whether the node certainly did not run the call, so retrying it (on
    /// this node or another replica) cannot run it twice.
    ///
    /// `DeadlineExceeded` and `ConnectionClosed` are *outcome unknown*: the
    /// call may have run, and upshift never retries them by itself.
    pub fn not_executed(&self) -> bool {
        matches!(
            self,
            CallError::VersionUnsupported { .. }
                | CallError::Upgrading { .. }
                | CallError::UnknownService(_)
                | CallError::Unreachable(_)
        )
    }

    /// Whether waiting may help: the node is upgrading or restarting, or
    /// does not speak this version yet.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CallError::VersionUnsupported { .. }
                | CallError::Upgrading { .. }
                | CallError::Unreachable(_)
        )
    }
}

/// What a version dispatcher reports instead of a return value.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// An SO refused the call.
    #[error("{0}")]
    Disallowed(#[from] Disallowed),
    /// The method index is not declared in this version.
    #[error("v{version} of {service} has no method with index {method} (it declares {count})")]
    UnknownMethod {
        /// Service name.
        service: &'static str,
        /// Version of the call.
        version: u32,
        /// Method index from the frame.
        method: u16,
        /// How many methods the version declares.
        count: usize,
    },
    /// The payload did not decode as the method's arguments.
    #[error("arguments of {service} v{version} `{method}` did not decode: {reason}")]
    BadRequest {
        /// Service name.
        service: &'static str,
        /// Version of the call.
        version: u32,
        /// Method name.
        method: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The return value could not be encoded (its `Serialize` impl failed).
    #[error("the return value could not be encoded: {0}")]
    EncodeReturn(String),
    /// The caller may not make this call: its identity (from its TLS
    /// certificate), or the lack of one, does not allow it.
    #[error("{0}")]
    Forbidden(String),
}

thread_local! {
    /// Set by [`unavailable`] just before it unwinds, read by the reply
    /// guard the unwinding passes through on the same thread.
    static UNAVAILABLE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Ends the current call with [`CallError::Unavailable`] for its caller:
/// unwinds out of the service method (without the panic hook's noise), and
/// the dispatcher answers with `reason`. For state that cannot make a write
/// durable, inside methods that return plain values.
pub fn unavailable(reason: String) -> ! {
    UNAVAILABLE.with(|u| *u.borrow_mut() = Some(reason.clone()));
    std::panic::resume_unwind(Box::new(reason))
}

/// The reason [`unavailable`] unwound with on this thread, once.
pub(crate) fn take_unavailable() -> Option<String> {
    UNAVAILABLE.with(|u| u.borrow_mut().take())
}
