//! The coordinator's UDB and a node's state on a disk that fills up: a
//! small tmpfs mounted by the test (it needs root, as CI has; elsewhere it
//! says why it skips). A write the disk refuses fails its request with a
//! typed error and is never answered as done; once space is freed, the same
//! coordinator records again, without a restart, and a node comes back with
//! every write it acknowledged.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;
use upshift::coordinator::Coordinator;
use upshift::coordinator::api::v6::Coordinator as _;
use upshift::coordinator::api::{self, PublishError, PublishError3, RequestError3};
use upshift::node::{Node, NodeConfig};
use upshift::schedule::Registry;
use upshift::state::FileStore;
use upshift::udb::RedbUdb;
use upshift::upgrade::{NodeInfo, Upgrade};
use upshift::{CallError, Connection};
use upshift_examples::kv;
use upshift_examples::kv::interface::v1;
use upshift_tests::cluster::wait_for;

/// A tmpfs of `size` mounted at a fresh directory, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(label: &str, size: &str) -> Result<Self, String> {
        let dir =
            std::env::temp_dir().join(format!("upshift-disk-full-{label}-{}", std::process::id()));
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
        // Lazily: a node's tasks may still hold files on it until the
        // test's runtime stops; the mount must not outlive the test.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
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
    let disk = match SmallDisk::mount("udb", "4m") {
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
        matches!(&error, RequestError3::Unrecorded(u) if !u.detail.is_empty()),
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
        matches!(publish, Err(PublishError3::V2(PublishError::Unrecorded(_)))),
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

/// A key-value node on `dir`, serving on loopback, and a v1 client of it.
async fn serve(dir: &Path) -> (Node, upshift::Listener, v1::Client) {
    let store = FileStore::open(dir, kv::state::NAME).expect("open");
    let node =
        Node::start(NodeConfig::new("on-a-small-disk"), store, kv::stages(), 1).expect("start");
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect");
    (node, listener, v1::Client::new(conn))
}

/// Puts `key` through a v1 client: `Ok` when acknowledged.
async fn put(client: &v1::Client, key: &str) -> Result<(), CallError> {
    client.put(key.into(), format!("value of {key}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_fills_stops_acknowledging_and_loses_nothing() {
    let disk = match SmallDisk::mount("node", "2m") {
        Ok(disk) => disk,
        Err(why) => {
            println!("skipped: cannot mount a small tmpfs here ({why})");
            return;
        }
    };
    let dir = disk.path().join("node");
    let (node, listener, client) = serve(&dir).await;
    put(&client, "before").await.expect("acknowledged");
    assert_eq!(node.problem(), None);

    let filler = fill(disk.path());
    // Puts until the disk refuses one: each is acknowledged or refused with
    // the reason, and after the first refusal every later one is refused.
    let mut acked = vec!["before".to_string()];
    let mut refused = None;
    for i in 0..100_000 {
        let key = format!("k{i}");
        match put(&client, &key).await {
            Ok(()) if refused.is_none() => acked.push(key),
            Ok(()) => panic!("{key} was acknowledged after a refusal"),
            Err(CallError::Unavailable(why)) => {
                refused.get_or_insert(why);
                if i > acked.len() + 3 {
                    break;
                }
            }
            Err(other) => panic!("{key}: {other}"),
        }
    }
    let why = refused.expect("the full disk refuses a write");
    assert!(why.contains("could not be written"), "{why}");
    assert!(
        node.problem()
            .is_some_and(|p| p.contains("No space left on device")),
        "the node says why it is unhealthy: {:?}",
        node.problem()
    );
    // Space returns, but the node stays failed until it restarts: a journal
    // whose last sync failed cannot be trusted.
    std::fs::remove_file(filler).expect("free the space");
    assert!(matches!(
        put(&client, "later").await,
        Err(CallError::Unavailable(_))
    ));

    // Restarted, it has every write it acknowledged, and takes writes again.
    drop((client, listener, node));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_node, _listener, client) = serve(&dir).await;
    for key in &acked {
        let got = client.get(key.clone()).await.expect("get");
        assert_eq!(got, Some(format!("value of {key}")), "{key} is lost");
    }
    put(&client, "after a restart").await.expect("acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_checkpoint_makes_the_node_unhealthy_and_refuse_writes() {
    let disk = match SmallDisk::mount("checkpoint", "2m") {
        Ok(disk) => disk,
        Err(why) => {
            println!("skipped: cannot mount a small tmpfs here ({why})");
            return;
        }
    };
    let (node, listener, client) = serve(&disk.path().join("node")).await;
    put(&client, "k").await.expect("acknowledged");
    node.checkpoint().await.expect("a checkpoint with room");

    let _filler = fill(disk.path());
    let error = node
        .checkpoint()
        .await
        .expect_err("no room for the snapshot");
    let problem = node.problem().expect("unhealthy after a failed checkpoint");
    assert!(problem.starts_with("a checkpoint failed: "), "{problem}");
    assert!(problem.contains(&error.to_string()), "{problem}");
    match put(&client, "k2").await {
        Err(CallError::Unavailable(why)) => assert_eq!(why, problem),
        other => panic!("a write after a failed checkpoint: {other:?}"),
    }

    // The coordinator hears why, and its status says so.
    let coordinator =
        Coordinator::open(upshift::udb::MemoryUdb::new(), Registry::default()).expect("open");
    let (_server, at) = coordinator.serve("127.0.0.1:0").await.expect("serve");
    let _agent = node.run_agent(at.local_addr(), listener.local_addr().to_string());
    let operator =
        api::v3::Client::new(Connection::connect(at.local_addr()).await.expect("connect"));
    wait_for(Duration::from_secs(10), "the node's heartbeat", || async {
        operator.status().await.is_ok_and(|s| {
            s.nodes
                .get("on-a-small-disk")
                .is_some_and(|n| n.problem.is_some())
        })
    })
    .await;
    let seen = operator.status().await.expect("status").nodes["on-a-small-disk"].clone();
    assert!(!seen.healthy);
    assert_eq!(seen.problem.as_deref(), Some(problem.as_str()));
}
