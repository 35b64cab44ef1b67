//! `upshift new` scaffolds a crate that builds, and whose own test (a node
//! on loopback, called and restarted) passes, offline, against this
//! checkout's runtime.

use std::process::Command;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_scaffolded_service_builds_and_passes_its_test() {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.join(format!("upshift-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let runtime = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime");
    let new = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_upshift"))
            .args(["new", name, "--path"])
            .arg(&dir)
            .arg("--upshift")
            .arg(&runtime)
            .output()
            .expect("run upshift new")
    };
    let made = new("tally-svc");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let root = dir.join("tally-svc");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "src/main.rs",
        "examples/client.rs",
        "tests/node.rs",
        "README.md",
    ] {
        assert!(root.join(file).exists(), "{file} missing");
    }
    assert!(
        std::fs::read_to_string(root.join("src/lib.rs"))
            .expect("lib.rs")
            .contains("pub trait TallySvc"),
        "the service is named after the crate"
    );
    // Refused: the crate exists; a name that is not a crate name.
    assert_eq!(new("tally-svc").status.code(), Some(2));
    let bad = new("Tally Svc");
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("not a crate name"),
        "{}",
        text(&bad.stderr)
    );

    // Formatted as `cargo fmt` wants it, and its tests pass.
    let tested = fmt_and_test(&root, tmp, "as scaffolded");
    assert!(
        tested.contains("a_node_answers_and_keeps_what_it_acknowledged ... ok"),
        "{tested}"
    );

    // Two versions added, one after the other: each builds, its upgrade
    // runs on a real node and keeps the state, and the generated
    // conformance tests pass on the copies.
    std::fs::write(root.join("tests/upgrade.rs"), UPGRADE_TEST).expect("write the upgrade test");
    for (version, test) in [(2, "upgrades_to_v2"), (3, "upgrades_to_v3")] {
        let added = Command::new(env!("CARGO_BIN_EXE_upshift"))
            .args(["new-version", "--path"])
            .arg(&root)
            .output()
            .expect("run upshift new-version");
        let said = text(&added.stdout);
        assert!(added.status.success(), "{said}{}", text(&added.stderr));
        assert!(
            said.contains(&format!("added v{version}")) && !said.contains("to do:"),
            "{said}"
        );
        let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("lib.rs");
        let prev = version - 1;
        for needle in [
            format!("#[version({version})]\n    pub trait TallySvc"),
            format!("pub struct ObjectV{version}"),
            format!("impl Journaled for state::v{version}::Counters"),
            format!("impl upshift::state::Follows for state::v{version}::Counters"),
            format!("interface::v{prev}::Past for interface::v{prev}::PastSo<N>"),
            format!("interface::v{version}::Future for interface::v{version}::FutureSo<P>"),
            format!("durable_stage(|s: Durable<state::v{version}::Counters>|"),
        ] {
            assert!(lib.contains(&needle), "{needle} missing:\n{lib}");
        }
        let out = fmt_and_test(&root, tmp, &format!("after adding v{version}"));
        for passed in [
            "a_node_answers_and_keeps_what_it_acknowledged ... ok",
            "every_upgrade_conforms ... ok",
        ] {
            assert!(out.contains(passed), "{passed}: {out}");
        }
        assert!(out.contains(&format!("{test} ... ok")), "{out}");
    }
    // A third run on the same file adds v4: the tool reads what it wrote.
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("lib.rs");
    assert!(lib.contains("ObjectV3") && !lib.contains("ObjectV4"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Checks the crate at `root` is formatted as `cargo fmt` wants, runs its
/// tests offline, and returns what they printed.
fn fmt_and_test(root: &std::path::Path, tmp: &std::path::Path, when: &str) -> String {
    let formatted = Command::new(env!("CARGO"))
        .args(["fmt", "--check", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("run cargo fmt");
    assert!(
        formatted.status.success(),
        "{when}: {}",
        text(&formatted.stdout)
    );
    // Its own target directory: the one running this test may be locked.
    let tested = Command::new(env!("CARGO"))
        .args(["test", "--offline", "--all-targets", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", tmp.join("upshift-new-target"))
        .env("UPSHIFT_CONFORMANCE_CASES", "64")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo test");
    let out = text(&tested.stdout);
    assert!(
        tested.status.success(),
        "{when}:\n{out}\n{}",
        text(&tested.stderr)
    );
    out
}

/// A test the scaffold does not have: the node upgrades in process to each
/// version the scaffold has, keeping what it acknowledged; and the
/// conformance tests of every neighbouring pair of stages.
const UPGRADE_TEST: &str = r#"use tally_svc::interface::v1;
use upshift::node::{Node, NodeConfig};
use upshift::state::FileStore;
use upshift::{Connection, RetryPolicy};

async fn upgrade_through(newest: u32) {
    let dir = std::env::temp_dir().join(format!("tally-upgrade-{newest}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = FileStore::open(&dir, tally_svc::state::NAME).expect("state directory");
    let node = Node::start(NodeConfig::new("n1"), store, tally_svc::stages(), 1).expect("start");
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect");
    let client = v1::Client::new(conn).with_retry(RetryPolicy::default());
    assert_eq!(client.add("a".into(), 2).await.expect("add"), 2);
    for version in 2..=newest {
        node.upgrade_to(version).await.expect("upgrade");
        assert_eq!(node.version(), version);
        // A v1 caller, through the past SOs, sees what it wrote.
        assert_eq!(
            client.add("a".into(), 1).await.expect("add"),
            version as u64 + 1
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn upgrades_to_v2() {
    upgrade_through(2).await;
}

#[tokio::test]
async fn upgrades_to_v3() {
    if tally_svc::stages().len() >= 3 {
        upgrade_through(3).await;
    }
}

#[test]
fn every_upgrade_conforms() {
    upshift::conformance::Conformance::new(tally_svc::stages()).check();
}
"#;
