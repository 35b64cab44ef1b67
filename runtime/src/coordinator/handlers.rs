//! The coordinator's RPC handlers (interface v6; v5, v4, v3, v2 and v1 callers
//! arrive through their past SOs): each request is one transaction over the
//! rollout rules.

use std::collections::BTreeMap;

use super::Coordinator;
use super::rollout::gate_wait;
use crate::rpc::stats::LATENCY_BUCKETS;
use crate::sync::lock;
use crate::upgrade::api::{
    self, ApproveError, Control, ControlError, Event3, ForgetError, GateView6, Heartbeat6,
    MAX_CALL_COUNTS, MAX_HISTORY_PAGE, MAX_NAME, MAX_SLOT_WAIT_MS, MAX_TEXT, Outcome, Pending,
    PublishError, PublishError3, RECENT_EVENTS, RequestError3, RollbackError, Slot, StatusView3,
};
use crate::upgrade::{Artifact, ArtifactError, Gate6, NodeInfo, RolloutState, Upgrade};

/// A field over its limit.
struct Over {
    field: &'static str,
    max: usize,
    len: usize,
}

/// Checks each (field, value, limit); the first over its limit is the error.
fn limits(fields: &[(&'static str, &str, usize)]) -> Result<(), Over> {
    match fields.iter().find(|(_, value, max)| value.len() > *max) {
        Some(&(field, value, max)) => Err(Over {
            field,
            max,
            len: value.len(),
        }),
        None => Ok(()),
    }
}

impl From<Over> for RequestError3 {
    fn from(o: Over) -> Self {
        RequestError3::TooLong {
            field: o.field.into(),
            max: o.max as u32,
            len: o.len as u64,
        }
    }
}

impl From<Over> for PublishError {
    fn from(o: Over) -> Self {
        PublishError::TooLong {
            field: o.field.into(),
            max: o.max as u32,
            len: o.len as u64,
        }
    }
}

fn node_limits(node: &NodeInfo) -> Result<(), RequestError3> {
    limits(&[
        ("id", &node.id, MAX_NAME),
        ("group", &node.group, MAX_NAME),
        ("service", &node.service, MAX_NAME),
        ("address", &node.address, MAX_NAME),
    ])?;
    Ok(())
}

impl Coordinator {
    /// Under release keys: the artifact is a signed, current release of the
    /// upgrade's service and version, not older than one published before.
    fn check_release(&self, upgrade: &Upgrade, artifact: &Artifact) -> Result<(), ArtifactError> {
        let Some(keys) = &self.release_keys else {
            return Ok(());
        };
        let signed = match artifact {
            Artifact::InProcess => return Ok(()),
            Artifact::File { .. } => return Err(ArtifactError::Unsigned),
            Artifact::Release(signed) => signed,
        };
        let release = signed.verify(keys, self.clock.now_ms())?;
        release.is_for(&upgrade.service, upgrade.to)?;
        let content = lock(&self.store.content);
        for published in content.upgrades.values() {
            if let Ok(Artifact::Release(earlier)) = Artifact::parse(&published.def.artifact)
                && earlier.release().service == release.service
            {
                let earlier = earlier.release();
                release.not_older_than(earlier.sequence, &earlier.sha256)?;
            }
        }
        Ok(())
    }

    /// What a publish must pass before it reaches the rollout rules.
    fn check_publish(&self, upgrade: &Upgrade) -> Result<(), PublishError> {
        if upgrade.to != upgrade.from.wrapping_add(1) || upgrade.from == u32::MAX {
            return Err(PublishError::SkipsVersion {
                from: upgrade.from,
                to: upgrade.to,
            });
        }
        limits(&[
            ("service", &upgrade.service, MAX_NAME),
            ("artifact", &upgrade.artifact, MAX_TEXT),
            ("notes", &upgrade.notes, MAX_TEXT),
        ])?;
        // An artifact nodes cannot parse would halt the rollout on the first
        // node; refuse it here. (Whether the file exists is each node's to see.)
        let artifact = Artifact::parse(&upgrade.artifact)
            .map_err(|e| PublishError::Artifact(e.to_string()))?;
        // A release the keys do not vouch for is an attempt worth recording.
        self.check_release(upgrade, &artifact).map_err(|e| {
            let caller = crate::rpc::caller();
            self.refused(
                caller.as_deref(),
                &format!("publishing {}: {e}", upgrade.artifact),
            );
            PublishError::Artifact(e.to_string())
        })?;
        self.schedules
            .validate(&upgrade.schedule)
            .map_err(PublishError::Schedule)?;
        Ok(())
    }
}

impl api::v6::Coordinator for Coordinator {
    async fn register(&self, node: NodeInfo) -> Result<(), RequestError3> {
        node_limits(&node)?;
        self.transact(|t| t.register(node))
            .await
            .map_err(RequestError3::Unrecorded)?
    }

    async fn heartbeat(&self, beat: Heartbeat6) -> Result<Option<Pending>, RequestError3> {
        limits(&[
            ("id", &beat.id, MAX_NAME),
            ("address", &beat.address, MAX_NAME),
            ("problem", beat.problem.as_deref().unwrap_or(""), MAX_TEXT),
        ])?;
        let buckets = beat.traffic.iter().map(|t| t.latency.len()).max();
        for (field, len, max) in [
            ("calls", beat.calls.len(), MAX_CALL_COUNTS),
            ("traffic", beat.traffic.len(), MAX_CALL_COUNTS),
            ("traffic.latency", buckets.unwrap_or(0), LATENCY_BUCKETS),
        ] {
            if len > max {
                return Err(Over { field, max, len }.into());
            }
        }
        self.transact(|t| t.heartbeat(beat))
            .await
            .map_err(RequestError3::Unrecorded)?
    }

    async fn request_slot(&self, node: String, upgrade: u64) -> Result<Slot, RequestError3> {
        self.wait_slot(node, upgrade, 0).await
    }

    async fn wait_slot(
        &self,
        node: String,
        upgrade: u64,
        wait_ms: u32,
    ) -> Result<Slot, RequestError3> {
        limits(&[("node", &node, MAX_NAME)])?;
        // `request_slot` is this with no wait: one decision, answered.
        let wait = std::time::Duration::from_millis(u64::from(wait_ms.min(MAX_SLOT_WAIT_MS)));
        let until = tokio::time::Instant::now() + wait;
        loop {
            // Registered before asking, so a slot freed in between wakes it.
            let woken = self.slots.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let slot = self
                .transact(|t| t.request_slot(&self.schedules, node.clone(), upgrade))
                .await
                .map_err(RequestError3::Unrecorded)?;
            // (A wake this call does not wait for passes to the next waiter.)
            if !matches!(slot, Slot::Wait(_))
                || tokio::time::Instant::now() >= until
                || tokio::time::timeout_at(until, woken).await.is_err()
            {
                return Ok(slot);
            }
        }
    }

    async fn report(
        &self,
        node: String,
        upgrade: u64,
        outcome: Outcome,
    ) -> Result<(), RequestError3> {
        let reason = match &outcome {
            Outcome::Failed { reason } => reason.as_str(),
            Outcome::Upgraded { .. } => "",
        };
        limits(&[("node", &node, MAX_NAME), ("reason", reason, MAX_TEXT)])?;
        self.transact(|t| t.report(node, upgrade, outcome))
            .await
            .map_err(RequestError3::Unrecorded)
    }

    async fn publish(&self, upgrade: Upgrade) -> Result<u64, PublishError3> {
        self.check_publish(&upgrade).map_err(PublishError3::V2)?;
        self.transact(|t| t.publish(upgrade))
            .await
            .map_err(|e| PublishError3::V2(PublishError::Unrecorded(e)))?
    }

    async fn control(&self, upgrade: u64, action: Control) -> Result<(), ControlError> {
        self.transact(|t| t.control(upgrade, action))
            .await
            .map_err(ControlError::Unrecorded)?
    }

    async fn status(&self) -> StatusView3 {
        // Through a transaction first, so a lost slot holder shows as such;
        // if that write fails, the view still shows what is recorded.
        let _ = self.transact(|_| ()).await;
        let content = lock(&self.store.content);
        let skip = content.events.len().saturating_sub(RECENT_EVENTS);
        StatusView3 {
            nodes: content
                .nodes
                .iter()
                .map(|(id, n)| (id.clone(), n.clone().into()))
                .collect(),
            rollouts: content
                .upgrades
                .iter()
                .map(|(id, u)| (*id, u.clone().into()))
                .collect(),
            recent: content.events[skip..]
                .iter()
                .cloned()
                .map(Event3::from)
                .collect(),
            events: content.events.len() as u64,
            udb_failing: lock(&self.store.failing).clone(),
        }
    }

    async fn history(&self, after: u64, limit: u32) -> Vec<Event3> {
        let content = lock(&self.store.content);
        // Sequence numbers ascend from 1 without gaps.
        let from = content.events.partition_point(|e| e.seq <= after);
        let limit = limit.min(MAX_HISTORY_PAGE) as usize;
        content.events[from..]
            .iter()
            .take(limit)
            .cloned()
            .map(Event3::from)
            .collect()
    }

    async fn forget(&self, node: String) -> Result<(), ForgetError> {
        self.transact(|t| t.forget(node))
            .await
            .map_err(ForgetError::Unrecorded)?
    }

    async fn publish_gated(
        &self,
        upgrade: Upgrade,
        gates: Vec<Gate6>,
    ) -> Result<u64, PublishError3> {
        self.check_publish(&upgrade).map_err(PublishError3::V2)?;
        self.transact(|t| t.publish_gated(upgrade, gates))
            .await
            .map_err(|e| PublishError3::V2(PublishError::Unrecorded(e)))?
    }

    async fn rollback(&self, upgrade: u64) -> Result<u64, RollbackError> {
        self.transact(|t| t.rollback(upgrade))
            .await
            .map_err(RollbackError::Unrecorded)?
    }

    async fn approve(&self, upgrade: u64) -> Result<(), ApproveError> {
        self.transact(|t| t.approve(upgrade))
            .await
            .map_err(ApproveError::Unrecorded)?
    }

    async fn gates(&self) -> BTreeMap<u64, GateView6> {
        let content = lock(&self.store.content);
        let tally = lock(&self.store.tally);
        content
            .gates
            .iter()
            .map(|(id, record)| {
                let waiting = content
                    .upgrades
                    .get(id)
                    .filter(|u| u.state == RolloutState::Active)
                    .and_then(|u| gate_wait(&content, &tally, u));
                let cohorts = match content.upgrades.get(id) {
                    Some(u) if record.gates.iter().any(Gate6::is_analysis) => {
                        tally.cohorts(&u.def.service, u.def.from, u.def.to)
                    }
                    _ => Vec::new(),
                };
                let view = GateView6 {
                    gates: record.gates.clone(),
                    approved_ms: record.approved_ms,
                    approved_by: record.approved_by.clone(),
                    waiting,
                    cohorts,
                };
                (*id, view)
            })
            .collect()
    }
}
