//! Coordinators in failover: three `upshift coordinator` processes over one
//! real etcd, one leading. The leader is killed with SIGKILL in the middle
//! of a rollout; a follower takes over within the lease, the nodes' agents
//! follow it, the rollout ends final, no node is granted a slot twice and
//! no event is lost.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use upshift::coordinator::api::UdbContent;
use upshift::upgrade::{Coordinators, RolloutState};
use upshift_tests::cluster::{RunningNode, nodes_at, status_of, temp_dir, wait_for};
use upshift_tests::etcd::EtcdServer;

const BIN: &str = env!("CARGO_BIN_EXE_upshift");
const WAIT: Duration = Duration::from_secs(60);
const LEASE_SECS: u64 = 2;

/// Starts coordinator `i`; its stdout lines arrive on `lines` as (i, line).
fn start(i: usize, url: &str, listen: &str, lines: &mpsc::Sender<(usize, String)>) -> Child {
    let mut child = Command::new(BIN)
        .args(["coordinator", "--udb", url, "--listen", listen])
        .args(["--lease-secs", &LEASE_SECS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a coordinator");
    forward_stdout(&mut child, i, lines);
    child
}

/// Sends each line coordinator `i` (`child`) prints on `lines` as (i, line).
fn forward_stdout(child: &mut Child, i: usize, lines: &mpsc::Sender<(usize, String)>) {
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let lines = lines.clone();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = lines.send((i, line));
        }
    });
}

/// Waits for a coordinator to say it listens: the leader's index.
fn leader(lines: &mpsc::Receiver<(usize, String)>, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok((i, line)) if line.starts_with("coordinator listening on") => return i,
            Ok(_) => {}
            Err(_) => panic!("no coordinator took the lead within {within:?}"),
        }
    }
}

fn at_v2(s: &UdbContent) -> usize {
    nodes_at(s, 2)
}

/// No slot granted twice (one grant per node in the whole history), and
/// nothing recorded `before` lost, in a history without gaps.
fn assert_one_grant_each_and_nothing_lost(before: &UdbContent, after: &UdbContent) {
    // No slot granted twice: one grant per node in the whole history.
    for i in 0..4 {
        let id = format!("n{i}");
        let grants = after
            .events
            .iter()
            .filter(|e| {
                e.node.as_deref() == Some(id.as_str()) && e.what.starts_with("slot granted")
            })
            .count();
        assert_eq!(grants, 1, "node {id} was granted {grants} slots");
    }
    // Nothing the first leader recorded was lost; the history has no gap.
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
    let seqs: Vec<u64> = after.events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "the history has gaps or repeats"
    );
}

/// A rollout under way: `count` coordinators over one etcd, four kv nodes
/// following whichever leads, `rolling:1,health:1` published (one node at a
/// time, each healthy for a second: slow enough to act half way), and the
/// first node upgraded.
struct MidRollout {
    etcd: EtcdServer,
    all: Coordinators,
    lines: mpsc::Receiver<(usize, String)>,
    coordinators: Vec<Child>,
    /// The coordinator that leads.
    first: usize,
    nodes: Vec<RunningNode>,
    /// The status once the first node upgraded.
    before: UdbContent,
}

impl MidRollout {
    async fn start(label: &str, count: usize) -> Self {
        let etcd = EtcdServer::start(label);
        let url = etcd.url(&format!("/{label}/"));
        let dir = temp_dir(label);
        let ports: Vec<String> = (0..count)
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                l.local_addr().expect("addr").to_string()
            })
            .collect();
        let all: Coordinators = ports.join(",").parse().expect("addresses");
        let (send, lines) = mpsc::channel();
        let coordinators: Vec<Child> = ports
            .iter()
            .enumerate()
            .map(|(i, listen)| start(i, &url, listen, &send))
            .collect();
        let first = leader(&lines, Duration::from_secs(30));
        let mut nodes = Vec::new();
        for i in 0..4 {
            let healthy = Arc::new(|| true);
            nodes
                .push(RunningNode::start(&dir, &format!("n{i}"), "kv", all.clone(), healthy).await);
        }
        wait_for(WAIT, "four nodes to register", || async {
            status_of(all.clone())
                .await
                .is_some_and(|s| s.nodes.len() == 4)
        })
        .await;
        let out = Command::new(BIN)
            .args(["publish", "-c", &all.to_string()])
            .args(["--service", "Kv", "--from", "1", "--to", "2"])
            .args(["--schedule", "rolling:1,health:1"])
            .output()
            .expect("publish");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_for(WAIT, "the first node to upgrade", || async {
            status_of(all.clone()).await.is_some_and(|s| at_v2(&s) >= 1)
        })
        .await;
        let before = status_of(all.clone()).await.expect("status");
        MidRollout {
            etcd,
            all,
            lines,
            coordinators,
            first,
            nodes,
            before,
        }
    }

    /// Waits for the rollout to end final on whichever leads; its status then.
    async fn wait_final(&self) -> UdbContent {
        let all = &self.all;
        wait_for(
            WAIT,
            "the rollout to end final on the new leader",
            || async {
                status_of(all.clone()).await.is_some_and(|s| {
                    s.upgrades
                        .get(&1)
                        .is_some_and(|u| u.state == RolloutState::Final)
                })
            },
        )
        .await;
        status_of(all.clone())
            .await
            .expect("status after the failover")
    }

    fn stop(self) {
        for node in self.nodes {
            node.stop();
        }
        for mut c in self.coordinators {
            let _ = c.kill();
            let _ = c.wait();
        }
        drop(self.etcd);
    }
}

/// How `child` exited, waiting at most `within`.
fn exit_code_within(child: &mut Child, within: Duration, what: &str) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("poll") {
            return status.code();
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_takes_over_when_the_leader_is_killed_mid_rollout() {
    let mut r = MidRollout::start("failover", 3).await;
    let first = r.first;
    assert!(at_v2(&r.before) < 4, "the rollout ended before the kill");

    r.coordinators[first].kill().expect("SIGKILL the leader");
    r.coordinators[first].wait().expect("reap it");
    let killed = Instant::now();
    let second = leader(&r.lines, Duration::from_secs(LEASE_SECS + 10));
    let took = killed.elapsed();
    assert_ne!(second, first, "the killed leader cannot lead");
    // The lease runs out, then the next campaign round (a quarter of the
    // lease at most) takes it: a little over the lease, never much more.
    assert!(
        took < Duration::from_secs(LEASE_SECS + 5),
        "the follower took over after {took:?}, lease {LEASE_SECS} s"
    );
    eprintln!("failover: coordinator {second} leads {took:?} after the leader was killed");

    let after = r.wait_final().await;
    assert_eq!(at_v2(&after), 4);
    assert!(r.nodes.iter().all(|n| n.node.version() == 2));
    assert_one_grant_each_and_nothing_lost(&r.before, &after);
    r.stop();
}

/// Sends `signal` (`STOP`, `CONT`) to `child`.
fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -{signal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_leader_is_deposed_and_cannot_decide_when_it_wakes() {
    let mut r = MidRollout::start("failover-stall", 2).await;
    let first = r.first;

    // The leader stalls (a long pause, a frozen VM): its port still
    // accepts, it answers nothing, its lease runs out.
    signal(&r.coordinators[first], "STOP");
    let second = leader(&r.lines, Duration::from_secs(LEASE_SECS + 10));
    assert_ne!(second, first);
    r.wait_final().await;

    // It wakes believing it leads: it finds its lease gone and stops,
    // and nothing it did meanwhile reached the UDB.
    signal(&r.coordinators[first], "CONT");
    let code = exit_code_within(
        &mut r.coordinators[first],
        Duration::from_secs(LEASE_SECS + 20),
        "the deposed leader kept running",
    );
    assert_eq!(
        code,
        Some(3),
        "the deposed leader exits saying it no longer leads"
    );
    let after = status_of(r.all.clone()).await.expect("status after");
    assert_eq!(at_v2(&after), 4);
    assert_one_grant_each_and_nothing_lost(&r.before, &after);
    r.stop();
}

#[test]
fn an_etcd_coordinator_needs_a_fixed_port() {
    let out = Command::new(BIN)
        .args(["coordinator", "--udb", "etcd://127.0.0.1:1/x/"])
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen needs a fixed port"), "{err}");
}

#[test]
fn a_leader_that_loses_etcd_stops_instead_of_deciding_alone() {
    let etcd = EtcdServer::start("failover-lost");
    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("addr").to_string()
    };
    let (send, lines) = mpsc::channel();
    let mut child = Command::new(BIN)
        .args([
            "coordinator",
            "--udb",
            &etcd.url("/lost/"),
            "--listen",
            &listen,
        ])
        .args(["--lease-secs", &LEASE_SECS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a coordinator");
    forward_stdout(&mut child, 0, &send);
    leader(&lines, Duration::from_secs(30));
    etcd.stop();
    // The lease cannot be renewed: within about the lease it gives up.
    let code = exit_code_within(
        &mut child,
        Duration::from_secs(LEASE_SECS + 20),
        "the coordinator kept running without etcd",
    );
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("no longer leads"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_reaches_an_etcd_that_speaks_only_tls_with_its_ca_and_certificate() {
    let dir = temp_dir("failover-tls");
    let certs = dir.join("certs");
    let etcd = EtcdServer::start_tls("failover-tls", &certs);
    let url = etcd.url("/tls/");
    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("addr").to_string()
    };
    let cert = |name: &str| certs.join(name).display().to_string();

    // Plain HTTP: refused, saying what to give.
    let out = Command::new(BIN)
        .args(["coordinator", "--udb", &url, "--listen", &listen])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--etcd-ca"), "{err}");

    // TLS settings without etcd: refused.
    let out = Command::new(BIN)
        .args([
            "coordinator",
            "--udb",
            &dir.join("udb.redb").display().to_string(),
        ])
        .args(["--etcd-ca", &cert("ca.pem")])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--etcd-ca is for a UDB on etcd"), "{err}");

    // With etcd's CA and a certificate it accepts: leads and answers.
    let (send, lines) = mpsc::channel();
    let mut child = Command::new(BIN)
        .args(["coordinator", "--udb", &url, "--listen", &listen])
        .args(["--lease-secs", &LEASE_SECS.to_string()])
        .args(["--etcd-ca", &cert("ca.pem")])
        .args(["--etcd-cert", &cert("coordinator.pem")])
        .args(["--etcd-key", &cert("coordinator.key")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a coordinator");
    forward_stdout(&mut child, 0, &send);
    leader(&lines, Duration::from_secs(30));
    let addr: std::net::SocketAddr = listen.parse().expect("an address");
    let status = status_of(addr).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(status.is_some_and(|s| s.upgrades.is_empty()));
    let _ = std::fs::remove_dir_all(&dir);
}
