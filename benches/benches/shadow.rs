//! What shadow verification costs the callers of a node: a key-value node
//! at v1 (10^4 entries) serves four v1 clients on loopback, each calling
//! `put` and `get` in turn, and upgrades to v2 with a shadowing of 2 s
//! ([`NodeConfig::shadow`]). In one run it compares calls per second and
//! the p50/p99 latency while shadowing with the same load in steady state
//! just before (the baseline). Two durability modes: `Sync` (every put
//! waits for its journal's fsync, shared by the puts that arrive meanwhile:
//! the default) and `Snapshots` (no journal: the cost of the order alone).
//!
//! While shadowing, calls are answered one at a time (the shadow must see
//! them in the order they were applied), so the cost is mostly that order:
//! concurrent callers stop overlapping, and with `Sync` a put no longer
//! shares its fsync with others.
//!
//! Run: `cargo bench -p upshift-benches --bench shadow`
//! (`UPSHIFT_SHADOW_SAMPLES` upgrades per mode, default 3).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use upshift::node::{Node, NodeConfig, ShadowPolicy};
use upshift::state::{Durability, FileStore, StateStore};
use upshift::{Connection, RetryPolicy};
use upshift_examples::kv::interface::v1;
use upshift_examples::kv::state::{self, NAME};

const SOAK: Duration = Duration::from_secs(2);
const STEADY: Duration = Duration::from_secs(1);
const CLIENTS: usize = 4;

/// (when the call ended, how long it took)
type Calls = Arc<Mutex<Vec<(Instant, Duration)>>>;

struct Window {
    per_s: f64,
    p50: Duration,
    p99: Duration,
}

fn window(calls: &[(Instant, Duration)], from: Instant, to: Instant) -> Window {
    let mut lat: Vec<Duration> = calls
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .map(|(_, d)| *d)
        .collect();
    lat.sort();
    let at = |q: f64| lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)));
    Window {
        per_s: lat.len() as f64 / (to - from).as_secs_f64().max(1e-9),
        p50: at(0.5).copied().unwrap_or_default(),
        p99: at(0.99).copied().unwrap_or_default(),
    }
}

async fn sample(durability: Durability, run: usize) -> (Window, Window, u64) {
    let dir = std::env::temp_dir().join(format!(
        "upshift-bench-shadow-{run}-{durability:?}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let items: BTreeMap<String, String> = (0..10_000)
        .map(|i| (format!("key-{i:05}"), format!("value {i}")))
        .collect();
    FileStore::open(&dir, NAME)
        .expect("store")
        .save(&state::v1::Store { items })
        .expect("seed v1");
    let mut config = NodeConfig::new("bench");
    config.durability = durability;
    config.shadow = Some(ShadowPolicy {
        soak: SOAK,
        min_calls: 0,
    });
    let store = FileStore::open(&dir, NAME).expect("store");
    let node = Node::start(config, store, upshift_examples::kv::stages(), 1).expect("start");
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let stop = Arc::new(AtomicBool::new(false));
    let calls: Calls = Arc::default();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let conn = Connection::connect(listener.local_addr())
            .await
            .expect("connect");
        let client = v1::Client::new(conn).with_retry(RetryPolicy::default());
        let (stop, calls) = (stop.clone(), calls.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("key-{:05}", (n * 7 + c as u64 * 1_000) % 10_000);
                let began = Instant::now();
                if n.is_multiple_of(2) {
                    client.put(key, format!("c{c} n{n}")).await.expect("put");
                } else {
                    client.get(key).await.expect("get");
                }
                calls
                    .lock()
                    .expect("calls")
                    .push((Instant::now(), began.elapsed()));
                n += 1;
            }
        }));
    }
    let steady_from = Instant::now();
    tokio::time::sleep(STEADY).await;
    let started = Instant::now();
    node.upgrade_to(2).await.expect("the shadowing passes");
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }
    let report = node.shadowed().expect("shadowed");
    // The shadowing ends `soaked` after it started, which is after the
    // quiesce and the in-memory transform at the upgrade's start.
    let shadow_to = started + report.soaked.min(SOAK);
    let shadow_from = started + Duration::from_millis(100);
    let calls = std::mem::take(&mut *calls.lock().expect("calls"));
    let steady = window(&calls, steady_from, started);
    let shadowing = window(&calls, shadow_from, shadow_to);
    drop(listener);
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
    (steady, shadowing, report.compared)
}

fn main() {
    let samples: usize = std::env::var("UPSHIFT_SHADOW_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "shadowing v1 -> v2 for {SOAK:?} under {CLIENTS} clients (put/get), against steady state before it; {samples} upgrades per mode"
    );
    println!(
        "{:>10}  {:>24}  {:>22}  {:>22}  {:>10}",
        "durability",
        "calls/s steady / shadow",
        "p50 steady / shadow",
        "p99 steady / shadow",
        "compared"
    );
    for durability in [Durability::Sync, Durability::Snapshots] {
        for run in 0..samples {
            let (steady, shadow, compared) = rt.block_on(sample(durability, run));
            println!(
                "{:>10}  {:>9.0} / {:>6.0} ({:.2})  {:>9.2?} / {:>9.2?}  {:>9.2?} / {:>9.2?}  {compared:>10}",
                format!("{durability:?}"),
                steady.per_s,
                shadow.per_s,
                shadow.per_s / steady.per_s.max(1e-9),
                steady.p50,
                shadow.p50,
                steady.p99,
                shadow.p99,
            );
        }
    }
}
