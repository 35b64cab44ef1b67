//! The node's agent: registers with the coordinator, reports heartbeats,
//! and upgrades when a published upgrade applies and a slot is granted.
//! It talks to the coordinator only through `crate::upgrade::api`.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::Instrument;

use super::Node;
use crate::error::CallError;
use crate::rpc::ClientConfig;
use crate::rpc::stats::CallCounts;
use crate::sync::lock;
use crate::upgrade::api::{self, Heartbeat6, Outcome, RequestError3, Slot, Traffic};
use crate::upgrade::{Artifact, Coordinators, NodeInfo};

impl Node {
    /// Runs the node's agent: registers with the coordinator at
    /// `coordinator` (an address, or [`Coordinators`]: several over one
    /// etcd UDB, of which the one that leads accepts), reports every
    /// heartbeat, and upgrades when a published upgrade applies and its
    /// schedule grants a slot. The agent reconnects whenever the
    /// coordinator is unreachable, trying each address in turn, so it
    /// follows a new leader; abort the handle to stop it.
    pub fn run_agent(
        &self,
        coordinator: impl Into<Coordinators>,
        address: String,
    ) -> JoinHandle<()> {
        let node = self.clone();
        let coordinators = coordinator.into();
        tokio::spawn(async move {
            let mut client: Option<Link> = None;
            loop {
                if client.is_none() {
                    client = node.register(&coordinators, &address).await;
                }
                if let Some(c) = &mut client {
                    match node.agent_step(c, &address).await {
                        Ok(Step::Done) => {}
                        Ok(Step::Again) => continue,
                        Ok(Step::Register) => client = None,
                        Err(e) => {
                            tracing::debug!(node = %node.id(), error = %e, "coordinator unreachable; reconnecting");
                            // It accepted but did not answer: stalled, or no
                            // longer leading. Try the next one first.
                            if let Some(c) = client.take() {
                                coordinators.passed_over(c.v3.connection());
                            }
                        }
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(node.inner.config.heartbeat) => {}
                    () = node.inner.nudge.notified() => {}
                }
            }
        })
    }

    /// Saves the state every `every`. For a journaled state
    /// ([`durable_stage`](super::durable_stage)) this bounds the journal and
    /// so the replay at start; nothing acknowledged depends on it. For a
    /// plain [`stage`](super::stage) a node killed in steady state loses the
    /// writes since the last checkpoint. Abort the handle to stop.
    pub fn checkpoint_every(&self, every: Duration) -> JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = node.checkpoint().await {
                    tracing::error!(node = %node.id(), error = %e, "checkpoint failed; the node takes no more writes");
                }
            }
        })
    }

    /// Tells the node that a peer answered with `version` (every reply
    /// carries the peer's version, see [`Connection::node_version`](crate::Connection::node_version)). A newer
    /// version means an upgrade is under way, so the agent asks the
    /// coordinator now instead of at its next heartbeat.
    pub fn saw_version(&self, version: u32) {
        if version > self.version() {
            self.inner.nudge.notify_one();
        }
    }

    async fn register(&self, coordinators: &Coordinators, address: &str) -> Option<Link> {
        let config = ClientConfig {
            tls: self.inner.config.coordinator_tls.clone(),
            ..ClientConfig::default()
        };
        let conn = match coordinators.connect(&config).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(node = %self.id(), error = %e, "no coordinator reached; trying again");
                return None;
            }
        };
        let client = api::v3::Client::new(conn).with_deadline(Duration::from_secs(5));
        let info = NodeInfo {
            id: self.inner.config.id.clone(),
            address: address.to_string(),
            group: self.inner.config.group.clone(),
            service: self.inner.service.to_string(),
            version: self.version(),
        };
        match client.register(info).await {
            Ok(Ok(())) => Some(Link {
                v6: Some(
                    api::v6::Client::new(client.connection().clone())
                        .with_deadline(Duration::from_secs(5)),
                ),
                v3: client,
            }),
            Ok(Err(refused)) => {
                tracing::warn!(node = %self.id(), error = %refused, "registration not taken; trying again");
                None
            }
            Err(e) => {
                tracing::debug!(node = %self.id(), error = %e, "registration not answered; trying the next coordinator");
                coordinators.passed_over(client.connection());
                None
            }
        }
    }

    /// Why the node is unhealthy, if it is: its state takes no writes
    /// (whatever its own check says), or its health check fails.
    fn health(&self) -> Option<String> {
        match self.problem() {
            Some(problem) => Some(problem),
            None if !(self.inner.config.health)() => Some("its health check fails".into()),
            None => None,
        }
    }

    /// What the calls of each version did since the process started, per
    /// node version and call version.
    fn traffic(&self) -> Vec<Traffic> {
        let mut sums = BTreeMap::<(u32, u32), CallCounts>::new();
        for (node_version, call_version, stats) in lock(&self.inner.traffic).iter() {
            let counts = stats.read();
            sums.entry((*node_version, *call_version)).or_default().add(
                counts.calls,
                counts.errors,
                &counts.latency,
            );
        }
        sums.into_iter()
            .map(|((node_version, call_version), counts)| Traffic {
                node_version,
                call_version,
                calls: counts.calls,
                errors: counts.errors,
                latency: counts.latency,
            })
            .collect()
    }

    /// This heartbeat; with what the calls did for a coordinator that
    /// takes it (v6).
    fn beat(&self, address: &str, traffic: bool) -> Heartbeat6 {
        let service = self.service();
        let problem = self.health();
        Heartbeat6 {
            id: self.inner.config.id.clone(),
            address: address.to_string(),
            version: self.version(),
            healthy: problem.is_none(),
            problem,
            calls: service.versions().map(|v| (v, service.served(v))).collect(),
            traffic: if traffic { self.traffic() } else { Vec::new() },
        }
    }

    async fn agent_step(&self, link: &mut Link, address: &str) -> Result<Step, CallError> {
        // A request the coordinator could not record did nothing: this round
        // ends, and the next heartbeat asks again. One that says the node
        // must register (forgotten, or its id taken meanwhile) does that.
        let not_taken = |e: RequestError3| {
            tracing::warn!(node = %self.id(), error = %e, "the coordinator did not take a request; asking again at the next heartbeat");
            match e {
                RequestError3::NotRegistered(_) | RequestError3::DuplicateNode { .. } => {
                    Step::Register
                }
                _ => Step::Done,
            }
        };
        // A coordinator older than v6 takes v3's heartbeat, without traffic
        // (it has no analysis gates to judge by it).
        let answer = match &link.v6 {
            Some(v6) => match v6.heartbeat(self.beat(address, true)).await {
                Err(CallError::VersionUnsupported { .. }) => None,
                answer => Some(answer?),
            },
            None => None,
        };
        let answer = match answer {
            Some(answer) => answer,
            None => {
                link.v6 = None;
                let beat = self.beat(address, false);
                link.v3.heartbeat(beat.into()).await?
            }
        };
        let pending = match answer {
            Ok(Some(pending)) => pending,
            Ok(None) => return Ok(Step::Done),
            Err(e) => return Ok(not_taken(e)),
        };
        if pending.from != self.version() {
            return Ok(Step::Done);
        }
        {
            let mut timings = lock(&self.inner.timings);
            if timings.waiting.is_none_or(|(id, _)| id != pending.upgrade) {
                timings.waiting = Some((pending.upgrade, std::time::Instant::now()));
            }
        }
        // Everything the node logs about this upgrade carries its id, as the
        // coordinator's lines do: `upgrade=N` follows one rollout across both.
        let span = tracing::info_span!(
            "rollout",
            upgrade = pending.upgrade,
            node = %self.id(),
            from = pending.from,
            to = pending.to
        );
        self.take_part(link, pending, not_taken)
            .instrument(span)
            .await
    }

    /// Asks for a slot in `pending`, upgrades if granted, and reports.
    async fn take_part(
        &self,
        link: &Link,
        pending: api::Pending,
        not_taken: impl Fn(RequestError3) -> Step,
    ) -> Result<Step, CallError> {
        let client = &link.v3;
        let id = self.inner.config.id.clone();
        // A v6 coordinator holds the request until a slot frees (up to a
        // heartbeat's time, so the node is heard from as often), and the
        // next heartbeat follows at once.
        let (slot, waited) = match &link.v6 {
            Some(v6) => {
                let wait = self.inner.config.heartbeat.min(Duration::from_secs(2));
                let wait_ms = wait.as_millis() as u32;
                (
                    v6.wait_slot(id.clone(), pending.upgrade, wait_ms).await?,
                    true,
                )
            }
            None => (
                client.request_slot(id.clone(), pending.upgrade).await?,
                false,
            ),
        };
        match slot {
            Ok(Slot::Granted) => {
                let mut timings = lock(&self.inner.timings);
                let waited = timings.waiting.take().map(|(_, since)| since.elapsed());
                timings.slot_waits.push(waited.unwrap_or_default());
                drop(timings);
                tracing::info!(
                    waited_ms = waited.unwrap_or_default().as_millis() as u64,
                    "slot granted; upgrading"
                );
            }
            Ok(Slot::Wait(why)) => {
                tracing::debug!(%why, "no slot yet");
                return Ok(if waited { Step::Again } else { Step::Done });
            }
            Ok(other) => {
                tracing::info!(answer = ?other, "no slot");
                return Ok(Step::Done);
            }
            Err(e) => return Ok(not_taken(e)),
        }
        let started = std::time::Instant::now();
        let result = match Artifact::parse(&pending.artifact) {
            Ok(Artifact::InProcess) => self.upgrade_to(pending.to).await,
            Ok(file) => self.restart_into(file).await,
            Err(e) => Err(e.into()),
        };
        let took = started.elapsed();
        lock(&self.inner.timings)
            .upgrades
            .push((took, result.is_ok()));
        let ms = took.as_millis() as u64;
        let outcome = match result {
            Ok(()) => {
                tracing::info!(ms, "upgraded");
                Outcome::Upgraded {
                    version: pending.to,
                }
            }
            Err(e) => {
                tracing::warn!(ms, error = %e, "the upgrade failed; the node stays on its version");
                Outcome::Failed {
                    reason: e.to_string(),
                }
            }
        };
        // Unrecorded, the outcome still reaches the coordinator: the next
        // heartbeat carries the version the node runs.
        if let Err(e) = client.report(id, pending.upgrade, outcome).await? {
            return Ok(not_taken(e));
        }
        Ok(Step::Done)
    }
}

/// The agent's clients of one coordinator connection: v3 for what v3
/// says as well as any later version, v6 for heartbeats while the
/// coordinator speaks it.
struct Link {
    v3: api::v3::Client,
    v6: Option<api::v6::Client>,
}

/// What the agent does after a step.
enum Step {
    /// Wait for the next heartbeat.
    Done,
    /// Beat again now: the step already waited a heartbeat's time.
    Again,
    /// Register again before the next heartbeat.
    Register,
}
