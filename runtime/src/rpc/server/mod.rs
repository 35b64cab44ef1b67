//! The node side of RPC: accepts connections, reads call frames, dispatches
//! each call by version and writes the replies.

mod accept;
mod connection;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

pub use accept::Listener;
#[cfg(unix)]
pub use accept::UnixListener;

use crate::rpc::service::Service;
use crate::sync::until;
use crate::wire;

/// Limits of a server; every field has a default. They bound what one peer,
/// hostile or unlucky, can make a node hold: memory per connection, time per
/// frame, connections in all and per peer address.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest frame body accepted; a larger length prefix closes the
    /// connection. Buffers grow with the bytes that arrive, not with the prefix.
    pub max_frame: usize,
    /// Calls served at once per connection; further calls wait to be read.
    pub max_in_flight: usize,
    /// Bytes of replies queued per connection and not yet written; past it,
    /// no more calls are read from that connection until its peer reads.
    pub max_queued_reply_bytes: usize,
    /// Connections served at once; one more is refused with a `Refused`
    /// frame. The default is 4,096, or three quarters of the process's
    /// open-file limit if that is lower, so a flood of connections cannot
    /// take the descriptors that state files and the node's own calls need.
    pub max_connections: usize,
    /// Connections served at once from one IP address.
    pub max_connections_per_peer: usize,
    /// Time from a frame's first byte to its last; a slower peer is closed.
    pub frame_timeout: std::time::Duration,
    /// A connection with no call in flight and no frame for this long is
    /// closed (clients reconnect on their next call).
    pub idle_timeout: std::time::Duration,
    /// Mutual TLS on TCP listeners: when set, a connection is served only
    /// after a TLS handshake in which the caller presents a certificate
    /// of the configured CA (within `frame_timeout`), and each call knows
    /// who made it ([`caller`](crate::rpc::caller)). Unix sockets stay
    /// plain: the file system's permissions guard them.
    pub tls: Option<crate::rpc::tls::ServerTls>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame: wire::DEFAULT_MAX_FRAME,
            max_in_flight: 4096,
            max_queued_reply_bytes: 16 * 1024 * 1024,
            max_connections: default_max_connections(),
            max_connections_per_peer: 512,
            frame_timeout: std::time::Duration::from_secs(30),
            idle_timeout: std::time::Duration::from_secs(600),
            tls: None,
        }
    }
}

/// 4,096, or three quarters of the soft open-file limit when that is lower.
fn default_max_connections() -> usize {
    // Linux says it in /proc; elsewhere the fixed default stands.
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        });
    soft.map_or(4096, |soft| (soft / 4 * 3).clamp(16, 4096))
}

struct Inner {
    services: RwLock<HashMap<&'static str, Arc<Service>>>,
    /// Bumped by every install, so connections can cache their lookups.
    generation: AtomicU64,
    /// Set first when the server is going away: listeners close.
    stop_accepting: tokio::sync::watch::Sender<bool>,
    /// Listeners still open.
    listening: Arc<Tally>,
    /// Set once every listener has closed, with the grace connections get:
    /// a client told to go away reconnects at once, and must find no
    /// listener, or its connection would sit in the kernel's backlog and be
    /// reset with its calls unanswered.
    going_away: tokio::sync::watch::Sender<Option<std::time::Duration>>,
    /// Connections being served.
    connections: Arc<Tally>,
    /// Connections being served per peer IP address.
    peers: std::sync::Mutex<HashMap<std::net::IpAddr, usize>>,
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
                listening: Arc::default(),
                going_away: tokio::sync::watch::Sender::new(None),
                connections: Arc::default(),
                peers: std::sync::Mutex::default(),
                config,
            }),
        };
        server.install(service);
        server
    }

    /// Serves `service`, replacing a service of the same name; returns the
    /// replaced one. Calls already running finish on the old service.
    pub fn install(&self, service: Service) -> Option<Arc<Service>> {
        self.install_shared(Arc::new(service))
    }

    /// [`Server::install`] for a service already shared: one that was
    /// served before and is put back.
    pub fn install_shared(&self, service: Arc<Service>) -> Option<Arc<Service>> {
        let mut services = self
            .inner
            .services
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let replaced = services.insert(service.name(), service);
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
    pub async fn listen(&self, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<Listener> {
        Listener::bind(self, addr).await
    }

    /// Serves every connection `listener` accepts (one bound by
    /// [`bind_shared`], say), until the returned [`Listener`] is dropped.
    pub fn serve_tcp(&self, listener: tokio::net::TcpListener) -> std::io::Result<Listener> {
        Listener::serve(self, listener.into())
    }

    /// Listens on a Unix domain socket at `path` (which must not exist yet)
    /// and serves every connection until the returned [`UnixListener`] is
    /// dropped, which also closes the connections it accepted.
    #[cfg(unix)]
    pub fn listen_unix(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<UnixListener> {
        UnixListener::bind(self, path.as_ref())
    }

    /// Takes the server down gracefully: listeners stop accepting, every
    /// connection is told to send no more calls (calls it sent before are
    /// still answered), and each closes once its client has ended its side,
    /// or after `grace` at the latest. Returns once they have closed. A node quiesces before this, so what it answers then
    /// is `Upgrading`: no caller is left not knowing whether its call ran.
    pub async fn go_away(&self, grace: std::time::Duration) {
        // Listeners first, so no client told to go away can connect again.
        self.inner.stop_accepting.send_replace(true);
        let listeners_closed = self.inner.listening.until_none();
        let _ = tokio::time::timeout(grace, listeners_closed).await;
        self.inner.going_away.send_replace(Some(grace));
        // Each connection closes `grace` after it learns; wait for the last,
        // but not forever.
        let all_closed = self.inner.connections.until_none();
        let _ = tokio::time::timeout(
            grace * 4 + std::time::Duration::from_millis(100),
            all_closed,
        )
        .await;
    }
}

/// How many of something are open, and a signal when none is.
#[derive(Debug, Default)]
struct Tally {
    open: AtomicUsize,
    none: Notify,
}

impl Tally {
    /// Counts one more until the guard drops (closed, or its task aborted).
    fn enter(self: &Arc<Self>) -> Open {
        self.open.fetch_add(1, Ordering::SeqCst);
        Open(self.clone())
    }

    /// Resolves once none is open.
    async fn until_none(&self) {
        until(&self.none, || self.open.load(Ordering::SeqCst) == 0).await;
    }
}

/// One open thing of a [`Tally`], counted until dropped.
struct Open(Arc<Tally>);

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none.notify_waiters();
        }
    }
}

/// Resolves once listeners must stop accepting (or the server is gone).
async fn stopping(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// Binds a TCP listener that another process of the same user may bind to
/// the same address while this one listens (`SO_REUSEPORT`): how a node's
/// next binary takes over its port in a restart-mode upgrade without a
/// moment in which connections are refused. The kernel spreads new
/// connections over the listeners; those that reach a process still
/// starting wait in its backlog until it serves.
#[cfg(unix)]
pub fn bind_shared(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
