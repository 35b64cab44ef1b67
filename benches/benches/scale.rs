//! A coordinator with a thousand nodes: `UPSHIFT_SCALE_NODES` agents (1,000
//! by default) in this process, each on its own TCP connection, heartbeat
//! every second to a coordinator in a child process (`RedbUdb` on disk),
//! then a `rolling:50` rollout runs through them.
//!
//! The agents (`upshift_tests::fleet`) speak the coordinator's interface
//! (v6) as the node's agent does — register, heartbeat, ask for a slot when
//! an upgrade is pending (held until one frees, up to a heartbeat's time:
//! `wait_slot`, whose waits are not counted as request latency), "upgrade"
//! (100 ms, no state), report — without a node behind each, so that what
//! is measured is the coordinator. The same
//! run is made three times: on redb (the default), on etcd (a real etcd
//! this bench starts, Debian's `etcd-server`; skipped, saying so, when it is
//! not installed), and on an in-memory UDB, the baseline without commits to
//! wait for. Reported: heartbeats handled
//! per second, the latency of each request as its caller sees it (p50, p99,
//! max), the coordinator's CPU and resident memory, its UDB commits during
//! the rollout (from its `/metrics`: how many, how many requests each, how
//! long a write takes — what a request that changes something waits
//! for), the rollout's duration
//! against what its schedule allows, and the most nodes ever upgrading at
//! once (the schedule's limit must hold).
//!
//! Connections come from four loopback addresses (127.0.0.1–4), as nodes
//! come from their own hosts: the server admits 512 per peer address.
//!
//! Run: `cargo bench -p upshift-benches --bench scale`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use upshift::coordinator::Coordinator;
use upshift::schedule::Registry;
use upshift::udb::{EtcdUdb, MemoryUdb, RedbUdb};
use upshift_tests::etcd::EtcdServer;
use upshift_tests::fleet::{Pace, Seen, agent, connect, rolling, stop_all};

const HEARTBEAT: Duration = Duration::from_secs(1);
const UPGRADE: Duration = Duration::from_millis(100);
const PARALLEL: u32 = 50;
const STEADY: Duration = Duration::from_secs(10);

fn main() {
    if let Ok(udb) = std::env::var("UPSHIFT_SCALE_COORDINATOR") {
        coordinator(&udb);
        return;
    }
    let nodes: u32 = std::env::var("UPSHIFT_SCALE_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let etcd_installed =
        upshift_tests::on_path("etcd").is_some() || std::env::var_os("UPSHIFT_ETCD_BIN").is_some();
    runtime().block_on(async {
        let on_disk = run(nodes, Udb::Redb).await;
        let on_etcd = if etcd_installed {
            let etcd = EtcdServer::start("bench-scale");
            let rows = run(nodes, Udb::Etcd(etcd.url("/bench-scale/"))).await;
            drop(etcd);
            rows
        } else {
            println!("etcd is not installed (scripts/test installs it): no etcd run");
            on_disk
                .iter()
                .map(|(name, _)| (*name, "-".to_string()))
                .collect()
        };
        let in_memory = run(nodes, Udb::Memory).await;
        println!();
        println!(
            "| {nodes} nodes | redb (the default) | etcd | in memory (no commits to wait for) |"
        );
        println!("|---|---|---|---|");
        for (((name, disk), (_, etcd)), (_, memory)) in on_disk.iter().zip(&on_etcd).zip(&in_memory)
        {
            println!("| {name} | {disk} | {etcd} | {memory} |");
        }
    });
}

/// Where the child coordinator keeps its UDB.
enum Udb {
    Redb,
    Etcd(String),
    Memory,
}

/// A runtime of two workers (the VM's cores), for either process.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The child process: a coordinator on the redb file `udb` (on etcd when it
/// is an `etcd://` URL, in memory when it is `memory`), its address on stdout.
fn coordinator(udb: &str) {
    runtime().block_on(async {
        // Held while the coordinator runs: on etcd it leads.
        let mut _leading = None;
        let coordinator = if udb == "memory" {
            Coordinator::open(MemoryUdb::new(), Registry::default())
        } else if udb.starts_with("etcd://") {
            let store = EtcdUdb::open(udb).expect("etcd");
            _leading = Some(
                store
                    .campaign("bench", Duration::from_secs(5), |_| {})
                    .expect("lead"),
            );
            Coordinator::open(store, Registry::default())
        } else {
            Coordinator::open(RedbUdb::open(udb).expect("udb"), Registry::default())
        };
        let coordinator = coordinator.expect("open");
        let metrics = coordinator
            .metrics()
            .serve("127.0.0.1:0")
            .await
            .expect("serve metrics");
        let (_server, listener) = coordinator.serve("127.0.0.1:0").await.expect("serve");
        println!("{} {}", listener.local_addr(), metrics.local_addr());
        std::future::pending::<()>().await;
    });
}

/// The child's CPU time (user + system) and resident memory.
fn usage(pid: u32) -> (Duration, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which ends with ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    // Linux reports CPU time in clock ticks of 1/100 s.
    (Duration::from_millis(ticks * 10), rss_kb)
}

/// The coordinator's UDB commits so far, from its `/metrics`: what a
/// request that changes something waits for on each UDB.
struct Commits {
    commits: f64,
    requests: f64,
    seconds: f64,
}

impl Commits {
    fn read(metrics: std::net::SocketAddr) -> Self {
        use std::io::{Read, Write};
        let mut text = String::new();
        let mut stream = std::net::TcpStream::connect(metrics).expect("the metrics endpoint");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
            .expect("ask");
        stream.read_to_string(&mut text).expect("metrics");
        let sample = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or(0.0)
        };
        Commits {
            commits: sample("upshift_coordinator_udb_commits_total"),
            requests: sample("upshift_coordinator_udb_committed_requests_total"),
            seconds: sample("upshift_coordinator_udb_write_seconds_total"),
        }
    }

    fn since(&self, before: &Commits) -> Commits {
        Commits {
            commits: self.commits - before.commits,
            requests: self.requests - before.requests,
            seconds: self.seconds - before.seconds,
        }
    }
}

/// One run: the measures as table rows.
async fn run(nodes: u32, udb: Udb) -> Vec<(&'static str, String)> {
    let dir = std::env::temp_dir().join(format!("upshift-bench-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut child = std::process::Command::new(std::env::current_exe().expect("this bench"))
        .env(
            "UPSHIFT_SCALE_COORDINATOR",
            match &udb {
                Udb::Redb => dir.join("udb.redb").into_os_string(),
                Udb::Etcd(url) => url.into(),
                Udb::Memory => "memory".into(),
            },
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the coordinator");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("its address");
    let (addr, metrics) = line.trim().split_once(' ').expect("two addresses");
    let addr: std::net::SocketAddr = addr.parse().expect("an address");
    let metrics: std::net::SocketAddr = metrics.parse().expect("an address");
    let pid = child.id();
    let (_, idle_rss) = usage(pid);

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let pace = Pace {
        heartbeat: HEARTBEAT,
        upgrade: UPGRADE,
        nodes,
    };
    let agents: Vec<_> = (0..nodes)
        .map(|i| tokio::spawn(agent(addr, i, pace, seen.clone(), stop.clone())))
        .collect();
    let operator = connect(addr, 0).await;
    while operator.status().await.expect("status").nodes.len() < nodes as usize {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{nodes} nodes registered in {:.1} s; steady state for {} s",
        started.elapsed().as_secs_f64(),
        STEADY.as_secs()
    );
    tokio::time::sleep(HEARTBEAT).await;
    seen.percentiles();
    let beats = seen.heartbeats.load(Ordering::Relaxed);
    let (cpu, _) = usage(pid);
    tokio::time::sleep(STEADY).await;
    let beats = seen.heartbeats.load(Ordering::Relaxed) - beats;
    let (cpu_after, steady_rss) = usage(pid);
    let steady = seen.percentiles();
    let cpu_share = (cpu_after - cpu).as_secs_f64() / STEADY.as_secs_f64();

    let commits_before = Commits::read(metrics);
    let published = Instant::now();
    let id = operator
        .publish(rolling(PARALLEL))
        .await
        .expect("rpc")
        .expect("published");
    loop {
        let status = operator.status().await.expect("status");
        if status.rollouts[&id].state == upshift::upgrade::RolloutState::Final {
            break;
        }
        assert!(
            published.elapsed() < Duration::from_secs(600),
            "the rollout did not finish: {:?}",
            status.rollouts[&id].state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rollout = published.elapsed();
    let during = seen.percentiles();
    let commits = Commits::read(metrics).since(&commits_before);
    let (_, rollout_rss) = usage(pid);
    stop_all(&stop, agents).await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let most = seen.most_upgrading.load(Ordering::SeqCst);
    let waves = nodes.div_ceil(PARALLEL);
    // The schedule alone: one wave per upgrade's length, each freed slot
    // taken the moment it frees.
    let ideal = UPGRADE * waves;
    let failed = seen.failed.load(Ordering::Relaxed);
    let rows = vec![
        (
            "heartbeats handled (steady)",
            format!("{:.0}/s", beats as f64 / STEADY.as_secs_f64()),
        ),
        (
            "request latency, steady: p50 / p99 / max",
            format!("{:.2} / {:.2} / {:.2} ms", steady.0, steady.1, steady.2),
        ),
        (
            "request latency, during the rollout: p50 / p99 / max",
            format!("{:.2} / {:.2} / {:.2} ms", during.0, during.1, during.2),
        ),
        (
            "coordinator CPU (steady)",
            format!("{:.0} % of one core", cpu_share * 100.0),
        ),
        (
            "coordinator resident memory: idle / with the nodes / after the rollout",
            format!(
                "{:.1} / {:.1} / {:.1} MiB",
                idle_rss as f64 / 1024.0,
                steady_rss as f64 / 1024.0,
                rollout_rss as f64 / 1024.0
            ),
        ),
        (
            "rollout `rolling:50`, against the schedule alone (waves × 100 ms)",
            format!(
                "{:.1} s of {:.1} s: {:.2}×",
                rollout.as_secs_f64(),
                ideal.as_secs_f64(),
                rollout.as_secs_f64() / ideal.as_secs_f64()
            ),
        ),
        (
            "UDB commits during the rollout: count, requests each, mean write",
            format!(
                "{} / {:.1} / {:.2} ms",
                commits.commits,
                commits.requests / commits.commits.max(1.0),
                commits.seconds * 1e3 / commits.commits.max(1.0)
            ),
        ),
        ("most nodes upgrading at once (limit 50)", most.to_string()),
        ("failed requests", failed.to_string()),
    ];
    println!(
        "{} done: rollout {:.1} s",
        match udb {
            Udb::Redb => "redb",
            Udb::Etcd(_) => "etcd",
            Udb::Memory => "in memory",
        },
        rollout.as_secs_f64()
    );
    assert!(most <= PARALLEL, "the schedule's limit was broken: {most}");
    assert_eq!(seen.upgraded.load(Ordering::Relaxed), nodes);
    rows
}
