//! In-memory connections: the one place that sees both the server and the
//! client side of RPC, so neither needs the other.

use crate::rpc::client::{ClientConfig, Connection};
use crate::rpc::server::Server;

impl Server {
    /// A client connection to this server over an in-memory pipe.
    pub fn connect_in_memory(&self) -> Connection {
        let (client, node) = tokio::io::duplex(64 * 1024);
        tokio::spawn(self.clone().serve_connection(node));
        Connection::from_io(client, ClientConfig::default())
    }
}
