//! A key-value node process for the crash suite: a real `Node` with the
//! example's durable stages, checkpointing often, killed with SIGKILL by the
//! test at random moments.
//!
//! Usage: `durable-node <state-dir> [upgrade-after-ms ...]`. Prints
//! `LISTENING <addr> v<N>`, then serves until killed; with delays given, it
//! upgrades in-process to the next version after each one (printing
//! `UPGRADING v<N>` and `UPGRADED v<N>`), so a kill can land in the middle
//! of an upgrade. `UPSHIFT_PRELOAD=<n>` seeds an empty directory with `n`
//! v1 entries (`pre-<i>` = `value-<i>`), so an upgrade's background
//! transform takes long enough for kills to land inside it.

use std::time::Duration;

use upshift::node::{Node, NodeConfig};
use upshift::state::{Durability, FileStore, SnapshotStore, StateStore};

#[tokio::main]
async fn main() {
    upshift::logs::init();
    let args: Vec<String> = std::env::args().collect();
    let store = FileStore::open(&args[1], upshift_examples::kv::state::NAME)
        .unwrap_or_else(|e| panic!("open the store: {e}"));
    let preload: usize = std::env::var("UPSHIFT_PRELOAD")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if preload > 0 && store.read().expect("read the store").is_none() {
        let items = (0..preload)
            .map(|i| (format!("pre-{i}"), format!("value-{i}")))
            .collect();
        store
            .save(&upshift_examples::kv::state::v1::Store { items })
            .expect("preload");
    }
    // `UPSHIFT_DURABILITY=snapshots` runs without a journal, to show what
    // the suite catches without one.
    let mut config = NodeConfig::new("durable");
    if std::env::var("UPSHIFT_DURABILITY").is_ok_and(|d| d == "snapshots") {
        config.durability = Durability::Snapshots;
    }
    let node = Node::start(config, store, upshift_examples::kv::stages(), 1)
        .unwrap_or_else(|e| panic!("start the node: {e}"));
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    println!("LISTENING {} v{}", listener.local_addr(), node.version());
    // Checkpoints compact the journal while writes go on.
    let _checkpoints = node.checkpoint_every(Duration::from_millis(30));
    for delay in args[2..]
        .iter()
        .map(|d| d.parse::<u64>().expect("a delay in ms"))
    {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let to = node.version() + 1;
        if to > 3 {
            break;
        }
        println!("UPGRADING v{to}");
        match node.upgrade_to(to).await {
            Ok(()) => println!("UPGRADED v{to}"),
            Err(e) => println!("UPGRADE FAILED {e}"),
        }
    }
    std::future::pending::<()>().await;
}
