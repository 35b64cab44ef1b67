//! What the macros report to `upshift check`, `upshift lock` and `upshift
//! docs`: during a `cargo check` run with [`DIR_ENV`] set, every expansion
//! writes its entries as JSON lines into a file of its own in that directory
//! (many rustc processes expand at once); the CLI reads them all back.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::{InterfaceSchema, StateSchema};

/// The environment variable naming the directory reports go to.
pub const DIR_ENV: &str = "UPSHIFT_LOCK_REPORT";

/// What became of one locked section in one expansion, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Locked, and the definition no longer matches it.
    Changed,
    /// Not in the lock file.
    Unlocked,
    /// Was not in the lock file; this run added it.
    Added,
    /// Matches the lock file.
    Ok,
}

/// Every version of one definition, for `upshift docs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Definition {
    /// An interface's versions.
    Interface(Vec<InterfaceSchema>),
    /// A state's versions.
    State(Vec<StateSchema>),
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "lowercase")]
pub enum Entry {
    /// A section's lock outcome.
    Lock {
        /// The lock file the section belongs to.
        lock: PathBuf,
        /// The section (`Kv v1`, `type Entry`, `state kv v2`).
        key: String,
        /// What became of it.
        outcome: Outcome,
        /// For `Changed`, what changed and what to do.
        detail: String,
    },
    /// A definition's metadata.
    Docs {
        /// The lock file of the crate that declares it.
        lock: PathBuf,
        /// `interface NAME` or `state NAME`.
        key: String,
        /// Its versions.
        versions: Definition,
    },
}

/// Writes `entries` to a new file in the report directory, if [`DIR_ENV`]
/// names one. A report that cannot be written only leaves its entries out of
/// the CLI's summary: the build itself still fails on a changed section.
pub fn write(entries: &[Entry]) {
    static EXPANSION: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let mut text = String::new();
    for entry in entries {
        if let Ok(line) = serde_json::to_string(entry) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    let file = PathBuf::from(dir).join(format!(
        "{}-{}.report",
        std::process::id(),
        EXPANSION.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::write(file, text);
}

/// Every entry of every report file in `dir`. Lines that do not parse (a
/// macro of another upshift version) are counted in the second value.
pub fn read(dir: &Path) -> std::io::Result<(Vec<Entry>, usize)> {
    let mut entries = Vec::new();
    let mut unreadable = 0;
    for file in std::fs::read_dir(dir)? {
        let Ok(text) = std::fs::read_to_string(file?.path()) else {
            unreadable += 1;
            continue;
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str(line) {
                Ok(entry) => entries.push(entry),
                Err(_) => unreadable += 1,
            }
        }
    }
    Ok((entries, unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_a_report_directory() {
        let dir = std::env::temp_dir().join(format!("upshift-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let entries = vec![
            Entry::Lock {
                lock: "/w/upshift.lock".into(),
                key: "Kv v1".into(),
                outcome: Outcome::Changed,
                detail: "method `get` changed\tand\nmore".into(),
            },
            Entry::Docs {
                lock: "/w/upshift.lock".into(),
                key: "state kv".into(),
                versions: Definition::State(vec![]),
            },
        ];
        let text: String = entries
            .iter()
            .map(|e| serde_json::to_string(e).expect("encodes") + "\n")
            .collect();
        std::fs::write(dir.join("1-0.report"), text + "not json\n").expect("write");
        let (read, unreadable) = read(&dir).expect("reads");
        assert_eq!(read, entries);
        assert_eq!(unreadable, 1);
        assert!(Outcome::Changed < Outcome::Ok, "most severe first");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
