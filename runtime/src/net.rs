//! The network seam: every TCP connection the runtime opens and every TCP
//! port it listens on goes through [`connect`] and [`bind`]. They use
//! tokio's sockets, unless a process installed another [`Network`] first —
//! a simulator's (turmoil's, say), so that nodes, agents and coordinators
//! run their real RPC over a simulated network with partitions, delays and
//! crashes.
//!
//! The choice is made once per process, before the first connection: a
//! simulation is a test binary of its own, and nothing in a real process
//! pays for the seam beyond one branch per read and write.
//!
//! Outside the seam, on purpose: [`crate::rpc::bind_shared`] (a real
//! `SO_REUSEPORT` socket two processes hold during a restart handover) and
//! the blocking HTTP client of webhooks and etcd.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connected byte stream of a [`Network`].
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A boxed future, as the object-safe [`Network`] returns them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A network the runtime's TCP goes through instead of the operating
/// system's; see the module documentation.
pub trait Network: Send + Sync + 'static {
    /// Opens a connection to `addr`.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<Connected>>;
    /// Listens on `addr` (port 0 picks a free one).
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<Box<dyn Listen>>>;
}

/// A listening port of a [`Network`].
pub trait Listen: Send + Sync + 'static {
    /// The next connection and its peer's address.
    fn accept(&self) -> BoxFuture<'_, io::Result<(Box<dyn Io>, SocketAddr)>>;
    /// The address it listens on.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A connection a [`Network`] opened, with the address it reached.
pub struct Connected {
    /// The stream.
    pub io: Box<dyn Io>,
    /// The peer's address.
    pub peer: SocketAddr,
}

/// `None` once settled on the operating system's network.
static NETWORK: OnceLock<Option<Arc<dyn Network>>> = OnceLock::new();

/// The process already uses a network: [`install`] comes before the first
/// connection or listener, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the process already uses a network: install the simulated one once, before any connection or listener"
)]
pub struct AlreadyChosen;

/// Makes every later connection and listener of this process use `network`.
///
/// # Errors
///
/// [`AlreadyChosen`] if a network was installed, or a connection or
/// listener was made, before.
pub fn install(network: impl Network) -> Result<(), AlreadyChosen> {
    NETWORK
        .set(Some(Arc::new(network)))
        .map_err(|_| AlreadyChosen)
}

/// The installed network, or `None` for the operating system's; asking
/// settles the choice, so a late [`install`] fails instead of splitting the
/// process over two networks.
fn installed() -> Option<&'static Arc<dyn Network>> {
    NETWORK.get_or_init(|| None).as_ref()
}

/// A connection: tokio's TCP stream, or one of an installed [`Network`].
pub enum Stream {
    /// The operating system's.
    Tcp(tokio::net::TcpStream),
    /// An installed network's.
    Other(Box<dyn Io>),
}

impl fmt::Debug for Connected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connected")
            .field("peer", &self.peer)
            .finish()
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream::Tcp(s) => s.fmt(f),
            Stream::Other(_) => f.write_str("Stream::Other"),
        }
    }
}

/// A listening port: tokio's, or one of an installed [`Network`].
pub enum Listener {
    /// The operating system's.
    Tcp(tokio::net::TcpListener),
    /// An installed network's.
    Other(Box<dyn Listen>),
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::Tcp(l) => l.fmt(f),
            Listener::Other(_) => f.write_str("Listener::Other"),
        }
    }
}

/// Opens a connection to the first of `addr`'s addresses that answers, with
/// Nagle's algorithm off (calls and replies are small and latency-bound).
/// Returns the stream and the address it reached.
///
/// # Errors
///
/// The last connect's error, or a resolution error.
pub async fn connect(addr: impl tokio::net::ToSocketAddrs) -> io::Result<(Stream, SocketAddr)> {
    let Some(network) = installed() else {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        return Ok((Stream::Tcp(stream), peer));
    };
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        match network.connect(addr).await {
            Ok(c) => return Ok((Stream::Other(c.io), c.peer)),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")))
}

/// Listens on the first of `addr`'s addresses that can be bound.
///
/// # Errors
///
/// The last bind's error, or a resolution error.
pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> io::Result<Listener> {
    let Some(network) = installed() else {
        return Ok(Listener::Tcp(tokio::net::TcpListener::bind(addr).await?));
    };
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        match network.bind(addr).await {
            Ok(l) => return Ok(Listener::Other(l)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
}

impl Listener {
    /// The next connection and its peer's address; TCP connections have
    /// Nagle's algorithm off, as [`connect`]'s.
    ///
    /// # Errors
    ///
    /// As the listener's accept.
    pub async fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok((Stream::Tcp(stream), peer))
            }
            Listener::Other(l) => {
                let (io, peer) = l.accept().await?;
                Ok((Stream::Other(io), peer))
            }
        }
    }

    /// The address it listens on.
    ///
    /// # Errors
    ///
    /// As the socket's.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr(),
            Listener::Other(l) => l.local_addr(),
        }
    }
}

impl From<tokio::net::TcpListener> for Listener {
    fn from(listener: tokio::net::TcpListener) -> Self {
        Listener::Tcp(listener)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Other(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Other(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Other(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Other(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Other(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Other(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nowhere;

    impl Network for Nowhere {
        fn connect(&self, _: SocketAddr) -> BoxFuture<'_, io::Result<Connected>> {
            Box::pin(async { Err(io::ErrorKind::NetworkUnreachable.into()) })
        }

        fn bind(&self, _: SocketAddr) -> BoxFuture<'_, io::Result<Box<dyn Listen>>> {
            Box::pin(async { Err(io::ErrorKind::AddrNotAvailable.into()) })
        }
    }

    #[tokio::test]
    async fn a_process_that_made_a_connection_keeps_its_network() {
        let listener = bind("127.0.0.1:0").await.expect("bind");
        assert!(matches!(listener, Listener::Tcp(_)));
        let addr = listener.local_addr().expect("addr");
        let (connected, accepted) = tokio::join!(connect(addr), listener.accept());
        let (stream, peer) = connected.expect("connect");
        assert_eq!(peer, addr);
        assert!(matches!(stream, Stream::Tcp(_)));
        accepted.expect("accept");
        assert_eq!(install(Nowhere), Err(AlreadyChosen));
        // Still the operating system's.
        assert!(matches!(bind("127.0.0.1:0").await, Ok(Listener::Tcp(_))));
    }
}
