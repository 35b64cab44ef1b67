//! Restart-mode upgrades with real processes: a supervised node process is
//! upgraded v1 -> v2 -> v3 by restarting into checksummed binaries; a wrong
//! checksum is refused; a new binary that crashes in the middle of its
//! startup commit, and a node killed with SIGKILL, are restarted and lose
//! nothing. A node with release keys runs only signed, current releases:
//! each attack of an unauthenticated publisher is refused by the node.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use upshift::coordinator::api::{UdbContent, UpgradeDef};
use upshift::coordinator::{Coordinator, api};
use upshift::schedule::{Registry, ScheduleSpec};
use upshift::udb::RedbUdb;
use upshift::upgrade::release::{Release, ReleaseKeys, SigningKey, digest_file};
use upshift::upgrade::{Artifact, RolloutState};
use upshift::{Connection, Listener, Server};
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

/// A fresh directory for one test, and a coordinator (no release keys)
/// serving from a UDB in it, with an operator's client.
async fn scene(label: &str) -> (PathBuf, (Server, Listener), api::v1::Client) {
    let dir = std::env::temp_dir().join(format!("upshift-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let udb = RedbUdb::open(dir.join("udb.redb")).expect("udb");
    let coordinator = Coordinator::open(udb, Registry::default())
        .expect("coordinator")
        .serve("127.0.0.1:0")
        .await
        .expect("serve");
    let op = api::v1::Client::new(
        Connection::connect(coordinator.1.local_addr())
            .await
            .expect("connect"),
    );
    (dir, coordinator, op)
}

/// `kv-supervisor` running the v1 binary as node `id` on `node_addr`,
/// with the state in `state` and `extra` node arguments.
fn supervise(
    state: &Path,
    node_addr: &str,
    (_, coordinator): &(Server, Listener),
    id: &str,
    extra: &[String],
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kv-supervisor"));
    command
        .arg(binary(1))
        .args(["--state", &state.display().to_string()])
        .args(["--listen", node_addr])
        .args(["--coordinator", &coordinator.local_addr().to_string()])
        .args(["--id", id])
        .args(extra)
        .stdout(Stdio::null());
    command
}

/// Starts `command` (a [`supervise`]d node on `node_addr`), waits until
/// the node registers, and connects a v1 client.
async fn running(
    command: &mut Command,
    state: &Path,
    op: &api::v1::Client,
    node_addr: &str,
) -> (Supervised, v1::Client) {
    let supervisor = Supervised(
        command.spawn().expect("start the supervisor"),
        state.to_path_buf(),
    );
    wait_for("the node to register", || async {
        status(op).await.nodes.len() == 1
    })
    .await;
    (
        supervisor,
        v1::Client::new(connect_retrying(node_addr).await),
    )
}

/// Publishes `artifact` for nodes at `from`, waits for the rollout to halt,
/// aborts it and returns the reason (the node's).
async fn halted(op: &api::v1::Client, from: u32, artifact: String) -> String {
    let id = op
        .publish(publish_def(from, artifact))
        .await
        .expect("rpc")
        .expect("publish");
    wait_for("the rollout to halt", || async {
        matches!(
            status(op).await.upgrades[&id].state,
            RolloutState::Halted { .. }
        )
    })
    .await;
    let RolloutState::Halted { reason } = status(op).await.upgrades[&id].state.clone() else {
        unreachable!()
    };
    op.control(id, api::Control::Abort)
        .await
        .expect("rpc")
        .expect("abort");
    reason
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
    let (dir, coordinator, op) = scene("restart").await;
    let state = dir.join("node");
    let node_addr = format!("127.0.0.1:{}", free_port());
    let marker = dir.join("crash-marker");
    std::fs::write(&marker, b"once").expect("marker");
    let (supervisor, c1) = running(
        supervise(&state, &node_addr, &coordinator, "node-a", &[])
            // The v3 binary crashes once, half way through committing its transformed state.
            .env(
                "UPSHIFT_CRASH_ONCE",
                format!("{}:HalfWritten:v3", marker.display()),
            ),
        &state,
        &op,
        &node_addr,
    )
    .await;
    for i in 0..50 {
        c1.put(format!("k{i}"), format!("v{i}")).await.expect("put");
    }

    // A wrong checksum is refused: the node stays on v1 and the rollout halts.
    let mut wrong = Artifact::file(binary(2)).expect("checksum");
    wrong.replace_range(wrong.len() - 4.., "0000");
    let reason = halted(&op, 1, wrong).await;
    assert!(
        reason.contains("sha256") && reason.contains("refusing"),
        "{reason}"
    );
    assert_eq!(status(&op).await.nodes["node-a"].info.version, 1);
    assert_eq!(
        c1.get("k7".into()).await.expect("still serving v1"),
        Some("v7".into())
    );

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

/// Signs `binary` as the Kv release of `version`, `sequence`, expiring at
/// `expires_ms`, with `length` (the binary's own unless given).
fn signed(
    keys: &[&SigningKey],
    binary: &Path,
    version: u32,
    sequence: u64,
    expires_ms: u64,
    length: Option<u64>,
) -> String {
    let mut release =
        Release::for_binary(binary, "Kv", version, sequence, expires_ms).expect("digest");
    release.length = length.unwrap_or(release.length);
    release.sign(keys).expect("sign")
}

/// The attacks of an unauthenticated publisher on a node that trusts
/// release keys — the coordinator here checks nothing, so each refusal is
/// the node's own — and the signed, current releases it does run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_release_keys_runs_only_signed_current_releases() {
    let (dir, coordinator, op) = scene("releases").await;
    let state = dir.join("node");
    let source = dir.join("releases");
    std::fs::create_dir_all(&source).expect("source");
    let keys: Vec<SigningKey> = (0..3).map(|_| SigningKey::generate()).collect();
    let publics: Vec<[u8; 32]> = keys.iter().map(SigningKey::public).collect();
    let list = ReleaseKeys::new(2, &publics).expect("keys");
    std::fs::write(dir.join("release.keys"), list.to_file()).expect("key list");
    for version in [2, 3] {
        Release::for_binary(&binary(version), "Kv", version, 0, 0)
            .and_then(|r| r.add_to_source(&binary(version), &source))
            .expect("stage");
    }
    let later = upshift::clock::now_ms() + 3_600_000;
    let node_addr = format!("127.0.0.1:{}", free_port());
    let release_args = [
        "--release-keys".to_string(),
        dir.join("release.keys").display().to_string(),
        "--release-source".to_string(),
        source.display().to_string(),
    ];
    let (supervisor, c1) = running(
        supervise(&state, &node_addr, &coordinator, "node-r", &release_args).stderr(Stdio::null()),
        &state,
        &op,
        &node_addr,
    )
    .await;
    c1.put("kept".into(), "yes".into()).await.expect("put");

    // A script the publisher wants every node to run.
    let pwned = dir.join("pwned");
    let script = dir.join("evil.sh");
    std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", pwned.display())).expect("script");
    let reason = halted(&op, 1, Artifact::file(&script).expect("checksum")).await;
    assert!(reason.contains("runs only signed releases"), "{reason}");
    // Probing files on the node's host learns nothing: the node reads none.
    let zeros = "0".repeat(64);
    let there = halted(&op, 1, format!("file:/etc/hostname?sha256={zeros}")).await;
    let absent = halted(&op, 1, format!("file:/no/such/file?sha256={zeros}")).await;
    assert_eq!(there, absent);
    assert!(
        !there.contains("No such file") && !there.contains("has sha256"),
        "{there}"
    );

    let v2 = binary(2);
    let cases = [
        (
            signed(&[&keys[0]], &v2, 2, 1, later, None),
            "signed by 1 of",
        ),
        (signed(&[&keys[0], &keys[1]], &v2, 2, 1, 1, None), "expired"),
        (
            signed(&[&keys[0], &keys[1]], &v2, 2, 1, later, None).replace(
                &digest_file(&v2).expect("digest").0,
                &digest_file(&script).expect("digest").0,
            ),
            "signed by 0 of",
        ),
        (
            signed(&[&keys[0], &keys[1]], &v2, 3, 1, later, None),
            "is for Kv v3",
        ),
        (
            signed(
                &[&keys[0], &keys[1]],
                &v2,
                2,
                1,
                later,
                Some(digest_file(&v2).expect("digest").1 - 10),
            ),
            "longer than its signed",
        ),
    ];
    for (artifact, why) in cases {
        let reason = halted(&op, 1, artifact).await;
        assert!(reason.contains(why), "expected {why:?}: {reason}");
    }
    assert!(!pwned.exists(), "the script ran");
    assert_eq!(status(&op).await.nodes["node-r"].info.version, 1);

    // A signed, current release runs.
    let go = |from: u32, artifact: String| {
        let op = op.clone();
        async move {
            let id = op
                .publish(publish_def(from, artifact))
                .await
                .expect("rpc")
                .expect("publish");
            wait_for("the release to be final", || async {
                status(&op).await.upgrades[&id].state == RolloutState::Final
            })
            .await;
        }
    };
    go(1, signed(&[&keys[2], &keys[0]], &v2, 2, 5, later, None)).await;
    let c2 = v2::Client::new(connect_retrying(&node_addr).await);
    assert_eq!(
        c2.get("kept".into()).await.expect("get"),
        Some("yes".into())
    );
    // An older release (sequence 4 < 5) is a rollback, even correctly signed.
    let v3 = binary(3);
    let rollback = signed(&[&keys[0], &keys[1]], &v3, 3, 4, later, None);
    let reason = halted(&op, 2, rollback).await;
    assert!(reason.contains("below 5"), "{reason}");
    go(2, signed(&[&keys[0], &keys[1]], &v3, 3, 6, later, None)).await;
    let c3 = v3::Client::new(connect_retrying(&node_addr).await);
    assert_eq!(
        c3.get("kept".into())
            .await
            .expect("get")
            .expect("kept")
            .value,
        "yes"
    );
    drop(supervisor);
    kill_node(&state);
}
