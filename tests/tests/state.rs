//! Versioned state over real files: transform chains, failing transforms,
//! future and foreign snapshots, and bad bytes. Every failure is a typed error
//! that names the file, and the snapshot on disk stays as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use upshift::state::{
    FileStore, SnapshotStore, StateError, StateStore, StoreError, TransformError, Upgrade,
};
use upshift_examples::kv::{StoreV3, interface::v3::Kv as _, state};
use upshift_tests::cluster::temp_dir;

/// A state with a fallible field transform, a renamed variant that gains a
/// field, and a changed type inside a `Vec`.
#[upshift::state(name = "ledger")]
pub mod ledger {
    #[version(1)]
    #[derive(Debug, PartialEq)]
    pub struct Ledger {
        pub accounts: Vec<Account>,
        pub kind: Kind,
    }

    #[version(1)]
    #[derive(Debug, PartialEq)]
    pub struct Account {
        pub owner: String,
        pub cents: i64,
    }

    #[version(1)]
    #[derive(Debug, PartialEq)]
    pub enum Kind {
        Personal,
        Business { vat: String },
        Legacy(u8),
    }

    #[version(2)]
    #[derive(Debug, PartialEq)]
    pub struct Ledger {
        pub accounts: Vec<Account>,
        pub kind: Kind,
    }

    #[version(2)]
    #[derive(Debug, PartialEq)]
    pub struct Account {
        pub owner: String,
        #[upshift(from = "cents", with = unsigned)]
        pub amount: u64,
    }

    #[version(2)]
    #[derive(Debug, PartialEq)]
    pub enum Kind {
        Personal,
        #[upshift(from = "Business")]
        Company {
            vat: String,
            #[upshift(default)]
            employees: u32,
        },
        Legacy(u8),
    }

    fn unsigned(cents: i64) -> Result<u64, String> {
        u64::try_from(cents).map_err(|_| format!("balance {cents} is negative"))
    }
}

/// A state whose v2 is computed from the whole v1 value.
#[upshift::state(name = "counter")]
pub mod counter {
    #[version(1)]
    #[derive(Debug, PartialEq)]
    pub struct Counter {
        pub hits: Vec<u64>,
    }

    #[version(2)]
    #[derive(Debug, PartialEq)]
    #[upshift(transform = summarize)]
    pub struct Counter {
        pub total: u64,
        pub samples: u32,
    }

    fn summarize(old: v1::Counter) -> v2::Counter {
        v2::Counter {
            total: old.hits.iter().sum(),
            samples: old.hits.len() as u32,
        }
    }
}

/// The same name as `ledger`, but this binary only knows v2 onwards. (Its
/// own lock file: two definitions of one name in one crate would collide.)
#[upshift::state(name = "ledger", lock = "ledger-v2-only.lock")]
pub mod ledger_v2_only {
    #[version(2)]
    #[derive(Debug)]
    pub struct Ledger {
        pub accounts: Vec<u8>,
    }
}

/// The one snapshot file in `dir` (beside the store's lock file).
fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_none_or(|e| e != "lock"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().expect("one file")
}

fn v1_kv(n: usize) -> state::v1::Store {
    let mut s = state::v1::Store::default();
    for i in 0..n {
        s.items.insert(format!("key{i}"), format!("value{i}"));
    }
    s
}

#[test]
fn kv_state_transforms_from_v1_to_v3_through_every_attribute() {
    let dir = temp_dir("kv-chain");
    let store = FileStore::open(&dir, state::NAME).expect("open");
    store.save(&v1_kv(3)).expect("save v1");

    let v2: state::v2::Store = store.load().expect("load").expect("exists");
    assert_eq!(v2.evictions, 0, "new field takes its default");
    assert_eq!(
        v2.items["key1"],
        state::v2::Entry {
            value: "value1".into(),
            expires_at_ms: None
        },
        "with = never_expire"
    );

    let v3: state::v3::Store = store.load().expect("load").expect("exists");
    assert_eq!(v3.entries.len(), 3, "renamed from `items`");
    let e = &v3.entries["key2"];
    assert_eq!(
        (e.value.as_str(), e.expiry, e.hits),
        ("value2", state::v3::Expiry::Never, 0)
    );

    // A v2 snapshot with an expiry keeps it through the nested Entry transform.
    let mut with_ttl = v2.clone();
    with_ttl.items.get_mut("key0").expect("key0").expires_at_ms = Some(42);
    with_ttl.evictions = 7;
    store.save(&with_ttl).expect("save v2");
    let v3: state::v3::Store = store.load().expect("load").expect("exists");
    assert_eq!(v3.entries["key0"].expiry, state::v3::Expiry::AtUnixMs(42));
    assert_eq!(v3.evictions, 7, "unchanged field moves over");
    assert_eq!(
        only_file(&dir).file_name().expect("name"),
        "kv.v2.snap",
        "a save of v2 replaced v1"
    );
}

#[test]
fn upgrade_commits_the_new_version_and_removes_the_old() {
    let dir = temp_dir("kv-upgrade");
    let store = FileStore::open(&dir, state::NAME).expect("open");
    store.save(&v1_kv(5)).expect("save v1");
    let v3 = store
        .upgrade::<state::v3::Store>()
        .expect("upgrade")
        .expect("exists");
    assert_eq!(v3.entries.len(), 5);
    assert_eq!(only_file(&dir).file_name().expect("name"), "kv.v3.snap");
    // Saving an older version over it is refused.
    match store.save(&v1_kv(1)) {
        Err(StoreError::Downgrade {
            saving: 1,
            existing: 3,
            ..
        }) => {}
        other => panic!("expected Downgrade, got {other:?}"),
    }
}

#[test]
fn nested_enum_and_vec_transforms() {
    let old = ledger::v1::Ledger {
        accounts: vec![
            ledger::v1::Account {
                owner: "ann".into(),
                cents: 250,
            },
            ledger::v1::Account {
                owner: "bob".into(),
                cents: 0,
            },
        ],
        kind: ledger::v1::Kind::Business { vat: "DE1".into() },
    };
    let new = ledger::v2::Ledger::upgrade(old).expect("transform");
    assert_eq!(
        new.accounts[0],
        ledger::v2::Account {
            owner: "ann".into(),
            amount: 250
        }
    );
    assert_eq!(
        new.kind,
        ledger::v2::Kind::Company {
            vat: "DE1".into(),
            employees: 0
        }
    );
    let legacy = ledger::v2::Kind::upgrade(ledger::v1::Kind::Legacy(3)).expect("transform");
    assert_eq!(legacy, ledger::v2::Kind::Legacy(3));
}

#[test]
fn container_transform_sees_the_whole_old_value() {
    let old = counter::v1::Counter {
        hits: vec![1, 2, 3],
    };
    assert_eq!(
        counter::v2::Counter::upgrade(old).expect("transform"),
        counter::v2::Counter {
            total: 6,
            samples: 3
        }
    );
}

#[test]
fn a_failing_transform_names_step_type_and_field_and_leaves_the_file() {
    let dir = temp_dir("ledger-fail");
    let store = FileStore::open(&dir, ledger::NAME).expect("open");
    let old = ledger::v1::Ledger {
        accounts: vec![ledger::v1::Account {
            owner: "eve".into(),
            cents: -5,
        }],
        kind: ledger::v1::Kind::Personal,
    };
    store.save(&old).expect("save v1");
    let file = only_file(&dir);
    let before = std::fs::read(&file).expect("read");
    match store.upgrade::<ledger::v2::Ledger>() {
        Err(StoreError::State {
            path,
            source: StateError::Transform(e),
        }) => {
            assert_eq!(path, file);
            assert_eq!(
                e,
                TransformError {
                    from: 1,
                    to: 2,
                    type_name: "Account",
                    field: Some("amount"),
                    reason: "balance -5 is negative".into(),
                }
            );
            assert_eq!(
                e.to_string(),
                "transform v1 -> v2 of `Account`, field `amount` failed: balance -5 is negative"
            );
        }
        other => panic!("expected a transform error, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&file).expect("read"),
        before,
        "the v1 snapshot is untouched"
    );
    assert_eq!(
        store
            .load::<ledger::v1::Ledger>()
            .expect("load")
            .expect("exists"),
        old
    );
}

#[test]
fn state_from_a_newer_version_is_refused_not_truncated() {
    let dir = temp_dir("future");
    let store = FileStore::open(&dir, state::NAME).expect("open");
    store.upgrade::<state::v3::Store>().expect("nothing yet");
    store.save(&state::v3::Store::default()).expect("save v3");
    match store.load::<state::v2::Store>() {
        Err(StoreError::State {
            source: StateError::FutureVersion { found: 3, known: 2 },
            ..
        }) => {}
        other => panic!("expected FutureVersion, got {other:?}"),
    }
}

#[test]
fn state_older_than_the_oldest_declared_version_is_refused() {
    let dir = temp_dir("too-old");
    let store = FileStore::open(&dir, ledger::NAME).expect("open");
    store
        .save(&ledger::v1::Ledger {
            accounts: vec![],
            kind: ledger::v1::Kind::Personal,
        })
        .expect("save v1");
    match store.load::<ledger_v2_only::v2::Ledger>() {
        Err(StoreError::State {
            source:
                StateError::TooOld {
                    found: 1,
                    oldest: 2,
                },
            ..
        }) => {}
        other => panic!("expected TooOld, got {other:?}"),
    }
}

/// Writes a v1 kv snapshot, then lets `damage` change the file's bytes.
fn damaged(label: &str, damage: impl FnOnce(&mut Vec<u8>)) -> (FileStore, PathBuf, Vec<u8>) {
    let dir = temp_dir(label);
    let store = FileStore::open(&dir, state::NAME).expect("open");
    store.save(&v1_kv(4)).expect("save");
    let file = only_file(&dir);
    let mut bytes = std::fs::read(&file).expect("read");
    damage(&mut bytes);
    std::fs::write(&file, &bytes).expect("write damaged file");
    (store, file, bytes)
}

fn assert_untouched(file: &Path, bytes: &[u8]) {
    assert_eq!(
        std::fs::read(file).expect("read"),
        bytes,
        "a bad snapshot is never replaced"
    );
}

#[test]
fn a_flipped_payload_byte_is_a_checksum_error_naming_the_file() {
    let (store, file, bytes) = damaged("flip", |b| {
        let last = b.len() - 1;
        b[last] ^= 0x40;
    });
    match store.load::<state::v3::Store>() {
        Err(StoreError::Corrupt { path, detail }) => {
            assert_eq!(path, file);
            assert!(detail.contains("checksum"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_untouched(&file, &bytes);
}

#[test]
fn truncated_files_are_reported_at_every_length() {
    let (store, file, full) = damaged("truncate", |_| {});
    for len in 0..full.len() {
        std::fs::write(&file, &full[..len]).expect("write");
        match store.load::<state::v1::Store>() {
            Err(StoreError::Truncated { path, .. }) => assert_eq!(path, file),
            other => panic!("length {len}: expected Truncated, got {other:?}"),
        }
        assert_untouched(&file, &full[..len]);
    }
}

#[test]
fn trailing_bytes_are_corruption() {
    let (store, file, bytes) = damaged("trailing", |b| b.extend_from_slice(b"junk"));
    assert!(matches!(
        store.load::<state::v1::Store>(),
        Err(StoreError::Corrupt { .. })
    ));
    assert_untouched(&file, &bytes);
}

#[test]
fn a_foreign_file_is_refused() {
    let (store, file, bytes) = damaged("foreign", |b| {
        b.clear();
        b.extend_from_slice(b"{\"items\": {}}\n");
    });
    match store.load::<state::v1::Store>() {
        Err(StoreError::Foreign { path }) => assert_eq!(path, file),
        other => panic!("expected Foreign, got {other:?}"),
    }
    assert_untouched(&file, &bytes);
}

#[test]
fn another_format_version_is_refused() {
    let (store, _file, _) = damaged("format", |b| b[8] = 9);
    assert!(matches!(
        store.load::<state::v1::Store>(),
        Err(StoreError::Format {
            found: 9,
            known: 2,
            ..
        })
    ));
}

#[test]
fn a_snapshot_of_another_state_is_refused() {
    let dir = temp_dir("wrong-state");
    let ledger_store = FileStore::open(&dir, ledger::NAME).expect("open");
    ledger_store
        .save(&ledger::v1::Ledger {
            accounts: vec![],
            kind: ledger::v1::Kind::Personal,
        })
        .expect("save");
    // Someone renames the ledger's snapshot to the kv store's file name.
    std::fs::rename(dir.join("ledger.v1.snap"), dir.join("kv.v1.snap")).expect("rename");
    let store = FileStore::open(&dir, state::NAME).expect("open");
    match store.load::<state::v1::Store>() {
        Err(StoreError::WrongState {
            expected, found, ..
        }) => assert_eq!((expected.as_str(), found.as_str()), ("kv", "ledger")),
        other => panic!("expected WrongState, got {other:?}"),
    }
}

#[test]
fn a_payload_that_does_not_decode_is_a_typed_error() {
    let dir = temp_dir("undecodable");
    let store = FileStore::open(&dir, state::NAME).expect("open");
    // A valid file whose payload is not a v1 Store.
    store
        .write(&upshift::state::Snapshot {
            version: 1,
            applied: 0,
            payload: vec![0xff, 0xff, 0xff],
        })
        .expect("write");
    match store.load::<state::v3::Store>() {
        Err(StoreError::State {
            source: StateError::Decode { version: 1, .. },
            ..
        }) => {}
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[test]
fn an_unfinished_save_is_discarded_on_read() {
    let dir = temp_dir("tmp-left");
    let store = FileStore::open(&dir, state::NAME).expect("open");
    store.save(&v1_kv(2)).expect("save");
    std::fs::write(dir.join("kv.v1.snap.tmp"), b"half a save").expect("write tmp");
    assert_eq!(
        store
            .load::<state::v1::Store>()
            .expect("load")
            .expect("exists"),
        v1_kv(2)
    );
    assert!(!dir.join("kv.v1.snap.tmp").exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(64)))]

    /// Every key written at v1 is readable, with its value, from a v3 node.
    #[test]
    fn every_v1_key_is_readable_in_v3(items in prop::collection::btree_map(".{0,12}", ".{0,24}", 0..40)) {
        let dir = temp_dir("prop");
        let store = FileStore::open(&dir, state::NAME).expect("open");
        store.save(&state::v1::Store { items: items.clone() }).expect("save");
        let v3 = store.upgrade::<state::v3::Store>().expect("upgrade").expect("exists");
        prop_assert_eq!(v3.entries.len(), items.len());
        let node = StoreV3::new(upshift::state::Durable::in_memory(v3));
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        for (k, v) in &items {
            let got = rt.block_on(node.get(k.clone())).map(|e| e.value);
            prop_assert_eq!(got.as_ref(), Some(v));
        }
    }

    /// Arbitrary file contents never panic the reader: they load or fail typed.
    #[test]
    fn arbitrary_snapshot_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        let dir = temp_dir("fuzz");
        let store = FileStore::open(&dir, state::NAME).expect("open");
        std::fs::write(dir.join("kv.v1.snap"), &bytes).expect("write");
        let _ = store.load::<state::v3::Store>();
        prop_assert_eq!(std::fs::read(dir.join("kv.v1.snap")).expect("read"), bytes);
    }
}

#[test]
fn generated_transforms_reach_through_maps() {
    let mut old: BTreeMap<String, state::v2::Entry> = BTreeMap::new();
    old.insert(
        "a".into(),
        state::v2::Entry {
            value: "1".into(),
            expires_at_ms: Some(5),
        },
    );
    let new: BTreeMap<String, state::v3::Entry> = Upgrade::upgrade(old).expect("transform");
    assert_eq!(new["a"].expiry, state::v3::Expiry::AtUnixMs(5));
}

/// Property-test cases: `PROPTEST_CASES` when set (a deeper local run, say
/// `PROPTEST_CASES=1000000`), else `default`, the budget the suite keeps.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
