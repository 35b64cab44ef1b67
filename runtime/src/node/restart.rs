//! The restart-mode upgrade: verify the new binary, hand over (the next
//! process starts and may prepare its state meanwhile), quiesce, checkpoint
//! unless the state is journaled, go away, and restart.

use std::time::Duration;

use std::path::PathBuf;

use super::{Node, NodeError};
use crate::sync::{blocking, lock};
use crate::upgrade::release::{Seen, fetch};
use crate::upgrade::{Artifact, ArtifactError};

impl Node {
    /// Restart-mode upgrade: verify the binary, start the next process
    /// (the handover hook), hold calls, checkpoint a state that is not
    /// journaled, and hand over to the restart hook. The new binary registers
    /// at the new version, which tells the coordinator the upgrade went.
    pub(super) async fn restart_into(&self, artifact: Artifact) -> Result<(), NodeError> {
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
        let node = self.clone();
        let path = &blocking(move || node.binary_of(&artifact)).await?;
        // The node goes forward again: a rollback it went through must not
        // hold the next process back.
        let store = self.inner.store.clone();
        blocking(move || store.clear_rolled_back()).await?;
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
        let service = self.quiesce().await?;
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

    /// The verified binary an artifact names: a signed release checked
    /// against the node's keys, then fetched by its digest; a `file:` path
    /// by its checksum, on a node without release keys only.
    fn binary_of(&self, artifact: &Artifact) -> Result<PathBuf, NodeError> {
        let policy = self.inner.config.releases.as_ref();
        match (artifact, policy) {
            (Artifact::Release(signed), Some(policy)) => {
                let release = signed
                    .verify(&policy.keys, crate::clock::now_ms())
                    .map_err(ArtifactError::from)?;
                release
                    .is_for(self.inner.service, self.version() + 1)
                    .map_err(ArtifactError::from)?;
                Seen::at(policy.store.join("seen"))
                    .accept(release)
                    .map_err(ArtifactError::from)?;
                Ok(fetch(release, &policy.source, &policy.store).map_err(ArtifactError::from)?)
            }
            (Artifact::Release(_), None) => Err(ArtifactError::NoReleaseKeys.into()),
            (Artifact::File { .. }, Some(_)) => Err(ArtifactError::Unsigned.into()),
            (Artifact::File { path, .. }, None) => {
                artifact.verify()?;
                Ok(path.clone())
            }
            (Artifact::InProcess, _) => Err(ArtifactError::Syntax("in-process".into()).into()),
        }
    }
}
