//! The upgrade layer of one node, and clients that cross upgrades: quiesce,
//! in-process version switch, retirement of old versions, retries that never
//! run a call twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use upshift::node::{Node, NodeConfig};
use upshift::state::FileStore;
use upshift::{CallError, Connection, RetryPolicy, Server};
use upshift_examples::kv::interface::{v1, v3};
use upshift_tests::cluster::temp_dir;
use upshift_tests::{ProbeObject, probe};

fn kv_node(label: &str, config: NodeConfig) -> Node {
    let store = FileStore::open(temp_dir(label), upshift_examples::kv::state::NAME).expect("store");
    Node::start(config, store, upshift_examples::kv::stages(), 1).expect("start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_upgrade_keeps_every_write_and_commits_the_new_state() {
    let dir = temp_dir("node-upgrade");
    let store = FileStore::open(&dir, upshift_examples::kv::state::NAME).expect("store");
    let node = Node::start(
        NodeConfig::new("n"),
        store,
        upshift_examples::kv::stages(),
        1,
    )
    .expect("start");
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect");
    let c1 = v1::Client::new(conn.clone());
    for i in 0..50 {
        c1.put(format!("k{i}"), format!("v{i}")).await.expect("put");
    }
    node.upgrade_to(2).await.expect("v2");
    node.upgrade_to(3).await.expect("v3");
    assert!(matches!(
        node.upgrade_to(5).await,
        Err(upshift::node::NodeError::NotNext { running: 3 })
    ));
    assert_eq!(node.version(), 3);
    assert!(dir.join("kv.v3.snap").exists() && !dir.join("kv.v1.snap").exists());
    let c3 = v3::Client::new(conn);
    for i in 0..50 {
        assert_eq!(
            c3.get(format!("k{i}"))
                .await
                .expect("get")
                .expect("kept")
                .value,
            format!("v{i}")
        );
    }
    // A restarted node resumes at v3 from the committed snapshot (the first
    // one gone: a state directory has one owner).
    drop(listener);
    drop(node);
    let store = FileStore::open(&dir, upshift_examples::kv::state::NAME).expect("store");
    let again = Node::start(
        NodeConfig::new("n"),
        store,
        upshift_examples::kv::stages(),
        1,
    )
    .expect("restart");
    assert_eq!(again.version(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_finish_before_the_switch_and_new_ones_wait() {
    let node = kv_node("quiesce", NodeConfig::new("n"));
    let service = node.service();
    assert!(
        service.quiesce(Duration::from_millis(100)).await,
        "nothing in flight"
    );
    let conn = node.server().connect_in_memory();
    // Without retries the caller sees the refusal, typed and retryable.
    match v1::Client::new(conn.clone()).get("k".into()).await {
        Err(e @ CallError::Upgrading { node: 1 }) => assert!(e.not_executed()),
        other => panic!("expected Upgrading, got {other:?}"),
    }
    // With retries it succeeds once the service reopens.
    let waiting = tokio::spawn({
        let c = v1::Client::new(conn).with_retry(RetryPolicy::default());
        async move { c.put("k".into(), "v".into()).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    service.reopen();
    waiting.await.expect("task").expect("put after reopening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_cannot_quiesce_is_called_off() {
    let server = Server::new(probe::v1::service(ProbeObject::new(1)));
    let service = server.service("Probe").expect("installed");
    let conn = server.connect_in_memory();
    let slow = tokio::spawn({
        let c = probe::v1::Client::new(conn);
        async move { c.sleep(500).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !service.quiesce(Duration::from_millis(50)).await,
        "a call is still running"
    );
    assert_eq!(service.in_flight(), 1);
    service.reopen();
    assert_eq!(
        slow.await.expect("task").expect("the slow call finishes"),
        500
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_versions_are_no_longer_answered() {
    let mut config = NodeConfig::new("n");
    config.oldest_answered = Some(2);
    let node = kv_node("retire", config);
    node.upgrade_to(2).await.expect("v2");
    let conn = node.server().connect_in_memory();
    match v1::Client::new(conn).get("k".into()).await {
        Err(CallError::VersionUnsupported { node: 2, call: 1 }) => {}
        other => panic!("expected VersionUnsupported, got {other:?}"),
    }
    assert_eq!(node.service().versions().collect::<Vec<_>>(), vec![2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_set_moves_a_refused_call_to_another_replica() {
    let a = Server::new(upshift_examples::kv::service(1, false));
    let b = Server::new(upshift_examples::kv::service(1, false));
    // Replica a is upgrading.
    assert!(
        a.service("Kv")
            .expect("installed")
            .quiesce(Duration::from_millis(10))
            .await
    );
    let conn = Connection::replicas([a.connect_in_memory(), b.connect_in_memory()]);
    let client = v1::Client::new(conn).with_retry(RetryPolicy {
        attempts: 2,
        ..RetryPolicy::default()
    });
    for i in 0..10 {
        client
            .put(format!("k{i}"), "v".into())
            .await
            .expect("served by b");
    }
    assert_eq!(b.service("Kv").expect("installed").served(1), 10);
}

/// A call whose outcome is unknown (the connection broke after it was sent)
/// is reported, never retried: the node may have run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_an_unknown_outcome_is_not_retried() {
    let runs = Arc::new(AtomicUsize::new(0));
    let (client_io, node_io) = tokio::io::duplex(1024);
    let counter = runs.clone();
    // A node that reads one call and dies without replying.
    tokio::spawn(async move {
        let mut node_io = node_io;
        let mut body = Vec::new();
        let read = upshift::wire::read_frame(&mut node_io, 1 << 20, &mut body).await;
        if read.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        drop(node_io);
    });
    let conn = Connection::from_io(client_io, Default::default());
    let result = v1::Client::new(conn)
        .with_retry(RetryPolicy::default())
        .put("k".into(), "v".into())
        .await;
    match result {
        Err(e @ CallError::ConnectionClosed(_)) => assert!(!e.not_executed()),
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "sent once");
}

/// A node that restarts on the same address: the connection's next call
/// connects again; while the node is down, calls are `Unreachable` (not
/// sent, so retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_connection_reconnects_to_a_restarted_node() {
    let first = Server::new(upshift_examples::kv::service(1, false));
    let listener = first.listen("127.0.0.1:0").await.expect("listen");
    let addr = listener.local_addr();
    let conn = Connection::connect(addr).await.expect("connect");
    let client = v1::Client::new(conn.clone());
    client.put("k".into(), "v".into()).await.expect("put");
    drop(listener); // the node dies: its connections close
    tokio::time::sleep(Duration::from_millis(50)).await;
    match client.get("k".into()).await {
        Err(e @ CallError::Unreachable(_)) => assert!(e.not_executed()),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    // It comes back on the same address; a retrying client gets through.
    let second = Server::new(upshift_examples::kv::service(2, false));
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        second.listen(addr).await.expect("listen again")
    });
    let retrying = v1::Client::new(conn.clone()).with_retry(RetryPolicy::default());
    assert_eq!(
        retrying.get("k".into()).await.expect("after the restart"),
        None,
        "a new node, fresh state"
    );
    assert_eq!(conn.node_version(), Some(2));
    drop(restart.await.expect("task"));
}

/// A node going away answers what was sent and tells clients to send no
/// more, so callers that retry never see an outcome-unknown failure while it
/// restarts on the same address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn going_away_leaves_no_call_with_an_unknown_outcome() {
    let old = Server::new(upshift_examples::kv::service(1, false));
    let listener = old.listen("127.0.0.1:0").await.expect("listen");
    let addr = listener.local_addr();
    let conn = Connection::connect(addr).await.expect("connect");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut callers = Vec::new();
    for c in 0..4 {
        let client = v1::Client::new(conn.clone()).with_retry(RetryPolicy::default());
        let stop = stop.clone();
        callers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = client.put(format!("c{c}-{i}"), "v".into()).await {
                    failures.push(e.to_string());
                }
                i += 1;
            }
            failures
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Restart: quiesce, go away, and come back on the same address.
    assert!(
        old.service("Kv")
            .expect("installed")
            .quiesce(Duration::from_secs(1))
            .await
    );
    old.go_away(Duration::from_secs(2)).await;
    drop(listener);
    let new = Server::new(upshift_examples::kv::service(2, false));
    let _listener = new.listen(addr).await.expect("listen again");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        let failures = caller.await.expect("task");
        assert!(failures.is_empty(), "{failures:?}");
    }
    assert!(
        new.service("Kv").expect("installed").served(1) > 0,
        "callers moved to the new node"
    );
}

/// A node that dies in steady state while it checkpoints comes back with
/// every write it acknowledged (its journal holds those after the last
/// checkpoint).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_between_checkpoints_keeps_every_write() {
    let dir = temp_dir("checkpoints");
    let store = FileStore::open(&dir, upshift_examples::kv::state::NAME).expect("store");
    let node = Node::start(
        NodeConfig::new("n"),
        store,
        upshift_examples::kv::stages(),
        1,
    )
    .expect("start");
    let checkpoints = node.checkpoint_every(Duration::from_millis(20));
    let client = v1::Client::new(node.server().connect_in_memory());
    for i in 0..20 {
        client
            .put(format!("k{i}"), format!("v{i}"))
            .await
            .expect("put");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    checkpoints.abort();
    let _ = checkpoints.await;
    // Writes after the last checkpoint, then the node dies without another.
    for i in 20..40 {
        client
            .put(format!("k{i}"), format!("v{i}"))
            .await
            .expect("put");
    }
    drop(client);
    drop(node);
    let store = FileStore::open(&dir, upshift_examples::kv::state::NAME).expect("store");
    let again = Node::start(
        NodeConfig::new("n"),
        store,
        upshift_examples::kv::stages(),
        1,
    )
    .expect("restart");
    let client = v1::Client::new(again.server().connect_in_memory());
    for i in 0..40 {
        assert_eq!(
            client.get(format!("k{i}")).await.expect("get"),
            Some(format!("v{i}"))
        );
    }
}

/// Verifying a restart artifact (hashing a binary of hundreds of MB) must
/// not stop the node from serving. The artifact here is a FIFO, so the
/// verification blocks until the test writes to it; the node runs on its
/// own single-threaded runtime, which a blocking hash would freeze.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_while_it_verifies_a_restart_artifact() {
    use std::io::Write;
    use upshift::coordinator::api::UpgradeDef;
    use upshift::schedule::{Registry, ScheduleSpec};
    use upshift::upgrade::{NodeState, RolloutState};
    use upshift_tests::cluster::{RunningCoordinator, wait_for};

    let dir = temp_dir("verify-artifact");
    let fifo = dir.join("kv-node-v2");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let coordinator = RunningCoordinator::start(&dir, "127.0.0.1:0", Registry::default()).await;
    let coordinator_addr = coordinator.addr();

    let (started, node_addr) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = dir.join("n");
    let node_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let store = FileStore::open(&state, upshift_examples::kv::state::NAME).expect("store");
            let mut config = NodeConfig::new("n");
            config.heartbeat = Duration::from_millis(20);
            config.restart = Some(Arc::new(|_| {}));
            let node =
                Node::start(config, store, upshift_examples::kv::stages(), 1).expect("start");
            let listener = node.listen("127.0.0.1:0").await.expect("listen");
            let _agent = node.run_agent(coordinator_addr, listener.local_addr().to_string());
            let _ = started.send(listener.local_addr());
            let _ = stopped.await;
        });
    });
    let node_addr = node_addr.await.expect("the node started");
    wait_for(Duration::from_secs(30), "the node to register", || async {
        coordinator.status().await.nodes.contains_key("n")
    })
    .await;
    let id = coordinator
        .client
        .publish(UpgradeDef {
            service: "Kv".into(),
            from: 1,
            to: 2,
            schedule: ScheduleSpec::Immediately,
            artifact: format!("file:{}?sha256={}", fifo.display(), "0".repeat(64)),
            notes: String::new(),
        })
        .await
        .expect("rpc")
        .expect("publish");
    wait_for(
        Duration::from_secs(30),
        "the node to take its slot",
        || async { coordinator.status().await.nodes["n"].state == NodeState::Upgrading { to: 2 } },
    )
    .await;

    // The node now hashes the FIFO, which gives nothing until written.
    let client = v1::Client::new(Connection::connect(node_addr).await.expect("connect"))
        .with_deadline(Duration::from_secs(10));
    let served = client.put("during".into(), "verification".into()).await;

    // Let the verification finish: the bytes do not match the published
    // checksum, so the upgrade fails and the rollout halts, naming it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .and_then(|mut f| f.write_all(b"not the published binary"))
        .expect("write the FIFO");
    assert!(
        served.is_ok(),
        "a call during verification failed: {served:?}"
    );
    wait_for(Duration::from_secs(30), "the rollout to halt", || async {
        matches!(
            coordinator.status().await.upgrades[&id].state,
            RolloutState::Halted { .. }
        )
    })
    .await;
    match coordinator.status().await.upgrades[&id].state.clone() {
        RolloutState::Halted { reason } => assert!(reason.contains("sha256"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let _ = stop.send(());
    node_thread.join().expect("node thread");
}

/// A client told to go away reconnects at once; by then the node must
/// listen no more, or the new connection would wait in the kernel's backlog
/// and be reset with its calls unanswered (outcome unknown). So the moment a
/// going-away frame can be read, connecting is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_close_before_any_client_is_told_to_go_away() {
    use tokio::io::BufReader;
    use upshift::wire::{self, Frame};
    for round in 0..20 {
        let server = Server::new(upshift_examples::kv::service(1, false));
        let listener = server.listen("127.0.0.1:0").await.expect("listen");
        let addr = listener.local_addr();
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        // The connection is served before the server goes away.
        let client = Connection::connect(addr).await.expect("connect");
        v1::Client::new(client)
            .put("k".into(), "v".into())
            .await
            .expect("put");
        let going = tokio::spawn({
            let server = server.clone();
            async move { server.go_away(Duration::from_secs(1)).await }
        });
        let mut read = BufReader::new(stream);
        let mut body = Vec::new();
        loop {
            body.clear();
            let more = wire::read_frame(&mut read, wire::DEFAULT_MAX_FRAME, &mut body)
                .await
                .expect("read a frame");
            assert!(more, "round {round}: closed without a going-away frame");
            if matches!(wire::decode(&body), Ok(Frame::Reply(r)) if r.call_id == 0) {
                break;
            }
        }
        let again = tokio::net::TcpStream::connect(addr).await;
        assert!(
            again.is_err(),
            "round {round}: a client told to go away could connect again"
        );
        drop(read);
        going.await.expect("go_away");
    }
}

/// A background upgrade (the example's stages follow their previous
/// version): the running version takes writes while the next version's
/// state is transformed beside it, every one of them is in the new state,
/// and a restart finds them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_version_serves_while_the_next_is_prepared() {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;
    use upshift::state::StateStore;
    use upshift_examples::kv::state::{NAME, v1 as state_v1};

    const PRELOAD: usize = 100_000;
    let dir = temp_dir("node-background");
    {
        let items = (0..PRELOAD)
            .map(|i| (format!("pre-{i}"), format!("value-{i}")))
            .collect();
        let store = FileStore::open(&dir, NAME).expect("store");
        store.save(&state_v1::Store { items }).expect("preload");
    }
    let start = || {
        let store = FileStore::open(&dir, NAME).expect("store");
        Node::start(
            NodeConfig::new("n"),
            store,
            upshift_examples::kv::stages(),
            1,
        )
        .expect("start")
    };
    let node = start();
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let c1 = v1::Client::new(
        Connection::connect(listener.local_addr())
            .await
            .expect("connect"),
    );
    // (sent, acknowledged, key) of every acknowledged put.
    let acks = Arc::new(Mutex::new(Vec::<(Instant, Instant, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (acks, stop, c1) = (acks.clone(), stop.clone(), c1.clone());
        async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (key, sent) = (format!("w-{n}"), Instant::now());
                match c1.put(key.clone(), format!("v-{n}")).await {
                    Ok(()) => acks.lock().expect("acks").push((sent, Instant::now(), key)),
                    Err(e) if e.not_executed() => {
                        tokio::time::sleep(Duration::from_millis(1)).await
                    }
                    Err(e) => panic!("put {key}: {e}"),
                }
                n += 1;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    node.upgrade_to(2).await.expect("v2");
    let ended = Instant::now();
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    let (version, pause) = node.pauses()[0];
    assert_eq!(version, 2);
    // Calls are held back only from `ended - pause` on.
    let held_from = ended - pause;
    let acks = std::mem::take(&mut *acks.lock().expect("acks"));
    let served = acks
        .iter()
        .filter(|(sent, acked, _)| *sent >= started && *acked <= held_from)
        .count();
    assert!(
        served > 0,
        "no write was served between the upgrade's start and its pause ({pause:?} of {:?})",
        ended - started
    );
    let check = |c: v1::Client, acks: Vec<(Instant, Instant, String)>| async move {
        for (_, _, key) in &acks {
            let n = &key[2..];
            assert_eq!(
                c.get(key.clone()).await.expect("get"),
                Some(format!("v-{n}")),
                "{key}"
            );
        }
        for i in [0, PRELOAD / 2, PRELOAD - 1] {
            let got = c.get(format!("pre-{i}")).await.expect("get");
            assert_eq!(got, Some(format!("value-{i}")));
        }
    };
    check(c1, acks.clone()).await;
    drop(listener);
    drop(node);
    let again = start();
    assert_eq!(again.version(), 2);
    let listener = again.listen("127.0.0.1:0").await.expect("listen");
    let c1 = v1::Client::new(
        Connection::connect(listener.local_addr())
            .await
            .expect("connect"),
    );
    check(c1, acks).await;
    println!("{served} writes served by v1 during a background upgrade whose pause was {pause:?}");
}

/// Restart mode's successor: it prepares the next version's state while the
/// running process still owns the directory (reading only), then catches
/// up on the journal written since — or, when a checkpoint compacted what
/// it needed, transforms from scratch — and loses nothing either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_prepared_beside_the_owner_catches_up() {
    use upshift::node::Stage;
    use upshift_examples::kv::state::NAME;

    let up_to = |newest: u32| -> Vec<Box<dyn Stage>> {
        upshift_examples::kv::stages()
            .into_iter()
            .filter(|s| s.version() <= newest)
            .collect()
    };
    for checkpoint_meanwhile in [false, true] {
        let dir = temp_dir(&format!("node-prestart-{checkpoint_meanwhile}"));
        let owner = Node::start(
            NodeConfig::new("old"),
            FileStore::open(&dir, NAME).expect("store"),
            up_to(1),
            1,
        )
        .expect("start v1");
        let listener = owner.listen("127.0.0.1:0").await.expect("listen");
        let c1 = v1::Client::new(
            Connection::connect(listener.local_addr())
                .await
                .expect("connect"),
        );
        for i in 0..100 {
            c1.put(format!("a{i}"), format!("{i}")).await.expect("put");
        }
        owner.checkpoint().await.expect("checkpoint");
        for i in 0..100 {
            c1.put(format!("b{i}"), format!("{i}")).await.expect("put");
        }
        // The successor, while the owner serves: the store is locked.
        assert!(FileStore::open(&dir, NAME).is_err(), "the owner holds it");
        let prestart = Node::prepare_newest(&dir, NAME, &up_to(2)).expect("prepared");
        for i in 0..100 {
            c1.put(format!("c{i}"), format!("{i}")).await.expect("put");
        }
        if checkpoint_meanwhile {
            // Compacts the journal past what the successor holds.
            owner.checkpoint().await.expect("checkpoint");
            c1.put("d".into(), "last".into()).await.expect("put");
        }
        drop((c1, listener, owner));
        let next = Node::start_newest_prepared(
            NodeConfig::new("new"),
            FileStore::open(&dir, NAME).expect("store"),
            up_to(2),
            Some(prestart),
        )
        .expect("start v2");
        assert_eq!(next.version(), 2);
        let listener = next.listen("127.0.0.1:0").await.expect("listen");
        let c3 = v3::Client::new(
            Connection::connect(listener.local_addr())
                .await
                .expect("connect"),
        );
        let c1 = v1::Client::new(
            Connection::connect(listener.local_addr())
                .await
                .expect("connect"),
        );
        for p in ["a", "b", "c"] {
            for i in 0..100 {
                let got = c1.get(format!("{p}{i}")).await.expect("get");
                assert_eq!(got, Some(format!("{i}")), "{p}{i}, {checkpoint_meanwhile}");
            }
        }
        if checkpoint_meanwhile {
            assert_eq!(c1.get("d".into()).await.expect("get"), Some("last".into()));
        }
        // A v3 caller on the v2 node goes through v3's future SO.
        assert!(c3.get("a1".into()).await.expect("get").is_some());
        drop((c1, c3, listener, next));
        // The committed state is v2's, and a plain start finds everything.
        let again = Node::start(
            NodeConfig::new("again"),
            FileStore::open(&dir, NAME).expect("store"),
            up_to(2),
            1,
        )
        .expect("restart");
        assert_eq!(again.version(), 2);
    }
}
