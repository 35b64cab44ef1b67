//! The coordinator's metrics ([`crate::metrics`] serves them): nodes by
//! service, version and state, the calls each node reports per call
//! version, each rollout's state and progress, the history's length, and
//! the UDB's writes (group commits, the requests they carried, refusals,
//! time spent). They reveal what `upshift status` shows a reader.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Coordinator, commit};
use crate::clock::Clock;
use crate::metrics::{Exposition, MetricsServer};
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

impl Metrics {
    /// Serves `GET /metrics` on `addr` (port 0 picks one).
    pub async fn serve(
        self,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> std::io::Result<MetricsServer> {
        crate::metrics::serve(addr, Arc::new(move || self.render())).await
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
                        _ if u.def.reached(n.info.version) => done += 1,
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

        let mut out = Exposition::default();
        let name = "upshift_coordinator_nodes";
        out.family(
            name,
            "gauge",
            "Nodes by service, version and state (running, unhealthy, silent, upgrading, failed).",
        );
        for ((service, version, state), n) in &nodes {
            let version = version.to_string();
            let labels = [
                ("service", service.as_str()),
                ("version", &version),
                ("state", state),
            ];
            out.sample(name, &labels, n);
        }
        let name = "upshift_coordinator_node_up";
        out.family(
            name,
            "gauge",
            "1 when the node was heard from lately and said it is healthy.",
        );
        for (node, service, version, ok) in &up {
            let version = version.to_string();
            let labels = [
                ("node", node.as_str()),
                ("service", service),
                ("version", &version),
            ];
            out.sample(name, &labels, u8::from(*ok));
        }
        let name = "upshift_coordinator_node_calls_total";
        out.family(
            name,
            "counter",
            "Calls a node served per call version (its object and each SO chain), as its heartbeats report.",
        );
        for (node, service, version, count) in &calls {
            let version = version.to_string();
            let labels = [
                ("node", node.as_str()),
                ("service", service),
                ("call_version", &version),
            ];
            out.sample(name, &labels, count);
        }
        let name = "upshift_coordinator_rollout_state";
        out.family(name, "gauge", "1 for the state each rollout is in.");
        for (id, service, from, to, state, _) in &rollouts {
            let (id, from, to) = (id.to_string(), from.to_string(), to.to_string());
            for each in ["active", "paused", "halted", "aborted", "final"] {
                let labels = [
                    ("upgrade", id.as_str()),
                    ("service", service),
                    ("from", &from),
                    ("to", &to),
                    ("state", each),
                ];
                out.sample(name, &labels, u8::from(*state == each));
            }
        }
        let name = "upshift_coordinator_rollout_nodes";
        out.family(
            name,
            "gauge",
            "A rollout's nodes: upgraded (at its version or later), upgrading, failed, waiting.",
        );
        for (id, service, _, _, _, stages) in &rollouts {
            let id = id.to_string();
            for (stage, n) in stages {
                let labels = [
                    ("upgrade", id.as_str()),
                    ("service", service),
                    ("stage", stage),
                ];
                out.sample(name, &labels, n);
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
            out.family(name, kind, help);
            out.sample(name, &[], value);
        }
        let name = "upshift_coordinator_udb_write_seconds_total";
        out.family(name, "counter", "Time spent writing to the UDB.");
        out.sample(
            name,
            &[],
            counts.micros.load(Ordering::Relaxed) as f64 / 1e6,
        );
        out.into_text()
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
