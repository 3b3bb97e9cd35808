//! One client connection: frames in, responses out, in request order.
//!
//! The reader decodes each request and starts it; its response (or, for
//! acks=0 produce, the absence of one) is queued for the writer, which sends
//! responses in the order the requests arrived. Produce requests are handed
//! to the log in arrival order before the next frame is read, so a
//! producer's pipelined batches keep their order, while their fsyncs overlap.
//! At most `max_in_flight` responses wait; then reading pauses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strata_protocol::frame::{check_frame_length, LENGTH_PREFIX};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tracing::debug;

use crate::handlers;
use crate::outgoing::PendingResponse;
use crate::peer::Peer;
use crate::Broker;

/// Kafka's `connections.max.idle.ms` default: an idle connection is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Bytes read per step while a frame arrives, so memory follows the bytes
/// actually received, not the length a client claims.
const READ_STEP: usize = 64 * 1024;

/// Serves one connection from `peer` until the client closes it, sends
/// something that cannot be parsed, or the broker shuts down.
pub async fn serve<S>(
    broker: Arc<Broker>,
    stream: S,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let peer = Peer::new(peer);
    let (mut reader, writer) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<PendingResponse>(broker.options.max_in_flight.max(1));
    let writer_task = tokio::spawn(write_responses(writer, rx));
    loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(IDLE_TIMEOUT, read_frame(&mut reader, broker.options.max_request_bytes)) => frame,
            _ = shutdown.changed() => break,
        };
        let frame = match frame {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => break,
            Ok(Err(reason)) => {
                debug!(%reason, "closing connection");
                break;
            }
            Err(_) => {
                debug!("closing idle connection");
                break;
            }
        };
        let Some(pending) = handlers::start(&broker, frame, &peer).await else {
            break;
        };
        if tx.send(pending).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer_task.await;
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Option<Bytes>, String> {
    let mut prefix = [0u8; LENGTH_PREFIX];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.to_string()),
    }
    let length = check_frame_length(i32::from_be_bytes(prefix), limit).map_err(|e| {
        crate::metrics::record_refused("frame_length");
        e.to_string()
    })?;
    let mut buf = BytesMut::new();
    while buf.len() < length {
        let step = (length - buf.len()).min(READ_STEP);
        buf.reserve(step);
        let mut chunk = reader.take(step as u64);
        let read = chunk.read_buf(&mut buf).await.map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("connection closed mid-frame".to_string());
        }
    }
    Ok(Some(buf.freeze()))
}

async fn write_responses<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<PendingResponse>,
) {
    while let Some(pending) = rx.recv().await {
        if let Some(mut response) = pending.await {
            if writer.write_all_buf(&mut response).await.is_err() {
                return;
            }
        }
    }
    let _ = writer.shutdown().await;
}
