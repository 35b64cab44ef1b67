//! The dashboard in a real browser: `upshift coordinator --dashboard` as a
//! process, four kv nodes with agents, a rollout published by the CLI, and
//! headless Chromium (Debian's, through ChromeDriver) reading the page:
//! versions and progress as they change, calls by caller version and route, a click on pause that pauses the
//! rollout in the coordinator, a click on resume, the approval gate holding
//! the last node until a click on approve lets the rollout end final, a
//! click on rollback that takes every node of the next upgrade back, and a
//! screenshot saved as a test artifact.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use upshift::upgrade::RolloutState;
use upshift_tests::browser::Browser;
use upshift_tests::cluster::{RunningNode, nodes_at, status_of, temp_dir, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_upshift");
const WAIT: Duration = Duration::from_secs(60);

/// Starts the coordinator with its dashboard; the process and both addresses.
fn start(dir: &std::path::Path) -> (Child, String, String) {
    let mut child = Command::new(BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--udb"])
        .arg(dir.join("udb.redb"))
        .args(["--dashboard", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the coordinator");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let (mut coordinator, mut dashboard) = (String::new(), String::new());
    let mut line = String::new();
    while dashboard.is_empty() {
        line.clear();
        assert!(
            out.read_line(&mut line).expect("read") > 0,
            "the coordinator stopped"
        );
        if let Some(rest) = line.strip_prefix("coordinator listening on ") {
            coordinator = rest.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(rest) = line.strip_prefix("dashboard at ") {
            dashboard = rest.trim().to_string();
        }
    }
    (child, coordinator, dashboard)
}

/// A POST as another page would send it: without the dashboard's token.
/// `upshift publish` of Kv vFROM -> vFROM+1 with `schedule`, as an operator would.
fn publish(addr: &str, from: u32, schedule: &str) {
    let (from, to) = (from.to_string(), (from + 1).to_string());
    let out = Command::new(BIN)
        .args(["publish", "-c", addr, "--service", "Kv", "--from", &from])
        .args(["--to", &to, "--schedule", schedule])
        .output()
        .expect("publish");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn post_without_token(dashboard: &str) -> String {
    let authority = dashboard
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority).expect("connect");
    let body = r#"{"upgrade":1,"action":"abort"}"#;
    write!(
        stream,
        "POST /api/control HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_rollout_live_and_pauses_it_on_a_click() {
    let dir = temp_dir("dashboard");
    let (mut coordinator, addr, url) = start(&dir);
    let sock: std::net::SocketAddr = addr.parse().expect("address");
    let mut nodes = Vec::new();
    for i in 0..4 {
        let healthy = Arc::new(|| true);
        nodes.push(RunningNode::start(&dir, &format!("n{i}"), "kv", sock, healthy).await);
    }
    wait_for(WAIT, "four nodes to register", || async {
        status_of(sock).await.is_some_and(|s| s.nodes.len() == 4)
    })
    .await;

    // v1 and v2 callers of n0 (at v1): its object and its future SO.
    let conn = upshift::Connection::connect(nodes[0].listener.local_addr())
        .await
        .expect("connect");
    let v1 = upshift_examples::kv::interface::v1::Client::new(conn.clone());
    let v2 = upshift_examples::kv::interface::v2::Client::new(conn);
    for _ in 0..3 {
        v1.get("k".into()).await.expect("v1 get");
        v2.get("k".into()).await.expect("v2 get");
    }

    let browser = tokio::task::spawn_blocking(Browser::start)
        .await
        .expect("a browser");
    let browser = Arc::new(browser);
    let page = browser.clone();
    let open = url.clone();
    tokio::task::spawn_blocking(move || {
        page.open(&open);
        for i in 0..4 {
            page.wait_text(&format!("#node-n{i} .version"), WAIT, |t| t == "v1");
        }
        page.wait_text("#calls-v1 .routes", WAIT, |t| t == "object 3");
        page.wait_text("#calls-v2 .routes", WAIT, |t| t == "future SO 3");
    })
    .await
    .expect("the page shows every node at v1, and n0's calls by route");

    // One node at a time, each healthy for 2 s before the next: slow
    // enough to pause half way.
    publish(&addr, 1, "rolling:1,health:2,approval:3");
    let page = browser.clone();
    tokio::task::spawn_blocking(move || {
        page.wait_text("#rollout-1 .state", WAIT, |t| t == "Active");
        page.wait_text("#rollout-1 .schedule", WAIT, |t| t == "rolling:1,health:2");
        page.wait_text("#rollout-1 .gates code", WAIT, |t| t == "approval:3");
        // Live: the progress moves without a reload.
        page.wait_text("#rollout-1 .progress", WAIT, |t| t.starts_with("1/4"));
        page.click(r#"#rollout-1 button[data-action="pause"]"#);
        page.wait_text("#rollout-1 .state", WAIT, |t| t == "Paused");
    })
    .await
    .expect("the page pauses the rollout");
    let paused = status_of(sock).await.expect("status");
    assert_eq!(paused.upgrades[&1].state, RolloutState::Paused);
    assert!(
        nodes_at(&paused, 2) < 4,
        "the rollout ended before the pause"
    );
    let pause_event = paused
        .events
        .iter()
        .any(|e| e.upgrade == Some(1) && e.what.to_lowercase().contains("paus"));
    assert!(
        pause_event,
        "the pause is in the history: {:?}",
        paused.events
    );

    let refused = post_without_token(&url);
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");

    let page = browser.clone();
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let saved = shot.clone();
    tokio::task::spawn_blocking(move || {
        // The timeline has a v2 segment for the node that upgraded.
        let segments = page.script("return document.querySelectorAll('#timeline rect.v2').length;");
        assert!(
            segments.as_u64().unwrap_or(0) >= 1,
            "no v2 segment: {segments}"
        );
        page.screenshot(&saved);
        page.click(r#"#rollout-1 button[data-action="resume"]"#);
        // Three nodes go; the approval gate holds the fourth.
        page.wait_text("#rollout-1 .waiting", WAIT, |t| t.contains("approval"));
        page.wait_text("#rollout-1 .progress", WAIT, |t| t.starts_with("3/4"));
        page.click(r#"#rollout-1 button[data-action="approve"]"#);
        page.wait_text("#rollout-1 .gates", WAIT, |t| t.contains("approved"));
        page.wait_text("#rollout-1 .state", WAIT, |t| t == "Final");
        page.wait_text("#rollout-1 .progress", WAIT, |t| t.starts_with("4/4"));
        for i in 0..4 {
            page.wait_text(&format!("#node-n{i} .version"), WAIT, |t| t == "v2");
        }
    })
    .await
    .expect("the page resumes the rollout to its end");
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    eprintln!("screenshot: {}", shot.display());
    assert!(nodes.iter().all(|n| n.node.version() == 2));

    // v2 -> v3, held open once every node went by an approval over all
    // four; a click on rollback takes them back to v2 with their state.
    publish(&addr, 2, "rolling:2,approval:4");
    let page = browser.clone();
    tokio::task::spawn_blocking(move || {
        page.wait_text("#rollout-2 .progress", WAIT, |t| t.starts_with("4/4"));
        page.wait_text("#rollout-2 .state", WAIT, |t| t == "Active");
        page.click(r#"#rollout-2 button[data-action="rollback"]"#);
        page.wait_text("#rollout-2 .state", WAIT, |t| t == "Aborted");
        page.wait_text("#rollout-3 .title", WAIT, |t| t.contains("v3 → v2"));
        page.wait_text("#rollout-3 .state", WAIT, |t| t == "Final");
        page.wait_text("#rollout-3 .progress", WAIT, |t| t.starts_with("4/4 at v2"));
        for i in 0..4 {
            page.wait_text(&format!("#node-n{i} .version"), WAIT, |t| t == "v2");
        }
    })
    .await
    .expect("the page rolls the upgrade back");
    assert!(nodes.iter().all(|n| n.node.version() == 2));

    drop(browser);
    for node in nodes {
        node.stop();
    }
    let _ = coordinator.kill();
    let _ = coordinator.wait();
}
