//! The in-process upgrade: quiesce, transform and commit the state, install
//! the next version with its past SOs, resume.
//!
//! When the next stage follows its previous version's changes
//! ([`DurableStage::following`](super::DurableStage::following)), the
//! transform runs before the quiesce, while the running version serves:
//! the next version's state is prepared from the committed snapshot and
//! the journal (read only), its snapshot is staged, and it follows the
//! running version's changes in rounds; calls are then held back only to
//! follow the last few, move the journal aside, start the new one and
//! commit the staged snapshot with a rename. The pause does not grow with
//! the state.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::stage::{Prepared, Running, Storage, retire};
use super::{Current, Node, NodeError};
use crate::state::{SnapshotStore, Staged, StateHandle};
use crate::sync::{blocking, lock};

/// Catch-up rounds end once a round has no more changes to follow than
/// this; the last ones are followed while calls are held back.
const FOLLOW_IN_PAUSE: usize = 256;
/// At most this many rounds: a node written faster than it follows stops
/// catching up and follows the rest in the pause.
const ROUNDS: usize = 32;

impl Node {
    /// Moves the node to `to`, the next version, inside this process:
    /// quiesce (new calls get a retryable `Upgrading` reply; calls in flight
    /// finish within the quiesce timeout), transform the state and commit it,
    /// start the new version with its past SOs, resume. On any failure the
    /// node resumes on its version with its state as it was.
    ///
    /// With a next stage that follows (see the module notes), the transform
    /// happens before the quiesce and the pause is only the switch.
    ///
    /// `to` one below the running version is a rollback
    /// ([`Node::roll_back_to`]).
    pub async fn upgrade_to(&self, to: u32) -> Result<(), NodeError> {
        let mut current = self.inner.current.lock().await;
        let running = self.version();
        if to + 1 == running {
            return self.roll_back(to, &mut current).await.map(drop);
        }
        if to != running + 1 {
            return Err(NodeError::NotNext { running });
        }
        self.stage(to)?;
        if let Some(policy) = self.inner.config.shadow {
            self.shadow(to, policy, &current).await?;
        }
        let state = lock(&self.inner.state).clone();
        if let Some(state) = state
            && let Some(from) = state.tap_or_checkpoint(self, &current).await?
        {
            match self.prepare(to, &state, from).await {
                Ok(Some(prepared)) => {
                    return self.switch(to, &mut current, &state, prepared).await;
                }
                // The stage does not follow: transform in the pause.
                Ok(None) => state.release(),
                Err(e) => {
                    state.release();
                    tracing::warn!(node = %self.inner.config.id, error = %e, "upgrade failed; staying on v{running}");
                    return Err(e);
                }
            }
        }
        self.transform_in_pause(to, &mut current).await
    }

    /// The stop-the-world upgrade: quiesce, transform, commit, switch.
    async fn transform_in_pause(&self, to: u32, current: &mut Current) -> Result<(), NodeError> {
        let running = self.version();
        let stage = &self.inner.stages[&to];
        let paused = Instant::now();
        let old = self.quiesce().await?;
        let result = (|| {
            let snapshot = (current.snapshot)()?;
            let storage = Storage::of(&self.inner.store, &self.inner.config);
            let next = stage.start(Some(&snapshot), storage)?;
            // The commit point: once this write returns, the node is at `to`.
            self.inner.store.write(&(next.snapshot)()?)?;
            Ok::<_, NodeError>(next)
        })();
        match result {
            Ok(next) => {
                // The old journal's changes are all in the committed
                // snapshot: the new version's journal starts empty.
                if let Some(state) = &next.state
                    && let Err(e) = state.restart_journal()
                {
                    state.fail(&format!("the journal of v{to} could not start: {e}"));
                }
                self.install(to, current, next, paused.elapsed());
                Ok(())
            }
            Err(e) => {
                old.reopen();
                tracing::warn!(node = %self.inner.config.id, error = %e, "upgrade failed; staying on v{running}");
                Err(e)
            }
        }
    }

    /// Prepares `to`'s state beside the running version: transformed from
    /// the committed snapshot and the journal up to `from` (at least),
    /// its snapshot staged, then following the running version's changes
    /// until few are left. `None` when the stage does not follow.
    async fn prepare(
        &self,
        to: u32,
        state: &StateHandle,
        from: u64,
    ) -> Result<Option<(Box<dyn Prepared>, Staged)>, NodeError> {
        let started = Instant::now();
        // The journal file holds every change up to the tap's start.
        state.synced(from).await.map_err(|why| NodeError::Prepare {
            version: to,
            reason: why.to_string(),
        })?;
        let node = self.clone();
        let prepared = blocking(move || {
            let stage = &node.inner.stages[&to];
            let Some(prepared) = guarded(to, || stage.prepare(&node.inner.store).transpose())?
            else {
                return Ok(None);
            };
            let snapshot = prepared.snapshot()?;
            let staged = node.inner.store.stage(&snapshot)?;
            Ok::<_, NodeError>(Some((prepared, staged)))
        })
        .await?;
        let Some((mut prepared, staged)) = prepared else {
            return Ok(None);
        };
        let transformed = started.elapsed();
        let mut rounds = 0;
        loop {
            let changes = state.drain();
            let n = changes.len();
            prepared = blocking(move || {
                guarded(to, || prepared.follow(&changes))?;
                Ok::<_, NodeError>(prepared)
            })
            .await?;
            rounds += 1;
            if n <= FOLLOW_IN_PAUSE || rounds >= ROUNDS {
                break;
            }
        }
        tracing::info!(node = %self.inner.config.id, version = to, ?transformed, rounds, "prepared in the background");
        Ok(Some((prepared, staged)))
    }

    /// The switch of a background upgrade: quiesce, follow the last
    /// changes, move the journal aside, start `to` and commit its staged
    /// snapshot. Before the commit any failure puts everything back.
    async fn switch(
        &self,
        to: u32,
        current: &mut Current,
        state: &StateHandle,
        (mut prepared, staged): (Box<dyn Prepared>, Staged),
    ) -> Result<(), NodeError> {
        let running = self.version();
        let paused = Instant::now();
        let old = self.quiesce().await.inspect_err(|_| state.release())?;
        let last = state.seal(&format!(
            "the node switched to v{to}; this write reached v{running}'s state after it"
        ));
        let quiesced = paused.elapsed();
        let mut retired = false;
        let result = async {
            guarded(to, || prepared.follow(&last))?;
            // Everything the staged snapshot lacks is in the journal on disk.
            let upto = prepared.applied();
            state.synced(upto).await.map_err(|why| NodeError::Prepare {
                version: to,
                reason: why.to_string(),
            })?;
            let followed = paused.elapsed();
            state.retire_journal()?;
            retired = true;
            let storage = Storage::of(&self.inner.store, &self.inner.config);
            let next = prepared.start(storage)?;
            let started = paused.elapsed();
            // The commit point: once the rename is durable, the node is at `to`.
            staged.commit()?;
            tracing::info!(
                node = %self.inner.config.id,
                version = to,
                ?quiesced,
                ?followed,
                ?started,
                committed = ?paused.elapsed(),
                last = last.len(),
                "switched"
            );
            Ok::<_, NodeError>(next)
        }
        .await;
        match result {
            Ok(next) => {
                self.install(to, current, next, paused.elapsed());
                // The previous version's snapshot, off the pause.
                let store = self.inner.store.clone();
                if let Err(e) = blocking(move || store.remove_superseded(to)).await {
                    tracing::warn!(node = %self.inner.config.id, error = %e, "the previous version's snapshot was not removed; the next start removes it");
                }
                Ok(())
            }
            Err(e) => {
                if retired && let Err(undo) = state.restore_journal() {
                    state.fail(&format!(
                        "the journal could not be moved back after a failed switch to v{to}: {undo}"
                    ));
                }
                state.release();
                old.reopen();
                tracing::warn!(node = %self.inner.config.id, error = %e, "upgrade failed; staying on v{running}");
                Err(e)
            }
        }
    }

    /// Holds new calls back (they get a retryable `Upgrading`) and waits
    /// for those in flight; calls the upgrade off, reopened, when they do
    /// not finish within the quiesce timeout.
    pub(super) async fn quiesce(&self) -> Result<std::sync::Arc<crate::rpc::Service>, NodeError> {
        let service = self.service();
        let timeout = self.inner.config.quiesce_timeout;
        if !service.quiesce(timeout).await {
            let busy = service.in_flight();
            service.reopen();
            return Err(NodeError::Busy(busy, timeout));
        }
        Ok(service)
    }

    /// Serves `next` from now on.
    pub(super) fn install(&self, to: u32, current: &mut Current, next: Running, pause: Duration) {
        *lock(&self.inner.state) = next.state.clone();
        let served = retire(next.service, self.inner.config.oldest_answered);
        lock(&self.inner.traffic).extend(super::counters(&served));
        self.inner.server.install(served);
        current.snapshot = next.snapshot;
        self.inner.version.store(to, Ordering::SeqCst);
        lock(&self.inner.pauses).push((to, pause));
        tracing::info!(node = %self.inner.config.id, version = to, ?pause, "upgraded");
    }
}

impl StateHandle {
    /// Starts keeping the changes a background upgrade follows (the last
    /// change before them); a previous version's journal still kept is
    /// first folded into a checkpoint. `None` without a journal.
    async fn tap_or_checkpoint(
        &self,
        node: &Node,
        current: &Current,
    ) -> Result<Option<u64>, NodeError> {
        if let Some(from) = self.tap() {
            return Ok(Some(from));
        }
        if !self.has_prev_journal() {
            return Ok(None);
        }
        node.checkpoint_with(current).await?;
        Ok(self.tap())
    }
}

/// Runs the next version's code (`prepare`, `follow`: the user's), turning
/// a panic into an error so the node stays on its version.
pub(super) fn guarded<T>(
    to: u32,
    work: impl FnOnce() -> Result<T, NodeError>,
) -> Result<T, NodeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let reason = crate::sync::panic_message(&*panic);
        Err(NodeError::Prepare {
            version: to,
            reason: format!("it panicked: {reason}"),
        })
    })
}
