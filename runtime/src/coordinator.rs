//! The coordinator: stores upgrade definitions and, in the UDB, every node
//! and the history of upgrades; grants upgrade slots as schedules allow.
//!
//! It is itself an upshift service: its RPC interface is declared below with
//! `#[upshift::interface]`, and nodes talk to it through the generated client.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::schedule::{Decision, Registry, Rollout, ScheduleSpec};
use crate::server::{Listener, Server};
use crate::udb::{
    Batch, Event, NodeInfo, NodeRecord, NodeState, RolloutState, Udb, UdbContent, UdbError,
    UpgradeDef, UpgradeRecord,
};

/// The coordinator's RPC interface.
#[crate::interface(name = "upshift.Coordinator")]
pub mod api {
    use serde::{Deserialize, Serialize};

    use crate::udb::{NodeInfo, UdbContent, UpgradeDef};

    /// What a node reports on every heartbeat.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct Heartbeat {
        /// The node's id.
        pub id: String,
        /// The version it runs.
        pub version: u32,
        /// Whether its health check passes.
        pub healthy: bool,
        /// Calls served per call version so far.
        pub calls: Vec<(u32, u64)>,
    }

    /// An upgrade the node should take part in.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub struct Pending {
        /// The upgrade's id.
        pub upgrade: u64,
        /// The version the node runs.
        pub from: u32,
        /// The version to move to.
        pub to: u32,
        /// Where the new code is.
        pub artifact: String,
    }

    /// The answer to a slot request.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub enum Slot {
        /// Upgrade now; the slot is held until the node reports.
        Granted,
        /// Not yet, and why.
        Wait(String),
        /// The rollout is halted, and why.
        Halted(String),
        /// The upgrade is over (final or aborted) or does not apply.
        Gone(String),
    }

    /// How a node's upgrade went.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub enum Outcome {
        /// The node runs `version` now.
        Upgraded {
            /// The version it runs.
            version: u32,
        },
        /// The node stayed on its version.
        Failed {
            /// Why.
            reason: String,
        },
    }

    /// An operator's command for a rollout.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
    pub enum Control {
        /// Grant no new slots.
        Pause,
        /// Grant slots again (also after a halt).
        Resume,
        /// Abandon the upgrade.
        Abort,
    }

    /// v1 of the coordinator's interface.
    #[version(1)]
    pub trait Coordinator {
        /// Records a node (again, after a restart).
        async fn register(&self, node: NodeInfo);
        /// Reports liveness, health and call counts; returns the upgrade the
        /// node should take part in, if any.
        async fn heartbeat(&self, beat: Heartbeat) -> Option<Pending>;
        /// Asks for a slot to upgrade now.
        async fn request_slot(&self, node: String, upgrade: u64) -> Slot;
        /// Reports how the node's upgrade went.
        async fn report(&self, node: String, upgrade: u64, outcome: Outcome);
        /// Publishes an upgrade; returns its id.
        async fn publish(&self, upgrade: UpgradeDef) -> Result<u64, String>;
        /// Pauses, resumes or aborts a rollout.
        async fn control(&self, upgrade: u64, action: Control) -> Result<(), String>;
        /// Everything the UDB holds.
        async fn status(&self) -> UdbContent;
    }
}

use api::{Control, Heartbeat, Outcome, Pending, Slot};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The coordinator's service object.
pub struct Coordinator {
    udb: Box<dyn Udb>,
    content: Mutex<UdbContent>,
    schedules: Registry,
    slot_timeout: Duration,
}

/// How long a node may hold a slot without a heartbeat or report before it
/// counts as lost: longer than the slowest upgrade (transform, restart).
pub const DEFAULT_SLOT_TIMEOUT: Duration = Duration::from_secs(300);

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("schedules", &self.schedules)
            .finish()
    }
}

/// A change to make under the lock: what to persist and answer.
struct Txn<'a> {
    content: &'a mut UdbContent,
    batch: Batch,
    now: u64,
}

impl Txn<'_> {
    /// A node that holds a slot and has not been heard from for `timeout`
    /// died or hung mid-upgrade: it would hold the slot forever, so it is
    /// marked failed and its rollout halts for an operator to look (as a
    /// failed report does). If it comes back at the new version, it counts
    /// as upgraded.
    fn expire_slots(&mut self, timeout: Duration) {
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
            let up = Coordinator::active_for(self.content, &service).cloned();
            let upgrade = up.as_ref().map(|u| u.id);
            self.event(Some(&id), upgrade, format!("slot expired: {reason}"));
            if let Some(up) = up
                && up.state == RolloutState::Active
            {
                self.halt(up, None, format!("node {id} {reason}"));
            }
        }
    }

    fn event(&mut self, node: Option<&str>, upgrade: Option<u64>, what: String) {
        let seq = self.content.events.last().map_or(1, |e| e.seq + 1);
        let event = Event {
            seq,
            at_ms: self.now,
            node: node.map(str::to_string),
            upgrade,
            what,
        };
        tracing::info!(node, upgrade, "{}", event.what);
        self.content.events.push(event.clone());
        self.batch.events.push(event);
    }

    /// Halts rollout `up` for an operator to look, saying why.
    fn halt(&mut self, up: UpgradeRecord, node: Option<&str>, reason: String) {
        let id = up.id;
        self.upgrade(UpgradeRecord {
            state: RolloutState::Halted {
                reason: reason.clone(),
            },
            ..up
        });
        self.event(node, Some(id), format!("rollout halted: {reason}"));
    }

    fn node(&mut self, record: NodeRecord) {
        self.content
            .nodes
            .insert(record.info.id.clone(), record.clone());
        self.batch.nodes.push(record);
    }

    fn upgrade(&mut self, record: UpgradeRecord) {
        self.content.upgrades.insert(record.id, record.clone());
        self.batch.upgrades.push(record);
    }

    /// Marks the service's upgrade final once every node runs its version.
    fn finalize(&mut self, service: &str) {
        let Some(up) = self
            .content
            .upgrades
            .values()
            .find(|u| u.def.service == service && u.state == RolloutState::Active)
            .cloned()
        else {
            return;
        };
        let mut nodes = self
            .content
            .nodes
            .values()
            .filter(|n| n.info.service == service)
            .peekable();
        if nodes.peek().is_some() && nodes.all(|n| n.info.version >= up.def.to) {
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
    }
}

impl Coordinator {
    /// A coordinator over `udb`, resuming from what it holds.
    pub fn open(udb: impl Udb, schedules: Registry) -> Result<Self, UdbError> {
        let mut content = udb.read_all()?;
        // Time the coordinator was down does not count against slot holders:
        // they could not report to it.
        let now = now_ms();
        for node in content.nodes.values_mut() {
            if matches!(node.state, NodeState::Upgrading { .. }) {
                node.last_seen_ms = node.last_seen_ms.max(now);
            }
        }
        Ok(Coordinator {
            udb: Box::new(udb),
            content: Mutex::new(content),
            schedules,
            slot_timeout: DEFAULT_SLOT_TIMEOUT,
        })
    }

    /// How long a node may hold a slot unheard before it counts as lost
    /// ([`DEFAULT_SLOT_TIMEOUT`] unless set): it is marked failed and the
    /// rollout halts. Set it above the slowest upgrade: a node sends no
    /// heartbeat while it transforms its state or restarts.
    pub fn with_slot_timeout(mut self, timeout: Duration) -> Self {
        self.slot_timeout = timeout;
        self
    }

    /// Serves the coordinator on `addr` (port 0 picks one).
    pub async fn serve(
        self,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> std::io::Result<(Server, Listener)> {
        let server = Server::new(api::v1::service(self));
        let listener = server.listen(addr).await?;
        Ok((server, listener))
    }

    /// Runs `change` under the lock and persists what it recorded before
    /// returning its answer. If the UDB write fails, the change is undone.
    fn transact<T>(&self, change: impl FnOnce(&mut Txn<'_>) -> T) -> T {
        let mut content = self.content.lock().unwrap_or_else(|e| e.into_inner());
        let before = content.clone();
        let mut txn = Txn {
            content: &mut content,
            batch: Batch::default(),
            now: now_ms(),
        };
        // Every request is a moment to notice lost slot holders: heartbeats
        // of the other nodes keep them coming.
        txn.expire_slots(self.slot_timeout);
        let answer = change(&mut txn);
        let batch = txn.batch;
        if let Err(e) = self.udb.write(&batch) {
            tracing::error!(error = %e, "the UDB refused a write; the change is undone");
            *content = before;
        }
        answer
    }

    fn active_for<'a>(content: &'a UdbContent, service: &str) -> Option<&'a UpgradeRecord> {
        content.upgrades.values().rev().find(|u| {
            u.def.service == service
                && matches!(
                    u.state,
                    RolloutState::Active | RolloutState::Paused | RolloutState::Halted { .. }
                )
        })
    }
}

fn has_health_gate(spec: &ScheduleSpec) -> bool {
    match spec {
        ScheduleSpec::HealthGate { .. } => true,
        ScheduleSpec::All(specs) => specs.iter().any(has_health_gate),
        _ => false,
    }
}

impl api::v1::Coordinator for Coordinator {
    async fn register(&self, node: NodeInfo) {
        self.transact(|t| {
            let id = node.id.clone();
            let service = node.service.clone();
            let record = match t.content.nodes.get(&id).cloned() {
                Some(old) => {
                    // A node that restarted: its version tells how an upgrade it held went.
                    let state = match &old.state {
                        NodeState::Upgrading { .. } => NodeState::Running,
                        // Lost mid-upgrade, but it got there.
                        NodeState::Failed { to, .. } if node.version >= *to => NodeState::Running,
                        other => other.clone(),
                    };
                    NodeRecord {
                        upgraded_at_ms: if node.version > old.info.version {
                            Some(t.now)
                        } else {
                            old.upgraded_at_ms
                        },
                        info: node,
                        state,
                        last_seen_ms: t.now,
                        ..old
                    }
                }
                None => NodeRecord {
                    info: node,
                    state: NodeState::Running,
                    last_seen_ms: t.now,
                    healthy: true,
                    healthy_since_ms: Some(t.now),
                    upgraded_at_ms: None,
                    calls: Default::default(),
                },
            };
            let what = format!(
                "registered at v{} in group {:?}",
                record.info.version, record.info.group
            );
            t.node(record);
            t.event(Some(&id), None, what);
            t.finalize(&service);
        })
    }

    async fn heartbeat(&self, beat: Heartbeat) -> Option<Pending> {
        self.transact(|t| {
            let mut node = t.content.nodes.get(&beat.id).cloned()?;
            node.last_seen_ms = t.now;
            node.calls = beat.calls.iter().copied().collect();
            node.healthy_since_ms = match (beat.healthy, node.healthy) {
                (true, true) => node.healthy_since_ms.or(Some(t.now)),
                (true, false) => Some(t.now),
                (false, _) => None,
            };
            node.healthy = beat.healthy;
            let service = node.info.service.clone();
            let version_changed = node.info.version != beat.version;
            node.info.version = beat.version;
            // A node given up as lost that reached its target after all.
            if let NodeState::Failed { to, .. } | NodeState::Upgrading { to } = node.state
                && beat.version >= to
            {
                node.state = NodeState::Running;
                t.node(node.clone());
            }
            let up = Self::active_for(t.content, &service).cloned();
            // An upgraded node failing its health check halts a health-gated rollout.
            if let Some(up) = &up
                && !beat.healthy
                && up.state == RolloutState::Active
                && beat.version >= up.def.to
                && has_health_gate(&up.def.schedule)
            {
                let reason = format!("node {} failed its health check after upgrading", beat.id);
                t.halt(up.clone(), Some(&beat.id), reason);
            }
            // Heartbeats are kept in memory; they are persisted with the next change.
            t.content.nodes.insert(beat.id.clone(), node.clone());
            if version_changed {
                t.node(node);
                t.finalize(&service);
            }
            up.filter(|u| u.def.from == beat.version && u.state == RolloutState::Active)
                .map(|u| Pending {
                    upgrade: u.id,
                    from: u.def.from,
                    to: u.def.to,
                    artifact: u.def.artifact.clone(),
                })
        })
    }

    async fn request_slot(&self, node_id: String, upgrade: u64) -> Slot {
        self.transact(|t| {
            let Some(up) = t.content.upgrades.get(&upgrade).cloned() else {
                return Slot::Gone(format!("no upgrade #{upgrade}"));
            };
            match &up.state {
                RolloutState::Active => {}
                RolloutState::Paused => return Slot::Wait("the rollout is paused".into()),
                RolloutState::Halted { reason } => return Slot::Halted(reason.clone()),
                RolloutState::Aborted => return Slot::Gone("the upgrade was aborted".into()),
                RolloutState::Final => return Slot::Gone("the upgrade is final".into()),
            }
            let Some(node) = t.content.nodes.get(&node_id).cloned() else {
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
            let rollout = Rollout {
                upgrade: &up,
                nodes: t
                    .content
                    .nodes
                    .values()
                    .filter(|n| n.info.service == up.def.service)
                    .collect(),
                now_ms: t.now,
            };
            match self.schedules.decide(&up.def.schedule, &node, &rollout) {
                Decision::Go => {
                    t.node(NodeRecord {
                        state: NodeState::Upgrading { to: up.def.to },
                        last_seen_ms: t.now,
                        ..node
                    });
                    t.event(
                        Some(&node_id),
                        Some(upgrade),
                        format!("slot granted for v{}", up.def.to),
                    );
                    Slot::Granted
                }
                Decision::Wait(why) => Slot::Wait(why),
                Decision::Halt(reason) => {
                    t.halt(up, Some(&node_id), reason.clone());
                    Slot::Halted(reason)
                }
            }
        })
    }

    async fn report(&self, node_id: String, upgrade: u64, outcome: Outcome) {
        self.transact(|t| {
            let Some(mut node) = t.content.nodes.get(&node_id).cloned() else {
                return;
            };
            let up = t.content.upgrades.get(&upgrade).cloned();
            let to = up.as_ref().map_or(0, |u| u.def.to);
            match outcome {
                Outcome::Upgraded { version } => {
                    node.info.version = version;
                    node.state = NodeState::Running;
                    node.upgraded_at_ms = Some(t.now);
                    let service = node.info.service.clone();
                    t.node(node);
                    t.event(
                        Some(&node_id),
                        Some(upgrade),
                        format!("upgraded to v{version}"),
                    );
                    t.finalize(&service);
                }
                Outcome::Failed { reason } => {
                    node.state = NodeState::Failed {
                        to,
                        reason: reason.clone(),
                    };
                    t.node(node);
                    t.event(
                        Some(&node_id),
                        Some(upgrade),
                        format!("upgrade to v{to} failed: {reason}"),
                    );
                    if let Some(up) = up
                        && up.state == RolloutState::Active
                    {
                        t.halt(
                            up,
                            None,
                            format!("node {node_id} failed to upgrade: {reason}"),
                        );
                    }
                }
            }
        })
    }

    async fn publish(&self, def: UpgradeDef) -> Result<u64, String> {
        if def.to != def.from + 1 {
            return Err(format!(
                "an upgrade moves one version at a time: v{} -> v{} skips a version; publish v{} -> v{} first",
                def.from,
                def.to,
                def.from,
                def.from + 1
            ));
        }
        self.schedules.validate(&def.schedule)?;
        self.transact(|t| {
            if !t
                .content
                .nodes
                .values()
                .any(|n| n.info.service == def.service)
            {
                let mut known: Vec<&str> = t
                    .content
                    .nodes
                    .values()
                    .map(|n| n.info.service.as_str())
                    .collect();
                known.dedup();
                return Err(format!(
                    "no node of service {:?} is registered (services with nodes: {known:?})",
                    def.service
                ));
            }
            if let Some(open) = Self::active_for(t.content, &def.service) {
                return Err(format!(
                    "upgrade #{} of {} (v{} -> v{}) is still {:?}; abort it or let it finish first",
                    open.id, def.service, open.def.from, open.def.to, open.state
                ));
            }
            let id = t.content.upgrades.keys().last().map_or(1, |id| id + 1);
            let what = format!(
                "published {} v{} -> v{} ({:?})",
                def.service, def.from, def.to, def.schedule
            );
            let service = def.service.clone();
            t.upgrade(UpgradeRecord {
                id,
                def,
                state: RolloutState::Active,
                published_ms: t.now,
            });
            t.event(None, Some(id), what);
            t.finalize(&service);
            Ok(id)
        })
    }

    async fn control(&self, upgrade: u64, action: Control) -> Result<(), String> {
        self.transact(|t| {
            let up = t
                .content
                .upgrades
                .get(&upgrade)
                .cloned()
                .ok_or(format!("no upgrade #{upgrade}"))?;
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
                    return Err(format!(
                        "cannot {action:?} upgrade #{upgrade}: it is {state:?}"
                    ));
                }
            };
            if matches!(action, Control::Resume) {
                // Nodes whose upgrade failed may try again.
                let failed: Vec<NodeRecord> = t
                    .content
                    .nodes
                    .values()
                    .filter(|n| matches!(n.state, NodeState::Failed { to, .. } if to == up.def.to))
                    .cloned()
                    .collect();
                for n in failed {
                    t.node(NodeRecord {
                        state: NodeState::Running,
                        ..n
                    });
                }
            }
            t.upgrade(UpgradeRecord { state, ..up });
            t.event(None, Some(upgrade), format!("operator: {action:?}"));
            Ok(())
        })
    }

    async fn status(&self) -> UdbContent {
        // Through a transaction, so a lost slot holder shows as such.
        self.transact(|t| t.content.clone())
    }
}
