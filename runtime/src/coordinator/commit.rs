//! Group commit: the coordinator's content in memory, and the UDB writes
//! that make it durable.
//!
//! A request changes the content under its lock and queues what it wrote;
//! the lock is released before the write, so other requests go on. One
//! writer (a blocking task, started when the queue was idle) takes
//! everything queued, writes it in one UDB transaction and answers each
//! request; what arrived meanwhile is the next group. A request is answered
//! only once everything queued before it is durable — also a request that
//! wrote nothing, if it may have read what was not yet written. If a write
//! fails, that group and everything queued after it (built on top of it)
//! is taken back from the content, newest first, and each of those
//! requests fails with [`Unrecorded`]: nothing unrecorded is answered as
//! done.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::analysis::Tally;
use super::rollout::{Notice, UndoLog};
use crate::sync::lock;
use crate::udb::{Batch, Content, Udb};
use crate::upgrade::api::Unrecorded;

/// The content, the UDB under it, and the queue between them.
pub(super) struct Store {
    udb: Box<dyn Udb>,
    pub(super) content: Mutex<Content>,
    /// What the nodes' calls did; locked after `content`, never before it.
    pub(super) tally: Mutex<Tally>,
    /// Why the latest UDB write failed, until one succeeds.
    pub(super) failing: Mutex<Option<String>>,
    queue: Mutex<Queue>,
    /// What the writer did, for the metrics.
    pub(super) counts: Counts,
    /// Where rollout state changes go once durable (a webhook's sender).
    pub(super) notify: Mutex<Option<std::sync::mpsc::Sender<Notice>>>,
}

/// Counters of UDB writes since the coordinator started.
#[derive(Debug, Default)]
pub(super) struct Counts {
    /// UDB transactions written.
    pub(super) commits: AtomicU64,
    /// Requests whose changes they carried.
    pub(super) requests: AtomicU64,
    /// Writes the UDB refused.
    pub(super) refused: AtomicU64,
    /// Time spent writing, in microseconds.
    pub(super) micros: AtomicU64,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Queued>,
    /// A writer is running; it takes what is queued until the queue is empty.
    writing: bool,
}

/// One request's changes, waiting to be durable.
struct Queued {
    batch: Batch,
    undo: Option<UndoLog>,
    notices: Vec<Notice>,
    done: oneshot::Sender<Result<(), Unrecorded>>,
}

/// The writer's task. Should the runtime drop it unrun (it shuts down
/// first), it writes where it is dropped: a queue marked as being written
/// must always be written, or its requests would wait forever.
struct Writer(Option<Arc<Store>>);

impl Writer {
    fn run(mut self) {
        if let Some(store) = self.0.take() {
            store.write_queued();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(store) = self.0.take() {
            store.write_queued();
        }
    }
}

/// A request's answer, and where it goes.
type Answer = (
    oneshot::Sender<Result<(), Unrecorded>>,
    Result<(), Unrecorded>,
);

fn answer(answers: Vec<Answer>) {
    for (to, answer) in answers {
        let _ = to.send(answer);
    }
}

/// Resolves once a request's changes, and everything queued before them,
/// are durable (or were refused and taken back).
pub(super) type Durable = oneshot::Receiver<Result<(), Unrecorded>>;

impl Store {
    pub(super) fn new(udb: Box<dyn Udb>, content: Content) -> Arc<Self> {
        Arc::new(Store {
            udb,
            content: Mutex::new(content),
            tally: Mutex::default(),
            failing: Mutex::new(None),
            queue: Mutex::new(Queue::default()),
            counts: Counts::default(),
            notify: Mutex::new(None),
        })
    }

    /// Queues what a request wrote. Call it with the content's lock held,
    /// so the queue's order is the order the changes were made in. `None`
    /// when there is nothing to wait for: the request wrote nothing and
    /// nothing it could have read is waiting to be written.
    pub(super) fn enqueue(
        self: &Arc<Self>,
        batch: Batch,
        undo: UndoLog,
        notices: Vec<Notice>,
    ) -> Option<Durable> {
        let mut queue = lock(&self.queue);
        if batch.is_empty() && queue.pending.is_empty() && !queue.writing {
            return None;
        }
        let (done, durable) = oneshot::channel();
        queue.pending.push(Queued {
            batch,
            undo: Some(undo),
            notices,
            done,
        });
        if !queue.writing {
            queue.writing = true;
            let writer = Writer(Some(self.clone()));
            drop(queue);
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) if !crate::sync::inline() => {
                    runtime.spawn_blocking(move || writer.run());
                }
                // Outside a runtime (or simulated), the caller writes.
                _ => writer.run(),
            }
        }
        Some(durable)
    }

    /// The writer: writes what is queued, group by group, until the queue
    /// is empty.
    fn write_queued(self: Arc<Self>) {
        let Some(mut group) = self.next_group() else {
            return;
        };
        loop {
            let answers = self.write_group(group);
            // What comes next is decided before the answers go out, so a
            // request answered last finds the writer gone: dropping the
            // coordinator then releases the UDB at once.
            match self.next_group() {
                Some(next) => {
                    answer(answers);
                    group = next;
                }
                None => {
                    drop(self);
                    answer(answers);
                    return;
                }
            }
        }
    }

    /// Everything queued, or `None` (and no writer) when nothing is.
    fn next_group(&self) -> Option<Vec<Queued>> {
        let mut queue = lock(&self.queue);
        if queue.pending.is_empty() {
            queue.writing = false;
            return None;
        }
        Some(std::mem::take(&mut queue.pending))
    }

    /// Writes one group in one UDB transaction; on failure takes it back,
    /// with everything queued since. Returns each request's answer.
    fn write_group(&self, mut group: Vec<Queued>) -> Vec<Answer> {
        let batches: Vec<Batch> = group
            .iter_mut()
            .filter(|q| !q.batch.is_empty())
            .map(|q| std::mem::take(&mut q.batch))
            .collect();
        if batches.is_empty() {
            return group.into_iter().map(|q| (q.done, Ok(()))).collect();
        }
        let started = std::time::Instant::now();
        let written = self.udb.write(&batches);
        let counts = &self.counts;
        counts
            .micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        match written {
            Ok(()) => {
                counts.commits.fetch_add(1, Ordering::Relaxed);
                counts
                    .requests
                    .fetch_add(batches.len() as u64, Ordering::Relaxed);
                if lock(&self.failing).take().is_some() {
                    tracing::warn!("the UDB records again; the coordinator is healthy");
                }
                if let Some(notify) = lock(&self.notify).as_ref() {
                    for notice in group.iter_mut().flat_map(|q| q.notices.drain(..)) {
                        let _ = notify.send(notice);
                    }
                }
                group.into_iter().map(|q| (q.done, Ok(()))).collect()
            }
            Err(e) => {
                counts.refused.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "the UDB refused a write; the changes are taken back and their requests fail");
                let detail = e.to_string();
                let mut content = lock(&self.content);
                // Queued since: made on top of the refused group.
                group.append(&mut lock(&self.queue).pending);
                for q in group.iter_mut().rev() {
                    if let Some(undo) = q.undo.take() {
                        undo.apply(&mut content);
                    }
                }
                *lock(&self.failing) = Some(detail.clone());
                drop(content);
                group
                    .into_iter()
                    .map(|q| {
                        let refused = Unrecorded {
                            detail: detail.clone(),
                        };
                        (q.done, Err(refused))
                    })
                    .collect()
            }
        }
    }
}
