//! A child process for the crash tests: it saves or upgrades the key-value
//! state in a directory and stops dead at a chosen step of a chosen save,
//! where the parent kills it with SIGKILL.
//!
//! Usage: `state-child <dir> save <step> <save-number>` saves v1 state with
//! one more key each time (key0, key1, ...) and prints `ACK n` after save n
//! returns; `state-child <dir> upgrade <step>` upgrades the state in `dir`
//! to v3; `state-child <dir> rollback <step>` rolls the v3 state in `dir`
//! back to v2 (its downgrade, then `FileStore::roll_back`). At `<step>` of
//! the chosen save it prints `AT <step>` and waits to be killed; `none`
//! never stops.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use upshift::state::{FileStore, StateStore, Step};
use upshift_examples::kv::state;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, mode, step) = (&args[1], args[2].as_str(), args[3].as_str());
    let crash_on: u32 = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(0);
    let step = Step::ALL.into_iter().find(|s| format!("{s:?}") == step);
    let saves = Arc::new(AtomicU32::new(0));
    let counter = saves.clone();
    let store = FileStore::open(dir, state::NAME)
        .unwrap_or_else(|e| panic!("open the store: {e}"))
        .with_step_hook(move |at| {
            if at == Step::TempCreated {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            if Some(at) == step && counter.load(Ordering::SeqCst) == crash_on {
                println!("AT {at:?}");
                std::io::stdout().flush().expect("flush");
                // Wait for SIGKILL from the parent.
                loop {
                    std::thread::park();
                }
            }
        });
    match mode {
        "save" => {
            let mut s = state::v1::Store::default();
            for n in 0..10u32 {
                s.items.insert(format!("key{n}"), format!("value{n}"));
                store.save(&s).expect("save");
                println!("ACK {n}");
                std::io::stdout().flush().expect("flush");
            }
        }
        "upgrade" => {
            let upgraded = store.upgrade::<state::v3::Store>().expect("upgrade");
            let keys = upgraded.map_or(0, |s| s.entries.len());
            println!("UPGRADED {keys}");
        }
        "rollback" => {
            use upshift::state::{Reversible, SnapshotStore};
            let v3 = store
                .load::<state::v3::Store>()
                .expect("load")
                .expect("a v3 state");
            let keys = v3.entries.len();
            let v2 = v3
                .downgrade(&mut upshift::state::Dropped::default())
                .expect("downgrade");
            let snapshot = upshift::state::Snapshot {
                version: 2,
                applied: 0,
                payload: postcard::to_allocvec(&v2).expect("encode"),
            };
            store.roll_back(&snapshot).expect("roll back");
            let _ = SnapshotStore::read(&store);
            println!("ROLLED BACK {keys}");
        }
        other => panic!("unknown mode {other}"),
    }
}
