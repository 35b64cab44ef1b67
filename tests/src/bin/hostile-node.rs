//! A key-value node process for the hostile-input suite: a real `Node` at v3
//! with the server limits given on the command line, listening on loopback.
//!
//! Usage: `hostile-node <state-dir> <frame-timeout-ms> <idle-timeout-ms>
//! <max-per-peer> <max-queued-reply-bytes>`. Prints `LISTENING <addr>`, then
//! serves until killed.

use std::time::Duration;

use upshift::ServerConfig;
use upshift::node::{Node, NodeConfig};
use upshift::state::FileStore;

#[tokio::main]
async fn main() {
    upshift::logs::init();
    let args: Vec<String> = std::env::args().collect();
    let number = |i: usize| -> u64 {
        args.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("argument {i} must be a number; see the usage"))
    };
    let server = ServerConfig {
        frame_timeout: Duration::from_millis(number(2)),
        idle_timeout: Duration::from_millis(number(3)),
        max_connections_per_peer: number(4) as usize,
        max_queued_reply_bytes: number(5) as usize,
        ..ServerConfig::default()
    };
    let config = NodeConfig {
        server,
        ..NodeConfig::new("hostile")
    };
    let store =
        FileStore::open(&args[1], upshift_examples::kv::state::NAME).expect("open the store");
    let node =
        Node::start(config, store, upshift_examples::kv::stages(), 3).expect("start the node");
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    println!("LISTENING {}", listener.local_addr());
    std::future::pending::<()>().await;
}
