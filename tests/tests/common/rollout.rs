//! Rolling upgrades of key-value nodes driven by a real coordinator over
//! loopback TCP, while clients keep calling: the same cases on each UDB
//! (`rollout.rs`: redb; `rollout_etcd.rs`: a real etcd).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use upshift::coordinator::api::Control;
use upshift::coordinator::api::{UdbContent, UpgradeDef};
use upshift::schedule::{Registry, ScheduleSpec};
use upshift::upgrade::{NodeState, RolloutState};
use upshift::{Connection, RetryPolicy};
use upshift_examples::kv::interface::{v1, v2, v3};
use upshift_tests::cluster::{RunningCoordinator, RunningNode, temp_dir, wait_for};

const WAIT: Duration = Duration::from_secs(30);

/// A coordinator on the test binary's UDB.
async fn start_coordinator(
    dir: &std::path::Path,
    addr: &str,
    schedules: Registry,
) -> RunningCoordinator {
    RunningCoordinator::start_on(crate::BACKEND, dir, addr, schedules, |c| c).await
}

fn healthy() -> Arc<dyn Fn() -> bool + Send + Sync> {
    Arc::new(|| true)
}

fn def(from: u32, schedule: ScheduleSpec) -> UpgradeDef {
    upshift_tests::kv_upgrade(from, schedule)
}

/// Registers node `id` of service `Kv` in `group` at `version`, as its agent would.
async fn register(c: &upshift::coordinator::api::v1::Client, id: &str, group: &str, version: u32) {
    let info = upshift::upgrade::NodeInfo {
        id: id.into(),
        address: String::new(),
        group: group.into(),
        service: "Kv".into(),
        version,
    };
    c.register(info).await.expect("register");
}

fn state_of(status: &UdbContent, id: u64) -> RolloutState {
    status.upgrades[&id].state.clone()
}

/// Waits for upgrade `id` to halt; returns why it did.
async fn wait_halted(coordinator: &RunningCoordinator, id: u64) -> String {
    wait_for(WAIT, &format!("upgrade #{id} to halt"), || async {
        matches!(
            state_of(&coordinator.status().await, id),
            RolloutState::Halted { .. }
        )
    })
    .await;
    match state_of(&coordinator.status().await, id) {
        RolloutState::Halted { reason } => reason,
        other => panic!("upgrade #{id} is {other:?}"),
    }
}

async fn wait_final(coordinator: &RunningCoordinator, id: u64) {
    wait_for(WAIT, &format!("upgrade #{id} to be final"), || async {
        state_of(&coordinator.status().await, id) == RolloutState::Final
    })
    .await;
}

/// Writes keys to one node until stopped; returns the keys it acknowledged
/// and the calls that failed.
async fn write_load(
    conn: Connection,
    node: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, Vec<String>) {
    let retry = RetryPolicy::default();
    let old = v1::Client::new(conn.clone())
        .with_retry(retry)
        .with_deadline(Duration::from_secs(10));
    let new = v2::Client::new(conn)
        .with_retry(retry)
        .with_deadline(Duration::from_secs(10));
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("n{node}-k{i}");
        let result = if i % 2 == 0 {
            old.put(key.clone(), format!("v{i}")).await
        } else {
            new.put(key.clone(), format!("v{i}"), None).await
        };
        match result {
            Ok(()) => acked.push(key),
            Err(e) => failed.push(format!("put {key}: {e}")),
        }
        if let Err(e) = old.get(format!("n{node}-k{}", i / 2)).await {
            failed.push(format!("get: {e}"));
        }
        i += 1;
    }
    (acked, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_under_load_loses_nothing_and_fails_no_call() {
    let dir = temp_dir("rolling");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let mut nodes = Vec::new();
    for i in 0..4 {
        nodes.push(
            RunningNode::start(
                &dir,
                &format!("node{i}"),
                "kv",
                coordinator.addr(),
                healthy(),
            )
            .await,
        );
    }
    wait_for(WAIT, "four nodes to register", || async {
        coordinator.status().await.nodes.len() == 4
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let conn = Connection::connect(n.listener.local_addr())
            .await
            .expect("connect");
        load.push(tokio::spawn(write_load(conn, i, stop.clone())));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let rolling = ScheduleSpec::Rolling { max_parallel: 1 };
    let first = coordinator
        .client
        .publish(def(1, rolling.clone()))
        .await
        .expect("rpc")
        .expect("publish");
    wait_final(&coordinator, first).await;
    let second = coordinator
        .client
        .publish(def(2, rolling))
        .await
        .expect("rpc")
        .expect("publish");
    wait_final(&coordinator, second).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);

    let mut acked_by_node = BTreeMap::new();
    for (i, task) in load.into_iter().enumerate() {
        let (acked, failed) = task.await.expect("load task");
        assert!(
            failed.is_empty(),
            "node{i}: client-visible failures: {failed:?}"
        );
        assert!(!acked.is_empty());
        acked_by_node.insert(i, acked);
    }
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n.node.version(), 3, "node{i}");
        let reader = v3::Client::new(
            Connection::connect(n.listener.local_addr())
                .await
                .expect("connect"),
        );
        for key in &acked_by_node[&i] {
            let entry = reader
                .get(key.clone())
                .await
                .expect("get")
                .unwrap_or_else(|| panic!("node{i} lost {key}"));
            assert!(entry.value.starts_with('v'));
        }
    }
    // The history shows one slot at a time.
    let status = coordinator.status().await;
    let grants = status
        .events
        .iter()
        .filter(|e| e.what.starts_with("slot granted"))
        .count();
    assert_eq!(grants, 8, "four nodes, two upgrades");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_are_granted_atomically_when_many_nodes_race() {
    use upshift::coordinator::api::Slot;
    let dir = temp_dir("race");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    for i in 0..40 {
        let group = if i % 2 == 0 { "a" } else { "b" };
        register(&coordinator.client, &format!("n{i}"), group, 1).await;
    }
    let id = coordinator
        .client
        .publish(def(1, ScheduleSpec::Rolling { max_parallel: 3 }))
        .await
        .expect("rpc")
        .expect("publish");
    // Forty nodes ask at once, each over its own connection.
    let granted = Arc::new(AtomicUsize::new(0));
    let mut asks = Vec::new();
    for i in 0..40 {
        let addr = coordinator.addr();
        let granted = granted.clone();
        asks.push(tokio::spawn(async move {
            let c = upshift::coordinator::api::v1::Client::new(
                Connection::connect(addr).await.expect("connect"),
            );
            if c.request_slot(format!("n{i}"), id).await.expect("rpc") == Slot::Granted {
                granted.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for a in asks {
        a.await.expect("task");
    }
    assert_eq!(
        granted.load(Ordering::SeqCst),
        6,
        "three per group, two groups"
    );
    let status = coordinator.status().await;
    for group in ["a", "b"] {
        let upgrading = status
            .nodes
            .values()
            .filter(|n| n.info.group == group && n.state == NodeState::Upgrading { to: 2 })
            .count();
        assert_eq!(upgrading, 3, "group {group}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lost_holding_a_slot_halts_the_rollout_instead_of_stalling_it() {
    use upshift::coordinator::api::{Heartbeat, Slot};
    let dir = temp_dir("lost-slot");
    let coordinator = RunningCoordinator::start_on(
        crate::BACKEND,
        &dir,
        "127.0.0.1:0",
        Registry::default(),
        |c| c.with_slot_timeout(Duration::from_millis(500)),
    )
    .await;
    let c = &coordinator.client;
    for node in ["a", "b"] {
        register(c, node, "", 1).await;
    }
    let id = c
        .publish(def(1, ScheduleSpec::Rolling { max_parallel: 1 }))
        .await
        .expect("rpc")
        .expect("publish");
    assert_eq!(
        c.request_slot("a".into(), id).await.expect("rpc"),
        Slot::Granted
    );
    assert!(matches!(
        c.request_slot("b".into(), id).await.expect("rpc"),
        Slot::Wait(_)
    ));
    // `a` dies with the slot; `b` keeps beating. Without expiry the rollout
    // would wait for `a` forever.
    let beat = || Heartbeat {
        id: "b".into(),
        version: 1,
        healthy: true,
        calls: Vec::new(),
    };
    wait_for(WAIT, "a's slot to expire", || async {
        c.heartbeat(beat()).await.expect("rpc");
        matches!(
            coordinator.status().await.nodes["a"].state,
            NodeState::Failed { .. }
        )
    })
    .await;
    let reason = wait_halted(&coordinator, id).await;
    assert!(
        reason.starts_with("node a stopped reporting while upgrading to v2 (nothing heard for "),
        "{reason}"
    );
    assert_eq!(
        c.request_slot("b".into(), id).await.expect("rpc"),
        Slot::Halted(reason)
    );
    // `a` comes back at v2: it did upgrade. Resumed, `b` gets the slot.
    register(c, "a", "", 2).await;
    assert_eq!(
        coordinator.status().await.nodes["a"].state,
        NodeState::Running
    );
    c.control(id, Control::Resume)
        .await
        .expect("rpc")
        .expect("resume");
    assert_eq!(
        c.request_slot("b".into(), id).await.expect("rpc"),
        Slot::Granted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_schedule_and_a_window_decide_through_the_coordinator() {
    use upshift::coordinator::api::Slot;
    use upshift::schedule::{Decision, Rollout, Schedule};
    use upshift::upgrade::NodeRecord;

    /// Only the node named `first` goes until it has upgraded.
    struct FirstThenRest;
    impl Schedule for FirstThenRest {
        fn decide(&self, node: &NodeRecord, rollout: &Rollout<'_>) -> Decision {
            if node.info.id == "first" || rollout.upgraded().count() > 0 {
                Decision::Go
            } else {
                Decision::Wait("waiting for `first`".into())
            }
        }
    }
    let mut registry = Registry::default();
    registry.register("first-then-rest", FirstThenRest);
    let dir = temp_dir("custom");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", registry).await;
    let c = &coordinator.client;
    for id in ["first", "second"] {
        register(c, id, "", 1).await;
    }
    // A window that is closed now (it opens in ten minutes, UTC) holds
    // every node back, with the reason.
    let minute = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 60
        % 1440) as u32;
    let closed = ScheduleSpec::All(vec![
        ScheduleSpec::Custom("first-then-rest".into()),
        ScheduleSpec::Window {
            from_minute: (minute + 10) % 1440,
            to_minute: (minute + 20) % 1440,
        },
    ]);
    let id = c
        .publish(def(1, closed))
        .await
        .expect("rpc")
        .expect("publish");
    match c.request_slot("first".into(), id).await.expect("rpc") {
        Slot::Wait(why) => assert!(why.starts_with("outside the window"), "{why}"),
        other => panic!("a closed window granted {other:?}"),
    }
    c.control(id, Control::Abort)
        .await
        .expect("rpc")
        .expect("abort");
    // Open: the custom schedule orders the nodes.
    let id = c
        .publish(def(1, ScheduleSpec::Custom("first-then-rest".into())))
        .await
        .expect("rpc")
        .expect("publish");
    assert_eq!(
        c.request_slot("second".into(), id).await.expect("rpc"),
        Slot::Wait("waiting for `first`".into())
    );
    assert_eq!(
        c.request_slot("first".into(), id).await.expect("rpc"),
        Slot::Granted
    );
    c.report(
        "first".into(),
        id,
        upshift::coordinator::api::Outcome::Upgraded { version: 2 },
    )
    .await
    .expect("rpc");
    assert_eq!(
        c.request_slot("second".into(), id).await.expect("rpc"),
        Slot::Granted
    );
    // An unregistered custom schedule is refused at publish time.
    c.control(id, Control::Abort)
        .await
        .expect("rpc")
        .expect("abort");
    let err = c
        .publish(def(1, ScheduleSpec::Custom("nightly".into())))
        .await
        .expect("rpc")
        .expect_err("unregistered");
    assert!(err.contains("nightly"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_upgrade_in_the_declared_order() {
    let dir = temp_dir("groups");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let mut nodes = Vec::new();
    for (id, group) in [
        ("c1", "clients"),
        ("s1", "servers"),
        ("c2", "clients"),
        ("s2", "servers"),
    ] {
        nodes.push(RunningNode::start(&dir, id, group, coordinator.addr(), healthy()).await);
    }
    wait_for(WAIT, "nodes to register", || async {
        coordinator.status().await.nodes.len() == 4
    })
    .await;
    let schedule = ScheduleSpec::All(vec![
        ScheduleSpec::GroupOrder {
            groups: vec!["servers".into(), "clients".into()],
        },
        ScheduleSpec::Rolling { max_parallel: 2 },
    ]);
    let id = coordinator
        .client
        .publish(def(1, schedule))
        .await
        .expect("rpc")
        .expect("publish");
    wait_final(&coordinator, id).await;
    let status = coordinator.status().await;
    let order: Vec<&str> = status
        .events
        .iter()
        .filter(|e| e.what.starts_with("slot granted"))
        .filter_map(|e| e.node.as_deref())
        .collect();
    let last_server = order
        .iter()
        .rposition(|n| n.starts_with('s'))
        .expect("servers upgraded");
    let first_client = order
        .iter()
        .position(|n| n.starts_with('c'))
        .expect("clients upgraded");
    assert!(last_server < first_client, "grant order {order:?}");
    let server_done = status
        .events
        .iter()
        .filter(|e| {
            e.what.starts_with("upgraded") && e.node.as_deref().is_some_and(|n| n.starts_with('s'))
        })
        .map(|e| e.seq)
        .max()
        .expect("servers upgraded");
    let client_granted = status
        .events
        .iter()
        .filter(|e| {
            e.what.starts_with("slot granted")
                && e.node.as_deref().is_some_and(|n| n.starts_with('c'))
        })
        .map(|e| e.seq)
        .min()
        .expect("clients granted");
    assert!(
        server_done < client_granted,
        "a client started before every server finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_check_halts_the_rollout_and_status_says_why() {
    let dir = temp_dir("health");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let sick_node = "a-sick";
    let mut nodes = Vec::new();
    for id in [sick_node, "b", "c"] {
        // The sick node's health check fails once it runs v2.
        let health: Arc<dyn Fn() -> bool + Send + Sync> = if id == sick_node {
            let dir = dir.join(id);
            Arc::new(move || !dir.join("kv.v2.snap").exists())
        } else {
            healthy()
        };
        nodes.push(RunningNode::start(&dir, id, "kv", coordinator.addr(), health).await);
    }
    wait_for(WAIT, "nodes to register", || async {
        coordinator.status().await.nodes.len() == 3
    })
    .await;
    let schedule = ScheduleSpec::All(vec![
        ScheduleSpec::Canary {
            count: 1,
            soak_secs: 0,
        },
        ScheduleSpec::HealthGate { healthy_secs: 1 },
        ScheduleSpec::Rolling { max_parallel: 1 },
    ]);
    // The first node to ask is the canary; make it the sick one by letting it ask alone.
    for n in &nodes[1..] {
        n.agent.abort();
    }
    let id = coordinator
        .client
        .publish(def(1, schedule))
        .await
        .expect("rpc")
        .expect("publish");
    let reason = wait_halted(&coordinator, id).await;
    assert!(
        reason.contains("a-sick") && reason.contains("health check"),
        "{reason}"
    );
    assert_eq!(nodes[1].node.version(), 1);
    assert_eq!(nodes[2].node.version(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_transform_fails_stays_on_its_version_and_the_rollout_halts() {
    use upshift::node::{NodeError, Running, Stage, Storage};
    use upshift::state::Snapshot;

    /// v2 whose transform always fails.
    struct BrokenV2;
    impl Stage for BrokenV2 {
        fn version(&self) -> u32 {
            2
        }
        fn start(&self, _: Option<&Snapshot>, _: Storage<'_>) -> Result<Running, NodeError> {
            Err(NodeError::Start {
                version: 2,
                reason: "the disk is full".into(),
            })
        }
    }

    let dir = temp_dir("transform-fails");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let mut stages = upshift_examples::kv::stages();
    stages[1] = Box::new(BrokenV2);
    let broken =
        RunningNode::start_with(&dir, "broken", "kv", coordinator.addr(), healthy(), stages).await;
    wait_for(WAIT, "the node to register", || async {
        coordinator.status().await.nodes.len() == 1
    })
    .await;
    let writer = v1::Client::new(
        Connection::connect(broken.listener.local_addr())
            .await
            .expect("connect"),
    );
    writer.put("kept".into(), "yes".into()).await.expect("put");

    let id = coordinator
        .client
        .publish(def(1, ScheduleSpec::Immediately))
        .await
        .expect("rpc")
        .expect("publish");
    let reason = wait_halted(&coordinator, id).await;
    let status = coordinator.status().await;
    assert!(
        reason.contains("broken") && reason.contains("the disk is full"),
        "{reason}"
    );
    assert!(matches!(
        status.nodes["broken"].state,
        NodeState::Failed { to: 2, .. }
    ));
    assert_eq!(broken.node.version(), 1);
    assert_eq!(
        writer
            .get("kept".into())
            .await
            .expect("the node still serves v1"),
        Some("yes".into())
    );

    // An operator can resume after fixing the cause; abort ends it.
    coordinator
        .client
        .control(id, Control::Abort)
        .await
        .expect("rpc")
        .expect("abort");
    assert_eq!(
        state_of(&coordinator.status().await, id),
        RolloutState::Aborted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_restarted_mid_rollout_resumes_from_the_udb() {
    let dir = temp_dir("coordinator-restart");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let addr = coordinator.addr();
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(RunningNode::start(&dir, &format!("node{i}"), "kv", addr, healthy()).await);
    }
    wait_for(WAIT, "nodes to register", || async {
        coordinator.status().await.nodes.len() == 3
    })
    .await;
    let schedule = ScheduleSpec::All(vec![
        ScheduleSpec::Rolling { max_parallel: 1 },
        ScheduleSpec::HealthGate { healthy_secs: 1 },
    ]);
    let id = coordinator
        .client
        .publish(def(1, schedule))
        .await
        .expect("rpc")
        .expect("publish");
    wait_for(WAIT, "the first node to upgrade", || async {
        nodes.iter().any(|n| n.node.version() == 2)
    })
    .await;
    assert!(
        nodes.iter().any(|n| n.node.version() == 1),
        "the rollout finished before the restart"
    );

    // Kill: every connection drops; then a new coordinator on the same UDB and port.
    drop(coordinator);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let coordinator = start_coordinator(&dir, &addr.to_string(), Registry::default()).await;
    assert_eq!(
        state_of(&coordinator.status().await, id),
        RolloutState::Active,
        "resumed from the UDB"
    );
    wait_final(&coordinator, id).await;
    assert!(nodes.iter().all(|n| n.node.version() == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_during_the_rollout_is_waited_for() {
    let dir = temp_dir("node-down");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let up = RunningNode::start(&dir, "up", "kv", coordinator.addr(), healthy()).await;
    let down = RunningNode::start(&dir, "down", "kv", coordinator.addr(), healthy()).await;
    wait_for(WAIT, "nodes to register", || async {
        coordinator.status().await.nodes.len() == 2
    })
    .await;
    down.stop();

    let id = coordinator
        .client
        .publish(def(1, ScheduleSpec::Rolling { max_parallel: 1 }))
        .await
        .expect("rpc")
        .expect("publish");
    wait_for(WAIT, "the live node to upgrade", || async {
        up.node.version() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        state_of(&coordinator.status().await, id),
        RolloutState::Active,
        "not final while a node is down"
    );

    // The node comes back from its state directory, at v1, and catches up.
    let back = RunningNode::start(&dir, "down", "kv", coordinator.addr(), healthy()).await;
    assert_eq!(back.node.version(), 1);
    wait_final(&coordinator, id).await;
    assert_eq!(back.node.version(), 2);
}

#[tokio::test]
async fn publishing_checks_the_upgrade() {
    let dir = temp_dir("publish");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let err = coordinator
        .client
        .publish(def(1, ScheduleSpec::Immediately))
        .await
        .expect("rpc")
        .expect_err("no node");
    assert!(err.contains("no node of service \"Kv\""), "{err}");
    register(&coordinator.client, "n", "g", 1).await;
    let mut skip = def(1, ScheduleSpec::Immediately);
    skip.to = 3;
    let err = coordinator
        .client
        .publish(skip)
        .await
        .expect("rpc")
        .expect_err("skips a version");
    assert!(err.contains("skips a version"), "{err}");
    let err = coordinator
        .client
        .publish(def(1, ScheduleSpec::Custom("nightly".into())))
        .await
        .expect("rpc")
        .expect_err("unknown schedule");
    assert!(err.contains("nightly"), "{err}");
    let id = coordinator
        .client
        .publish(def(1, ScheduleSpec::Immediately))
        .await
        .expect("rpc")
        .expect("publish");
    let err = coordinator
        .client
        .publish(def(1, ScheduleSpec::Immediately))
        .await
        .expect("rpc")
        .expect_err("one at a time");
    assert!(err.contains(&format!("#{id}")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_version_seen_in_a_reply_wakes_the_agent() {
    use upshift::node::{Node, NodeConfig};
    use upshift::state::FileStore;
    let dir = temp_dir("nudge");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let store = FileStore::open(dir.join("n"), upshift_examples::kv::state::NAME).expect("store");
    let mut config = NodeConfig::new("n");
    config.heartbeat = Duration::from_secs(3600);
    let node = Node::start(config, store, upshift_examples::kv::stages(), 1).expect("start");
    let _agent = node.run_agent(coordinator.addr(), "in-memory".into());
    // Its first heartbeat (which carries call counts) has been answered
    // "nothing to do", so the agent sleeps for an hour from here on.
    wait_for(WAIT, "the node's first heartbeat", || async {
        coordinator
            .status()
            .await
            .nodes
            .values()
            .any(|n| !n.calls.is_empty())
    })
    .await;
    coordinator
        .client
        .publish(def(1, ScheduleSpec::Immediately))
        .await
        .expect("rpc")
        .expect("publish");
    // Without a nudge the node would not ask for an hour.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(node.version(), 1);
    node.saw_version(2);
    wait_for(WAIT, "the node to upgrade", || async {
        node.version() == 2
    })
    .await;
}

/// Three kv nodes with agents, registered.
async fn three_nodes(dir: &std::path::Path, coordinator: &RunningCoordinator) -> Vec<RunningNode> {
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(
            RunningNode::start(dir, &format!("n{i}"), "kv", coordinator.addr(), healthy()).await,
        );
    }
    wait_for(WAIT, "nodes to register", || async {
        coordinator.status().await.nodes.len() == 3
    })
    .await;
    nodes
}

/// An operator's client of the newest coordinator interface.
async fn operator(coordinator: &RunningCoordinator) -> upshift::coordinator::api::v6::Client {
    upshift::coordinator::api::v6::Client::new(
        Connection::connect(coordinator.addr())
            .await
            .expect("connect"),
    )
}

/// Publishes Kv v1 -> v2 with `terms` (a schedule and its gates); its id.
async fn publish_gated(operator: &upshift::coordinator::api::v6::Client, terms: &str) -> u64 {
    let (schedule, gates) = upshift::upgrade::schedule_and_gates(terms).expect("terms");
    operator
        .publish_gated(def(1, schedule).into(), gates)
        .await
        .expect("rpc")
        .expect("published")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_gate_holds_the_rollout_until_an_operator_approves() {
    let dir = temp_dir("approval");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let nodes = three_nodes(&dir, &coordinator).await;
    let operator = operator(&coordinator).await;
    let id = publish_gated(&operator, "rolling:1,approval:1").await;
    wait_for(WAIT, "the first node to upgrade", || async {
        nodes.iter().any(|n| n.node.version() == 2)
    })
    .await;
    // The others heartbeat every 20 ms: a second is fifty chances to go.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(nodes.iter().filter(|n| n.node.version() == 2).count(), 1);
    let gates = operator.gates().await.expect("gates");
    let waiting = gates[&id].waiting.clone().unwrap_or_default();
    assert!(waiting.contains("upshift approve"), "{waiting}");
    operator.approve(id).await.expect("rpc").expect("approved");
    wait_final(&coordinator, id).await;
    assert!(nodes.iter().all(|n| n.node.version() == 2));
    let gates = operator.gates().await.expect("gates");
    assert!(gates[&id].approved_ms.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_takes_every_node_back_with_its_state_and_fails_no_call() {
    use upshift::coordinator::api::RollbackError;
    let dir = temp_dir("rollback");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let nodes = three_nodes(&dir, &coordinator).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let conn = Connection::connect(n.listener.local_addr())
            .await
            .expect("connect");
        load.push(tokio::spawn(write_load(conn, i, stop.clone())));
    }
    let operator = operator(&coordinator).await;
    // An approval gate over every node keeps the rollout open once all have
    // gone, and with it the window for a rollback.
    let id = publish_gated(&operator, "rolling:1,approval:3").await;
    wait_for(WAIT, "every node at v2", || async {
        nodes.iter().all(|n| n.node.version() == 2)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        state_of(&coordinator.status().await, id),
        RolloutState::Active,
        "held open for the approval"
    );
    let back = operator
        .rollback(id)
        .await
        .expect("rpc")
        .expect("rolled back");
    wait_final(&coordinator, back).await;
    assert!(nodes.iter().all(|n| n.node.version() == 1));
    let status = coordinator.status().await;
    assert_eq!(state_of(&status, id), RolloutState::Aborted);
    let rolled: Vec<&str> = status
        .events
        .iter()
        .filter(|e| e.upgrade == Some(back) && e.what == "rolled back to v1")
        .map(|e| e.node.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(rolled.len(), 3, "{:?}", status.events);
    assert!(matches!(
        operator.rollback(id).await.expect("rpc"),
        Err(RollbackError::NotNow { .. })
    ));
    assert_eq!(
        operator.rollback(back).await.expect("rpc"),
        Err(RollbackError::IsRollback(back))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    every_write_there(load, &nodes).await;
    // A final upgrade is not rolled back.
    let again = operator
        .publish(def(1, ScheduleSpec::Immediately).into())
        .await
        .expect("rpc")
        .expect("published");
    wait_final(&coordinator, again).await;
    let refused = operator.rollback(again).await.expect("rpc");
    assert_eq!(
        refused,
        Err(RollbackError::Final {
            upgrade: again,
            to: 2
        })
    );
}

/// The key-value stages, with a regression planted in v2: it refuses every
/// call that names the key `planted`.
fn planted_stages() -> Vec<Box<dyn upshift::node::Stage>> {
    use upshift::node::durable_stage;
    use upshift::state::Durable;
    use upshift_examples::kv::{StoreV1, StoreV2, state};
    let planted: upshift::rpc::Guard = Arc::new(|_, _, _, payload| {
        if payload.windows(7).any(|w| w == b"planted") {
            Err("a regression planted in v2".into())
        } else {
            Ok(())
        }
    });
    vec![
        Box::new(durable_stage(|s: Durable<state::v1::Store>| {
            v1::service_with_future(StoreV1::new(s))
        })),
        Box::new(
            durable_stage(move |s: Durable<state::v2::Store>| {
                v2::service_with_future(StoreV2::new(s)).guarded(planted.clone())
            })
            .following()
            .reversible(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_regression_halts_the_rollout_and_its_rollback_fails_no_call() {
    let dir = temp_dir("analysis");
    let coordinator = start_coordinator(&dir, "127.0.0.1:0", Registry::default()).await;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let id = format!("n{i}");
        let node = RunningNode::start_with(
            &dir,
            &id,
            "kv",
            coordinator.addr(),
            healthy(),
            planted_stages(),
        )
        .await;
        nodes.push(node);
    }
    wait_for(WAIT, "nodes to register", || async {
        coordinator.status().await.nodes.len() == 3
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let (mut load, mut probes) = (Vec::new(), Vec::new());
    for (i, n) in nodes.iter().enumerate() {
        let conn = Connection::connect(n.listener.local_addr())
            .await
            .expect("connect");
        load.push(tokio::spawn(write_load(conn.clone(), i, stop.clone())));
        // Callers of the path the regression breaks: failures are counted.
        let probe = v1::Client::new(conn).with_deadline(Duration::from_secs(10));
        let stop = stop.clone();
        probes.push(tokio::spawn(async move {
            let mut failed = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if probe.get("planted".into()).await.is_err() {
                    failed += 1;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            failed
        }));
    }
    let operator = operator(&coordinator).await;
    let id = publish_gated(&operator, "rolling:1,errors:5%:50").await;
    let reason = wait_halted(&coordinator, id).await;
    assert!(
        reason.contains("v2 failed") && reason.contains("gate errors:5%:50"),
        "{reason}"
    );
    // The gate held the others until it judged v2, and then halted.
    assert_eq!(
        nodes.iter().filter(|n| n.node.version() == 2).count(),
        1,
        "one node went first"
    );
    let view = &operator.gates().await.expect("gates")[&id];
    assert!(view.cohorts[0].errors > 0, "{:?}", view.cohorts);
    let back = operator
        .rollback(id)
        .await
        .expect("rpc")
        .expect("rolled back");
    wait_final(&coordinator, back).await;
    assert!(nodes.iter().all(|n| n.node.version() == 1));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut planted_failures = 0;
    for probe in probes {
        planted_failures += probe.await.expect("probe task");
    }
    assert!(planted_failures > 0, "the planted regression failed calls");
    for reader in every_write_there(load, &nodes).await {
        // Back at v1, the broken path works again.
        reader.get("planted".into()).await.expect("v1 answers it");
    }
}

/// The `write_load` tasks of `nodes` saw no failed call, and every write
/// they were answered for reads back (as v1 reads it); a v1 reader of each
/// node.
async fn every_write_there(
    load: Vec<tokio::task::JoinHandle<(Vec<String>, Vec<String>)>>,
    nodes: &[RunningNode],
) -> Vec<v1::Client> {
    let mut readers = Vec::new();
    for (i, task) in load.into_iter().enumerate() {
        let (acked, failed) = task.await.expect("load task");
        assert!(
            failed.is_empty(),
            "n{i}: client-visible failures: {failed:?}"
        );
        let conn = Connection::connect(nodes[i].listener.local_addr())
            .await
            .expect("connect");
        let reader = v1::Client::new(conn);
        for key in &acked {
            assert!(
                reader.get(key.clone()).await.expect("get").is_some(),
                "n{i} lost {key}"
            );
        }
        readers.push(reader);
    }
    readers
}
