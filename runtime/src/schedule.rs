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

use crate::udb::{NodeRecord, NodeState, UpgradeRecord};

/// A schedule as published with an upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
pub enum ScheduleSpec {
    /// Every node may upgrade at once.
    Immediately,
    /// At most `max_parallel` nodes of a group upgrade at the same time.
    Rolling {
        /// Slots per group.
        max_parallel: u32,
    },
    /// `count` nodes first; the rest once the last of them has run the new
    /// version for `soak_secs`.
    Canary {
        /// Canary nodes.
        count: u32,
        /// Soak time after the last canary upgraded.
        soak_secs: u64,
    },
    /// Groups in this order: a node waits until every node of the groups
    /// before its own runs the new version. Groups not listed go last.
    GroupOrder {
        /// Group names, first to last.
        groups: Vec<String>,
    },
    /// Only between these minutes of the day (UTC); `from > to` wraps midnight.
    Window {
        /// Start, minutes after midnight UTC.
        from_minute: u32,
        /// End (exclusive), minutes after midnight UTC.
        to_minute: u32,
    },
    /// Each upgraded node must pass its health check for `healthy_secs`
    /// before the next node may go; an upgraded node that reports unhealthy
    /// halts the rollout.
    HealthGate {
        /// Required healthy time after an upgrade.
        healthy_secs: u64,
    },
    /// All of these: waits if any waits, halts if any halts.
    All(Vec<ScheduleSpec>),
    /// A schedule registered with the coordinator under this name.
    Custom(String),
}

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
}

impl Rollout<'_> {
    /// Nodes holding a slot (upgrading to this upgrade's version).
    pub fn upgrading(&self) -> impl Iterator<Item = &&NodeRecord> {
        self.nodes.iter().filter(move |n| {
            n.state
                == NodeState::Upgrading {
                    to: self.upgrade.def.to,
                }
        })
    }

    /// Nodes that run the new version.
    pub fn upgraded(&self) -> impl Iterator<Item = &&NodeRecord> {
        self.nodes
            .iter()
            .filter(move |n| n.info.version >= self.upgrade.def.to)
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
            ScheduleSpec::All(specs) => specs.iter().try_for_each(|s| self.validate(s)),
            ScheduleSpec::Custom(name) if !self.custom.contains_key(name) => Err(format!(
                "no custom schedule named {name:?} is registered; registered: {:?}",
                self.custom.keys().collect::<Vec<_>>()
            )),
            _ => Ok(()),
        }
    }

    /// What `spec` says to `node`.
    pub fn decide(
        &self,
        spec: &ScheduleSpec,
        node: &NodeRecord,
        rollout: &Rollout<'_>,
    ) -> Decision {
        let to = rollout.upgrade.def.to;
        match spec {
            ScheduleSpec::Immediately => Decision::Go,
            ScheduleSpec::Rolling { max_parallel } => {
                let busy = rollout
                    .upgrading()
                    .filter(|n| n.info.group == node.info.group)
                    .count();
                if busy < *max_parallel as usize {
                    Decision::Go
                } else {
                    Decision::Wait(format!(
                        "{busy} of {max_parallel} slots of group {:?} are in use",
                        node.info.group
                    ))
                }
            }
            ScheduleSpec::Canary { count, soak_secs } => {
                let started = rollout.upgraded().count() + rollout.upgrading().count();
                if started < *count as usize {
                    return Decision::Go;
                }
                let upgraded: Vec<_> = rollout.upgraded().collect();
                if upgraded.len() < *count as usize {
                    return Decision::Wait(format!("waiting for {count} canaries to finish"));
                }
                let last = upgraded
                    .iter()
                    .filter_map(|n| n.upgraded_at_ms)
                    .max()
                    .unwrap_or(0);
                let soaked = rollout.now_ms.saturating_sub(last) / 1000;
                if soaked >= *soak_secs {
                    Decision::Go
                } else {
                    Decision::Wait(format!("canaries soaking: {soaked} of {soak_secs} s"))
                }
            }
            ScheduleSpec::GroupOrder { groups } => {
                let rank = |g: &str| groups.iter().position(|x| x == g).unwrap_or(groups.len());
                let mine = rank(&node.info.group);
                let behind = rollout
                    .nodes
                    .iter()
                    .filter(|n| rank(&n.info.group) < mine && n.info.version < to)
                    .count();
                if behind == 0 {
                    Decision::Go
                } else {
                    Decision::Wait(format!(
                        "{behind} nodes of groups before {:?} have not upgraded yet",
                        node.info.group
                    ))
                }
            }
            ScheduleSpec::Window {
                from_minute,
                to_minute,
            } => {
                let minute = ((rollout.now_ms / 60_000) % 1440) as u32;
                let open = if from_minute <= to_minute {
                    (*from_minute..*to_minute).contains(&minute)
                } else {
                    minute >= *from_minute || minute < *to_minute
                };
                if open {
                    Decision::Go
                } else {
                    Decision::Wait(format!(
                        "outside the window {from_minute}..{to_minute} (minute {minute} UTC)"
                    ))
                }
            }
            ScheduleSpec::HealthGate { healthy_secs } => {
                for n in rollout.upgraded() {
                    if !n.healthy {
                        return Decision::Halt(format!(
                            "node {} failed its health check after upgrading",
                            n.info.id
                        ));
                    }
                    let since = n
                        .healthy_since_ms
                        .unwrap_or(rollout.now_ms)
                        .max(n.upgraded_at_ms.unwrap_or(0));
                    let healthy_for = rollout.now_ms.saturating_sub(since) / 1000;
                    if healthy_for < *healthy_secs {
                        return Decision::Wait(format!(
                            "node {} healthy for {healthy_for} of {healthy_secs} s",
                            n.info.id
                        ));
                    }
                }
                if rollout.upgrading().next().is_some() {
                    return Decision::Wait(
                        "a node is upgrading; its health is not known yet".into(),
                    );
                }
                Decision::Go
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

/// The schedule syntax of the command line: terms separated by commas, all
/// of which must allow a node to go.
///
/// | term | schedule |
/// |---|---|
/// | `immediately` | [`ScheduleSpec::Immediately`] |
/// | `rolling:N` | [`ScheduleSpec::Rolling`] with `max_parallel = N` |
/// | `canary:N:SECS` | [`ScheduleSpec::Canary`] |
/// | `groups:a>b>c` | [`ScheduleSpec::GroupOrder`] |
/// | `window:HH:MM-HH:MM` | [`ScheduleSpec::Window`], UTC |
/// | `health:SECS` | [`ScheduleSpec::HealthGate`] |
/// | `custom:NAME` | [`ScheduleSpec::Custom`] |
impl std::str::FromStr for ScheduleSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut terms = s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(parse_term)
            .collect::<Result<Vec<_>, _>>()?;
        match terms.len() {
            0 => Err("empty schedule; try `rolling:1` or `immediately`".into()),
            1 => Ok(terms.remove(0)),
            _ => Ok(ScheduleSpec::All(terms)),
        }
    }
}

const TERMS: &str = "immediately, rolling:N, canary:N:SECS, groups:a>b, window:HH:MM-HH:MM, health:SECS, custom:NAME";

fn parse_term(term: &str) -> Result<ScheduleSpec, String> {
    let (name, arg) = term.split_once(':').unwrap_or((term, ""));
    let number = |what: &str, v: &str| -> Result<u64, String> {
        v.parse()
            .map_err(|_| format!("`{term}`: {what} must be a whole number, got {v:?}"))
    };
    let minute = |v: &str| -> Result<u32, String> {
        let (h, m) = v
            .split_once(':')
            .ok_or_else(|| format!("`{term}`: times are HH:MM, got {v:?}"))?;
        let (h, m) = (number("the hour", h)?, number("the minute", m)?);
        if h > 24 || m > 59 || (h == 24 && m > 0) {
            return Err(format!("`{term}`: {v} is not a time of day"));
        }
        Ok((h * 60 + m) as u32)
    };
    let u32_of = |what: &str, v: &str| -> Result<u32, String> {
        u32::try_from(number(what, v)?).map_err(|_| format!("`{term}`: {what} is too large"))
    };
    match (name, arg) {
        ("immediately", "") => Ok(ScheduleSpec::Immediately),
        ("rolling", n) => Ok(ScheduleSpec::Rolling {
            max_parallel: u32_of("the number of parallel upgrades", n)?,
        }),
        ("canary", rest) => {
            let (n, soak) = rest
                .split_once(':')
                .ok_or_else(|| format!("`{term}`: write canary:COUNT:SOAK_SECS"))?;
            Ok(ScheduleSpec::Canary {
                count: u32_of("the canary count", n)?,
                soak_secs: number("the soak time", soak)?,
            })
        }
        ("groups", list) if !list.is_empty() => Ok(ScheduleSpec::GroupOrder {
            groups: list.split('>').map(|g| g.trim().to_string()).collect(),
        }),
        ("window", range) => {
            let (from, to) = range
                .split_once('-')
                .ok_or_else(|| format!("`{term}`: write window:HH:MM-HH:MM"))?;
            Ok(ScheduleSpec::Window {
                from_minute: minute(from)? % 1440,
                to_minute: minute(to)?,
            })
        }
        ("health", secs) => Ok(ScheduleSpec::HealthGate {
            healthy_secs: number("the healthy time", secs)?,
        }),
        ("custom", n) if !n.is_empty() => Ok(ScheduleSpec::Custom(n.to_string())),
        _ => Err(format!(
            "unknown schedule term `{term}`; the terms are {TERMS}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udb::{NodeInfo, NodeState, RolloutState, UpgradeDef};

    fn node(id: &str, group: &str, version: u32) -> NodeRecord {
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
            healthy_since_ms: Some(0),
            upgraded_at_ms: None,
            calls: Default::default(),
        }
    }

    fn upgrade(schedule: ScheduleSpec) -> UpgradeRecord {
        UpgradeRecord {
            id: 1,
            def: UpgradeDef {
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
        };
        assert_eq!(
            r.decide(&spec, &even, &rollout),
            Decision::Wait("n2 is even".into())
        );
    }

    #[test]
    fn schedules_parse_from_the_command_line_syntax() {
        let spec: ScheduleSpec = "rolling:2, health:30, groups:servers>clients, window:22:00-06:00"
            .parse()
            .expect("parses");
        assert_eq!(
            spec,
            ScheduleSpec::All(vec![
                ScheduleSpec::Rolling { max_parallel: 2 },
                ScheduleSpec::HealthGate { healthy_secs: 30 },
                ScheduleSpec::GroupOrder {
                    groups: vec!["servers".into(), "clients".into()]
                },
                ScheduleSpec::Window {
                    from_minute: 1320,
                    to_minute: 360
                },
            ])
        );
        assert_eq!(
            "canary:1:60".parse(),
            Ok(ScheduleSpec::Canary {
                count: 1,
                soak_secs: 60
            })
        );
        assert_eq!("immediately".parse(), Ok(ScheduleSpec::Immediately));
        for bad in [
            "",
            "rolling:x",
            "sometimes",
            "window:25:00-01:00",
            "canary:3",
            "groups:",
        ] {
            assert!(bad.parse::<ScheduleSpec>().is_err(), "{bad:?} parsed");
        }
    }
}
