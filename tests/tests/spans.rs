//! One rollout can be followed across the coordinator and its nodes in the
//! logs: the coordinator's lines and everything a node logs while it takes
//! part in an upgrade carry `upgrade=N`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use upshift::Connection;
use upshift::coordinator::Coordinator;
use upshift::coordinator::api::v3;
use upshift::node::{Node, NodeConfig};
use upshift::schedule::Registry;
use upshift::state::FileStore;
use upshift::udb::MemoryUdb;
use upshift::upgrade::{RolloutState, Upgrade};
use upshift_examples::kv;
use upshift_tests::cluster::{temp_dir, wait_for};

/// Log lines, kept in memory.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_is_followed_by_its_id_across_coordinator_and_node() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        )
        .init();

    let dir = temp_dir("spans");
    let (_server, at) = Coordinator::open(MemoryUdb::new(), Registry::default())
        .expect("open")
        .serve("127.0.0.1:0")
        .await
        .expect("serve");
    let store = FileStore::open(dir.join("n1"), kv::state::NAME).expect("store");
    let node = Node::start(NodeConfig::new("n1"), store, kv::stages(), 1).expect("start");
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let _agent = node.run_agent(at.local_addr(), listener.local_addr().to_string());
    let operator = v3::Client::new(Connection::connect(at.local_addr()).await.expect("connect"));
    wait_for(Duration::from_secs(10), "n1 to register", || async {
        operator
            .status()
            .await
            .is_ok_and(|s| s.nodes.contains_key("n1"))
    })
    .await;
    let up = operator
        .publish(Upgrade {
            service: "Kv".into(),
            from: 1,
            to: 2,
            schedule: "immediately".parse().expect("schedule"),
            artifact: "in-process".into(),
            notes: String::new(),
        })
        .await
        .expect("rpc")
        .expect("published");
    wait_for(
        Duration::from_secs(20),
        "the rollout to be final",
        || async {
            operator
                .status()
                .await
                .is_ok_and(|s| s.rollouts[&up].state == RolloutState::Final)
        },
    )
    .await;

    let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("utf-8");
    let tagged: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&format!("upgrade={up}")))
        .collect();
    let said = |needle: &str| tagged.iter().any(|l| l.contains(needle));
    assert!(
        said("upshift::coordinator") && said("slot granted for v2"),
        "the coordinator's lines: {tagged:#?}"
    );
    assert!(
        said(&format!("rollout{{upgrade={up} node=n1 from=1 to=2}}")) && said("upgraded ms="),
        "the node's lines, in the rollout's span: {tagged:#?}"
    );
    drop((listener, node));
    let _ = std::fs::remove_dir_all(&dir);
}
