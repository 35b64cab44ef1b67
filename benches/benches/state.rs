//! State with one million map entries, in one run:
//!
//! - `transform`: the generated v2 → v3 transform of the key-value state
//!   (a renamed map whose nested `Entry` changes) against the same conversion
//!   written by hand;
//! - `save` / `load`: `FileStore` writing and reading a snapshot against
//!   `std::fs` writing (with `sync_all`) and reading the same payload bytes.
//!
//! Run: `cargo bench -p upshift-benches --bench state`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use divan::Bencher;
use upshift::state::{FileStore, Snapshot, SnapshotStore, Upgrade};
use upshift_examples::kv::state::{v2, v3};

const ENTRIES: usize = 1_000_000;

fn v2_state() -> v2::Store {
    let items = (0..ENTRIES)
        .map(|i| {
            let entry = v2::Entry {
                value: format!("value-{i:08}"),
                expires_at_ms: (i % 3 == 0).then_some(i as u64),
            };
            (format!("key-{i:08}"), entry)
        })
        .collect();
    v2::Store {
        items,
        evictions: 7,
    }
}

/// The v2 → v3 conversion as a developer would write it without upshift.
fn by_hand(old: v2::Store) -> v3::Store {
    let entries: BTreeMap<String, v3::Entry> = old
        .items
        .into_iter()
        .map(|(k, e)| {
            let expiry = match e.expires_at_ms {
                Some(ms) => v3::Expiry::AtUnixMs(ms),
                None => v3::Expiry::Never,
            };
            (
                k,
                v3::Entry {
                    value: e.value,
                    expiry,
                    hits: 0,
                },
            )
        })
        .collect();
    v3::Store {
        entries,
        evictions: old.evictions,
    }
}

mod transform {
    use super::*;

    #[divan::bench(sample_count = 10)]
    fn a_hand_written(b: Bencher) {
        b.with_inputs(v2_state).bench_values(by_hand);
    }

    #[divan::bench(sample_count = 10)]
    fn b_generated(b: Bencher) {
        b.with_inputs(v2_state)
            .bench_values(|old| v3::Store::upgrade(old).expect("transform"));
    }
}

struct Files {
    dir: PathBuf,
    payload: Vec<u8>,
    snapshot: Snapshot,
    store: FileStore,
}

static FILES: LazyLock<Files> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("upshift-bench-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = FileStore::open(dir.join("store"), "kv").expect("open");
    std::fs::create_dir_all(dir.join("raw")).expect("raw dir");
    let payload = postcard::to_allocvec(&v2_state()).expect("encode");
    let snapshot = Snapshot {
        version: 2,
        applied: 0,
        payload: payload.clone(),
    };
    Files {
        dir,
        payload,
        snapshot,
        store,
    }
});

mod save {
    use super::*;

    #[divan::bench(sample_count = 10)]
    fn a_std_fs(b: Bencher) {
        let f = &*FILES;
        let path = f.dir.join("raw").join("kv.bin");
        b.counter(divan::counter::BytesCount::new(f.payload.len()))
            .bench(|| {
                let mut file = std::fs::File::create(&path).expect("create");
                std::io::Write::write_all(&mut file, &f.payload).expect("write");
                file.sync_all().expect("sync");
            });
    }

    #[divan::bench(sample_count = 10)]
    fn b_file_store(b: Bencher) {
        let f = &*FILES;
        b.counter(divan::counter::BytesCount::new(f.payload.len()))
            .bench(|| f.store.write(&f.snapshot).expect("save"));
    }
}

mod load {
    use super::*;

    #[divan::bench(sample_count = 60)]
    fn a_std_fs(b: Bencher) {
        let f = &*FILES;
        let path = f.dir.join("raw").join("kv.bin");
        std::fs::write(&path, &f.payload).expect("write");
        b.counter(divan::counter::BytesCount::new(f.payload.len()))
            .bench(|| std::fs::read(&path).expect("read"));
    }

    #[divan::bench(sample_count = 60)]
    fn b_file_store(b: Bencher) {
        let f = &*FILES;
        f.store.write(&f.snapshot).expect("save");
        b.counter(divan::counter::BytesCount::new(f.payload.len()))
            .bench(|| f.store.read().expect("read").expect("exists"));
    }
}

fn main() {
    divan::main();
    let _ = std::fs::remove_dir_all(&FILES.dir);
}
