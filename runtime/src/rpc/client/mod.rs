//! The caller side of RPC: a multiplexed connection that generated clients
//! share, with call ids, deadlines and the node version learned from replies.

mod link;
mod retry;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::ToSocketAddrs;

pub use retry::RetryPolicy;

use crate::error::CallError;
use crate::wire;
use link::{Endpoint, Link};
use retry::backoff;

/// Settings of a client connection; every field has a default.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Largest reply body accepted; a larger one closes the connection.
    pub max_frame: usize,
    /// Deadline of calls made by clients that do not set their own.
    pub deadline: Duration,
    /// Mutual TLS over TCP: the servers' CA and this client's certificate
    /// (which tells the server who calls). Reconnections use it too.
    pub tls: Option<crate::rpc::tls::ClientTls>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_frame: wire::DEFAULT_MAX_FRAME,
            deadline: Duration::from_secs(30),
            tls: None,
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

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("replicas", &self.links.len())
            .field("node_version", &self.node_version())
            .finish()
    }
}

impl Connection {
    /// The address of the node this connection calls (its first, with
    /// replicas); `None` for Unix sockets and in-memory pairs.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.links.first().and_then(|e| e.addr)
    }

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
            let result = match link.link(remaining).await {
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
