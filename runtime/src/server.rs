//! The node side of RPC: accepts connections, reads call frames, dispatches
//! each call by version and writes the replies.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::client::Connection;
use crate::error::DispatchError;
use crate::service::Service;
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
        services.insert(service.name(), Arc::new(service))
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
    /// connection until the returned [`Listener`] is shut down or dropped.
    pub async fn listen(&self, addr: impl ToSocketAddrs) -> std::io::Result<Listener> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let server = self.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        // Replies are small and latency-bound.
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(server.clone().serve_connection(stream));
                    }
                    // Out of file descriptors and similar: back off instead of spinning.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
        });
        Ok(Listener { local_addr, task })
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
        let (read, write) = tokio::io::split(io);
        let mut read = BufReader::with_capacity(64 * 1024, read);
        let (replies, pending_replies) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_frames(write, pending_replies));
        // The permits bound the calls in flight, and so the replies queued.
        let permits = Arc::new(Semaphore::new(self.inner.config.max_in_flight));
        loop {
            let mut body = Vec::new();
            match wire::read_frame(&mut read, self.inner.config.max_frame, &mut body).await {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
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
                    _ => break,
                },
            };
            let Some(service) = self.service(call.service) else {
                let msg = format!("this node serves no service named {:?}", call.service);
                let _ = replies.send(wire::reply_with_message(
                    call.call_id,
                    0,
                    Status::UnknownService,
                    &msg,
                ));
                continue;
            };
            let node_version = service.version();
            let Some(dispatch) = service.dispatcher(call.version) else {
                let reply = wire::reply_with_message(
                    call.call_id,
                    node_version,
                    Status::VersionUnsupported,
                    "",
                );
                let _ = replies.send(reply);
                continue;
            };
            let (call_id, method) = (call.call_id, call.method);
            let payload_at = body.len() - call.payload.len();
            let guard = ReplyGuard {
                replies: replies.clone(),
                call_id,
                node_version,
                method,
                version: call.version,
                sent: false,
            };
            tokio::spawn(async move {
                let mut out = Vec::with_capacity(64);
                let start = wire::begin_reply(&mut out, call_id, node_version, Status::Ok);
                let result = dispatch.call(method, &body[payload_at..], &mut out).await;
                let reply = match result {
                    Ok(()) => {
                        wire::finish(&mut out, start);
                        out
                    }
                    Err(e) => wire::reply_with_message(
                        call_id,
                        node_version,
                        status_of(&e),
                        &e.to_string(),
                    ),
                };
                guard.send(reply);
                drop(permit);
            });
        }
        drop(replies);
        let _ = writer.await;
    }
}

fn status_of(e: &DispatchError) -> Status {
    match e {
        DispatchError::Disallowed(_) => Status::Disallowed,
        DispatchError::UnknownMethod { .. } => Status::UnknownMethod,
        DispatchError::BadRequest { .. } => Status::BadRequest,
        DispatchError::EncodeReturn(_) => Status::Internal,
    }
}

/// Makes sure every call gets a reply, even when the service object panics.
struct ReplyGuard {
    replies: mpsc::UnboundedSender<Vec<u8>>,
    call_id: u64,
    node_version: u32,
    version: u32,
    method: u16,
    sent: bool,
}

impl ReplyGuard {
    fn send(mut self, reply: Vec<u8>) {
        self.sent = true;
        let _ = self.replies.send(reply);
    }
}

impl Drop for ReplyGuard {
    fn drop(&mut self) {
        if !self.sent {
            let msg = format!(
                "the service object panicked while serving method {} of v{}",
                self.method, self.version
            );
            let reply =
                wire::reply_with_message(self.call_id, self.node_version, Status::Internal, &msg);
            let _ = self.replies.send(reply);
        }
    }
}

/// Writes queued frames, flushing only when the queue runs dry so that
/// concurrent replies share system calls.
pub(crate) async fn write_frames<W: AsyncWrite>(
    write: W,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let write = BufWriter::with_capacity(64 * 1024, write);
    let mut write = std::pin::pin!(write);
    while let Some(frame) = frames.recv().await {
        if write.write_all(&frame).await.is_err() {
            return;
        }
        while let Ok(frame) = frames.try_recv() {
            if write.write_all(&frame).await.is_err() {
                return;
            }
        }
        if write.flush().await.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// A running TCP listener; dropping it stops accepting new connections.
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

    /// Stops accepting connections; open connections keep being served.
    pub fn shutdown(self) {}
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
