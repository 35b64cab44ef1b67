//! Rolling a node back, in process, with its state: the previous version's
//! stage starts on the state transformed back, every acknowledged write is
//! there (also after a restart), callers with a retry policy see no
//! failure, and what the older version cannot hold is reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use upshift::node::{Node, NodeConfig, NodeError, durable_stage};
use upshift::state::{Durable, FileStore};
use upshift::{Connection, RetryPolicy};
use upshift_examples::kv::interface::{v1, v2, v3};
use upshift_examples::kv::{self, StoreV1, StoreV2, state};
use upshift_tests::cluster::temp_dir;

fn start(dir: &std::path::Path) -> Node {
    let store = FileStore::open(dir, state::NAME).expect("store");
    Node::start(NodeConfig::new("n"), store, kv::stages(), 1).expect("start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_rolls_back_with_its_state_under_load_and_loses_nothing() {
    let dir = temp_dir("rollback");
    let node = start(&dir);
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect");
    let c1 = v1::Client::new(conn.clone()).with_retry(RetryPolicy::default());
    for i in 0..40 {
        c1.put(format!("k{i}"), format!("v{i}")).await.expect("put");
    }
    node.upgrade_to(2).await.expect("v2");
    let c2 = v2::Client::new(conn.clone()).with_retry(RetryPolicy::default());
    c2.put("ttl".into(), "expires".into(), Some(3600))
        .await
        .expect("put with ttl");
    node.upgrade_to(3).await.expect("v3");
    let c3 = v3::Client::new(conn.clone()).with_retry(RetryPolicy::default());
    c3.put("at-v3".into(), "written by v3".into(), None)
        .await
        .expect("put at v3");
    // Reads at v3 count hits, which v2 cannot hold.
    for _ in 0..3 {
        c3.get("k0".into()).await.expect("get");
    }

    // A v1 writer runs through both rollbacks; every write it is answered
    // for must be there afterwards.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c1, stop) = (c1.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("w{i}");
                c1.put(key.clone(), format!("x{i}"))
                    .await
                    .expect("a write failed");
                acknowledged.push(i);
                i += 1;
            }
            acknowledged
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let dropped = node.roll_back_to(2).await.expect("back to v2");
    assert_eq!(node.version(), 2);
    assert_eq!(
        dropped.iter().collect::<Vec<_>>(),
        [("Entry.hits", 1)],
        "the hits of k0 are what v2 cannot hold"
    );
    assert!(dir.join("kv.v2.snap").exists() && !dir.join("kv.v3.snap").exists());
    // Operators see it in the node's metrics too.
    let metrics = node.metrics().render();
    assert!(
        metrics.contains(
            "upshift_node_rollback_dropped_values_total{node=\"n\",place=\"Entry.hits\"} 1"
        ),
        "{metrics}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // `upgrade_to` one below the running version is a rollback too.
    node.upgrade_to(1).await.expect("back to v1");
    assert_eq!(node.version(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    stop.store(true, Ordering::SeqCst);
    let acknowledged = writer.await.expect("writer");
    assert!(
        acknowledged.len() > 10,
        "the writer ran: {}",
        acknowledged.len()
    );

    let check = |node: &Node| {
        let c = v1::Client::new(node.server().connect_in_memory());
        let acknowledged = acknowledged.clone();
        async move {
            for i in 0..40 {
                assert_eq!(
                    c.get(format!("k{i}")).await.expect("get"),
                    Some(format!("v{i}"))
                );
            }
            assert_eq!(
                c.get("ttl".into()).await.expect("get"),
                Some("expires".into())
            );
            assert_eq!(
                c.get("at-v3".into()).await.expect("get"),
                Some("written by v3".into())
            );
            for i in acknowledged {
                assert_eq!(
                    c.get(format!("w{i}")).await.expect("get"),
                    Some(format!("x{i}")),
                    "acknowledged write w{i}"
                );
            }
        }
    };
    check(&node).await;
    // The rollback is committed: a restart comes back at v1 with everything,
    // also when the process starts at its newest version (v3 here), as a
    // restart-mode binary under a supervisor does.
    drop((c1, c2, c3, conn, listener));
    drop(node);
    let again = start_newest(&dir);
    assert_eq!(again.version(), 1, "a restart does not undo the rollback");
    check(&again).await;
    // And it can go forward again; past v1, the rollback holds nothing back.
    again.upgrade_to(2).await.expect("v2 again");
    check(&again).await;
    drop(again);
    let newest = start_newest(&dir);
    assert_eq!(newest.version(), 3);
    check(&newest).await;
}

fn start_newest(dir: &std::path::Path) -> Node {
    let store = FileStore::open(dir, state::NAME).expect("store");
    Node::start_newest(NodeConfig::new("n"), store, kv::stages()).expect("start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_whose_stage_cannot_roll_back_is_refused_and_keeps_serving() {
    let dir = temp_dir("rollback-refused");
    let store = FileStore::open(&dir, state::NAME).expect("store");
    // v2 without `.reversible()`.
    let stages: Vec<Box<dyn upshift::node::Stage>> = vec![
        Box::new(durable_stage(|s: Durable<state::v1::Store>| {
            v1::service_with_future(StoreV1::new(s))
        })),
        Box::new(durable_stage(|s: Durable<state::v2::Store>| {
            v2::service(StoreV2::new(s))
        })),
    ];
    let node = Node::start(NodeConfig::new("n"), store, stages, 1).expect("start");
    node.upgrade_to(2).await.expect("v2");
    let e = node.upgrade_to(1).await.expect_err("not reversible");
    assert!(matches!(e, NodeError::NotReversible { version: 2 }), "{e}");
    assert!(e.to_string().contains(".reversible()"), "{e}");
    assert!(matches!(
        node.roll_back_to(0).await,
        Err(NodeError::NotNext { running: 2 })
    ));
    assert_eq!(node.version(), 2);
    let c = v2::Client::new(node.server().connect_in_memory());
    c.put("still".into(), "serving".into(), None)
        .await
        .expect("put");
}
