//! The in-process upgrade: quiesce, transform and commit the state, install
//! the next version with its past SOs, resume.

use std::sync::atomic::Ordering;

use super::stage::{Storage, retire};
use super::{Node, NodeError};
use crate::state::SnapshotStore;
use crate::sync::lock;

impl Node {
    /// Moves the node to `to`, the next version, inside this process:
    /// quiesce (new calls get a retryable `Upgrading` reply; calls in flight
    /// finish within the quiesce timeout), transform the state and commit it,
    /// start the new version with its past SOs, resume. On any failure the
    /// node resumes on its version with its state as it was.
    pub async fn upgrade_to(&self, to: u32) -> Result<(), NodeError> {
        let mut current = self.inner.current.lock().await;
        let running = self.version();
        if to != running + 1 {
            return Err(NodeError::NotNext { running });
        }
        let stage = self
            .inner
            .stages
            .get(&to)
            .ok_or_else(|| NodeError::NoStage {
                version: to,
                known: self.inner.stages.keys().copied().collect(),
            })?;
        let old = self.service();
        let paused = std::time::Instant::now();
        let timeout = self.inner.config.quiesce_timeout;
        if !old.quiesce(timeout).await {
            let busy = old.in_flight();
            old.reopen();
            return Err(NodeError::Busy(busy, timeout));
        }
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
                *lock(&self.inner.state) = next.state.clone();
                self.inner
                    .server
                    .install(retire(next.service, self.inner.config.oldest_answered));
                current.snapshot = next.snapshot;
                self.inner.version.store(to, Ordering::SeqCst);
                let pause = paused.elapsed();
                lock(&self.inner.pauses).push((to, pause));
                tracing::info!(node = %self.inner.config.id, version = to, ?pause, "upgraded");
                Ok(())
            }
            Err(e) => {
                old.reopen();
                tracing::warn!(node = %self.inner.config.id, error = %e, "upgrade failed; staying on v{running}");
                Err(e)
            }
        }
    }
}
