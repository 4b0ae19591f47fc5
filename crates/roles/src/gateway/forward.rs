//! Forwarding: a request goes to its candidates in routing order until one answers with a
//! valid receipt; a provider that fails, times out or answers without a valid receipt is
//! marked down and the next is tried, so the client sees one answer. An error the provider
//! blames on the request itself is the client's answer. Every provider gets the client's
//! exact bytes (the model to serve, when the client named a subnet or a kind of model, goes in
//! the `x-hibana-model` header), so every receipt covers what the client sent.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use hibana_types::{Hash, PublicKey};
use serde::Deserialize;

use super::{
    providers::InFlight, receipts, relay::stream_through, routing::Candidate, state::Gateway,
};
use crate::{
    keys::ApiKeyRecord,
    limits,
    openai::{ApiError, parse_body},
    provider::{MODEL_HEADER, RECEIPT_HEADER},
};

/// The fields of a request the gateway routes by.
#[derive(Deserialize)]
struct Peek {
    model: Option<String>,
    #[serde(default)]
    stream: bool,
}

/// Forwards a request for `path` to the providers of its model.
pub(super) async fn forward(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    path: &'static str,
) -> Response {
    match forward_inner(g, headers, body, path).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn forward_inner(
    g: Arc<Gateway>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    path: &'static str,
) -> Result<Response, ApiError> {
    let key = g.admission.admit(&headers)?;
    let body = body?;
    let peek: Peek = parse_body(&body)?;
    // Only text generation streams; elsewhere providers answer in one piece whatever `stream`
    // says, which must not look like a broken stream.
    let streamed = peek.stream && matches!(path, "/v1/chat/completions" | "/v1/completions");
    let model = peek
        .model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::invalid(Some("model"), "model is required"))?;
    let candidates = g.candidates(&model)?;
    let mut failures = Vec::new();
    // The client's exact bytes go to every provider, so that the receipt, which covers the
    // request's hash, can be checked against what the client sent.
    let request_hash = Hash::digest(&body);
    for Candidate {
        provider: p,
        key: provider_key,
        model: serve,
    } in candidates
    {
        let url = format!("{}{}", p.url, path);
        let in_flight = InFlight::new(&p);
        let started = Instant::now();
        let send = || {
            let request = p
                .http
                .post(&url)
                .header(header::CONTENT_TYPE, "application/json");
            // A request for a subnet or a kind of model names the model to serve beside the
            // body, not in it.
            let request = match &serve {
                Some(model) => request.header(MODEL_HEADER, model.as_str()),
                None => request,
            };
            request
                .body(body.clone())
                .timeout(if streamed {
                    Duration::from_secs(3600)
                } else {
                    g.config.request_timeout
                })
                .send()
        };
        let mut attempt = send().await;
        // A pooled connection the provider has just closed fails before any answer: one retry
        // on a fresh connection tells that apart from a provider that is down.
        if let Err(e) = &attempt
            && !e.is_timeout()
            && (e.is_connect() || e.is_request())
        {
            attempt = send().await;
        }
        let result = match attempt {
            Err(e) => Err(format!("{url}: {e}")),
            Ok(resp) if resp.status().is_server_error() => {
                Err(format!("{url}: HTTP {}", resp.status()))
            }
            Ok(resp) if !resp.status().is_success() => {
                // The provider judged the request itself invalid: that answer is the client's.
                let status = resp.status();
                let bytes = limits::read_body(resp, limits::MAX_ANSWER_BYTES)
                    .await
                    .unwrap_or_default();
                return Ok(
                    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
                );
            }
            Ok(resp) if streamed => {
                stream_through(
                    &g,
                    &p,
                    resp,
                    provider_key,
                    request_hash,
                    key.clone(),
                    in_flight,
                )
                .await
            }
            Ok(resp) => whole_answer(&g, resp, provider_key, request_hash, &key)
                .await
                .map_err(|e| format!("{url}: {e}")),
        };
        match result {
            Ok(response) => {
                p.served(started.elapsed());
                return Ok(response);
            }
            Err(reason) => {
                tracing::warn!(%reason, "provider failed; trying another");
                p.failed();
                failures.push(reason);
            }
        }
    }
    Err(ApiError::server(
        StatusCode::BAD_GATEWAY,
        format!(
            "every provider of `{model}` failed: {}",
            failures.join("; ")
        ),
    ))
}

/// A non-streamed answer, passed on with its receipt once the receipt checks out.
async fn whole_answer(
    g: &Gateway,
    resp: reqwest::Response,
    provider_key: PublicKey,
    request_hash: Hash,
    key: &ApiKeyRecord,
) -> Result<Response, String> {
    let receipt_hex = resp
        .headers()
        .get(RECEIPT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or("no receipt in the answer")?;
    let bytes = limits::read_body(resp, limits::MAX_ANSWER_BYTES).await?;
    let receipt = receipts::check(
        &receipt_hex,
        &provider_key,
        &request_hash,
        &Hash::digest(&bytes),
    )?;
    g.usage.record(key, &receipt);
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&receipt_hex) {
        response.headers_mut().insert(RECEIPT_HEADER, v);
    }
    Ok(response)
}
