//! Disruption of a rolling upgrade: five key-value nodes under steady load
//! from clients of v1, v2 and v3, first with no upgrade (5 s), then while
//! they are upgraded v1 -> v2 -> v3 one at a time, in one run. Reports failed
//! calls and the ratio of p99 (and p50) latency during the upgrades to steady
//! state. Targets: 0 failed, p99 ratio <= 2.
//!
//! A scenario with phases, not a micro-benchmark: divan and criterion time
//! repeated closures and report no p99, so this bench has its own main.
//! Run: `cargo bench -p upshift-benches --bench disruption`.

use std::time::Duration;

use upshift_examples::demo::{self, Options, percentile};

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs bench targets with no arguments besides
    // libtest's; only run the scenario under `cargo bench` (which passes --bench).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let options = Options {
        nodes: 5,
        steady: Duration::from_secs(5),
        healthy_secs: 1,
        progress: false,
        restart_binaries: None,
    };
    let report = match demo::run(options).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("the scenario failed to run: {e}");
            std::process::exit(1);
        }
    };
    let (b50, b99) = (
        percentile(&report.before, 0.5),
        percentile(&report.before, 0.99),
    );
    let (d50, d99) = (
        percentile(&report.during, 0.5),
        percentile(&report.during, 0.99),
    );
    println!(
        "disruption of a rolling upgrade (5 nodes, v1 -> v2 -> v3, one at a time, health-gated 1 s)"
    );
    println!(
        "steady  {:>7} calls  p50 {:>10.3?}  p99 {:>10.3?}",
        report.before.len(),
        b50,
        b99
    );
    println!(
        "upgrade {:>7} calls  p50 {:>10.3?}  p99 {:>10.3?}",
        report.during.len(),
        d50,
        d99
    );
    println!(
        "failed calls {}   p99 ratio {:.2}   p50 ratio {:.2}   lost writes {}",
        report.failures.len(),
        d99.as_secs_f64() / b99.as_secs_f64().max(f64::MIN_POSITIVE),
        d50.as_secs_f64() / b50.as_secs_f64().max(f64::MIN_POSITIVE),
        report.missing.len()
    );
    let worst = report
        .nodes
        .iter()
        .flat_map(|n| n.pauses.iter().map(|(_, d)| *d))
        .max()
        .unwrap_or_default();
    println!("longest unavailable window of a node: {worst:.3?}");
    let slowest = report
        .nodes
        .iter()
        .map(|n| n.slowest_call)
        .max()
        .unwrap_or_default();
    println!("slowest call during the upgrades, retries included: {slowest:.3?}");
    if !report.ok() {
        std::process::exit(1);
    }
}
