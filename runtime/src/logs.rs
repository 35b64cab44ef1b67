//! Logs for binaries: upshift reports through `tracing`, and a process that
//! installs no subscriber shows none of it — not a failed checkpoint, not a
//! refused connection. [`init`] installs one that writes to standard error.

use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Logs warnings and errors to standard error, or what `RUST_LOG` asks
/// (`info`, `upshift=debug,warn`, …). Does nothing if the process already
/// has a subscriber.
pub fn init() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => Targets::from_str(&spec).unwrap_or_else(|e| {
            eprintln!("RUST_LOG={spec:?} is not a log filter ({e}); logging warnings and errors");
            warnings()
        }),
        Err(_) => warnings(),
    };
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
}

fn warnings() -> Targets {
    Targets::new().with_default(tracing::Level::WARN)
}
