//! Nothing acknowledged is lost: a real node process (`durable-node`, the
//! example's durable stages) under write load is killed with SIGKILL at
//! random moments — in steady state, and in the middle of in-process
//! upgrades — and every write it acknowledged must be there, with its value,
//! when it comes back.
//!
//! The upgrades start from a preloaded state ([`PRELOAD`] entries), so the
//! example's background transforms take long enough for kills to land
//! inside them; the suite counts where its kills landed.
//!
//! 100 kills by default; `UPSHIFT_CRASH_KILLS=1000` for a longer run, and
//! `UPSHIFT_CRASH_SEED` to repeat one (the seed is printed).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use upshift::Connection;
use upshift_examples::kv::interface::v1;
use upshift_tests::cluster::temp_dir;

/// xorshift64*: a seeded, repeatable stream of choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Entries an upgrading node starts with.
const PRELOAD: usize = 20_000;

/// A running `durable-node` and the address it serves.
struct NodeProcess {
    child: Child,
    addr: SocketAddr,
    version: u32,
    /// The last line it printed after the first.
    last: Arc<Mutex<String>>,
}

impl NodeProcess {
    fn start(dir: &Path, upgrade_delays_ms: &[u64]) -> NodeProcess {
        let preload = if upgrade_delays_ms.is_empty() {
            0
        } else {
            PRELOAD
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_durable-node"))
            .arg(dir)
            .args(upgrade_delays_ms.iter().map(u64::to_string))
            .env("UPSHIFT_PRELOAD", preload.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start durable-node");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("durable-node in {} did not start", dir.display()));
        let mut words = first.split(' ');
        assert_eq!(words.next(), Some("LISTENING"), "{first}");
        let addr = words
            .next()
            .and_then(|a| a.parse().ok())
            .expect("an address");
        let version = words
            .next()
            .and_then(|v| v.strip_prefix('v')?.parse().ok())
            .expect("a version");
        // Keep reading, so the node never blocks on a full pipe.
        let last = Arc::new(Mutex::new(String::new()));
        let seen = last.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                *seen.lock().expect("last line") = line;
            }
        });
        NodeProcess {
            child,
            addr,
            version,
            last,
        }
    }

    /// Kills it; the last thing it said before.
    fn kill_saying(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader sees the end of the pipe soon after the exit.
        std::thread::sleep(Duration::from_millis(2));
        self.last.lock().expect("last line").clone()
    }

    fn kill(self) {
        drop(self);
    }
}

impl Drop for NodeProcess {
    /// SIGKILL, also when a failed check unwinds past the process.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writers putting unique keys until told to stop or the node dies; each
/// acknowledged put is recorded.
async fn load(
    addr: SocketAddr,
    prefix: String,
    writers: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, String)>>>,
) {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (stop, acked, prefix) = (stop.clone(), acked.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(conn) = Connection::connect(addr).await else {
                return;
            };
            let client = v1::Client::new(conn);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (key, value) = (format!("{prefix}-{w}-{n}"), format!("value-{n}"));
                match client.put(key.clone(), value.clone()).await {
                    Ok(()) => acked.lock().expect("acked").push((key, value)),
                    // An upgrade holding calls back: try the next one.
                    Err(e) if e.not_executed() => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    // The node died under the call: its outcome is unknown,
                    // and it was never acknowledged.
                    Err(_) => return,
                }
                n += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Every `(key, value)` in `acked` reads back from the node at `addr`.
async fn verify(addr: SocketAddr, acked: &[(String, String)], context: &str) {
    let client = v1::Client::new(Connection::connect(addr).await.expect("connect"));
    for chunk in acked.chunks(256) {
        let reads: Vec<_> = chunk
            .iter()
            .map(|(k, _)| {
                let client = client.clone();
                let k = k.clone();
                tokio::spawn(async move { client.get(k).await })
            })
            .collect();
        for ((key, value), read) in chunk.iter().zip(reads) {
            let got = read.await.expect("join").expect("get after restart");
            assert_eq!(
                got.as_ref(),
                Some(value),
                "{context}: acknowledged {key} = {value} is lost"
            );
        }
    }
}

/// Where a kill landed, from what the node printed last.
#[derive(Debug, Default)]
struct Landed {
    before: usize,
    during: usize,
    after: usize,
}

/// One kill: start the node (upgrading after `upgrades`), load it for
/// `load_ms`, SIGKILL it, start it again and check what it acknowledged.
async fn kill_once(
    dir: &Path,
    prefix: String,
    upgrades: &[u64],
    load_ms: u64,
    landed: &mut Landed,
) -> (usize, u32) {
    let node = NodeProcess::start(dir, upgrades);
    let (stop, acked) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let writers = tokio::spawn(load(
        node.addr,
        prefix.clone(),
        4,
        stop.clone(),
        acked.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(load_ms)).await;
    let said = node.kill_saying();
    match said.split(' ').next() {
        Some("UPGRADING") => landed.during += 1,
        Some("UPGRADED" | "UPGRADE") => landed.after += 1,
        _ => landed.before += 1,
    }
    stop.store(true, Ordering::Relaxed);
    let _ = writers.await;
    let mut acked = std::mem::take(&mut *acked.lock().expect("acked"));
    if !upgrades.is_empty() {
        // The preloaded state, first, middle and last.
        for i in [0, PRELOAD / 2, PRELOAD - 1] {
            acked.push((format!("pre-{i}"), format!("value-{i}")));
        }
    }
    let again = NodeProcess::start(dir, &[]);
    verify(again.addr, &acked, &prefix).await;
    let version = again.version;
    again.kill();
    (acked.len(), version)
}

fn kills() -> u64 {
    std::env::var("UPSHIFT_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_write() {
    let seed = std::env::var("UPSHIFT_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) * 0x9e37_79b9 + 1);
    println!("UPSHIFT_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let total = kills();
    // Seven in ten in steady state, on one directory whose state grows
    // across kills; the rest during in-process upgrades, each from v1 on a
    // fresh directory.
    let steady = total * 7 / 10;
    let steady_dir = temp_dir("durable-steady");
    let (mut acked, mut upgraded_kills) = (0, 0);
    let mut landed = Landed::default();
    for kill in 0..steady {
        let (n, _) = kill_once(
            &steady_dir,
            format!("s{kill}"),
            &[],
            5 + rng.below(60),
            &mut Landed::default(),
        )
        .await;
        acked += n;
    }
    for kill in 0..total - steady {
        let dir = temp_dir(&format!("durable-upgrade-{kill}"));
        // The first upgrade after 0–40 ms of load, the second 0–40 ms later;
        // the kill anywhere from before the first to after the second.
        let upgrades = [rng.below(40), rng.below(40)];
        let load_ms = 5 + rng.below(600);
        let (n, version) =
            kill_once(&dir, format!("u{kill}"), &upgrades, load_ms, &mut landed).await;
        acked += n;
        if version > 1 {
            upgraded_kills += 1;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!(
        "{total} kills, {acked} acknowledged writes checked after them, {upgraded_kills} nodes came back upgraded; \
         of the kills of upgrading nodes, {landed:?} an upgrade"
    );
    assert!(acked > 0, "the load acknowledged nothing");
    assert!(
        landed.during > 0,
        "no kill landed inside an upgrade ({landed:?}): the suite does not test what it says"
    );
    let _ = std::fs::remove_dir_all(&steady_dir);
}
