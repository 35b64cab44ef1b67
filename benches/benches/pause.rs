//! How long an in-process upgrade holds calls back, against the size of the
//! state, and how much the running version serves while the next one is
//! prepared: a key-value node at v1 with 10^4, 10^5 and 10^6 entries (10^7
//! with `UPSHIFT_PAUSE_LARGE=1`) upgrades to v2 under write load from two
//! v1 clients on loopback, in one run.
//!
//! - *background*: the example's stages, which follow their previous
//!   version ([`DurableStage::following`]): the transform runs beside v1.
//! - *stop the world*: the same stages without `following()`, the baseline:
//!   the transform runs while calls are held.
//!
//! The pause is what `Node::pauses` reports (from the quiesce to the
//! switch); throughput is acknowledged puts per second, steady (300 ms
//! before the upgrade) and during the background transform (from the
//! upgrade's start to its pause). It is a scenario with phases, so it has
//! its own `main` instead of divan.
//!
//! Run: `cargo bench -p upshift-benches --bench pause`
//! (`UPSHIFT_PAUSE_SAMPLES` upgrades per size, default 5).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use upshift::Connection;
use upshift::node::{DurableStage, Node, NodeConfig, Stage, durable_stage};
use upshift::state::{Durable, FileStore, StateStore};
use upshift_examples::kv::interface::{v1, v2};
use upshift_examples::kv::state::{self, NAME};
use upshift_examples::kv::{StoreV1, StoreV2};

fn sizes() -> Vec<usize> {
    let mut sizes = vec![10_000, 100_000, 1_000_000];
    if std::env::var("UPSHIFT_PAUSE_LARGE").is_ok_and(|v| v == "1") {
        sizes.push(10_000_000);
    }
    sizes
}

fn preload(entries: usize) -> state::v1::Store {
    let items: BTreeMap<String, String> = (0..entries)
        .map(|i| (format!("key-{i:09}"), format!("value of key {i}")))
        .collect();
    state::v1::Store { items }
}

fn stages(background: bool) -> Vec<Box<dyn Stage>> {
    let v2: DurableStage<state::v2::Store, _> =
        durable_stage(|s: Durable<state::v2::Store>| v2::service_with_future(StoreV2::new(s)));
    vec![
        Box::new(durable_stage(|s: Durable<state::v1::Store>| {
            v1::service_with_future(StoreV1::new(s))
        })),
        Box::new(if background { v2.following() } else { v2 }),
    ]
}

/// One upgrade under load.
struct Sample {
    pause: Duration,
    /// From the upgrade's start to its pause.
    transform: Duration,
    steady_per_s: f64,
    during_per_s: f64,
}

async fn sample(seed: &state::v1::Store, background: bool, run: usize) -> Sample {
    let dir = std::env::temp_dir().join(format!(
        "upshift-bench-pause-{}-{run}-{}",
        seed.items.len(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    FileStore::open(&dir, NAME)
        .expect("store")
        .save(seed)
        .expect("seed v1");
    let store = FileStore::open(&dir, NAME).expect("store");
    let node = Node::start(NodeConfig::new("bench"), store, stages(background), 1).expect("start");
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let mut writers = Vec::new();
    for w in 0..2 {
        let conn = Connection::connect(listener.local_addr())
            .await
            .expect("connect");
        let (client, stop, acks) = (v1::Client::new(conn), stop.clone(), acks.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match client.put(format!("w{w}-{n}"), "v".into()).await {
                    Ok(()) => acks.lock().expect("acks").push(Instant::now()),
                    Err(e) if e.not_executed() => {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                    Err(e) => panic!("put: {e}"),
                }
                n += 1;
            }
        }));
    }
    let steady_from = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    node.upgrade_to(2).await.expect("upgrade");
    let ended = Instant::now();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let pause = node.pauses()[0].1;
    let held_from = ended - pause;
    let acks = std::mem::take(&mut *acks.lock().expect("acks"));
    let count =
        |from: Instant, to: Instant| acks.iter().filter(|t| **t >= from && **t < to).count();
    let per_s = |n: usize, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let transform = held_from - started;
    let sample = Sample {
        pause,
        transform,
        steady_per_s: per_s(count(steady_from, started), started - steady_from),
        during_per_s: per_s(count(started, held_from), transform),
    };
    drop(listener);
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
    sample
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `RUST_LOG=upshift::node=info` shows where each upgrade's time goes.
    if std::env::var_os("RUST_LOG").is_some() {
        upshift::logs::init();
    }
    let samples: usize = std::env::var("UPSHIFT_PAUSE_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "pause of an in-process upgrade v1 -> v2 under write load ({samples} upgrades per size; max is the p99 bound)"
    );
    println!(
        "{:>9}  {:>28}  {:>20}  {:>30}  {:>24}",
        "entries",
        "background pause med / max",
        "transform beside v1",
        "puts/s steady / during (ratio)",
        "stop-the-world pause"
    );
    for entries in sizes() {
        let seed = preload(entries);
        let runs: Vec<Sample> = (0..samples)
            .map(|run| rt.block_on(sample(&seed, true, run)))
            .collect();
        let baseline = rt.block_on(sample(&seed, false, samples));
        let pauses: Vec<Duration> = runs.iter().map(|s| s.pause).collect();
        let worst = pauses.iter().max().copied().unwrap_or_default();
        let steady: f64 = runs.iter().map(|s| s.steady_per_s).sum::<f64>() / runs.len() as f64;
        let during: f64 = runs.iter().map(|s| s.during_per_s).sum::<f64>() / runs.len() as f64;
        println!(
            "{entries:>9}  {:>13.2?} / {:>12.2?}  {:>20.1?}  {:>10.0} / {:>8.0} ({:>5.2})  {:>24.1?}",
            median(pauses),
            worst,
            median(runs.iter().map(|s| s.transform).collect()),
            steady,
            during,
            during / steady.max(1e-9),
            baseline.pause,
        );
    }
}
