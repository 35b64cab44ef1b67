//! Shadow verification of an in-process upgrade, over real TCP: the next
//! version runs beside the current one on a copy of the state, live calls
//! are mirrored to it, and the node switches only if it answered them all
//! as the current version did. A v2 with a planted bug is caught with no
//! error any client sees; a correct v2 passes and the node switches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use upshift::node::{Node, NodeConfig, NodeError, ShadowPolicy, Stage, durable_stage};
use upshift::state::{Durable, FileStore};
use upshift::{Connection, RetryPolicy};
use upshift_examples::kv::interface::{v1, v2};
use upshift_examples::kv::{self, StoreV1, StoreV2, state};
use upshift_tests::cluster::temp_dir;

/// The key-value v2 with a planted bug: a key ending in `7` reads as an
/// empty value.
struct Buggy(StoreV2);

impl v2::Kv for Buggy {
    async fn get(&self, key: String) -> Option<String> {
        let planted = key.ends_with('7');
        let value = v2::Kv::get(&self.0, key).await;
        if planted {
            value.map(|_| String::new())
        } else {
            value
        }
    }

    async fn put(&self, key: String, value: String, ttl_secs: Option<u64>) {
        v2::Kv::put(&self.0, key, value, ttl_secs).await;
    }

    async fn delete(&self, key: String) -> bool {
        v2::Kv::delete(&self.0, key).await
    }
}

fn buggy_stages() -> Vec<Box<dyn Stage>> {
    vec![
        Box::new(durable_stage(|s: Durable<state::v1::Store>| {
            v1::service_with_future(StoreV1::new(s))
        })),
        Box::new(durable_stage(|s: Durable<state::v2::Store>| {
            v2::service_with_future(Buggy(StoreV2::new(s)))
        })),
    ]
}

fn shadowing_node(label: &str, stages: Vec<Box<dyn Stage>>) -> Node {
    let store = FileStore::open(temp_dir(label), kv::state::NAME).expect("store");
    let mut config = NodeConfig::new(label);
    config.shadow = Some(ShadowPolicy {
        soak: Duration::from_millis(800),
        min_calls: 50,
    });
    Node::start(config, store, stages, 1).expect("start")
}

/// A v1 client writing and reading 20 keys in a loop until `stop`: every
/// reply must be what it wrote last. Returns (calls, errors seen).
async fn traffic(conn: Connection, stop: Arc<AtomicBool>) -> (u64, Vec<String>) {
    let client = v1::Client::new(conn).with_retry(RetryPolicy::default());
    let (mut calls, mut errors) = (0u64, Vec::new());
    let mut written: Vec<Option<String>> = vec![None; 20];
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let k = i % 20;
        let key = format!("k{k}");
        if i.is_multiple_of(3) {
            let value = format!("v{i}");
            match client.put(key, value.clone()).await {
                Ok(()) => written[k] = Some(value),
                Err(e) => errors.push(format!("put: {e}")),
            }
        } else {
            match client.get(key.clone()).await {
                Ok(got) if got == written[k] => {}
                Ok(got) => errors.push(format!("get {key}: {got:?}, written {:?}", written[k])),
                Err(e) => errors.push(format!("get {key}: {e}")),
            }
        }
        calls += 1;
        i += 1;
    }
    (calls, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_bug_is_caught_in_shadow_and_no_client_sees_it() {
    let node = shadowing_node("shadow-buggy", buggy_stages());
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(traffic(conn, stop.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let outcome = node.upgrade_to(2).await;
    let Err(NodeError::Shadow { version: 2, reason }) = outcome else {
        panic!("the buggy v2 was not caught: {outcome:?}");
    };
    // The reason names the first call that diverged, and how.
    assert!(reason.contains("get(key: \"k"), "{reason}");
    assert!(reason.contains("7\")"), "{reason}");
    assert!(reason.contains("the v2 shadow Some(\"\")"), "{reason}");
    eprintln!("caught in shadow: {reason}");
    assert_eq!(node.version(), 1, "the node stays on its version");
    let report = node.shadowed().expect("a shadowing ran");
    assert!(report.diverged >= 1 && report.first.is_some(), "{report:?}");

    // The node keeps serving v1 after the shadow is gone.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let (calls, errors) = load.await.expect("traffic");
    assert!(calls > 50, "only {calls} calls");
    assert!(errors.is_empty(), "clients saw errors: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_version_passes_its_shadowing_and_the_node_switches() {
    let node = shadowing_node("shadow-correct", kv::stages());
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(traffic(conn.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;

    node.upgrade_to(2)
        .await
        .expect("the shadowing passes and the node switches");
    assert_eq!(node.version(), 2);
    let report = node.shadowed().expect("a shadowing ran");
    assert_eq!(report.diverged, 0, "{report:?}");
    assert!(report.compared >= 50, "{report:?}");

    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let (_, errors) = load.await.expect("traffic");
    assert!(errors.is_empty(), "clients saw errors: {errors:?}");
    // What the v1 client wrote reads back through v2.
    let c2 = v2::Client::new(conn);
    let seen = AtomicU64::new(0);
    for k in 0..20 {
        if c2.get(format!("k{k}")).await.expect("get").is_some() {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    }
    assert_eq!(seen.load(Ordering::Relaxed), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_traffic_to_tell_fails_the_upgrade() {
    let node = shadowing_node("shadow-idle", kv::stages());
    let outcome = node.upgrade_to(2).await;
    let Err(NodeError::Shadow { reason, .. }) = outcome else {
        panic!("an idle shadowing passed: {outcome:?}");
    };
    assert!(reason.contains("only 0 calls were compared"), "{reason}");
    assert_eq!(node.version(), 1);
}

/// Driven by a coordinator: the node's failed shadowing halts the rollout
/// with the diverging call in the reason, and the node stays on v1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverging_shadow_halts_the_rollout() {
    use upshift::schedule::{Registry, ScheduleSpec};
    use upshift::upgrade::RolloutState;
    use upshift_tests::cluster::{RunningCoordinator, wait_for};

    let dir = temp_dir("shadow-rollout");
    let coordinator = RunningCoordinator::start(&dir, "127.0.0.1:0", Registry::default()).await;
    let node = shadowing_node("shadow-rollout-n1", buggy_stages());
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let _agent = node.run_agent(coordinator.addr(), listener.local_addr().to_string());
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(traffic(conn, stop.clone()));
    wait_for(Duration::from_secs(10), "the node to register", || async {
        coordinator
            .status()
            .await
            .nodes
            .contains_key("shadow-rollout-n1")
    })
    .await;
    let id = coordinator
        .client
        .publish(upshift_tests::kv_upgrade(
            1,
            ScheduleSpec::Rolling { max_parallel: 1 },
        ))
        .await
        .expect("rpc")
        .expect("publish");
    wait_for(Duration::from_secs(30), "the rollout to halt", || async {
        matches!(
            coordinator.status().await.upgrades[&id].state,
            RolloutState::Halted { .. }
        )
    })
    .await;
    let RolloutState::Halted { reason } = coordinator.status().await.upgrades[&id].state.clone()
    else {
        unreachable!("waited for it")
    };
    assert!(
        reason.contains("shadowing v2 before switching to it failed"),
        "{reason}"
    );
    assert!(reason.contains("get(key: \"k"), "{reason}");
    assert_eq!(node.version(), 1);
    stop.store(true, Ordering::Relaxed);
    let (_, errors) = load.await.expect("traffic");
    assert!(errors.is_empty(), "clients saw errors: {errors:?}");
}
