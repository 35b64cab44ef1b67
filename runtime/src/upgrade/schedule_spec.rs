//! Schedules as data: what an upgrade is published with, and the command
//! line's syntax for it. How each one decides is `crate::schedule`'s job.

use serde::{Deserialize, Serialize};

/// What a rollout waits on besides its schedule (coordinator API v4): the
/// schedule decides between the nodes of one service; a gate holds them all
/// for something outside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
pub enum Gate {
    /// No node goes until every registered node of `service` runs
    /// `version` or newer: servers before their clients. `after:S@N`.
    After {
        /// The other service.
        service: String,
        /// The version all its nodes must run.
        version: u32,
    },
    /// Once `after` nodes run the new version (0: before any), the others
    /// wait until an operator approves (`upshift approve ID`). `approval`,
    /// `approval:N`.
    Approval {
        /// Nodes that go before the approval.
        after: u32,
    },
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gate::After { service, version } => write!(f, "after:{service}@{version}"),
            Gate::Approval { after: 0 } => f.write_str("approval"),
            Gate::Approval { after } => write!(f, "approval:{after}"),
        }
    }
}

/// What a rollout waits on besides its schedule, from coordinator API v6:
/// [`Gate`]'s two, and the analysis gates, which judge the new version by
/// the calls it serves against the calls the old one serves (counted by
/// the nodes, carried by their heartbeats). The first two variants are
/// [`Gate`]'s, in its order, so a UDB record of gates from before v6 reads
/// as one of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, crate::Schema)]
pub enum Gate6 {
    /// As [`Gate::After`]. `after:S@N`.
    After {
        /// The other service.
        service: String,
        /// The version all its nodes must run.
        version: u32,
    },
    /// As [`Gate::Approval`]. `approval`, `approval:N`.
    Approval {
        /// Nodes that go before the approval.
        after: u32,
    },
    /// The rollout halts when the share of calls that fail at the new
    /// version exceeds the share at the old one by more than `above_ppm`
    /// (parts per million: 1 % is 10,000). Once a node runs the new
    /// version, the others wait until the new version has served
    /// `min_calls`, and the rollout is not final before. `errors:P%`,
    /// `errors:P%:N`.
    Errors {
        /// How far above the old version's error ratio the new one may be.
        above_ppm: u32,
        /// Calls the new version serves before it is judged.
        min_calls: u32,
    },
    /// The rollout halts when the new version's p99 latency is more than
    /// `percent` % of the old one's (judged once each has served
    /// `min_calls`; without so many calls at the old version, it is not
    /// judged). Holds the others and the end as [`Gate6::Errors`] does.
    /// `p99:Fx`, `p99:Fx:N`.
    Latency {
        /// The new version's p99 as a share of the old's, in percent.
        percent: u32,
        /// Calls each version serves before it is judged.
        min_calls: u32,
    },
}

/// Calls an analysis gate waits for when its term does not say.
pub const DEFAULT_MIN_CALLS: u32 = 100;

impl Gate6 {
    /// Whether this gate judges the new version by its calls.
    pub fn is_analysis(&self) -> bool {
        matches!(self, Gate6::Errors { .. } | Gate6::Latency { .. })
    }
}

impl From<Gate> for Gate6 {
    fn from(gate: Gate) -> Self {
        match gate {
            Gate::After { service, version } => Gate6::After { service, version },
            Gate::Approval { after } => Gate6::Approval { after },
        }
    }
}

impl TryFrom<Gate6> for Gate {
    type Error = Gate6;

    /// The gates API v4 and v5 can show; analysis gates are not among them.
    fn try_from(gate: Gate6) -> Result<Self, Gate6> {
        match gate {
            Gate6::After { service, version } => Ok(Gate::After { service, version }),
            Gate6::Approval { after } => Ok(Gate::Approval { after }),
            other => Err(other),
        }
    }
}

impl std::fmt::Display for Gate6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let min = |f: &mut std::fmt::Formatter<'_>, n: u32| {
            if n == DEFAULT_MIN_CALLS {
                Ok(())
            } else {
                write!(f, ":{n}")
            }
        };
        match self {
            Gate6::After { service, version } => write!(f, "after:{service}@{version}"),
            Gate6::Approval { after: 0 } => f.write_str("approval"),
            Gate6::Approval { after } => write!(f, "approval:{after}"),
            Gate6::Errors {
                above_ppm,
                min_calls,
            } => {
                write!(f, "errors:{}%", decimal(u64::from(*above_ppm), 10_000))?;
                min(f, *min_calls)
            }
            Gate6::Latency { percent, min_calls } => {
                write!(f, "p99:{}x", decimal(u64::from(*percent), 100))?;
                min(f, *min_calls)
            }
        }
    }
}

/// `value / per` written with as few decimals as it needs.
fn decimal(value: u64, per: u64) -> String {
    let (whole, part) = (value / per, value % per);
    if part == 0 {
        return whole.to_string();
    }
    let digits = per.ilog10() as usize;
    let text = format!("{whole}.{part:0digits$}");
    text.trim_end_matches('0').to_string()
}

/// A decimal like `1`, `0.5` or `2.25`, times `per` (a power of ten),
/// refused with `what` if it has more digits than `per` keeps.
fn parse_decimal(text: &str, per: u64, what: &str) -> Result<u64, String> {
    let (whole, part) = text.split_once('.').unwrap_or((text, ""));
    let digits = per.ilog10() as usize;
    let ok = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && part.bytes().all(|b| b.is_ascii_digit())
        && part.len() <= digits
        && whole.len() <= 9;
    if !ok {
        return Err(what.to_string());
    }
    let whole: u64 = whole.parse().map_err(|_| what.to_string())?;
    let part: u64 = format!("{part:0<digits$}").parse().unwrap_or(0);
    Ok(whole * per + part)
}

/// A schedule and its gates in the command line's syntax: the terms of
/// [`ScheduleSpec`]'s and the gates `after:SERVICE@VERSION`,
/// `approval[:N]`, `errors:P%[:N]` and `p99:Fx[:N]`, in any order. Gates
/// alone leave the schedule `immediately`.
///
/// ```
/// use upshift::upgrade::{Gate6, ScheduleSpec, schedule_and_gates};
///
/// let (schedule, gates) =
///     schedule_and_gates("rolling:2,approval:1,after:Db@3,errors:0.5%,p99:1.5x:500").unwrap();
/// assert_eq!(schedule, ScheduleSpec::Rolling { max_parallel: 2 });
/// assert_eq!(gates, [
///     Gate6::Approval { after: 1 },
///     Gate6::After { service: "Db".into(), version: 3 },
///     Gate6::Errors { above_ppm: 5_000, min_calls: 100 },
///     Gate6::Latency { percent: 150, min_calls: 500 },
/// ]);
/// ```
pub fn schedule_and_gates(text: &str) -> Result<(ScheduleSpec, Vec<Gate6>), String> {
    let mut gates = Vec::new();
    let mut rest = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match parse_gate(term)? {
            Some(gate) => gates.push(gate),
            None => rest.push(term),
        }
    }
    let schedule = if rest.is_empty() && !gates.is_empty() {
        ScheduleSpec::Immediately
    } else {
        rest.join(",").parse()?
    };
    Ok((schedule, gates))
}

/// A gate term, `None` for a schedule term.
fn parse_gate(term: &str) -> Result<Option<Gate6>, String> {
    let (name, arg) = term.split_once(':').unwrap_or((term, ""));
    match name {
        "approval" if arg.is_empty() => Ok(Some(Gate6::Approval { after: 0 })),
        "approval" => arg
            .parse()
            .map(|after| Some(Gate6::Approval { after }))
            .map_err(|_| {
                format!("`{term}`: write approval or approval:N (nodes before the approval)")
            }),
        "after" => {
            let (service, version) = arg
                .split_once('@')
                .ok_or_else(|| format!("`{term}`: write after:SERVICE@VERSION"))?;
            let version = version
                .parse()
                .map_err(|_| format!("`{term}`: the version must be a whole number"))?;
            if service.is_empty() {
                return Err(format!("`{term}`: name the service: after:SERVICE@VERSION"));
            }
            Ok(Some(Gate6::After {
                service: service.to_string(),
                version,
            }))
        }
        "errors" | "p99" => {
            let (threshold, min_calls) = match arg.split_once(':') {
                Some((threshold, n)) => (
                    threshold,
                    n.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("`{term}`: the calls to judge after must be a whole number above 0")
                    })?,
                ),
                None => (arg, DEFAULT_MIN_CALLS),
            };
            if name == "errors" {
                let how = format!(
                    "`{term}`: write errors:P% (how many percentage points above the old version's                      error ratio the new one may be, up to 4 decimals), or errors:P%:N to judge after N calls"
                );
                let points = threshold.strip_suffix('%').ok_or_else(|| how.clone())?;
                let above_ppm = parse_decimal(points, 10_000, &how)?;
                let above_ppm = u32::try_from(above_ppm)
                    .ok()
                    .filter(|p| *p <= 1_000_000)
                    .ok_or_else(|| format!("`{term}`: at most 100%"))?;
                Ok(Some(Gate6::Errors {
                    above_ppm,
                    min_calls,
                }))
            } else {
                let how = format!(
                    "`{term}`: write p99:Fx (how many times the old version's p99 the new one may take,                      1 or more, up to 2 decimals), or p99:Fx:N to judge after N calls"
                );
                let factor = threshold.strip_suffix('x').ok_or_else(|| how.clone())?;
                let percent = parse_decimal(factor, 100, &how)?;
                let percent = u32::try_from(percent)
                    .ok()
                    .filter(|p| *p >= 100)
                    .ok_or(how)?;
                Ok(Some(Gate6::Latency { percent, min_calls }))
            }
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod gate_tests {
    use super::*;

    #[test]
    fn analysis_gates_read_back_as_they_are_written() {
        for text in [
            "errors:1%",
            "errors:0.5%:200",
            "errors:0.0125%",
            "errors:100%",
            "p99:2x",
            "p99:1.25x:1000",
            "approval:2",
            "after:Db@3",
        ] {
            let (_, gates) = schedule_and_gates(text).unwrap();
            assert_eq!(gates.len(), 1, "{text}");
            assert_eq!(gates[0].to_string(), text);
        }
    }

    #[test]
    fn a_wrong_analysis_term_says_how_to_write_it() {
        for (text, says) in [
            ("errors:1", "write errors:P%"),
            ("errors:x%", "write errors:P%"),
            ("errors:0.00001%", "up to 4 decimals"),
            ("errors:101%", "at most 100%"),
            ("errors:1%:0", "above 0"),
            ("p99:2", "write p99:Fx"),
            ("p99:0.5x", "1 or more"),
            ("p99:2x:many", "whole number"),
        ] {
            let err = schedule_and_gates(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}

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
    /// All of these: waits if any waits, halts if any halts. Nests at most
    /// [`MAX_DEPTH`] deep, refused already when decoded.
    All(
        #[serde(deserialize_with = "nested_terms")]
        #[upshift(encoded_as = Vec<ScheduleSpec>)]
        Vec<ScheduleSpec>,
    ),
    /// A schedule registered with the coordinator under this name.
    Custom(String),
}

/// How deep `All` may nest (a published schedule, and one being decoded).
pub const MAX_DEPTH: usize = 4;
/// How many terms a schedule may have in all, `All`s included.
pub const MAX_TERMS: usize = 64;
/// The longest group or custom schedule name, in bytes.
pub const MAX_NAME: usize = 255;

thread_local! {
    /// `All`s being decoded on this thread, outermost first.
    static DECODING_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Decodes the terms of an `All`, refusing to nest past [`MAX_DEPTH`]: the
/// decoder recurses per level, so a deep value from the network would
/// otherwise overflow the stack before any check could see it.
fn nested_terms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ScheduleSpec>, D::Error> {
    let depth = DECODING_DEPTH.with(|c| c.get()) + 1;
    if depth > MAX_DEPTH {
        return Err(serde::de::Error::custom(format!(
            "schedule nested deeper than {MAX_DEPTH} levels of `All`"
        )));
    }
    DECODING_DEPTH.with(|c| c.set(depth));
    let terms = Vec::<ScheduleSpec>::deserialize(d);
    DECODING_DEPTH.with(|c| c.set(depth - 1));
    terms
}

impl ScheduleSpec {
    /// Checks the schedule's size: `All` nested at most [`MAX_DEPTH`] deep,
    /// at most [`MAX_TERMS`] terms, names of at most [`MAX_NAME`] bytes.
    pub fn check_size(&self) -> Result<(), String> {
        fn walk(spec: &ScheduleSpec, depth: usize, terms: &mut usize) -> Result<(), String> {
            *terms += 1;
            if *terms > MAX_TERMS {
                return Err(format!("a schedule has at most {MAX_TERMS} terms"));
            }
            let long = |name: &str| name.len() > MAX_NAME;
            match spec {
                ScheduleSpec::All(specs) => {
                    if depth >= MAX_DEPTH {
                        return Err(format!(
                            "a schedule nests `All` at most {MAX_DEPTH} levels deep"
                        ));
                    }
                    specs.iter().try_for_each(|s| walk(s, depth + 1, terms))
                }
                ScheduleSpec::GroupOrder { groups } if groups.iter().any(|g| long(g)) => Err(
                    format!("group names in a schedule are at most {MAX_NAME} bytes"),
                ),
                ScheduleSpec::GroupOrder { groups } if groups.len() > MAX_TERMS => {
                    Err(format!("a group order lists at most {MAX_TERMS} groups"))
                }
                ScheduleSpec::Custom(name) if long(name) => Err(format!(
                    "custom schedule names are at most {MAX_NAME} bytes"
                )),
                _ => Ok(()),
            }
        }
        walk(self, 0, &mut 0)
    }

    /// Whether the schedule (or a term of it) gates on the health of upgraded nodes.
    pub fn has_health_gate(&self) -> bool {
        match self {
            ScheduleSpec::HealthGate { .. } => true,
            ScheduleSpec::All(specs) => specs.iter().any(ScheduleSpec::has_health_gate),
            _ => false,
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

/// The command-line syntax again: what parses back to the same schedule
/// (nested combinations are flattened, as `All` of `All` means the same).
impl std::fmt::Display for ScheduleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hhmm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        match self {
            ScheduleSpec::Immediately => f.write_str("immediately"),
            ScheduleSpec::Rolling { max_parallel } => write!(f, "rolling:{max_parallel}"),
            ScheduleSpec::Canary { count, soak_secs } => write!(f, "canary:{count}:{soak_secs}"),
            ScheduleSpec::GroupOrder { groups } => write!(f, "groups:{}", groups.join(">")),
            ScheduleSpec::Window {
                from_minute,
                to_minute,
            } => write!(f, "window:{}-{}", hhmm(*from_minute), hhmm(*to_minute)),
            ScheduleSpec::HealthGate { healthy_secs } => write!(f, "health:{healthy_secs}"),
            ScheduleSpec::All(specs) => {
                for (i, spec) in specs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{spec}")?;
                }
                Ok(())
            }
            ScheduleSpec::Custom(name) => write!(f, "custom:{name}"),
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
        ("after" | "approval", _) => Err(format!(
            "`{term}` is a gate, not a schedule term: `upshift publish --schedule` takes both \
             (upshift::upgrade::schedule_and_gates), the coordinator's v4 `publish_gated` publishes them"
        )),
        _ => Err(format!(
            "unknown schedule term `{term}`; the terms are {TERMS}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_deeply_nested_schedule_is_refused_when_decoded_without_overflowing() {
        // postcard: `All` is variant 6, then a one-term list, 100,000 times.
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[6, 1]);
        }
        bytes.push(0);
        let e = postcard::from_bytes::<ScheduleSpec>(&bytes).expect_err("refused");
        assert!(matches!(e, postcard::Error::SerdeDeCustom), "{e:?}");
        // The deepest legal value still decodes, and the depth is reset after.
        let mut spec = ScheduleSpec::Immediately;
        for _ in 0..MAX_DEPTH {
            spec = ScheduleSpec::All(vec![spec]);
        }
        let legal = postcard::to_allocvec(&spec).expect("encodes");
        assert_eq!(
            postcard::from_bytes::<ScheduleSpec>(&legal),
            Ok(spec.clone())
        );
        assert_eq!(
            postcard::from_bytes::<ScheduleSpec>(&legal),
            Ok(spec.clone())
        );
        assert_eq!(spec.check_size(), Ok(()));
        let deeper = ScheduleSpec::All(vec![spec]);
        assert!(deeper.check_size().is_err());
        assert!(
            postcard::from_bytes::<ScheduleSpec>(&postcard::to_allocvec(&deeper).expect("encodes"))
                .is_err()
        );
    }

    #[test]
    fn schedules_have_a_size_limit() {
        let many = ScheduleSpec::All(vec![ScheduleSpec::Immediately; MAX_TERMS]);
        assert!(many.check_size().unwrap_err().contains("at most 64 terms"));
        let long = ScheduleSpec::GroupOrder {
            groups: vec!["g".repeat(MAX_NAME + 1)],
        };
        assert!(long.check_size().is_err());
        assert_eq!(
            ScheduleSpec::Custom("c".repeat(MAX_NAME)).check_size(),
            Ok(())
        );
    }

    #[test]
    fn the_syntax_prints_back_to_what_it_parses() {
        for text in [
            "immediately",
            "rolling:2",
            "canary:1:60",
            "groups:servers>clients",
            "window:22:00-06:30",
            "health:30",
            "custom:nightly",
            "rolling:2,health:30,groups:a>b,window:00:00-24:00",
        ] {
            let spec: ScheduleSpec = text.parse().expect(text);
            assert_eq!(spec.to_string(), text);
            assert_eq!(spec.to_string().parse::<ScheduleSpec>(), Ok(spec));
        }
    }

    #[test]
    fn gates_parse_beside_the_schedule_and_print_back() {
        let (schedule, gates) =
            schedule_and_gates("after:Server@2, rolling:1, approval").expect("parses");
        assert_eq!(schedule, ScheduleSpec::Rolling { max_parallel: 1 });
        assert_eq!(
            gates,
            [
                Gate6::After {
                    service: "Server".into(),
                    version: 2
                },
                Gate6::Approval { after: 0 }
            ]
        );
        let texts: Vec<String> = gates.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["after:Server@2", "approval"]);
        assert_eq!(
            schedule_and_gates("approval:3").expect("alone"),
            (
                ScheduleSpec::Immediately,
                vec![Gate6::Approval { after: 3 }]
            )
        );
        for bad in [
            "approval:x",
            "after:Server",
            "after:@2",
            "after:S@x",
            "rolling:1,nope",
        ] {
            assert!(schedule_and_gates(bad).is_err(), "{bad} was taken");
        }
        let plain = "approval".parse::<ScheduleSpec>().expect_err("a gate");
        assert!(plain.contains("is a gate"), "{plain}");
    }
}
