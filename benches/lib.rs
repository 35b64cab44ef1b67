//! Shared setup of the benchmarks under `benches/`: the hand-written
//! baseline server that speaks upshift's framing without version dispatch.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use upshift::wire::{self, Frame, Status};
use upshift_examples::kv::StoreV3;
use upshift_examples::kv::interface::v3::Kv;

/// Serves `put(key, value, ttl_secs)` (method 1) on a [`StoreV3`] over the
/// same frames as upshift, decoding and calling directly: no service lookup,
/// no version dispatch, no SOs. The same shape as upshift's server otherwise:
/// one task per call and a writer task that batches replies.
pub async fn hand_written_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let store = Arc::new(StoreV3::default());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let store = store.clone();
            tokio::spawn(async move {
                let (read, write) = stream.into_split();
                let mut read = BufReader::new(read);
                let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
                tokio::spawn(async move {
                    let mut write = BufWriter::new(write);
                    while let Some(frame) = rx.recv().await {
                        if write.write_all(&frame).await.is_err() {
                            return;
                        }
                        while let Ok(frame) = rx.try_recv() {
                            if write.write_all(&frame).await.is_err() {
                                return;
                            }
                        }
                        if write.flush().await.is_err() {
                            return;
                        }
                    }
                });
                loop {
                    let mut body = Vec::new();
                    if !matches!(
                        wire::read_frame(&mut read, wire::DEFAULT_MAX_FRAME, &mut body).await,
                        Ok(true)
                    ) {
                        return;
                    }
                    let (call_id, payload_at) = match wire::decode(&body) {
                        Ok(Frame::Call(c)) => (c.call_id, body.len() - c.payload.len()),
                        _ => return,
                    };
                    let (store, tx) = (store.clone(), tx.clone());
                    tokio::spawn(async move {
                        let Ok((key, value, ttl)) =
                            postcard::from_bytes::<(String, String, Option<u64>)>(
                                &body[payload_at..],
                            )
                        else {
                            return;
                        };
                        store.put(key, value, ttl).await;
                        let mut out = Vec::with_capacity(32);
                        let start = wire::begin_reply(&mut out, call_id, 3, Status::Ok);
                        if let Ok(mut out) = postcard::to_extend(&(), out) {
                            wire::finish(&mut out, start);
                            let _ = tx.send(out);
                        }
                    });
                }
            });
        }
    });
    Ok(addr)
}
