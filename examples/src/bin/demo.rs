//! The main demo: five key-value nodes upgraded v1 -> v2 -> v3, one at a
//! time and health-gated, while clients of every version keep calling. Prints
//! progress and a summary; exits non-zero if a call failed or a write was lost.
//! `--restart` runs the nodes as supervised processes that restart into the
//! `kv-node-vN` binaries (build them first: `cargo build -p upshift-examples`).

use std::process::ExitCode;

use upshift_examples::demo::{self, Options, percentile};

#[tokio::main]
async fn main() -> ExitCode {
    upshift::logs::init();
    let mut options = Options::default();
    match std::env::args().nth(1).as_deref() {
        None => {}
        // The node binaries are built beside this one.
        Some("--restart") => match std::env::current_exe() {
            Ok(exe) => options.restart_binaries = exe.parent().map(|d| d.to_path_buf()),
            Err(e) => {
                eprintln!("error: cannot find the node binaries: {e}");
                return ExitCode::FAILURE;
            }
        },
        Some(other) => {
            eprintln!(
                "error: unknown argument {other:?}; the only flag is --restart (real node processes)"
            );
            return ExitCode::FAILURE;
        }
    }
    let report = match demo::run(options).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("demo failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n== summary ==");
    println!("calls made       {}", report.calls);
    println!("calls failed     {}", report.failures.len());
    let s = report.served;
    println!(
        "served by        object {}, past SO chains {}, future SO chains {}",
        s.object, s.past_so, s.future_so
    );
    for (label, lat) in [("before", &report.before), ("during", &report.during)] {
        println!(
            "latency {label}   p50 {:?}  p99 {:?}  ({} calls)",
            percentile(lat, 0.5),
            percentile(lat, 0.99),
            lat.len()
        );
    }
    for node in &report.nodes {
        // In process the node measures its own pauses; in restart mode only
        // its clients can tell, by their slowest call (retries included).
        let pauses: Vec<String> = node
            .pauses
            .iter()
            .map(|(v, d)| format!("to v{v}: {d:.1?}"))
            .collect();
        let paused = if pauses.is_empty() {
            String::new()
        } else {
            format!("paused {}; ", pauses.join(", "))
        };
        println!(
            "{}  {paused}slowest call during the rollout {:.1?}  (now v{})",
            node.id, node.slowest_call, node.version
        );
    }
    if let Some((node, cut)) = &report.killed {
        println!(
            "{node} killed with SIGKILL under load during the rollout; {cut} calls cut by the kill (outcome unknown to the caller, so never acknowledged)"
        );
    }
    println!(
        "acknowledged writes read back: {}, missing: {}",
        report.checked,
        report.missing.len()
    );
    if let Some(e) = &report.rollout_error {
        println!("rollout problem: {e}");
    }
    for f in report.failures.iter().take(10) {
        println!("failed call: {f}");
    }
    for m in report.missing.iter().take(10) {
        println!("missing: {m}");
    }
    if report.ok() {
        println!("\nOK: both upgrades done, no call failed, nothing lost");
        ExitCode::SUCCESS
    } else {
        println!("\nFAILED");
        ExitCode::FAILURE
    }
}
