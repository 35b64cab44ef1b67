//! The coordinator's `/metrics` over real HTTP: every line parses as
//! Prometheus' text format, and the series say what the coordinator holds.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use upshift::Connection;
use upshift::coordinator::Coordinator;
use upshift::coordinator::api::{Heartbeat3, Outcome, Slot, v3};
use upshift::schedule::Registry;
use upshift::udb::RedbUdb;
use upshift::upgrade::NodeInfo;
use upshift_tests::cluster::temp_dir;
use upshift_tests::fleet::rolling;

/// One sample: its name, labels and value.
type Sample = (String, BTreeMap<String, String>, f64);

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses the text format strictly: `# HELP`/`# TYPE` lines, then samples
/// `name{label="value",…} number`; a family's samples follow its TYPE.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut typed = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_name(name), "{line}");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            typed = name.to_string();
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_name(name) && !help.is_empty(), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample: series value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let mut labels = BTreeMap::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
                    assert!(is_name(key), "{line}");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        match chars.next().expect("a closing quote") {
                            (_, '\\') => match chars.next().expect("an escape").1 {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            (i, '"') => break i,
                            (_, c) => value.push(c),
                        }
                    };
                    labels.insert(key.to_string(), value);
                    rest = after[end + 1..]
                        .strip_prefix(',')
                        .unwrap_or(&after[end + 1..]);
                }
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        assert!(is_name(name), "{line}");
        assert_eq!(name, typed, "a sample of {name} after TYPE {typed}");
        samples.push((name.to_string(), labels, value));
    }
    samples
}

async fn get(addr: std::net::SocketAddr, request: &[u8]) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    (head.to_string(), body.to_string())
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_serves_its_metrics_in_prometheus_text_format() {
    let dir = temp_dir("metrics");
    let coordinator = Coordinator::open(
        RedbUdb::open(dir.join("udb.redb")).expect("udb"),
        Registry::default(),
    )
    .expect("open");
    let metrics = coordinator
        .metrics()
        .serve("127.0.0.1:0")
        .await
        .expect("metrics");
    let (_server, listener) = coordinator.serve("127.0.0.1:0").await.expect("serve");
    let c = v3::Client::new(
        Connection::connect(listener.local_addr())
            .await
            .expect("connect"),
    )
    .with_deadline(Duration::from_secs(10));
    for id in ["n1", "n2", "n\"3"] {
        c.register(NodeInfo {
            id: id.into(),
            address: format!("10.0.0.1:{}", id.len()),
            group: "g".into(),
            service: "Kv".into(),
            version: 1,
        })
        .await
        .expect("rpc")
        .expect("registered");
    }
    let beat = |id: &str, healthy: bool| Heartbeat3 {
        id: id.into(),
        address: format!("10.0.0.1:{}", id.len()),
        version: 1,
        healthy,
        problem: (!healthy).then(|| "its health check fails".into()),
        calls: vec![(1, 40), (2, 2)],
    };
    c.heartbeat(beat("n1", true))
        .await
        .expect("rpc")
        .expect("beat");
    c.heartbeat(beat("n2", false))
        .await
        .expect("rpc")
        .expect("beat");
    let up = c
        .publish(rolling(1))
        .await
        .expect("rpc")
        .expect("published");
    assert_eq!(
        c.request_slot("n1".into(), up)
            .await
            .expect("rpc")
            .expect("slot"),
        Slot::Granted
    );
    c.report("n1".into(), up, Outcome::Upgraded { version: 2 })
        .await
        .expect("rpc")
        .expect("reported");

    let (head, body) = get(
        metrics.local_addr(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let samples = parse(&body);
    let nodes = "upshift_coordinator_nodes";
    assert_eq!(
        value(&samples, nodes, &[("version", "2"), ("state", "running")]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, nodes, &[("version", "1"), ("state", "unhealthy")]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, nodes, &[("version", "1"), ("state", "running")]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "upshift_coordinator_node_up", &[("node", "n\"3")]),
        Some(1.0),
        "a quote in a label is escaped"
    );
    assert_eq!(
        value(&samples, "upshift_coordinator_node_up", &[("node", "n2")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &samples,
            "upshift_coordinator_node_calls_total",
            &[("node", "n1"), ("call_version", "1")]
        ),
        Some(40.0)
    );
    let id = up.to_string();
    assert_eq!(
        value(
            &samples,
            "upshift_coordinator_rollout_state",
            &[("upgrade", &id), ("state", "active")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "upshift_coordinator_rollout_state",
            &[("upgrade", &id), ("state", "final")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &samples,
            "upshift_coordinator_rollout_nodes",
            &[("upgrade", &id), ("stage", "upgraded")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "upshift_coordinator_rollout_nodes",
            &[("upgrade", &id), ("stage", "waiting")]
        ),
        Some(2.0)
    );
    let commits = value(&samples, "upshift_coordinator_udb_commits_total", &[]).expect("commits");
    let requests = value(
        &samples,
        "upshift_coordinator_udb_committed_requests_total",
        &[],
    )
    .expect("requests");
    assert!(
        commits >= 1.0 && requests >= commits,
        "{commits} {requests}"
    );
    assert_eq!(
        value(&samples, "upshift_coordinator_udb_failing", &[]),
        Some(0.0)
    );
    assert!(value(&samples, "upshift_coordinator_events", &[]).expect("events") >= 6.0);

    // Anything else is refused, and an endless head is cut off.
    let (head, _) = get(metrics.local_addr(), b"GET /other HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, _) = get(metrics.local_addr(), b"POST /metrics HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    // 8 KiB without an end (all of it read, so the answer is not cut by a reset).
    let mut endless = b"GET /metrics HTTP/1.1\r\n".to_vec();
    endless.resize(8 * 1024, b'x');
    let (head, _) = get(metrics.local_addr(), &endless).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_its_metrics_in_prometheus_text_format() {
    use upshift::node::{Node, NodeConfig};
    use upshift::state::FileStore;
    use upshift_examples::kv;

    let dir = temp_dir("node-metrics");
    let store = FileStore::open(&dir, kv::state::NAME).expect("store");
    let node = Node::start(NodeConfig::new("n1"), store, kv::stages(), 1).expect("start");
    let listener = node.listen("127.0.0.1:0").await.expect("listen");
    let metrics = node.metrics().serve("127.0.0.1:0").await.expect("metrics");
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect");
    let v1 = kv::interface::v1::Client::new(conn.clone());
    let v2 = kv::interface::v2::Client::new(conn);
    v1.put("a".into(), "1".into()).await.expect("put");
    node.upgrade_to(2).await.expect("upgrade");
    for _ in 0..3 {
        v1.get("a".into()).await.expect("get");
    }
    v2.get("a".into()).await.expect("get");

    let (head, body) = get(metrics.local_addr(), b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let samples = parse(&body);
    assert_eq!(
        value(
            &samples,
            "upshift_node_version",
            &[("node", "n1"), ("service", "Kv")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&samples, "upshift_node_up", &[("node", "n1")]),
        Some(1.0)
    );
    let calls = "upshift_node_calls_total";
    assert_eq!(
        value(
            &samples,
            calls,
            &[("call_version", "1"), ("route", "past_so"), ("hops", "1")]
        ),
        Some(3.0),
        "v1 calls after the upgrade, through v1's past SO (the put before it counted at v1's object is gone with it)"
    );
    assert_eq!(
        value(
            &samples,
            calls,
            &[("call_version", "2"), ("route", "object"), ("hops", "0")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            calls,
            &[("call_version", "3"), ("route", "future_so"), ("hops", "1")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &samples,
            "upshift_node_call_errors_total",
            &[("call_version", "1"), ("route", "past_so"), ("hops", "1")]
        ),
        Some(0.0),
        "no call failed"
    );
    assert_eq!(
        value(&samples, "upshift_node_upgrade_pause_seconds_count", &[]),
        Some(1.0)
    );
    assert!(value(&samples, "upshift_node_upgrade_pause_seconds_max", &[]).expect("max") > 0.0);
    drop((metrics, listener, node));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_counts_its_slot_waits_and_upgrades() {
    use std::sync::Arc;
    use upshift::schedule::ScheduleSpec;
    use upshift_tests::cluster::{RunningCoordinator, RunningNode, wait_for};

    let dir = temp_dir("node-timings");
    let coordinator = RunningCoordinator::start(&dir, "127.0.0.1:0", Registry::default()).await;
    let healthy = Arc::new(|| true);
    let running = RunningNode::start(&dir, "n1", "kv", coordinator.addr(), healthy).await;
    let before = parse(&running.node.metrics().render());
    assert_eq!(
        value(&before, "upshift_node_slot_wait_seconds_count", &[]),
        Some(0.0)
    );
    wait_for(Duration::from_secs(30), "the node to register", || async {
        coordinator.status().await.nodes.len() == 1
    })
    .await;
    let def = upshift_tests::kv_upgrade(1, ScheduleSpec::Rolling { max_parallel: 1 });
    coordinator
        .client
        .publish(def)
        .await
        .expect("rpc")
        .expect("publish");
    wait_for(Duration::from_secs(30), "the upgrade", || async {
        running.node.version() == 2
    })
    .await;
    // Recorded when the upgrade returns, just after the switch.
    wait_for(Duration::from_secs(30), "the report", || async {
        let samples = parse(&running.node.metrics().render());
        value(&samples, "upshift_node_upgrade_seconds_count", &[]) == Some(1.0)
    })
    .await;
    let after = parse(&running.node.metrics().render());
    assert_eq!(
        value(&after, "upshift_node_slot_wait_seconds_count", &[]),
        Some(1.0)
    );
    let wait = value(&after, "upshift_node_slot_wait_seconds_max", &[]).expect("max");
    assert!((0.0..30.0).contains(&wait), "{wait}");
    assert!(value(&after, "upshift_node_upgrade_seconds_sum", &[]).expect("sum") > 0.0);
    assert_eq!(
        value(&after, "upshift_node_upgrade_failures_total", &[]),
        Some(0.0)
    );
    running.stop();
}
