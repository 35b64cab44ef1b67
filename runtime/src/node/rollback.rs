//! Rollback: the node goes back to the previous version, in process, with
//! its state transformed back by the running stage's downgrade
//! ([`DurableStage::reversible`](super::DurableStage::reversible)).
//!
//! Calls are held back for the whole of it, a pause that grows with the
//! state (a rollback is the emergency path; an upgrade's pause does not
//! grow). In that pause: the running state is checkpointed (its journal
//! then holds nothing the snapshot lacks), transformed back, the previous
//! version's stage starts on it with an empty journal, and the older
//! snapshot is committed in the newer one's place
//! ([`FileStore::roll_back`](crate::state::FileStore::roll_back)). A crash
//! before that commit restarts on the running version with everything
//! (the checkpoint holds it); after it, on the previous one.

use std::time::Instant;

use super::stage::Storage;
use super::{Current, Node, NodeError, compacted};
use crate::state::{Dropped, SnapshotStore};
use crate::sync::{blocking, lock};

impl Node {
    /// Moves the node back to `to`, the version before the one it runs,
    /// with its state; returns what the older version could not hold (also
    /// logged). On a failure before the commit the node keeps serving its
    /// version; after the checkpoint, a failure that leaves the journal in
    /// doubt stops the state taking writes (the node turns unhealthy, and
    /// a restart recovers every acknowledged write).
    pub async fn roll_back_to(&self, to: u32) -> Result<Dropped, NodeError> {
        let mut current = self.inner.current.lock().await;
        self.roll_back(to, &mut current).await
    }

    pub(super) async fn roll_back(
        &self,
        to: u32,
        current: &mut Current,
    ) -> Result<Dropped, NodeError> {
        let running = self.version();
        if to + 1 != running {
            return Err(NodeError::NotNext { running });
        }
        let stage = self.stage(to)?;
        // Refused before anything is held back or written.
        if !self.inner.stages[&running].reversible() {
            return Err(NodeError::NotReversible { version: running });
        }
        let state = lock(&self.inner.state).clone();
        let paused = Instant::now();
        let old = self.quiesce().await?;
        let mut touched = false;
        let result = async {
            let snapshot = (current.snapshot)()?;
            let applied = snapshot.applied;
            let node = self.clone();
            let journaled = state.clone();
            let (older, dropped) = blocking(move || {
                // The checkpoint: every change is in a snapshot of the
                // running version, and the journal holds nothing else.
                node.inner.store.write(&snapshot)?;
                compacted(journaled.as_ref(), applied);
                node.inner.stages[&running].downgrade(&snapshot)
            })
            .await?;
            touched = true;
            let storage = Storage::of(&self.inner.store, &self.inner.config);
            let next = stage.start(Some(&older), storage)?;
            // The commit point: once the newer snapshot is gone, the node
            // is at `to`.
            let store = self.inner.store.clone();
            blocking(move || store.roll_back(&older)).await?;
            Ok::<_, NodeError>((next, dropped))
        }
        .await;
        match result {
            Ok((next, dropped)) => {
                self.install(to, current, next, paused.elapsed());
                let mut timings = lock(&self.inner.timings);
                for (place, n) in dropped.iter() {
                    *timings.dropped.entry(place).or_default() += n;
                }
                drop(timings);
                if dropped.is_empty() {
                    tracing::info!(node = %self.inner.config.id, version = to, "rolled back");
                } else {
                    tracing::warn!(node = %self.inner.config.id, version = to, %dropped, "rolled back; v{to} cannot hold some values v{running} wrote");
                }
                Ok(dropped)
            }
            Err(e) => {
                if touched && let Some(state) = &state {
                    // The previous version's journal may have replaced the
                    // running one's: take no writes that could be lost.
                    state.fail(&format!("a rollback to v{to} failed midway: {e}"));
                }
                old.reopen();
                tracing::warn!(node = %self.inner.config.id, error = %e, "rollback failed; staying on v{running}");
                Err(e)
            }
        }
    }
}
