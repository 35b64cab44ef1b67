//! Attacks against a real node process (`hostile-node`: a v3 key-value
//! `Node` with short timeouts), each in bounded time, each checking that the
//! node's resident memory stays within a stated budget and that a healthy
//! client beside the attacker — from another loopback address, as another
//! host would be — is still served.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use upshift::wire::{self, Frame, Status};
use upshift::{ClientConfig, Connection};
use upshift_examples::kv::interface::{SERVICE, v3};

const BIN: &str = env!("CARGO_BIN_EXE_hostile-node");
const MIB: u64 = 1 << 20;

/// The node process, killed on drop.
struct NodeProcess {
    child: Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl NodeProcess {
    /// Starts a node: frame timeout 1 s, idle timeout 30 s, 512 connections
    /// per peer, 1 MiB of queued replies per connection.
    fn start(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("upshift-hostile-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut child = Command::new(BIN)
            .arg(&dir)
            .args(["1000", "30000", "512", &MIB.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read LISTENING");
        let addr = line
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim()
            .parse()
            .expect("an address");
        NodeProcess { child, addr, dir }
    }

    /// The process's resident memory.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the node's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// A client from 127.0.0.2: another peer than the attacker on 127.0.0.1.
    async fn healthy_client(&self) -> v3::Client {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.2:0".parse().expect("address"))
            .expect("bind 127.0.0.2");
        let stream = socket.connect(self.addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        v3::Client::new(Connection::from_io(stream, ClientConfig::default()))
            .with_deadline(Duration::from_secs(5))
    }
}

/// Asserts the node closes `s` within `limit`.
async fn closed_within(mut s: TcpStream, limit: Duration) {
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(limit, s.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
}

/// The healthy client makes `n` calls; all succeed, and the slowest is returned.
async fn served(client: &v3::Client, n: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let started = Instant::now();
        client
            .put(format!("healthy-{i}"), "v".into(), None)
            .await
            .expect("the healthy client is served");
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_prefixes_of_the_maximum_cost_what_arrives_not_what_is_announced() {
    let node = NodeProcess::start("prefix");
    let healthy = node.healthy_client().await;
    served(&healthy, 10).await;
    let before = node.rss();
    // 200 connections announce 8 MiB frames and send 10 bytes: 1.6 GB if
    // the node believed them.
    let mut flood = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(node.addr).await.expect("connect");
        s.write_all(&(8u32 << 20).to_be_bytes())
            .await
            .expect("write");
        s.write_all(&[0x55; 10]).await.expect("write");
        flood.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let grew = node.rss().saturating_sub(before);
    assert!(grew < 48 * MIB, "the node grew by {} MiB", grew / MIB);
    let slowest = served(&healthy, 50).await;
    assert!(
        slowest < Duration::from_secs(1),
        "slowest healthy call {slowest:?}"
    );
    // The frame timeout (1 s) closes every one of them.
    for s in flood {
        closed_within(s, Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_from_one_peer_is_refused_past_its_limit() {
    let node = NodeProcess::start("flood");
    let healthy = node.healthy_client().await;
    served(&healthy, 10).await;
    let before = node.rss();
    let mut flood = Vec::new();
    for _ in 0..600 {
        flood.push(
            TcpStream::connect(node.addr)
                .await
                .expect("the TCP connect"),
        );
    }
    // The connections past 512 are told why and closed, unread.
    let mut refused = 0;
    for s in flood.iter_mut().skip(500) {
        let mut buf = Vec::new();
        let read = wire::read_frame(s, 4096, &mut buf);
        if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_millis(500), read).await
            && let Ok(Frame::Reply(r)) = wire::decode(&buf)
            && r.status == Status::Refused
        {
            assert!(String::from_utf8_lossy(r.payload).contains("limit per peer"));
            refused += 1;
        }
    }
    assert_eq!(refused, 88, "connections 513 to 600 are refused");
    // 512 idle connections held open: about 9 MiB measured; budget 48 MiB.
    let grew = node.rss().saturating_sub(before);
    assert!(grew < 48 * MIB, "the node grew by {} MiB", grew / MIB);
    let slowest = served(&healthy, 50).await;
    assert!(
        slowest < Duration::from_secs(1),
        "slowest healthy call {slowest:?}"
    );
    drop(flood);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_closed_at_the_frame_timeout() {
    let node = NodeProcess::start("slowloris");
    let healthy = node.healthy_client().await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(node.addr).await.expect("connect");
        s.write_all(&[0, 0]).await.expect("half a length prefix");
        slow.push(s);
    }
    served(&healthy, 20).await;
    let started = Instant::now();
    for s in slow {
        closed_within(s, Duration::from_secs(5)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        started.elapsed()
    );
    served(&healthy, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_a_peer_never_reads_are_bounded() {
    let node = NodeProcess::start("unread");
    let healthy = node.healthy_client().await;
    healthy
        .put("big".into(), "x".repeat(512 * 1024), None)
        .await
        .expect("put");
    let before = node.rss();
    // 400 pipelined gets of 512 KiB: 200 MiB of replies, none read.
    let mut greedy = TcpStream::connect(node.addr).await.expect("connect");
    let mut frames = Vec::new();
    for id in 1..=400u64 {
        let start = wire::begin_call(&mut frames, id, SERVICE, 3, 0).expect("a valid name");
        frames = postcard::to_extend(&("big",), frames).expect("encodes");
        wire::finish(&mut frames, start);
    }
    greedy.write_all(&frames).await.expect("send");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grew = node.rss().saturating_sub(before);
    assert!(grew < 48 * MIB, "the node grew by {} MiB", grew / MIB);
    let slowest = served(&healthy, 50).await;
    assert!(
        slowest < Duration::from_secs(1),
        "slowest healthy call {slowest:?}"
    );
    drop(greedy);
}
