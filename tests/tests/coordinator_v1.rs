//! A v1 caller (an agent or CLI built before coordinator v2) against today's
//! coordinator, over TCP: every v1 call is served through v1's past SO, with
//! v1's answers — and a write the UDB refuses reaches it as `Disallowed`,
//! never as success.

use std::time::Duration;

use upshift::coordinator::api::{self, UpgradeDef};
use upshift::coordinator::{Coordinator, api::Slot};
use upshift::schedule::{Registry, ScheduleSpec};
use upshift::udb::MemoryUdb;
use upshift::upgrade::{NodeInfo, NodeState, RolloutState};
use upshift::{CallError, Connection};

fn info(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        address: "127.0.0.1:1".into(),
        group: "g".into(),
        service: "Kv".into(),
        version: 1,
    }
}

fn def(from: u32, to: u32) -> UpgradeDef {
    UpgradeDef {
        service: "Kv".into(),
        from,
        to,
        schedule: ScheduleSpec::Rolling { max_parallel: 1 },
        artifact: "in-process".into(),
        notes: String::new(),
    }
}

#[tokio::test]
async fn a_v1_client_is_served_through_the_past_so() {
    let udb = MemoryUdb::new();
    let (_server, listener) = Coordinator::open(udb.clone(), Registry::default())
        .expect("opens")
        .serve("127.0.0.1:0")
        .await
        .expect("serves");
    let conn = Connection::connect(listener.local_addr())
        .await
        .expect("connect");
    let v1 = api::v1::Client::new(conn.clone()).with_deadline(Duration::from_secs(10));
    let v2 = api::v2::Client::new(conn).with_deadline(Duration::from_secs(10));

    // More events than one history page, so v1's status needs several.
    let nodes = api::MAX_HISTORY_PAGE as usize + 50;
    for i in 0..nodes {
        v1.register(info(&format!("n{i:04}")))
            .await
            .expect("registers");
    }
    assert_eq!(
        v1.publish(def(1, 3)).await.expect("rpc"),
        Err("an upgrade moves one version at a time: v1 -> v3 skips a version; publish v1 -> v2 first".into())
    );
    let id = v1
        .publish(def(1, 2))
        .await
        .expect("rpc")
        .expect("published");
    assert_eq!(
        v1.request_slot("n0000".into(), id).await.expect("rpc"),
        Slot::Granted
    );
    assert_eq!(
        v1.control(99, api::Control::Pause).await.expect("rpc"),
        Err("no upgrade #99".into())
    );

    // v1's status is v2's view plus the whole history, paged.
    let old = v1.status().await.expect("status");
    let new = v2.status().await.expect("status");
    assert_eq!(old.nodes, new.nodes);
    assert_eq!(old.events.len() as u64, new.events);
    assert_eq!(old.events.len(), nodes + 2, "registrations, publish, slot");
    assert!(old.events.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(old.events[nodes - 1..], new.recent[new.recent.len() - 3..]);
    assert_eq!(old.upgrades[&id].def, def(1, 2));
    assert_eq!(old.upgrades[&id].state, RolloutState::Active);
    assert_eq!(
        old.nodes["n0000"].state,
        NodeState::Upgrading { to: 2 },
        "the slot shows through v1 too"
    );

    // The UDB refuses writes: v1 has no error type for register, so the
    // refusal arrives as Disallowed with v2's message.
    udb.refuse_writes(true);
    match v1.register(info("late")).await {
        Err(CallError::Disallowed(d)) => {
            assert!(d.message().contains("could not record"), "{d}")
        }
        other => panic!("expected Disallowed, got {other:?}"),
    }
    let refused = v1.control(id, api::Control::Pause).await.expect("rpc");
    assert!(
        matches!(&refused, Err(m) if m.contains("could not record")),
        "{refused:?}"
    );
    udb.refuse_writes(false);
    let after = v1.status().await.expect("status");
    assert!(!after.nodes.contains_key("late"));
    assert_eq!(
        after.upgrades[&id].state,
        RolloutState::Active,
        "not paused"
    );
}
