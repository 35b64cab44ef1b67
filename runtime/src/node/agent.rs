//! The node's agent: registers with the coordinator, reports heartbeats,
//! and upgrades when a published upgrade applies and a slot is granted.
//! It talks to the coordinator only through `crate::upgrade::api`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Node;
use crate::error::CallError;
use crate::rpc::{ClientConfig, Connection};
use crate::upgrade::api::{self, Heartbeat, Outcome, Slot};
use crate::upgrade::{Artifact, NodeInfo};

impl Node {
    /// Runs the node's agent: registers with the coordinator at
    /// `coordinator`, reports every heartbeat, and upgrades when a published
    /// upgrade applies and its schedule grants a slot. The agent reconnects
    /// whenever the coordinator is unreachable; abort the handle to stop it.
    pub fn run_agent(&self, coordinator: SocketAddr, address: String) -> JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            let mut client: Option<api::v2::Client> = None;
            loop {
                if client.is_none() {
                    client = node.register(coordinator, &address).await;
                }
                if let Some(c) = &client
                    && let Err(e) = node.agent_step(c).await
                {
                    tracing::debug!(node = %node.id(), error = %e, "coordinator unreachable; reconnecting");
                    client = None;
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
    /// carries the peer's version, see [`Connection::node_version`]). A newer
    /// version means an upgrade is under way, so the agent asks the
    /// coordinator now instead of at its next heartbeat.
    pub fn saw_version(&self, version: u32) {
        if version > self.version() {
            self.inner.nudge.notify_one();
        }
    }

    async fn register(&self, coordinator: SocketAddr, address: &str) -> Option<api::v2::Client> {
        let config = ClientConfig {
            tls: self.inner.config.coordinator_tls.clone(),
            ..ClientConfig::default()
        };
        let conn = Connection::connect_with(coordinator, config).await.ok()?;
        let client = api::v2::Client::new(conn).with_deadline(Duration::from_secs(5));
        let info = NodeInfo {
            id: self.inner.config.id.clone(),
            address: address.to_string(),
            group: self.inner.config.group.clone(),
            service: self.inner.service.to_string(),
            version: self.version(),
        };
        match client.register(info).await {
            Ok(Ok(())) => Some(client),
            Ok(Err(refused)) => {
                tracing::warn!(node = %self.id(), error = %refused, "registration not taken; trying again");
                None
            }
            Err(_) => None,
        }
    }

    async fn agent_step(&self, client: &api::v2::Client) -> Result<(), CallError> {
        let service = self.service();
        let beat = Heartbeat {
            id: self.inner.config.id.clone(),
            version: self.version(),
            // A node whose state takes no writes is not healthy, whatever
            // its own check says.
            healthy: (self.inner.config.health)() && self.problem().is_none(),
            calls: service.versions().map(|v| (v, service.served(v))).collect(),
        };
        // A request the coordinator could not record did nothing: this round
        // ends, and the next heartbeat asks again.
        let not_taken = |e: api::RequestError| {
            tracing::warn!(node = %self.id(), error = %e, "the coordinator did not take a request; asking again at the next heartbeat");
        };
        let Some(pending) = client.heartbeat(beat).await?.unwrap_or_else(|e| {
            not_taken(e);
            None
        }) else {
            return Ok(());
        };
        if pending.from != self.version() {
            return Ok(());
        }
        let id = self.inner.config.id.clone();
        match client.request_slot(id.clone(), pending.upgrade).await? {
            Ok(Slot::Granted) => {}
            Ok(_) => return Ok(()),
            Err(e) => {
                not_taken(e);
                return Ok(());
            }
        }
        let result = match Artifact::parse(&pending.artifact) {
            Ok(Artifact::InProcess) => self.upgrade_to(pending.to).await,
            Ok(file) => self.restart_into(file).await,
            Err(e) => Err(e.into()),
        };
        let outcome = match result {
            Ok(()) => Outcome::Upgraded {
                version: pending.to,
            },
            Err(e) => Outcome::Failed {
                reason: e.to_string(),
            },
        };
        // Unrecorded, the outcome still reaches the coordinator: the next
        // heartbeat carries the version the node runs.
        if let Err(e) = client.report(id, pending.upgrade, outcome).await? {
            not_taken(e);
        }
        Ok(())
    }
}
