//! One connection on the node side: read a call frame, route it to the
//! service's dispatcher for its version, queue the reply; going away; and the
//! timeouts that close a connection that is idle or feeds a frame too slowly.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::sync::mpsc;

use super::{Open, Server};
use crate::rpc::dispatch::{Incoming, Replies};
use crate::rpc::service::Service;
use crate::rpc::tls::Identity;
use crate::wire::{self, Frame, Slots, Status, UNKNOWN_VERSION};

impl Server {
    /// Serves one connection until the peer closes it or breaks the framing.
    pub async fn serve_connection<IO>(self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        self.serve_connection_as(io, None).await;
    }

    /// [`Server::serve_connection`] for a connection whose calls are made
    /// by `caller` (from its client certificate).
    pub(crate) async fn serve_connection_as<IO>(self, io: IO, caller: Option<Arc<Identity>>)
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let _counted: Open = self.inner.connections.enter();
        let config = &self.inner.config;
        let (read, write) = tokio::io::split(io);
        let mut read = BufReader::with_capacity(64 * 1024, read);
        let (tx, pending_replies) = mpsc::unbounded_channel();
        // Bounds the calls in flight and the bytes of replies queued. Every
        // call frame gets exactly one reply, so the writer frees a slot per reply.
        let slots = Arc::new(Slots::new(
            config.max_in_flight,
            config.max_queued_reply_bytes,
        ));
        let writer = tokio::spawn(wire::write_frames(
            write,
            pending_replies,
            Some(slots.clone()),
        ));
        let replies = Replies::new(tx, slots.clone());
        let refuse = |call_id: u64, status: Status, message: &str| {
            replies.send(wire::reply_with_message(
                call_id,
                UNKNOWN_VERSION,
                status,
                message,
            ));
        };
        // The service last called on this connection; installs bump the
        // generation, so a swapped service is seen by the next call.
        let mut cached: Option<(u64, Arc<Service>)> = None;
        let generation = || self.inner.generation.load(Ordering::Acquire);
        let reading = async {
            loop {
                // Wait for a frame to begin: as long as calls are in flight,
                // else up to the idle timeout. (Waiting for buffered bytes
                // consumes nothing, so the wait can be cut short.) Bytes
                // already buffered need no wait and no timer.
                while read.buffer().is_empty() {
                    match tokio::time::timeout(config.idle_timeout, read.fill_buf()).await {
                        Ok(Ok([])) => return,
                        Ok(Ok(_)) => break,
                        // Between frames, a TLS peer that closes without
                        // `close_notify` has only hung up: nothing was cut
                        // (a frame cut short is caught by its length).
                        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "closing a connection");
                            return;
                        }
                        Err(_) if slots.in_use() > 0 => {}
                        Err(_) => {
                            tracing::debug!(idle = ?config.idle_timeout, "closing an idle connection");
                            return;
                        }
                    }
                }
                let mut body = Vec::new();
                // A frame already whole in the buffer is read without a timer.
                let whole = buffered_whole(read.buffer());
                let frame = wire::read_frame(&mut read, config.max_frame, &mut body);
                let frame = if whole {
                    Ok(frame.await)
                } else {
                    tokio::time::timeout(config.frame_timeout, frame).await
                };
                match frame {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => return,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "closing a connection");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(
                            timeout = ?config.frame_timeout,
                            "closing a connection whose peer sent a frame too slowly"
                        );
                        return;
                    }
                }
                slots.take().await;
                let call = match wire::decode(&body) {
                    Ok(Frame::Call(call)) => call,
                    Ok(Frame::Reply(reply)) => {
                        let msg = "nodes accept only call frames, this was a reply";
                        refuse(reply.call_id, Status::BadFrame, msg);
                        continue;
                    }
                    Err(e) => match wire::peek_call_id(&body) {
                        Some(call_id) if e.is_recoverable() => {
                            refuse(call_id, Status::BadFrame, &e.to_string());
                            continue;
                        }
                        // Too short for a call id, but the peer speaks upshift
                        // and the framing is intact: say so on the connection.
                        None if e.is_recoverable() && wire::speaks_upshift(&body) => {
                            refuse(wire::CONNECTION_CALL_ID, Status::BadFrame, &e.to_string());
                            continue;
                        }
                        _ => {
                            tracing::warn!(error = %e, "closing a connection");
                            return;
                        }
                    },
                };
                if cached
                    .as_ref()
                    .is_none_or(|c| c.0 != generation() || c.1.name() != call.service)
                {
                    // Read the generation first: a racing install then only causes a refresh.
                    let seen = generation();
                    cached = self.service(call.service).map(|s| (seen, s));
                }
                let Some((_, service)) = &cached else {
                    let msg = format!("this node serves no service named {:?}", call.service);
                    refuse(call.call_id, Status::UnknownService, &msg);
                    continue;
                };
                let incoming = Incoming {
                    call_id: call.call_id,
                    version: call.version,
                    method: call.method,
                    payload_at: body.len() - call.payload.len(),
                    node_version: service.version(),
                    body,
                    replies: replies.clone(),
                    gate: None,
                    stats: None,
                    caller: caller.clone(),
                };
                if let Err((call, refusal)) = service.answer(incoming.version, incoming) {
                    call.refuse(refusal.status(), "");
                }
            }
        };
        // Going away: tell the client to send no more calls on this
        // connection and keep answering what it already sent (with
        // `Upgrading` once the service is quiesced). The client ends its side
        // once no call of its waits; reading then ends, and the connection
        // closes. `grace` bounds the wait for a client that never does.
        let going = async {
            let mut away = self.inner.going_away.subscribe();
            let Ok(grace) = away
                .wait_for(Option::is_some)
                .await
                .map(|g| g.unwrap_or_default())
            else {
                return std::future::pending().await;
            };
            // The writer frees a slot per frame it writes; this frame takes one too.
            slots.take().await;
            refuse(
                wire::CONNECTION_CALL_ID,
                Status::Upgrading,
                "the node is going away",
            );
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = reading => {}
            () = going => {}
        }
        drop(replies);
        let _ = writer.await;
    }
}

/// Whether `buffered` holds a whole frame: its length prefix and its body.
fn buffered_whole(buffered: &[u8]) -> bool {
    match buffered {
        [a, b, c, d, body @ ..] => body.len() >= u32::from_be_bytes([*a, *b, *c, *d]) as usize,
        _ => false,
    }
}
