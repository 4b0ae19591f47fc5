//! The gateway role: an OpenAI-compatible API in front of providers. It authenticates API keys,
//! applies per-key rate limits, routes each request to a healthy provider serving the model,
//! retries another provider when one fails or times out, checks every receipt's signature and
//! hashes before answering, and keeps per-key usage. Providers whose last health check failed
//! are tried last rather than never: a check that timed out while the provider was busy must not
//! cost an answer when the healthy ones fail.
//!
//! With a chain to read (`chain_rpc`), the gateway also routes for the model network: the miners
//! of every subnet become providers, and a request naming a subnet (`"model": "chat"`, by name
//! or task) goes to one of its miners, picked at random with probability proportional to
//! `(incentive + 0.01) / ((1 + latency in s) × (1 + load)) × cheapest price / own price`, so
//! load spreads but the miners validators rate best get most requests; the rest are the
//! failover order. `"model": "<content hash>"` pins one model.

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
    /// JSON-RPC URL of a node, to route to the miners of the chain's subnets.
    pub chain_rpc: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct HealthModel {
    id: String,
    hash: String,
    /// `chat`, `completion`, `embedding`, `zk` or `audit`.
    #[serde(default)]
    kind: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Health {
    provider: PublicKey,
    models: Vec<HealthModel>,
    active: usize,
    capacity: usize,
    #[serde(default)]
    price_per_token: Option<serde_json::Value>,
}

impl Health {
    fn price(&self) -> Option<f64> {
        match self.price_per_token.as_ref()? {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// A provider's place in a subnet, read from the chain.
#[derive(Debug, Clone, serde::Serialize)]
struct Membership {
    subnet: String,
    task: String,
    uid: u16,
    /// Incentive from the last epoch, as a fraction.
    incentive: f64,
    /// The model hash it registered.
    model: String,
}

#[derive(Debug, Default)]
struct ProviderState {
    health: Option<Health>,
    healthy: bool,
    in_flight: usize,
    /// Moving average of answer latency, in milliseconds.
    latency_ms: Option<f64>,
    served: u64,
    failures: u64,
    subnets: Vec<Membership>,
}

#[derive(Debug)]
struct ProviderHandle {
    url: String,
    state: RwLock<ProviderState>,
}

/// A request counted in its provider's `in_flight` until dropped: when its answer is done, and
/// also when the client hangs up and the handler is dropped mid-request.
struct InFlight(Arc<ProviderHandle>);

impl InFlight {
    fn new(p: &Arc<ProviderHandle>) -> InFlight {
        p.state.write().in_flight += 1;
        InFlight(p.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state.write();
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

impl ProviderHandle {
    fn new(url: &str) -> Arc<ProviderHandle> {
        Arc::new(ProviderHandle {
            url: url.trim_end_matches('/').to_string(),
            state: RwLock::default(),
        })
    }

    fn served(&self, elapsed: Duration) {
        let mut s = self.state.write();
        let ms = elapsed.as_secs_f64() * 1e3;
        s.latency_ms = Some(s.latency_ms.map_or(ms, |old| 0.8 * old + 0.2 * ms));
        s.served += 1;
    }
}

/// Where a request goes: the provider, its key, and the model to ask it for when the client
/// named a subnet or a kind of model.
type Candidate = (Arc<ProviderHandle>, PublicKey, Option<String>);

struct KeyCache {
    loaded_at: Option<SystemTime>,
    by_hash: HashMap<Hash, ApiKeyRecord>,
}

/// The gateway's shared state.
pub struct Gateway {
    config: GatewayConfig,
    providers: RwLock<Vec<Arc<ProviderHandle>>>,
    chain: RwLock<Option<hibana_rpc::RpcClient>>,
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
    pub fn new(config: GatewayConfig) -> Result<Gateway, std::io::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(std::io::Error::other)?;
        let usage = config.keys.load_usage();
        let chain = match &config.chain_rpc {
            Some(url) => Some(connect(url)?),
            None => None,
        };
        Ok(Gateway {
            providers: RwLock::new(
                config
                    .providers
                    .iter()
                    .map(|url| ProviderHandle::new(url))
                    .collect(),
            ),
            chain: RwLock::new(chain),
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

    /// Routes for the subnets of the chain whose node answers JSON-RPC at `url`.
    pub fn connect_chain(&self, url: &str) -> Result<(), std::io::Error> {
        *self.chain.write() = Some(connect(url)?);
        Ok(())
    }

    /// Reads the subnets from the chain: every miner becomes a provider, with its incentive.
    pub async fn refresh_subnets(&self) {
        let Some(chain) = self.chain.read().clone() else {
            return;
        };
        let subnets = match chain.subnets().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the subnets");
                return;
            }
        };
        let mut found: HashMap<String, Vec<Membership>> = HashMap::new();
        for subnet in subnets {
            let Ok(Some(view)) = chain.subnet(&subnet.id.to_string()).await else {
                continue;
            };
            for n in view.neurons {
                if n.role != hibana_types::NeuronRole::Miner {
                    continue;
                }
                found
                    .entry(n.endpoint.trim_end_matches('/').to_string())
                    .or_default()
                    .push(Membership {
                        subnet: subnet.name.clone(),
                        task: subnet.task.clone(),
                        uid: n.uid,
                        incentive: n.incentive as f64 / hibana_runtime::subnets::epoch::ONE as f64,
                        model: n.model.to_string(),
                    });
            }
        }
        let mut providers = self.providers.write();
        for p in providers.iter() {
            p.state.write().subnets = found.remove(&p.url).unwrap_or_default();
        }
        for (url, memberships) in found {
            let handle = ProviderHandle::new(&url);
            handle.state.write().subnets = memberships;
            providers.push(handle);
        }
    }

    fn snapshot(&self) -> Vec<Arc<ProviderHandle>> {
        self.providers.read().clone()
    }

    /// Polls every provider's health once.
    pub async fn check_providers(&self) {
        for p in &self.snapshot() {
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
            // The scheme is case-insensitive (RFC 9110).
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
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
            // The oldest request in the window leaves it first.
            let waited = window
                .front()
                .map_or(0, |t| now.duration_since(*t).as_secs());
            return Err(ApiError::rate_limited(
                key.rate_limit_per_minute,
                60u64.saturating_sub(waited).max(1),
            ));
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

    /// Where to send a request for `model`: a subnet's miners in score order (see the module
    /// documentation), or the healthy providers serving that model name or hash, least loaded
    /// first; then those whose last health check failed, fewest failures first.
    fn candidates(&self, model: &str) -> Result<Vec<Candidate>, ApiError> {
        let providers = self.snapshot();
        let subnet_route = providers.iter().any(|p| {
            p.state
                .read()
                .subnets
                .iter()
                .any(|m| m.subnet == model || m.task == model)
        });
        if subnet_route {
            return self.subnet_candidates(&providers, model);
        }
        let mut known = false;
        let mut out = Vec::new();
        let mut standby = Vec::new();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = providers.len();
        for offset in 0..n {
            let p = &providers[(start + offset) % n.max(1)];
            let state = p.state.read();
            let Some(h) = &state.health else { continue };
            // A model named by id or hash goes as asked; one named by its kind (`audit`,
            // `chat`) goes to the provider's model of that kind, under its id.
            let target = match h.models.iter().find(|m| m.id == model || m.hash == model) {
                Some(_) => Some(None),
                None => h
                    .models
                    .iter()
                    .find(|m| m.kind == model)
                    .map(|m| Some(m.id.clone())),
            };
            if let Some(rewrite) = target {
                known = true;
                if state.healthy {
                    let load = (h.active + state.in_flight) * 1000 / h.capacity.max(1);
                    out.push((load, p.clone(), h.provider, rewrite));
                } else {
                    standby.push((state.failures, p.clone(), h.provider, rewrite));
                }
            }
        }
        if !known {
            return Err(ApiError::model_not_found(model));
        }
        // Stable sort keeps the round-robin order among equally loaded providers.
        out.sort_by_key(|(load, _, _, _)| *load);
        standby.sort_by_key(|(failures, _, _, _)| *failures);
        Ok(out
            .into_iter()
            .map(|(_, p, key, rewrite)| (p, key, rewrite))
            .chain(
                standby
                    .into_iter()
                    .map(|(_, p, key, rewrite)| (p, key, rewrite)),
            )
            .collect())
    }

    /// The healthy miners of the subnet named `name` (or serving task `name`), in a random
    /// order weighted by incentive, latency, load and price; then the unhealthy ones.
    fn subnet_candidates(
        &self,
        providers: &[Arc<ProviderHandle>],
        name: &str,
    ) -> Result<Vec<Candidate>, ApiError> {
        let mut rows = Vec::new();
        let mut standby = Vec::new();
        for p in providers {
            let state = p.state.read();
            let Some(m) = state
                .subnets
                .iter()
                .find(|m| m.subnet == name)
                .or_else(|| state.subnets.iter().find(|m| m.task == name))
            else {
                continue;
            };
            let Some(h) = &state.health else { continue };
            if !state.healthy {
                standby.push((
                    state.failures,
                    (p.clone(), h.provider, Some(m.model.clone())),
                ));
                continue;
            }
            let load = (h.active + state.in_flight) as f64 / h.capacity.max(1) as f64;
            let latency = state.latency_ms.unwrap_or(1000.0) / 1000.0;
            let weight = (m.incentive + 0.01) / ((1.0 + latency) * (1.0 + load));
            rows.push((weight, h.price(), p.clone(), h.provider, m.model.clone()));
        }
        if rows.is_empty() && standby.is_empty() {
            return Err(ApiError::server(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no miner of subnet `{name}` is available right now; retry later"),
            ));
        }
        standby.sort_by_key(|(failures, _)| *failures);
        let cheapest = rows
            .iter()
            .filter_map(|r| r.1)
            .fold(f64::INFINITY, f64::min);
        // Weighted sampling without replacement (Efraimidis–Spirakis): sort by u^(1/w).
        let mut rng = rand::thread_rng();
        let mut keyed: Vec<(f64, Candidate)> = rows
            .into_iter()
            .map(|(weight, price, p, key, model)| {
                let price_factor = match price {
                    Some(pr) if pr > 0.0 && cheapest.is_finite() => (cheapest + 1.0) / (pr + 1.0),
                    _ => 1.0,
                };
                let w = (weight * price_factor).max(1e-9);
                let u: f64 = rand::Rng::gen_range(&mut rng, f64::MIN_POSITIVE..1.0);
                (u.powf(1.0 / w), (p, key, Some(model)))
            })
            .collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(keyed
            .into_iter()
            .map(|(_, c)| c)
            .chain(standby.into_iter().map(|(_, c)| c))
            .collect())
    }

    fn mark_down(&self, p: &ProviderHandle) {
        let mut state = p.state.write();
        state.healthy = false;
        state.failures += 1;
    }
}

fn connect(url: &str) -> Result<hibana_rpc::RpcClient, std::io::Error> {
    hibana_rpc::RpcClient::new(url).map_err(|e| std::io::Error::other(e.to_string()))
}

type AppState = Arc<Gateway>;

/// The gateway's HTTP routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/v1/models", get(models))
        .route("/v1/usage", get(usage))
        .route("/v1/router", get(router_table))
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
        .route("/v1/audit", post(|s, h, b| forward(s, h, b, "/v1/audit")))
        .fallback(|| async { ApiError::unknown_endpoint() })
        .method_not_allowed_fallback(|| async { ApiError::wrong_method() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(gateway)
}

/// Serves the gateway on `addr` with background health checks and usage persistence.
pub async fn serve(
    gateway: Arc<Gateway>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    gateway.refresh_subnets().await;
    gateway.check_providers().await;
    let background = gateway.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(background.config.health_interval);
        loop {
            tick.tick().await;
            background.refresh_subnets().await;
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
    for p in &g.snapshot() {
        let state = p.state.read();
        if let (true, Some(h)) = (state.healthy, &state.health) {
            ids.extend(h.models.iter().map(|m| m.id.clone()));
            ids.extend(state.subnets.iter().map(|m| m.subnet.clone()));
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

/// The routing table: every provider with its health, subnets, latency and counts.
async fn router_table(
    State(g): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    g.admit(&headers)?;
    let rows: Vec<_> = g
        .snapshot()
        .iter()
        .map(|p| {
            let s = p.state.read();
            json!({
                "url": p.url,
                "healthy": s.healthy,
                "provider": s.health.as_ref().map(|h| h.provider),
                "models": s.health.as_ref().map(|h| h.models.iter().map(|m| m.id.clone()).collect::<Vec<_>>()),
                "subnets": s.subnets,
                "latency_ms": s.latency_ms,
                "in_flight": s.in_flight,
                "served": s.served,
                "failures": s.failures,
            })
        })
        .collect();
    Ok(Json(json!({"providers": rows})))
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
        retry_after: None,
    })?;
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
    for (p, provider_key, rewrite) in candidates {
        // A request for a subnet asks the miner for the model it registered.
        let body = match &rewrite {
            Some(m) => with_model(&body, m)?,
            None => body.clone(),
        };
        let request_hash = Hash::digest(&body);
        let url = format!("{}{}", p.url, path);
        let in_flight = InFlight::new(&p);
        let started = Instant::now();
        let send = || {
            g.http
                .post(&url)
                .header(header::CONTENT_TYPE, "application/json")
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
                let bytes = resp.bytes().await.unwrap_or_default();
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
                g.mark_down(&p);
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

/// The request body with its `model` replaced.
fn with_model(body: &Bytes, model: &str) -> Result<Bytes, ApiError> {
    let mut value: serde_json::Value = parse_body(body)?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("model".into(), serde_json::Value::String(model.to_string()));
    }
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| ApiError::invalid(None, format!("cannot re-encode the request: {e}")))
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
    p: &Arc<ProviderHandle>,
    resp: reqwest::Response,
    provider_key: PublicKey,
    request_hash: Hash,
    key: ApiKeyRecord,
    in_flight: InFlight,
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
    let p = p.clone();
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let mut client_left = false;
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
                            client_left = true;
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
            // A client that hangs up says nothing about the provider.
            Err(_) if client_left => {}
            Err(reason) => {
                tracing::warn!(%reason, "stream failed");
                g.mark_down(&p);
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

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Gateway>();
    let _ = unix_now();
}
