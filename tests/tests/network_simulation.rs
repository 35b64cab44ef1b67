//! Rollouts over a simulated network: real key-value nodes (their RPC,
//! durable state and in-process upgrades), their agents and a real
//! coordinator run as turmoil hosts, connected through `upshift::net` to
//! turmoil's simulated TCP, under a seeded schedule of faults — partitions
//! between a node and the coordinator, message delays, node crashes and
//! restarts (their state in real files), coordinator crashes and restarts
//! (from its UDB), and steps of the coordinator's clock. A client keeps
//! writing to every node through v1 and v2 while the upgrade rolls.
//!
//! Checked after every step of every seed:
//! - never more nodes upgrading than `rolling:1` allows (as the UDB records);
//! - never a slot granted to a node that holds one (a second grant comes
//!   only after the history says how the first ended);
//! - never final while a node runs (or, crashed, holds on disk) a version
//!   below the target;
//! - at the end, once every fault heals, the rollout is final or halted
//!   with a reason, and every write a node acknowledged reads back from it.
//!
//! A seed replays exactly: it decides every fault and turmoil's message
//! delays, the hosts run on one thread in simulated time, and the
//! runtime's blocking work (transforms, journal syncs, UDB writes) runs
//! inline (`upshift::sync::inline_blocking`) instead of on threads whose
//! timing the seed cannot decide. Each seed runs in a fresh process of
//! this test binary, as the replay command runs it (a seed run after
//! others in one process was seen to differ by a tick); the test checks
//! the replay: the first three seeds run again give the same faults,
//! history and writes.
//!
//! `UPSHIFT_NETSIM_SEEDS=N` runs seeds 0..N (100 by default);
//! `UPSHIFT_NETSIM_SEED=N` runs one, printing its faults.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use upshift::clock::Clock;
use upshift::coordinator::Coordinator;
use upshift::coordinator::api::v1 as api;
use upshift::net::{BoxFuture, Connected, Io, Listen, Network};
use upshift::node::{Node, NodeConfig};
use upshift::schedule::{Registry, ScheduleSpec};
use upshift::state::{FileStore, SnapshotStore as _};
use upshift::udb::MemoryUdb;
use upshift::upgrade::{NodeState, RolloutState};
use upshift::{Connection, RetryPolicy};
use upshift_examples::kv;
use upshift_examples::kv::interface::{v1, v2};

const NODES: usize = 4;
const COORDINATOR_PORT: u16 = 7000;
const NODE_PORT: u16 = 9000;
const T0: u64 = 1_700_000_000_000;
/// Faults happen in the first this much simulated time, then heal.
const FAULTS_FOR: Duration = Duration::from_secs(40);

/// turmoil's simulated TCP, as the runtime's network.
struct Turmoil;

impl Network for Turmoil {
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'_, std::io::Result<Connected>> {
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect(addr).await?;
            Ok(Connected {
                io: Box::new(stream),
                peer: addr,
            })
        })
    }

    fn bind(&self, addr: SocketAddr) -> BoxFuture<'_, std::io::Result<Box<dyn Listen>>> {
        Box::pin(async move {
            let listener = turmoil::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TurmoilListener(listener)) as Box<dyn Listen>)
        })
    }
}

struct TurmoilListener(turmoil::net::TcpListener);

impl Listen for TurmoilListener {
    fn accept(&self) -> BoxFuture<'_, std::io::Result<(Box<dyn Io>, SocketAddr)>> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            Ok((Box::new(stream) as Box<dyn Io>, peer))
        })
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// The coordinator's wall clock: simulated time, plus the steps the fault
/// schedule makes (clock skew).
#[derive(Clone, Default)]
struct SimClock(Arc<AtomicI64>);

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default().as_millis() as i64;
        (T0 as i64 + elapsed + self.0.load(Ordering::SeqCst)) as u64
    }
}

/// A small seeded generator (xorshift), so a seed names one fault schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn node_name(i: usize) -> String {
    format!("n{i}")
}

fn address(host: &str, port: u16) -> SocketAddr {
    SocketAddr::new(turmoil::lookup(host), port)
}

/// What the hosts and the driver share with the checks outside the
/// simulation.
#[derive(Default)]
struct Shared {
    /// Each node's version as it runs (a crashed node's, on its disk).
    versions: [AtomicU32; NODES],
    /// Set once the upgrade is published: faults start then.
    published: AtomicBool,
    /// Set once every fault healed and the rollout ended: the driver stops
    /// writing and reads back.
    stop: AtomicBool,
    /// Writes each node acknowledged, and what the read-back found missing.
    acked: Mutex<BTreeMap<usize, Vec<String>>>,
    lost: Mutex<Vec<String>>,
}

type Broken = String;

/// How a seed's run ended.
struct Ended {
    state: RolloutState,
    /// Acknowledged writes read back.
    acked: usize,
    /// The faults, the UDB's history and the writes acknowledged per node:
    /// the same on every run of the seed.
    trace: Vec<String>,
}

/// One seeded run: how it ended, or which invariant broke after which
/// faults.
fn run(seed: u64, dir: &std::path::Path, log: bool) -> Result<Ended, Broken> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(Duration::from_millis(10))
        .simulation_duration(Duration::from_secs(300))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .build();
    let udb = MemoryUdb::new();
    let clock = SimClock::default();
    let shared = Arc::new(Shared::default());

    let (u, c) = (udb.clone(), clock.clone());
    sim.host("coordinator", move || {
        let (udb, clock) = (u.clone(), c.clone());
        async move {
            let coordinator = Coordinator::open_with_clock(udb, Registry::default(), clock)?
                .with_slot_timeout(Duration::from_secs(10));
            let (_server, _listener) = coordinator
                .serve(SocketAddr::from(([0, 0, 0, 0], COORDINATOR_PORT)))
                .await?;
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    for i in 0..NODES {
        let state = dir.join(node_name(i));
        let shared = shared.clone();
        sim.host(node_name(i), move || node(i, state.clone(), shared.clone()));
    }
    sim.client("driver", driver(shared.clone()));

    let mut partitioned: Vec<(usize, Duration)> = Vec::new();
    let mut crashed: Vec<(String, Duration)> = Vec::new();
    let mut healed = false;
    let mut faults = Faults {
        lines: Vec::new(),
        print: log,
    };
    loop {
        let finished = sim
            .step()
            .map_err(|e| format!("the simulation failed: {e}"))?;
        let t = sim.elapsed();
        let content = udb.content();
        check(&content, &shared).map_err(|broken| {
            let tail = &faults.lines[faults.lines.len().saturating_sub(30)..];
            format!("{broken}\nlast faults:\n{}", tail.join("\n"))
        })?;
        let ended =
            content.upgrades.values().next().is_some_and(|u| {
                matches!(u.state, RolloutState::Final | RolloutState::Halted { .. })
            });
        if finished {
            let state = content.upgrades.values().next().map(|u| u.state.clone());
            let lost = shared.lost.lock().unwrap().clone();
            if !lost.is_empty() {
                return Err(format!("acknowledged writes lost: {lost:?}"));
            }
            let acked = shared.acked.lock().unwrap().clone();
            let mut trace = faults.lines;
            trace.extend(
                content
                    .events
                    .iter()
                    .map(|e| format!("{} {:?} {}", e.at_ms, e.node, e.what)),
            );
            trace.extend(acked.iter().map(|(i, keys)| format!("{i}: {keys:?}")));
            if log {
                println!("history:");
                for e in &content.events {
                    println!(
                        "{:>7.2}s {:?} {}",
                        (e.at_ms - T0) as f64 / 1e3,
                        e.node,
                        e.what
                    );
                }
            }
            return state
                .map(|state| Ended {
                    state,
                    acked: acked.values().map(Vec::len).sum(),
                    trace,
                })
                .ok_or_else(|| "nothing was published".into());
        }
        // Faults heal on time; a new one may start.
        partitioned.retain(|&(i, until)| {
            if until <= t {
                sim.repair(node_name(i), "coordinator");
                faults.say(
                    t,
                    format!(
                        "{} and the coordinator reach each other again",
                        node_name(i)
                    ),
                );
            }
            until > t
        });
        crashed.retain(|(host, until)| {
            if *until <= t {
                sim.bounce(host.as_str());
                faults.say(t, format!("{host} starts again"));
            }
            *until > t
        });
        if !shared.published.load(Ordering::SeqCst) {
            continue;
        }
        if t < FAULTS_FOR {
            if rng.chance(2) {
                let i = rng.range(0, NODES as u64) as usize;
                if !partitioned.iter().any(|&(p, _)| p == i) {
                    let ms = rng.range(200, 6_000);
                    sim.partition(node_name(i), "coordinator");
                    partitioned.push((i, t + Duration::from_millis(ms)));
                    faults.say(
                        t,
                        format!("{} cut off from the coordinator for {ms} ms", node_name(i)),
                    );
                }
            }
            if rng.chance(1) {
                let host = if rng.chance(25) {
                    "coordinator".to_string()
                } else {
                    node_name(rng.range(0, NODES as u64) as usize)
                };
                if !crashed.iter().any(|(h, _)| *h == host) {
                    let ms = rng.range(100, 4_000);
                    sim.crash(host.as_str());
                    if let Some(i) = (0..NODES).find(|&i| node_name(i) == host) {
                        // What it runs when it starts again; its last
                        // reading may be a tick older than its last switch.
                        shared.versions[i].store(on_disk(&dir.join(&host)), Ordering::SeqCst);
                    }
                    crashed.push((host.clone(), t + Duration::from_millis(ms)));
                    faults.say(t, format!("{host} crashes for {ms} ms"));
                }
            }
            if rng.chance(1) {
                let ms = rng.range(1, 400);
                sim.set_max_message_latency(Duration::from_millis(ms));
                faults.say(t, format!("messages take up to {ms} ms"));
            }
            if rng.chance(1) {
                let step: i64 = if rng.chance(50) { 4_000 } else { -1_000 };
                clock.0.fetch_add(step, Ordering::SeqCst);
                faults.say(t, format!("the coordinator's clock steps {step} ms"));
            }
        } else if !healed && partitioned.is_empty() && crashed.is_empty() {
            sim.set_max_message_latency(Duration::from_millis(5));
            healed = true;
            faults.say(t, "every fault healed".into());
        } else if healed && ended {
            shared.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// The faults of a run as they happen, printed when replaying one seed.
struct Faults {
    lines: Vec<String>,
    print: bool,
}

impl Faults {
    fn say(&mut self, at: Duration, what: String) {
        let line = format!("{:>7.2}s {what}", at.as_secs_f64());
        if self.print {
            println!("{line}");
        }
        self.lines.push(line);
    }
}

/// The version of the state a node's directory holds committed.
fn on_disk(dir: &std::path::Path) -> u32 {
    let store = FileStore::open_read_only(dir, kv::state::NAME).expect("a node's state");
    store
        .read()
        .expect("a node's committed state")
        .map_or(1, |(snapshot, _)| snapshot.version)
}

/// The invariants that hold after every step.
fn check(content: &upshift::udb::Content, shared: &Shared) -> Result<(), Broken> {
    let upgrading = content
        .nodes
        .values()
        .filter(|n| matches!(n.state, NodeState::Upgrading { .. }))
        .count();
    if upgrading > 1 {
        return Err(format!(
            "{upgrading} nodes recorded upgrading, rolling:1 allows 1"
        ));
    }
    // A node holds a slot from its grant until it is next heard of (it
    // reports, fails, is found silent, or registers after a restart).
    let mut holding = BTreeSet::new();
    for event in &content.events {
        let Some(node) = &event.node else { continue };
        if !event.what.starts_with("slot granted") {
            holding.remove(node);
        } else if !holding.insert(node.clone()) {
            let its: Vec<String> = content
                .events
                .iter()
                .filter(|e| e.node.as_ref() == Some(node))
                .map(|e| format!("  {:.2}s {}", (e.at_ms - T0) as f64 / 1e3, e.what))
                .collect();
            return Err(format!(
                "a slot granted to {node} while it held one; its history:\n{}",
                its.join("\n")
            ));
        }
    }
    if let Some(up) = content.upgrades.values().next()
        && up.state == RolloutState::Final
    {
        for (i, v) in shared.versions.iter().enumerate() {
            let v = v.load(Ordering::SeqCst);
            if v < up.def.to {
                return Err(format!(
                    "the rollout is final while {} runs v{v}",
                    node_name(i)
                ));
            }
        }
    }
    Ok(())
}

/// A node's software: its state in `dir` (kept across crashes), its RPC on
/// the simulated network, its agent talking to the coordinator.
async fn node(i: usize, dir: PathBuf, shared: Arc<Shared>) -> turmoil::Result {
    let store = FileStore::open(&dir, kv::state::NAME)?;
    let mut config = NodeConfig::new(node_name(i));
    config.group = "a".into();
    config.heartbeat = Duration::from_millis(100);
    let node = Node::start(config, store, kv::stages(), 1)?;
    shared.versions[i].store(node.version(), Ordering::SeqCst);
    let _listener = node
        .listen(SocketAddr::from(([0, 0, 0, 0], NODE_PORT)))
        .await?;
    let _agent = node.run_agent(
        address("coordinator", COORDINATOR_PORT),
        address(&node_name(i), NODE_PORT).to_string(),
    );
    loop {
        shared.versions[i].store(node.version(), Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The operator and the callers: publishes v1 → v2 once every node is
/// registered, writes to every node until told to stop, then reads every
/// acknowledged write back from the node that acknowledged it.
async fn driver(shared: Arc<Shared>) -> turmoil::Result {
    let coordinator = Connection::connect(address("coordinator", COORDINATOR_PORT)).await?;
    let operator = api::Client::new(coordinator).with_deadline(Duration::from_secs(2));
    loop {
        if let Ok(status) = operator.status().await
            && status.nodes.len() == NODES
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    operator
        .publish(upshift_tests::kv_upgrade(
            1,
            ScheduleSpec::Rolling { max_parallel: 1 },
        ))
        .await??;
    shared.published.store(true, Ordering::SeqCst);

    let mut clients = Vec::new();
    for i in 0..NODES {
        // Faults have begun: the node may be down for a while.
        let conn = loop {
            match Connection::connect(address(&node_name(i), NODE_PORT)).await {
                Ok(conn) => break conn,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let retry = RetryPolicy::default();
        clients.push((
            v1::Client::new(conn.clone())
                .with_retry(retry)
                .with_deadline(Duration::from_secs(1)),
            v2::Client::new(conn)
                .with_retry(retry)
                .with_deadline(Duration::from_secs(1)),
        ));
    }
    let mut n = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let i = (n as usize) % NODES;
        let key = format!("k{n}");
        let (old, new) = &clients[i];
        let written = if n.is_multiple_of(2) {
            old.put(key.clone(), format!("v{n}")).await
        } else {
            new.put(key.clone(), format!("v{n}"), None).await
        };
        if written.is_ok() {
            shared.acked.lock().unwrap().entry(i).or_default().push(key);
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acked = shared.acked.lock().unwrap().clone();
    for (i, keys) in acked {
        let (old, _) = &clients[i];
        for key in keys {
            let mut read = old.get(key.clone()).await;
            // A node that was cut off may still be reconnecting.
            for _ in 0..20 {
                if read.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                read = old.get(key.clone()).await;
            }
            match read {
                Ok(Some(_)) => {}
                Ok(None) => shared
                    .lost
                    .lock()
                    .unwrap()
                    .push(format!("{}: {key}", node_name(i))),
                Err(e) => return Err(format!("{}: reading {key} back: {e}", node_name(i)).into()),
            }
        }
    }
    Ok(())
}

/// What a child process running one seed prints last: how it ended.
const RESULT: &str = "netsim result:";

/// Runs `seed` in a child process of this test binary (a fresh process, as
/// the replay command is: its runs replay exactly); the child's last line.
fn in_child(seed: u64) -> Result<String, Broken> {
    let out = std::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "rollouts_over_a_simulated_network_keep_their_invariants",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("UPSHIFT_NETSIM_SEED", seed.to_string())
        .env("UPSHIFT_NETSIM_CHILD", "1")
        .output()
        .expect("run a seed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest writes `test NAME ... ` before what the test prints.
    match stdout
        .lines()
        .find_map(|l| l.split_once(RESULT).map(|(_, result)| result))
    {
        Some(result) if out.status.success() => Ok(result.trim().to_string()),
        _ => Err(format!(
            "{}{}",
            stdout
                .lines()
                .filter(|l| !l.starts_with("test ") && !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n"),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// A halt's reason without node names, so alike halts count together.
fn outcome(state: &RolloutState) -> String {
    match state {
        RolloutState::Halted { reason } => format!(
            "halted: {}",
            (0..NODES)
                .fold(reason.clone(), |r, i| r
                    .replace(&format!("node {}", node_name(i)), "a node"))
                .split(" (")
                .next()
                .unwrap_or_default()
        ),
        other => format!("{other:?}"),
    }
}

#[test]
fn rollouts_over_a_simulated_network_keep_their_invariants() {
    if let Ok(seed) = std::env::var("UPSHIFT_NETSIM_SEED") {
        let seed: u64 = seed.parse().expect("UPSHIFT_NETSIM_SEED is a number");
        let child = std::env::var_os("UPSHIFT_NETSIM_CHILD").is_some();
        upshift::net::install(Turmoil).expect("the first network of this process");
        // Transforms, journal syncs and UDB writes on this one thread too,
        // so the simulator decides every order.
        upshift::sync::inline_blocking();
        let dir = upshift_tests::cluster::temp_dir(&format!("netsim-{seed}"));
        let ended = run(seed, &dir, !child);
        let _ = std::fs::remove_dir_all(&dir);
        match ended {
            Ok(ended) => {
                use std::hash::{Hash, Hasher};
                // Not randomly keyed: the same trace hashes the same in
                // every process.
                #[allow(deprecated)]
                let mut hasher = std::hash::SipHasher::new();
                ended.trace.hash(&mut hasher);
                println!(
                    "{RESULT} {}|{}|{:016x}",
                    outcome(&ended.state),
                    ended.acked,
                    hasher.finish()
                );
            }
            Err(broken) => panic!(
                "seed {seed}: {broken}\nreplay: UPSHIFT_NETSIM_SEED={seed} cargo test -p upshift-tests --test network_simulation -- --nocapture"
            ),
        }
        return;
    }
    let n: u64 = std::env::var("UPSHIFT_NETSIM_SEEDS").ok().map_or(100, |s| {
        s.parse().expect("UPSHIFT_NETSIM_SEEDS is a number")
    });
    let started = Instant::now();
    let mut ended: BTreeMap<String, usize> = BTreeMap::new();
    let mut read_back = 0;
    let mut results = Vec::new();
    for seed in 0..n {
        let result = in_child(seed).unwrap_or_else(|broken| panic!("{broken}"));
        let mut parts = result.split('|');
        let (state, acked) = (parts.next().unwrap_or_default(), parts.next());
        *ended.entry(state.to_string()).or_default() += 1;
        read_back += acked.and_then(|a| a.parse::<usize>().ok()).unwrap_or(0);
        results.push(result);
    }
    println!(
        "{n} seeds in {:.1} s, {read_back} acknowledged writes read back: {ended:#?}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        ended.get("Final").copied().unwrap_or(0) > 0,
        "no seed finished its rollout: {ended:?}"
    );
    // A seed replays exactly: run again, the first ones give the same
    // faults, history (every event at the same millisecond) and writes.
    for seed in 0..n.min(3) {
        let again = in_child(seed).unwrap_or_else(|broken| panic!("{broken}"));
        assert_eq!(
            again, results[seed as usize],
            "seed {seed} did not replay exactly (outcome|writes|hash of faults, history and writes)"
        );
    }
}
