//! The gateway role: an OpenAI-compatible API in front of providers. It authenticates API keys,
//! applies per-key rate limits, routes each request to a healthy provider serving the model,
//! retries another provider when one fails or times out, checks every receipt's signature and
//! hashes before answering, and keeps per-key usage.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use futures_util::StreamExt;
use hibana_types::{Hash, InferenceReceipt, PublicKey};
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    keys::{ApiKeyRecord, KeyFile, KeyUsage, key_hash},
    openai::{ApiError, parse_body, unix_now},
    provider::{MAX_BODY_BYTES, RECEIPT_COMMENT, RECEIPT_HEADER, StreamHasher},
};

/// How the gateway reaches providers.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Provider base URLs.
    pub providers: Vec<String>,
    /// The API key file.
    pub keys: KeyFile,
    /// Time allowed for a whole non-streamed answer, and between two chunks of a stream.
    pub request_timeout: Duration,
    /// Interval of provider health checks.
    pub health_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
struct HealthModel {
    id: String,
    hash: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Health {
    provider: PublicKey,
    models: Vec<HealthModel>,
    active: usize,
    capacity: usize,
}

#[derive(Debug, Default)]
struct ProviderState {
    health: Option<Health>,
    healthy: bool,
    in_flight: usize,
}

#[derive(Debug)]
struct ProviderHandle {
    url: String,
    state: RwLock<ProviderState>,
}

struct KeyCache {
    loaded_at: Option<SystemTime>,
    by_hash: HashMap<Hash, ApiKeyRecord>,
}

/// The gateway's shared state.
pub struct Gateway {
    config: GatewayConfig,
    providers: Vec<ProviderHandle>,
    http: reqwest::Client,
    next: AtomicUsize,
    keys: Mutex<KeyCache>,
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
    usage: Mutex<BTreeMap<String, KeyUsage>>,
    usage_dirty: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gateway({:?})", self.config.providers)
    }
}

impl Gateway {
    /// A gateway over the configured providers.
    pub fn new(config: GatewayConfig) -> Result<Gateway, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        let usage = config.keys.load_usage();
        Ok(Gateway {
            providers: config
                .providers
                .iter()
                .map(|url| ProviderHandle {
                    url: url.trim_end_matches('/').to_string(),
                    state: RwLock::default(),
                })
                .collect(),
            config,
            http,
            next: AtomicUsize::new(0),
            keys: Mutex::new(KeyCache {
                loaded_at: None,
                by_hash: HashMap::new(),
            }),
            windows: Mutex::new(HashMap::new()),
            usage: Mutex::new(usage),
            usage_dirty: Default::default(),
        })
    }

    /// Polls every provider's health once.
    pub async fn check_providers(&self) {
        for p in &self.providers {
            let health = self
                .http
                .get(format!("{}/health", p.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            let health = match health {
                Some(r) => r.json::<Health>().await.ok(),
                None => None,
            };
            let mut state = p.state.write();
            state.healthy = health.is_some();
            if let Some(h) = health {
                // The first key seen is pinned: a provider that changes keys is a different one.
                if state
                    .health
                    .as_ref()
                    .is_some_and(|old| old.provider != h.provider)
                {
                    tracing::warn!(url = %p.url, "provider key changed; ignoring it");
                    state.healthy = false;
                    continue;
                }
                state.health = Some(h);
            }
        }
    }

    /// Authenticates the request's key and counts it against the key's rate limit.
    fn admit(&self, headers: &HeaderMap) -> Result<ApiKeyRecord, ApiError> {
        let key = self.authenticate(headers)?;
        self.rate_limit(&key)?;
        Ok(key)
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<ApiKeyRecord, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::bad_key)?;
        let mut cache = self.keys.lock();
        let modified = std::fs::metadata(self.config.keys.path())
            .and_then(|m| m.modified())
            .ok();
        if cache.loaded_at.is_none() || modified != cache.loaded_at {
            match self.config.keys.load() {
                Ok(keys) => {
                    cache.by_hash = keys.into_iter().map(|k| (k.key_hash, k)).collect();
                    cache.loaded_at = modified;
                }
                Err(e) => tracing::error!(error = %e, "cannot read the API keys"),
            }
        }
        match cache.by_hash.get(&key_hash(token)) {
            Some(k) if !k.revoked => Ok(k.clone()),
            _ => Err(ApiError::bad_key()),
        }
    }

    fn rate_limit(&self, key: &ApiKeyRecord) -> Result<(), ApiError> {
        let mut windows = self.windows.lock();
        let window = windows.entry(key.name.clone()).or_default();
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            window.pop_front();
        }
        if window.len() >= key.rate_limit_per_minute as usize {
            return Err(ApiError::rate_limited(key.rate_limit_per_minute));
        }
        window.push_back(now);
        Ok(())
    }

    fn record_usage(&self, key: &ApiKeyRecord, receipt: &InferenceReceipt) {
        let mut usage = self.usage.lock();
        let u = usage.entry(key.name.clone()).or_default();
        u.requests += 1;
        u.prompt_tokens += u64::from(receipt.body.prompt_tokens);
        u.completion_tokens += u64::from(receipt.body.completion_tokens);
        u.spent = u.spent.checked_add(receipt.body.price).unwrap_or(u.spent);
        self.usage_dirty.store(true, Ordering::Relaxed);
    }

    fn save_usage(&self) {
        if !self.usage_dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let snapshot = self.usage.lock().clone();
        let path = self.config.keys.usage_path();
        let tmp = path.with_extension("json.tmp");
        if let Ok(bytes) = serde_json::to_vec_pretty(&snapshot)
            && std::fs::write(&tmp, bytes).is_ok()
        {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    /// Healthy providers serving `model` (by name or content hash), least loaded first.
    fn candidates(&self, model: &str) -> Result<Vec<(usize, PublicKey)>, ApiError> {
        let mut known = false;
        let mut out = Vec::new();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.providers.len();
        for offset in 0..n {
            let i = (start + offset) % n.max(1);
            let state = self.providers[i].state.read();
            let Some(h) = &state.health else { continue };
            if h.models.iter().any(|m| m.id == model || m.hash == model) {
                known = true;
                if state.healthy {
                    let load = (h.active + state.in_flight) * 1000 / h.capacity.max(1);
                    out.push((load, i, h.provider));
                }
            }
        }
        if out.is_empty() {
            return Err(if known {
                ApiError::server(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("no provider of `{model}` is available right now; retry later"),
                )
            } else {
                ApiError::model_not_found(model)
            });
        }
        // Stable sort keeps the round-robin order among equally loaded providers.
        out.sort_by_key(|(load, _, _)| *load);
        Ok(out.into_iter().map(|(_, i, key)| (i, key)).collect())
    }

    fn mark_down(&self, i: usize) {
        self.providers[i].state.write().healthy = false;
    }
}

type AppState = Arc<Gateway>;

/// The gateway's HTTP routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/v1/models", get(models))
        .route("/v1/usage", get(usage))
        .route(
            "/v1/chat/completions",
            post(|s, h, b| forward(s, h, b, "/v1/chat/completions")),
        )
        .route(
            "/v1/completions",
            post(|s, h, b| forward(s, h, b, "/v1/completions")),
        )
        .route(
            "/v1/embeddings",
            post(|s, h, b| forward(s, h, b, "/v1/embeddings")),
        )
        .route(
            "/v1/zk/infer",
            post(|s, h, b| forward(s, h, b, "/v1/zk/infer")),
        )
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                message: "Unknown endpoint.".into(),
                kind: "invalid_request_error",
                code: None,
                param: None,
            }
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(gateway)
}

/// Serves the gateway on `addr` with background health checks and usage persistence.
pub async fn serve(
    gateway: Arc<Gateway>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    gateway.check_providers().await;
    let background = gateway.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(background.config.health_interval);
        loop {
            tick.tick().await;
            background.check_providers().await;
            background.save_usage();
        }
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(gateway);
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((local, task))
}

async fn models(
    State(g): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    g.admit(&headers)?;
    let mut ids = std::collections::BTreeSet::new();
    for p in &g.providers {
        let state = p.state.read();
        if let (true, Some(h)) = (state.healthy, &state.health) {
            ids.extend(h.models.iter().map(|m| m.id.clone()));
        }
    }
    let data: Vec<_> = ids
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "hibana"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

async fn usage(
    State(g): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key = g.admit(&headers)?;
    let usage = g.usage.lock().get(&key.name).cloned().unwrap_or_default();
    Ok(Json(
        json!({"key": key.name, "account": key.account, "usage": usage}),
    ))
}

#[derive(Deserialize)]
struct Peek {
    model: Option<String>,
    #[serde(default)]
    stream: bool,
}

async fn forward(
    State(g): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    path: &'static str,
) -> Response {
    match forward_inner(g, headers, body, path).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn forward_inner(
    g: AppState,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    path: &'static str,
) -> Result<Response, ApiError> {
    let key = g.admit(&headers)?;
    let body = body.map_err(|e| ApiError {
        status: e.status(),
        message: format!("Invalid request body: {e}"),
        kind: "invalid_request_error",
        code: None,
        param: None,
    })?;
    let peek: Peek = parse_body(&body)?;
    let model = peek
        .model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::invalid(Some("model"), "model is required"))?;
    let candidates = g.candidates(&model)?;
    let request_hash = Hash::digest(&body);
    let mut failures = Vec::new();
    for (i, provider_key) in candidates {
        let url = format!("{}{}", g.providers[i].url, path);
        g.providers[i].state.write().in_flight += 1;
        let attempt = g
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .timeout(if peek.stream {
                Duration::from_secs(3600)
            } else {
                g.config.request_timeout
            })
            .send()
            .await;
        let result = match attempt {
            Err(e) => Err(format!("{url}: {e}")),
            Ok(resp) if resp.status().is_server_error() => {
                Err(format!("{url}: HTTP {}", resp.status()))
            }
            Ok(resp) if !resp.status().is_success() => {
                // The provider judged the request itself invalid: that answer is the client's.
                let status = resp.status();
                let bytes = resp.bytes().await.unwrap_or_default();
                g.providers[i].state.write().in_flight -= 1;
                return Ok(
                    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
                );
            }
            Ok(resp) if peek.stream => {
                stream_through(&g, i, resp, provider_key, request_hash, key.clone()).await
            }
            Ok(resp) => whole_answer(&g, resp, provider_key, request_hash, &key)
                .await
                .map_err(|e| format!("{url}: {e}")),
        };
        if !peek.stream || result.is_err() {
            g.providers[i].state.write().in_flight -= 1;
        }
        match result {
            Ok(response) => return Ok(response),
            Err(reason) => {
                tracing::warn!(%reason, "provider failed; trying another");
                g.mark_down(i);
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
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    let receipt = InferenceReceipt::from_hex(&receipt_hex).map_err(|e| e.to_string())?;
    receipt
        .verify(&provider_key, &request_hash, &Hash::digest(&bytes))
        .map_err(|e| e.to_string())?;
    g.record_usage(key, &receipt);
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

/// Relays a provider's event stream to the client, hashing what passes; the receipt at the end
/// must cover exactly that. Fails (so another provider is tried) only if nothing was relayed yet.
async fn stream_through(
    g: &AppState,
    i: usize,
    resp: reqwest::Response,
    provider_key: PublicKey,
    request_hash: Hash,
    key: ApiKeyRecord,
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
        match tokio::time::timeout(idle, upstream.next()).await {
            Ok(Some(Ok(chunk))) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Some(Err(e))) => return Err(format!("stream broke before the first event: {e}")),
            Ok(None) => return Err("stream ended before the first event".into()),
            Err(_) => return Err("no event within the timeout".into()),
        }
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let g = g.clone();
    tokio::spawn(async move {
        let mut hasher = StreamHasher::default();
        let mut pending = vec![first];
        let mut done = false;
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
                        if tx
                            .send(Ok(Bytes::from(format!("data: {data}\n\n"))))
                            .await
                            .is_err()
                        {
                            outcome = Err("client disconnected".into());
                            break 'relay;
                        }
                    } else if let Some(hex) = line
                        .strip_prefix(':')
                        .and_then(|c| c.trim_start().strip_prefix(RECEIPT_COMMENT.trim_end()))
                    {
                        {
                            outcome = InferenceReceipt::from_hex(hex.trim())
                                .map_err(|e| e.to_string())
                                .and_then(|r| {
                                    r.verify(&provider_key, &request_hash, &hasher.finish())
                                        .map_err(|e| e.to_string())?;
                                    g.record_usage(&key, &r);
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
            }
            if done {
                break;
            }
            match tokio::time::timeout(idle, upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
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
            Err(reason) => {
                tracing::warn!(%reason, "stream failed");
                g.mark_down(i);
                let err = ApiError::server(
                    StatusCode::BAD_GATEWAY,
                    format!("the stream failed: {reason}"),
                )
                .body();
                let _ = tx.send(Ok(Bytes::from(format!("data: {err}\n\n")))).await;
            }
        }
        g.providers[i].state.write().in_flight -= 1;
    });
    let body = Body::from_stream(ReceiverStream::new(rx));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .map_err(|e| e.to_string())
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Gateway>();
    let _ = unix_now();
}
