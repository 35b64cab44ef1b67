//! A dry run of a rollout: the order in which a schedule would let the
//! nodes go, found by asking it as the coordinator does, on a copy of the
//! nodes and a clock that only this simulation moves.

use super::{Decision, Registry, Rollout};
use crate::upgrade::{NodeRecord, NodeState, UpgradeRecord};

/// Nodes that would start upgrading at the same moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    /// Milliseconds after the start.
    pub at_ms: u64,
    /// The nodes, by id.
    pub nodes: Vec<String>,
    /// Why the wave's first node was last told to wait, if it was.
    pub after: Option<String>,
}

/// How a planned rollout goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The waves, in order.
    pub waves: Vec<Wave>,
    /// When the rollout would be final (milliseconds after the start), or
    /// why it would not get there.
    pub end: Result<u64, String>,
}

/// The longest rollout a plan follows: a week.
const HORIZON_MS: u64 = 7 * 24 * 3_600_000;

/// Plans `upgrade` over `nodes` (those of other services are ignored),
/// starting at `start_ms`, as the coordinator would run it if every node
/// stayed up and healthy and took `upgrade_ms` to upgrade: at each moment
/// every waiting node asks for a slot (in id order; a real rollout's order
/// within a wave is the order nodes ask in), the granted ones upgrade, and
/// the clock moves to the next upgrade's end, or on by a second (a minute
/// after the first hour) while a schedule only waits for time to pass.
pub fn plan(
    registry: &Registry,
    upgrade: &UpgradeRecord,
    nodes: &[NodeRecord],
    start_ms: u64,
    upgrade_ms: u64,
) -> Plan {
    let def = &upgrade.def;
    let mut nodes: Vec<NodeRecord> = nodes
        .iter()
        .filter(|n| n.info.service == def.service)
        .cloned()
        .collect();
    nodes.sort_by(|a, b| a.info.id.cmp(&b.info.id));
    for n in &mut nodes {
        n.healthy = true;
        n.healthy_since_ms = Some(n.healthy_since_ms.unwrap_or(start_ms).min(start_ms));
        if let NodeState::Failed { .. } = n.state {
            n.state = NodeState::Running;
        }
    }
    let mut now = start_ms;
    let mut waves = Vec::new();
    // Why each node was last told to wait: a wave's `after` is its first
    // node's.
    let mut waited: std::collections::BTreeMap<String, String> = Default::default();
    // Why a health gate held the end, if it did.
    let mut gate: Option<String> = None;
    loop {
        for n in &mut nodes {
            n.last_seen_ms = now;
        }
        if nodes.iter().all(|n| def.reached(n.info.version)) {
            let rollout = Rollout {
                upgrade,
                nodes: nodes.iter().collect(),
                now_ms: now,
                heard_within_ms: u64::MAX,
            };
            match Registry::gates_pass(&def.schedule, &rollout) {
                Decision::Go => {
                    return Plan {
                        waves,
                        end: Ok(now - start_ms),
                    };
                }
                Decision::Halt(why) => {
                    return Plan {
                        waves,
                        end: Err(why),
                    };
                }
                Decision::Wait(why) => {
                    gate = Some(why);
                }
            }
        }
        let mut granted = Vec::new();
        for i in 0..nodes.len() {
            let n = &nodes[i];
            if n.info.version != def.from || n.state != NodeState::Running {
                continue;
            }
            let rollout = Rollout {
                upgrade,
                nodes: nodes.iter().collect(),
                now_ms: now,
                heard_within_ms: u64::MAX,
            };
            match registry.decide(&def.schedule, n, &rollout) {
                Decision::Go => {
                    granted.push(n.info.id.clone());
                    nodes[i].state = NodeState::Upgrading { to: def.to };
                }
                Decision::Wait(why) => {
                    waited.insert(n.info.id.clone(), why);
                }
                Decision::Halt(why) => {
                    return Plan {
                        waves,
                        end: Err(why),
                    };
                }
            }
        }
        if let Some(first) = granted.first() {
            let after = waited.remove(first);
            waves.push(Wave {
                at_ms: now - start_ms,
                nodes: granted,
                after,
            });
        }
        let upgrading = nodes
            .iter()
            .any(|n| matches!(n.state, NodeState::Upgrading { .. }));
        if upgrading {
            now += upgrade_ms;
            for n in &mut nodes {
                if let NodeState::Upgrading { to } = n.state {
                    n.state = NodeState::Running;
                    n.info.version = to;
                    n.upgraded_at_ms = Some(now);
                    n.healthy_since_ms = Some(now);
                }
            }
        } else {
            if nodes.iter().any(|n| n.info.version < def.from) {
                return Plan {
                    waves,
                    end: Err(format!(
                        "nodes of {} run versions older than v{}: they cannot take this upgrade",
                        def.service, def.from
                    )),
                };
            }
            now += if now - start_ms < 3_600_000 {
                1_000
            } else {
                60_000
            };
        }
        if now - start_ms > HORIZON_MS {
            // The health gate's reason, else a waiting node's.
            let why = gate
                .or_else(|| waited.into_values().next())
                .unwrap_or_else(|| "the schedule never lets them go".into());
            return Plan {
                waves,
                end: Err(format!("after a week, nodes still wait: {why}")),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::ScheduleSpec;

    fn node(id: &str, group: &str) -> NodeRecord {
        crate::schedule::tests::node(id, group, 1)
    }

    fn upgrade(schedule: &str) -> UpgradeRecord {
        crate::schedule::tests::upgrade(schedule.parse().expect("a schedule"))
    }

    fn waves(plan: &Plan) -> Vec<(u64, Vec<&str>)> {
        plan.waves
            .iter()
            .map(|w| (w.at_ms / 1000, w.nodes.iter().map(String::as_str).collect()))
            .collect()
    }

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn groups_in_order_a_slot_at_a_time() {
        let nodes = [
            node("b1", "b"),
            node("a2", "a"),
            node("a1", "a"),
            node("b2", "b"),
        ];
        let plan = plan(
            &Registry::default(),
            &upgrade("groups:a>b,rolling:1"),
            &nodes,
            T0,
            30_000,
        );
        assert_eq!(
            waves(&plan),
            vec![
                (0, vec!["a1"]),
                (30, vec!["a2"]),
                (60, vec!["b1"]),
                (90, vec!["b2"])
            ]
        );
        assert_eq!(plan.end, Ok(120_000));
        assert!(
            plan.waves[1]
                .after
                .as_deref()
                .is_some_and(|w| w.contains("slots of group \"a\"")),
            "{:?}",
            plan.waves[1]
        );
    }

    #[test]
    fn canaries_soak_then_the_rest_go_and_a_health_gate_holds_the_end() {
        let nodes: Vec<_> = (1..=5).map(|i| node(&format!("n{i}"), "g")).collect();
        let soaked = plan(
            &Registry::default(),
            &upgrade("canary:1:60,rolling:2"),
            &nodes,
            T0,
            5_000,
        );
        let w = waves(&soaked);
        assert_eq!(w[0], (0, vec!["n1"]));
        // The canary runs v2 at 5 s and soaks 60 s; each wave soaks again.
        assert_eq!(w[1], (65, vec!["n2", "n3"]));
        assert_eq!(w[2], (130, vec!["n4", "n5"]));
        assert!(
            soaked.waves[1]
                .after
                .as_deref()
                .is_some_and(|w| w.starts_with("canaries soaking")),
            "{:?}",
            soaked.waves[1]
        );
        // A health gate lets one node go at a time, each healthy for 10 s
        // first, and holds the end as long.
        let gated = plan(
            &Registry::default(),
            &upgrade("rolling:2,health:10"),
            &nodes,
            T0,
            5_000,
        );
        let w = waves(&gated);
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w.iter().all(|(_, n)| n.len() == 1), "{w:?}");
        assert_eq!(w[1].0, 15, "5 s to upgrade, 10 s healthy");
        assert_eq!(gated.end, Ok(75_000));
    }

    #[test]
    fn a_plan_that_cannot_finish_says_why() {
        let mut old = node("n0", "g");
        old.info.version = 0;
        let plan = plan(
            &Registry::default(),
            &upgrade("rolling:1"),
            &[node("n1", "g"), old],
            T0,
            1_000,
        );
        assert_eq!(waves(&plan), vec![(0, vec!["n1"])]);
        assert!(plan.end.expect_err("stuck").contains("older than v1"));
        let custom = plan_with_custom();
        assert!(
            custom
                .end
                .expect_err("unknown")
                .contains("no custom schedule named")
        );
    }

    fn plan_with_custom() -> Plan {
        let mut up = upgrade("rolling:1");
        up.def.schedule = ScheduleSpec::Custom("mine".into());
        plan(&Registry::default(), &up, &[node("n1", "g")], T0, 1_000)
    }
}
