//! The coordinator's metrics in Prometheus' text format, served over HTTP
//! at `/metrics`: nodes by service, version and state, the calls each node
//! reports per call version, each rollout's state and progress, the
//! history's length, and the UDB's writes (group commits, the requests they
//! carried, refusals, time spent).
//!
//! The server answers `GET /metrics` and nothing else, one request per
//! connection, with a bounded request head and a timeout: it is meant for a
//! scraper on a private network, and reveals what `upshift status` shows a
//! reader.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Coordinator, commit};
use crate::clock::Clock;
use crate::sync::lock;
use crate::upgrade::{NodeState, RolloutState};

/// The coordinator's metrics; taken with [`Coordinator::metrics`] before
/// the coordinator is served, and valid for as long as it runs.
#[derive(Clone)]
pub struct Metrics {
    store: Arc<commit::Store>,
    clock: Arc<dyn Clock>,
    heard_within_ms: u64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The longest request head the metrics server reads.
const MAX_HEAD: usize = 8 * 1024;
/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

impl Coordinator {
    /// Its metrics, to [render](Metrics::render) or [serve](Metrics::serve).
    pub fn metrics(&self) -> Metrics {
        Metrics {
            store: self.store.clone(),
            clock: self.clock.clone(),
            heard_within_ms: self.heard_within.as_millis() as u64,
        }
    }
}

/// A metrics server; it stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Where it listens.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Metrics {
    /// Serves `GET /metrics` on `addr` (port 0 picks one).
    pub async fn serve(
        self,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors, say: try again shortly.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let metrics = self.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REQUEST_TIMEOUT, metrics.answer(stream)).await;
                });
            }
        });
        Ok(MetricsServer { addr, task })
    }

    /// Reads one request head and answers it.
    async fn answer(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            if head.len() >= MAX_HEAD {
                return respond(&mut stream, "431 Request Header Fields Too Large", "").await;
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
        let mut parts = line.split(|b| *b == b' ');
        match (parts.next(), parts.next()) {
            (Some(b"GET"), Some(b"/metrics")) => {
                respond(&mut stream, "200 OK", &self.render()).await
            }
            (Some(b"GET"), _) => {
                respond(&mut stream, "404 Not Found", "only /metrics is here\n").await
            }
            _ => respond(&mut stream, "405 Method Not Allowed", "").await,
        }
    }

    /// The metrics now, in Prometheus' text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let now = self.clock.now_ms();
        let mut nodes: BTreeMap<(String, u32, &'static str), u64> = BTreeMap::new();
        let mut calls = Vec::new();
        let mut up = Vec::new();
        let mut rollouts = Vec::new();
        let events;
        {
            let content = lock(&self.store.content);
            for n in content.nodes.values() {
                let heard = now.saturating_sub(n.last_seen_ms) <= self.heard_within_ms;
                let state = match &n.state {
                    NodeState::Running if !heard => "silent",
                    NodeState::Running if !n.healthy => "unhealthy",
                    NodeState::Running => "running",
                    NodeState::Upgrading { .. } => "upgrading",
                    NodeState::Failed { .. } => "failed",
                };
                *nodes
                    .entry((n.info.service.clone(), n.info.version, state))
                    .or_default() += 1;
                for (version, count) in &n.calls {
                    calls.push((n.info.id.clone(), n.info.service.clone(), *version, *count));
                }
                up.push((
                    n.info.id.clone(),
                    n.info.service.clone(),
                    n.info.version,
                    heard && n.healthy,
                ));
            }
            for u in content.upgrades.values() {
                let of_service = content
                    .nodes
                    .values()
                    .filter(|n| n.info.service == u.def.service);
                let (mut done, mut upgrading, mut failed, mut waiting) = (0u64, 0u64, 0u64, 0u64);
                for n in of_service {
                    match &n.state {
                        _ if n.info.version >= u.def.to => done += 1,
                        NodeState::Upgrading { .. } => upgrading += 1,
                        NodeState::Failed { .. } => failed += 1,
                        NodeState::Running => waiting += 1,
                    }
                }
                rollouts.push((
                    u.id,
                    u.def.service.clone(),
                    u.def.from,
                    u.def.to,
                    state_name(&u.state),
                    [
                        ("upgraded", done),
                        ("upgrading", upgrading),
                        ("failed", failed),
                        ("waiting", waiting),
                    ],
                ));
            }
            events = content.events.len();
        }
        let failing = lock(&self.store.failing).is_some();
        let counts = &self.store.counts;

        let mut out = String::new();
        family(
            &mut out,
            "upshift_coordinator_nodes",
            "gauge",
            "Nodes by service, version and state (running, unhealthy, silent, upgrading, failed).",
        );
        for ((service, version, state), n) in &nodes {
            let _ = writeln!(
                out,
                "upshift_coordinator_nodes{{service=\"{}\",version=\"{version}\",state=\"{state}\"}} {n}",
                escape(service)
            );
        }
        family(
            &mut out,
            "upshift_coordinator_node_up",
            "gauge",
            "1 when the node was heard from lately and said it is healthy.",
        );
        for (node, service, version, ok) in &up {
            let _ = writeln!(
                out,
                "upshift_coordinator_node_up{{node=\"{}\",service=\"{}\",version=\"{version}\"}} {}",
                escape(node),
                escape(service),
                u8::from(*ok)
            );
        }
        family(
            &mut out,
            "upshift_coordinator_node_calls_total",
            "counter",
            "Calls a node served per call version (its object and each SO chain), as its heartbeats report.",
        );
        for (node, service, version, count) in &calls {
            let _ = writeln!(
                out,
                "upshift_coordinator_node_calls_total{{node=\"{}\",service=\"{}\",call_version=\"{version}\"}} {count}",
                escape(node),
                escape(service)
            );
        }
        family(
            &mut out,
            "upshift_coordinator_rollout_state",
            "gauge",
            "1 for the state each rollout is in.",
        );
        for (id, service, from, to, state, _) in &rollouts {
            for name in ["active", "paused", "halted", "aborted", "final"] {
                let _ = writeln!(
                    out,
                    "upshift_coordinator_rollout_state{{upgrade=\"{id}\",service=\"{}\",from=\"{from}\",to=\"{to}\",state=\"{name}\"}} {}",
                    escape(service),
                    u8::from(*state == name)
                );
            }
        }
        family(
            &mut out,
            "upshift_coordinator_rollout_nodes",
            "gauge",
            "A rollout's nodes: upgraded (at its version or later), upgrading, failed, waiting.",
        );
        for (id, service, _, _, _, stages) in &rollouts {
            for (stage, n) in stages {
                let _ = writeln!(
                    out,
                    "upshift_coordinator_rollout_nodes{{upgrade=\"{id}\",service=\"{}\",stage=\"{stage}\"}} {n}",
                    escape(service)
                );
            }
        }
        let single = [
            (
                "upshift_coordinator_events",
                "gauge",
                "Events in the history.",
                events as u64,
            ),
            (
                "upshift_coordinator_udb_failing",
                "gauge",
                "1 while the UDB refuses writes (the coordinator records nothing).",
                u64::from(failing),
            ),
            (
                "upshift_coordinator_udb_commits_total",
                "counter",
                "UDB transactions written (each carries a group of requests).",
                counts.commits.load(Ordering::Relaxed),
            ),
            (
                "upshift_coordinator_udb_committed_requests_total",
                "counter",
                "Requests whose changes those transactions carried.",
                counts.requests.load(Ordering::Relaxed),
            ),
            (
                "upshift_coordinator_udb_refused_total",
                "counter",
                "UDB writes refused (their requests failed and changed nothing).",
                counts.refused.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in single {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        family(
            &mut out,
            "upshift_coordinator_udb_write_seconds_total",
            "counter",
            "Time spent writing to the UDB.",
        );
        let _ = writeln!(
            out,
            "upshift_coordinator_udb_write_seconds_total {}",
            counts.micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        out
    }
}

fn state_name(state: &RolloutState) -> &'static str {
    match state {
        RolloutState::Active => "active",
        RolloutState::Paused => "paused",
        RolloutState::Halted { .. } => "halted",
        RolloutState::Aborted => "aborted",
        RolloutState::Final => "final",
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
