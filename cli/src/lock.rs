//! `upshift check` and `upshift lock`: run `cargo check` with the macros
//! reporting every locked section (interface version, type, state version)
//! into a directory, then summarize what they found.
//!
//! The macros themselves do the comparison, so this is the same check the
//! build makes; the command adds a summary across the workspace, a separate
//! exit code for CI, and the one explicit way to add new versions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use upshift::schema::report::{self, Definition, Entry, Outcome};

use crate::Failure;

/// What a run asks the macros to do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Compare only.
    Check,
    /// Also append sections not locked yet (`UPSHIFT_LOCK=add`).
    Add,
}

/// Options of `check` and `lock`.
pub struct Run {
    pub mode: Mode,
    pub cargo: Cargo,
    /// `upshift check --all-locked`: a section not locked yet is a failure.
    pub all_locked: bool,
}

/// Where and how to run cargo.
pub struct Cargo {
    pub manifest_path: Option<PathBuf>,
    pub args: Vec<String>,
}

/// Reports by lock file, then by section key.
type Reports = BTreeMap<PathBuf, BTreeMap<String, (Outcome, String)>>;

/// Definitions by lock file and key (`interface Kv`, `state kv`).
type Docs = BTreeMap<(PathBuf, String), Definition>;

/// What one `cargo check` with reports found.
pub struct Found {
    /// Whether cargo succeeded.
    pub cargo_ok: bool,
    /// Lock outcomes, for this workspace's lock files only.
    reports: Reports,
    /// Lock violations the compiler reported, with their places.
    violations: Vec<Violation>,
    /// Definitions by key (`interface Kv`, `state kv`), for `upshift docs`.
    pub docs: BTreeMap<String, Definition>,
}

pub fn run(opts: Run) -> Result<(), Failure> {
    let found = collect(opts.mode, &opts.cargo)?;
    summarize(&opts, &found)
}

/// Runs cargo with the macros reporting into a fresh directory, and reads
/// what they wrote. Checking is `cargo check`; adding is `cargo test` of
/// the tests the macros generate in that mode, which write the encodings
/// of new sections (only compiled code can evaluate a `Schema`).
pub fn collect(mode: Mode, cargo: &Cargo) -> Result<Found, Failure> {
    let dir = report_dir()?;
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    let command = match mode {
        Mode::Check => "check",
        Mode::Add => "test",
    };
    cmd.args([
        command,
        "--workspace",
        "--all-targets",
        "--message-format=json-diagnostic-rendered-ansi",
    ]);
    if let Some(manifest) = &cargo.manifest_path {
        cmd.arg("--manifest-path").arg(manifest);
    }
    cmd.args(&cargo.args);
    if mode == Mode::Add {
        cmd.args(["--no-fail-fast", "--", "__upshift_lock_"]);
    }
    cmd.env(report::DIR_ENV, &dir);
    match mode {
        Mode::Add => cmd.env("UPSHIFT_LOCK", "add"),
        Mode::Check => cmd.env_remove("UPSHIFT_LOCK"),
    };
    eprintln!(
        "upshift: running `cargo {command} --workspace --all-targets` with lock reports{}",
        if mode == Mode::Add {
            ", adding unlocked versions and their encodings"
        } else {
            ""
        }
    );
    cmd.stdout(std::process::Stdio::piped());
    let run = cmd
        .spawn()
        .map_err(|e| Failure(format!("cannot run cargo: {e}"), 2))
        .and_then(|mut child| {
            let diagnostics = child
                .stdout
                .take()
                .map(|out| read_messages(std::io::BufReader::new(out)))
                .unwrap_or_default();
            let status = child
                .wait()
                .map_err(|e| Failure(format!("cannot run cargo: {e}"), 2))?;
            Ok((status, diagnostics))
        });
    let read = read_reports(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let ((status, diagnostics), (mut reports, mut docs)) = (run?, read?);
    // Dependencies that use the macros report their own locks: not ours to judge.
    if let Some(root) = workspace_root(cargo) {
        reports.retain(|lock, _| lock.starts_with(&root));
        docs.retain(|(lock, _), _| lock.starts_with(&root));
    }
    Ok(Found {
        cargo_ok: status.success(),
        reports,
        violations: diagnostics,
        docs: docs
            .into_iter()
            .map(|((_, key), definition)| (key, definition))
            .collect(),
    })
}

/// Reads cargo's JSON messages: compiler output is shown as cargo would show
/// it (on stderr), test output passes through, and every lock violation —
/// the macros' and those of the encoding checks rustc evaluates — is kept
/// with its place, once (a crate's lib and test targets report it twice).
fn read_messages(out: impl std::io::BufRead) -> Vec<Violation> {
    let mut found: Vec<Violation> = Vec::new();
    for line in out.lines().map_while(Result::ok) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            // Not JSON: a test binary's own output.
            println!("{line}");
            continue;
        };
        if message["reason"] != "compiler-message" {
            continue;
        }
        let diagnostic = &message["message"];
        if let Some(rendered) = diagnostic["rendered"].as_str() {
            eprint!("{rendered}");
        }
        let text = diagnostic["message"].as_str().unwrap_or_default();
        if diagnostic["level"] != "error" || !is_lock_violation(text) {
            continue;
        }
        let place = user_place(&diagnostic["spans"]).unwrap_or_default();
        let text = text
            .strip_prefix("evaluation panicked: ")
            .unwrap_or(text)
            .to_string();
        let violation = Violation { place, text };
        if !found.contains(&violation) {
            found.push(violation);
        }
    }
    found
}

/// `file:line:column` of a diagnostic in the user's code: the primary span,
/// unless it lies in the standard library (a failed encoding check panics
/// there), then the span that says which constant failed.
fn user_place(spans: &serde_json::Value) -> Option<String> {
    let spans = spans.as_array()?;
    let primary = spans
        .iter()
        .find(|s| s["is_primary"] == true)
        .or_else(|| spans.first())?;
    // Out of the standard library's `panic!` to where it was called: the
    // encoding check, spanned at the user's type.
    let mut span = primary;
    while span["file_name"]
        .as_str()
        .is_some_and(|f| f.starts_with("/rustc/"))
    {
        span = &span["expansion"]["span"];
    }
    Some(format!(
        "{}:{}:{}",
        span["file_name"].as_str()?,
        span["line_start"],
        span["column_start"]
    ))
}

/// Whether a compiler error is one of the lock's: a released section that
/// changed, or a lock file that is corrupt or malformed.
fn is_lock_violation(text: &str) -> bool {
    text.contains("(locked in ") || text.starts_with("the lock file ")
}

/// A lock violation as the compiler reported it.
#[derive(PartialEq, Eq)]
pub struct Violation {
    /// `src/lib.rs:12:5`.
    place: String,
    /// The message.
    text: String,
}

/// The directory of the workspace's root manifest, as cargo finds it.
fn workspace_root(opts: &Cargo) -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["locate-project", "--workspace", "--message-format", "plain"]);
    if let Some(manifest) = &opts.manifest_path {
        cmd.arg("--manifest-path").arg(manifest);
    }
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    let manifest = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    Some(manifest.parent()?.to_path_buf())
}

/// A fresh directory for this run's reports. A new name every run also
/// changes `UPSHIFT_LOCK_REPORT`, which makes cargo re-expand every crate
/// that uses the macros, so no crate is skipped as already checked.
fn report_dir() -> Result<PathBuf, Failure> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "upshift-lock-report-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| {
        Failure(
            format!("cannot create the report directory {}: {e}", dir.display()),
            2,
        )
    })?;
    Ok(dir)
}

/// Every macro expansion wrote a report file; a crate checked twice (lib
/// and its tests) reports the same keys again.
fn read_reports(dir: &Path) -> Result<(Reports, Docs), Failure> {
    let (entries, unreadable) =
        report::read(dir).map_err(|e| Failure(format!("cannot read {}: {e}", dir.display()), 2))?;
    if unreadable > 0 {
        eprintln!(
            "upshift: warning: {unreadable} report line(s) were unreadable; is this upshift CLI the same version as the crate's upshift?"
        );
    }
    let mut out = Reports::new();
    let mut docs = Docs::new();
    let mut warned = std::collections::BTreeSet::new();
    for entry in entries {
        match entry {
            Entry::Docs {
                lock,
                key,
                versions,
            } => {
                let place = (lock, key);
                // A crate's lib and test targets report the same definition
                // twice; two different ones under one name collide.
                if docs.get(&place).is_some_and(|seen| *seen != versions)
                    && warned.insert(place.clone())
                {
                    eprintln!(
                        "upshift: warning: two definitions are named `{}` in {}; \
                         their lock sections and pages collide: give one its own `lock = \"...\"` or name",
                        place.1,
                        place.0.display()
                    );
                }
                docs.insert(place, versions);
            }
            Entry::Lock {
                lock,
                key,
                outcome,
                detail,
            } => {
                let slot = out
                    .entry(lock)
                    .or_default()
                    .entry(key)
                    .or_insert((outcome, String::new()));
                // The most severe outcome of a key wins.
                if outcome <= slot.0 {
                    *slot = (outcome, detail);
                }
            }
        }
    }
    Ok((out, docs))
}

/// Prints the summary; fails with exit code 1 on changed locked sections (or
/// unlocked ones under `--all-locked`), 2 when cargo failed otherwise.
fn summarize(opts: &Run, found: &Found) -> Result<(), Failure> {
    let (cargo_ok, reports) = (found.cargo_ok, &found.reports);
    let cwd = std::env::current_dir().unwrap_or_default();
    let shown = |p: &Path| p.strip_prefix(&cwd).unwrap_or(p).display().to_string();
    let count = |s: Outcome| {
        reports
            .values()
            .flat_map(|keys| keys.values())
            .filter(|(status, _)| *status == s)
            .count()
    };
    // Every violation is a compiler error with its place; the macros'
    // reports say which sections they are, but not where.
    let changed = found.violations.len().max(count(Outcome::Changed));
    let (unlocked, added, ok) = (
        count(Outcome::Unlocked),
        count(Outcome::Added),
        count(Outcome::Ok),
    );
    // Released sections no definition reports any more: a renamed trait or
    // service, a moved or deleted type, a removed derive. Gone unnoticed,
    // they would never be checked again.
    let missing: Vec<(String, String)> = reports
        .iter()
        .flat_map(|(lock, keys)| {
            let text = std::fs::read_to_string(lock).unwrap_or_default();
            let (sections, _) = upshift::schema::lock::parse(&text);
            let lock_text = shown(lock);
            sections
                .into_keys()
                .filter(|key| !keys.contains_key(key))
                .map(move |key| (key, lock_text.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    for (key, lock) in &missing {
        println!(
            "missing   {key} (locked in {lock}, but no definition reports it: a renamed trait or `name = ...`, a moved or deleted type, or a removed derive)"
        );
    }
    for v in &found.violations {
        println!("changed   {}: {}", v.place, v.text);
    }
    for (lock, keys) in reports {
        let lock_text = shown(lock);
        let with = |s: Outcome| -> Vec<&str> {
            keys.iter()
                .filter(|(_, (status, _))| *status == s)
                .map(|(key, _)| key.as_str())
                .collect()
        };
        if found.violations.is_empty() {
            for (key, (status, detail)) in keys {
                if *status == Outcome::Changed {
                    println!("changed   {key} (locked in {lock_text}): {detail}");
                }
            }
        }
        let added_keys = with(Outcome::Added);
        if !added_keys.is_empty() {
            println!("added     {} to {lock_text}", added_keys.join(", "));
        }
        let unlocked_keys = with(Outcome::Unlocked);
        if !unlocked_keys.is_empty() {
            let place = if lock.exists() {
                format!("not in {lock_text}")
            } else {
                format!("no lock file {lock_text}")
            };
            println!("unlocked  {} ({place})", unlocked_keys.join(", "));
        }
        let ok_keys = with(Outcome::Ok);
        if !ok_keys.is_empty() {
            println!("ok        {} ({lock_text})", ok_keys.join(", "));
        }
    }
    println!(
        "{changed} changed, {ok} match the lock, {added} added, {unlocked} not locked, {} missing",
        missing.len()
    );
    if changed > 0 {
        return Err(Failure(
            format!(
                "{changed} locked version(s) or type(s) changed; keep them as they were and declare a new version"
            ),
            1,
        ));
    }
    if !cargo_ok {
        return Err(Failure(
            "cargo check failed (see its errors above); crates that depend on a failing one were not checked".into(),
            2,
        ));
    }
    if !missing.is_empty() {
        return Err(Failure(
            format!(
                "{} released section(s) are no longer reported by any definition; restore the definition (its name, its module, its derive), or, to retire a version on purpose, delete its section from the lock file in the same change",
                missing.len()
            ),
            1,
        ));
    }
    if reports.is_empty() {
        println!(
            "no versions found: no crate here uses #[upshift::interface], #[upshift::state] or #[derive(upshift::Schema)]"
        );
    }
    if unlocked > 0 && opts.mode == Mode::Check {
        if opts.all_locked {
            return Err(Failure(
                format!(
                    "{unlocked} version(s) or type(s) not locked; lock released versions with `upshift lock`"
                ),
                1,
            ));
        }
        println!("lock versions when you release them: `upshift lock`");
    }
    Ok(())
}
