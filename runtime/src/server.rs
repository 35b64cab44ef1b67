//! The node side of RPC: accepts connections, reads call frames, dispatches
//! each call by version and writes the replies.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::client::Connection;
use crate::error::DispatchError;
use crate::service::{Dispatch, Gate, Refusal, Service};
use crate::wire::{self, Frame, Status};

/// Limits of a server; every field has a default.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest frame body accepted; a larger length prefix closes the connection.
    pub max_frame: usize,
    /// Calls served at once per connection; further calls wait to be read.
    pub max_in_flight: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame: wire::DEFAULT_MAX_FRAME,
            max_in_flight: 4096,
        }
    }
}

struct Inner {
    services: RwLock<HashMap<&'static str, Arc<Service>>>,
    /// Bumped by every install, so connections can cache their lookups.
    generation: AtomicU64,
    /// Set first when the server is going away: listeners close.
    stop_accepting: tokio::sync::watch::Sender<bool>,
    /// Listeners still open, and a signal when the last one closes.
    listening: AtomicUsize,
    no_listeners: Notify,
    /// Set once every listener has closed, with the grace connections get:
    /// a client told to go away reconnects at once, and must find no
    /// listener, or its connection would sit in the kernel's backlog and be
    /// reset with its calls unanswered.
    going_away: tokio::sync::watch::Sender<Option<std::time::Duration>>,
    /// Connections being served, and a signal when the last one ends.
    connections: AtomicUsize,
    no_connections: Notify,
    config: ServerConfig,
}

/// Serves one or more services over any number of connections.
///
/// Cloning is cheap and shares the services; [`Server::install`] replaces a
/// service (for example with its next version) without touching connections.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let services = self
            .inner
            .services
            .read()
            .map(|s| s.keys().copied().collect::<Vec<_>>());
        f.debug_struct("Server")
            .field("services", &services.unwrap_or_default())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Server {
    /// A server for `service` with the default limits.
    pub fn new(service: Service) -> Self {
        Self::with_config(service, ServerConfig::default())
    }

    /// A server for `service` with the given limits.
    pub fn with_config(service: Service, config: ServerConfig) -> Self {
        let server = Server {
            inner: Arc::new(Inner {
                services: RwLock::new(HashMap::new()),
                generation: AtomicU64::new(0),
                stop_accepting: tokio::sync::watch::Sender::new(false),
                listening: AtomicUsize::new(0),
                no_listeners: Notify::new(),
                going_away: tokio::sync::watch::Sender::new(None),
                connections: AtomicUsize::new(0),
                no_connections: Notify::new(),
                config,
            }),
        };
        server.install(service);
        server
    }

    /// Serves `service`, replacing a service of the same name; returns the
    /// replaced one. Calls already running finish on the old service.
    pub fn install(&self, service: Service) -> Option<Arc<Service>> {
        let mut services = self
            .inner
            .services
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let replaced = services.insert(service.name(), Arc::new(service));
        // Connections cache their lookup; a new generation makes them look again.
        self.inner.generation.fetch_add(1, Ordering::Release);
        replaced
    }

    /// The service of this name, as it is served now.
    pub fn service(&self, name: &str) -> Option<Arc<Service>> {
        let services = self
            .inner
            .services
            .read()
            .unwrap_or_else(|e| e.into_inner());
        services.get(name).cloned()
    }

    /// Listens on a TCP address (port 0 picks a free port) and serves every
    /// connection until the returned [`Listener`] is shut down or dropped,
    /// which also closes the connections it accepted.
    pub async fn listen(&self, addr: impl ToSocketAddrs) -> std::io::Result<Listener> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let server = self.clone();
        let open = OpenListener::new(&self.inner);
        let task = tokio::spawn(async move {
            // The listener owns its connections: dropping it closes them.
            let mut connections = tokio::task::JoinSet::new();
            let mut stop = server.inner.stop_accepting.subscribe();
            loop {
                tokio::select! {
                    // Going away: accept no more, and let the connections drain.
                    () = stopping(&mut stop) => {
                        drop(listener);
                        drop(open);
                        while connections.join_next().await.is_some() {}
                        return;
                    }
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            // Replies are small and latency-bound.
                            let _ = stream.set_nodelay(true);
                            connections.spawn(server.clone().serve_connection(stream));
                        }
                        // Out of file descriptors and similar: back off instead of spinning.
                        Err(e) => {
                            tracing::warn!(error = %e, "accepting a TCP connection failed; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    },
                    // Reap finished connections so the set does not grow.
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Listener { local_addr, task })
    }

    /// Listens on a Unix domain socket at `path` (which must not exist yet)
    /// and serves every connection until the returned [`Listener`] is dropped.
    #[cfg(unix)]
    pub fn listen_unix(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<UnixListener> {
        let path = path.as_ref().to_path_buf();
        let listener = tokio::net::UnixListener::bind(&path)?;
        let server = self.clone();
        let open = OpenListener::new(&self.inner);
        let task = tokio::spawn(async move {
            let _open = open;
            let mut stop = server.inner.stop_accepting.subscribe();
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = stopping(&mut stop) => return,
                };
                match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(server.clone().serve_connection(stream));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a Unix connection failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(UnixListener { path, task })
    }

    /// Takes the server down gracefully: listeners stop accepting, every
    /// connection is told to send no more calls (calls it sent before are
    /// still answered), and each closes once its client has ended its side,
    /// or after `grace` at the latest. Returns once they have closed. A node quiesces before this, so what it answers then
    /// is `Upgrading`: no caller is left not knowing whether its call ran.
    pub async fn go_away(&self, grace: std::time::Duration) {
        // Listeners first, so no client told to go away can connect again.
        self.inner.stop_accepting.send_replace(true);
        let listeners_closed = async {
            loop {
                let closed = self.inner.no_listeners.notified();
                if self.inner.listening.load(Ordering::SeqCst) == 0 {
                    return;
                }
                closed.await;
            }
        };
        let _ = tokio::time::timeout(grace, listeners_closed).await;
        self.inner.going_away.send_replace(Some(grace));
        // Each connection closes `grace` after it learns; wait for the last,
        // but not forever.
        let all_closed = async {
            loop {
                let closed = self.inner.no_connections.notified();
                if self.inner.connections.load(Ordering::SeqCst) == 0 {
                    return;
                }
                closed.await;
            }
        };
        let _ = tokio::time::timeout(
            grace * 4 + std::time::Duration::from_millis(100),
            all_closed,
        )
        .await;
    }

    /// A client connection to this server over an in-memory pipe.
    pub fn connect_in_memory(&self) -> Connection {
        let (client, node) = tokio::io::duplex(64 * 1024);
        tokio::spawn(self.clone().serve_connection(node));
        Connection::from_io(client, Default::default())
    }

    /// Serves one connection until the peer closes it or breaks the framing.
    pub async fn serve_connection<IO>(self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        self.inner.connections.fetch_add(1, Ordering::SeqCst);
        let _counted = Counted(&self.inner);
        let (read, write) = tokio::io::split(io);
        let mut read = BufReader::with_capacity(64 * 1024, read);
        let (replies, pending_replies) = mpsc::unbounded_channel();
        // Bounds the calls in flight, and so the replies queued. Every call
        // frame gets exactly one reply, so the writer frees a slot per reply.
        let slots = Arc::new(Slots::new(self.inner.config.max_in_flight));
        let writer = tokio::spawn(write_frames(write, pending_replies, Some(slots.clone())));
        // The service last called on this connection; installs bump the
        // generation, so a swapped service is seen by the next call.
        let mut cached: Option<(u64, Arc<Service>)> = None;
        let generation = || self.inner.generation.load(Ordering::Acquire);
        let reading = async {
            loop {
                let mut body = Vec::new();
                match wire::read_frame(&mut read, self.inner.config.max_frame, &mut body).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "closing a connection");
                        break;
                    }
                }
                slots.take().await;
                let call = match wire::decode(&body) {
                    Ok(Frame::Call(call)) => call,
                    Ok(Frame::Reply(reply)) => {
                        let msg = "nodes accept only call frames, this was a reply";
                        let _ = replies.send(wire::reply_with_message(
                            reply.call_id,
                            0,
                            Status::BadFrame,
                            msg,
                        ));
                        continue;
                    }
                    Err(e) => match wire::peek_call_id(&body) {
                        Some(call_id) if e.is_recoverable() => {
                            let _ = replies.send(wire::reply_with_message(
                                call_id,
                                0,
                                Status::BadFrame,
                                &e.to_string(),
                            ));
                            continue;
                        }
                        _ => {
                            tracing::warn!(error = %e, "closing a connection");
                            break;
                        }
                    },
                };
                if cached
                    .as_ref()
                    .is_none_or(|c| c.0 != generation() || c.1.name() != call.service)
                {
                    // Read the generation first: a racing install then only causes a refresh.
                    let seen = generation();
                    cached = self.service(call.service).map(|s| (seen, s));
                }
                let Some((_, service)) = &cached else {
                    let msg = format!("this node serves no service named {:?}", call.service);
                    let _ = replies.send(wire::reply_with_message(
                        call.call_id,
                        0,
                        Status::UnknownService,
                        &msg,
                    ));
                    continue;
                };
                let incoming = Incoming {
                    call_id: call.call_id,
                    version: call.version,
                    method: call.method,
                    payload_at: body.len() - call.payload.len(),
                    node_version: service.version(),
                    body,
                    replies: replies.clone(),
                    gate: None,
                };
                if let Err((call, refusal)) = service.answer(incoming.version, incoming) {
                    let status = match refusal {
                        Refusal::VersionUnsupported => Status::VersionUnsupported,
                        Refusal::Upgrading => Status::Upgrading,
                    };
                    let reply =
                        wire::reply_with_message(call.call_id, call.node_version, status, "");
                    let _ = replies.send(reply);
                }
            }
        };
        // Going away: tell the client to send no more calls on this
        // connection and keep answering what it already sent (with
        // `Upgrading` once the service is quiesced). The client ends its side
        // once no call of its waits; reading then ends, and the connection
        // closes. `grace` bounds the wait for a client that never does.
        let going = async {
            let mut away = self.inner.going_away.subscribe();
            let Ok(grace) = away
                .wait_for(Option::is_some)
                .await
                .map(|g| g.unwrap_or_default())
            else {
                return std::future::pending().await;
            };
            // The writer frees a slot per frame it writes; this frame takes one too.
            slots.take().await;
            let _ = replies.send(wire::reply_with_message(
                0,
                0,
                Status::Upgrading,
                "the node is going away",
            ));
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = reading => {}
            () = going => {}
        }
        drop(replies);
        let _ = writer.await;
    }
}

/// Counts a connection as served until dropped.
struct Counted<'a>(&'a Inner);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if self.0.connections.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.no_connections.notify_waiters();
        }
    }
}

/// Counts a listener as open until dropped (closed, or its task aborted).
struct OpenListener(Arc<Inner>);

impl OpenListener {
    fn new(inner: &Arc<Inner>) -> Self {
        inner.listening.fetch_add(1, Ordering::SeqCst);
        OpenListener(inner.clone())
    }
}

impl Drop for OpenListener {
    fn drop(&mut self) {
        if self.0.listening.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.no_listeners.notify_waiters();
        }
    }
}

/// Resolves once listeners must stop accepting (or the server is gone).
async fn stopping(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

fn status_of(e: &DispatchError) -> Status {
    match e {
        DispatchError::Disallowed(_) => Status::Disallowed,
        DispatchError::UnknownMethod { .. } => Status::UnknownMethod,
        DispatchError::BadRequest { .. } => Status::BadRequest,
        DispatchError::EncodeReturn(_) => Status::Internal,
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
    pub(crate) replies: mpsc::UnboundedSender<Vec<u8>>,
    /// The service's gate, left when the call is answered.
    pub(crate) gate: Option<Arc<Gate>>,
}

/// The calls a connection may have in flight: taken by the reader per frame,
/// freed by the writer per reply. A plain counter rather than a semaphore:
/// taking a free slot never yields, so a burst of calls read in one go is
/// dispatched in one go and its replies leave in one write.
pub(crate) struct Slots {
    used: AtomicUsize,
    max: usize,
    freed: Notify,
}

impl Slots {
    fn new(max: usize) -> Self {
        Slots {
            used: AtomicUsize::new(0),
            max: max.max(1),
            freed: Notify::new(),
        }
    }

    /// Takes a slot, waiting while all are in use.
    async fn take(&self) {
        loop {
            // Registered before the check, so a slot freed in between wakes it.
            let freed = self.freed.notified();
            if self.used.fetch_add(1, Ordering::AcqRel) < self.max {
                return;
            }
            self.used.fetch_sub(1, Ordering::AcqRel);
            freed.await;
        }
    }

    /// Frees a slot.
    fn free(&self) {
        if self.used.fetch_sub(1, Ordering::AcqRel) >= self.max {
            self.freed.notify_waiters();
        }
    }
}

/// Serves one call and sends its reply. If the service object panics, the
/// guard still answers, so no caller waits for its deadline.
pub(crate) async fn answer<D: Dispatch>(dispatch: Arc<D>, call: Incoming) {
    let mut guard = ReplyGuard { call, sent: false };
    let call = &guard.call;
    let mut out = Vec::with_capacity(64);
    let start = wire::begin_reply(&mut out, call.call_id, call.node_version, Status::Ok);
    let result = dispatch
        .call(call.method, &call.body[call.payload_at..], &mut out)
        .await;
    let reply = match result {
        Ok(()) => {
            wire::finish(&mut out, start);
            out
        }
        Err(e) => wire::reply_with_message(
            call.call_id,
            call.node_version,
            status_of(&e),
            &e.to_string(),
        ),
    };
    guard.sent = true;
    let _ = guard.call.replies.send(reply);
}

struct ReplyGuard {
    call: Incoming,
    sent: bool,
}

impl Drop for ReplyGuard {
    fn drop(&mut self) {
        if let Some(gate) = &self.call.gate {
            gate.leave();
        }
        if !self.sent {
            let c = &self.call;
            let msg = format!(
                "the service object panicked while serving method {} of v{}",
                c.method, c.version
            );
            tracing::error!(call_id = c.call_id, "{msg}");
            let _ = c.replies.send(wire::reply_with_message(
                c.call_id,
                c.node_version,
                Status::Internal,
                &msg,
            ));
        }
    }
}

/// Writes queued frames, flushing only when the queue runs dry so that
/// concurrent replies share system calls. Frees a slot per frame, if given.
pub(crate) async fn write_frames<W: AsyncWrite>(
    write: W,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
    slots: Option<Arc<Slots>>,
) {
    let write = BufWriter::with_capacity(64 * 1024, write);
    let mut write = std::pin::pin!(write);
    while let Some(frame) = frames.recv().await {
        let mut next = Some(frame);
        while let Some(frame) = next {
            // An empty frame asks to end this side of the connection.
            if frame.is_empty() {
                let _ = write.flush().await;
                let _ = write.shutdown().await;
                return;
            }
            if let Some(slots) = &slots {
                slots.free();
            }
            if write.write_all(&frame).await.is_err() {
                return;
            }
            next = frames.try_recv().ok();
        }
        if write.flush().await.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// A running Unix socket listener; dropping it stops accepting new
/// connections and removes the socket file.
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixListener {
    path: std::path::PathBuf,
    task: JoinHandle<()>,
}

#[cfg(unix)]
impl UnixListener {
    /// The socket's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[cfg(unix)]
impl Drop for UnixListener {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A running TCP listener; dropping it stops accepting and closes the
/// connections it accepted.
#[derive(Debug)]
pub struct Listener {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Listener {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and closes every connection it accepted, as a node
    /// that dies would (calls in flight get no reply).
    pub fn shutdown(self) {}
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
