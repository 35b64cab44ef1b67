//! One accept loop for every listening transport (TCP, Unix sockets): each
//! listener owns the connections it accepted, so dropping it closes them,
//! and going away stops it before any client is told to reconnect.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use super::{Open, Server, stopping};

/// A listening socket of some transport.
trait Accept: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Send + 'static;
    /// The transport's name, for logs.
    const NAME: &'static str;
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    const NAME: &'static str = "TCP";

    async fn accept(&self) -> std::io::Result<Self::Stream> {
        let (stream, _) = tokio::net::TcpListener::accept(self).await?;
        // Replies are small and latency-bound.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

#[cfg(unix)]
impl Accept for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    const NAME: &'static str = "Unix";

    async fn accept(&self) -> std::io::Result<Self::Stream> {
        tokio::net::UnixListener::accept(self)
            .await
            .map(|(stream, _)| stream)
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
                    Ok(stream) => {
                        connections.spawn(server.clone().serve_connection(stream));
                    }
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
        let listener = tokio::net::TcpListener::bind(addr).await?;
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
