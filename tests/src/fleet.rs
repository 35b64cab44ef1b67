//! Simulated node agents for scale tests and benches: each speaks the
//! coordinator's interface (v6) on its own TCP connection as a node's agent
//! does — register, heartbeat, ask for a slot when an upgrade is pending
//! (held by the coordinator for up to a heartbeat's time until one frees),
//! "upgrade" (a sleep, no state), report — without a node behind it, so
//! that what is measured and checked is the coordinator.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use upshift::coordinator::api::{Heartbeat6, Outcome, Slot, v6};
use upshift::schedule::ScheduleSpec;
use upshift::upgrade::{NodeInfo, Upgrade};
use upshift::{ClientConfig, Connection};

/// How the simulated agents behave.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Between heartbeats.
    pub heartbeat: Duration,
    /// How long an upgrade takes once a slot is granted.
    pub upgrade: Duration,
    /// How many agents there are (their heartbeats are spread over the interval).
    pub nodes: u32,
}

/// What the agents saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Heartbeats answered.
    pub heartbeats: AtomicU64,
    /// Request latencies in microseconds, per phase.
    latencies: Mutex<Vec<u32>>,
    /// Agents upgrading now.
    pub upgrading: AtomicU32,
    /// The most agents ever upgrading at once.
    pub most_upgrading: AtomicU32,
    /// Agents that upgraded and reported it.
    pub upgraded: AtomicU32,
    /// Requests that failed or were refused.
    pub failed: AtomicU64,
}

impl Seen {
    fn took(&self, since: Instant) {
        let us = since.elapsed().as_micros().min(u32::MAX as u128) as u32;
        self.latencies.lock().expect("lock").push(us);
    }

    /// p50, p99 and max of the latencies since the last call, in ms, and
    /// how many there were.
    pub fn percentiles(&self) -> (f64, f64, f64, usize) {
        let mut all = std::mem::take(&mut *self.latencies.lock().expect("lock"));
        all.sort_unstable();
        let at = |q: f64| {
            all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
                .map_or(0.0, |us| f64::from(*us) / 1000.0)
        };
        (at(0.5), at(0.99), at(1.0), all.len())
    }
}

/// A client of the coordinator at `addr` from loopback address
/// 127.0.0.(1 + i % 4), as nodes connect from their own hosts.
pub async fn connect(addr: std::net::SocketAddr, i: u32) -> v6::Client {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    let from = std::net::Ipv4Addr::new(127, 0, 0, 1 + (i % 4) as u8);
    socket.bind((from, 0).into()).expect("bind");
    let stream = socket.connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    v6::Client::new(Connection::from_io(stream, ClientConfig::default()))
        .with_deadline(Duration::from_secs(10))
}

/// One node's agent, without the node.
/// Agent `i` (node id `n0000i`, registered at v1 of service `Kv` in group
/// `g`): beats until `stop`, taking each upgrade the coordinator offers.
pub async fn agent(
    addr: std::net::SocketAddr,
    i: u32,
    pace: Pace,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
) {
    let client = connect(addr, i).await;
    let id = format!("n{i:05}");
    let address = format!("10.{}.{}.{}:7000", i / 65536, (i / 256) % 256, i % 256);
    let mut version = 1;
    client
        .register(NodeInfo {
            id: id.clone(),
            address: address.clone(),
            group: "g".into(),
            service: "Kv".into(),
            version,
        })
        .await
        .expect("rpc")
        .expect("registered");
    // Heartbeats spread over the interval, as nodes started at different times.
    tokio::time::sleep(pace.heartbeat * i / pace.nodes).await;
    let mut tick = tokio::time::interval(pace.heartbeat);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let beat = Heartbeat6 {
            id: id.clone(),
            address: address.clone(),
            version,
            healthy: true,
            problem: None,
            calls: vec![(version, 0)],
            traffic: Vec::new(),
        };
        let since = Instant::now();
        let pending = match client.heartbeat(beat).await {
            Ok(Ok(pending)) => pending,
            _ => {
                seen.failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        seen.took(since);
        seen.heartbeats.fetch_add(1, Ordering::Relaxed);
        let Some(pending) = pending.filter(|p| p.from == version) else {
            continue;
        };
        // Held up to a heartbeat's time; a wait answered, the next
        // heartbeat follows at once, as the node's agent does.
        let wait_ms = pace.heartbeat.as_millis() as u32;
        let slot = client.wait_slot(id.clone(), pending.upgrade, wait_ms).await;
        if !matches!(slot, Ok(Ok(Slot::Granted))) {
            if matches!(slot, Ok(Ok(Slot::Wait(_)))) {
                tick.reset_immediately();
            }
            continue;
        }
        let now = seen.upgrading.fetch_add(1, Ordering::SeqCst) + 1;
        seen.most_upgrading.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(pace.upgrade).await;
        version = pending.to;
        seen.upgrading.fetch_sub(1, Ordering::SeqCst);
        let since = Instant::now();
        let outcome = Outcome::Upgraded { version };
        if !matches!(
            client.report(id.clone(), pending.upgrade, outcome).await,
            Ok(Ok(()))
        ) {
            seen.failed.fetch_add(1, Ordering::Relaxed);
        }
        seen.took(since);
        seen.upgraded.fetch_add(1, Ordering::Relaxed);
    }
}

/// Stops the agents and waits for each to finish what it was doing, so
/// that what they saw is complete: a report the coordinator has recorded
/// may not yet be counted by its agent when the rollout reads as final.
/// Each agent stops within one heartbeat.
pub async fn stop_all(stop: &AtomicBool, agents: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for a in agents {
        a.await.expect("an agent panicked");
    }
}

/// The agents' service from v1 to v2, `parallel` nodes at a time.
pub fn rolling(parallel: u32) -> Upgrade {
    Upgrade {
        service: "Kv".into(),
        from: 1,
        to: 2,
        schedule: ScheduleSpec::Rolling {
            max_parallel: parallel,
        },
        artifact: "in-process".into(),
        notes: String::new(),
    }
}
