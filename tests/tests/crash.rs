//! Crash safety with real processes: a child saving or upgrading state is
//! killed with SIGKILL at every step of a save, and the state on disk must
//! load as one consistent version with every acknowledged write present.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use upshift::state::{FileStore, StateStore, Step};
use upshift_examples::kv::state;
use upshift_tests::cluster::temp_dir;

/// Runs the child until it prints `AT <step>` (then kills it) or exits.
/// Returns the acknowledged save numbers and whether it was killed.
fn run_child(dir: &Path, args: &[&str]) -> (Vec<u32>, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_state-child"))
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut acks = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the child's output");
        if let Some(n) = line.strip_prefix("ACK ") {
            acks.push(n.parse().expect("a number"));
        } else if line.starts_with("AT ") {
            child.kill().expect("SIGKILL the child");
            killed = true;
            break;
        }
    }
    let status = child.wait().expect("reap the child");
    if !killed {
        assert!(status.success(), "the child failed: {status}");
    }
    (acks, killed)
}

/// The files of the state directory but its lock file.
fn snapshot_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != "kv.lock")
        .collect();
    names.sort();
    names
}

#[test]
fn a_save_killed_at_any_step_keeps_every_acknowledged_write() {
    for step in Step::ALL {
        // Kill during the fourth save (keys 0..=3), after three acknowledged ones.
        let dir = temp_dir(&format!("save-{step:?}"));
        let (acks, killed) = run_child(&dir, &["save", &format!("{step:?}"), "4"]);
        assert!(killed, "the child did not reach {step:?}");
        assert_eq!(acks, vec![0, 1, 2], "{step:?}");

        let store = FileStore::open(&dir, state::NAME).expect("open");
        let loaded = store
            .load::<state::v1::Store>()
            .expect("loads after the crash")
            .expect("state exists");
        for n in 0..=2 {
            assert_eq!(
                loaded.items.get(&format!("key{n}")),
                Some(&format!("value{n}")),
                "{step:?}: acknowledged key{n}"
            );
        }
        // One consistent version: the last committed save, or the one in flight if its rename happened.
        let committed = matches!(step, Step::Renamed | Step::DirSynced | Step::OldRemoved);
        assert_eq!(
            loaded.items.len(),
            if committed { 4 } else { 3 },
            "{step:?}"
        );
        assert_eq!(
            snapshot_files(&dir),
            vec!["kv.v1.snap"],
            "{step:?}: reading cleans up"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn an_upgrade_killed_at_any_step_leaves_one_consistent_version() {
    for step in Step::ALL {
        let dir = temp_dir(&format!("upgrade-{step:?}"));
        {
            let store = FileStore::open(&dir, state::NAME).expect("open");
            let mut v1 = state::v1::Store::default();
            for n in 0..100 {
                v1.items.insert(format!("key{n}"), format!("value{n}"));
            }
            store.save(&v1).expect("seed v1");
        }

        let (_, killed) = run_child(&dir, &["upgrade", &format!("{step:?}"), "1"]);
        assert!(killed, "the child did not reach {step:?}");
        // The killed child's lock went with it.
        let store = FileStore::open(&dir, state::NAME).expect("open");

        // Whatever is on disk, v1 or v3, it loads as v3 with every key.
        let (snapshot, _) = upshift::state::SnapshotStore::read(&store)
            .expect("read")
            .expect("state exists");
        let committed = matches!(step, Step::Renamed | Step::DirSynced | Step::OldRemoved);
        assert_eq!(snapshot.version, if committed { 3 } else { 1 }, "{step:?}");
        let loaded = store
            .load::<state::v3::Store>()
            .expect("loads")
            .expect("exists");
        assert_eq!(loaded.entries.len(), 100, "{step:?}");
        for n in 0..100 {
            let entry = &loaded.entries[&format!("key{n}")];
            assert_eq!(entry.value, format!("value{n}"));
            assert_eq!(entry.expiry, state::v3::Expiry::Never);
        }
        let expected = if committed {
            "kv.v3.snap"
        } else {
            "kv.v1.snap"
        };
        assert_eq!(
            snapshot_files(&dir),
            vec![expected],
            "{step:?}: exactly one version after reading"
        );

        // Running the upgrade again completes it.
        drop(store);
        let (_, killed) = run_child(&dir, &["upgrade", "none"]);
        assert!(!killed);
        assert_eq!(snapshot_files(&dir), vec!["kv.v3.snap"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_rollback_killed_at_any_step_leaves_one_consistent_version() {
    for step in Step::ALL {
        let dir = temp_dir(&format!("rollback-{step:?}"));
        {
            let store = FileStore::open(&dir, state::NAME).expect("open");
            let mut v1 = state::v1::Store::default();
            for n in 0..100 {
                v1.items.insert(format!("key{n}"), format!("value{n}"));
            }
            store.save(&v1).expect("seed v1");
            store.upgrade::<state::v3::Store>().expect("to v3");
        }

        let (_, killed) = run_child(&dir, &["rollback", &format!("{step:?}"), "1"]);
        assert!(killed, "the child did not reach {step:?}");
        let store = FileStore::open(&dir, state::NAME).expect("open");
        let (snapshot, _) = upshift::state::SnapshotStore::read(&store)
            .expect("read")
            .expect("state exists");
        // Committed only once the newer snapshot is gone.
        let committed = step == Step::OldRemoved;
        assert_eq!(snapshot.version, if committed { 2 } else { 3 }, "{step:?}");
        // And recorded by then, so that a start at the newest version
        // stays at v2 (a record beside an uncommitted rollback is ignored).
        if committed {
            assert_eq!(store.rolled_back_to().expect("read"), Some(2), "{step:?}");
        }
        let expected = if committed {
            vec!["kv.rolled-back", "kv.v2.snap"]
        } else {
            vec!["kv.v3.snap"]
        };
        assert_eq!(
            snapshot_files(&dir),
            expected,
            "{step:?}: exactly one version after reading"
        );
        // Every key, whichever version is on disk.
        let loaded = store
            .load::<state::v3::Store>()
            .expect("loads")
            .expect("exists");
        assert_eq!(loaded.entries.len(), 100, "{step:?}");
        assert!(
            (0..100).all(|n| loaded.entries[&format!("key{n}")].value == format!("value{n}")),
            "{step:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Two processes on one state directory would overwrite each other's
/// commits: the second one to open it gets a typed error naming the first,
/// and the directory is free again once the first lets go (or dies).
#[test]
fn a_state_directory_has_one_owner() {
    let dir = temp_dir("owner");
    let store = FileStore::open(&dir, state::NAME).expect("open");
    let me = format!("is locked by process {} on ", std::process::id());

    let again = FileStore::open(&dir, state::NAME).expect_err("a second open in this process");
    assert!(
        matches!(&again, upshift::state::StoreError::Locked { .. }),
        "{again:?}"
    );
    let message = again.to_string();
    assert!(
        message.starts_with("the state directory is in use: ") && message.contains(&me),
        "{message}"
    );
    assert!(
        message.ends_with("; stop that node first, or give this one its own directory"),
        "{message}"
    );

    let other = Command::new(env!("CARGO_BIN_EXE_state-child"))
        .arg(&dir)
        .args(["save", "none"])
        .output()
        .expect("run the child");
    assert!(!other.status.success(), "a second process must not start");
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(stderr.contains(&me), "{stderr}");

    drop(store);
    let (acks, killed) = run_child(&dir, &["save", "none"]);
    assert!(!killed);
    assert_eq!(
        acks.len(),
        10,
        "the directory is free once its owner is gone"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
