//! A node's metrics ([`crate::metrics`] serves them): its version, whether
//! it is healthy, the calls it served per call version and route (its
//! object, past or future SO chains), its in-process upgrades' pauses, and
//! what its last shadowing compared.

use std::sync::Arc;

use super::Node;
use crate::metrics::{Exposition, MetricsServer};
use crate::rpc::Route;

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
            out.sample(calls, &labels, service.served(version));
        }
        let pauses = node.pauses();
        let seconds: Vec<f64> = pauses.iter().map(|(_, d)| d.as_secs_f64()).collect();
        let one = [("node", id.as_str())];
        out.family(
            "upshift_node_upgrade_pause_seconds_count",
            "counter",
            "In-process upgrades, each holding calls back for a pause.",
        );
        out.sample(
            "upshift_node_upgrade_pause_seconds_count",
            &one,
            seconds.len(),
        );
        out.family(
            "upshift_node_upgrade_pause_seconds_sum",
            "counter",
            "Their pauses added up.",
        );
        out.sample(
            "upshift_node_upgrade_pause_seconds_sum",
            &one,
            seconds.iter().sum::<f64>(),
        );
        out.family(
            "upshift_node_upgrade_pause_seconds_max",
            "gauge",
            "The longest pause.",
        );
        out.sample(
            "upshift_node_upgrade_pause_seconds_max",
            &one,
            seconds.iter().copied().fold(0.0, f64::max),
        );
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
