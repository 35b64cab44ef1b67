//! A node's metrics ([`crate::metrics`] serves them): its version, whether
//! it is healthy, the calls it served and those that failed per call
//! version and route (its object, past or future SO chains), its in-process upgrades' pauses, how
//! long it waited for slots and how long its upgrades took, and what its
//! last shadowing compared.

use std::sync::Arc;
use std::time::Duration;

use super::Node;
use crate::metrics::{Exposition, MetricsServer};
use crate::rpc::Route;
use crate::sync::lock;

/// A node's metrics; see [`Node::metrics`].
#[derive(Debug, Clone)]
pub struct NodeMetrics(Node);

impl Node {
    /// This node's metrics, to [render](NodeMetrics::render) or
    /// [serve](NodeMetrics::serve).
    pub fn metrics(&self) -> NodeMetrics {
        NodeMetrics(self.clone())
    }
}

impl NodeMetrics {
    /// Serves `GET /metrics` on `addr` (port 0 picks one).
    pub async fn serve(
        self,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> std::io::Result<MetricsServer> {
        crate::metrics::serve(addr, Arc::new(move || self.render())).await
    }

    /// The metrics now, in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let node = &self.0;
        let id = node.id().to_string();
        let service = node.service();
        let name = node.inner.service;
        let mut out = Exposition::default();
        out.family(
            "upshift_node_version",
            "gauge",
            "The version the node runs.",
        );
        let node_labels = [("node", id.as_str()), ("service", name)];
        out.sample("upshift_node_version", &node_labels, node.version());
        out.family(
            "upshift_node_up",
            "gauge",
            "1 while the node's state takes writes and its health check passes.",
        );
        let up = node.problem().is_none() && (node.inner.config.health)();
        out.sample("upshift_node_up", &node_labels, u8::from(up));
        let calls = "upshift_node_calls_total";
        out.family(
            calls,
            "counter",
            "Calls served per call version and route: the object, or a chain of past or future SOs (hops: its length).",
        );
        let errors = "upshift_node_call_errors_total";
        let mut failed = Vec::new();
        for version in service.versions() {
            let (route, hops) = match service.route(version) {
                Some(Route::Object) | None => ("object", 0),
                Some(Route::PastSo(n)) => ("past_so", n),
                Some(Route::FutureSo(n)) => ("future_so", n),
            };
            let (version_label, hops) = (version.to_string(), hops.to_string());
            let labels = [
                ("node", id.as_str()),
                ("call_version", &version_label),
                ("route", route),
                ("hops", &hops),
            ];
            let counts = service.stats(version).map(|s| s.read()).unwrap_or_default();
            out.sample(calls, &labels, counts.calls);
            failed.push((version_label, route, hops, counts.errors));
        }
        out.family(
            errors,
            "counter",
            "Of them, calls answered with an error (a panic, an SO's refusal, a guard's): what analysis gates judge.",
        );
        for (version_label, route, hops, n) in &failed {
            let labels = [
                ("node", id.as_str()),
                ("call_version", version_label.as_str()),
                ("route", route),
                ("hops", hops.as_str()),
            ];
            out.sample(errors, &labels, n);
        }
        let pauses = node.pauses();
        let seconds: Vec<f64> = pauses.iter().map(|(_, d)| d.as_secs_f64()).collect();
        let one = [("node", id.as_str())];
        summary(
            &mut out,
            "upshift_node_upgrade_pause_seconds",
            "In-process upgrades, each holding calls back for a pause.",
            &one,
            &seconds,
        );
        let timings = lock(&node.inner.timings).clone();
        let waits: Vec<f64> = timings
            .slot_waits
            .iter()
            .map(Duration::as_secs_f64)
            .collect();
        summary(
            &mut out,
            "upshift_node_slot_wait_seconds",
            "Slots granted to this node, and how long it waited for each (from the first heartbeat that offered the upgrade to the grant).",
            &one,
            &waits,
        );
        let took: Vec<f64> = timings
            .upgrades
            .iter()
            .map(|(d, _)| d.as_secs_f64())
            .collect();
        summary(
            &mut out,
            "upshift_node_upgrade_seconds",
            "Upgrades this node made with a slot, and how long each took (transform and switch, or restart), failed ones included.",
            &one,
            &took,
        );
        out.family(
            "upshift_node_upgrade_failures_total",
            "counter",
            "Of them, upgrades that failed (the node stayed on its version).",
        );
        out.sample(
            "upshift_node_upgrade_failures_total",
            &one,
            timings.upgrades.iter().filter(|(_, ok)| !ok).count(),
        );
        out.family(
            "upshift_node_rollback_dropped_values_total",
            "counter",
            "Values this node's rollbacks dropped because the older version cannot hold them, per place (Type.field).",
        );
        for (place, n) in &timings.dropped {
            out.sample(
                "upshift_node_rollback_dropped_values_total",
                &[("node", id.as_str()), ("place", place)],
                n,
            );
        }
        if let Some(shadow) = node.shadowed() {
            let version = shadow.version.to_string();
            let labels = [("node", id.as_str()), ("version", version.as_str())];
            for (series, help, value) in [
                (
                    "upshift_node_shadow_compared_total",
                    "Calls the last shadowing answered on both versions and compared.",
                    shadow.compared,
                ),
                (
                    "upshift_node_shadow_diverged_total",
                    "Of them, calls whose answers differed.",
                    shadow.diverged,
                ),
            ] {
                out.family(series, "counter", help);
                out.sample(series, &labels, value);
            }
        }
        out.into_text()
    }
}

/// `NAME_count`, `NAME_sum` and `NAME_max` of `values`.
fn summary(out: &mut Exposition, name: &str, help: &str, labels: &[(&str, &str)], values: &[f64]) {
    let count = format!("{name}_count");
    out.family(&count, "counter", help);
    out.sample(&count, labels, values.len());
    let sum = format!("{name}_sum");
    out.family(&sum, "counter", "Their durations added up.");
    out.sample(&sum, labels, values.iter().sum::<f64>());
    let max = format!("{name}_max");
    out.family(&max, "gauge", "The longest.");
    out.sample(&max, labels, values.iter().copied().fold(0.0, f64::max));
}
