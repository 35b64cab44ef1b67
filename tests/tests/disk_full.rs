//! The coordinator's UDB on a disk that fills up: a small tmpfs mounted by
//! the test (it needs root, as CI has; elsewhere it says why it skips). A
//! write the disk refuses fails its request with a typed error and is never
//! answered as done; once space is freed, the same coordinator records again,
//! without a restart.

use std::path::{Path, PathBuf};
use std::process::Command;

use upshift::coordinator::Coordinator;
use upshift::coordinator::api::v2::Coordinator as _;
use upshift::coordinator::api::{PublishError, RequestError};
use upshift::schedule::Registry;
use upshift::udb::RedbUdb;
use upshift::upgrade::{NodeInfo, Upgrade};

/// A tmpfs of `size` mounted at a fresh directory, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("upshift-disk-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(SmallDisk(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Fills the disk with a file until the disk is full.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("create the filler");
    let chunk = [0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

fn node(i: usize) -> NodeInfo {
    NodeInfo {
        id: format!("node-{i:04}-{}", "x".repeat(200)),
        address: "127.0.0.1:1".into(),
        group: "g".into(),
        service: "Kv".into(),
        version: 1,
    }
}

#[tokio::test]
async fn a_full_disk_fails_requests_and_the_coordinator_recovers_when_space_returns() {
    let disk = match SmallDisk::mount("4m") {
        Ok(disk) => disk,
        Err(why) => {
            println!("skipped: cannot mount a small tmpfs here ({why})");
            return;
        }
    };
    let udb = RedbUdb::open(disk.path().join("udb.redb")).expect("open");
    let c = Coordinator::open(udb, Registry::default()).expect("opens");
    c.register(node(0)).await.expect("recorded");

    let filler = fill(disk.path());
    // Registrations until the disk refuses: each one is answered, as an
    // error or as recorded, never lost silently.
    let mut refused = None;
    for i in 1..5000 {
        match c.register(node(i)).await {
            Ok(()) => {}
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (at, error) = refused.expect("the full disk refuses a write");
    assert!(
        matches!(&error, RequestError::Unrecorded(u) if !u.detail.is_empty()),
        "{error:?}"
    );
    let status = c.status().await;
    assert!(
        !status.nodes.contains_key(&node(at).id),
        "the refused registration is not shown"
    );
    let publish = c
        .publish(Upgrade {
            service: "Kv".into(),
            from: 1,
            to: 2,
            schedule: "rolling:1".parse().expect("schedule"),
            artifact: "in-process".into(),
            notes: String::new(),
        })
        .await;
    assert!(
        matches!(publish, Err(PublishError::Unrecorded(_))),
        "{publish:?}"
    );
    let status = c.status().await;
    assert!(status.rollouts.is_empty(), "nothing published");
    assert!(
        status
            .udb_failing
            .as_deref()
            .is_some_and(|why| why.contains("udb.redb")),
        "the coordinator says it is unhealthy: {:?}",
        status.udb_failing
    );

    // Space returns: the same coordinator records again.
    std::fs::remove_file(filler).expect("free the space");
    c.register(node(at))
        .await
        .expect("recorded once the disk has room");
    let status = c.status().await;
    assert!(status.nodes.contains_key(&node(at).id));
    assert_eq!(status.udb_failing, None, "healthy again");
    drop(c);

    // And what it acknowledged is there after a restart.
    let udb = RedbUdb::open(disk.path().join("udb.redb")).expect("reopen");
    let c = Coordinator::open(udb, Registry::default()).expect("restarts");
    let status = c.status().await;
    assert!(status.nodes.contains_key(&node(0).id));
    assert!(status.nodes.contains_key(&node(at).id));
}
