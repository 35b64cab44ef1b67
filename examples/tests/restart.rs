//! Restart-mode upgrades with real processes: a supervised node process is
//! upgraded v1 -> v2 -> v3 by restarting into checksummed binaries; a wrong
//! checksum is refused; a new binary that crashes in the middle of its
//! startup commit, and a node killed with SIGKILL, are restarted and lose
//! nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use upshift::Connection;
use upshift::coordinator::api::{UdbContent, UpgradeDef};
use upshift::coordinator::{Coordinator, api};
use upshift::schedule::{Registry, ScheduleSpec};
use upshift::udb::RedbUdb;
use upshift::upgrade::{Artifact, RolloutState};
use upshift_examples::kv::interface::{v1, v2, v3};

/// The supervisor and its node's state directory.
struct Supervised(Child, PathBuf);

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        // The supervisor's child outlives it: killed through its pid file,
        // also when a failed check unwinds.
        kill_node(&self.1);
    }
}

fn binary(version: u32) -> PathBuf {
    PathBuf::from(match version {
        1 => env!("CARGO_BIN_EXE_kv-node-v1"),
        2 => env!("CARGO_BIN_EXE_kv-node-v2"),
        _ => env!("CARGO_BIN_EXE_kv-node-v3"),
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn kill_node(state: &Path) {
    if let Ok(pid) = std::fs::read_to_string(state.join("node.pid")) {
        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    }
}

async fn status(op: &api::v1::Client) -> UdbContent {
    op.status().await.expect("status")
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connect_retrying(addr: &str) -> Connection {
    for _ in 0..200 {
        if let Ok(conn) = Connection::connect(addr).await {
            return conn;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node at {addr} never came back");
}

fn publish_def(from: u32, artifact: String) -> UpgradeDef {
    UpgradeDef {
        service: "Kv".into(),
        from,
        to: from + 1,
        schedule: ScheduleSpec::Immediately,
        artifact,
        notes: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_node_restarts_into_each_new_binary_and_keeps_its_state() {
    let dir = std::env::temp_dir().join(format!("upshift-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let state = dir.join("node");

    let udb = RedbUdb::open(dir.join("udb.redb")).expect("udb");
    let (_server, coordinator) = Coordinator::open(udb, Registry::default())
        .expect("coordinator")
        .serve("127.0.0.1:0")
        .await
        .expect("serve");
    let op = api::v1::Client::new(
        Connection::connect(coordinator.local_addr())
            .await
            .expect("connect"),
    );

    let node_addr = format!("127.0.0.1:{}", free_port());
    let marker = dir.join("crash-marker");
    std::fs::write(&marker, b"once").expect("marker");
    let supervisor = Supervised(
        Command::new(env!("CARGO_BIN_EXE_kv-supervisor"))
            .arg(binary(1))
            .args([
                "--state",
                &state.display().to_string(),
                "--listen",
                &node_addr,
            ])
            .args([
                "--coordinator",
                &coordinator.local_addr().to_string(),
                "--id",
                "node-a",
            ])
            // The v3 binary crashes once, half way through committing its transformed state.
            .env(
                "UPSHIFT_CRASH_ONCE",
                format!("{}:HalfWritten:v3", marker.display()),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("start the supervisor"),
        state.clone(),
    );
    wait_for("the node to register", || async {
        status(&op).await.nodes.len() == 1
    })
    .await;

    let c1 = v1::Client::new(connect_retrying(&node_addr).await);
    for i in 0..50 {
        c1.put(format!("k{i}"), format!("v{i}")).await.expect("put");
    }

    // A wrong checksum is refused: the node stays on v1 and the rollout halts.
    let mut wrong = Artifact::file(binary(2)).expect("checksum");
    wrong.replace_range(wrong.len() - 4.., "0000");
    let id = op
        .publish(publish_def(1, wrong))
        .await
        .expect("rpc")
        .expect("publish");
    wait_for("the bad checksum to halt the rollout", || async {
        matches!(
            status(&op).await.upgrades[&id].state,
            RolloutState::Halted { .. }
        )
    })
    .await;
    let s = status(&op).await;
    let RolloutState::Halted { reason } = &s.upgrades[&id].state else {
        unreachable!()
    };
    assert!(
        reason.contains("sha256") && reason.contains("refusing"),
        "{reason}"
    );
    assert_eq!(s.nodes["node-a"].info.version, 1);
    assert_eq!(
        c1.get("k7".into()).await.expect("still serving v1"),
        Some("v7".into())
    );
    op.control(id, api::Control::Abort)
        .await
        .expect("rpc")
        .expect("abort");

    // v1 -> v2 by restarting into the v2 binary, handed over: the port has a
    // listener at every moment, so no connection attempt is refused.
    let probing = Arc::new(AtomicBool::new(true));
    let probe = {
        let (probing, addr) = (probing.clone(), node_addr.clone());
        tokio::spawn(async move {
            let (mut made, mut refused) = (0u32, 0u32);
            while probing.load(Ordering::Relaxed) {
                match tokio::net::TcpStream::connect(&addr).await {
                    Ok(_) => made += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused += 1,
                    Err(_) => {}
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (made, refused)
        })
    };
    let id = op
        .publish(publish_def(1, Artifact::file(binary(2)).expect("checksum")))
        .await
        .expect("rpc")
        .expect("publish");
    wait_for("v2 to be final", || async {
        status(&op).await.upgrades[&id].state == RolloutState::Final
    })
    .await;
    probing.store(false, Ordering::Relaxed);
    let (made, refused) = probe.await.expect("probe");
    assert!(made > 10, "the probe connected {made} times");
    assert_eq!(refused, 0, "connections refused during the handover");
    let c2 = v2::Client::new(connect_retrying(&node_addr).await);
    for i in 0..50 {
        assert_eq!(
            c2.get(format!("k{i}")).await.expect("get"),
            Some(format!("v{i}")),
            "after v2"
        );
    }
    c2.put("ttl".into(), "x".into(), Some(3600))
        .await
        .expect("a v2 put with ttl");

    // v2 -> v3: the v3 binary crashes once while committing; the supervisor restarts it.
    let id = op
        .publish(publish_def(2, Artifact::file(binary(3)).expect("checksum")))
        .await
        .expect("rpc")
        .expect("publish");
    wait_for("v3 to be final", || async {
        status(&op).await.upgrades[&id].state == RolloutState::Final
    })
    .await;
    assert!(!marker.exists(), "the v3 binary crashed as asked");
    let c3 = v3::Client::new(connect_retrying(&node_addr).await);
    for i in 0..50 {
        assert_eq!(
            c3.get(format!("k{i}"))
                .await
                .expect("get")
                .expect("kept")
                .value,
            format!("v{i}"),
            "after v3"
        );
    }
    assert!(matches!(
        c3.get("ttl".into())
            .await
            .expect("get")
            .expect("kept")
            .expiry,
        upshift_examples::kv::interface::Expiry::InSecs(_)
    ));

    // SIGKILL the node: the supervisor starts v3 again, from the committed state.
    kill_node(&state);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c3 = v3::Client::new(connect_retrying(&node_addr).await);
    let mut value = None;
    for _ in 0..100 {
        if let Ok(v) = c3.get("k49".into()).await {
            value = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(value.expect("k49 after SIGKILL").value, "v49");
    let files: Vec<_> = std::fs::read_dir(&state)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".snap"))
        .collect();
    assert_eq!(files, vec!["kv.v3.snap".to_string()]);

    kill_node(&state);
    drop(supervisor);
    kill_node(&state);
}
