//! Frames on a byte stream: reading one with bounded buffers, writing a queue of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{Notify, mpsc};

use super::FrameError;

/// Reads one frame body into `buf`. Returns `Ok(false)` on a clean end of
/// stream before the first byte of a frame.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(false)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    buf.clear();
    buf.resize(len, 0);
    match r.read_exact(buf).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// What a connection's writer task is handed.
#[derive(Debug)]
pub enum Outgoing {
    /// A complete frame, length prefix included.
    Frame(Vec<u8>),
    /// End this side of the connection once the frames before it are written.
    Shutdown,
}

/// Writes queued frames, flushing only when the queue runs dry so that
/// concurrent replies share system calls. Frees a slot per frame, if given.
pub async fn write_frames<W: AsyncWrite>(
    write: W,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    slots: Option<Arc<Slots>>,
) {
    let write = BufWriter::with_capacity(64 * 1024, write);
    let mut write = std::pin::pin!(write);
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(outgoing) = next {
            let frame = match outgoing {
                Outgoing::Frame(frame) => frame,
                Outgoing::Shutdown => {
                    let _ = write.flush().await;
                    let _ = write.shutdown().await;
                    return;
                }
            };
            if let Some(slots) = &slots {
                slots.free();
            }
            if write.write_all(&frame).await.is_err() {
                return;
            }
            next = queue.try_recv().ok();
        }
        if write.flush().await.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// The calls a connection may have in flight: taken by the reader per frame,
/// freed by the writer per reply. A plain counter rather than a semaphore:
/// taking a free slot never yields, so a burst of calls read in one go is
/// dispatched in one go and its replies leave in one write.
#[derive(Debug)]
pub struct Slots {
    used: AtomicUsize,
    max: usize,
    freed: Notify,
}

impl Slots {
    /// At most `max` slots (at least one).
    pub fn new(max: usize) -> Self {
        Slots {
            used: AtomicUsize::new(0),
            max: max.max(1),
            freed: Notify::new(),
        }
    }

    /// Takes a slot, waiting while all are in use.
    pub async fn take(&self) {
        // The common case, a free slot, without registering for a wake-up.
        if self.used.fetch_add(1, Ordering::AcqRel) < self.max {
            return;
        }
        self.used.fetch_sub(1, Ordering::AcqRel);
        loop {
            // Registered before the check, so a slot freed in between wakes it.
            let freed = self.freed.notified();
            if self.used.fetch_add(1, Ordering::AcqRel) < self.max {
                return;
            }
            self.used.fetch_sub(1, Ordering::AcqRel);
            freed.await;
        }
    }

    /// Frees a slot.
    pub fn free(&self) {
        if self.used.fetch_sub(1, Ordering::AcqRel) >= self.max {
            self.freed.notify_waiters();
        }
    }
}
