//! Analysis gates: what each node's calls did, as its latest heartbeat
//! said, added up per service and node version, and the judgement of a
//! rollout's new version against its old one.
//!
//! The counts are the nodes' own (cumulative since each process started)
//! and live only in the coordinator's memory: they are not part of the
//! UDB, so a coordinator that takes over judges from the heartbeats it
//! hears. The sums are kept as each heartbeat replaces its node's
//! previous report, so a judgement costs the same at any number of nodes.

use std::collections::HashMap;

use crate::rpc::stats::CallCounts;
use crate::upgrade::Gate6;
use crate::upgrade::api::{Cohort, Traffic};

/// No calls: what a version nothing reported for counts.
static NONE: CallCounts = CallCounts {
    calls: 0,
    errors: 0,
    latency: Vec::new(),
};

fn p99_us(counts: &CallCounts) -> Option<u64> {
    counts.quantile(0.99).map(|d| d.as_micros() as u64)
}

/// Every node's latest traffic and the sums over them.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// By node id: its service and its latest report.
    nodes: HashMap<String, (String, Vec<Traffic>)>,
    /// By service, then node version.
    sums: HashMap<String, HashMap<u32, CallCounts>>,
}

impl Tally {
    /// `node` of `service` reported `traffic`, replacing what it reported
    /// before. Entries with more latency buckets than there are were
    /// refused before this (the heartbeat's limits).
    pub(super) fn report(&mut self, node: &str, service: &str, traffic: Vec<Traffic>) {
        self.forget(node);
        let sums = self.sums.entry(service.to_string()).or_default();
        for t in &traffic {
            let sum = sums.entry(t.node_version).or_default();
            sum.add(t.calls, t.errors, &t.latency);
        }
        self.nodes
            .insert(node.to_string(), (service.to_string(), traffic));
    }

    /// Takes `node`'s calls out of the sums (it was forgotten).
    pub(super) fn forget(&mut self, node: &str) {
        let Some((service, old)) = self.nodes.remove(node) else {
            return;
        };
        let Some(sums) = self.sums.get_mut(&service) else {
            return;
        };
        for t in &old {
            if let Some(sum) = sums.get_mut(&t.node_version) {
                sum.subtract(t.calls, t.errors, &t.latency);
            }
        }
    }

    fn counts(&self, service: &str, version: u32) -> &CallCounts {
        self.sums
            .get(service)
            .and_then(|sums| sums.get(&version))
            .unwrap_or(&NONE)
    }

    /// What `service`'s nodes served at `to` and at `from`, in that order.
    pub(super) fn cohorts(&self, service: &str, from: u32, to: u32) -> Vec<Cohort> {
        [to, from]
            .into_iter()
            .map(|version| {
                let counts = self.counts(service, version);
                Cohort {
                    version,
                    calls: counts.calls,
                    errors: counts.errors,
                    p99_us: p99_us(counts),
                }
            })
            .collect()
    }

    /// How the analysis `gate` judges `service`'s version `to` against `from`.
    pub(super) fn judge(&self, gate: &Gate6, service: &str, from: u32, to: u32) -> Verdict {
        let (judged, min_calls) = match *gate {
            Gate6::Errors { min_calls, .. } => ("errors", min_calls),
            Gate6::Latency { min_calls, .. } => ("latency", min_calls),
            Gate6::After { .. } | Gate6::Approval { .. } => return Verdict::Within,
        };
        let (new, old) = (self.counts(service, to), self.counts(service, from));
        if new.calls < u64::from(min_calls) {
            return Verdict::Judging(format!(
                "waiting for v{to} to serve {min_calls} calls to judge its {judged} ({} so far)",
                new.calls
            ));
        }
        match *gate {
            Gate6::Errors { above_ppm, .. } => {
                let (new_ppm, old_ppm) = (new.error_ppm(), old.error_ppm());
                if new_ppm > old_ppm + u64::from(above_ppm) {
                    return Verdict::Breached(format!(
                        "v{to} failed {} of {} calls ({}), v{from} {} of {} ({}): more than {:.2} percentage points above (gate {gate})",
                        new.errors,
                        new.calls,
                        percent(new_ppm),
                        old.errors,
                        old.calls,
                        percent(old_ppm),
                        f64::from(above_ppm) / 10_000.0,
                    ));
                }
            }
            Gate6::Latency { percent, .. } => {
                // Not judged without enough calls at the old version to
                // compare with (or once its nodes restarted into the new).
                if old.calls < u64::from(min_calls) {
                    return Verdict::Within;
                }
                if let (Some(new_p99), Some(old_p99)) = (p99_us(new), p99_us(old))
                    && u128::from(new_p99) * 100 > u128::from(old_p99) * u128::from(percent)
                {
                    return Verdict::Breached(format!(
                        "v{to}'s p99 is {} against {} at v{from}: more than {}x (gate {gate})",
                        ms(new_p99),
                        ms(old_p99),
                        f64::from(percent) / 100.0,
                    ));
                }
            }
            Gate6::After { .. } | Gate6::Approval { .. } => {}
        }
        Verdict::Within
    }
}

/// What an analysis gate says of a rollout now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not enough calls at the new version yet: the others wait, and the
    /// rollout is not final.
    Judging(String),
    /// Within the gate's threshold.
    Within,
    /// Past it: the rollout halts, for this reason.
    Breached(String),
}

fn percent(ppm: u64) -> String {
    format!("{:.2}%", ppm as f64 / 10_000.0)
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// A node's calls at `node_version`, `errors` of them failed, each taking
/// about `took`: for tests here and of the coordinator.
#[cfg(test)]
pub(super) fn traffic(
    node_version: u32,
    calls: u64,
    errors: u64,
    took: std::time::Duration,
) -> Traffic {
    let bucket = crate::rpc::stats::bucket_of(took);
    let mut latency = vec![0; bucket + 1];
    latency[bucket] = calls;
    Traffic {
        node_version,
        call_version: node_version,
        calls,
        errors,
        latency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const ERRORS: Gate6 = Gate6::Errors {
        above_ppm: 10_000,
        min_calls: 100,
    };
    const P99: Gate6 = Gate6::Latency {
        percent: 200,
        min_calls: 100,
    };

    #[test]
    fn the_new_version_is_judged_once_it_served_enough_calls() {
        let mut tally = Tally::default();
        tally.report(
            "a",
            "Kv",
            vec![traffic(1, 5000, 5, Duration::from_millis(2))],
        );
        tally.report(
            "b",
            "Kv",
            vec![traffic(2, 60, 30, Duration::from_millis(2))],
        );
        assert!(
            matches!(tally.judge(&ERRORS, "Kv", 1, 2), Verdict::Judging(w) if w.contains("(60 so far)"))
        );
        // Its next heartbeat replaces the previous report: 120 calls, not 180.
        tally.report(
            "b",
            "Kv",
            vec![traffic(2, 120, 1, Duration::from_millis(2))],
        );
        assert_eq!(tally.judge(&ERRORS, "Kv", 1, 2), Verdict::Within);
        assert_eq!(tally.cohorts("Kv", 1, 2)[0].calls, 120);
        tally.report(
            "b",
            "Kv",
            vec![traffic(2, 200, 20, Duration::from_millis(2))],
        );
        let Verdict::Breached(why) = tally.judge(&ERRORS, "Kv", 1, 2) else {
            panic!("10% against 0.1% passes a 1-point gate");
        };
        assert!(
            why.contains("v2 failed 20 of 200 calls (10.00%), v1 5 of 5000 (0.10%)"),
            "{why}"
        );
        // Another service's calls are not this one's.
        assert_eq!(
            tally.judge(&ERRORS, "Db", 1, 2),
            Verdict::Judging(
                "waiting for v2 to serve 100 calls to judge its errors (0 so far)".into()
            )
        );
        tally.forget("b");
        assert!(matches!(
            tally.judge(&ERRORS, "Kv", 1, 2),
            Verdict::Judging(_)
        ));
    }

    #[test]
    fn a_slower_new_version_breaches_the_latency_gate() {
        let mut tally = Tally::default();
        tally.report(
            "a",
            "Kv",
            vec![traffic(1, 1000, 0, Duration::from_millis(2))],
        );
        tally.report(
            "b",
            "Kv",
            vec![traffic(2, 1000, 0, Duration::from_millis(3))],
        );
        assert_eq!(tally.judge(&P99, "Kv", 1, 2), Verdict::Within);
        tally.report(
            "b",
            "Kv",
            vec![traffic(2, 1000, 0, Duration::from_millis(9))],
        );
        let Verdict::Breached(why) = tally.judge(&P99, "Kv", 1, 2) else {
            panic!("9 ms against 2 ms passes a 2x gate");
        };
        assert!(why.contains("more than 2x"), "{why}");
        // Without enough calls at the old version, latency is not judged.
        tally.forget("a");
        assert_eq!(tally.judge(&P99, "Kv", 1, 2), Verdict::Within);
    }
}
