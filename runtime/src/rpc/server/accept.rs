//! One accept loop for every listening transport (TCP, Unix sockets): each
//! listener owns the connections it accepted, so dropping it closes them,
//! and going away stops it before any client is told to reconnect.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

use super::{Open, Server, stopping};
use crate::net;
use crate::rpc::tls;
use crate::sync::lock;
use crate::wire::{self, CONNECTION_CALL_ID, Status, UNKNOWN_VERSION};

/// A listening socket of some transport.
trait Accept: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The transport's name, for logs.
    const NAME: &'static str;
    /// Whether a server with TLS speaks it here: over TCP; a Unix socket
    /// is reached only through the file system's permissions.
    const TLS: bool;
    /// The next connection, and its peer's IP address if it has one.
    fn accept(
        &self,
    ) -> impl Future<Output = std::io::Result<(Self::Stream, Option<IpAddr>)>> + Send;
}

impl Accept for net::Listener {
    type Stream = net::Stream;
    const NAME: &'static str = "TCP";
    const TLS: bool = true;

    async fn accept(&self) -> std::io::Result<(Self::Stream, Option<IpAddr>)> {
        let (stream, peer) = net::Listener::accept(self).await?;
        Ok((stream, Some(peer.ip())))
    }
}

#[cfg(unix)]
impl Accept for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    const NAME: &'static str = "Unix";
    const TLS: bool = false;

    async fn accept(&self) -> std::io::Result<(Self::Stream, Option<IpAddr>)> {
        tokio::net::UnixListener::accept(self)
            .await
            .map(|(stream, _)| (stream, None))
    }
}

/// Accepts connections on `listener` and serves each until the server goes
/// away or the task is aborted; either way the connections it accepted end
/// with it.
fn spawn_accept_loop<L: Accept>(server: Server, listener: L) -> JoinHandle<()> {
    // Counted from now, not from the task's first poll: `go_away` must see it.
    let open: Open = server.inner.listening.enter();
    tokio::spawn(async move {
        // Owned here, so aborting this task closes every connection.
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
                    Ok((stream, peer)) => match admit(&server, peer) {
                        Ok(admitted) => {
                            let server = server.clone();
                            let tls = server.inner.config.tls.clone().filter(|_| L::TLS);
                            connections.spawn(async move {
                                match tls {
                                    // The handshake runs in the connection's
                                    // task: a slow one holds only itself.
                                    Some(tls) => {
                                        let timeout = server.inner.config.frame_timeout;
                                        match tls::handshake(&tls, stream, timeout).await {
                                            Ok((stream, caller)) => {
                                                server.serve_connection_as(stream, caller).await;
                                            }
                                            Err(why) => tracing::info!(peer = ?peer, "{why}"),
                                        }
                                    }
                                    None => server.serve_connection_as(stream, None).await,
                                }
                                drop(admitted);
                            });
                        }
                        Err(why) => {
                            tracing::warn!(peer = ?peer, "refusing a connection: {why}");
                            connections.spawn(refuse(stream, why));
                        }
                    },
                    // Out of file descriptors and similar: back off instead of spinning.
                    Err(e) => {
                        tracing::warn!(error = %e, transport = L::NAME, "accepting a connection failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                // Reap finished connections so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    })
}

/// A connection admitted under the limits; counted per peer until dropped.
struct Admitted {
    server: Server,
    peer: Option<IpAddr>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(ip) = self.peer {
            let mut peers = lock(&self.server.inner.peers);
            if let Some(n) = peers.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    peers.remove(&ip);
                }
            }
        }
    }
}

/// Admits a new connection, or says which limit it would pass.
fn admit(server: &Server, peer: Option<IpAddr>) -> Result<Admitted, String> {
    let config = &server.inner.config;
    let open = server.inner.connections.open.load(Ordering::SeqCst);
    if open >= config.max_connections {
        return Err(format!(
            "the node serves {open} connections, its limit (ServerConfig::max_connections); try again later"
        ));
    }
    if let Some(ip) = peer {
        let mut peers = lock(&server.inner.peers);
        let n = peers.entry(ip).or_default();
        if *n >= config.max_connections_per_peer {
            return Err(format!(
                "{ip} has {n} connections open, the limit per peer (ServerConfig::max_connections_per_peer); reuse a connection, calls multiplex"
            ));
        }
        *n += 1;
    }
    Ok(Admitted {
        server: server.clone(),
        peer,
    })
}

/// Tells a connection over the limits why it is refused, then closes it,
/// without reading anything from it: no call on it runs.
async fn refuse<S: AsyncRead + AsyncWrite>(stream: S, why: String) {
    let frame =
        wire::reply_with_message(CONNECTION_CALL_ID, UNKNOWN_VERSION, Status::Refused, &why);
    let (read, mut write) = tokio::io::split(stream);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        write.write_all(&frame).await?;
        write.shutdown().await?;
        // Whatever the peer sent is discarded, not run; reading it until the
        // peer closes keeps the kernel from resetting the connection before
        // the peer has read why.
        tokio::io::copy(&mut read.take(64 * 1024), &mut tokio::io::sink()).await
    })
    .await;
}

/// A running TCP listener; dropping it stops accepting and closes the
/// connections it accepted.
#[derive(Debug)]
pub struct Listener {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Listener {
    pub(super) async fn bind(
        server: &Server,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> std::io::Result<Self> {
        Self::serve(server, net::bind(addr).await?)
    }

    pub(super) fn serve(server: &Server, listener: net::Listener) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        Ok(Listener {
            local_addr,
            task: spawn_accept_loop(server.clone(), listener),
        })
    }

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

/// A running Unix socket listener; dropping it stops accepting, closes the
/// connections it accepted and removes the socket file.
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixListener {
    path: std::path::PathBuf,
    task: JoinHandle<()>,
}

#[cfg(unix)]
impl UnixListener {
    pub(super) fn bind(server: &Server, path: &std::path::Path) -> std::io::Result<Self> {
        let listener = tokio::net::UnixListener::bind(path)?;
        Ok(UnixListener {
            path: path.to_path_buf(),
            task: spawn_accept_loop(server.clone(), listener),
        })
    }

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
