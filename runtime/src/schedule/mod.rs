//! Schedules: when each node may upgrade.
//!
//! A published upgrade carries a [`ScheduleSpec`]: built-in schedules and
//! their combination, or a named custom [`Schedule`] registered with the
//! coordinator. The coordinator asks the schedule each time a node requests a
//! slot, under one lock and with the UDB's view of every node, so limits hold
//! however many nodes ask at the same moment.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod builtin;
mod plan;

pub use plan::{Plan, Wave, plan};

pub use crate::upgrade::ScheduleSpec;
use crate::upgrade::{NodeRecord, NodeState, UpgradeRecord};

/// What a schedule says to a node that asks for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
pub enum Decision {
    /// Upgrade now.
    Go,
    /// Not yet; ask again later.
    Wait(String),
    /// Stop the rollout.
    Halt(String),
}

/// The coordinator's view of a rollout, for schedules.
#[derive(Debug)]
pub struct Rollout<'a> {
    /// The upgrade being rolled out.
    pub upgrade: &'a UpgradeRecord,
    /// Every node of the upgrade's service.
    pub nodes: Vec<&'a NodeRecord>,
    /// Now, Unix milliseconds.
    pub now_ms: u64,
    /// How recently a node must have been heard from for its last report
    /// to count: a node silent for longer may be dead, whatever it said.
    pub heard_within_ms: u64,
}

impl Rollout<'_> {
    /// Nodes holding a slot: changing version now. A node still finishing
    /// an upgrade that was rolled back (or aborted) counts too, so a
    /// schedule's limit holds for what the nodes are doing, not only for
    /// this rollout's grants.
    pub fn upgrading(&self) -> impl Iterator<Item = &&NodeRecord> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.state, NodeState::Upgrading { .. }))
    }

    /// Nodes that run the new version.
    pub fn upgraded(&self) -> impl Iterator<Item = &&NodeRecord> {
        self.nodes
            .iter()
            .filter(move |n| self.upgrade.def.reached(n.info.version))
    }
}

/// A schedule a user writes: decide whether `node` may upgrade now.
pub trait Schedule: Send + Sync + 'static {
    /// Called with the coordinator's lock held: the answer and the slot it
    /// grants are atomic with respect to every other node's request.
    fn decide(&self, node: &NodeRecord, rollout: &Rollout<'_>) -> Decision;
}

/// Custom schedules by name, as registered with the coordinator.
#[derive(Clone, Default)]
pub struct Registry {
    custom: BTreeMap<String, Arc<dyn Schedule>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.custom.keys()).finish()
    }
}

impl Registry {
    /// Registers `schedule` as `ScheduleSpec::Custom(name)`.
    pub fn register(&mut self, name: impl Into<String>, schedule: impl Schedule) {
        self.custom.insert(name.into(), Arc::new(schedule));
    }

    /// Checks that every custom schedule `spec` names is registered and that
    /// the built-ins' numbers make sense.
    pub fn validate(&self, spec: &ScheduleSpec) -> Result<(), String> {
        spec.check_size()?;
        self.validate_terms(spec)
    }

    fn validate_terms(&self, spec: &ScheduleSpec) -> Result<(), String> {
        match spec {
            ScheduleSpec::Rolling { max_parallel: 0 } => {
                Err("rolling with max_parallel = 0 never upgrades a node".into())
            }
            ScheduleSpec::Window {
                from_minute,
                to_minute,
            } if *from_minute >= 1440 || *to_minute > 1440 => Err(format!(
                "window minutes must be within a day (0..1440), got {from_minute}..{to_minute}"
            )),
            ScheduleSpec::All(specs) => specs.iter().try_for_each(|s| self.validate_terms(s)),
            ScheduleSpec::Custom(name) if !self.custom.contains_key(name) => Err(format!(
                "no custom schedule named {name:?} is registered; registered: {:?}",
                self.custom.keys().collect::<Vec<_>>()
            )),
            _ => Ok(()),
        }
    }

    /// Whether the health gates of `spec` (its `health:SECS` terms) let
    /// the rollout be final: every upgraded node heard from lately and
    /// healthy for long enough. `Go` when `spec` has no health gate.
    pub fn gates_pass(spec: &ScheduleSpec, rollout: &Rollout<'_>) -> Decision {
        match spec {
            ScheduleSpec::HealthGate { healthy_secs } => {
                builtin::health_gate(*healthy_secs, rollout)
            }
            ScheduleSpec::All(specs) => specs
                .iter()
                .map(|s| Self::gates_pass(s, rollout))
                .find(|d| *d != Decision::Go)
                .unwrap_or(Decision::Go),
            _ => Decision::Go,
        }
    }

    /// What `spec` says to `node`.
    pub fn decide(
        &self,
        spec: &ScheduleSpec,
        node: &NodeRecord,
        rollout: &Rollout<'_>,
    ) -> Decision {
        match spec {
            ScheduleSpec::Immediately => Decision::Go,
            ScheduleSpec::Rolling { max_parallel } => {
                builtin::rolling(*max_parallel, node, rollout)
            }
            ScheduleSpec::Canary { count, soak_secs } => {
                builtin::canary(*count, *soak_secs, rollout)
            }
            ScheduleSpec::GroupOrder { groups } => builtin::group_order(groups, node, rollout),
            ScheduleSpec::Window {
                from_minute,
                to_minute,
            } => builtin::window(*from_minute, *to_minute, rollout),
            ScheduleSpec::HealthGate { healthy_secs } => {
                builtin::health_gate(*healthy_secs, rollout)
            }
            ScheduleSpec::All(specs) => {
                let mut wait = None;
                for s in specs {
                    match self.decide(s, node, rollout) {
                        Decision::Go => {}
                        Decision::Wait(why) => wait = wait.or(Some(why)),
                        halt @ Decision::Halt(_) => return halt,
                    }
                }
                wait.map_or(Decision::Go, Decision::Wait)
            }
            ScheduleSpec::Custom(name) => match self.custom.get(name) {
                Some(schedule) => schedule.decide(node, rollout),
                None => Decision::Halt(format!("no custom schedule named {name:?} is registered")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::{NodeInfo, NodeState, RolloutState, Upgrade};

    /// A node of service `Kv`, healthy since 0.
    pub(super) fn node(id: &str, group: &str, version: u32) -> NodeRecord {
        NodeRecord {
            info: NodeInfo {
                id: id.into(),
                address: String::new(),
                group: group.into(),
                service: "Kv".into(),
                version,
            },
            state: NodeState::Running,
            last_seen_ms: 0,
            healthy: true,
            problem: None,
            healthy_since_ms: Some(0),
            upgraded_at_ms: None,
            calls: Default::default(),
        }
    }

    /// `Kv` v1 -> v2 under `schedule`.
    pub(super) fn upgrade(schedule: ScheduleSpec) -> UpgradeRecord {
        UpgradeRecord {
            id: 1,
            def: Upgrade {
                service: "Kv".into(),
                from: 1,
                to: 2,
                schedule,
                artifact: "in-process".into(),
                notes: String::new(),
            },
            state: RolloutState::Active,
            published_ms: 0,
        }
    }

    /// Unix milliseconds at `hh:mm` UTC on some day.
    fn at(hh: u64, mm: u64) -> u64 {
        (20_000 * 1440 + hh * 60 + mm) * 60_000 + 12_345
    }

    fn decide_at(registry: &Registry, spec: ScheduleSpec, now_ms: u64) -> Decision {
        let up = upgrade(spec.clone());
        let asking = node("n1", "", 1);
        let rollout = Rollout {
            upgrade: &up,
            nodes: vec![&asking],
            now_ms,
            heard_within_ms: 3_000,
        };
        registry.decide(&spec, &asking, &rollout)
    }

    #[test]
    fn a_window_opens_and_closes_on_the_utc_clock_across_midnight() {
        let r = Registry::default();
        let night = ScheduleSpec::Window {
            from_minute: 22 * 60,
            to_minute: 6 * 60,
        };
        for (hh, mm) in [(22, 0), (23, 59), (0, 0), (5, 59)] {
            assert_eq!(
                decide_at(&r, night.clone(), at(hh, mm)),
                Decision::Go,
                "{hh}:{mm}"
            );
        }
        for (hh, mm) in [(6, 0), (12, 0), (21, 59)] {
            assert_eq!(
                decide_at(&r, night.clone(), at(hh, mm)),
                Decision::Wait(format!(
                    "outside the window 1320..360 (minute {} UTC)",
                    hh * 60 + mm
                )),
                "{hh}:{mm}"
            );
        }
        let lunch = ScheduleSpec::Window {
            from_minute: 12 * 60,
            to_minute: 13 * 60,
        };
        assert_eq!(decide_at(&r, lunch.clone(), at(12, 30)), Decision::Go);
        assert!(matches!(
            decide_at(&r, lunch.clone(), at(13, 0)),
            Decision::Wait(_)
        ));
        assert!(matches!(
            decide_at(&r, lunch, at(11, 59)),
            Decision::Wait(_)
        ));
    }

    #[test]
    fn a_window_combines_with_other_terms() {
        let r = Registry::default();
        let spec = ScheduleSpec::All(vec![
            ScheduleSpec::Rolling { max_parallel: 1 },
            ScheduleSpec::Window {
                from_minute: 60,
                to_minute: 120,
            },
        ]);
        assert_eq!(decide_at(&r, spec.clone(), at(1, 30)), Decision::Go);
        assert!(matches!(decide_at(&r, spec, at(2, 30)), Decision::Wait(_)));
    }

    /// Lets only nodes whose id ends in an odd digit go.
    struct OddFirst;

    impl Schedule for OddFirst {
        fn decide(&self, node: &NodeRecord, _: &Rollout<'_>) -> Decision {
            let odd = node
                .info
                .id
                .chars()
                .last()
                .and_then(|c| c.to_digit(10))
                .is_some_and(|d| d % 2 == 1);
            if odd {
                Decision::Go
            } else {
                Decision::Wait(format!("{} is even", node.info.id))
            }
        }
    }

    #[test]
    fn a_custom_schedule_decides_when_registered_and_halts_when_not() {
        let mut r = Registry::default();
        let spec = ScheduleSpec::Custom("odd-first".into());
        assert!(r.validate(&spec).is_err());
        assert!(matches!(
            decide_at(&r, spec.clone(), at(0, 0)),
            Decision::Halt(reason) if reason.contains("odd-first")
        ));
        r.register("odd-first", OddFirst);
        assert_eq!(r.validate(&spec), Ok(()));
        assert_eq!(decide_at(&r, spec.clone(), at(0, 0)), Decision::Go);
        let up = upgrade(spec.clone());
        let even = node("n2", "", 1);
        let rollout = Rollout {
            upgrade: &up,
            nodes: vec![&even],
            now_ms: 0,
            heard_within_ms: 3_000,
        };
        assert_eq!(
            r.decide(&spec, &even, &rollout),
            Decision::Wait("n2 is even".into())
        );
    }
}
