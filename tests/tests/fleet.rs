//! Hundreds of nodes through one rollout, each agent on its own TCP
//! connection to a coordinator on a redb file: the schedule's limit holds
//! at every moment, every node upgrades once, each slot is granted once,
//! and no request fails. The figures at a thousand nodes are the scale
//! bench's (`cargo bench -p upshift-benches --bench scale`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use upshift::coordinator::Coordinator;
use upshift::schedule::Registry;
use upshift::udb::RedbUdb;
use upshift::upgrade::RolloutState;
use upshift_tests::cluster::temp_dir;
use upshift_tests::fleet::{Pace, Seen, agent, connect, rolling, stop_all};

const NODES: u32 = 300;
const PARALLEL: u32 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_through_hundreds_of_nodes_keeps_the_schedule() {
    let dir = temp_dir("fleet");
    let udb = RedbUdb::open(dir.join("udb.redb")).expect("udb");
    let (_server, listener) = Coordinator::open(udb, Registry::default())
        .expect("open")
        .serve("127.0.0.1:0")
        .await
        .expect("serve");
    let addr = listener.local_addr();
    let pace = Pace {
        heartbeat: Duration::from_millis(200),
        upgrade: Duration::from_millis(20),
        nodes: NODES,
    };
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let agents: Vec<_> = (0..NODES)
        .map(|i| tokio::spawn(agent(addr, i, pace, seen.clone(), stop.clone())))
        .collect();
    let operator = connect(addr, 0).await;
    let mut waited = 0;
    while operator.status().await.expect("status").nodes.len() < NODES as usize {
        waited += 1;
        assert!(waited < 600, "the agents did not all register");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = operator
        .publish(rolling(PARALLEL))
        .await
        .expect("rpc")
        .expect("published");
    let mut waited = 0;
    loop {
        let status = operator.status().await.expect("status");
        if status.rollouts[&id].state == RolloutState::Final {
            assert!(status.nodes.values().all(|n| n.info.version == 2));
            break;
        }
        waited += 1;
        assert!(
            waited < 1200,
            "the rollout did not finish: {:?}",
            status.rollouts[&id].state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_all(&stop, agents).await;

    let most = seen.most_upgrading.load(Ordering::SeqCst);
    assert!(
        most <= PARALLEL,
        "{most} upgraded at once; the limit is {PARALLEL}"
    );
    assert!(most > 1, "the rollout ran nodes in parallel: {most}");
    assert_eq!(seen.upgraded.load(Ordering::Relaxed), NODES);
    assert_eq!(seen.failed.load(Ordering::Relaxed), 0, "no request failed");
    // The history: one grant and one upgrade per node, nothing twice.
    let mut events = Vec::new();
    loop {
        let after = events
            .last()
            .map_or(0, |e: &upshift::coordinator::api::Event3| e.seq);
        let page = operator.history(after, 1000).await.expect("history");
        if page.is_empty() {
            break;
        }
        events.extend(page);
    }
    let mut grants = BTreeMap::<String, u32>::new();
    let mut upgraded = BTreeMap::<String, u32>::new();
    for e in &events {
        let node = e.node.clone().unwrap_or_default();
        if e.what == "slot granted for v2" {
            *grants.entry(node).or_default() += 1;
        } else if e.what == "upgraded to v2" {
            *upgraded.entry(node).or_default() += 1;
        }
    }
    assert_eq!(
        grants.len(),
        NODES as usize,
        "every node was granted a slot"
    );
    assert!(grants.values().all(|n| *n == 1), "a slot granted twice");
    assert_eq!(upgraded.len(), NODES as usize);
    assert!(upgraded.values().all(|n| *n == 1));
    let _ = std::fs::remove_dir_all(&dir);
}
