//! What acknowledging only durable writes costs: a batch of 1 and of 64
//! concurrent writes to the key-value example's v1 state, in one run,
//! under each `Durability`:
//!
//! - `a_snapshots`: no journal (writes live in memory until a checkpoint;
//!   what a crash loses) — the baseline;
//! - `b_sync`: each write waits for its journal entry's sync, writes that
//!   arrive during a sync sharing the next one (group commit);
//! - `c_window_1ms`: the same, each sync first waiting 1 ms for more writes.
//!
//! Run: `cargo bench -p upshift-benches --bench durability`. Ratios against
//! `a_snapshots` are in the book's performance page.

use divan::Bencher;
use upshift::state::{Durability, Durable, FileStore};
use upshift_examples::kv::{ChangeV1, state::v1};

fn bench(b: Bencher, label: &str, durability: Durability, writers: usize) {
    let dir = std::env::temp_dir().join(format!(
        "upshift-bench-durability-{label}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let store = FileStore::open(&dir, upshift_examples::kv::state::NAME).expect("store");
    let state = Durable::<v1::Store>::open(&store, durability).expect("open");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut n = 0u64;
    b.counter(divan::counter::ItemsCount::new(writers))
        .bench_local(|| {
            n += 1;
            rt.block_on(async {
                let writes: Vec<_> = (0..writers)
                    .map(|w| {
                        let state = state.clone();
                        let key = format!("key-{n}-{w}");
                        tokio::spawn(async move {
                            state
                                .write(ChangeV1::Put {
                                    key,
                                    value: "a value of some thirty bytes..".into(),
                                })
                                .await;
                        })
                    })
                    .collect();
                for w in writes {
                    w.await.expect("write");
                }
            });
        });
    drop(state);
    let _ = std::fs::remove_dir_all(&dir);
}

#[divan::bench(sample_count = 30, args = [1, 64])]
fn a_snapshots(b: Bencher, writers: usize) {
    bench(b, "snapshots", Durability::Snapshots, writers);
}

#[divan::bench(sample_count = 30, args = [1, 64])]
fn b_sync(b: Bencher, writers: usize) {
    bench(b, "sync", Durability::Sync, writers);
}

#[divan::bench(sample_count = 30, args = [1, 64])]
fn c_window_1ms(b: Bencher, writers: usize) {
    bench(
        b,
        "window",
        Durability::Window(std::time::Duration::from_millis(1)),
        writers,
    );
}

fn main() {
    divan::main();
}
