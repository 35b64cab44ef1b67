//! Proving an upgrade: property tests of the SOs and transforms a user
//! wrote by hand, for every pair of neighbouring versions, generated from
//! the node's stages alone.
//!
//! The conditions (Ajmani, Liskov and Shrira, *Modular Software Upgrades
//! for Distributed Systems*), each checked on random call sequences:
//!
//! - **transform**: every state of vN drawn from its encoding (and meeting
//!   the invariant declared for vN, if any) transforms to vN+1 without a
//!   panic or an error, into a state that meets vN+1's invariant;
//! - **past SO**: vN calls, with the node upgraded to vN+1 at a random
//!   point and the rest answered through the past SO, get the answers the
//!   vN object alone gives;
//! - **future SO**: vN+1 calls answered on the vN object through the future
//!   SO get the answers the vN+1 object gives on the transformed state, or
//!   a refusal (`Disallowed`);
//! - **mixed**: calls of both versions interleaved, with the upgrade at a
//!   random point, get the answers a node that ran vN+1 from the start
//!   gives.
//!
//! A refused call did not happen: the run it is compared with leaves it
//! out. Where the run being checked has a refusal the other does not, the
//! histories part there and the case ends. Answers compare by value as the
//! return type's encoding reads them (a map's entries in any order).
//!
//! Calls and states are drawn from the encodings every message and state
//! type already declares (`Schema`), from small domains (keys of `""`,
//! `"a"`, `"b"`, numbers mostly below 4) so calls meet on the same keys;
//! time is frozen ([`crate::clock::freeze`]) and moves only between calls,
//! by amounts the case draws. A failing case shrinks to a shortest call
//! sequence and is printed as a script.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use upshift_schema::shape::Shape;

use crate::clock;
use crate::error::DispatchError;
use crate::node::{NodeError, Running, Stage};
use crate::rpc::{Route, Service};
use crate::schema::{self, InterfaceSchema, Rng};
use crate::state::{Snapshot, Versioned};

/// A version's reply type (the generated `vN::Response`), for
/// [`Conformance::accept_future`].
pub trait Reply: Sized + 'static {
    /// The interface version it answers.
    const VERSION: u32;
    /// Reads the reply payload of method `method`; `None` when it is not one.
    fn decode(method: u16, payload: &[u8]) -> Option<Self>;
}

/// Which condition a check tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Property {
    /// The transform is total on drawn states and keeps declared invariants.
    Transform,
    /// The past SO answers vN callers as the vN object would.
    PastSo,
    /// The future SO answers vN+1 callers as the vN+1 object would, or refuses.
    FutureSo,
    /// Both versions' callers, across the upgrade.
    Mixed,
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Property::Transform => "transform",
            Property::PastSo => "past SO",
            Property::FutureSo => "future SO",
            Property::Mixed => "mixed versions",
        })
    }
}

type Accept = Box<dyn Fn(u16, &[u8], &[u8]) -> bool + Send + Sync>;
type Invariant = Box<dyn Fn(&Snapshot) -> Result<(), String> + Send + Sync>;

/// The conformance tests of one service: its stages, and what the user
/// declares beyond them. Build it in a `#[test]` and call
/// [`Conformance::check`]:
///
/// ```text
/// #[test]
/// fn upgrades_conform() {
///     upshift::conformance::Conformance::new(kv::stages()).check();
/// }
/// ```
///
/// (`kv::stages()` being the node's stages; a whole example is in the
/// book's "Proving an upgrade".)
pub struct Conformance {
    stages: Vec<Box<dyn Stage>>,
    cases: u32,
    seed: u64,
    accepts: BTreeMap<u32, Accept>,
    invariants: BTreeMap<u32, Invariant>,
}

impl fmt::Debug for Conformance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conformance")
            .field(
                "versions",
                &self.stages.iter().map(|s| s.version()).collect::<Vec<_>>(),
            )
            .field("cases", &self.cases)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// Cases per property and pair: `UPSHIFT_CONFORMANCE_CASES`, else 256.
fn default_cases() -> u32 {
    std::env::var("UPSHIFT_CONFORMANCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// The seed: `UPSHIFT_CONFORMANCE_SEED`, else a fixed one, so that every
/// run checks the same cases and a failure in CI fails again locally.
fn default_seed() -> u64 {
    std::env::var("UPSHIFT_CONFORMANCE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

const DEFAULT_SEED: u64 = 0x75b5_41f7_c0de_0015;

impl Conformance {
    /// The checks of a node's stages, oldest first, one per version, as
    /// the node runs them (`upshift::node::durable_stage` or `stage`).
    pub fn new(stages: impl IntoIterator<Item = Box<dyn Stage>>) -> Self {
        Conformance {
            stages: stages.into_iter().collect(),
            cases: default_cases(),
            seed: default_seed(),
            accepts: BTreeMap::new(),
            invariants: BTreeMap::new(),
        }
    }

    /// Random cases per property and pair of versions (default 256, or
    /// `UPSHIFT_CONFORMANCE_CASES`).
    pub fn cases(mut self, cases: u32) -> Self {
        self.cases = cases;
        self
    }

    /// The seed the cases are drawn from (default fixed, or
    /// `UPSHIFT_CONFORMANCE_SEED`); a failure names the seed it was found with.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Also accepts a future SO's answer `future` where the object of
    /// `R`'s version answers `object`: for an answer the new version's
    /// specification allows although its object never gives it (an
    /// "unknown" that only an older node says). Consulted only when the two
    /// differ, for calls answered through a future SO.
    pub fn accept_future<R: Reply>(
        mut self,
        accept: impl Fn(&R, &R) -> bool + Send + Sync + 'static,
    ) -> Self {
        let accept: Accept = Box::new(move |method, future, object| {
            match (R::decode(method, future), R::decode(method, object)) {
                (Some(future), Some(object)) => accept(&future, &object),
                _ => false,
            }
        });
        self.accepts.insert(R::VERSION, accept);
        self
    }

    /// What every legal state of `S`'s version satisfies: drawn states
    /// that do not are not transformed (they are not legal), and a
    /// transform must give states that do.
    pub fn invariant<S: Versioned>(
        mut self,
        holds: impl Fn(&S) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        let check: Invariant = Box::new(move |snapshot| {
            let state = S::decode_from(snapshot.version, &snapshot.payload)
                .map_err(|e| format!("the state does not read as v{}: {e}", S::VERSION))?;
            holds(&state)
        });
        self.invariants.insert(S::VERSION, check);
        self
    }

    /// Runs every check and panics with the report if one failed.
    ///
    /// # Panics
    ///
    /// With the report: each failure as a shortest script, and how to run
    /// it again.
    pub fn check(&self) {
        let report = self.run();
        assert!(report.passed(), "{report}");
        eprintln!("{report}");
    }

    /// Runs every check: the property tests of each neighbouring pair of
    /// versions. On a thread of its own, so it may be called from inside
    /// an async test.
    pub fn run(&self) -> Report {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    quiet_panics();
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(self.run_all()),
                        Err(e) => self.stopped(format!("a tokio runtime did not start: {e}")),
                    }
                })
                .join()
                .unwrap_or_else(|panic| {
                    self.stopped(format!(
                        "a panic outside any call: {}",
                        crate::sync::panic_message(&*panic)
                    ))
                })
        })
    }

    /// The report of a run that could not check anything, and why.
    fn stopped(&self, why: String) -> Report {
        Report {
            seed: self.seed,
            checked: Vec::new(),
            skipped: Vec::new(),
            failures: vec![Failure {
                from: 0,
                to: 0,
                property: Property::Transform,
                script: format!("the checks stopped: {why}"),
            }],
        }
    }

    async fn run_all(&self) -> Report {
        let mut report = Report {
            seed: self.seed,
            checked: Vec::new(),
            skipped: Vec::new(),
            failures: Vec::new(),
        };
        let versions: Vec<u32> = self.stages.iter().map(|s| s.version()).collect();
        if self.stages.len() < 2 {
            report.skipped.push(format!(
                "nothing to check: the stages are {versions:?}; there is no pair of neighbouring versions"
            ));
            return report;
        }
        for pair in self.stages.windows(2) {
            let (old, new) = (&*pair[0], &*pair[1]);
            if new.version() != old.version() + 1 {
                report.failures.push(Failure {
                    from: old.version(),
                    to: new.version(),
                    property: Property::Transform,
                    script: format!(
                        "the stages must be one per version, oldest first, with no gap: they are {versions:?}"
                    ),
                });
                continue;
            }
            match Pair::new(old, new) {
                Ok(pair) => self.check_pair(&pair, &mut report).await,
                Err(why) => report.failures.push(Failure {
                    from: old.version(),
                    to: new.version(),
                    property: Property::Transform,
                    script: why,
                }),
            }
        }
        report
    }

    async fn check_pair(&self, pair: &Pair<'_>, report: &mut Report) {
        let (from, to) = (pair.from, pair.to);
        let mut properties = vec![Property::Transform];
        match pair.past {
            true => properties.push(Property::PastSo),
            false => report.skipped.push(format!(
                "v{from} → v{to}: past SO and mixed not checked: the v{to} stage does not answer v{from} calls"
            )),
        }
        match pair.future {
            true => properties.push(Property::FutureSo),
            false => report.skipped.push(format!(
                "v{from} → v{to}: future SO not checked: the v{from} stage does not answer v{to} calls \
                 (build it with `v{from}::service_with_future` to serve newer callers)"
            )),
        }
        if pair.past && pair.future {
            properties.push(Property::Mixed);
        }
        for property in properties {
            if property == Property::Transform && pair.state.is_none() {
                report.skipped.push(format!(
                    "v{from} → v{to}: transform not checked on drawn states: the v{from} stage does not \
                     say what its state encodes as"
                ));
                continue;
            }
            let mut cases = 0;
            let mut failed = None;
            for index in 0..self.cases {
                let mut rng = Rng::new(
                    self.seed
                        ^ u64::from(from).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        ^ (property as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9)
                        ^ u64::from(index).wrapping_mul(0x94d0_49bb_1331_11eb),
                );
                let Some(case) = self.draw(pair, property, &mut rng) else {
                    continue;
                };
                cases += 1;
                if let Some(verdict) = self.verdict(pair, property, &case).await {
                    failed = Some((index, case, verdict));
                    break;
                }
            }
            report.checked.push(Checked {
                from,
                to,
                property,
                cases,
            });
            if let Some((index, case, verdict)) = failed {
                let (case, verdict) = self.shrink(pair, property, case, verdict).await;
                report.failures.push(Failure {
                    from,
                    to,
                    property,
                    script: format!(
                        "{}  (shrunk from case {index})",
                        pair.script(property, &case, &verdict)
                    ),
                });
            }
        }
    }
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed the cases were drawn from.
    pub seed: u64,
    /// Each property checked, per pair of versions.
    pub checked: Vec<Checked>,
    /// What could not be checked, and why.
    pub skipped: Vec<String>,
    /// Each failed check, with its shortest failing case.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The failure of `property` between `from` and `from + 1`, if it failed.
    pub fn failure(&self, from: u32, property: Property) -> Option<&Failure> {
        self.failures
            .iter()
            .find(|f| f.from == from && f.property == property)
    }
}

/// One property checked on one pair of versions.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The older version.
    pub from: u32,
    /// The newer version.
    pub to: u32,
    /// What was checked.
    pub property: Property,
    /// How many cases ran (drawn states that break a declared invariant
    /// are not cases).
    pub cases: u32,
}

/// A failed check.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The older version.
    pub from: u32,
    /// The newer version.
    pub to: u32,
    /// What failed.
    pub property: Property,
    /// The shortest failing case, as a script of calls and answers.
    pub script: String,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cases: u32 = self.checked.iter().map(|c| c.cases).sum();
        writeln!(
            f,
            "upshift conformance: {} checks, {cases} cases, {} failed",
            self.checked.len(),
            self.failures.len()
        )?;
        for c in &self.checked {
            let failed = self
                .failures
                .iter()
                .any(|x| x.from == c.from && x.property == c.property);
            writeln!(
                f,
                "  {} v{} → v{} {} ({} cases)",
                if failed { "FAILED" } else { "ok    " },
                c.from,
                c.to,
                c.property,
                c.cases
            )?;
        }
        for s in &self.skipped {
            writeln!(f, "  skipped: {s}")?;
        }
        for x in &self.failures {
            writeln!(f, "\n{}", x.script)?;
        }
        if !self.passed() {
            writeln!(
                f,
                "\nThe cases come from seed {}: set UPSHIFT_CONFORMANCE_SEED={} to draw them again, \
                 UPSHIFT_CONFORMANCE_CASES for more.",
                self.seed, self.seed
            )?;
        }
        Ok(())
    }
}

/// What one version's calls look like.
struct Calls {
    methods: Vec<Method>,
}

struct Method {
    name: String,
    index: u16,
    args: Vec<(String, Shape)>,
    returns: Shape,
}

impl Calls {
    fn of(service: &Service, version: u32) -> Result<Calls, String> {
        let (schema, encodings): (&InterfaceSchema, _) = service
            .describe(version)
            .ok_or_else(|| format!("the service does not answer v{version} calls"))?;
        if encodings.len() != schema.methods.len() {
            return Err(format!(
                "v{version} of `{}` does not say what its calls encode as (a hand-written \
                 `Dispatch`?); the conformance tests need the dispatcher `#[upshift::interface]` \
                 generates",
                schema.service
            ));
        }
        let methods = schema
            .methods
            .iter()
            .zip(encodings)
            .map(|(m, e)| {
                let args = m
                    .args
                    .iter()
                    .zip(e.args)
                    .map(|(a, enc)| Ok((a.name.to_string(), schema::shape_of(enc)?)))
                    .collect::<Result<_, String>>()?;
                Ok(Method {
                    name: m.name.to_string(),
                    index: m.index,
                    args,
                    returns: schema::shape_of(e.returns)?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Calls { methods })
    }
}

/// Two neighbouring stages and what their calls and states look like.
struct Pair<'a> {
    old: &'a dyn Stage,
    new: &'a dyn Stage,
    from: u32,
    to: u32,
    /// The calls of `from` and of `to`.
    calls: BTreeMap<u32, Calls>,
    /// Whether the new stage answers `from` calls (through its past SO).
    past: bool,
    /// Whether the old stage answers `to` calls (through its future SO).
    future: bool,
    /// What the old version's state encodes as.
    state: Option<Shape>,
}

impl<'a> Pair<'a> {
    fn new(old: &'a dyn Stage, new: &'a dyn Stage) -> Result<Self, String> {
        let (from, to) = (old.version(), new.version());
        let old_service = start(old, None)?.service;
        let new_service = start(new, None)?.service;
        let mut calls = BTreeMap::new();
        calls.insert(from, Calls::of(&old_service, from)?);
        calls.insert(to, Calls::of(&new_service, to)?);
        Ok(Pair {
            old,
            new,
            from,
            to,
            calls,
            past: new_service.describe(from).is_some(),
            future: old_service.describe(to).is_some(),
            state: old.state_encoding().map(schema::shape_of).transpose()?,
        })
    }

    fn snapshot(&self, payload: &[u8]) -> Snapshot {
        Snapshot {
            version: self.from,
            applied: 0,
            payload: payload.to_vec(),
        }
    }
}

/// Starts `stage` in memory, a panic caught as an error.
fn start(stage: &dyn Stage, snapshot: Option<&Snapshot>) -> Result<Running, String> {
    match catch_unwind(AssertUnwindSafe(|| stage.start_in_memory(snapshot))) {
        Ok(Some(Ok(running))) => Ok(running),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(None) => Err(format!(
            "the v{} stage cannot start in memory (`Stage::start_in_memory`); the conformance \
             tests run stages made with `durable_stage` or `stage`",
            stage.version()
        )),
        Err(panic) => Err(format!("it panicked: {}", panic_text(&*panic))),
    }
}

/// What a panic said, where: as the hook recorded it on this thread, else
/// its message alone.
/// A running stage's state, encoded (`read` is its `Running::snapshot`);
/// a panic caught as an error.
fn encode(
    read: &(dyn Fn() -> Result<Snapshot, NodeError> + Send + Sync),
) -> Result<Snapshot, String> {
    match catch_unwind(AssertUnwindSafe(read)) {
        Ok(Ok(snapshot)) => Ok(snapshot),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!(
            "reading the state panicked: {}",
            panic_text(&*panic)
        )),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(recorded) = LAST_PANIC.with(|p| p.borrow_mut().take()) {
        return recorded;
    }
    crate::sync::panic_message(panic)
}

thread_local! {
    /// Set on the thread that runs the checks: its panics are outcomes,
    /// recorded rather than printed.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Makes panics on this thread quiet: a case that panics is reported in
/// the script (with where it panicked), and shrinking it would otherwise
/// print one backtrace per attempt. Panics on every other thread go to the
/// hook that was there before.
fn quiet_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(std::cell::Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let text = format!("{}{at}", crate::sync::panic_message(info.payload()));
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
}

/// One drawn case: where the node starts, the calls, and when it upgrades.
#[derive(Debug, Clone)]
struct Case {
    /// The old version's state, encoded; `None` for fresh state.
    start: Option<Vec<u8>>,
    steps: Vec<Step>,
    /// The upgrade happens before this step (`steps.len()`: after the last).
    switch: usize,
}

#[derive(Debug, Clone)]
struct Step {
    /// Time that passes before the call.
    wait_ms: u64,
    version: u32,
    /// Index into the version's `Calls::methods`.
    method: usize,
    /// The arguments, encoded.
    payload: Vec<u8>,
}

/// The frozen time every run starts at (2027-01-15).
const T0: u64 = 1_800_000_000_000;
/// The longest call sequence drawn.
const MAX_STEPS: u64 = 12;

impl Conformance {
    fn draw(&self, pair: &Pair<'_>, property: Property, rng: &mut Rng) -> Option<Case> {
        if property == Property::Transform {
            let start = self.draw_state(pair, rng)?;
            return Some(Case {
                start: Some(start),
                steps: Vec::new(),
                switch: 0,
            });
        }
        let start = if rng.below(2) == 0 {
            None
        } else {
            self.draw_state(pair, rng)
        };
        let n = 1 + rng.below(MAX_STEPS) as usize;
        let mut steps = Vec::with_capacity(n);
        for _ in 0..n {
            let version = match property {
                Property::PastSo => pair.from,
                Property::FutureSo => pair.to,
                _ if rng.below(2) == 0 => pair.from,
                _ => pair.to,
            };
            let calls = &pair.calls[&version];
            if calls.methods.is_empty() {
                continue;
            }
            let method = rng.below(calls.methods.len() as u64) as usize;
            let mut payload = Vec::new();
            for (_, shape) in &calls.methods[method].args {
                payload.extend(schema::draw_small(shape, rng));
            }
            let wait_ms = [0, 0, 0, 250, 1000, 3000][rng.below(6) as usize];
            steps.push(Step {
                wait_ms,
                version,
                method,
                payload,
            });
        }
        let switch = match property {
            Property::FutureSo => steps.len(),
            _ => rng.below(steps.len() as u64 + 1) as usize,
        };
        Some(Case {
            start,
            steps,
            switch,
        })
    }

    /// A state of the old version drawn from its encoding that meets its
    /// declared invariant; `None` when eight draws in a row did not.
    fn draw_state(&self, pair: &Pair<'_>, rng: &mut Rng) -> Option<Vec<u8>> {
        let shape = pair.state.as_ref()?;
        (0..8).find_map(|_| {
            let payload = schema::draw_small(shape, rng);
            let legal = self
                .invariants
                .get(&pair.from)
                .is_none_or(|holds| holds(&pair.snapshot(&payload)).is_ok());
            legal.then_some(payload)
        })
    }
}

/// How a call ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// The encoded reply.
    Answer(Vec<u8>),
    /// An SO refused it (`Disallowed`).
    Refused(String),
    /// It panicked or the dispatcher failed.
    Failed(String),
}

/// Which node a run plays the calls on.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// The old version throughout.
    Old,
    /// The old version, upgraded before step `switch`.
    Upgraded { switch: usize },
    /// The new version from the start, on the transformed state.
    New,
}

/// What a run saw: each step's outcome and route (`None` when left out),
/// and where it could not go on (a start or transform that failed).
struct Played {
    outcomes: Vec<Option<(Outcome, Route)>>,
    broke: Option<(usize, String)>,
}

/// Why a case fails.
struct Verdict {
    /// The step it fails at (`steps.len()` after the last).
    at: usize,
    what: String,
    /// What the checked run saw up to there.
    seen: Vec<Option<(Outcome, Route)>>,
}

impl Pair<'_> {
    /// Plays `case` as `plan` says, leaving out the steps `skip` marks.
    async fn play(&self, case: &Case, plan: Plan, skip: &[bool]) -> Played {
        let time = clock::freeze(T0);
        let mut now = T0;
        let mut played = Played {
            outcomes: Vec::new(),
            broke: None,
        };
        let initial = case.start.as_deref().map(|p| self.snapshot(p));
        let (stage, mut upgraded) = match plan {
            Plan::New => (self.new, true),
            _ => (self.old, false),
        };
        let mut running = match start(stage, initial.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                let what = match plan {
                    Plan::New => format!(
                        "the transform to v{} failed on the start state: {e}",
                        self.to
                    ),
                    _ => format!("the start state does not start v{}: {e}", self.from),
                };
                played.broke = Some((0, what));
                return played;
            }
        };
        let mut service = Arc::new(running.service);
        // One more round than steps: an upgrade after the last call.
        for i in 0..=case.steps.len() {
            if let Plan::Upgraded { switch } = plan
                && i == switch
                && !upgraded
            {
                let next = encode(&*running.snapshot)
                    .and_then(|snapshot| start(self.new, Some(&snapshot)));
                match next {
                    Ok(next) => {
                        running = next;
                        service = Arc::new(running.service);
                        upgraded = true;
                    }
                    Err(e) => {
                        played.broke = Some((
                            i,
                            format!(
                                "the transform to v{} failed on the state the calls before reached: {e}",
                                self.to
                            ),
                        ));
                        return played;
                    }
                }
            }
            let Some(step) = case.steps.get(i) else {
                break;
            };
            now += step.wait_ms;
            time.set(now);
            if skip.get(i).copied().unwrap_or(false) {
                played.outcomes.push(None);
                continue;
            }
            let method = self.calls[&step.version].methods[step.method].index;
            let route = service.route(step.version).unwrap_or(Route::Object);
            let outcome = call(service.clone(), step.version, method, step.payload.clone()).await;
            let failed = matches!(outcome, Outcome::Failed(_));
            played.outcomes.push(Some((outcome, route)));
            // What a failed call leaves behind (a poisoned lock, half a
            // change) is not a state to go on from.
            if failed {
                break;
            }
        }
        played
    }
}

/// Calls `service` in a task of its own, so a panic is an outcome.
async fn call(service: Arc<Service>, version: u32, method: u16, payload: Vec<u8>) -> Outcome {
    let task = tokio::spawn(async move { service.call_local(version, method, &payload).await });
    match task.await {
        Ok(Some(Ok(reply))) => Outcome::Answer(reply),
        Ok(Some(Err(DispatchError::Disallowed(why)))) => Outcome::Refused(why.to_string()),
        Ok(Some(Err(e))) => Outcome::Failed(e.to_string()),
        Ok(None) => Outcome::Failed(format!("the node does not answer v{version} calls")),
        Err(e) if e.is_panic() => {
            Outcome::Failed(format!("panicked: {}", panic_text(&*e.into_panic())))
        }
        Err(_) => Outcome::Failed("the call was cancelled".into()),
    }
}

impl Conformance {
    /// Why `case` fails `property`, or `None` when it passes.
    async fn verdict(&self, pair: &Pair<'_>, property: Property, case: &Case) -> Option<Verdict> {
        let (subject, reference) = match property {
            Property::Transform => return self.transform_verdict(pair, case),
            Property::PastSo => (
                Plan::Upgraded {
                    switch: case.switch,
                },
                Plan::Old,
            ),
            Property::FutureSo => (Plan::Old, Plan::New),
            Property::Mixed => (
                Plan::Upgraded {
                    switch: case.switch,
                },
                Plan::New,
            ),
        };
        let checked = pair.play(case, subject, &[]).await;
        if let Some((at, what)) = checked.broke {
            return Some(Verdict {
                at,
                what,
                seen: checked.outcomes,
            });
        }
        // A refused call did not happen: the reference leaves it out.
        let skip: Vec<bool> = checked
            .outcomes
            .iter()
            .map(|o| matches!(o, Some((Outcome::Refused(_), _))))
            .collect();
        let expected = pair.play(case, reference, &skip).await;
        if let Some((at, what)) = expected.broke {
            return Some(Verdict {
                at,
                what,
                seen: checked.outcomes,
            });
        }
        let fail = |at: usize, what: String| {
            Some(Verdict {
                at,
                what,
                seen: checked.outcomes[..=at].to_vec(),
            })
        };
        for (i, (got, want)) in checked.outcomes.iter().zip(&expected.outcomes).enumerate() {
            let (Some((got, route)), Some((want, _))) = (got, want) else {
                continue;
            };
            let step = &case.steps[i];
            let method = &pair.calls[&step.version].methods[step.method];
            match (got, want) {
                (Outcome::Failed(_), _) => {
                    return fail(
                        i,
                        "a call must be answered or refused, and this one failed".into(),
                    );
                }
                (_, Outcome::Failed(why)) => {
                    return fail(
                        i,
                        format!(
                            "{} failed on this call: {why}",
                            reference_name(pair, reference)
                        ),
                    );
                }
                (Outcome::Refused(_), _) => {}
                // The reference refused what the checked run answered: from
                // here the two histories differ, and nothing more compares.
                (Outcome::Answer(_), Outcome::Refused(_)) => break,
                (Outcome::Answer(a), Outcome::Answer(b)) => {
                    if schema::same_value(&method.returns, a, b) {
                        continue;
                    }
                    let accepted = matches!(route, Route::FutureSo(_))
                        && self
                            .accepts
                            .get(&step.version)
                            .is_some_and(|accept| accept(method.index, a, b));
                    if !accepted {
                        return fail(
                            i,
                            format!(
                                "{} answers {}",
                                reference_name(pair, reference),
                                schema::show_value(&method.returns, b)
                            ),
                        );
                    }
                }
            }
        }
        None
    }

    fn transform_verdict(&self, pair: &Pair<'_>, case: &Case) -> Option<Verdict> {
        let snapshot = pair.snapshot(case.start.as_deref().unwrap_or_default());
        let verdict = |what: String| {
            Some(Verdict {
                at: 0,
                what,
                seen: Vec::new(),
            })
        };
        if let Err(e) = start(pair.old, Some(&snapshot)) {
            return verdict(format!(
                "a state drawn from v{}'s encoding does not start v{}: {e}. Does each state type's \
                 `Schema` describe its serde encoding?",
                pair.from, pair.from
            ));
        }
        let running = match start(pair.new, Some(&snapshot)) {
            Ok(running) => running,
            Err(e) => return verdict(format!("the transform failed: {e}")),
        };
        let holds = self.invariants.get(&pair.to)?;
        let after = match encode(&*running.snapshot) {
            Ok(after) => after,
            Err(e) => return verdict(format!("the transformed state does not encode: {e}")),
        };
        holds(&after).err().and_then(|why| {
            verdict(format!(
                "the transformed state breaks v{}'s invariant: {why}",
                pair.to
            ))
        })
    }

    /// The shortest case that still fails, found by leaving steps out,
    /// upgrading earlier, starting fresh and waiting less.
    async fn shrink(
        &self,
        pair: &Pair<'_>,
        property: Property,
        case: Case,
        verdict: Verdict,
    ) -> (Case, Verdict) {
        let (mut best, mut verdict) = (case, verdict);
        let mut budget = 1_000;
        'shrinking: loop {
            for candidate in smaller(&best, verdict.at) {
                if budget == 0 {
                    break 'shrinking;
                }
                budget -= 1;
                if let Some(v) = self.verdict(pair, property, &candidate).await {
                    (best, verdict) = (candidate, v);
                    continue 'shrinking;
                }
            }
            break;
        }
        (best, verdict)
    }
}

/// The cases one step smaller than `case`, which fails at step `at`.
fn smaller(case: &Case, at: usize) -> Vec<Case> {
    let mut out = Vec::new();
    if at + 1 < case.steps.len() {
        let mut c = case.clone();
        c.steps.truncate(at + 1);
        c.switch = c.switch.min(c.steps.len());
        out.push(c);
    }
    for i in (0..case.steps.len()).rev() {
        let mut c = case.clone();
        c.steps.remove(i);
        if i < c.switch {
            c.switch -= 1;
        }
        out.push(c);
    }
    if case.switch > 0 {
        let mut c = case.clone();
        c.switch -= 1;
        out.push(c);
    }
    if case.start.is_some() && !case.steps.is_empty() {
        let mut c = case.clone();
        c.start = None;
        out.push(c);
    }
    for i in 0..case.steps.len() {
        if case.steps[i].wait_ms > 0 {
            let mut c = case.clone();
            c.steps[i].wait_ms = 0;
            out.push(c);
        }
    }
    out
}

fn reference_name(pair: &Pair<'_>, plan: Plan) -> String {
    match plan {
        Plan::Old => format!("the v{} object, never upgraded,", pair.from),
        _ => format!(
            "a node that ran v{} from the start (on the transformed state)",
            pair.to
        ),
    }
}

impl Pair<'_> {
    /// A failing case as a script a person reads.
    fn script(&self, property: Property, case: &Case, verdict: &Verdict) -> String {
        use std::fmt::Write;
        let (from, to) = (self.from, self.to);
        let headline = match property {
            Property::Transform => "a legal state does not transform as it must".to_string(),
            Property::PastSo => format!(
                "after the upgrade, a v{from} caller is not answered as the v{from} object answers"
            ),
            Property::FutureSo => format!(
                "a v{to} caller on a v{from} node is neither answered as the v{to} object answers nor refused"
            ),
            Property::Mixed => format!(
                "across the upgrade, a caller is not answered as by a node that ran v{to} from the start"
            ),
        };
        let mut out = format!("v{from} → v{to}, {property}: {headline}.\n");
        match (&case.start, &self.state) {
            (None, _) => out.push_str("  start: fresh state (`Default`)\n"),
            (Some(payload), Some(shape)) => {
                let _ = writeln!(
                    out,
                    "  start: v{from} state {}",
                    schema::show_value(shape, payload)
                );
            }
            (Some(_), None) => out.push_str("  start: a drawn state\n"),
        }
        for (i, step) in case.steps.iter().enumerate().take(verdict.at + 1) {
            if property != Property::FutureSo && i == case.switch {
                let _ = writeln!(out, "  -- upgrade to v{to}: the state is transformed");
            }
            let method = &self.calls[&step.version].methods[step.method];
            let wait = match step.wait_ms {
                0 => String::new(),
                ms => format!("{ms} ms later, "),
            };
            let _ = write!(
                out,
                "  {}. {wait}v{} {}",
                i + 1,
                step.version,
                self.show_call(method, &step.payload)
            );
            match verdict.seen.get(i) {
                Some(Some((outcome, route))) => {
                    let shown = match outcome {
                        Outcome::Answer(reply) => schema::show_value(&method.returns, reply),
                        Outcome::Refused(why) => format!("refused: {why}"),
                        Outcome::Failed(why) => format!("failed: {why}"),
                    };
                    let _ = writeln!(out, " → {shown}   [{}]", route_name(*route));
                }
                _ => out.push('\n'),
            }
        }
        if property != Property::FutureSo
            && case.switch == case.steps.len()
            && verdict.at >= case.switch
        {
            let _ = writeln!(out, "  -- upgrade to v{to}: the state is transformed");
        }
        let _ = writeln!(out, "  but {}", verdict.what);
        out
    }

    fn show_call(&self, method: &Method, payload: &[u8]) -> String {
        schema::show_call(&method.name, &method.args, payload)
    }
}

fn route_name(route: Route) -> &'static str {
    match route {
        Route::Object => "object",
        Route::PastSo(_) => "past SO",
        Route::FutureSo(_) => "future SO",
    }
}
