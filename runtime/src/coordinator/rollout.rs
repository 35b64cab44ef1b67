//! The rollout state machine: every rule that changes the UDB's content
//! (grant, halt, expire, finalize), applied to the in-memory content and
//! recorded in the batch that the coordinator writes before it answers.

use std::collections::BTreeSet;
use std::time::Duration;

use super::analysis::{Tally, Verdict};
use crate::schedule::{Decision, Registry, Rollout};
use crate::udb::{Batch, Content};
use crate::upgrade::api::{
    ApproveError, Control, ControlError, ForgetError, Heartbeat6, Outcome, Pending, PublishError,
    PublishError3, RequestError3, RollbackError, Slot,
};
use crate::upgrade::{
    Event, Gate6, GateRecord, NodeInfo, NodeRecord, NodeState, RolloutState, Upgrade, UpgradeRecord,
};

/// A change to make under the coordinator's lock: the content as it is, what
/// to write, and how to take the change back if the UDB refuses the write.
pub(super) struct Txn<'a> {
    pub(super) content: &'a mut Content,
    /// What the nodes' calls did (memory only: never written, never undone).
    pub(super) tally: &'a mut Tally,
    batch: Batch,
    undo: Vec<Undo>,
    /// Rollout state changes, told once they are durable.
    notices: Vec<Notice>,
    pub(super) now: u64,
    /// See [`Rollout::heard_within_ms`].
    pub(super) heard_within_ms: u64,
    /// Who made the request the changes come from (`operator alice`), from
    /// its certificate; named in each event it causes.
    pub(super) by: Option<String>,
    /// Slots the transaction freed (nodes no longer upgrading).
    pub(super) freed: u32,
}

/// A rollout's state changed: what a webhook is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `published`, `paused`, `resumed`, `halted`, `aborted` or `final`.
    pub kind: &'static str,
    /// The upgrade.
    pub upgrade: u64,
    /// Its service.
    pub service: String,
    /// Its `from`.
    pub from: u32,
    /// Its `to`.
    pub to: u32,
    /// Why it halted.
    pub reason: Option<String>,
    /// Who asked, when a caller's certificate named them.
    pub by: Option<String>,
    /// When, Unix milliseconds.
    pub at_ms: u64,
}

impl Notice {
    /// The notice of a rollout going from `was` (none: just published) to
    /// `now`'s state, if its state changed.
    fn of(
        was: Option<&RolloutState>,
        now: &UpgradeRecord,
        at_ms: u64,
        by: Option<String>,
    ) -> Option<Notice> {
        let kind = match (was, &now.state) {
            (None, _) if now.def.is_rollback() => "rollback",
            (None, _) => "published",
            (Some(a), b) if std::mem::discriminant(a) == std::mem::discriminant(b) => return None,
            (_, RolloutState::Paused) => "paused",
            (_, RolloutState::Active) => "resumed",
            (_, RolloutState::Halted { .. }) => "halted",
            (_, RolloutState::Aborted) => "aborted",
            (_, RolloutState::Final) => "final",
        };
        let reason = match &now.state {
            RolloutState::Halted { reason } => Some(reason.clone()),
            _ => None,
        };
        Some(Notice {
            kind,
            upgrade: now.id,
            service: now.def.service.clone(),
            from: now.def.from,
            to: now.def.to,
            reason,
            by,
            at_ms,
        })
    }
}

/// How to take a transaction's changes back from the content, should the
/// UDB refuse to record them.
pub(super) struct UndoLog(Vec<Undo>);

impl UndoLog {
    /// Takes back every change, newest first: the UDB refused them, so the
    /// content must not show them. Costs what the transaction changed, not
    /// what the UDB holds. Transactions made after this one are taken back
    /// first.
    pub(super) fn apply(self, content: &mut Content) {
        for undo in self.0.into_iter().rev() {
            match undo {
                Undo::Node(id, Some(old)) => {
                    content.nodes.insert(id, old);
                }
                Undo::Node(id, None) => {
                    content.nodes.remove(&id);
                }
                Undo::Upgrade(id, Some(old)) => {
                    content.upgrades.insert(id, old);
                }
                Undo::Upgrade(id, None) => {
                    content.upgrades.remove(&id);
                }
                Undo::Event => {
                    content.events.pop();
                }
                Undo::Gates(id, Some(old)) => {
                    content.gates.insert(id, old);
                }
                Undo::Gates(id, None) => {
                    content.gates.remove(&id);
                }
            }
        }
    }
}

/// The value a record had before a transaction changed it.
enum Undo {
    Node(String, Option<NodeRecord>),
    Upgrade(u64, Option<UpgradeRecord>),
    Event,
    Gates(u64, Option<GateRecord>),
}

impl<'a> Txn<'a> {
    /// A transaction over `content` at `now` (Unix milliseconds), where a
    /// node's reports count if it was heard from within `heard_within`.
    pub(super) fn new(
        content: &'a mut Content,
        tally: &'a mut Tally,
        now: u64,
        heard_within: Duration,
    ) -> Self {
        Txn {
            content,
            tally,
            batch: Batch::default(),
            undo: Vec::new(),
            notices: Vec::new(),
            now,
            heard_within_ms: heard_within.as_millis() as u64,
            by: None,
            freed: 0,
        }
    }

    /// What the transaction wrote, and how to take it back.
    pub(super) fn finish(self) -> (Batch, UndoLog, Vec<Notice>) {
        (self.batch, UndoLog(self.undo), self.notices)
    }

    /// A node that holds a slot and has not been heard from for `timeout`
    /// died or hung mid-upgrade: it would hold the slot forever, so it is
    /// marked failed and its rollout halts for an operator to look (as a
    /// failed report does). If it comes back at the new version, it counts
    /// as upgraded.
    pub(super) fn expire_slots(&mut self, timeout: Duration) {
        let timeout_ms = timeout.as_millis() as u64;
        let lost: Vec<NodeRecord> = self
            .content
            .nodes
            .values()
            .filter(|n| {
                matches!(n.state, NodeState::Upgrading { .. })
                    && self.now.saturating_sub(n.last_seen_ms) > timeout_ms
            })
            .cloned()
            .collect();
        for node in lost {
            let NodeState::Upgrading { to } = node.state else {
                continue;
            };
            let silent = self.now.saturating_sub(node.last_seen_ms) / 1000;
            let reason = format!(
                "stopped reporting while upgrading to v{to} (nothing heard for {silent} s)"
            );
            let id = node.info.id.clone();
            let service = node.info.service.clone();
            self.node(NodeRecord {
                state: NodeState::Failed {
                    to,
                    reason: reason.clone(),
                },
                ..node
            });
            let up = active_for(self.content, &service).cloned();
            let upgrade = up.as_ref().map(|u| u.id);
            self.event(Some(&id), upgrade, format!("slot expired: {reason}"));
            if let Some(up) = up
                && up.state == RolloutState::Active
            {
                self.halt(up, None, format!("node {id} {reason}"));
            }
        }
    }

    pub(super) fn event(&mut self, node: Option<&str>, upgrade: Option<u64>, what: String) {
        let seq = self.content.events.last().map_or(1, |e| e.seq + 1);
        let event = Event {
            seq,
            at_ms: self.now,
            node: node.map(str::to_string),
            upgrade,
            what,
            by: self.by.clone(),
        };
        tracing::info!(node, upgrade, by = event.by, "{}", event.what);
        self.content.events.push(event.clone());
        self.undo.push(Undo::Event);
        self.batch.events.push(event);
    }

    /// Halts rollout `up` for an operator to look, saying why.
    pub(super) fn halt(&mut self, up: UpgradeRecord, node: Option<&str>, reason: String) {
        let id = up.id;
        self.upgrade(UpgradeRecord {
            state: RolloutState::Halted {
                reason: reason.clone(),
            },
            ..up
        });
        self.event(node, Some(id), format!("rollout halted: {reason}"));
    }

    /// Records `record` as the node's new state.
    pub(super) fn node(&mut self, record: NodeRecord) {
        let id = record.info.id.clone();
        let old = self.content.nodes.insert(id.clone(), record.clone());
        let upgrading = |n: &NodeRecord| matches!(n.state, NodeState::Upgrading { .. });
        if old.as_ref().is_some_and(upgrading) && !upgrading(&record) {
            self.freed += 1;
        }
        self.undo.push(Undo::Node(id, old));
        self.batch.nodes.push(record);
    }

    /// Records `record` as the upgrade's new state.
    /// Every change of a rollout's state passes here, and is noticed.
    pub(super) fn upgrade(&mut self, record: UpgradeRecord) {
        let old = self.content.upgrades.insert(record.id, record.clone());
        let was = old.as_ref().map(|o| &o.state);
        if let Some(notice) = Notice::of(was, &record, self.now, self.by.clone()) {
            self.notices.push(notice);
        }
        self.undo.push(Undo::Upgrade(record.id, old));
        self.batch.upgrades.push(record);
    }

    /// Marks the service's upgrade final once every node runs its version
    /// and the schedule's health gates pass (so a node that died after
    /// upgrading, or turned unhealthy, keeps the rollout open).
    pub(super) fn finalize(&mut self, service: &str) {
        let Some(up) = self
            .content
            .upgrades
            .values()
            .find(|u| u.def.service == service && u.state == RolloutState::Active)
            .cloned()
        else {
            return;
        };
        let nodes: Vec<&NodeRecord> = self
            .content
            .nodes
            .values()
            .filter(|n| n.info.service == service)
            .collect();
        // A node still changing version (as after a rollback of an upgrade
        // it was in the middle of) may yet land elsewhere. And a rollback's
        // target is where its nodes came from, so a node's record says it
        // is there also when the node went silent mid-upgrade and may have
        // arrived: each must be heard from since the rollback began.
        if nodes.is_empty()
            || nodes.iter().any(|n| {
                !up.def.reached(n.info.version)
                    || matches!(n.state, NodeState::Upgrading { .. })
                    || unheard_by_rollback(&up, n.last_seen_ms)
            })
        {
            return;
        }
        // An approval gate over every node holds the rollout open, and with
        // it the window for a rollback, until an operator approves.
        if self
            .content
            .gates
            .get(&up.id)
            .is_some_and(GateRecord::awaits_approval)
        {
            return;
        }
        // An analysis gate holds it until the new version is judged.
        match analysis(self.content, self.tally, &up) {
            Verdict::Within => {}
            Verdict::Judging(_) => return,
            Verdict::Breached(reason) => {
                self.halt(up, None, reason);
                return;
            }
        }
        let rollout = Rollout {
            upgrade: &up,
            nodes,
            now_ms: self.now,
            heard_within_ms: self.heard_within_ms,
        };
        match Registry::gates_pass(&up.def.schedule, &rollout) {
            Decision::Go => {}
            Decision::Wait(_) => return,
            Decision::Halt(reason) => {
                self.halt(up, None, reason);
                return;
            }
        }
        self.upgrade(UpgradeRecord {
            state: RolloutState::Final,
            ..up.clone()
        });
        self.event(
            None,
            Some(up.id),
            format!("every node runs v{}: upgrade final", up.def.to),
        );
    }

    /// A node registers (again, after a restart): its version tells how an
    /// upgrade it held went. An id held by a live node elsewhere is refused:
    /// two processes must never share one record (and so one slot).
    pub(super) fn register(&mut self, node: NodeInfo) -> Result<(), RequestError3> {
        let id = node.id.clone();
        let service = node.service.clone();
        if let Some(old) = self.content.nodes.get(&id)
            && old.info.address != node.address
            && self.heard(old)
        {
            return Err(self.duplicate(old));
        }
        let mut restarted = None;
        let record = match self.content.nodes.get(&id).cloned() {
            Some(old) => {
                // A node that restarted: its version tells how an upgrade it held went.
                let state = match &old.state {
                    NodeState::Upgrading { to } => {
                        // Said in the history: otherwise a second grant to
                        // the node would look like the first granted twice.
                        restarted = Some(if node.version == *to {
                            format!("; it restarted while upgrading and runs v{to}")
                        } else {
                            format!(
                                "; it restarted before its upgrade to v{to} took, which frees its slot"
                            )
                        });
                        NodeState::Running
                    }
                    // Lost mid-upgrade, but it got there.
                    NodeState::Failed { to, .. } if node.version == *to => NodeState::Running,
                    other => other.clone(),
                };
                NodeRecord {
                    upgraded_at_ms: if node.version != old.info.version {
                        Some(self.now)
                    } else {
                        old.upgraded_at_ms
                    },
                    info: node,
                    state,
                    last_seen_ms: self.now,
                    ..old
                }
            }
            None => NodeRecord {
                info: node,
                state: NodeState::Running,
                last_seen_ms: self.now,
                healthy: true,
                problem: None,
                healthy_since_ms: Some(self.now),
                upgraded_at_ms: None,
                calls: Default::default(),
            },
        };
        let what = format!(
            "registered at v{} in group {:?}{}",
            record.info.version,
            record.info.group,
            restarted.unwrap_or_default()
        );
        self.node(record);
        self.event(Some(&id), None, what);
        self.finalize(&service);
        Ok(())
    }

    /// Whether `node` was heard from within the liveness window.
    fn heard(&self, node: &NodeRecord) -> bool {
        self.now.saturating_sub(node.last_seen_ms) <= self.heard_within_ms
    }

    /// The refusal of a second process for `holder`'s id.
    fn duplicate(&self, holder: &NodeRecord) -> RequestError3 {
        RequestError3::DuplicateNode {
            id: holder.info.id.clone(),
            address: holder.info.address.clone(),
            heard_ms_ago: self.now.saturating_sub(holder.last_seen_ms),
            within_ms: self.heard_within_ms,
        }
    }

    /// A heartbeat: liveness, health (and why not) and call counts; answers
    /// the upgrade the node should take part in, if any. One from another
    /// address than the id's registered one is refused: that process must
    /// register, where the liveness rule decides which one holds the id.
    pub(super) fn heartbeat(&mut self, beat: Heartbeat6) -> Result<Option<Pending>, RequestError3> {
        let Some(mut node) = self.content.nodes.get(&beat.id).cloned() else {
            return Err(RequestError3::NotRegistered(beat.id));
        };
        // v2 agents do not say where they serve.
        if !beat.address.is_empty() && beat.address != node.info.address {
            return Err(self.duplicate(&node));
        }
        node.problem = if beat.healthy {
            None
        } else {
            beat.problem.clone()
        };
        let heard_before = node.last_seen_ms;
        node.last_seen_ms = self.now;
        node.calls = beat.calls.iter().copied().collect();
        node.healthy_since_ms = match (beat.healthy, node.healthy) {
            (true, true) => node.healthy_since_ms.or(Some(self.now)),
            (true, false) => Some(self.now),
            (false, _) => None,
        };
        node.healthy = beat.healthy;
        let service = node.info.service.clone();
        self.tally.report(&beat.id, &service, beat.traffic);
        let version_changed = node.info.version != beat.version;
        node.info.version = beat.version;
        // A node given up as lost that reached its target after all.
        if let NodeState::Failed { to, .. } | NodeState::Upgrading { to } = node.state
            && beat.version == to
        {
            node.state = NodeState::Running;
            self.node(node.clone());
        }
        let up = active_for(self.content, &service).cloned();
        // An upgraded node failing its health check halts a health-gated rollout.
        if let Some(up) = &up
            && !beat.healthy
            && up.state == RolloutState::Active
            && up.def.reached(beat.version)
            && up.def.schedule.has_health_gate()
        {
            let reason = format!("node {} failed its health check after upgrading", beat.id);
            self.halt(up.clone(), Some(&beat.id), reason);
        }
        // The calls it reported may take the new version past an analysis
        // gate's threshold, or be the last it waited for.
        let analysed = up
            .as_ref()
            .filter(|u| u.state == RolloutState::Active && has_analysis(self.content, u));
        if let Some(up) = analysed
            && let Verdict::Breached(reason) = analysis(self.content, self.tally, up)
        {
            self.halt(up.clone(), Some(&beat.id), reason);
        }
        // Heartbeats are kept in memory; they are persisted with the next change.
        self.content.nodes.insert(beat.id.clone(), node.clone());
        if version_changed {
            self.node(node);
            self.finalize(&service);
        } else if up
            .as_ref()
            .is_some_and(|u| unheard_by_rollback(u, heard_before))
        {
            // A rollback waits to hear from each node once (see `finalize`).
            self.finalize(&service);
        } else if up.as_ref().is_some_and(|u| {
            u.state == RolloutState::Active
                && u.def.reached(beat.version)
                && (u.def.schedule.has_health_gate() || has_analysis(self.content, u))
        }) {
            // A health or analysis gate may have been all that kept the
            // rollout open.
            self.finalize(&service);
        }
        Ok(up
            .filter(|u| u.def.from == beat.version && u.state == RolloutState::Active)
            .map(|u| Pending {
                upgrade: u.id,
                from: u.def.from,
                to: u.def.to,
                artifact: u.def.artifact.clone(),
            }))
    }

    /// An operator forgets a node that is gone for good: its record goes
    /// (its id is free, it no longer holds a rollout open or a slot), and
    /// the history says so. A node still heard from is refused: it would
    /// come back at its next heartbeat.
    pub(super) fn forget(&mut self, id: String) -> Result<(), ForgetError> {
        let Some(old) = self.content.nodes.get(&id).cloned() else {
            return Err(ForgetError::NoSuchNode(id));
        };
        if self.heard(&old) {
            return Err(ForgetError::StillHeard {
                node: id,
                heard_ms_ago: self.now.saturating_sub(old.last_seen_ms),
                within_ms: self.heard_within_ms,
            });
        }
        self.content.nodes.remove(&id);
        self.tally.forget(&id);
        self.undo.push(Undo::Node(id.clone(), Some(old.clone())));
        self.batch.forget.push(id.clone());
        let silent = self.now.saturating_sub(old.last_seen_ms) / 1000;
        let held = match &old.state {
            NodeState::Upgrading { to } => format!("; it held a slot for v{to}"),
            _ => String::new(),
        };
        let up = active_for(self.content, &old.info.service).map(|u| u.id);
        self.event(
            Some(&id),
            up,
            format!(
                "forgotten: it ran {} v{}, last heard {silent} s ago{held}",
                old.info.service, old.info.version
            ),
        );
        self.finalize(&old.info.service);
        Ok(())
    }

    /// A node asks for a slot; the schedule decides, under the lock, so
    /// limits hold however many nodes ask at once.
    pub(super) fn request_slot(
        &mut self,
        schedules: &Registry,
        node_id: String,
        upgrade: u64,
    ) -> Slot {
        let Some(up) = self.content.upgrades.get(&upgrade).cloned() else {
            return Slot::Gone(format!("no upgrade #{upgrade}"));
        };
        match &up.state {
            RolloutState::Active => {}
            RolloutState::Paused => return Slot::Wait("the rollout is paused".into()),
            RolloutState::Halted { reason } => return Slot::Halted(reason.clone()),
            RolloutState::Aborted => return Slot::Gone("the upgrade was aborted".into()),
            RolloutState::Final => return Slot::Gone("the upgrade is final".into()),
        }
        let Some(node) = self.content.nodes.get(&node_id).cloned() else {
            return Slot::Gone(format!("node {node_id} is not registered"));
        };
        if node.state == (NodeState::Upgrading { to: up.def.to }) {
            return Slot::Granted;
        }
        if node.info.version != up.def.from || node.info.service != up.def.service {
            return Slot::Gone(format!(
                "node {node_id} does not run {} v{}",
                up.def.service, up.def.from
            ));
        }
        if let Some(why) = gate_wait(self.content, self.tally, &up) {
            return Slot::Wait(why);
        }
        let rollout = Rollout {
            upgrade: &up,
            nodes: self
                .content
                .nodes
                .values()
                .filter(|n| n.info.service == up.def.service)
                .collect(),
            now_ms: self.now,
            heard_within_ms: self.heard_within_ms,
        };
        match schedules.decide(&up.def.schedule, &node, &rollout) {
            Decision::Go => {
                self.node(NodeRecord {
                    state: NodeState::Upgrading { to: up.def.to },
                    last_seen_ms: self.now,
                    ..node
                });
                self.event(
                    Some(&node_id),
                    Some(upgrade),
                    format!("slot granted for v{}", up.def.to),
                );
                Slot::Granted
            }
            Decision::Wait(why) => Slot::Wait(why),
            Decision::Halt(reason) => {
                self.halt(up, Some(&node_id), reason.clone());
                Slot::Halted(reason)
            }
        }
    }

    /// A node reports how its upgrade went; a failure halts the rollout.
    pub(super) fn report(&mut self, node_id: String, upgrade: u64, outcome: Outcome) {
        let Some(mut node) = self.content.nodes.get(&node_id).cloned() else {
            return;
        };
        let up = self.content.upgrades.get(&upgrade).cloned();
        let to = up.as_ref().map_or(0, |u| u.def.to);
        match outcome {
            Outcome::Upgraded { version } => {
                node.info.version = version;
                node.state = NodeState::Running;
                node.upgraded_at_ms = Some(self.now);
                let service = node.info.service.clone();
                self.node(node);
                let went = if up.as_ref().is_some_and(|u| u.def.is_rollback()) {
                    "rolled back"
                } else {
                    "upgraded"
                };
                self.event(
                    Some(&node_id),
                    Some(upgrade),
                    format!("{went} to v{version}"),
                );
                self.finalize(&service);
            }
            Outcome::Failed { reason } => {
                node.state = NodeState::Failed {
                    to,
                    reason: reason.clone(),
                };
                self.node(node);
                self.event(
                    Some(&node_id),
                    Some(upgrade),
                    format!("upgrade to v{to} failed: {reason}"),
                );
                if let Some(up) = up
                    && up.state == RolloutState::Active
                {
                    self.halt(
                        up,
                        None,
                        format!("node {node_id} failed to upgrade: {reason}"),
                    );
                }
            }
        }
    }

    /// Records a published upgrade (already checked for shape and schedule).
    /// Publishes `def` with `gates` (checked first: nothing is published
    /// when one is wrong).
    pub(super) fn publish_gated(
        &mut self,
        def: Upgrade,
        gates: Vec<Gate6>,
    ) -> Result<u64, PublishError3> {
        let wrong = |why: String| PublishError3::V2(PublishError::Schedule(why));
        if gates.len() > 8 {
            return Err(wrong(format!("{} gates; at most 8", gates.len())));
        }
        let mut approvals = 0;
        for gate in &gates {
            match gate {
                Gate6::After { service, .. } if *service == def.service => {
                    return Err(wrong(format!(
                        "`{gate}`: a rollout cannot wait for its own service; the schedule orders its nodes"
                    )));
                }
                Gate6::After { version: 0, .. } => {
                    return Err(wrong(format!("`{gate}`: versions start at 1")));
                }
                Gate6::After { service, .. }
                    if !self
                        .content
                        .nodes
                        .values()
                        .any(|n| n.info.service == *service) =>
                {
                    return Err(wrong(format!(
                        "`{gate}`: no node of {service} is registered, so the rollout would wait forever"
                    )));
                }
                Gate6::After { service, .. } if service.len() > 128 => {
                    return Err(wrong(format!("`{gate}`: the service name is too long")));
                }
                Gate6::After { .. } => {}
                Gate6::Approval { .. } => approvals += 1,
                Gate6::Errors {
                    above_ppm,
                    min_calls,
                } => {
                    if *above_ppm > 1_000_000 || *min_calls == 0 {
                        return Err(wrong(format!(
                            "`{gate}`: the threshold is at most 100% and the calls to judge after at least 1"
                        )));
                    }
                }
                Gate6::Latency { percent, min_calls } => {
                    if *percent < 100 || *min_calls == 0 {
                        return Err(wrong(format!(
                            "`{gate}`: the factor is at least 1x and the calls to judge after at least 1"
                        )));
                    }
                }
            }
        }
        if approvals > 1 {
            return Err(wrong("more than one approval gate".into()));
        }
        let id = self.publish(def)?;
        if !gates.is_empty() {
            let list: Vec<String> = gates.iter().map(ToString::to_string).collect();
            self.event(None, Some(id), format!("gated: {}", list.join(", ")));
            self.gate_record(
                id,
                GateRecord {
                    gates,
                    ..GateRecord::default()
                },
            );
        }
        Ok(id)
    }

    fn gate_record(&mut self, id: u64, record: GateRecord) {
        let old = self.content.gates.insert(id, record.clone());
        self.undo.push(Undo::Gates(id, old));
        self.batch.gates.push((id, record));
    }

    /// An operator approves `upgrade`: the nodes its approval gate holds go.
    pub(super) fn approve(&mut self, upgrade: u64) -> Result<(), ApproveError> {
        let up = self
            .content
            .upgrades
            .get(&upgrade)
            .cloned()
            .ok_or(ApproveError::NoSuchUpgrade(upgrade))?;
        let Some(record) = self
            .content
            .gates
            .get(&upgrade)
            .filter(|r| r.has_approval_gate())
            .cloned()
        else {
            return Err(ApproveError::NoApprovalGate(upgrade));
        };
        if matches!(up.state, RolloutState::Final | RolloutState::Aborted) {
            return Err(ApproveError::NotNow {
                upgrade,
                state: up.state,
            });
        }
        if let Some(at_ms) = record.approved_ms {
            return Err(ApproveError::AlreadyApproved {
                upgrade,
                at_ms,
                by: record.approved_by,
            });
        }
        let by = self.by.clone();
        self.gate_record(
            upgrade,
            GateRecord {
                approved_ms: Some(self.now),
                approved_by: by,
                ..record
            },
        );
        self.event(None, Some(upgrade), "approved".into());
        // An approval after every node went is what the rollout waited for.
        self.finalize(&up.def.service);
        Ok(())
    }

    pub(super) fn publish(&mut self, def: Upgrade) -> Result<u64, PublishError3> {
        if !self
            .content
            .nodes
            .values()
            .any(|n| n.info.service == def.service)
        {
            let known: BTreeSet<String> = self
                .content
                .nodes
                .values()
                .map(|n| n.info.service.clone())
                .collect();
            return Err(PublishError3::V2(PublishError::NoNodes {
                service: def.service,
                known: known.into_iter().collect(),
            }));
        }
        if let Some(open) = active_for(self.content, &def.service) {
            return Err(PublishError3::V2(PublishError::StillOpen {
                open: open.id,
                service: def.service,
                from: open.def.from,
                to: open.def.to,
                state: open.state.clone(),
            }));
        }
        // A rollout finishes when every node runs `to`: a node on an older
        // version than `from` never would, and would then wait behind this
        // rollout for the upgrade it needs.
        let mut running = std::collections::BTreeMap::<u32, u64>::new();
        for n in self.content.nodes.values() {
            if n.info.service == def.service {
                *running.entry(n.info.version).or_default() += 1;
            }
        }
        if !running.contains_key(&def.from) || running.keys().any(|v| *v < def.from) {
            return Err(PublishError3::Untakeable {
                service: def.service,
                from: def.from,
                to: def.to,
                running: running.into_iter().collect(),
            });
        }
        let id = self.next_upgrade_id();
        let what = format!(
            "published {} v{} -> v{} ({:?})",
            def.service, def.from, def.to, def.schedule
        );
        self.open(id, def, what);
        Ok(id)
    }

    /// The id the next rollout gets: ascending, never reused.
    fn next_upgrade_id(&self) -> u64 {
        self.content.upgrades.keys().last().map_or(1, |id| id + 1)
    }

    /// Records rollout `id` of `def` as active, with `what` in the history
    /// (it may be final at once: every node there already).
    fn open(&mut self, id: u64, def: Upgrade, what: String) {
        let service = def.service.clone();
        self.upgrade(UpgradeRecord {
            id,
            def,
            state: RolloutState::Active,
            published_ms: self.now,
        });
        self.event(None, Some(id), what);
        self.finalize(&service);
    }

    /// An operator rolls `upgrade` back: it is aborted, and a rollout from
    /// its `to` back to its `from`, on the same schedule, takes the nodes
    /// that upgraded back (in process, each with its state transformed
    /// back). Refused once the upgrade is final, and for a rollback.
    pub(super) fn rollback(&mut self, upgrade: u64) -> Result<u64, RollbackError> {
        let up = self
            .content
            .upgrades
            .get(&upgrade)
            .cloned()
            .ok_or(RollbackError::NoSuchUpgrade(upgrade))?;
        if up.def.is_rollback() {
            return Err(RollbackError::IsRollback(upgrade));
        }
        match &up.state {
            RolloutState::Active | RolloutState::Paused | RolloutState::Halted { .. } => {}
            RolloutState::Final => {
                return Err(RollbackError::Final {
                    upgrade,
                    to: up.def.to,
                });
            }
            state @ RolloutState::Aborted => {
                return Err(RollbackError::NotNow {
                    upgrade,
                    state: state.clone(),
                });
            }
        }
        let id = self.next_upgrade_id();
        let def = Upgrade {
            service: up.def.service.clone(),
            from: up.def.to,
            to: up.def.from,
            schedule: up.def.schedule.clone(),
            artifact: "in-process".into(),
            notes: format!("rollback of upgrade #{upgrade}"),
        };
        let back = format!(
            "rollback of upgrade #{upgrade}: {} v{} -> v{} ({:?})",
            def.service, def.from, def.to, def.schedule
        );
        self.upgrade(UpgradeRecord {
            state: RolloutState::Aborted,
            ..up
        });
        self.event(None, Some(upgrade), format!("rolled back by upgrade #{id}"));
        self.open(id, def, back);
        Ok(id)
    }

    /// An operator pauses, resumes or aborts a rollout.
    pub(super) fn control(&mut self, upgrade: u64, action: Control) -> Result<(), ControlError> {
        let up = self
            .content
            .upgrades
            .get(&upgrade)
            .cloned()
            .ok_or(ControlError::NoSuchUpgrade(upgrade))?;
        let state = match (action, &up.state) {
            (Control::Pause, RolloutState::Active) => RolloutState::Paused,
            (Control::Resume, RolloutState::Paused | RolloutState::Halted { .. }) => {
                RolloutState::Active
            }
            (
                Control::Abort,
                RolloutState::Active | RolloutState::Paused | RolloutState::Halted { .. },
            ) => RolloutState::Aborted,
            (action, state) => {
                return Err(ControlError::NotNow {
                    upgrade,
                    action,
                    state: state.clone(),
                });
            }
        };
        if matches!(action, Control::Resume) {
            // Nodes whose upgrade failed may try again.
            let failed: Vec<NodeRecord> = self
                .content
                .nodes
                .values()
                .filter(|n| matches!(n.state, NodeState::Failed { to, .. } if to == up.def.to))
                .cloned()
                .collect();
            for n in failed {
                self.node(NodeRecord {
                    state: NodeState::Running,
                    ..n
                });
            }
        }
        self.upgrade(UpgradeRecord { state, ..up });
        self.event(None, Some(upgrade), format!("operator: {action:?}"));
        Ok(())
    }
}

/// The service's rollout that is not over yet (active, paused or halted).
pub(super) fn active_for<'a>(content: &'a Content, service: &str) -> Option<&'a UpgradeRecord> {
    content.upgrades.values().rev().find(|u| {
        u.def.service == service
            && matches!(
                u.state,
                RolloutState::Active | RolloutState::Paused | RolloutState::Halted { .. }
            )
    })
}

/// Whether `up` is a rollback that has not heard from a node last heard
/// at `last_seen_ms` since it began.
fn unheard_by_rollback(up: &UpgradeRecord, last_seen_ms: u64) -> bool {
    up.def.is_rollback() && last_seen_ms < up.published_ms
}

/// What `up` waits on besides its schedule, if anything: a service it
/// comes after that is not there yet, or an operator's approval.
pub(super) fn gate_wait(content: &Content, tally: &Tally, up: &UpgradeRecord) -> Option<String> {
    let record = content.gates.get(&up.id)?;
    for gate in &record.gates {
        match gate {
            Gate6::After { service, version } => {
                let theirs: Vec<&NodeRecord> = content
                    .nodes
                    .values()
                    .filter(|n| n.info.service == *service)
                    .collect();
                let behind = theirs.iter().filter(|n| n.info.version < *version).count();
                if theirs.is_empty() || behind > 0 {
                    return Some(format!(
                        "waiting for every node of {service} to run v{version} ({behind} of {} do not)",
                        theirs.len()
                    ));
                }
            }
            Gate6::Approval { after } if record.approved_ms.is_none() => {
                if gone(content, up) >= *after as usize {
                    return Some(format!(
                        "waiting for an operator's approval after {after} node(s): upshift approve {}",
                        up.id
                    ));
                }
            }
            Gate6::Approval { .. } => {}
            // The first nodes go; the others wait until the new version has
            // served enough calls to be judged.
            Gate6::Errors { .. } | Gate6::Latency { .. } if gone(content, up) > 0 => {
                if let Verdict::Judging(why) | Verdict::Breached(why) =
                    tally.judge(gate, &up.def.service, up.def.from, up.def.to)
                {
                    return Some(why);
                }
            }
            Gate6::Errors { .. } | Gate6::Latency { .. } => {}
        }
    }
    None
}

/// How many of `up`'s nodes run its new version or are moving to it.
fn gone(content: &Content, up: &UpgradeRecord) -> usize {
    content
        .nodes
        .values()
        .filter(|n| n.info.service == up.def.service)
        .filter(|n| {
            up.def.reached(n.info.version) || n.state == (NodeState::Upgrading { to: up.def.to })
        })
        .count()
}

/// Whether `up` was published with an analysis gate.
fn has_analysis(content: &Content, up: &UpgradeRecord) -> bool {
    content
        .gates
        .get(&up.id)
        .is_some_and(|r| r.gates.iter().any(Gate6::is_analysis))
}

/// What `up`'s analysis gates say together: the first breach, else the
/// first that is still judging, else within.
pub(super) fn analysis(content: &Content, tally: &Tally, up: &UpgradeRecord) -> Verdict {
    let Some(record) = content.gates.get(&up.id) else {
        return Verdict::Within;
    };
    let mut verdict = Verdict::Within;
    for gate in record.gates.iter().filter(|g| g.is_analysis()) {
        match tally.judge(gate, &up.def.service, up.def.from, up.def.to) {
            Verdict::Breached(why) => return Verdict::Breached(why),
            Verdict::Judging(why) if verdict == Verdict::Within => verdict = Verdict::Judging(why),
            _ => {}
        }
    }
    verdict
}
