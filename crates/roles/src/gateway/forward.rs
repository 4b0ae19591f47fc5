//! Forwarding: a request goes to its candidates in routing order until one answers with a
//! valid receipt; a provider that fails, times out or answers without a valid receipt is
//! marked down and the next is tried, so the client sees one answer. An error the provider
//! blames on the request itself is the client's answer. Every provider gets the client's
//! exact bytes (the model to serve, when the client named a subnet or a kind of model, goes in
//! the `x-hibana-model` header), so every receipt covers what the client sent.
//!
//! Load is bounded before the body is read: a request takes one of the gateway's
//! `max_in_flight` slots, and a provider gets at most a few requests per generation it decodes
//! together; past either bound (every provider of the model full) the answer is 429 with
//! `Retry-After` at once, never a queue. A refused request is not counted in the key's rate
//! limit nor in its usage.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{FromRequest, Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use hibana_types::{Hash, InferenceReceipt};
use serde::Deserialize;

use super::{
    auth::bearer,
    billing::{Billing, Hold, HoldError, Payer},
    providers::InFlight,
    receipts::{self, Expected},
    relay::stream_through,
    routing::Candidate,
    state::{BUSY_RETRY_AFTER_SECS, Gateway},
};
use crate::{
    keys::ApiKeyRecord,
    limits,
    openai::{ApiError, parse_body},
    provider::{MODEL_HEADER, RECEIPT_HEADER},
};

/// The fields of a request the gateway routes and bounds its cost by.
#[derive(Deserialize)]
struct Peek {
    model: Option<String>,
    #[serde(default)]
    stream: bool,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
}

/// Tokens a chat template adds to the messages (roles, markers, a default system prompt).
const TEMPLATE_TOKENS: u64 = 64;
/// Completion tokens a provider produces when the request names no maximum.
const DEFAULT_COMPLETION_TOKENS: u64 = 256;

/// The most prompt and completion tokens a request for `path` can be charged for, if it is
/// priced per token: a prompt has no more tokens than the request has bytes (every tokenizer
/// here spends at least a byte per token) plus a chat template's own, and a completion no more
/// than its `max_tokens`.
fn token_bound(path: &str, body: &[u8], peek: &Peek) -> Option<(u64, u64)> {
    let prompt = (body.len() as u64).saturating_add(TEMPLATE_TOKENS);
    match path {
        "/v1/embeddings" => Some((prompt, 0)),
        "/v1/chat/completions" | "/v1/completions" => Some((
            prompt,
            peek.max_completion_tokens
                .or(peek.max_tokens)
                .map_or(DEFAULT_COMPLETION_TOKENS, u64::from),
        )),
        _ => None,
    }
}

/// A request being billed: its payer and what it holds on the channels.
pub(super) struct Billed {
    pub(super) billing: Arc<Billing>,
    pub(super) payer: Payer,
    pub(super) hold: Hold,
    /// The provider is a miner outside the market: no bond backs its answers, so the gateway
    /// neither charges the client for them nor pays it (miners earn the subnet's emission).
    pub(super) free: bool,
}

/// Who pays for an answer: its key, and the key's channel when the gateway bills.
pub(super) struct Charge {
    pub(super) key: ApiKeyRecord,
    pub(super) billed: Option<Billed>,
}

impl Charge {
    /// Charges a checked receipt to the key's channel (or counts it in the key's usage when
    /// the gateway does not bill), before the answer is sent.
    pub(super) fn settle(&self, g: &Gateway, receipt: &InferenceReceipt) -> Result<(), String> {
        match (&self.billed, g.billing()) {
            (Some(b), _) => b.charge(receipt),
            (None, Some(billing)) => billing.record_unbilled(&self.key, receipt),
            (None, None) => {
                g.usage.record(&self.key, receipt);
                Ok(())
            }
        }
    }
}

impl Billed {
    /// Charges the answer's receipt before it is sent.
    pub(super) fn charge(&self, receipt: &InferenceReceipt) -> Result<(), String> {
        if self.free {
            let mut unpriced = receipt.clone();
            unpriced.body.price = hibana_types::Amount::ZERO;
            return self.billing.charge(&self.payer, &self.hold, &unpriced);
        }
        self.billing.charge(&self.payer, &self.hold, receipt)
    }
}

/// Forwards a request for `path` to the providers of its model.
pub(super) async fn forward(
    State(g): State<Arc<Gateway>>,
    request: Request,
    path: &'static str,
) -> Response {
    match forward_inner(g, request, path).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn forward_inner(
    g: Arc<Gateway>,
    request: Request,
    path: &'static str,
) -> Result<Response, ApiError> {
    let key = g.admission.authenticate(request.headers())?;
    // The secret signs the key's vouchers when the request is billed (see `billing`).
    let secret = bearer(request.headers()).unwrap_or_default().to_string();
    // The slot comes before the body is read, so the bodies held are bounded too; and before
    // the rate limit, so a refusal for load does not use up the key's minute.
    let slot = g.take_slot()?;
    g.admission.rate_limit(&key)?;
    let body = Bytes::from_request(request, &()).await?;
    let peek: Peek = parse_body(&body)?;
    // Only text generation streams; elsewhere providers answer in one piece whatever `stream`
    // says, which must not look like a broken stream.
    let streamed = peek.stream && matches!(path, "/v1/chat/completions" | "/v1/completions");
    let model = peek
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::invalid(Some("model"), "model is required"))?;
    let candidates = g.candidates(&model)?;
    let tokens = token_bound(path, &body, &peek);
    // A priced request is billed to the key's channel; a key without one gets 402 now.
    let billing = g.billing().filter(|_| tokens.is_some());
    let payer = match &billing {
        Some(b) => Some(b.payer(&key, &secret).await?),
        None => None,
    };
    let reads_chain = g.reads_chain();
    let mut failures = Vec::new();
    let mut full = 0usize;
    // The client's exact bytes go to every provider, so that the receipt, which covers the
    // request's hash, can be checked against what the client sent.
    let request_hash = Hash::digest(&body);
    for Candidate {
        provider: p,
        key: provider_key,
        model: serve,
        model_hash,
        terms,
    } in candidates
    {
        let url = format!("{}{}", p.url, path);
        // With a chain, who the provider is and what it may charge come from its
        // registration; what it says of itself only has to agree.
        if reads_chain {
            let Some(t) = &terms else {
                failures.push(format!("{}: not registered on chain", p.url));
                continue;
            };
            if t.address != provider_key.address() {
                failures.push(format!(
                    "{}: its key is not the one of {} registered on chain",
                    p.url, t.address
                ));
                continue;
            }
            if let Some(h) = model_hash
                && !t.models.contains(&h)
            {
                failures.push(format!("{}: model {h} is not registered on chain", p.url));
                continue;
            }
        }
        let expected = Expected {
            key: provider_key,
            request: request_hash,
            model: model_hash,
            // A miner outside the market names its own price; it is not charged (below). Proofs
            // and audits are priced per request, not per token, and are not charged either.
            price_per_token: terms
                .as_ref()
                .filter(|t| t.market && tokens.is_some())
                .map(|t| t.price_per_token),
            tokens,
        };
        let billed = match (&billing, &payer) {
            (Some(b), Some(payer)) => {
                let per_token = terms.as_ref().map_or(0, |t| t.price_per_token.0);
                let (prompt, completion) = tokens.unwrap_or_default();
                let most = per_token.saturating_mul(u128::from(prompt + completion));
                let priced = terms.as_ref().filter(|_| most > 0).map(|t| t.address);
                match b.hold(payer, priced, most) {
                    Ok(hold) => Some(Billed {
                        billing: b.clone(),
                        payer: payer.clone(),
                        hold,
                        free: !terms.as_ref().is_some_and(|t| t.market),
                    }),
                    Err(HoldError::Client(left)) => {
                        return Err(ApiError::payment_required(format!(
                            "The payment channel of key `{}` has {left} base units left that no request in flight holds; this request may cost up to {most}. Top it up with `hibana channel top-up`.",
                            key.name
                        )));
                    }
                    Err(HoldError::Provider) => {
                        failures.push(format!(
                            "{}: the gateway has no funded channel to it yet",
                            p.url
                        ));
                        continue;
                    }
                }
            }
            _ => None,
        };
        let Some(in_flight) = InFlight::try_new(&p, &slot) else {
            full += 1;
            continue;
        };
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
            Ok(resp) if resp.status().is_client_error() => {
                // The provider judged the request itself invalid: that verdict is the client's,
                // unpaid. Only an OpenAI error goes through, rebuilt from its fields, so a 4xx
                // cannot carry an answer around the receipt checks.
                let status = resp.status();
                let bytes = limits::read_body(resp, limits::MAX_ANSWER_BYTES)
                    .await
                    .unwrap_or_default();
                match client_error(&bytes) {
                    Some(error) => {
                        return Ok((
                            status,
                            [(header::CONTENT_TYPE, "application/json")],
                            error.to_string(),
                        )
                            .into_response());
                    }
                    None => Err(format!("{url}: HTTP {status} without an OpenAI error body")),
                }
            }
            Ok(resp) if !resp.status().is_success() => {
                Err(format!("{url}: unexpected HTTP {}", resp.status()))
            }
            Ok(resp) if streamed => {
                let charge = Charge {
                    key: key.clone(),
                    billed,
                };
                stream_through(&g, &p, resp, expected, charge, in_flight, body.clone()).await
            }
            Ok(resp) => whole_answer(
                &g,
                resp,
                &expected,
                &Charge {
                    key: key.clone(),
                    billed,
                },
            )
            .await
            .map(|(response, receipt, bytes)| {
                g.sample(&p, body.to_vec(), bytes, receipt);
                response
            })
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
    if full > 0 {
        // A retry can find a provider free again; a 502 would say the model is broken. The
        // refusal is the gateway's load, not the key's: it does not count in its rate limit.
        g.admission.refund(&key);
        return Err(ApiError::overloaded(
            format!(
                "The providers of `{model}` are busy: {full} already have as many requests as the gateway sends one provider{}. Retry after {BUSY_RETRY_AFTER_SECS} s.",
                if failures.is_empty() {
                    String::new()
                } else {
                    format!(", {} failed", failures.len())
                }
            ),
            BUSY_RETRY_AFTER_SECS,
        ));
    }
    Err(ApiError::server(
        StatusCode::BAD_GATEWAY,
        format!(
            "every provider of `{model}` failed: {}",
            failures.join("; ")
        ),
    ))
}

/// The OpenAI error in a provider's 4xx body, rebuilt from its short text fields only; `None`
/// if the body is not one.
fn client_error(bytes: &[u8]) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let e = v.get("error")?;
    let field = |k: &str| {
        e.get(k)
            .and_then(|x| x.as_str())
            .map(|x| x.chars().take(1_000).collect::<String>())
    };
    let message = field("message")?;
    Some(serde_json::json!({"error": {
        "message": message,
        "type": field("type"),
        "param": field("param"),
        "code": field("code"),
    }}))
}

/// A non-streamed answer, passed on with its receipt once the receipt checks out and the
/// answer is charged.
async fn whole_answer(
    g: &Gateway,
    resp: reqwest::Response,
    expected: &Expected,
    charge: &Charge,
) -> Result<(Response, InferenceReceipt, Vec<u8>), String> {
    let receipt_hex = resp
        .headers()
        .get(RECEIPT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or("no receipt in the answer")?;
    let bytes = limits::read_body(resp, limits::MAX_ANSWER_BYTES).await?;
    let receipt = receipts::check(&receipt_hex, expected, &Hash::digest(&bytes))?;
    charge.settle(g, &receipt)?;
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes.clone(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&receipt_hex) {
        response.headers_mut().insert(RECEIPT_HEADER, v);
    }
    Ok((response, receipt, bytes.to_vec()))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::{
        gateway::{GatewayConfig, IN_FLIGHT_PER_PROVIDER_SLOT, router},
        keys::KeyFile,
    };

    /// A gateway over `providers` serving at most `max_in_flight` requests, on loopback, with
    /// one key allowed a single request a minute; returns it, its URL and the key.
    async fn gateway(
        dir: &std::path::Path,
        providers: Vec<String>,
        max_in_flight: usize,
    ) -> (Arc<Gateway>, String, String) {
        let keys = KeyFile::new(dir.join("keys.json"));
        let account = hibana_types::SecretKey::generate().public_key().address();
        let (secret, _) = keys.create("k", account, 1).unwrap();
        let g = Arc::new(
            Gateway::new(GatewayConfig {
                providers,
                keys,
                request_timeout: Duration::from_secs(5),
                health_interval: Duration::from_secs(60),
                chain_rpc: None,
                miner_endpoints: Default::default(),
                max_in_flight,
                operator: None,
                provider_deposit: Default::default(),
                sampling: None,
            })
            .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = router(g.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (g, url, secret)
    }

    async fn embed(url: &str, key: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{url}/v1/embeddings"))
            .bearer_auth(key)
            .json(&json!({"model": "m", "input": "a"}))
            .send()
            .await
            .unwrap()
    }

    /// The answer is 429 with `Retry-After: 1` and an OpenAI error saying why.
    async fn assert_overloaded(response: reqwest::Response) -> Value {
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER).unwrap(),
            &BUSY_RETRY_AFTER_SECS.to_string()
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "server_overloaded", "{body}");
        assert_eq!(body["error"]["type"], "requests", "{body}");
        body
    }

    #[tokio::test]
    async fn a_request_past_the_gateway_bound_gets_429_at_once_and_costs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (g, url, key) = gateway(dir.path(), vec![], 1).await;
        let held = g.take_slot().unwrap();
        let body = assert_overloaded(embed(&url, &key).await).await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("serving 1 requests"),
            "{body}"
        );
        assert_eq!(g.usage.of("k").requests, 0);
        // Once the slot is free the same request gets through, and the refusal did not use
        // the key's one request a minute: the answer is the gateway's next verdict (no
        // provider serves `m`).
        drop(held);
        let response = embed(&url, &key).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let again = embed(&url, &key).await;
        assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
        let body: Value = again.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    }

    #[tokio::test]
    async fn a_provider_with_its_share_in_flight_gets_no_more_and_429_when_all_have() {
        // A port nothing listens on: a request sent there fails at once.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let dir = tempfile::tempdir().unwrap();
        let (g, url, key) = gateway(dir.path(), vec![closed], 64).await;
        let p = g.snapshot()[0].clone();
        let health = json!({
            "provider": hibana_types::SecretKey::generate().public_key(),
            "models": [{"id": "m", "hash": "00", "kind": "embedding"}],
            "active": 0,
            "capacity": 2,
        });
        let limit = 2 * IN_FLIGHT_PER_PROVIDER_SLOT;
        {
            let mut s = p.state.write();
            s.health = Some(serde_json::from_value(health).unwrap());
            s.healthy = true;
            s.in_flight = limit;
        }
        let body = assert_overloaded(embed(&url, &key).await).await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("busy"),
            "{body}"
        );
        assert_eq!(p.state.read().in_flight, limit);
        assert_eq!(p.state.read().failures, 0, "nothing was sent");
        // One below its share (and within the key's one request a minute, which the refusal
        // did not use), the provider is tried, and fails: nothing listens there.
        p.state.write().in_flight = limit - 1;
        let response = embed(&url, &key).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(p.state.read().failures, 1);
        assert_eq!(p.state.read().in_flight, limit - 1);
        assert_eq!(g.usage.of("k").requests, 0);
    }

    /// A provider's 4xx reaches the client only as an OpenAI error rebuilt from its fields, so
    /// it cannot smuggle an answer past the receipt checks; a 4xx without one is a failure.
    #[tokio::test]
    async fn a_providers_4xx_passes_only_as_an_openai_error() {
        let app = axum::Router::new()
            .route(
                "/smuggle/v1/embeddings",
                axum::routing::post(|| async {
                    (
                        StatusCode::BAD_REQUEST,
                        r#"{"error":{"message":"bad input","type":"invalid_request_error"},"data":[{"embedding":[1,2,3]}]}"#,
                    )
                }),
            )
            .route(
                "/bare/v1/embeddings",
                axum::routing::post(|| async { (StatusCode::BAD_REQUEST, r#"{"data":[]}"#) }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        for (path, expected) in [
            ("smuggle", StatusCode::BAD_REQUEST),
            ("bare", StatusCode::BAD_GATEWAY),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (g, url, key) = gateway(dir.path(), vec![format!("{base}/{path}")], 8).await;
            let p = g.snapshot()[0].clone();
            let health = json!({
                "provider": hibana_types::SecretKey::generate().public_key(),
                "models": [{"id": "m", "hash": "00", "kind": "embedding"}],
                "active": 0,
                "capacity": 1,
            });
            {
                let mut s = p.state.write();
                s.health = Some(serde_json::from_value(health).unwrap());
                s.healthy = true;
            }
            let response = embed(&url, &key).await;
            assert_eq!(response.status(), expected, "{path}");
            let body: Value = response.json().await.unwrap();
            assert!(body.get("data").is_none(), "{path}: {body}");
            if path == "smuggle" {
                assert_eq!(body["error"]["message"], "bad input", "{body}");
            }
            assert_eq!(g.usage.of("k").requests, 0);
        }
    }
}
