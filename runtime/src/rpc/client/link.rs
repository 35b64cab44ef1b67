//! One multiplexed link to one node: call ids, waiting calls, the reply
//! reader, and the endpoint that reconnects a closed link.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::ToSocketAddrs;
use tokio::sync::{mpsc, oneshot};

use super::ClientConfig;
use crate::error::CallError;
use crate::sync::lock;
use crate::wire::{self, CONNECTION_CALL_ID, Frame, Outgoing, Status, UNKNOWN_VERSION};

/// A reply as the reader task hands it to the waiting call.
struct OwnedReply {
    status: Status,
    node_version: u32,
    body: Vec<u8>,
    payload_at: usize,
}

type Waiter = oneshot::Sender<Result<OwnedReply, CallError>>;

#[derive(Default)]
struct Pending {
    waiters: HashMap<u64, Waiter>,
    /// Set once the connection is gone; no call waits after that.
    closed: Option<String>,
}

struct Shared {
    pending: Mutex<Pending>,
    node_version: AtomicU32,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        lock(&self.pending)
    }

    /// The node refused the link before reading anything: every waiting
    /// call certainly did not run.
    fn refuse(&self, reason: String) {
        self.fail(reason, CallError::Unreachable);
    }

    /// The link closed: a waiting call may or may not have run.
    fn close(&self, reason: String) {
        self.fail(reason, CallError::ConnectionClosed);
    }

    /// Marks the link closed and fails every waiting call with `error`.
    fn fail(&self, reason: String, error: fn(String) -> CallError) {
        let waiters = {
            let mut pending = self.pending();
            pending.closed.get_or_insert(reason.clone());
            std::mem::take(&mut pending.waiters)
        };
        for (_, waiter) in waiters {
            let _ = waiter.send(Err(error(reason.clone())));
        }
    }
}

/// One node of a connection: its current link and, for TCP, the address to
/// reconnect to when the link closes (the node restarted, say).
pub(super) struct Endpoint {
    pub(super) link: Mutex<Link>,
    pub(super) addr: Option<SocketAddr>,
}

impl Clone for Endpoint {
    fn clone(&self) -> Self {
        Endpoint {
            link: Mutex::new(lock(&self.link).clone()),
            addr: self.addr,
        }
    }
}

impl Endpoint {
    /// The link to call on: the current one, or a new one if it closed and
    /// the node can be reached again within `remaining`, the call's time
    /// left. A node that cannot be reached did not run the call.
    pub(super) async fn link(&self, remaining: Duration) -> Result<Link, CallError> {
        let current = lock(&self.link).clone();
        let Some(addr) = self.addr.filter(|_| current.is_closed()) else {
            return Ok(current);
        };
        // Reconnecting is rare: boxed, its state (a TCP connect and a timer)
        // does not enlarge every call's future.
        Box::pin(self.reconnect(addr, &current, remaining)).await
    }

    async fn reconnect(
        &self,
        addr: SocketAddr,
        closed: &Link,
        remaining: Duration,
    ) -> Result<Link, CallError> {
        let config = (*closed.config).clone();
        // A node that does not answer the SYN would hold the call past its
        // deadline; the connect is part of the call.
        let fresh = match tokio::time::timeout(remaining, Link::connect_with(addr, config)).await {
            Ok(connected) => {
                connected.map_err(|e| CallError::Unreachable(format!("{addr}: {e}")))?
            }
            Err(_) => {
                return Err(CallError::Unreachable(format!(
                    "{addr}: no connection within the call's remaining {remaining:?}"
                )));
            }
        };
        *lock(&self.link) = fresh.clone();
        Ok(fresh)
    }

    pub(super) fn node_version(&self) -> Option<u32> {
        lock(&self.link).node_version()
    }

    pub(super) fn deadline(&self) -> Duration {
        lock(&self.link).config.deadline
    }
}

/// One multiplexed connection to one node.
#[derive(Clone)]
pub(super) struct Link {
    /// The node's TCP address, to reconnect to.
    pub(super) peer: Option<SocketAddr>,
    frames: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
    next_id: Arc<AtomicU64>,
    config: Arc<ClientConfig>,
}

impl Link {
    /// Connects within the call deadline: a listener whose backlog is full
    /// (a stalled process's port takes connections until it is) drops the
    /// handshake and the kernel retries for minutes, and a TLS server may
    /// never finish its handshake.
    pub(super) async fn connect_with(
        addr: impl ToSocketAddrs,
        config: ClientConfig,
    ) -> std::io::Result<Self> {
        let deadline = config.deadline;
        tokio::time::timeout(deadline, Self::open(addr, config))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection (TCP and TLS handshakes) within {deadline:?}"),
                )
            })?
    }

    async fn open(addr: impl ToSocketAddrs, config: ClientConfig) -> std::io::Result<Self> {
        let (stream, peer) = crate::net::connect(addr).await?;
        let link = match config.tls.clone() {
            Some(tls) => Self::from_io(tls.connect(peer, stream).await?, config),
            None => Self::from_io(stream, config),
        };
        Ok(Link {
            peer: Some(peer),
            ..link
        })
    }

    pub(super) fn from_io<IO>(io: IO, config: ClientConfig) -> Self
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let (frames, queued) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            node_version: AtomicU32::new(0),
        });
        let writer_shared = shared.clone();
        tokio::spawn(async move {
            wire::write_frames(write, queued, None).await;
            writer_shared.close("the connection was closed for writing".into());
        });
        tokio::spawn(read_replies(
            read,
            shared.clone(),
            config.max_frame,
            frames.downgrade(),
        ));
        Link {
            peer: None,
            frames,
            shared,
            next_id: Arc::new(AtomicU64::new(1)),
            config: Arc::new(config),
        }
    }

    fn is_closed(&self) -> bool {
        self.shared.pending().closed.is_some()
    }

    fn node_version(&self) -> Option<u32> {
        match self.shared.node_version.load(Ordering::Relaxed) {
            UNKNOWN_VERSION => None,
            v => Some(v),
        }
    }

    /// One attempt of a call on this link.
    pub(super) async fn call<A, R>(
        &self,
        service: &str,
        version: u32,
        method: u16,
        args: &A,
        deadline: Duration,
    ) -> Result<R, CallError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let call_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::with_capacity(64);
        let start =
            wire::begin_call(&mut frame, call_id, service, version, method).map_err(|_| {
                CallError::Encode(format!(
                    "service names are 1 to {} bytes, {:?} has {}",
                    wire::MAX_SERVICE_NAME,
                    service,
                    service.len()
                ))
            })?;
        let mut frame =
            postcard::to_extend(args, frame).map_err(|e| CallError::Encode(e.to_string()))?;
        wire::finish(&mut frame, start);

        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.shared.pending();
            if let Some(reason) = &pending.closed {
                // Closed before this call was sent: it certainly did not run.
                return Err(CallError::Unreachable(reason.clone()));
            }
            pending.waiters.insert(call_id, tx);
        }
        // Removes the waiter if this future is dropped or times out.
        let _waiting = Waiting {
            shared: &self.shared,
            call_id,
        };
        if self.frames.send(Outgoing::Frame(frame)).is_err() {
            return Err(CallError::ConnectionClosed(
                "the connection's writer stopped".into(),
            ));
        }
        let reply = match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(reply)) => reply?,
            Ok(Err(_)) => {
                return Err(CallError::ConnectionClosed(
                    "the reply reader stopped".into(),
                ));
            }
            Err(_) => return Err(CallError::DeadlineExceeded(deadline)),
        };
        let payload = &reply.body[reply.payload_at..];
        match reply
            .status
            .call_error(payload, reply.node_version, version)
        {
            None => {
                postcard::from_bytes(payload).map_err(|e| CallError::DecodeReply(e.to_string()))
            }
            Some(error) => Err(error),
        }
    }
}

struct Waiting<'a> {
    shared: &'a Shared,
    call_id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.shared.pending().waiters.remove(&self.call_id);
    }
}

async fn read_replies<R: AsyncRead>(
    read: R,
    shared: Arc<Shared>,
    max_frame: usize,
    frames: mpsc::WeakUnboundedSender<Outgoing>,
) {
    let mut read = std::pin::pin!(BufReader::with_capacity(64 * 1024, read));
    let mut going_away = false;
    // Once the node is going away and no call waits for a reply, end our
    // side: the node then
    // knows nothing more is coming and can close without leaving a call in doubt.
    let finish_if_idle = |going_away: bool| {
        if going_away
            && shared.pending().waiters.is_empty()
            && let Some(frames) = frames.upgrade()
        {
            let _ = frames.send(Outgoing::Shutdown);
        }
    };
    let reason = loop {
        let mut body = Vec::new();
        match wire::read_frame(&mut read, max_frame, &mut body).await {
            Ok(true) => {}
            Ok(false) => break "the node closed the connection".to_string(),
            Err(e) => break e.to_string(),
        }
        let reply = match wire::decode(&body) {
            Ok(Frame::Reply(reply)) => reply,
            Ok(Frame::Call(_)) => break "the node sent a call frame; nodes only reply".to_string(),
            Err(e) => break format!("the node sent a malformed frame: {e}"),
        };
        if reply.call_id == CONNECTION_CALL_ID && reply.status == Status::BadFrame {
            // A frame of ours the node could not even attribute to a call:
            // this client and the node disagree on the wire format.
            let message = String::from_utf8_lossy(reply.payload);
            break format!("the node could not read a frame of ours: {message}");
        }
        if reply.call_id == CONNECTION_CALL_ID && reply.status == Status::Refused {
            // Refused before anything was read: no call on this link ran.
            let message = String::from_utf8_lossy(reply.payload);
            shared.refuse(format!("the node refused the connection: {message}"));
            return;
        }
        if reply.call_id == CONNECTION_CALL_ID {
            // The node is going away: no new calls on this link (they
            // reconnect); the calls already sent still get their replies.
            shared
                .pending()
                .closed
                .get_or_insert_with(|| "the node is going away".into());
            going_away = true;
            finish_if_idle(going_away);
            continue;
        }
        if reply.node_version != UNKNOWN_VERSION {
            shared
                .node_version
                .store(reply.node_version, Ordering::Relaxed);
        }
        let owned = OwnedReply {
            status: reply.status,
            node_version: reply.node_version,
            payload_at: body.len() - reply.payload.len(),
            body: Vec::new(),
        };
        let call_id = reply.call_id;
        // A reply without a waiter answers a call that timed out: drop it.
        let waiter = shared.pending().waiters.remove(&call_id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(Ok(OwnedReply { body, ..owned }));
        }
        finish_if_idle(going_away);
    };
    shared.close(reason);
}
