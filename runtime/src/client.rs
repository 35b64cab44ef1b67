//! The caller side of RPC: a multiplexed connection that generated clients
//! share, with call ids, deadlines and the node version learned from replies.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot};

use crate::error::{CallError, Disallowed};
use crate::wire::{self, Frame, Status};

/// Settings of a client connection; every field has a default.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Largest reply body accepted; a larger one closes the connection.
    pub max_frame: usize,
    /// Deadline of calls made by clients that do not set their own.
    pub deadline: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_frame: wire::DEFAULT_MAX_FRAME,
            deadline: Duration::from_secs(30),
        }
    }
}

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
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self, reason: String) {
        let waiters = {
            let mut pending = self.pending();
            pending.closed.get_or_insert(reason.clone());
            std::mem::take(&mut pending.waiters)
        };
        for (_, waiter) in waiters {
            let _ = waiter.send(Err(CallError::ConnectionClosed(reason.clone())));
        }
    }
}

/// One connection to a node, shared by any number of clients and calls.
///
/// Calls are multiplexed by call id, so many can be in flight at once.
/// Cloning is cheap; the connection closes when the last clone is dropped.
#[derive(Clone)]
pub struct Connection {
    frames: mpsc::UnboundedSender<Vec<u8>>,
    shared: Arc<Shared>,
    next_id: Arc<AtomicU64>,
    config: Arc<ClientConfig>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("node_version", &self.node_version())
            .field("config", &self.config)
            .finish()
    }
}

impl Connection {
    /// Connects over TCP with the default settings.
    pub async fn connect(addr: impl ToSocketAddrs) -> std::io::Result<Self> {
        Self::connect_with(addr, ClientConfig::default()).await
    }

    /// Connects over TCP with the given settings.
    pub async fn connect_with(
        addr: impl ToSocketAddrs,
        config: ClientConfig,
    ) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self::from_io(stream, config))
    }

    /// Connects over a Unix domain socket with the given settings.
    #[cfg(unix)]
    pub async fn connect_unix(
        path: impl AsRef<std::path::Path>,
        config: ClientConfig,
    ) -> std::io::Result<Self> {
        let stream = tokio::net::UnixStream::connect(path).await?;
        Ok(Self::from_io(stream, config))
    }

    /// Runs the protocol over any byte stream (a Unix socket, an in-memory pipe).
    pub fn from_io<IO>(io: IO, config: ClientConfig) -> Self
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
            crate::server::write_frames(write, queued, None).await;
            writer_shared.close("the connection was closed for writing".into());
        });
        tokio::spawn(read_replies(read, shared.clone(), config.max_frame));
        Connection {
            frames,
            shared,
            next_id: Arc::new(AtomicU64::new(1)),
            config: Arc::new(config),
        }
    }

    /// The version the node reported in its latest reply, if any reply came yet.
    pub fn node_version(&self) -> Option<u32> {
        match self.shared.node_version.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v),
        }
    }

    /// The deadline calls get unless their client sets another.
    pub fn default_deadline(&self) -> Duration {
        self.config.deadline
    }

    /// Calls `method` of `service` at `version` with `args` and decodes the
    /// return value. Generated clients call this; it is public so tools can
    /// make calls from an [`crate::schema::InterfaceSchema`].
    pub async fn call<A, R>(
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
        if !(1..=255).contains(&service.len()) {
            return Err(CallError::Encode(format!(
                "service names are 1 to 255 bytes, {:?} has {}",
                service,
                service.len()
            )));
        }
        let call_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::with_capacity(64);
        let start = wire::begin_call(&mut frame, call_id, service, version, method);
        let mut frame =
            postcard::to_extend(args, frame).map_err(|e| CallError::Encode(e.to_string()))?;
        wire::finish(&mut frame, start);

        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.shared.pending();
            if let Some(reason) = &pending.closed {
                return Err(CallError::ConnectionClosed(reason.clone()));
            }
            pending.waiters.insert(call_id, tx);
        }
        // Removes the waiter if this future is dropped or times out.
        let _waiting = Waiting {
            shared: &self.shared,
            call_id,
        };
        if self.frames.send(frame).is_err() {
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
        let message = || String::from_utf8_lossy(payload).into_owned();
        match reply.status {
            Status::Ok => {
                postcard::from_bytes(payload).map_err(|e| CallError::DecodeReply(e.to_string()))
            }
            Status::Disallowed => Err(CallError::Disallowed(Disallowed::new(message()))),
            Status::VersionUnsupported => Err(CallError::VersionUnsupported {
                node: reply.node_version,
                call: version,
            }),
            Status::UnknownService => Err(CallError::UnknownService(message())),
            Status::UnknownMethod => Err(CallError::UnknownMethod(message())),
            Status::BadRequest => Err(CallError::BadRequest(message())),
            Status::BadFrame => Err(CallError::BadFrame(message())),
            Status::Internal => Err(CallError::Internal(message())),
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

async fn read_replies<R: AsyncRead>(read: R, shared: Arc<Shared>, max_frame: usize) {
    let mut read = std::pin::pin!(BufReader::with_capacity(64 * 1024, read));
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
        if reply.node_version != 0 {
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
    };
    shared.close(reason);
}
