//! The SSE relay: passes a provider's event stream to the client as it comes, hashing what
//! passes, and lets the stream end cleanly only if the receipt at its end covers exactly that.

use std::{convert::Infallible, sync::Arc};

use axum::{
    body::{Body, Bytes},
    http::{StatusCode, header},
    response::Response,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{
    forward::Charge,
    providers::{InFlight, ProviderHandle},
    receipts::{self, Expected},
    state::Gateway,
};
use crate::{
    limits,
    openai::ApiError,
    provider::{RECEIPT_COMMENT, StreamHasher},
};

/// Relays a provider's event stream to the client, hashing what passes; the receipt at the end
/// must cover exactly that. Fails (so another provider is tried) only if nothing was relayed yet.
pub(super) async fn stream_through(
    g: &Arc<Gateway>,
    p: &Arc<ProviderHandle>,
    resp: reqwest::Response,
    expected: Expected,
    charge: Charge,
    in_flight: InFlight,
    request: Bytes,
) -> Result<Response, String> {
    let idle = g.config.request_timeout;
    let mut upstream = resp.bytes_stream();
    let mut buffer = String::new();
    // Wait for the first event before committing to this provider.
    let first = loop {
        if let Some(pos) = buffer.find("\n\n") {
            let event = buffer[..pos].to_string();
            buffer.drain(..pos + 2);
            break event;
        }
        if buffer.len() > limits::MAX_EVENT_BYTES {
            return Err(format!(
                "an event of more than {} bytes",
                limits::MAX_EVENT_BYTES
            ));
        }
        match tokio::time::timeout(idle, upstream.next()).await {
            Ok(Some(Ok(chunk))) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Some(Err(e))) => return Err(format!("stream broke before the first event: {e}")),
            Ok(None) => return Err("stream ended before the first event".into()),
            Err(_) => return Err("no event within the timeout".into()),
        }
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let g = g.clone();
    let p = p.clone();
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let mut client_left = false;
        let mut hasher = StreamHasher::default();
        // The payloads as the receipt covers them, for a re-check (bounded like the stream).
        let mut transcript = Vec::new();
        let mut pending = vec![first];
        let mut done = false;
        let mut relayed = 0usize;
        let mut outcome: Result<(), String> =
            Err("the provider's stream ended without a receipt".into());
        'relay: loop {
            for event in pending.drain(..) {
                for line in event.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        let data = data.trim_start();
                        if data == "[DONE]" {
                            done = true;
                            continue;
                        }
                        hasher.add(data);
                        transcript.extend_from_slice(data.as_bytes());
                        transcript.push(b'\n');
                        if tx
                            .send(Ok(Bytes::from(format!("data: {data}\n\n"))))
                            .await
                            .is_err()
                        {
                            outcome = Err("client disconnected".into());
                            client_left = true;
                            break 'relay;
                        }
                    } else if let Some(hex) = line
                        .strip_prefix(':')
                        .and_then(|c| c.trim_start().strip_prefix(RECEIPT_COMMENT.trim_end()))
                    {
                        outcome = receipts::check(hex.trim(), &expected, &hasher.finish())
                            .and_then(|r| {
                                charge.settle(&g, &r)?;
                                g.sample(&p, request.to_vec(), std::mem::take(&mut transcript), r);
                                Ok(())
                            });
                        if outcome.is_ok() {
                            let _ = tx
                                .send(Ok(Bytes::from(format!(
                                    ": {RECEIPT_COMMENT}{}\n\n",
                                    hex.trim()
                                ))))
                                .await;
                        }
                    }
                }
            }
            if done {
                break;
            }
            if buffer.len() > limits::MAX_EVENT_BYTES || relayed > limits::MAX_STREAM_BYTES {
                outcome = Err(format!(
                    "the provider's stream passed the limits (an event of {} bytes, {} in all)",
                    limits::MAX_EVENT_BYTES,
                    limits::MAX_STREAM_BYTES
                ));
                break;
            }
            match tokio::time::timeout(idle, upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    relayed = relayed.saturating_add(chunk.len());
                    buffer.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(pos) = buffer.find("\n\n") {
                        pending.push(buffer[..pos].to_string());
                        buffer.drain(..pos + 2);
                    }
                }
                Ok(Some(Err(e))) => {
                    outcome = Err(format!("the provider's stream broke: {e}"));
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    outcome = Err("the provider stopped sending".into());
                    break;
                }
            }
        }
        match outcome {
            Ok(()) => {
                let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
            }
            // A client that hangs up says nothing about the provider.
            Err(_) if client_left => {}
            Err(reason) => {
                tracing::warn!(%reason, "stream failed");
                p.failed();
                let err = ApiError::server(
                    StatusCode::BAD_GATEWAY,
                    format!("the stream failed: {reason}"),
                )
                .body();
                let _ = tx.send(Ok(Bytes::from(format!("data: {err}\n\n")))).await;
            }
        }
    });
    let body = Body::from_stream(ReceiverStream::new(rx));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .map_err(|e| e.to_string())
}
