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

    // Formatted as `cargo fmt` wants it.
    let formatted = Command::new(env!("CARGO"))
        .args(["fmt", "--check", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("run cargo fmt");
    assert!(formatted.status.success(), "{}", text(&formatted.stdout));

    // Its own target directory: the one running this test may be locked.
    let tested = Command::new(env!("CARGO"))
        .args(["test", "--offline", "--all-targets", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", tmp.join("upshift-new-target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo test");
    assert!(
        tested.status.success(),
        "{}\n{}",
        text(&tested.stdout),
        text(&tested.stderr)
    );
    assert!(
        text(&tested.stdout).contains("a_node_answers_and_keeps_what_it_acknowledged ... ok"),
        "{}",
        text(&tested.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
