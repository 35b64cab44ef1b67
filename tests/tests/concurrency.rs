//! Many calls in flight on one connection, deadlines, and a panicking
//! service object, over loopback TCP.

use std::time::Duration;

use tokio::task::JoinSet;
use upshift::{CallError, Connection, Server};
use upshift_examples::kv::interface::v2;
use upshift_tests::{ProbeObject, kv_node, probe};

const CALLS: u64 = 1000;

async fn probe_node(callers: usize) -> (upshift::Listener, Connection) {
    let server = Server::new(probe::v1::service(ProbeObject::new(callers)));
    let listener = server.listen("127.0.0.1:0").await.expect("bind");
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect");
    (listener, conn)
}

/// Each call waits at a barrier until all 1,000 have reached the node, so
/// this passes only if the connection carries them all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_are_in_flight_at_once_on_one_connection() {
    let (_listener, conn) = probe_node(CALLS as usize).await;
    let client = probe::v1::Client::new(conn).with_deadline(Duration::from_secs(20));
    let mut calls = JoinSet::new();
    for i in 0..CALLS {
        let client = client.clone();
        calls.spawn(async move { (i, client.rendezvous(i).await) });
    }
    let mut answered = 0;
    while let Some(done) = calls.join_next().await {
        let (i, result) = done.expect("task");
        assert_eq!(
            result.expect("rendezvous"),
            i,
            "reply went to the wrong call"
        );
        answered += 1;
    }
    assert_eq!(answered, CALLS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_writes_then_reads_on_one_connection() {
    let (_s, _l, conn) = kv_node(2, false).await;
    let client = v2::Client::new(conn);
    let mut calls = JoinSet::new();
    for i in 0..CALLS {
        let client = client.clone();
        calls.spawn(async move {
            client.put(format!("k{i}"), format!("v{i}"), None).await?;
            client.get(format!("k{i}")).await.map(|v| (i, v))
        });
    }
    while let Some(done) = calls.join_next().await {
        let (i, value) = done.expect("task").expect("call");
        assert_eq!(value, Some(format!("v{i}")));
    }
}

#[tokio::test]
async fn a_call_past_its_deadline_fails_and_the_connection_stays_usable() {
    let (_listener, conn) = probe_node(1).await;
    let client = probe::v1::Client::new(conn.clone());
    let slow = client.clone().with_deadline(Duration::from_millis(50));
    match slow.sleep(2_000).await {
        Err(CallError::DeadlineExceeded(d)) => assert_eq!(d, Duration::from_millis(50)),
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert_eq!(client.inc(41).await.expect("inc after a timeout"), 42);
}

#[tokio::test]
async fn a_panicking_object_gives_an_internal_error_and_the_node_keeps_serving() {
    let (_listener, conn) = probe_node(1).await;
    let client = probe::v1::Client::new(conn);
    match client.panic("boom".into()).await {
        Err(CallError::Internal(msg)) => assert!(msg.contains("panicked"), "{msg}"),
        other => panic!("expected Internal, got {other:?}"),
    }
    assert_eq!(client.inc(1).await.expect("inc after a panic"), 2);
}

/// A call in flight when the node's end of the connection goes away fails
/// with `ConnectionClosed` at once instead of waiting for its deadline.
#[tokio::test]
async fn calls_in_flight_fail_promptly_when_the_connection_drops() {
    let (client_io, node_io) = tokio::io::duplex(1024);
    let conn = Connection::from_io(client_io, Default::default());
    let client = probe::v1::Client::new(conn).with_deadline(Duration::from_secs(30));
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.inc(1).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(node_io);
    match call.await.expect("task") {
        Err(CallError::ConnectionClosed(_)) => {}
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    // A call made after the close is not sent at all: it certainly did not run.
    match client.inc(2).await {
        Err(e @ CallError::Unreachable(_)) => assert!(e.not_executed()),
        other => panic!("a call on a closed connection must fail at once, got {other:?}"),
    }
}

#[tokio::test]
async fn in_memory_transport_serves_the_same_calls() {
    let server = Server::new(upshift_examples::kv::service(3, false));
    let conn = server.connect_in_memory();
    let c = upshift_examples::kv::interface::v1::Client::new(conn);
    c.put("k".into(), "v".into()).await.expect("put");
    assert_eq!(c.get("k".into()).await.expect("get"), Some("v".into()));
}

#[cfg(unix)]
#[tokio::test]
async fn unix_sockets_serve_the_same_calls() {
    let dir = std::env::temp_dir().join(format!("upshift-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("kv.sock");
    let _ = std::fs::remove_file(&path);
    let server = Server::new(upshift_examples::kv::service(2, false));
    let listener = server.listen_unix(&path).expect("bind unix socket");
    let conn = Connection::connect_unix(listener.path(), Default::default())
        .await
        .expect("connect");
    let c = upshift_examples::kv::interface::v1::Client::new(conn);
    c.put("k".into(), "v".into()).await.expect("put");
    assert_eq!(c.get("k".into()).await.expect("get"), Some("v".into()));
    drop(listener);
    assert!(
        !path.exists(),
        "dropping the listener removes the socket file"
    );
}

#[tokio::test]
async fn service_names_longer_than_the_wire_allows_are_refused_before_sending() {
    let server = Server::new(probe::v1::service(ProbeObject::new(1)));
    let conn = server.connect_in_memory();
    let long = "s".repeat(256);
    let result: Result<u64, CallError> = conn
        .call(&long, 1, 3, &(1u64,), &conn.default_options())
        .await;
    match result {
        Err(CallError::Encode(msg)) => assert!(msg.contains("1 to 255 bytes"), "{msg}"),
        other => panic!("expected Encode, got {other:?}"),
    }
}

/// Regression: connections cached their service lookup and kept calling a
/// replaced service; an install must be seen by the next call.
#[tokio::test]
async fn an_installed_service_is_seen_by_open_connections() {
    let server = Server::new(upshift_examples::kv::service(1, false));
    let conn = server.connect_in_memory();
    let client = upshift_examples::kv::interface::v1::Client::new(conn.clone());
    client.put("k".into(), "v".into()).await.expect("put");
    assert_eq!(conn.node_version(), Some(1));
    server.install(upshift_examples::kv::service(3, false));
    assert_eq!(
        client.get("k".into()).await.expect("get"),
        None,
        "the new service has its own state"
    );
    assert_eq!(conn.node_version(), Some(3));
}
