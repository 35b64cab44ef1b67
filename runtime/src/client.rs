//! The caller side of RPC: a multiplexed connection that generated clients
//! share, with call ids, deadlines and the node version learned from replies.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
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

/// How a call is retried when the node certainly did not run it
/// ([`CallError::not_executed`]): with exponential backoff and jitter, within
/// the call's deadline, on the next replica of the [`Connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubles after each attempt.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 50,
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(250),
        }
    }
}

/// Per-call settings of a generated client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallOptions {
    /// Time for the whole call, retries included.
    pub deadline: Duration,
    /// Retries of calls the node did not run; `None` never retries.
    pub retry: Option<RetryPolicy>,
}

/// A connection to one node, or to several replicas of a service, shared by
/// any number of clients and calls.
///
/// Calls are multiplexed by call id, so many can be in flight at once. With
/// several replicas, calls rotate among them, and a call the node did not run
/// is retried on the next one. Cloning is cheap; a connection closes when its
/// last clone is dropped.
#[derive(Clone)]
pub struct Connection {
    links: Arc<[Endpoint]>,
    cursor: Arc<AtomicU64>,
}

/// One node of a connection: its current link and, for TCP, the address to
/// reconnect to when the link closes (the node restarted, say).
struct Endpoint {
    link: Mutex<Link>,
    addr: Option<SocketAddr>,
}

impl Clone for Endpoint {
    fn clone(&self) -> Self {
        Endpoint {
            link: Mutex::new(self.link.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            addr: self.addr,
        }
    }
}

impl Endpoint {
    /// The link to call on: the current one, or a new one if it closed and
    /// the node can be reached again. A node that cannot be reached did not
    /// run the call.
    async fn link(&self) -> Result<Link, CallError> {
        let current = self.link.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(addr) = self.addr.filter(|_| current.is_closed()) else {
            return Ok(current);
        };
        let config = (*current.config).clone();
        let fresh = Link::connect_with(addr, config)
            .await
            .map_err(|e| CallError::Unreachable(format!("{addr}: {e}")))?;
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        Ok(fresh)
    }

    fn node_version(&self) -> Option<u32> {
        self.link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .node_version()
    }

    fn deadline(&self) -> Duration {
        self.link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .deadline
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("replicas", &self.links.len())
            .field("node_version", &self.node_version())
            .finish()
    }
}

impl Connection {
    /// Connects over TCP with the default settings. When the connection
    /// closes (the node restarted), the next call connects again.
    pub async fn connect(addr: impl ToSocketAddrs) -> std::io::Result<Self> {
        Self::connect_with(addr, ClientConfig::default()).await
    }

    /// Connects over TCP with the given settings; see [`Connection::connect`].
    pub async fn connect_with(
        addr: impl ToSocketAddrs,
        config: ClientConfig,
    ) -> std::io::Result<Self> {
        let link = Link::connect_with(addr, config).await?;
        let addr = link.peer;
        Ok(Connection {
            links: Arc::from([Endpoint {
                link: Mutex::new(link),
                addr,
            }]),
            cursor: Arc::new(AtomicU64::new(0)),
        })
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
        Link::from_io(io, config).into()
    }

    /// One connection over the replicas of a service: calls rotate among
    /// them, and a call that a node did not run moves on to the next.
    ///
    /// # Panics
    ///
    /// If `replicas` is empty.
    pub fn replicas(replicas: impl IntoIterator<Item = Connection>) -> Self {
        let links: Vec<Endpoint> = replicas
            .into_iter()
            .flat_map(|c| c.links.iter().cloned().collect::<Vec<_>>())
            .collect();
        assert!(!links.is_empty(), "a connection needs at least one replica");
        Connection {
            links: links.into(),
            cursor: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The newest version any node reported in a reply, if a reply came yet.
    pub fn node_version(&self) -> Option<u32> {
        self.links.iter().filter_map(Endpoint::node_version).max()
    }

    /// The settings calls get unless their client sets others.
    pub fn default_options(&self) -> CallOptions {
        CallOptions {
            deadline: self.links[0].deadline(),
            retry: None,
        }
    }

    /// Calls `method` of `service` at `version` with `args` and decodes the
    /// return value, retrying as `options` allow. Generated clients call
    /// this; it is public so tools can make calls from an
    /// [`crate::schema::InterfaceSchema`].
    pub async fn call<A, R>(
        &self,
        service: &str,
        version: u32,
        method: u16,
        args: &A,
        options: &CallOptions,
    ) -> Result<R, CallError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let started = tokio::time::Instant::now();
        let first = self.cursor.fetch_add(1, Ordering::Relaxed);
        let mut attempt: u32 = 0;
        loop {
            let link =
                &self.links[((first + u64::from(attempt)) % self.links.len() as u64) as usize];
            let remaining = options.deadline.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                return Err(CallError::DeadlineExceeded(options.deadline));
            }
            let result = match link.link().await {
                Ok(link) => link.call(service, version, method, args, remaining).await,
                Err(unreachable) => Err(unreachable),
            };
            let retry = match (&result, options.retry) {
                (Err(e), Some(policy)) if e.not_executed() && attempt + 1 < policy.attempts => {
                    policy
                }
                _ => {
                    return result.map_err(|e| match e {
                        CallError::DeadlineExceeded(_) => {
                            CallError::DeadlineExceeded(options.deadline)
                        }
                        other => other,
                    });
                }
            };
            let wait = backoff(retry, attempt, first);
            if started.elapsed() + wait >= options.deadline {
                return result;
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// The wait before attempt `attempt + 1`: exponential, capped, with jitter
/// in its upper half so retrying clients spread out.
fn backoff(policy: RetryPolicy, attempt: u32, seed: u64) -> Duration {
    let base = policy
        .first_backoff
        .saturating_mul(1u32 << attempt.min(16))
        .min(policy.max_backoff);
    // xorshift of the call's seed and attempt: cheap, and enough to de-synchronise.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(attempt) + 1);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let half = base / 2;
    half + Duration::from_nanos(x % (half.as_nanos() as u64 + 1))
}

impl From<Link> for Connection {
    fn from(link: Link) -> Self {
        Connection {
            links: Arc::from([Endpoint {
                link: Mutex::new(link),
                addr: None,
            }]),
            cursor: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// One multiplexed connection to one node.
#[derive(Clone)]
struct Link {
    /// The node's TCP address, to reconnect to.
    peer: Option<SocketAddr>,
    frames: mpsc::UnboundedSender<Vec<u8>>,
    shared: Arc<Shared>,
    next_id: Arc<AtomicU64>,
    config: Arc<ClientConfig>,
}

impl Link {
    async fn connect_with(addr: impl ToSocketAddrs, config: ClientConfig) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        Ok(Link {
            peer: Some(peer),
            ..Self::from_io(stream, config)
        })
    }

    fn from_io<IO>(io: IO, config: ClientConfig) -> Self
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
            0 => None,
            v => Some(v),
        }
    }

    /// One attempt of a call on this link.
    async fn call<A, R>(
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
            Status::Upgrading => Err(CallError::Upgrading {
                node: reply.node_version,
            }),
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
    frames: mpsc::WeakUnboundedSender<Vec<u8>>,
) {
    let mut read = std::pin::pin!(BufReader::with_capacity(64 * 1024, read));
    let mut going_away = false;
    // Once the node is going away and no call waits for a reply, end our
    // side (an empty frame tells the writer to shut down): the node then
    // knows nothing more is coming and can close without leaving a call in doubt.
    let finish_if_idle = |going_away: bool| {
        if going_away
            && shared.pending().waiters.is_empty()
            && let Some(frames) = frames.upgrade()
        {
            let _ = frames.send(Vec::new());
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
        if reply.call_id == 0 {
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
        finish_if_idle(going_away);
    };
    shared.close(reason);
}
