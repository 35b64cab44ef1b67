//! Deterministic simulation of rollouts: the real coordinator (its rules,
//! group commit and UDB writes) driven by simulated node agents under a
//! seeded schedule of faults — lost replies, partitions, node crashes
//! (during an upgrade too) and restarts, coordinator crashes and restarts,
//! clock jumps forward and back. Nothing runs on threads or real time: the
//! coordinator's clock is a `ManualClock`, its UDB is in memory and written
//! inline, every request is one poll, so a seed replays exactly.
//!
//! Checked after every step of every seed:
//! - never more nodes of a group upgrading than the schedule allows (as
//!   recorded, and as the simulated nodes actually are);
//! - never final while a node (alive or not) runs a version below the
//!   upgrade's target;
//! - a slot answered `Granted` is recorded before the answer (no grant the
//!   UDB does not hold), and under `groups:a>b` no node of `b` is granted
//!   while a node of `a` is below the target;
//! - under an approval gate (a third of the seeds), no more nodes upgraded
//!   or upgrading than the gate lets go before the operator approves;
//! - a quarter of the seeds roll the upgrade back at a random moment: the
//!   rollback is refused only once the upgrade is final, and from then on
//!   every rule above holds for the rollback's rollout, which takes the
//!   nodes back to v1 (a node still finishing its upgrade reports it and
//!   then goes back);
//! - at the end, once every fault heals, the rollout is final with every
//!   node at the target, or halted with a reason (a lost slot, a failed
//!   upgrade) — never stuck.
//!
//! `UPSHIFT_SIM_SEEDS=N` runs seeds 0..N (1,000 by default);
//! `UPSHIFT_SIM_SEED=N` runs one, printing its steps. A failure names its
//! seed and the command that replays it.

use std::collections::BTreeMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use upshift::clock::ManualClock;
use upshift::coordinator::Coordinator;
use upshift::coordinator::api::v6::Coordinator as _;
use upshift::coordinator::api::{Heartbeat6, Outcome, RequestError3, Slot};
use upshift::schedule::Registry;
use upshift::udb::MemoryUdb;
use upshift::upgrade::{NodeInfo, NodeState, RolloutState, ScheduleSpec, Upgrade};

const T0: u64 = 1_700_000_000_000;
const SLOT_TIMEOUT: Duration = Duration::from_secs(10);

/// Polls a coordinator request once: in the simulation nothing it awaits
/// is outside it (the UDB is written inline), so it is always ready.
fn now<F: Future>(request: F) -> F::Output {
    let mut request = std::pin::pin!(request);
    match request
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(answer) => answer,
        Poll::Pending => panic!("a coordinator request waited on something outside the simulation"),
    }
}

/// splitmix64: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    /// True with probability `percent` %.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A simulated node with its agent.
#[derive(Debug)]
struct SimNode {
    id: String,
    group: &'static str,
    version: u32,
    alive: bool,
    /// When a crashed node starts again (true time).
    restart_at: u64,
    /// Cut off from the coordinator until then (true time).
    partitioned_until: u64,
    registered: bool,
    /// Upgrading (granted a slot): done at this true time, to this
    /// version, in this upgrade.
    upgrading: Option<(u64, u32, u64)>,
}

struct World {
    rng: Rng,
    /// True time; the coordinator's clock is this plus `skew`.
    t: u64,
    skew: i64,
    clock: ManualClock,
    udb: MemoryUdb,
    coordinator: Option<Coordinator>,
    coordinator_back_at: u64,
    nodes: Vec<SimNode>,
    upgrade: u64,
    limit: usize,
    groups: bool,
    /// The rollout's approval gate, if it has one: nodes before it.
    approval_after: Option<u32>,
    /// The version the rollout (or its rollback) takes the nodes to.
    target: u32,
    /// When the operator rolls the upgrade back, if they do (a step of
    /// the faulty phase).
    rollback_at: Option<usize>,
    trace: Vec<String>,
    verbose: bool,
}

/// Why a seed failed.
type Broken = String;

impl World {
    fn new(seed: u64, verbose: bool) -> Self {
        let mut rng = Rng(seed);
        let clock = ManualClock::at(T0);
        let udb = MemoryUdb::new();
        let count = rng.range(3, 8) as usize;
        let rollback_at = rng.chance(25).then(|| rng.range(0, 400) as usize);
        let nodes = (0..count)
            .map(|i| SimNode {
                id: format!("n{i}"),
                group: if rng.chance(50) { "a" } else { "b" },
                version: 1,
                alive: true,
                restart_at: 0,
                partitioned_until: 0,
                registered: false,
                upgrading: None,
            })
            .collect();
        let mut world = World {
            rng,
            t: T0,
            skew: 0,
            clock,
            udb,
            coordinator: None,
            coordinator_back_at: 0,
            nodes,
            upgrade: 0,
            limit: 0,
            groups: false,
            approval_after: None,
            target: 2,
            rollback_at,
            trace: Vec::new(),
            verbose,
        };
        world.open_coordinator();
        world
    }

    fn open_coordinator(&mut self) {
        let coordinator =
            Coordinator::open_with_clock(self.udb.clone(), Registry::default(), self.clock.clone())
                .expect("the in-memory UDB opens")
                .with_slot_timeout(SLOT_TIMEOUT);
        self.coordinator = Some(coordinator);
    }

    fn log(&mut self, what: String) {
        if self.verbose {
            eprintln!("{:>8} ms  {what}", self.t - T0);
        }
        self.trace.push(format!("{:>8} ms  {what}", self.t - T0));
        if self.trace.len() > 40 {
            self.trace.remove(0);
        }
    }

    fn advance(&mut self, ms: u64) {
        self.t += ms;
        self.sync_clock();
    }

    fn sync_clock(&mut self) {
        self.clock.set(self.t.saturating_add_signed(self.skew));
    }

    fn publish(&mut self) {
        let schedules = [
            "rolling:1",
            "rolling:2",
            "rolling:2,health:1",
            "groups:a>b,rolling:1",
            "rolling:3,health:2",
        ];
        let pick = schedules[self.rng.range(0, schedules.len() as u64) as usize];
        let schedule: ScheduleSpec = pick.parse().expect("a schedule");
        self.limit = pick
            .split(',')
            .find_map(|t| t.strip_prefix("rolling:"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        self.groups = pick.starts_with("groups");
        // A third of the rollouts wait for an operator after 0–2 nodes.
        let gates = if self.rng.chance(33) {
            let after = self.rng.range(0, 3) as u32;
            self.approval_after = Some(after);
            vec![upshift::upgrade::Gate6::Approval { after }]
        } else {
            Vec::new()
        };
        let def = Upgrade {
            service: "Kv".into(),
            from: 1,
            to: 2,
            schedule,
            artifact: "in-process".into(),
            notes: String::new(),
        };
        let coordinator = self.coordinator.as_ref().expect("up at the start");
        self.upgrade = now(coordinator.publish_gated(def, gates)).expect("published");
        let gate = self
            .approval_after
            .map(|n| format!(" and approval:{n}"))
            .unwrap_or_default();
        self.log(format!("published #{} with {pick}{gate}", self.upgrade));
    }

    /// The operator approves, if the rollout has an approval gate.
    fn approve(&mut self) {
        if self.approval_after.is_none() {
            return;
        }
        if let Some(coordinator) = &self.coordinator {
            let answer = now(coordinator.approve(self.upgrade));
            self.log(format!("the operator approves: {answer:?}"));
        }
    }

    /// The operator rolls the upgrade back: refused once it is final.
    fn roll_back(&mut self) -> Result<(), Broken> {
        let Some(coordinator) = &self.coordinator else {
            return Ok(());
        };
        let answer = now(coordinator.rollback(self.upgrade));
        self.log(format!(
            "the operator rolls #{} back: {answer:?}",
            self.upgrade
        ));
        match answer {
            Ok(back) => {
                self.upgrade = back;
                self.target = 1;
                self.approval_after = None;
                Ok(())
            }
            Err(upshift::coordinator::api::RollbackError::Final { .. })
                if self.state() == Some(RolloutState::Final) =>
            {
                Ok(())
            }
            Err(e) => Err(format!("the rollback was refused: {e}")),
        }
    }

    /// Whether a node at `version` is where the rollout takes it.
    fn reached(&self, version: u32) -> bool {
        if self.target >= 2 {
            version >= self.target
        } else {
            version <= self.target
        }
    }

    /// The coordinator, if node `i` can reach it now.
    fn reachable(&self, i: usize) -> bool {
        let node = &self.nodes[i];
        node.alive && node.partitioned_until <= self.t && self.coordinator.is_some()
    }

    /// One round of node `i`'s agent, as `Node::run_agent` does it.
    fn agent_step(&mut self, i: usize) -> Result<(), Broken> {
        if !self.reachable(i) {
            return Ok(());
        }
        // A reply lost on the way back: the request took effect, the agent
        // sees an error and registers again next time.
        let lose_reply = self.rng.chance(4);
        let fails = self.rng.chance(2);
        let took = self.rng.range(50, 1500);
        let t = self.t;
        let coordinator = self.coordinator.as_ref().expect("reachable");
        let node = &mut self.nodes[i];
        if !node.registered {
            let info = NodeInfo {
                id: node.id.clone(),
                address: format!("10.0.0.{i}:7000"),
                group: node.group.into(),
                service: "Kv".into(),
                version: node.version,
            };
            let answer = now(coordinator.register(info));
            node.registered = answer.is_ok() && !lose_reply;
            let what = format!("{} registers at v{}: {answer:?}", node.id, node.version);
            self.log(what);
            return Ok(());
        }
        if let Some((done_at, to, slot_in)) = node.upgrading {
            if t < done_at {
                return Ok(());
            }
            node.upgrading = None;
            let outcome = if fails {
                Outcome::Failed {
                    reason: "the simulated transform failed".into(),
                }
            } else {
                node.version = to;
                Outcome::Upgraded { version: to }
            };
            let answer = now(coordinator.report(node.id.clone(), slot_in, outcome.clone()));
            if lose_reply || answer.is_err() {
                node.registered = false;
            }
            let what = format!("{} reports {outcome:?}: {answer:?}", node.id);
            self.log(what);
            return Ok(());
        }
        let beat = Heartbeat6 {
            id: node.id.clone(),
            address: format!("10.0.0.{i}:7000"),
            version: node.version,
            healthy: true,
            problem: None,
            calls: vec![(node.version, 1)],
            traffic: Vec::new(),
        };
        let pending = match now(coordinator.heartbeat(beat)) {
            Ok(Some(pending)) if pending.from == node.version && !lose_reply => pending,
            Ok(_) => return Ok(()),
            Err(RequestError3::NotRegistered(_) | RequestError3::DuplicateNode { .. }) => {
                node.registered = false;
                return Ok(());
            }
            Err(e) => {
                let what = format!("{} heartbeat refused: {e}", node.id);
                self.log(what);
                return Ok(());
            }
        };
        let id = node.id.clone();
        let answer = now(coordinator.request_slot(id.clone(), pending.upgrade));
        if answer == Ok(Slot::Granted) {
            let recorded = self.udb.content();
            let record = recorded.nodes.get(&id).map(|n| n.state.clone());
            if !matches!(record, Some(NodeState::Upgrading { .. })) {
                return Err(format!(
                    "{id} was granted a slot the UDB does not hold (recorded: {record:?})"
                ));
            }
            if self.groups && self.nodes[i].group == "b" {
                let behind: Vec<&str> = self
                    .nodes
                    .iter()
                    .filter(|n| n.group == "a" && !self.reached(n.version))
                    .map(|n| n.id.as_str())
                    .collect();
                if !behind.is_empty() {
                    return Err(format!(
                        "{id} of group b was granted a slot while {behind:?} of group a are not at v{}",
                        self.target
                    ));
                }
            }
        }
        let node = &mut self.nodes[i];
        match (&answer, lose_reply) {
            (Ok(Slot::Granted), false) => {
                node.upgrading = Some((t + took, pending.to, pending.upgrade));
            }
            (_, true) => node.registered = false,
            _ => {}
        }
        self.log(format!(
            "{id} asks for a slot: {answer:?} (reply lost: {lose_reply})"
        ));
        Ok(())
    }

    /// A fault, or nothing.
    fn fault(&mut self) {
        let roll = self.rng.range(0, 100);
        let i = self.rng.range(0, self.nodes.len() as u64) as usize;
        match roll {
            0..=2 if self.nodes[i].alive => {
                let committed = self.rng.chance(50);
                let node = &mut self.nodes[i];
                // Killed: an upgrade under way either committed its new
                // state or left the old one.
                if let Some((_, to, _)) = node.upgrading.take()
                    && committed
                {
                    node.version = to;
                }
                node.alive = false;
                node.registered = false;
                node.restart_at = self.t + self.rng.range(200, 4000);
                let what = format!(
                    "{} crashes (at v{})",
                    self.nodes[i].id, self.nodes[i].version
                );
                self.log(what);
            }
            3..=5 => {
                let until = self.t + self.rng.range(300, 6000);
                self.nodes[i].partitioned_until = until;
                let what = format!("{} partitioned for {} ms", self.nodes[i].id, until - self.t);
                self.log(what);
            }
            6 if self.coordinator.is_some() => {
                self.coordinator = None;
                self.coordinator_back_at = self.t + self.rng.range(100, 3000);
                self.log("the coordinator crashes".into());
            }
            7 => {
                // A clock step: forward up to 4 s, or back up to 1 s.
                self.skew += if self.rng.chance(70) {
                    self.rng.range(0, 4000) as i64
                } else {
                    -(self.rng.range(0, 1000) as i64)
                };
                self.sync_clock();
                let what = format!("the coordinator's clock steps (skew {} ms)", self.skew);
                self.log(what);
            }
            _ => {}
        }
    }

    fn restarts(&mut self) {
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            if !node.alive && node.restart_at <= self.t {
                node.alive = true;
                let what = format!("{} starts again at v{}", node.id, node.version);
                self.log(what);
            }
        }
        if self.coordinator.is_none() && self.coordinator_back_at <= self.t {
            self.open_coordinator();
            self.log("the coordinator starts again from its UDB".into());
        }
    }

    fn check(&self) -> Result<(), Broken> {
        let content = self.udb.content();
        // `rolling:N` allows N at once in each group.
        for group in ["a", "b"] {
            let recorded = content
                .nodes
                .values()
                .filter(|n| n.info.group == group)
                .filter(|n| matches!(n.state, NodeState::Upgrading { .. }))
                .count();
            if recorded > self.limit {
                return Err(format!(
                    "{recorded} nodes of group {group} recorded upgrading, the schedule allows {}",
                    self.limit
                ));
            }
            let actual = self
                .nodes
                .iter()
                .filter(|n| n.group == group && n.upgrading.is_some())
                .count();
            if actual > self.limit {
                return Err(format!(
                    "{actual} nodes of group {group} upgrading at once, the schedule allows {}",
                    self.limit
                ));
            }
        }
        if let Some(after) = self.approval_after
            && content
                .gates
                .get(&self.upgrade)
                .is_some_and(|g| g.approved_ms.is_none())
        {
            let gone = content
                .nodes
                .values()
                .filter(|n| n.info.version >= 2 || matches!(n.state, NodeState::Upgrading { .. }))
                .count();
            if gone > after as usize {
                return Err(format!(
                    "{gone} nodes upgraded or upgrading before the approval, the gate allows {after}"
                ));
            }
        }
        if let Some(up) = content.upgrades.get(&self.upgrade)
            && up.state == RolloutState::Final
            && let Some(behind) = self.nodes.iter().find(|n| !self.reached(n.version))
        {
            return Err(format!(
                "the rollout is final while {} runs v{} (alive: {})",
                behind.id, behind.version, behind.alive
            ));
        }
        Ok(())
    }

    fn state(&self) -> Option<RolloutState> {
        self.udb
            .content()
            .upgrades
            .get(&self.upgrade)
            .map(|u| u.state.clone())
    }

    /// Runs the seed; how the rollout ended.
    fn run(&mut self) -> Result<RolloutState, Broken> {
        // Everyone registers, then the upgrade is published.
        for i in 0..self.nodes.len() {
            self.agent_step(i)?;
            if !self.nodes[i].registered {
                self.agent_step(i)?;
            }
        }
        self.publish();
        // Faults for a while.
        for step in 0..400 {
            let ms = self.rng.range(5, 100);
            self.advance(ms);
            self.restarts();
            self.fault();
            let i = self.rng.range(0, self.nodes.len() as u64) as usize;
            self.agent_step(i)?;
            self.check()?;
            if self.rng.chance(1) {
                self.approve();
            }
            if self.rollback_at == Some(step) {
                self.roll_back()?;
            }
        }
        // Then every fault heals: the rollout must end.
        self.log("every fault heals".into());
        for node in &mut self.nodes {
            node.partitioned_until = 0;
            node.restart_at = 0;
        }
        self.coordinator_back_at = 0;
        for step in 0..3000 {
            self.advance(100);
            self.restarts();
            // The operator looks after a minute and approves.
            if step == 600 {
                self.approve();
            }
            for i in 0..self.nodes.len() {
                self.agent_step(i)?;
            }
            self.check()?;
            match self.state() {
                Some(RolloutState::Final) => {
                    return match self.nodes.iter().find(|n| !self.reached(n.version)) {
                        Some(n) => Err(format!("final with {} at v{}", n.id, n.version)),
                        None => Ok(RolloutState::Final),
                    };
                }
                Some(halted @ RolloutState::Halted { .. }) => return Ok(halted),
                _ => {}
            }
        }
        Err(format!(
            "stuck: 300 s after every fault healed the rollout is {:?}",
            self.state()
        ))
    }
}

#[test]
fn rollouts_keep_their_invariants_under_seeded_faults() {
    let one: Option<u64> = std::env::var("UPSHIFT_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let count: u64 = std::env::var("UPSHIFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let seeds: Vec<u64> = match one {
        Some(seed) => vec![seed],
        None => (0..count).collect(),
    };
    let started = Instant::now();
    let mut ends: BTreeMap<String, u64> = BTreeMap::new();
    for &seed in &seeds {
        let mut world = World::new(seed, one.is_some());
        let end = world.run();
        if world.target == 1
            && let Ok(end) = &end
        {
            let kind = match end {
                RolloutState::Final => "rolled back: final",
                _ => "rolled back: halted",
            };
            *ends.entry(kind.into()).or_default() += 1;
            continue;
        }
        match end {
            Ok(RolloutState::Halted { reason }) => {
                let kind = if reason.contains("failed to upgrade") {
                    "halted: an upgrade failed"
                } else if reason.contains("stopped reporting while upgrading") {
                    // Partitioned past the slot timeout, or the
                    // coordinator's clock stepped forward past it.
                    "halted: a slot holder went unheard"
                } else {
                    "halted: other"
                };
                *ends.entry(kind.into()).or_default() += 1;
                if kind.ends_with("other") {
                    eprintln!("seed {seed} halted: {reason}");
                }
            }
            Ok(end) => *ends.entry(format!("{end:?}").to_lowercase()).or_default() += 1,
            Err(broken) => panic!(
                "seed {seed}: {broken}\nlast steps:\n{}\nreplay: UPSHIFT_SIM_SEED={seed} cargo test -p upshift-tests --test simulation -- --nocapture",
                world.trace.join("\n"),
            ),
        }
    }
    eprintln!(
        "{} seeds in {:.1} s: {ends:?}",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    // The simulation must reach both ends, or it tests less than it claims.
    if one.is_none() && seeds.len() >= 100 {
        assert!(ends.get("final").copied().unwrap_or(0) > 0, "{ends:?}");
        assert!(
            ends.get("rolled back: final").copied().unwrap_or(0) > 0,
            "no seed rolled back to the end: {ends:?}"
        );
        assert!(ends.len() > 1, "no seed halted: {ends:?}");
    }
}
