//! The server's resource limits against peers that misbehave, over real
//! loopback sockets: a peer that never reads its replies, too many
//! connections, a frame fed too slowly, an idle connection. Each time a
//! healthy client beside it is still served.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use upshift::wire;
use upshift::{CallError, Connection, Server, ServerConfig};
use upshift_examples::kv::interface::{SERVICE, v3};
use upshift_tests::{ProbeObject, probe};

async fn kv_server(config: ServerConfig) -> (Server, upshift::Listener) {
    let server = Server::with_config(upshift_examples::kv::service(3, false), config);
    let listener = server.listen("127.0.0.1:0").await.expect("bind");
    (server, listener)
}

/// A v3 `get(key)` call frame.
fn get_frame(call_id: u64, key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let start = wire::begin_call(&mut out, call_id, SERVICE, 3, 0).expect("a valid name");
    let mut out = postcard::to_extend(&(key,), out).expect("encodes");
    wire::finish(&mut out, start);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_its_replies_stops_being_read() {
    let config = ServerConfig {
        max_queued_reply_bytes: 1 << 20,
        ..ServerConfig::default()
    };
    let (server, listener) = kv_server(config).await;
    let healthy = v3::Client::new(
        Connection::connect(listener.local_addr())
            .await
            .expect("connect"),
    );
    let big = "x".repeat(512 * 1024);
    healthy
        .put("big".into(), big.clone(), None)
        .await
        .expect("put");
    let served_before = server.service(SERVICE).expect("kv").served(3);
    let rss_before = rss_bytes();

    // 200 gets of 512 KiB, 100 MiB of replies, and not one byte read.
    let calls = 200u64;
    let mut greedy = TcpStream::connect(listener.local_addr())
        .await
        .expect("connect");
    let frames: Vec<u8> = (1..=calls).flat_map(|id| get_frame(id, "big")).collect();
    greedy.write_all(&frames).await.expect("send the calls");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Unbounded, the replies alone would be 100 MiB; the bound (1 MiB), the
    // kernel's socket buffers and a reply per worker thread are far less.
    let grew = rss_bytes().saturating_sub(rss_before);
    assert!(
        grew < 40 << 20,
        "the node grew by {} MiB for a peer that reads nothing",
        grew >> 20
    );

    // The healthy client beside it is served at once.
    let started = std::time::Instant::now();
    let got = healthy.get("big".into()).await.expect("get");
    assert_eq!(got.map(|e| e.value.len()), Some(big.len()));
    assert!(started.elapsed() < Duration::from_secs(5));

    // Once the greedy peer reads, the rest of its calls are served.
    let mut replies = 0;
    let mut buf = Vec::new();
    while replies < calls {
        let read = wire::read_frame(&mut greedy, wire::DEFAULT_MAX_FRAME, &mut buf);
        match tokio::time::timeout(Duration::from_secs(20), read).await {
            Ok(Ok(true)) => replies += 1,
            other => panic!("reply {replies} did not come: {other:?}"),
        }
    }
    assert_eq!(
        server.service(SERVICE).expect("kv").served(3) - served_before,
        calls + 1
    );
}

#[tokio::test]
async fn connections_past_the_limits_are_refused_with_a_reason_and_nothing_runs() {
    let config = ServerConfig {
        max_connections_per_peer: 2,
        ..ServerConfig::default()
    };
    let (server, listener) = kv_server(config).await;
    let addr = listener.local_addr();
    let mut kept = Vec::new();
    for i in 0..2 {
        let c = v3::Client::new(Connection::connect(addr).await.expect("connect"));
        c.put(format!("k{i}"), "v".into(), None)
            .await
            .expect("within the limit");
        kept.push(c);
    }
    let third = v3::Client::new(
        Connection::connect(addr)
            .await
            .expect("the TCP connect works"),
    );
    match third.put("k3".into(), "v".into(), None).await {
        Err(e @ CallError::Unreachable(_)) => {
            assert!(e.not_executed(), "{e}");
            assert!(e.to_string().contains("limit per peer"), "{e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        kept[0].get("k3".into()).await.expect("get"),
        None,
        "the refused call did not run"
    );
    // A connection freed makes room again.
    drop(kept.pop());
    let again = v3::Client::new(Connection::connect(addr).await.expect("connect"));
    let mut result = again.put("k3".into(), "v".into(), None).await;
    for _ in 0..50 {
        if result.is_ok() {
            break;
        }
        // The server notices the dropped connection asynchronously.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let retry = v3::Client::new(Connection::connect(addr).await.expect("connect"));
        result = retry.put("k3".into(), "v".into(), None).await;
    }
    result.expect("served once a connection closed");
    drop(server);
}

#[tokio::test]
async fn the_node_wide_connection_limit_holds() {
    let config = ServerConfig {
        max_connections: 3,
        ..ServerConfig::default()
    };
    let (_server, listener) = kv_server(config).await;
    let addr = listener.local_addr();
    let mut kept = Vec::new();
    for _ in 0..3 {
        let c = v3::Client::new(Connection::connect(addr).await.expect("connect"));
        c.get("a".into()).await.expect("within the limit");
        kept.push(c);
    }
    let over = v3::Client::new(Connection::connect(addr).await.expect("connect"));
    let refused = over.get("a".into()).await.expect_err("over the limit");
    assert!(refused.to_string().contains("max_connections"), "{refused}");
}

#[tokio::test]
async fn a_frame_fed_too_slowly_closes_its_connection_only() {
    let config = ServerConfig {
        frame_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let (_server, listener) = kv_server(config).await;
    let mut slow = TcpStream::connect(listener.local_addr())
        .await
        .expect("connect");
    // Half a length prefix, then nothing.
    slow.write_all(&[0, 0]).await.expect("write");
    let healthy = v3::Client::new(
        Connection::connect(listener.local_addr())
            .await
            .expect("connect"),
    );
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the slow connection is closed: {closed:?}"
    );
    healthy
        .get("a".into())
        .await
        .expect("the healthy client is served");
}

#[tokio::test]
async fn an_idle_connection_closes_but_one_waiting_for_a_call_does_not() {
    let config = ServerConfig {
        idle_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = Server::with_config(probe::v1::service(ProbeObject::new(1)), config);
    let listener = server.listen("127.0.0.1:0").await.expect("bind");
    let mut idle = TcpStream::connect(listener.local_addr())
        .await
        .expect("connect");
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection is closed: {closed:?}"
    );
    // A call that takes five idle timeouts is answered on its connection.
    let busy = probe::v1::Client::new(
        Connection::connect(listener.local_addr())
            .await
            .expect("connect"),
    );
    assert_eq!(busy.sleep(1000).await.expect("answered"), 1000);
}

/// This process's resident memory, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A TTL past the end of time is kept forever: no overflow, no panic (it was
/// `now + ttl * 1000`).
#[tokio::test]
async fn a_ttl_past_the_end_of_time_never_expires() {
    let (_server, listener) = kv_server(ServerConfig::default()).await;
    let c = v3::Client::new(
        Connection::connect(listener.local_addr())
            .await
            .expect("connect"),
    );
    c.put("k".into(), "v".into(), Some(u64::MAX))
        .await
        .expect("stored");
    let got = c.get("k".into()).await.expect("get").expect("kept");
    assert_eq!(got.value, "v");
}
