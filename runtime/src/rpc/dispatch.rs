//! The dispatching machinery under a service: the [`Dispatch`] trait that
//! generated dispatchers implement, the call on its way to one, and the task
//! that answers it (exactly once, even if the service object panics).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use crate::error::DispatchError;
use crate::rpc::stats::CallStats;
use crate::rpc::tls::{Identity, as_caller};
use crate::schema::{InterfaceSchema, MethodEncoding};
use crate::sync::until;
use crate::wire::{self, Outgoing, Slots, Status};

/// Serves the calls of one interface version: decodes the arguments, calls
/// the service object or SO chain, encodes the result.
///
/// The interface macro implements this for `vN::Dispatcher<I>`; the server
/// holds one per version a node answers.
pub trait Dispatch: Send + Sync + 'static {
    /// The version this dispatcher answers.
    fn schema(&self) -> &'static InterfaceSchema;

    /// Serves method `method` with postcard-encoded `payload`, appending the
    /// encoded return value to `out`.
    fn call<'a>(
        &'a self,
        method: u16,
        payload: &'a [u8],
        out: &'a mut Vec<u8>,
    ) -> impl Future<Output = Result<(), DispatchError>> + Send + 'a;

    /// What each method's arguments and reply encode as, by method index.
    /// Generated dispatchers tell; a hand-written one that does not cannot
    /// be checked by `upshift::conformance`.
    fn encodings(&self) -> &'static [MethodEncoding] {
        &[]
    }
}

/// A call answered in the caller's task, its future boxed: for tests and
/// tools that call a service without a connection.
pub(crate) type Local<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<u8>, DispatchError>> + Send + 'a>>;

/// A [`Dispatch`] behind a pointer: the server spawns each call as a task of
/// the concrete dispatcher's type, so no future is boxed per call.
pub(crate) trait Erased: Send + Sync + 'static {
    fn answer(self: Arc<Self>, call: Incoming);
    fn local<'a>(&'a self, method: u16, payload: &'a [u8]) -> Local<'a>;
    fn interface(&self) -> &'static InterfaceSchema;
    fn method_encodings(&self) -> &'static [MethodEncoding];
}

impl<D: Dispatch> Erased for D {
    fn answer(self: Arc<Self>, call: Incoming) {
        tokio::spawn(answer(self, call));
    }

    fn local<'a>(&'a self, method: u16, payload: &'a [u8]) -> Local<'a> {
        Box::pin(async move {
            let mut out = Vec::new();
            self.call(method, payload, &mut out).await?;
            Ok(out)
        })
    }

    fn interface(&self) -> &'static InterfaceSchema {
        self.schema()
    }

    fn method_encodings(&self) -> &'static [MethodEncoding] {
        self.encodings()
    }
}

/// Where a connection's replies go: the writer's queue, with each frame's
/// bytes counted against the connection's bound until it is written.
#[derive(Clone)]
pub(crate) struct Replies {
    tx: mpsc::UnboundedSender<Outgoing>,
    slots: Arc<Slots>,
}

impl Replies {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Outgoing>, slots: Arc<Slots>) -> Self {
        Replies { tx, slots }
    }

    /// Waits for room in the connection's reply queue.
    pub(crate) async fn room(&self) {
        self.slots.room().await;
    }

    /// Queues a complete reply frame.
    pub(crate) fn send(&self, frame: Vec<u8>) {
        self.slots.queue(&self.tx, frame);
    }
}

/// A call on its way to a dispatcher, with everything needed to answer it.
pub(crate) struct Incoming {
    pub(crate) call_id: u64,
    pub(crate) version: u32,
    pub(crate) method: u16,
    pub(crate) node_version: u32,
    pub(crate) body: Vec<u8>,
    pub(crate) payload_at: usize,
    pub(crate) replies: Replies,
    /// The service's gate, left when the call is answered.
    pub(crate) gate: Option<Arc<Gate>>,
    /// Where the call's outcome and latency are counted, once it ran.
    pub(crate) stats: Option<Arc<CallStats>>,
    /// Who made the call, from the connection's client certificate.
    pub(crate) caller: Option<Arc<Identity>>,
}

impl Incoming {
    /// Answers without running the call.
    pub(crate) fn refuse(self, status: Status, message: &str) {
        let reply = wire::reply_with_message(self.call_id, self.node_version, status, message);
        self.replies.send(reply);
    }
}

/// Counts the calls a service is running, and closes it for a version switch.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    in_flight: AtomicUsize,
    closed: AtomicBool,
    idle: Notify,
}

impl Gate {
    /// Admits a call unless the gate is closed.
    pub(crate) fn enter(&self) -> bool {
        // SeqCst pairs with `close`: either the call sees the gate closed, or
        // `close` sees the call in flight and waits for it.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            self.leave();
            return false;
        }
        true
    }

    /// A call admitted by `enter` has been answered.
    pub(crate) fn leave(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Admits no more calls and waits up to `timeout` for those admitted;
    /// returns whether they finished.
    pub(crate) async fn close(&self, timeout: Duration) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        let drained = until(&self.idle, || self.in_flight.load(Ordering::SeqCst) == 0);
        tokio::time::timeout(timeout, drained).await.is_ok()
    }

    /// Admits calls again.
    pub(crate) fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }

    /// Calls admitted and not yet answered.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// Serves one call and sends its reply. If the service object panics, the
/// guard still answers, so no caller waits for its deadline.
async fn answer<D: Dispatch>(dispatch: Arc<D>, call: Incoming) {
    let mut guard = ReplyGuard {
        call,
        sent: false,
        failed: false,
        started: Instant::now(),
    };
    let call = &guard.call;
    call.replies.room().await;
    let mut out = Vec::with_capacity(64);
    let start = wire::begin_reply(&mut out, call.call_id, call.node_version, Status::Ok);
    let result = as_caller(
        call.caller.clone(),
        dispatch.call(call.method, &call.body[call.payload_at..], &mut out),
    )
    .await;
    let reply = match result {
        Ok(()) => {
            wire::finish(&mut out, start);
            out
        }
        Err(e) => {
            guard.failed = true;
            wire::reply_with_message(
                call.call_id,
                call.node_version,
                Status::of(&e),
                &e.to_string(),
            )
        }
    };
    guard.sent = true;
    guard.call.replies.send(reply);
}

struct ReplyGuard {
    call: Incoming,
    sent: bool,
    failed: bool,
    started: Instant,
}

impl Drop for ReplyGuard {
    fn drop(&mut self) {
        if let Some(gate) = &self.call.gate {
            gate.leave();
        }
        if let Some(stats) = &self.call.stats {
            stats.answered(self.failed || !self.sent, self.started.elapsed());
        }
        if !self.sent {
            let c = &self.call;
            // Unwinding from `error::unavailable` passes here on its thread.
            if let Some(reason) = crate::error::take_unavailable() {
                c.replies.send(wire::reply_with_message(
                    c.call_id,
                    c.node_version,
                    Status::Unavailable,
                    &reason,
                ));
                return;
            }
            let msg = format!(
                "the service object panicked while serving method {} of v{}",
                c.method, c.version
            );
            tracing::error!(call_id = c.call_id, "{msg}");
            c.replies.send(wire::reply_with_message(
                c.call_id,
                c.node_version,
                Status::Internal,
                &msg,
            ));
        }
    }
}
