//! Bad input on the wire, over loopback TCP: every malformed frame gets a
//! typed error reply or a closed connection, and the node keeps serving.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use upshift::wire::{self, Frame, Status};
use upshift_examples::kv::interface::{SERVICE, v1};
use upshift_tests::kv_node;

/// A raw TCP peer that speaks frames by hand.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connect"),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next reply: (call id, node version, status, payload).
    async fn reply(&mut self) -> (u64, u32, Status, Vec<u8>) {
        let mut body = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            wire::read_frame(&mut self.stream, wire::DEFAULT_MAX_FRAME, &mut body),
        );
        assert!(
            read.await.expect("a reply within 5 s").expect("a frame"),
            "connection closed"
        );
        match wire::decode(&body).expect("a well-formed reply") {
            Frame::Reply(r) => (r.call_id, r.node_version, r.status, r.payload.to_vec()),
            Frame::Call(c) => panic!("node sent a call: {c:?}"),
        }
    }

    /// Asserts the node closes the connection (after any replies already sent).
    async fn closed(&mut self) {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut buf));
        match read.await.expect("the node closes within 5 s") {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("expected the node to close the connection, got {n} bytes"),
        }
    }
}

fn call(call_id: u64, service: &str, version: u32, method: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let start = wire::begin_call(&mut out, call_id, service, version, method)
        .expect("test service names are 1 to 255 bytes");
    out.extend_from_slice(payload);
    wire::finish(&mut out, start);
    out
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// A node at v2 and a healthy client that must keep working throughout.
async fn node() -> (upshift::Server, upshift::Listener, v1::Client) {
    let (server, listener, conn) = kv_node(2, false).await;
    (server, listener, v1::Client::new(conn))
}

async fn still_serves(healthy: &v1::Client) {
    healthy
        .put("alive".into(), "yes".into())
        .await
        .expect("healthy put");
    assert_eq!(
        healthy.get("alive".into()).await.expect("healthy get"),
        Some("yes".into())
    );
}

#[tokio::test]
async fn unknown_service_version_and_method_get_typed_replies() {
    let (_s, listener, healthy) = node().await;
    let mut raw = Raw::connect(listener.local_addr()).await;
    let get_args = postcard::to_allocvec(&("k",)).expect("encode");

    raw.send(&call(1, "NoSuchService", 1, 0, &get_args)).await;
    let (id, _, status, msg) = raw.reply().await;
    assert_eq!((id, status), (1, Status::UnknownService));
    assert!(String::from_utf8_lossy(&msg).contains("NoSuchService"));

    raw.send(&call(2, SERVICE, 9, 0, &get_args)).await;
    assert_eq!(
        raw.reply().await,
        (2, 2, Status::VersionUnsupported, vec![])
    );

    raw.send(&call(3, SERVICE, 1, 7, &get_args)).await;
    let (id, node, status, msg) = raw.reply().await;
    assert_eq!((id, node, status), (3, 2, Status::UnknownMethod));
    assert!(
        String::from_utf8_lossy(&msg).contains("no method with index 7"),
        "{msg:?}"
    );

    // The same connection still serves a good call afterwards.
    raw.send(&call(4, SERVICE, 1, 0, &get_args)).await;
    let (id, _, status, payload) = raw.reply().await;
    assert_eq!((id, status), (4, Status::Ok));
    assert_eq!(
        postcard::from_bytes::<Option<String>>(&payload).expect("decode"),
        None
    );
    still_serves(&healthy).await;
}

#[tokio::test]
async fn undecodable_payloads_get_bad_request() {
    let (_s, listener, healthy) = node().await;
    let mut raw = Raw::connect(listener.local_addr()).await;
    // put(key: String, value: String) with a string length running past the end.
    raw.send(&call(1, SERVICE, 1, 1, &[200, 1, b'a'])).await;
    let (id, _, status, msg) = raw.reply().await;
    assert_eq!((id, status), (1, Status::BadRequest));
    assert!(String::from_utf8_lossy(&msg).contains("`put`"), "{msg:?}");
    // Valid arguments followed by garbage are rejected too.
    let mut args = postcard::to_allocvec(&("k",)).expect("encode");
    args.extend_from_slice(b"junk");
    raw.send(&call(2, SERVICE, 1, 0, &args)).await;
    let (id, _, status, msg) = raw.reply().await;
    assert_eq!((id, status), (2, Status::BadRequest));
    assert!(
        String::from_utf8_lossy(&msg).contains("4 trailing bytes"),
        "{msg:?}"
    );
    // Invalid UTF-8 in a String argument.
    raw.send(&call(3, SERVICE, 1, 0, &[2, 0xff, 0xfe])).await;
    assert_eq!(raw.reply().await.2, Status::BadRequest);
    still_serves(&healthy).await;
}

#[tokio::test]
async fn malformed_headers_get_bad_frame_and_the_connection_goes_on() {
    let (_s, listener, healthy) = node().await;
    let mut raw = Raw::connect(listener.local_addr()).await;
    // Good magic, wire version and call id, but the call header stops early.
    let mut body = b"US\x01\x01".to_vec();
    body.extend_from_slice(&5u64.to_be_bytes());
    body.extend_from_slice(&[0, 0]);
    raw.send(&frame(&body)).await;
    assert_eq!(raw.reply().await.2, Status::BadFrame);
    // An unknown frame kind.
    let mut body = b"US\x01\x09".to_vec();
    body.extend_from_slice(&6u64.to_be_bytes());
    raw.send(&frame(&body)).await;
    assert_eq!(
        raw.reply().await,
        (6, 0, Status::BadFrame, b"unknown frame kind 9".to_vec())
    );
    // A service name that is not UTF-8.
    let mut bad_name = call(7, "Kv", 1, 0, &[]);
    let at = bad_name.len() - 2;
    bad_name[at] = 0xff;
    raw.send(&bad_name).await;
    assert_eq!(
        raw.reply().await,
        (
            7,
            0,
            Status::BadFrame,
            b"service name is empty, longer than 255 bytes, or not UTF-8".to_vec()
        )
    );
    // Good magic and wire version, but too short to hold a call id: answered
    // on the connection (call id 0), which goes on.
    raw.send(&frame(b"US\x01\x01abcd")).await;
    assert_eq!(
        raw.reply().await,
        (
            0,
            0,
            Status::BadFrame,
            b"frame body of 8 bytes is shorter than its 12-byte header".to_vec()
        )
    );
    // A reply frame sent to a node.
    raw.send(&wire::reply_with_message(8, 1, Status::Ok, ""))
        .await;
    assert_eq!(raw.reply().await.2, Status::BadFrame);
    // The connection still works.
    let args = postcard::to_allocvec(&("k",)).expect("encode");
    raw.send(&call(9, SERVICE, 2, 0, &args)).await;
    assert_eq!(raw.reply().await.2, Status::Ok);
    still_serves(&healthy).await;
}

#[tokio::test]
async fn wrong_magic_closes_the_connection() {
    let (_s, listener, healthy) = node().await;
    let mut raw = Raw::connect(listener.local_addr()).await;
    raw.send(&frame(b"GET / HTTP/1.1\r\n")).await;
    raw.closed().await;
    still_serves(&healthy).await;
}

#[tokio::test]
async fn an_http_request_closes_the_connection() {
    let (_s, listener, healthy) = node().await;
    let mut raw = Raw::connect(listener.local_addr()).await;
    // The first four bytes read as a huge length: refused as oversized.
    raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    raw.closed().await;
    still_serves(&healthy).await;
}

#[tokio::test]
async fn another_wire_version_closes_the_connection() {
    let (_s, listener, healthy) = node().await;
    let mut raw = Raw::connect(listener.local_addr()).await;
    let mut body = b"US\x07\x01".to_vec();
    body.extend_from_slice(&1u64.to_be_bytes());
    raw.send(&frame(&body)).await;
    raw.closed().await;
    still_serves(&healthy).await;
}

#[tokio::test]
async fn oversized_frames_close_the_connection() {
    let (_s, listener, healthy) = node().await;
    let mut raw = Raw::connect(listener.local_addr()).await;
    raw.send(&((wire::DEFAULT_MAX_FRAME as u32) + 1).to_be_bytes())
        .await;
    raw.closed().await;
    still_serves(&healthy).await;
}

#[tokio::test]
async fn truncated_frames_and_tiny_bodies_do_not_wedge_the_node() {
    let (_s, listener, healthy) = node().await;
    // A frame cut short by the peer closing.
    let mut raw = Raw::connect(listener.local_addr()).await;
    let full = call(
        1,
        SERVICE,
        1,
        0,
        &postcard::to_allocvec(&("k",)).expect("encode"),
    );
    raw.send(&full[..full.len() - 3]).await;
    raw.stream.shutdown().await.expect("shutdown");
    raw.closed().await;
    // A body too short to hold any header.
    let mut raw = Raw::connect(listener.local_addr()).await;
    raw.send(&frame(b"U")).await;
    raw.closed().await;
    // An empty body.
    let mut raw = Raw::connect(listener.local_addr()).await;
    raw.send(&frame(b"")).await;
    raw.closed().await;
    // A peer that sends half a length prefix and goes silent does not block others.
    let mut silent = Raw::connect(listener.local_addr()).await;
    silent.send(&[0, 0]).await;
    still_serves(&healthy).await;
}
