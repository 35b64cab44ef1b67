//! One test per rollout rule, on an in-memory UDB and a manual clock: no
//! sockets, no sleeps. The TCP rollout tests in `tests/tests/rollout.rs`
//! cover the same rules end to end.

use std::time::Duration;

use super::Coordinator;
use crate::clock::ManualClock;
use crate::schedule::Registry;
use crate::udb::MemoryUdb;
use crate::upgrade::api::v6::Coordinator as _;
use crate::upgrade::api::{
    ApproveError, Control, ControlError, Heartbeat6, Outcome, PublishError, PublishError3,
    RequestError3, RollbackError, Slot, StatusView3,
};
use crate::upgrade::{NodeInfo, NodeState, RolloutState, ScheduleSpec, Upgrade};

const T0: u64 = 1_700_000_000_000;

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
        .block_on(f)
}

struct Fixture {
    coordinator: Coordinator,
    udb: MemoryUdb,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    let udb = MemoryUdb::new();
    let clock = ManualClock::at(T0);
    let coordinator = Coordinator::open_with_clock(udb.clone(), Registry::default(), clock.clone())
        .expect("opens")
        .with_slot_timeout(Duration::from_secs(10));
    Fixture {
        coordinator,
        udb,
        clock,
    }
}

fn info(id: &str, group: &str, version: u32) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        address: String::new(),
        group: group.into(),
        service: "Kv".into(),
        version,
    }
}

fn upgrade(schedule: &str) -> Upgrade {
    Upgrade {
        service: "Kv".into(),
        from: 1,
        to: 2,
        schedule: schedule.parse().expect("a schedule"),
        artifact: "in-process".into(),
        notes: String::new(),
    }
}

impl Fixture {
    fn register(&self, id: &str, group: &str) {
        run(self.coordinator.register(info(id, group, 1))).expect("recorded");
    }

    fn publish(&self, schedule: &str) -> u64 {
        run(self.coordinator.publish(upgrade(schedule))).expect("published")
    }

    fn slot(&self, id: &str, up: u64) -> Slot {
        run(self.coordinator.request_slot(id.into(), up)).expect("recorded")
    }

    fn report(&self, id: &str, up: u64, outcome: Outcome) {
        run(self.coordinator.report(id.into(), up, outcome)).expect("recorded");
    }

    fn status(&self) -> StatusView3 {
        run(self.coordinator.status())
    }

    fn rollout(&self, up: u64) -> RolloutState {
        self.status().rollouts[&up].state.clone()
    }
}

#[test]
fn a_slot_is_granted_within_the_limit_of_each_group() {
    let f = fixture();
    for (id, group) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
        f.register(id, group);
    }
    let up = f.publish("rolling:1");
    assert_eq!(f.slot("a1", up), Slot::Granted);
    assert_eq!(
        f.slot("a2", up),
        Slot::Wait("1 of 1 slots of group \"a\" are in use".into())
    );
    assert_eq!(
        f.slot("b1", up),
        Slot::Granted,
        "another group has its own slot"
    );
    // Asking again while holding the slot is answered the same, not twice counted.
    assert_eq!(f.slot("a1", up), Slot::Granted);
    assert_eq!(f.status().nodes["a1"].state, NodeState::Upgrading { to: 2 });
    f.report("a1", up, Outcome::Upgraded { version: 2 });
    assert_eq!(f.slot("a2", up), Slot::Granted, "the slot freed");
}

#[test]
fn a_failed_upgrade_halts_the_rollout() {
    let f = fixture();
    f.register("n1", "g");
    f.register("n2", "g");
    let up = f.publish("rolling:1");
    assert_eq!(f.slot("n1", up), Slot::Granted);
    f.report(
        "n1",
        up,
        Outcome::Failed {
            reason: "disk full".into(),
        },
    );
    let reason = "node n1 failed to upgrade: disk full".to_string();
    assert_eq!(
        f.rollout(up),
        RolloutState::Halted {
            reason: reason.clone()
        }
    );
    assert_eq!(f.slot("n2", up), Slot::Halted(reason));
}

#[test]
fn a_slot_holder_not_heard_from_expires_and_halts_the_rollout() {
    let f = fixture();
    f.register("n1", "g");
    f.register("n2", "g");
    let up = f.publish("rolling:1");
    assert_eq!(f.slot("n1", up), Slot::Granted);
    // n2 keeps beating; n1 is silent for longer than the slot timeout (10 s).
    f.clock.advance(10_001);
    let beat = beat("n2", "", 1);
    run(f.coordinator.heartbeat(beat)).expect("recorded");
    let status = f.status();
    assert!(
        matches!(&status.nodes["n1"].state, NodeState::Failed { to: 2, reason } if reason.contains("stopped reporting")),
        "{:?}",
        status.nodes["n1"].state
    );
    assert!(
        matches!(&status.rollouts[&up].state, RolloutState::Halted { reason } if reason.contains("node n1 stopped reporting")),
        "{:?}",
        status.rollouts[&up].state
    );
    // Not a moment before the timeout.
    let g = fixture();
    g.register("n1", "g");
    let up = g.publish("rolling:1");
    assert_eq!(g.slot("n1", up), Slot::Granted);
    g.clock.advance(10_000);
    assert_eq!(g.status().nodes["n1"].state, NodeState::Upgrading { to: 2 });
}

#[test]
fn the_rollout_is_final_once_every_node_runs_the_new_version() {
    let f = fixture();
    f.register("n1", "g");
    f.register("n2", "g");
    let up = f.publish("immediately");
    for n in ["n1", "n2"] {
        assert_eq!(f.slot(n, up), Slot::Granted);
    }
    f.report("n1", up, Outcome::Upgraded { version: 2 });
    assert_eq!(f.rollout(up), RolloutState::Active, "n2 still runs v1");
    f.report("n2", up, Outcome::Upgraded { version: 2 });
    assert_eq!(f.rollout(up), RolloutState::Final);
    assert_eq!(f.slot("n1", up), Slot::Gone("the upgrade is final".into()));
}

#[test]
fn resume_reopens_a_halted_rollout_and_lets_failed_nodes_try_again() {
    let f = fixture();
    f.register("n1", "g");
    let up = f.publish("rolling:1");
    assert_eq!(f.slot("n1", up), Slot::Granted);
    f.report("n1", up, Outcome::Failed { reason: "x".into() });
    run(f.coordinator.control(up, Control::Resume)).expect("resumes");
    assert_eq!(f.rollout(up), RolloutState::Active);
    assert_eq!(f.status().nodes["n1"].state, NodeState::Running);
    assert_eq!(f.slot("n1", up), Slot::Granted);
    // Pause: no new slots; resume again.
    run(f.coordinator.control(up, Control::Pause)).expect("pauses");
    assert_eq!(
        run(f.coordinator.control(up, Control::Pause)),
        Err(ControlError::NotNow {
            upgrade: up,
            action: Control::Pause,
            state: RolloutState::Paused
        })
    );
}

#[test]
fn abort_ends_a_rollout_for_good() {
    let f = fixture();
    f.register("n1", "g");
    let up = f.publish("rolling:1");
    run(f.coordinator.control(up, Control::Abort)).expect("aborts");
    assert_eq!(f.rollout(up), RolloutState::Aborted);
    assert_eq!(
        f.slot("n1", up),
        Slot::Gone("the upgrade was aborted".into())
    );
    assert!(matches!(
        run(f.coordinator.control(up, Control::Resume)),
        Err(ControlError::NotNow { .. })
    ));
    assert_eq!(
        run(f.coordinator.control(99, Control::Abort)),
        Err(ControlError::NoSuchUpgrade(99))
    );
    // The service is free for a new upgrade.
    f.publish("rolling:1");
}

#[test]
fn publish_refusals_are_typed() {
    let f = fixture();
    let refused = |u: Upgrade| match run(f.coordinator.publish(u)).expect_err("refused") {
        PublishError3::V2(e) => e,
        other => panic!("refused as v2 would: {other}"),
    };
    assert_eq!(
        refused(upgrade("rolling:1")),
        PublishError::NoNodes {
            service: "Kv".into(),
            known: vec![]
        }
    );
    f.register("n1", "g");
    let skip = Upgrade {
        to: 3,
        ..upgrade("rolling:1")
    };
    assert_eq!(
        refused(skip).to_string(),
        "an upgrade moves one version at a time: v1 -> v3 skips a version; publish v1 -> v2 first"
    );
    // The largest version has no next one; nothing overflows.
    let last = Upgrade {
        from: u32::MAX,
        to: 0,
        ..upgrade("rolling:1")
    };
    assert!(matches!(refused(last), PublishError::SkipsVersion { .. }));
    let unknown = Upgrade {
        schedule: ScheduleSpec::Custom("nope".into()),
        ..upgrade("rolling:1")
    };
    assert!(matches!(refused(unknown), PublishError::Schedule(m) if m.contains("nope")));
    let up = f.publish("rolling:1");
    assert!(matches!(
        refused(upgrade("rolling:1")),
        PublishError::StillOpen { open, state: RolloutState::Active, .. } if open == up
    ));
}

/// Regression: the UDB refused a write, the coordinator took the change back
/// in memory but still answered `Granted`, so a second node got past
/// `rolling:1` while the first upgraded on a slot nobody recorded.
#[test]
fn a_write_the_udb_refuses_is_never_answered_as_done() {
    let f = fixture();
    f.register("n1", "g");
    f.register("n2", "g");
    let up = f.publish("rolling:1");
    let events = f.status().events;

    f.udb.refuse_writes(true);
    let refused = run(f.coordinator.request_slot("n1".into(), up));
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("could not record")),
        "{refused:?}"
    );
    assert!(matches!(
        run(f.coordinator.publish(Upgrade {
            service: "Other".into(),
            ..upgrade("rolling:1")
        })),
        Err(PublishError3::V2(PublishError::NoNodes { .. }))
    ));
    assert!(matches!(
        run(f.coordinator.control(up, Control::Pause)),
        Err(ControlError::Unrecorded(_))
    ));
    assert!(run(f.coordinator.register(info("n3", "g", 1))).is_err());
    // Memory shows nothing of what was refused.
    let status = f.status();
    assert_eq!(status.nodes["n1"].state, NodeState::Running);
    assert!(!status.nodes.contains_key("n3"));
    assert_eq!(status.rollouts[&up].state, RolloutState::Active);
    assert_eq!(status.events, events, "no event for a refused change");
    assert_eq!(f.udb.content().nodes.len(), 2);

    // Once the UDB writes again, exactly one node holds the slot.
    f.udb.refuse_writes(false);
    assert_eq!(f.slot("n2", up), Slot::Granted);
    assert!(matches!(f.slot("n1", up), Slot::Wait(_)));
    let stored = f.udb.content();
    let holders = stored
        .nodes
        .values()
        .filter(|n| n.state == NodeState::Upgrading { to: 2 })
        .count();
    assert_eq!(holders, 1);
}

#[test]
fn status_carries_recent_events_and_history_is_paged() {
    let f = fixture();
    for i in 0..25 {
        f.register(&format!("n{i:02}"), "g");
    }
    let status = f.status();
    assert_eq!(status.events, 25);
    assert_eq!(status.recent.len(), crate::upgrade::api::RECENT_EVENTS);
    assert_eq!(status.recent.first().map(|e| e.seq), Some(6));
    assert_eq!(status.recent.last().map(|e| e.seq), Some(25));
    let page = run(f.coordinator.history(0, 10));
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    let rest = run(f.coordinator.history(20, 10));
    assert_eq!(
        rest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (21..=25).collect::<Vec<_>>()
    );
    assert!(run(f.coordinator.history(25, 10)).is_empty());
    // A huge limit is capped, not trusted.
    assert_eq!(run(f.coordinator.history(0, u32::MAX)).len(), 25);
}

/// The largest schedule publish accepts, stored in a real UDB file: the
/// coordinator restarts on it and decides with it (a schedule nested a
/// thousand deep once crashed every start).
#[test]
fn the_worst_legal_schedule_survives_a_restart_and_decides() {
    use crate::udb::RedbUdb;
    use crate::upgrade::schedule_spec::{MAX_DEPTH, MAX_TERMS};

    let dir = std::env::temp_dir().join(format!("upshift-worst-schedule-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut worst = ScheduleSpec::Rolling { max_parallel: 1 };
    for _ in 0..MAX_DEPTH {
        worst = ScheduleSpec::All(vec![worst]);
    }
    // The chain holds MAX_DEPTH `All`s and one `Rolling`; the outermost
    // `All` takes group orders with the longest names up to MAX_TERMS.
    let ScheduleSpec::All(top) = &mut worst else {
        unreachable!("built as All")
    };
    top.extend(std::iter::repeat_n(
        ScheduleSpec::GroupOrder {
            groups: vec!["g".repeat(255)],
        },
        MAX_TERMS - (MAX_DEPTH + 1),
    ));
    assert_eq!(worst.check_size(), Ok(()));
    let id = {
        let udb = RedbUdb::open(dir.join("udb.redb")).expect("open");
        let c = Coordinator::open(udb, Registry::default()).expect("opens");
        run(c.register(info("n1", "g", 1))).expect("recorded");
        run(c.publish(Upgrade {
            schedule: worst.clone(),
            ..upgrade("rolling:1")
        }))
        .expect("the largest legal schedule is published")
    };
    let udb = RedbUdb::open(dir.join("udb.redb")).expect("reopen");
    let c = Coordinator::open(udb, Registry::default()).expect("restarts");
    assert_eq!(
        run(c.request_slot("n1".into(), id)).expect("recorded"),
        Slot::Granted
    );
    let deeper = ScheduleSpec::All(vec![worst]);
    assert!(matches!(
        run(c.publish(Upgrade {
            schedule: deeper,
            ..upgrade("rolling:1")
        })),
        Err(PublishError3::V2(PublishError::Schedule(m))) if m.contains("levels deep")
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn oversized_fields_and_bad_artifacts_are_refused_before_anything_is_stored() {
    use crate::upgrade::api::{MAX_NAME, MAX_TEXT};
    let f = fixture();
    let huge = info("n1", &"g".repeat(256 * 1024), 1);
    assert_eq!(
        run(f.coordinator.register(huge)),
        Err(RequestError3::TooLong {
            field: "group".into(),
            max: MAX_NAME as u32,
            len: 256 * 1024
        })
    );
    assert!(f.status().nodes.is_empty());
    assert!(f.udb.content().events.is_empty(), "nothing stored");
    f.register("n1", "g");
    let refused = run(f.coordinator.report(
        "n1".into(),
        1,
        Outcome::Failed {
            reason: "r".repeat(MAX_TEXT + 1),
        },
    ));
    assert!(
        matches!(refused, Err(RequestError3::TooLong { .. })),
        "{refused:?}"
    );
    let bad_artifact = Upgrade {
        artifact: "ftp://somewhere".into(),
        ..upgrade("rolling:1")
    };
    assert!(matches!(
        run(f.coordinator.publish(bad_artifact)),
        Err(PublishError3::V2(PublishError::Artifact(m))) if m.contains("neither `in-process`")
    ));
    let long_notes = Upgrade {
        notes: "n".repeat(MAX_TEXT + 1),
        ..upgrade("rolling:1")
    };
    assert!(matches!(
        run(f.coordinator.publish(long_notes)),
        Err(PublishError3::V2(PublishError::TooLong { field, .. })) if field == "notes"
    ));
    assert!(f.status().rollouts.is_empty());
}

#[test]
fn under_release_keys_only_signed_current_releases_are_published() {
    use crate::upgrade::release::{Release, ReleaseKeys, SigningKey};
    let keys: Vec<SigningKey> = (0..2).map(|_| SigningKey::generate()).collect();
    let publics: Vec<[u8; 32]> = keys.iter().map(SigningKey::public).collect();
    let mut f = fixture();
    f.coordinator = f
        .coordinator
        .with_release_keys(ReleaseKeys::new(2, &publics).expect("keys"));
    f.register("n1", "g");
    let release = |version: u32, sequence: u64, expires_ms: u64, signers: &[&SigningKey]| {
        let artifact = Release {
            service: "Kv".into(),
            version,
            sha256: "ab".repeat(32),
            length: 10,
            sequence,
            expires_ms,
            lock: None,
        }
        .sign(signers)
        .expect("sign");
        Upgrade {
            artifact,
            ..upgrade("rolling:1")
        }
    };
    let both = [&keys[0], &keys[1]];
    let refused = |u: Upgrade, why: &str| {
        let result = run(f.coordinator.publish(u));
        assert!(
            matches!(&result, Err(PublishError3::V2(PublishError::Artifact(m))) if m.contains(why)),
            "expected {why:?}: {result:?}"
        );
    };
    refused(
        Upgrade {
            artifact: "file:/bin/true?sha256=".to_string() + &"0".repeat(64),
            ..upgrade("rolling:1")
        },
        "only signed releases",
    );
    refused(release(2, 3, T0 + 1, &[&keys[0]]), "signed by 1 of");
    refused(release(2, 3, T0, &both), "expired");
    refused(release(3, 3, T0 + 1, &both), "is for Kv v3");
    assert!(f.status().rollouts.is_empty(), "nothing published");
    // The first refused release is in the history (then at most one a minute).
    let refusals: Vec<_> = f
        .status()
        .recent
        .into_iter()
        .filter(|e| {
            e.what
                .starts_with("refused a call: publishing file:/bin/true")
        })
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(
        refusals[0].what.contains("only signed releases"),
        "{refusals:?}"
    );
    let id = run(f.coordinator.publish(release(2, 3, T0 + 1, &both))).expect("published");
    run(f.coordinator.control(id, Control::Abort)).expect("aborted");
    refused(release(2, 2, T0 + 1, &both), "below 3");
    // In-process upgrades run code the nodes already hold.
    run(f.coordinator.publish(upgrade("rolling:1"))).expect("in-process");
}

/// A node that upgrades and then falls silent may have died: its last
/// "healthy" no longer counts. The gate holds the next node, and the
/// rollout is not declared final, until it is heard from again.
#[test]
fn a_health_gate_needs_upgraded_nodes_to_be_heard_from() {
    let f = fixture();
    f.register("n1", "g");
    f.register("n2", "g");
    let up = f.publish("rolling:1,health:5");
    let beat = |id: &str, version: u32| {
        run(f.coordinator.heartbeat(beat(id, "", version))).expect("recorded");
    };
    // Seconds of heartbeats from `ids`, one a second.
    let beating = |ids: &[&str], secs: u32| {
        for _ in 0..secs {
            f.clock.advance(1_000);
            for id in ids {
                beat(id, 2);
            }
        }
    };
    assert_eq!(f.slot("n1", up), Slot::Granted);
    f.report("n1", up, Outcome::Upgraded { version: 2 });
    beat("n1", 2);
    // n1 dies: 6 s of silence, longer than the gate's 5 s of health.
    f.clock.advance(6_000);
    assert_eq!(
        f.slot("n2", up),
        Slot::Wait("node n1 has not been heard from for 6 s; its health is not known".into())
    );
    // It comes back and keeps reporting: healthy all along, n2 may go.
    beating(&["n1"], 1);
    assert_eq!(f.slot("n2", up), Slot::Granted);
    f.report("n2", up, Outcome::Upgraded { version: 2 });
    // Every node runs v2, but n2 falls silent before its 5 s of health:
    // n1's heartbeats do not make the rollout final.
    beating(&["n1"], 8);
    assert_eq!(f.rollout(up), RolloutState::Active, "n2 is silent");
    beating(&["n1", "n2"], 5);
    assert_eq!(f.rollout(up), RolloutState::Final);
}

fn beat(id: &str, address: &str, version: u32) -> Heartbeat6 {
    Heartbeat6 {
        id: id.into(),
        address: address.into(),
        version,
        healthy: true,
        problem: None,
        calls: vec![],
        traffic: vec![],
    }
}

fn at(id: &str, address: &str, version: u32) -> NodeInfo {
    NodeInfo {
        address: address.into(),
        ..info(id, "g", version)
    }
}

/// Regression: two processes started with one id shared one record, so
/// under `rolling:1` both upgraded at once and the rollout went final while
/// one still ran v1. Now the second is refused while the first is heard
/// from, and takes the id only once the first has been silent.
#[test]
fn a_node_id_is_held_by_one_live_node() {
    let f = fixture();
    run(f.coordinator.register(at("n1", "10.0.0.1:7000", 1))).expect("first");
    let second = run(f.coordinator.register(at("n1", "10.0.0.2:7000", 1))).expect_err("second");
    assert_eq!(
        second,
        RequestError3::DuplicateNode {
            id: "n1".into(),
            address: "10.0.0.1:7000".into(),
            heard_ms_ago: 0,
            within_ms: 3000,
        }
    );
    assert!(
        second.to_string().contains("give this node another id"),
        "{second}"
    );
    // Its heartbeats are refused too (it must register, which is refused).
    assert!(matches!(
        run(f.coordinator.heartbeat(beat("n1", "10.0.0.2:7000", 1))),
        Err(RequestError3::DuplicateNode { .. })
    ));
    // The same process registering again (a restart at its address) is fine.
    run(f.coordinator.register(at("n1", "10.0.0.1:7000", 1))).expect("again");
    // The first goes silent for longer than the liveness window: the id is free.
    f.clock.advance(3001);
    run(f.coordinator.register(at("n1", "10.0.0.2:7000", 1))).expect("taken over");
    assert_eq!(f.status().nodes["n1"].info.address, "10.0.0.2:7000");
    // The first comes back: refused, it no longer holds the id.
    assert!(matches!(
        run(f.coordinator.heartbeat(beat("n1", "10.0.0.1:7000", 1))),
        Err(RequestError3::DuplicateNode { address, .. }) if address == "10.0.0.2:7000"
    ));
}

#[test]
fn a_node_gone_for_good_is_forgotten_and_stops_holding_the_rollout() {
    let f = fixture();
    run(f.coordinator.register(at("n1", "a1", 1))).expect("n1");
    run(f.coordinator.register(at("n2", "a2", 1))).expect("n2");
    let up = f.publish("rolling:1");
    assert_eq!(f.slot("n2", up), Slot::Granted);
    f.report("n2", up, Outcome::Upgraded { version: 2 });
    assert_eq!(f.rollout(up), RolloutState::Active, "n1 still runs v1");
    // n1 is still heard from: refused, it would come back.
    let refused = run(f.coordinator.forget("n1".into())).expect_err("alive");
    assert!(refused.to_string().contains("stop it first"), "{refused}");
    assert_eq!(
        run(f.coordinator.forget("n9".into())),
        Err(crate::upgrade::api::ForgetError::NoSuchNode("n9".into()))
    );
    // n1 dies; n2 keeps beating.
    for _ in 0..4 {
        f.clock.advance(1000);
        run(f.coordinator.heartbeat(beat("n2", "a2", 2))).expect("n2 beats");
    }
    run(f.coordinator.forget("n1".into())).expect("forgotten");
    let status = f.status();
    assert!(!status.nodes.contains_key("n1"));
    assert_eq!(status.rollouts[&up].state, RolloutState::Final);
    assert!(
        status.recent.iter().any(|e| e.node.as_deref() == Some("n1")
            && e.what
                .starts_with("forgotten: it ran Kv v1, last heard 4 s ago")),
        "{:?}",
        status.recent
    );
    assert!(
        !f.udb.content().nodes.contains_key("n1"),
        "gone from the UDB"
    );
    // If it comes back after all, it is told to register.
    assert_eq!(
        run(f.coordinator.heartbeat(beat("n1", "a1", 1))),
        Err(RequestError3::NotRegistered("n1".into()))
    );
}

/// Regression: v2 -> v3 was accepted while every node ran v1, and then
/// blocked v1 -> v2 for good.
#[test]
fn an_upgrade_that_could_not_finish_is_refused_at_publish() {
    let f = fixture();
    run(f.coordinator.register(at("n1", "a1", 1))).expect("n1");
    let v2_to_v3 = Upgrade {
        from: 2,
        to: 3,
        ..upgrade("rolling:1")
    };
    let e = run(f.coordinator.publish(v2_to_v3.clone())).expect_err("no node runs v2");
    assert_eq!(
        e,
        PublishError3::Untakeable {
            service: "Kv".into(),
            from: 2,
            to: 3,
            running: vec![(1, 1)],
        }
    );
    assert_eq!(
        e.to_string(),
        "no rollout of Kv v2 -> v3 could finish: its nodes run v1 (1 node); every node must run \
         v2 (or v3 already): upgrade the older nodes first, or forget those that are gone \
         (`upshift forget NODE`)"
    );
    // A mix: one node at v2, two at v1: still refused (the v1 nodes could
    // take no upgrade while this one is open).
    run(f.coordinator.register(at("n2", "a2", 2))).expect("n2");
    run(f.coordinator.register(at("n3", "a3", 1))).expect("n3");
    assert!(matches!(
        run(f.coordinator.publish(v2_to_v3.clone())),
        Err(PublishError3::Untakeable { running, .. }) if running == vec![(1, 2), (2, 1)]
    ));
    // v1 -> v2 is what can run, and is accepted.
    f.publish("rolling:1");
}

#[test]
fn status_says_why_a_node_is_unhealthy() {
    let f = fixture();
    run(f.coordinator.register(at("n1", "a1", 1))).expect("n1");
    let sick = Heartbeat6 {
        healthy: false,
        problem: Some(
            "its state takes no writes: journal append failed: No space left on device".into(),
        ),
        ..beat("n1", "a1", 1)
    };
    run(f.coordinator.heartbeat(sick)).expect("recorded");
    let node = &f.status().nodes["n1"];
    assert!(!node.healthy);
    assert_eq!(
        node.problem.as_deref(),
        Some("its state takes no writes: journal append failed: No space left on device")
    );
    run(f.coordinator.heartbeat(beat("n1", "a1", 1))).expect("recorded");
    assert_eq!(f.status().nodes["n1"].problem, None, "healthy again");
}

/// Requests that arrive while the UDB writes are written together in the
/// next write, and each is answered only once it is durable: every node
/// answered as registered is in the file. When the UDB refuses a write,
/// every request of that group and of those queued behind it fails, and
/// none of their changes stays in memory.
#[test]
fn concurrent_requests_commit_in_groups_and_fail_together() {
    let dir = std::env::temp_dir().join(format!("upshift-group-commit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let path = dir.join("udb.redb");
    let coordinator = std::sync::Arc::new(
        Coordinator::open(
            crate::udb::RedbUdb::open(&path).expect("udb"),
            Registry::default(),
        )
        .expect("open"),
    );
    let answered = runtime.block_on(async {
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let c = coordinator.clone();
                tokio::spawn(async move { c.register(info(&format!("n{i:03}"), "g", 1)).await })
            })
            .collect();
        let mut answered = 0;
        for call in calls {
            call.await.expect("joined").expect("registered");
            answered += 1;
        }
        answered
    });
    assert_eq!(answered, 200);
    drop(coordinator);
    let stored = crate::udb::Udb::read_all(&crate::udb::RedbUdb::open(&path).expect("reopen"))
        .expect("read");
    assert_eq!(
        stored.nodes.len(),
        200,
        "every answered registration is durable"
    );
    assert_eq!(stored.events.len(), 200);

    let udb = MemoryUdb::new();
    let coordinator =
        std::sync::Arc::new(Coordinator::open(udb.clone(), Registry::default()).expect("open"));
    udb.refuse_writes(true);
    let failed = runtime.block_on(async {
        let calls: Vec<_> = (0..50)
            .map(|i| {
                let c = coordinator.clone();
                tokio::spawn(async move { c.register(info(&format!("m{i:02}"), "g", 1)).await })
            })
            .collect();
        let mut failed = 0;
        for call in calls {
            if matches!(
                call.await.expect("joined"),
                Err(RequestError3::Unrecorded(_))
            ) {
                failed += 1;
            }
        }
        failed
    });
    assert_eq!(failed, 50, "no refused registration is answered as done");
    let status = runtime.block_on(coordinator.status());
    assert!(status.nodes.is_empty(), "{:?}", status.nodes.keys());
    assert_eq!(status.events, 0);
    assert!(status.udb_failing.is_some());
    udb.refuse_writes(false);
    runtime
        .block_on(coordinator.register(info("after", "g", 1)))
        .expect("recorded once the UDB writes again");
    assert_eq!(udb.content().nodes.len(), 1);
    assert!(runtime.block_on(coordinator.status()).udb_failing.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

impl Fixture {
    fn publish_gated(&self, schedule: &str, gates: &str) -> Result<u64, PublishError3> {
        let (_, gates) = crate::upgrade::schedule_and_gates(gates).expect("gates");
        run(self.coordinator.publish_gated(upgrade(schedule), gates))
    }

    fn register_service(&self, id: &str, service: &str, version: u32) {
        let node = NodeInfo {
            service: service.into(),
            ..info(id, "g", version)
        };
        run(self.coordinator.register(node)).expect("recorded");
    }
}

#[test]
fn an_approval_gate_holds_the_rest_until_an_operator_approves() {
    let f = fixture();
    for id in ["n1", "n2", "n3"] {
        f.register(id, "g");
    }
    let up = f
        .publish_gated("rolling:1", "approval:1")
        .expect("published");
    assert_eq!(
        f.slot("n1", up),
        Slot::Granted,
        "one node before the approval"
    );
    f.report("n1", up, Outcome::Upgraded { version: 2 });
    let waiting =
        format!("waiting for an operator's approval after 1 node(s): upshift approve {up}");
    assert_eq!(f.slot("n2", up), Slot::Wait(waiting.clone()));
    let gates = run(gates(&f));
    assert_eq!(gates[&up].waiting.as_deref(), Some(waiting.as_str()));
    run(f.coordinator.approve(up)).expect("approved");
    assert_eq!(f.slot("n2", up), Slot::Granted, "approved: the others go");
    assert!(matches!(
        run(f.coordinator.approve(up)),
        Err(ApproveError::AlreadyApproved { .. })
    ));
    assert!(
        f.status().recent.iter().any(|e| e.what == "approved"),
        "the approval is in the history"
    );
    let other = fixture();
    other.register("n1", "g");
    let plain = other.publish("rolling:1");
    assert_eq!(
        run(other.coordinator.approve(plain)),
        Err(ApproveError::NoApprovalGate(plain))
    );
    assert_eq!(
        run(f.coordinator.approve(99)),
        Err(ApproveError::NoSuchUpgrade(99))
    );
}

fn gates(
    f: &Fixture,
) -> impl Future<Output = std::collections::BTreeMap<u64, crate::upgrade::api::GateView6>> + '_ {
    f.coordinator.gates()
}

#[test]
fn a_service_waits_for_the_one_it_comes_after() {
    let f = fixture();
    f.register_service("s1", "Server", 1);
    f.register_service("s2", "Server", 2);
    f.register("c1", "g");
    let up = f
        .publish_gated("immediately", "after:Server@2")
        .expect("published");
    assert_eq!(
        f.slot("c1", up),
        Slot::Wait("waiting for every node of Server to run v2 (1 of 2 do not)".into())
    );
    run(f.coordinator.register(NodeInfo {
        service: "Server".into(),
        ..info("s1", "g", 2)
    }))
    .expect("s1 at v2");
    assert_eq!(f.slot("c1", up), Slot::Granted, "every server runs v2");
}

#[test]
fn gates_that_could_never_open_are_refused_at_publish() {
    let f = fixture();
    f.register("n1", "g");
    for (gates, says) in [
        ("after:Kv@2", "cannot wait for its own service"),
        ("after:Nowhere@2", "no node of Nowhere is registered"),
        ("approval,approval:2", "more than one approval gate"),
    ] {
        match f.publish_gated("rolling:1", gates) {
            Err(PublishError3::V2(PublishError::Schedule(why))) => {
                assert!(why.contains(says), "{gates}: {why}")
            }
            other => panic!("{gates}: {other:?}"),
        }
    }
    assert!(f.status().rollouts.is_empty(), "nothing was published");
}

#[test]
fn a_rollback_takes_the_upgraded_nodes_back_on_the_same_schedule() {
    let f = fixture();
    for id in ["n1", "n2", "n3"] {
        f.register(id, "g");
    }
    let up = f.publish("rolling:1");
    assert_eq!(f.slot("n1", up), Slot::Granted);
    f.report("n1", up, Outcome::Upgraded { version: 2 });
    assert_eq!(f.slot("n2", up), Slot::Granted);
    f.report(
        "n2",
        up,
        Outcome::Failed {
            reason: "disk full".into(),
        },
    );
    assert!(matches!(f.rollout(up), RolloutState::Halted { .. }));
    let back = run(f.coordinator.rollback(up)).expect("rolled back");
    assert_eq!(f.rollout(up), RolloutState::Aborted);
    let status = f.status();
    let def = &status.rollouts[&back].upgrade;
    assert_eq!(
        (def.from, def.to, def.schedule.to_string()),
        (2, 1, "rolling:1".into())
    );
    // Only a node at v2 takes part; the one whose upgrade failed is free.
    let pending = run(f.coordinator.heartbeat(beat("n1", "", 2))).expect("recorded");
    assert_eq!(pending.map(|p| (p.from, p.to)), Some((2, 1)));
    assert_eq!(
        run(f.coordinator.heartbeat(beat("n2", "", 1))).expect("recorded"),
        None
    );
    assert!(
        matches!(f.slot("n3", back), Slot::Gone(_)),
        "n3 runs v1 already"
    );
    assert_eq!(f.slot("n1", back), Slot::Granted);
    // Still rolling back while the node has not reported.
    run(f.coordinator.heartbeat(beat("n1", "", 2))).expect("recorded");
    assert_eq!(f.rollout(back), RolloutState::Active);
    f.report("n1", back, Outcome::Upgraded { version: 1 });
    assert_eq!(f.rollout(back), RolloutState::Final);
    let events: Vec<String> = f.status().recent.iter().map(|e| e.what.clone()).collect();
    assert!(
        events.iter().any(|e| e == "rolled back to v1"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e == &format!("rolled back by upgrade #{back}")),
        "{events:?}"
    );
    // Refusals, each typed.
    assert!(matches!(
        run(f.coordinator.rollback(up)),
        Err(RollbackError::NotNow { .. })
    ));
    assert_eq!(
        run(f.coordinator.rollback(back)),
        Err(RollbackError::IsRollback(back))
    );
    assert_eq!(
        run(f.coordinator.rollback(99)),
        Err(RollbackError::NoSuchUpgrade(99))
    );
    let again = f.publish("immediately");
    for id in ["n1", "n2", "n3"] {
        assert_eq!(f.slot(id, again), Slot::Granted);
        f.report(id, again, Outcome::Upgraded { version: 2 });
    }
    assert_eq!(f.rollout(again), RolloutState::Final);
    assert_eq!(
        run(f.coordinator.rollback(again)),
        Err(RollbackError::Final {
            upgrade: again,
            to: 2
        })
    );
}

#[test]
fn an_approval_gate_over_every_node_holds_the_rollout_open_until_approved() {
    let f = fixture();
    for id in ["n1", "n2"] {
        f.register(id, "g");
    }
    let up = f
        .publish_gated("immediately", "approval:2")
        .expect("published");
    for id in ["n1", "n2"] {
        assert_eq!(f.slot(id, up), Slot::Granted);
        f.report(id, up, Outcome::Upgraded { version: 2 });
    }
    assert_eq!(f.rollout(up), RolloutState::Active, "held for the approval");
    run(f.coordinator.approve(up)).expect("approved");
    assert_eq!(f.rollout(up), RolloutState::Final);
}

/// A heartbeat from `id` at `version` whose calls at that version were
/// `calls`, `errors` of them failed, each taking about `ms`.
fn traffic_beat(id: &str, version: u32, calls: u64, errors: u64, ms: u64) -> Heartbeat6 {
    let took = Duration::from_millis(ms);
    Heartbeat6 {
        traffic: vec![super::analysis::traffic(version, calls, errors, took)],
        ..beat(id, "", version)
    }
}

#[test]
fn an_analysis_gate_holds_the_others_until_it_judges_and_halts_on_a_regression() {
    let f = fixture();
    for id in ["n1", "n2", "n3"] {
        f.register(id, "g");
    }
    let up = f
        .publish_gated("rolling:1", "errors:1%:50,p99:3x:50")
        .expect("published");
    let hb = |b: Heartbeat6| run(f.coordinator.heartbeat(b)).expect("recorded");
    for id in ["n2", "n3"] {
        hb(traffic_beat(id, 1, 1000, 1, 2));
    }
    // The first node goes; then the new version must serve 50 calls.
    assert_eq!(f.slot("n1", up), Slot::Granted);
    f.report("n1", up, Outcome::Upgraded { version: 2 });
    hb(traffic_beat("n1", 2, 10, 0, 2));
    let Slot::Wait(why) = f.slot("n2", up) else {
        panic!("n2 waits for the judgement");
    };
    assert!(why.contains("waiting for v2 to serve 50 calls"), "{why}");
    assert!(why.contains("(10 so far)"), "{why}");
    let views = run(f.coordinator.gates());
    assert_eq!(views[&up].cohorts[0].calls, 10);
    assert_eq!(views[&up].cohorts[1].calls, 2000);
    // Judged within both thresholds: the next node goes.
    hb(traffic_beat("n1", 2, 100, 1, 2));
    assert_eq!(f.slot("n2", up), Slot::Granted);
    f.report("n2", up, Outcome::Upgraded { version: 2 });
    // A regression: n2's calls fail, 30 of 200 at v2 in all against 0.1 %
    // (n2 reports only its calls at v2 now: as a restarted process would).
    hb(traffic_beat("n2", 2, 100, 29, 2));
    let RolloutState::Halted { reason } = f.rollout(up) else {
        panic!("halted: {:?}", f.rollout(up));
    };
    assert!(
        reason.contains(
            "v2 failed 30 of 200 calls (15.00%), v1 1 of 1000 (0.10%): \
             more than 1.00 percentage points above (gate errors:1%:50)"
        ),
        "{reason}"
    );
    assert!(matches!(f.slot("n3", up), Slot::Halted(_)));
    // A rollback takes both back.
    let back = run(f.coordinator.rollback(up)).expect("rolled back");
    assert_eq!(f.status().rollouts[&back].upgrade.to, 1);
}

#[test]
fn an_analysis_gate_keeps_the_rollout_open_until_the_new_version_is_judged() {
    let f = fixture();
    f.register("n1", "g");
    let up = f
        .publish_gated("immediately", "p99:2x:20")
        .expect("published");
    let hb = |b: Heartbeat6| run(f.coordinator.heartbeat(b)).expect("recorded");
    assert_eq!(f.slot("n1", up), Slot::Granted);
    f.report("n1", up, Outcome::Upgraded { version: 2 });
    // Every node runs v2, but it served no call yet.
    hb(traffic_beat("n1", 2, 5, 0, 1));
    assert_eq!(f.rollout(up), RolloutState::Active);
    // Judged: with no calls at v1 left to compare, p99 passes.
    hb(traffic_beat("n1", 2, 20, 0, 1));
    assert_eq!(f.rollout(up), RolloutState::Final);
}

#[test]
fn analysis_terms_out_of_range_are_refused_at_publish() {
    let f = fixture();
    f.register("n1", "g");
    let gates = vec![crate::upgrade::Gate6::Latency {
        percent: 50,
        min_calls: 10,
    }];
    let refused = run(f.coordinator.publish_gated(upgrade("rolling:1"), gates))
        .expect_err("a factor under 1x");
    assert!(refused.to_string().contains("at least 1x"), "{refused}");
}

#[test]
fn a_node_waiting_for_a_slot_is_answered_when_one_frees_or_the_rollout_ends() {
    let f = fixture();
    for id in ["n1", "n2", "n3"] {
        f.register(id, "g");
    }
    let up = f.publish("rolling:1");
    assert_eq!(f.slot("n1", up), Slot::Granted);
    // Without a freed slot the wait runs out, and says why.
    let Slot::Wait(why) = run(f.coordinator.wait_slot("n2".into(), up, 20)).expect("answered")
    else {
        panic!("n2 waits");
    };
    assert!(why.contains("1 of 1"), "{why}");
    // n1's report frees its slot: n2, waiting, gets it then (a wait of a
    // minute that ended with a wait answer would have failed the test).
    let (slot, ()) = run(async {
        tokio::join!(f.coordinator.wait_slot("n2".into(), up, 60_000), async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            f.coordinator
                .report("n1".into(), up, Outcome::Upgraded { version: 2 })
                .await
                .expect("recorded");
        })
    });
    assert_eq!(slot, Ok(Slot::Granted));
    // An abort answers a waiting node at once.
    let (slot, ()) = run(async {
        tokio::join!(f.coordinator.wait_slot("n3".into(), up, 60_000), async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            f.coordinator
                .control(up, Control::Abort)
                .await
                .expect("aborted");
        })
    });
    assert!(matches!(slot, Ok(Slot::Gone(_))), "{slot:?}");
}
