//! Frames on a byte stream: reading one with bounded buffers, writing a queue of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{Notify, mpsc};

use super::FrameError;
use crate::sync::until;

/// The most a frame's announced length reserves before its bytes arrive;
/// the buffer then doubles as they come, up to the length.
const FIRST_CHUNK: usize = 64 * 1024;

/// Reads one frame body into `buf`. Returns `Ok(false)` on a clean end of
/// stream before the first byte of a frame.
///
/// Memory follows the bytes that arrive, not the length prefix: a peer that
/// announces the maximum and sends nothing costs 64 KiB at most.
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
    buf.reserve_exact(len.min(FIRST_CHUNK));
    let mut body = r.take(len as u64);
    while buf.len() < len {
        if buf.len() == buf.capacity() {
            buf.reserve_exact(buf.len().min(len - buf.len()));
        }
        if body.read_buf(buf).await? == 0 {
            return Err(FrameError::Truncated);
        }
    }
    Ok(true)
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
                slots.free(frame.len());
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

/// What a connection may have outstanding: calls in flight (taken by the
/// reader per frame, freed by the writer per reply) and the bytes of replies
/// queued but not yet written. A peer that sends calls and never reads the
/// replies stops being read once either bound is reached, so its memory is
/// bounded and TCP pushes back on it. A plain counter rather than a
/// semaphore: taking a free slot never yields, so a burst of calls read in one
/// go is dispatched in one go and its replies leave in one write.
#[derive(Debug)]
pub struct Slots {
    used: AtomicUsize,
    max: usize,
    bytes: AtomicUsize,
    max_bytes: usize,
    freed: Notify,
}

impl Slots {
    /// At most `max` calls (at least one) and `max_bytes` of queued replies.
    pub fn new(max: usize, max_bytes: usize) -> Self {
        Slots {
            used: AtomicUsize::new(0),
            max: max.max(1),
            bytes: AtomicUsize::new(0),
            max_bytes: max_bytes.max(1),
            freed: Notify::new(),
        }
    }

    /// Takes a slot if one is free and the queued replies are under their bound.
    fn try_take(&self) -> bool {
        if self.bytes.load(Ordering::Acquire) >= self.max_bytes {
            return false;
        }
        if self.used.fetch_add(1, Ordering::AcqRel) < self.max {
            return true;
        }
        self.used.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// Takes a slot, waiting while none is free or too many reply bytes wait.
    pub async fn take(&self) {
        until(&self.freed, || self.try_take()).await;
    }

    /// Waits until the replies queued are under their bound. A call runs
    /// only then: calls read in one burst would otherwise all build their
    /// replies before the first is counted.
    pub async fn room(&self) {
        until(&self.freed, || {
            self.bytes.load(Ordering::Acquire) < self.max_bytes
        })
        .await;
    }

    /// Queues `frame` for the writer, counting its bytes until written.
    pub fn queue(&self, to: &mpsc::UnboundedSender<Outgoing>, frame: Vec<u8>) {
        self.bytes.fetch_add(frame.len(), Ordering::AcqRel);
        if let Err(mpsc::error::SendError(Outgoing::Frame(frame))) = to.send(Outgoing::Frame(frame))
        {
            // The writer is gone: nothing will free these bytes but this.
            self.bytes.fetch_sub(frame.len(), Ordering::AcqRel);
        }
    }

    /// A frame of `len` bytes was written: frees its slot and its bytes.
    pub fn free(&self, len: usize) {
        let used = self.used.fetch_sub(1, Ordering::AcqRel);
        let bytes = self.bytes.fetch_sub(len, Ordering::AcqRel);
        if used >= self.max || bytes >= self.max_bytes {
            self.freed.notify_waiters();
        }
    }

    /// Calls in flight and replies not yet written.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn a_length_prefix_alone_reserves_one_chunk_not_the_frame() {
        let (mut peer, node) = tokio::io::duplex(1024);
        let mut node = node;
        peer.write_all(&(8u32 << 20).to_be_bytes())
            .await
            .expect("write");
        peer.write_all(&[7; 10]).await.expect("write");
        let mut buf = Vec::new();
        let reading = read_frame(&mut node, 8 << 20, &mut buf);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), reading)
                .await
                .is_err(),
            "the rest of the frame never comes"
        );
        assert_eq!(buf.len(), 10);
        assert!(
            buf.capacity() <= FIRST_CHUNK,
            "{} bytes reserved",
            buf.capacity()
        );
    }

    #[tokio::test]
    async fn a_large_frame_arrives_whole_as_its_buffer_grows() {
        let (mut peer, mut node) = tokio::io::duplex(4096);
        let body: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let sent = body.clone();
        let writer = tokio::spawn(async move {
            peer.write_all(&(sent.len() as u32).to_be_bytes())
                .await
                .expect("write");
            peer.write_all(&sent).await.expect("write");
            peer
        });
        let mut buf = Vec::new();
        assert!(
            read_frame(&mut node, 1 << 20, &mut buf)
                .await
                .expect("reads")
        );
        assert_eq!(buf, body);
        drop(writer.await);
        // A truncated one is an error, not a short frame.
        let (mut peer, mut node) = tokio::io::duplex(64);
        peer.write_all(&[0, 0, 0, 9, 1, 2]).await.expect("write");
        drop(peer);
        assert!(matches!(
            read_frame(&mut node, 64, &mut buf).await,
            Err(FrameError::Truncated)
        ));
    }
}
