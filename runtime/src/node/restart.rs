//! The restart-mode upgrade: verify the new binary, hand over (the next
//! process starts and may prepare its state meanwhile), quiesce, checkpoint
//! unless the state is journaled, go away, and restart.

use std::time::Duration;

use super::{Node, NodeError};
use crate::sync::{blocking, lock};
use crate::upgrade::Artifact;

impl Node {
    /// Restart-mode upgrade: verify the binary, start the next process
    /// (the handover hook), hold calls, checkpoint a state that is not
    /// journaled, and hand over to the restart hook. The new binary registers
    /// at the new version, which tells the coordinator the upgrade went.
    pub(super) async fn restart_into(&self, artifact: Artifact) -> Result<(), NodeError> {
        let Artifact::File { path, .. } = &artifact else {
            return Ok(());
        };
        let restart = self
            .inner
            .config
            .restart
            .clone()
            .ok_or(NodeError::NoRestartHook {
                version: self.version() + 1,
            })?;
        // Hashing a large binary takes seconds (4 s for a debug kv-node):
        // off the runtime's threads, so the node keeps serving meanwhile.
        let checking = artifact.clone();
        blocking(move || checking.verify()).await?;
        // No checkpoint from here on: the next process may be preparing its
        // state from the committed snapshot and the journal after it, which
        // a checkpoint's compaction would cut.
        let current = self.inner.current.lock().await;
        // The next process starts now; it takes over the state once this
        // one has checkpointed and exited. The hook may wait for the next
        // process to bind the port: off the runtime's threads too.
        let started = std::time::Instant::now();
        if let Some(handover) = self.inner.config.handover.clone() {
            let binary = path.clone();
            blocking(move || {
                handover(binary);
                Ok::<_, NodeError>(())
            })
            .await?;
        }
        let handed = started.elapsed();
        let service = self.service();
        let timeout = self.inner.config.quiesce_timeout;
        if !service.quiesce(timeout).await {
            let busy = service.in_flight();
            service.reopen();
            return Err(NodeError::Busy(busy, timeout));
        }
        let quiesced = started.elapsed();
        // A journaled state has every acknowledged change on disk already,
        // and the next process replays the journal: a checkpoint here would
        // only hold calls back longer. Other states are saved now.
        let journaled = lock(&self.inner.state)
            .as_ref()
            .is_some_and(|s| s.journaled());
        if !journaled && let Err(e) = self.checkpoint_with(&current).await {
            service.reopen();
            return Err(e);
        }
        let checkpointed = started.elapsed();
        // Close connections so that no caller has a call in flight when the
        // process exits: every call is answered (`Upgrading`) or never sent.
        self.inner.server.go_away(Duration::from_secs(2)).await;
        // Where a restart's time goes, from the verified binary on.
        tracing::info!(
            node = %self.inner.config.id,
            binary = %path.display(),
            ?handed,
            ?quiesced,
            ?checkpointed,
            gone = ?started.elapsed(),
            "restarting into the new binary"
        );
        restart(path.clone());
        // A hook that returns did not restart: keep serving the old version.
        service.reopen();
        Err(NodeError::RestartReturned {
            version: self.version() + 1,
        })
    }
}
