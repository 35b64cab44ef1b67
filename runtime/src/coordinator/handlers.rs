//! The coordinator's RPC handlers (interface v2; v1 callers arrive through
//! v1's past SO): each request is one transaction over the rollout rules.

use super::Coordinator;
use crate::sync::lock;
use crate::upgrade::api::{
    self, Control, ControlError, Event, Heartbeat, MAX_HISTORY_PAGE, Outcome, Pending,
    PublishError, RECENT_EVENTS, Slot, StatusView, Unrecorded,
};
use crate::upgrade::{NodeInfo, Upgrade};

impl api::v2::Coordinator for Coordinator {
    async fn register(&self, node: NodeInfo) -> Result<(), Unrecorded> {
        self.transact(|t| t.register(node))
    }

    async fn heartbeat(&self, beat: Heartbeat) -> Result<Option<Pending>, Unrecorded> {
        self.transact(|t| t.heartbeat(beat))
    }

    async fn request_slot(&self, node: String, upgrade: u64) -> Result<Slot, Unrecorded> {
        self.transact(|t| t.request_slot(&self.schedules, node, upgrade))
    }

    async fn report(&self, node: String, upgrade: u64, outcome: Outcome) -> Result<(), Unrecorded> {
        self.transact(|t| t.report(node, upgrade, outcome))
    }

    async fn publish(&self, upgrade: Upgrade) -> Result<u64, PublishError> {
        if upgrade.to != upgrade.from.wrapping_add(1) || upgrade.from == u32::MAX {
            return Err(PublishError::SkipsVersion {
                from: upgrade.from,
                to: upgrade.to,
            });
        }
        self.schedules
            .validate(&upgrade.schedule)
            .map_err(PublishError::Schedule)?;
        self.transact(|t| t.publish(upgrade))
            .map_err(PublishError::Unrecorded)?
    }

    async fn control(&self, upgrade: u64, action: Control) -> Result<(), ControlError> {
        self.transact(|t| t.control(upgrade, action))
            .map_err(ControlError::Unrecorded)?
    }

    async fn status(&self) -> StatusView {
        // Through a transaction first, so a lost slot holder shows as such;
        // if that write fails, the view still shows what is recorded.
        let _ = self.transact(|_| ());
        let content = lock(&self.content);
        let skip = content.events.len().saturating_sub(RECENT_EVENTS);
        StatusView {
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
                .map(Event::from)
                .collect(),
            events: content.events.len() as u64,
        }
    }

    async fn history(&self, after: u64, limit: u32) -> Vec<Event> {
        let content = lock(&self.content);
        // Sequence numbers ascend from 1 without gaps.
        let from = content.events.partition_point(|e| e.seq <= after);
        let limit = limit.min(MAX_HISTORY_PAGE) as usize;
        content.events[from..]
            .iter()
            .take(limit)
            .cloned()
            .map(Event::from)
            .collect()
    }
}
