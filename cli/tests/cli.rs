//! The CLI against a real coordinator process: every command, and each
//! error as one line with a non-zero exit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use upshift::Connection;
use upshift::coordinator::api::{self, Outcome, Slot};
use upshift::upgrade::NodeInfo;

const BIN: &str = env!("CARGO_BIN_EXE_upshift");

/// A coordinator started with `upshift coordinator`, killed on drop.
struct CoordinatorProcess {
    child: Child,
    addr: String,
}

impl Drop for CoordinatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_coordinator(label: &str) -> CoordinatorProcess {
    start_coordinator_with(label, Stdio::inherit())
}

/// The same, with the coordinator's standard error going to `stderr`.
fn start_coordinator_with(label: &str, stderr: Stdio) -> CoordinatorProcess {
    let (child, line) = spawn_coordinator(label, &[], stderr);
    let addr = line
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    CoordinatorProcess { child, addr }
}

/// `upshift coordinator` on a fresh UDB with `extra` arguments, and the
/// first line it prints.
fn spawn_coordinator(label: &str, extra: &[&str], stderr: Stdio) -> (Child, String) {
    let dir = std::env::temp_dir().join(format!("upshift-cli-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut child = Command::new(BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0"])
        .args(extra)
        .arg("--udb")
        .arg(dir.join("udb.redb"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start the coordinator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read its first line");
    (child, line)
}

fn upshift(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run upshift")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a failed command printed exactly one line containing `needle`.
fn one_line_error(out: &Output, code: i32, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line, got {err:?}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{err:?} lacks {needle:?}"
    );
}

async fn operator(addr: &str) -> api::v1::Client {
    api::v1::Client::new(Connection::connect(addr).await.expect("connect"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_a_rollout_and_reports_errors_in_one_line() {
    let coordinator = start_coordinator("rollout");
    let addr = coordinator.addr.as_str();

    let out = upshift(&["status", "-c", addr]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("no nodes registered"));

    let publish = |from: &str, to: &str, schedule: &str| {
        upshift(&[
            "publish",
            "-c",
            addr,
            "--service",
            "Kv",
            "--from",
            from,
            "--to",
            to,
            "--schedule",
            schedule,
        ])
    };
    one_line_error(
        &publish("1", "2", "rolling:1"),
        2,
        "no node of service \"Kv\" is registered",
    );

    // A node registers (as its agent would).
    let api = operator(addr).await;
    let info = NodeInfo {
        id: "node-a".into(),
        address: "127.0.0.1:1".into(),
        group: "kv".into(),
        service: "Kv".into(),
        version: 1,
    };
    api.register(info).await.expect("register");

    one_line_error(&publish("1", "3", "rolling:1"), 2, "skips a version");
    one_line_error(
        &publish("1", "2", "rolling:x"),
        2,
        "--schedule: `rolling:x`",
    );
    one_line_error(
        &publish("1", "2", "sometimes"),
        2,
        "unknown schedule term `sometimes`",
    );

    let out = publish("1", "2", "rolling:1,health:0");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "published upgrade #1");

    // Watch while the node takes its slot and reports.
    let watcher = Command::new(BIN)
        .args(["watch", "-c", addr, "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start watch");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        api.request_slot("node-a".into(), 1).await.expect("rpc"),
        Slot::Granted
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.report("node-a".into(), 1, Outcome::Upgraded { version: 2 })
        .await
        .expect("report");
    let watched = watcher.wait_with_output().expect("watch ends");
    let shown = text(&watched.stdout);
    assert!(watched.status.success(), "{shown}");
    assert!(
        shown.contains("0/1") && shown.contains("upgrading 1"),
        "{shown}"
    );
    assert!(
        shown.contains("1/1") && shown.trim_end().ends_with("final"),
        "{shown}"
    );

    let out = upshift(&["status", "-c", addr]);
    let status = text(&out.stdout);
    assert!(
        status.contains("node-a")
            && status.contains("v2")
            && status.contains("upgrade #1 Kv v1 -> v2: final"),
        "{status}"
    );

    // Pause, resume and abort a second upgrade; watching an aborted one fails with 3.
    assert!(publish("2", "3", "immediately").status.success());
    assert!(upshift(&["pause", "-c", addr, "2"]).status.success());
    one_line_error(
        &upshift(&["pause", "-c", addr, "2"]),
        2,
        "cannot Pause upgrade #2",
    );
    assert!(upshift(&["resume", "-c", addr, "2"]).status.success());
    assert!(upshift(&["abort", "-c", addr, "2"]).status.success());
    one_line_error(
        &upshift(&["watch", "-c", addr, "2"]),
        3,
        "upgrade #2 was aborted",
    );
    one_line_error(&upshift(&["watch", "-c", addr, "9"]), 2, "no upgrade #9");

    // The history's newest lines are in the status.
    let status = text(&upshift(&["status", "-c", addr]).stdout);
    assert!(
        status.contains("latest events") && status.contains("upgrade #2  operator: Abort"),
        "{status}"
    );

    // A node that is gone for good is forgotten, once silent for longer
    // than the coordinator's liveness window (3 s).
    one_line_error(
        &upshift(&["forget", "-c", addr, "node-z"]),
        2,
        "no node \"node-z\" is registered",
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let out = upshift(&["forget", "-c", addr, "node-a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "node node-a forgotten");
    let status = text(&upshift(&["status", "-c", addr]).stdout);
    assert!(
        status.contains("no nodes registered")
            && status.contains("node-a  forgotten: it ran Kv v2, last heard"),
        "{status}"
    );

    // The whole history, or one upgrade's, or one node's.
    let all = text(&upshift(&["history", "-c", addr]).stdout);
    let second = text(&upshift(&["history", "-c", addr, "--upgrade", "2"]).stdout);
    let of_node = text(&upshift(&["history", "-c", addr, "--node", "node-a"]).stdout);
    assert!(all.lines().count() > second.lines().count(), "{all}");
    assert!(
        all.lines().next().is_some_and(|l| l.starts_with("#1 ")),
        "oldest first: {all}"
    );
    assert!(
        second.lines().all(|l| l.contains("upgrade #2"))
            && second.contains("operator: Pause")
            && second.contains("operator: Abort"),
        "{second}"
    );
    assert!(
        of_node.contains("registered at v1") && of_node.contains("forgotten"),
        "{of_node}"
    );
    assert!(of_node.lines().all(|l| l.contains("node-a")), "{of_node}");
}

#[test]
fn an_unreachable_coordinator_is_one_line() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    one_line_error(
        &upshift(&["status", "-c", &addr]),
        2,
        &format!("cannot reach the coordinator at {addr}"),
    );
}

#[test]
fn bad_arguments_are_rejected_by_the_parser() {
    let out = upshift(&["publish", "--from", "one"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("invalid value 'one'"),
        "{}",
        text(&out.stderr)
    );
}

/// Logs are on by default: a coordinator process given a malformed frame
/// says so on standard error without any configuration.
#[test]
fn the_coordinator_logs_warnings_by_default() {
    use std::io::{Read, Write};
    let mut coordinator = start_coordinator_with("logs", Stdio::piped());
    let mut raw = std::net::TcpStream::connect(&coordinator.addr).expect("connect");
    raw.write_all(&[0, 0, 0, 4, b'H', b'T', b'T', b'P'])
        .expect("send a frame that is not upshift");
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    std::thread::sleep(Duration::from_millis(200));
    let _ = coordinator.child.kill();
    let mut stderr = String::new();
    coordinator
        .child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(
        stderr.contains("WARN") && stderr.contains("closing a connection"),
        "stderr: {stderr}"
    );
}

/// A zero-length UDB file is refused at start, not taken for an empty UDB.
#[test]
fn a_coordinator_refuses_an_empty_udb_file() {
    let dir = std::env::temp_dir().join(format!("upshift-cli-empty-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let udb = dir.join("udb.redb");
    std::fs::write(&udb, b"").expect("write");
    let out = Command::new(BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--udb"])
        .arg(&udb)
        .output()
        .expect("run");
    one_line_error(&out, 2, "the file is empty");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_coordinator_serves_metrics_when_asked() {
    let (mut child, line) =
        spawn_coordinator("metrics", &["--metrics", "127.0.0.1:0"], Stdio::null());
    let url = line
        .strip_prefix("metrics at http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr = url.trim().trim_end_matches("/metrics").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    std::io::Write::write_all(&mut stream, b"GET /metrics HTTP/1.1\r\n\r\n").expect("request");
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).expect("response");
    let _ = child.kill();
    let _ = child.wait();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.contains("\nupshift_coordinator_events 0\n")
            && response.contains("# TYPE upshift_coordinator_udb_commits_total counter"),
        "{response}"
    );
}

/// `publish --dry-run` publishes nothing and prints the waves the schedule
/// would make; a real rollout of the same upgrade then goes in that order
/// (by group and by wave; within a wave, nodes go in the order they ask).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_order_a_real_rollout_takes() {
    let coordinator = start_coordinator("dry-run");
    let addr = coordinator.addr.as_str();
    let api = operator(addr).await;
    let group_of = |id: &str| id[..1].to_string();
    for id in ["a1", "a2", "b1", "b2"] {
        api.register(NodeInfo {
            id: id.into(),
            address: format!("127.0.0.1:1{}", &id[1..]),
            group: group_of(id),
            service: "Kv".into(),
            version: 1,
        })
        .await
        .expect("register");
    }
    let publish = |dry: bool| {
        let mut args = vec![
            "publish",
            "-c",
            addr,
            "--service",
            "Kv",
            "--from",
            "1",
            "--to",
            "2",
            "--schedule",
            "groups:b>a,rolling:1",
        ];
        if dry {
            args.extend(["--dry-run", "--assume-upgrade-secs", "10"]);
        }
        upshift(&args)
    };
    let out = publish(true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let waves: Vec<&str> = shown
        .lines()
        .filter(|l| l.trim_start().starts_with("wave "))
        .collect();
    assert_eq!(waves.len(), 4, "{shown}");
    let planned: Vec<String> = waves
        .iter()
        .map(|l| group_of(l.split_whitespace().last().expect("a node")))
        .collect();
    assert_eq!(planned, ["b", "b", "a", "a"], "{shown}");
    assert!(waves[1].contains("+10s"), "{shown}");
    assert!(
        shown.contains("final after 40 s; nothing was published")
            && shown.contains("(until then: 1 of 1 slots of group \"b\" are in use)"),
        "{shown}"
    );
    let status = text(&upshift(&["status", "-c", addr]).stdout);
    assert!(
        !status.contains("upgrade #"),
        "the dry run published nothing: {status}"
    );

    // The real rollout: every node asks in turn, last id first.
    assert!(publish(false).status.success());
    let mut granted = Vec::new();
    for _ in 0..20 {
        for id in ["b2", "b1", "a2", "a1"] {
            if granted.iter().any(|g: &String| g == id) {
                continue;
            }
            if api.request_slot(id.into(), 1).await.expect("rpc") == Slot::Granted {
                granted.push(id.to_string());
                api.report(id.into(), 1, Outcome::Upgraded { version: 2 })
                    .await
                    .expect("report");
            }
        }
    }
    let real: Vec<String> = granted.iter().map(|id| group_of(id)).collect();
    assert_eq!(real, planned, "granted in order {granted:?}");
}
