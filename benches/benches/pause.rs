//! How long an in-process upgrade holds calls back, against the size of the
//! state: a key-value node at v1 with 10^4, 10^5 and 10^6 entries (10^7
//! with `UPSHIFT_PAUSE_LARGE=1`) upgrades to v2, in one run. The pause is
//! `Node::upgrade_to` from quiesce to switch: encode, transform, commit.
//! `baseline_encode` encodes the same v1 state alone, the floor a
//! stop-the-world upgrade cannot go under.
//!
//! Run: `cargo bench -p upshift-benches --bench pause`.

use std::collections::BTreeMap;

use divan::Bencher;
use upshift::node::{Node, NodeConfig};
use upshift::state::{FileStore, StateStore};
use upshift_examples::kv::state::{NAME, v1};

fn sizes() -> Vec<usize> {
    let mut sizes = vec![10_000, 100_000, 1_000_000];
    if std::env::var("UPSHIFT_PAUSE_LARGE").is_ok_and(|v| v == "1") {
        sizes.push(10_000_000);
    }
    sizes
}

fn state(entries: usize) -> v1::Store {
    let items: BTreeMap<String, String> = (0..entries)
        .map(|i| (format!("key-{i:09}"), format!("value of key {i}")))
        .collect();
    v1::Store { items }
}

#[divan::bench(sample_count = 3, args = sizes())]
fn baseline_encode(b: Bencher, entries: usize) {
    let s = state(entries);
    b.bench_local(|| postcard::to_allocvec(&s).expect("encode"));
}

#[divan::bench(sample_count = 3, args = sizes())]
fn upgrade_pause(b: Bencher, entries: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let s = state(entries);
    let mut run = 0;
    b.with_inputs(|| {
        run += 1;
        let dir = std::env::temp_dir().join(format!(
            "upshift-bench-pause-{entries}-{run}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = FileStore::open(&dir, NAME).expect("store");
            store.save(&s).expect("seed v1");
        }
        let store = FileStore::open(&dir, NAME).expect("store");
        let node = Node::start(
            NodeConfig::new("bench"),
            store,
            upshift_examples::kv::stages(),
            1,
        )
        .expect("start");
        (node, dir)
    })
    .bench_local_values(|(node, dir)| {
        rt.block_on(node.upgrade_to(2)).expect("upgrade");
        // Dropped after the measurement.
        Cleanup(Some(node), dir)
    });
}

/// A node and its state directory, removed once the sample is taken.
struct Cleanup(Option<Node>, std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        // The node first: it holds the directory's lock and journal.
        drop(self.0.take());
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn main() {
    divan::main();
}
