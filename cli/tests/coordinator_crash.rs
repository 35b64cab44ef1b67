//! The coordinator as a real process, killed with SIGKILL in the middle of a
//! rollout and started again on the same UDB file and address: real kv nodes
//! reconnect on their own, the rollout resumes from what the UDB holds, and
//! ends final with its history intact.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use upshift::Connection;
use upshift::coordinator::api::UdbContent;
use upshift::upgrade::RolloutState;
use upshift_tests::cluster::{RunningNode, nodes_at, status_of, temp_dir, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_upshift");
const WAIT: Duration = Duration::from_secs(60);

/// Starts `upshift coordinator` on `listen`; returns it and its address.
/// A restart on the same port may find it briefly taken: it retries.
fn start(udb: &Path, listen: &str) -> (Child, String) {
    for _ in 0..50 {
        let mut child = Command::new(BIN)
            .args(["coordinator", "--listen", listen, "--udb"])
            .arg(udb)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the coordinator");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
        if let Some(addr) = line.split_whitespace().nth(3) {
            return (child, addr.to_string());
        }
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the coordinator did not start on {listen}");
}

fn at_v2(s: &UdbContent) -> usize {
    nodes_at(s, 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_mid_rollout_resumes_from_its_udb() {
    let dir = temp_dir("coordinator-kill");
    let udb = dir.join("udb.redb");
    let (mut coordinator, addr) = start(&udb, "127.0.0.1:0");
    let sock: SocketAddr = addr.parse().expect("address");
    let mut nodes = Vec::new();
    for i in 0..4 {
        let healthy = Arc::new(|| true);
        nodes.push(RunningNode::start(&dir, &format!("n{i}"), "kv", sock, healthy).await);
    }
    wait_for(WAIT, "four nodes to register", || async {
        status_of(sock).await.is_some_and(|s| s.nodes.len() == 4)
    })
    .await;

    // One node at a time, each healthy for a second before the next: slow
    // enough to kill the coordinator half way.
    let out = Command::new(BIN)
        .args([
            "publish",
            "-c",
            &addr,
            "--service",
            "Kv",
            "--from",
            "1",
            "--to",
            "2",
        ])
        .args(["--schedule", "rolling:1,health:1"])
        .output()
        .expect("publish");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(WAIT, "the first node to upgrade", || async {
        status_of(sock).await.is_some_and(|s| at_v2(&s) >= 1)
    })
    .await;
    let before = status_of(sock).await.expect("status");
    assert!(at_v2(&before) < 4, "the rollout ended before the kill");

    coordinator.kill().expect("SIGKILL the coordinator");
    coordinator.wait().expect("reap it");
    assert!(status_of(sock).await.is_none(), "the coordinator is down");
    // The nodes keep serving while it is away.
    let kv = upshift_examples::kv::interface::v1::Client::new(
        Connection::connect(nodes[3].listener.local_addr())
            .await
            .expect("connect to a node"),
    );
    kv.put("while-away".into(), "ok".into())
        .await
        .expect("a node serves");

    let (mut coordinator, again) = start(&udb, &addr);
    assert_eq!(again, addr);
    let watch = Command::new(BIN)
        .args(["watch", "-c", &addr, "1"])
        .stdout(Stdio::null())
        .output()
        .expect("watch");
    assert_eq!(
        watch.status.code(),
        Some(0),
        "watch: {}",
        String::from_utf8_lossy(&watch.stderr)
    );
    let after = status_of(sock).await.expect("status after the restart");
    assert_eq!(after.upgrades[&1].state, RolloutState::Final);
    assert_eq!(at_v2(&after), 4);
    // Nothing the first coordinator recorded was lost.
    for event in &before.events {
        assert!(
            after
                .events
                .iter()
                .any(|e| e.seq == event.seq && e.what == event.what),
            "event {} {:?} was lost",
            event.seq,
            event.what
        );
    }
    for node in nodes {
        node.stop();
    }
    let _ = coordinator.kill();
    let _ = coordinator.wait();
}
