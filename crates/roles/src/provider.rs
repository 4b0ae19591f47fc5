//! The provider role: serves models over an OpenAI-shaped HTTP API and returns, with every
//! result, a receipt signed by the provider's key that binds the model, the exact request and
//! response bytes, the token counts and the price. With [`Provider::with_zk`] it also proves
//! inferences of compiled ZK models at `POST /v1/zk/infer` (see [`crate::zk`]).

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response, Sse, sse::Event},
    routing::{get, post},
};
use base64::Engine;
use hibana_ai::{
    catalog::{self, ModelInfo, ModelKind},
    embed::Embedder,
    text::{ChatMessage, FinishReason, GenerateParams, Generation, TextModel},
};
use hibana_types::{Amount, Hash, InferenceReceipt, PublicKey, ReceiptBody, SecretKey};
use hibana_zkml::ZkError;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    audit::{self, AUDIT_MODEL, AuditRequest},
    openai::{ApiError, ChatRequest, CompletionRequest, EmbeddingRequest, parse_body, unix_now},
    zk::{self, ZkInferRequest, ZkService},
};

/// Header carrying the hex receipt of a non-streamed answer.
pub const RECEIPT_HEADER: &str = "x-hibana-receipt";
/// Prefix of the SSE comment carrying the receipt at the end of a stream.
pub const RECEIPT_COMMENT: &str = "x-hibana-receipt ";
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What a provider serves and charges.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Names of installed models to load.
    pub models: Vec<String>,
    /// Folder of installed models.
    pub models_dir: std::path::PathBuf,
    /// Price per token (prompt and completion).
    pub price_per_token: Amount,
    /// Generations run at once; further requests wait.
    pub capacity: usize,
}

enum Loaded {
    Text(Arc<TextModel>),
    Embed(Arc<Embedder>),
}

struct Served {
    info: ModelInfo,
    model: Loaded,
}

/// A running provider's state.
pub struct Provider {
    key: SecretKey,
    models: BTreeMap<String, Served>,
    zk: ZkService,
    price_per_token: Amount,
    capacity: usize,
    permits: Arc<Semaphore>,
    /// Audits running at once: one per core (an audit is CPU-bound and quick).
    audit_permits: Arc<Semaphore>,
    active: AtomicUsize,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Provider({}, {:?})",
            self.key.public_key(),
            self.models.keys().collect::<Vec<_>>()
        )
    }
}

impl Provider {
    /// Loads the configured models.
    pub fn load(config: &ProviderConfig, key: SecretKey) -> Result<Provider, hibana_ai::AiError> {
        let capacity = config.capacity.max(1);
        let mut models = BTreeMap::new();
        for name in &config.models {
            let info = catalog::find(&config.models_dir, name)?;
            let model = match info.kind {
                ModelKind::Embedding => Loaded::Embed(Arc::new(Embedder::load(&info)?)),
                ModelKind::Chat | ModelKind::Completion => Loaded::Text(Arc::new(TextModel::load(
                    &info,
                    hibana_ai::text::LoadOptions {
                        parallel: capacity as u32,
                        ..Default::default()
                    },
                )?)),
            };
            models.insert(info.name.clone(), Served { info, model });
        }
        Ok(Provider {
            key,
            models,
            zk: ZkService::default(),
            price_per_token: config.price_per_token,
            capacity,
            permits: Arc::new(Semaphore::new(capacity)),
            audit_permits: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, usize::from),
            )),
            active: AtomicUsize::new(0),
        })
    }

    /// Also serves proved inference of these ZK models at `POST /v1/zk/infer`.
    pub fn with_zk(mut self, zk: ZkService) -> Provider {
        self.zk = zk;
        self
    }

    /// The provider's public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    fn find(&self, model: &str) -> Result<&Served, ApiError> {
        if let Some(s) = self.models.get(model) {
            return Ok(s);
        }
        if let Some(zk) = self.zk.find(model) {
            return Err(ApiError::invalid(
                Some("model"),
                format!("`{}` is a ZK model: use /v1/zk/infer", zk.name),
            ));
        }
        self.models
            .values()
            .find(|s| s.info.content_hash.to_string() == model)
            .ok_or_else(|| ApiError::model_not_found(model))
    }

    fn receipt(
        &self,
        model_hash: Hash,
        request: &[u8],
        response_hash: Hash,
        prompt: u32,
        completion: u32,
    ) -> InferenceReceipt {
        let tokens = u128::from(prompt) + u128::from(completion);
        ReceiptBody {
            provider: self.key.public_key(),
            model_hash,
            request_hash: Hash::digest(request),
            response_hash,
            prompt_tokens: prompt,
            completion_tokens: completion,
            price: Amount(self.price_per_token.0.saturating_mul(tokens)),
            timestamp_ms: unix_now().saturating_mul(1000),
        }
        .sign(&self.key)
    }
}

/// Hash of a stream as the receipt covers it: each `data:` payload followed by a newline.
#[derive(Default)]
pub struct StreamHasher(blake3::Hasher);

impl StreamHasher {
    /// Adds one data payload.
    pub fn add(&mut self, payload: &str) {
        self.0.update(payload.as_bytes());
        self.0.update(b"\n");
    }

    /// The hash so far.
    pub fn finish(&self) -> Hash {
        Hash(*self.0.finalize().as_bytes())
    }
}

struct TextJob {
    model: Arc<TextModel>,
    prompt: String,
    params: GenerateParams,
    prompt_tokens: u32,
}

fn validate_sampling(
    temperature: Option<f32>,
    top_p: Option<f32>,
    n: Option<u32>,
) -> Result<(f32, f32), ApiError> {
    let t = temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&t) || t.is_nan() {
        return Err(ApiError::invalid(
            Some("temperature"),
            format!("temperature {t} must be between 0 and 2"),
        ));
    }
    let p = top_p.unwrap_or(1.0);
    if !(p > 0.0 && p <= 1.0) {
        return Err(ApiError::invalid(
            Some("top_p"),
            format!("top_p {p} must be in (0, 1]"),
        ));
    }
    if n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid(Some("n"), "only n = 1 is supported"));
    }
    Ok((t, p))
}

/// Checks a text request against the model's context and fills in `params.max_tokens` from the
/// requested maximum (or `default_max`, capped by the room left after the prompt). Errors about
/// the prompt name `prompt_param`, the request field it came from.
fn prepare_text(
    model: &Arc<TextModel>,
    prompt: String,
    prompt_param: &'static str,
    max_tokens: Option<u32>,
    default_max: u32,
    mut params: GenerateParams,
) -> Result<TextJob, ApiError> {
    if prompt.is_empty() {
        return Err(ApiError::invalid(Some(prompt_param), "the prompt is empty"));
    }
    let ctx = model.context_length();
    let prompt_tokens = model
        .count_tokens(&prompt)
        .map_err(|e| ApiError::invalid(Some(prompt_param), e.to_string()))?;
    if prompt_tokens >= ctx {
        let mut e = ApiError::invalid(
            Some(prompt_param),
            format!(
                "This model's maximum context length is {ctx} tokens; the prompt has {prompt_tokens}."
            ),
        );
        e.code = Some("context_length_exceeded");
        return Err(e);
    }
    let room = ctx - prompt_tokens;
    let max_tokens = match max_tokens {
        Some(0) => {
            return Err(ApiError::invalid(
                Some("max_tokens"),
                "max_tokens must be at least 1",
            ));
        }
        Some(m) if m > room => {
            let mut e = ApiError::invalid(
                Some("max_tokens"),
                format!(
                    "max_tokens {m} exceeds the room left in the {ctx}-token context ({room} after the prompt)"
                ),
            );
            e.code = Some("context_length_exceeded");
            return Err(e);
        }
        Some(m) => m,
        None => default_max.min(room),
    };
    if params.stop.len() > 4 {
        return Err(ApiError::invalid(Some("stop"), "at most 4 stop sequences"));
    }
    params.max_tokens = max_tokens;
    Ok(TextJob {
        model: model.clone(),
        prompt,
        params,
        prompt_tokens,
    })
}

type AppState = Arc<Provider>;

/// Most tokens one embeddings request may hold (inputs are truncated to the model's 256 first):
/// about a minute of CPU here.
const MAX_EMBED_TOKENS: u64 = 65_536;

/// A request's work in progress: counted in the provider's `active` load, and holding its
/// capacity permit, until the work itself ends. Moved into the blocking task, so a
/// client that hangs up does not free capacity that is still in use.
struct Busy {
    provider: AppState,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Busy {
    /// Waits for a permit of `permits`, then counts the work as active.
    async fn acquire(provider: &AppState, permits: &Arc<Semaphore>) -> Result<Busy, ApiError> {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::server(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
        provider.active.fetch_add(1, Ordering::Relaxed);
        Ok(Busy {
            provider: provider.clone(),
            _permit: permit,
        })
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.provider.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Set when a request's handler is dropped (its client hung up, or it finished), so that its
/// generation stops at the next token.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The provider's HTTP routes.
pub fn router(provider: Arc<Provider>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/zk/infer", post(zk_infer))
        .route("/v1/audit", post(audit_contract))
        .fallback(|| async { ApiError::unknown_endpoint() })
        .method_not_allowed_fallback(|| async { ApiError::wrong_method() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(provider)
}

/// Serves the provider on `addr`; returns the bound address and the server task.
pub async fn serve(
    provider: Arc<Provider>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(provider);
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((local, task))
}

async fn health(State(p): State<AppState>) -> Json<serde_json::Value> {
    let mut models: Vec<_> = p
        .models
        .values()
        .map(|s| {
            json!({
                "id": s.info.name,
                "kind": s.info.kind,
                "hash": s.info.content_hash,
                "context_length": match &s.model { Loaded::Text(m) => Some(m.context_length()), Loaded::Embed(_) => None },
                // Prompt tokens answered from a KV stream's cached prefix instead of decoded.
                "reused_prompt_tokens": match &s.model { Loaded::Text(m) => Some(m.reused_prompt_tokens()), Loaded::Embed(_) => None },
            })
        })
        .collect();
    // ZK models are listed with the others, named by commitment, so a gateway routes
    // /v1/zk/infer by name or commitment exactly as it routes the other endpoints.
    models.extend(p.zk.models().iter().map(|m| {
        json!({
            "id": m.name,
            "kind": "zk",
            "hash": hex::encode(m.commitment),
            "input_shape": m.input_shape(),
            "output_shape": m.output_shape(),
        })
    }));
    // Every provider also runs the Solidity auditor, which needs no model files.
    models.push(json!({"id": AUDIT_MODEL, "kind": "audit", "hash": audit::engine_hash()}));
    Json(json!({
        "status": "ok",
        "provider": p.key.public_key(),
        "models": models,
        "active": p.active.load(Ordering::Relaxed),
        "capacity": p.capacity,
        "price_per_token": p.price_per_token,
    }))
}

async fn models(State(p): State<AppState>) -> Json<serde_json::Value> {
    let data: Vec<_> = p
        .models
        .values()
        .map(|s| s.info.name.as_str())
        .chain(p.zk.models().iter().map(|m| m.name.as_str()))
        .chain([AUDIT_MODEL])
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "hibana"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

fn body_or_error(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        let status = e.status();
        ApiError {
            status,
            message: format!("Invalid request body: {e}"),
            kind: "invalid_request_error",
            code: None,
            param: None,
            retry_after: None,
        }
    })
}

fn text_model(served: &Served, chat: bool) -> Result<&Arc<TextModel>, ApiError> {
    match (&served.model, served.info.kind) {
        (Loaded::Text(m), ModelKind::Chat) => Ok(m),
        (Loaded::Text(m), ModelKind::Completion) if !chat => Ok(m),
        (Loaded::Text(_), _) => Err(ApiError::invalid(
            Some("model"),
            format!(
                "`{}` is a base model without a chat template: use /v1/completions",
                served.info.name
            ),
        )),
        (Loaded::Embed(_), _) => Err(ApiError::invalid(
            Some("model"),
            format!(
                "`{}` is an embedding model: use /v1/embeddings",
                served.info.name
            ),
        )),
    }
}

async fn chat(
    State(p): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    match chat_inner(p, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn chat_inner(
    p: AppState,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_error(body)?;
    let req: ChatRequest = parse_body(&body)?;
    let served = p.find(&req.model)?;
    let model = text_model(served, true)?;
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "messages must not be empty",
        ));
    }
    for m in &req.messages {
        if !matches!(
            m.role.as_str(),
            "system" | "user" | "assistant" | "developer"
        ) {
            return Err(ApiError::invalid(
                Some("messages"),
                format!("unknown role {:?}", m.role),
            ));
        }
    }
    let (t, top_p) = validate_sampling(req.temperature, req.top_p, req.n)?;
    let messages: Vec<ChatMessage> = req
        .messages
        .iter()
        .map(|m| ChatMessage {
            role: m.role.clone(),
            content: m.content.clone(),
        })
        .collect();
    let prompt = model
        .apply_chat_template(&messages)
        .map_err(|e| ApiError::invalid(Some("messages"), e.to_string()))?;
    let job = prepare_text(
        model,
        prompt,
        "messages",
        req.max_completion_tokens.or(req.max_tokens),
        256,
        GenerateParams {
            max_tokens: 0,
            temperature: t,
            top_p,
            seed: req.seed.unwrap_or(0),
            stop: req.stop.map(|s| s.into_vec()).unwrap_or_default(),
        },
    )?;
    let info = served.info.clone();
    let id = format!("chatcmpl-{}", hex::encode(rand::random::<[u8; 12]>()));
    respond_text(p, info, job, body, id, req.stream, true).await
}

/// Runs a prepared text job and answers it: as an event stream, or as one chat completion
/// (`chat`) or text completion, with the signed receipt.
async fn respond_text(
    p: AppState,
    info: ModelInfo,
    job: TextJob,
    body: Bytes,
    id: String,
    stream: bool,
    chat: bool,
) -> Result<Response, ApiError> {
    if stream {
        return Ok(stream_text(p, info, job, body, id, chat));
    }
    let (generation, prompt_tokens) = run_text(&p, job).await?;
    let (object, choice) = if chat {
        (
            "chat.completion",
            json!({"index": 0, "message": {"role": "assistant", "content": generation.text},
                   "logprobs": null, "finish_reason": finish(&generation.finish_reason)}),
        )
    } else {
        (
            "text_completion",
            json!({"index": 0, "text": generation.text,
                   "logprobs": null, "finish_reason": finish(&generation.finish_reason)}),
        )
    };
    let response = json!({
        "id": id,
        "object": object,
        "created": unix_now(),
        "model": info.name,
        "system_fingerprint": info.content_hash,
        "choices": [choice],
        "usage": usage(prompt_tokens, generation.completion_tokens),
    });
    Ok(answer(
        &p,
        &info,
        &body,
        response,
        prompt_tokens,
        generation.completion_tokens,
    ))
}

async fn completions(
    State(p): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    match completions_inner(p, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn completions_inner(
    p: AppState,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_error(body)?;
    let req: CompletionRequest = parse_body(&body)?;
    let served = p.find(&req.model)?;
    let model = text_model(served, false)?;
    let mut prompts = req.prompt.clone().into_vec();
    if prompts.len() != 1 {
        return Err(ApiError::invalid(
            Some("prompt"),
            "exactly one prompt is supported per request",
        ));
    }
    let prompt = prompts.remove(0);
    let (t, top_p) = validate_sampling(req.temperature, req.top_p, req.n)?;
    let job = prepare_text(
        model,
        prompt,
        "prompt",
        req.max_tokens,
        16,
        GenerateParams {
            max_tokens: 0,
            temperature: t,
            top_p,
            seed: req.seed.unwrap_or(0),
            stop: req.stop.map(|s| s.into_vec()).unwrap_or_default(),
        },
    )?;
    let info = served.info.clone();
    let id = format!("cmpl-{}", hex::encode(rand::random::<[u8; 12]>()));
    respond_text(p, info, job, body, id, req.stream, false).await
}

async fn embeddings(
    State(p): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    match embeddings_inner(p, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn embeddings_inner(
    p: AppState,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_error(body)?;
    let req: EmbeddingRequest = parse_body(&body)?;
    let served = p.find(&req.model)?;
    let Loaded::Embed(embedder) = &served.model else {
        return Err(ApiError::invalid(
            Some("model"),
            format!("`{}` is not an embedding model", served.info.name),
        ));
    };
    let inputs = req.input.clone().into_vec();
    if inputs.is_empty() || inputs.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            Some("input"),
            "input must be a non-empty string or a list of non-empty strings",
        ));
    }
    if inputs.len() > 2048 {
        return Err(ApiError::invalid(
            Some("input"),
            "at most 2048 inputs per request",
        ));
    }
    let base64_format = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                Some("encoding_format"),
                format!("unknown encoding_format {other:?}"),
            ));
        }
    };
    let embedder = embedder.clone();
    let busy = Busy::acquire(&p, &p.permits).await?;
    let result = tokio::task::spawn_blocking(move || {
        let _busy = busy;
        embedder.embed_at_most(&inputs, MAX_EMBED_TOKENS)
    })
    .await;
    let (vectors, tokens) = result
        .map_err(|e| ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::invalid(Some("input"), e.to_string()))?;
    let data: Vec<_> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64_format {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let info = served.info.clone();
    let response = json!({
        "object": "list",
        "data": data,
        "model": info.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    Ok(answer(&p, &info, &body, response, tokens, 0))
}

async fn zk_infer(
    State(p): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    match zk_infer_inner(p, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn zk_infer_inner(
    p: AppState,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_error(body)?;
    let req: ZkInferRequest = parse_body(&body)?;
    let served =
        p.zk.find(&req.model)
            .ok_or_else(|| ApiError::model_not_found(&req.model))?;
    let job = zk::prepare(served, &req)?;
    let name = served.name.clone();
    let model_hash = Hash(served.commitment);
    let busy = Busy::acquire(&p, &p.zk.permits).await?;
    let result = tokio::task::spawn_blocking(move || {
        let _busy = busy;
        zk::prove(&job, &name)
    })
    .await;
    let response = result
        .map_err(|e| ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| match e {
            // Only input problems can remain after `prepare`; anything else is ours.
            ZkError::InputShape { .. }
            | ZkError::InputValue { .. }
            | ZkError::ActivationOverflow { .. } => ApiError::invalid(Some("input"), e.to_string()),
            other => ApiError::server(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("proving failed: {other}"),
            ),
        })?;
    let bytes = serde_json::to_vec(&response).unwrap_or_default();
    let receipt = ReceiptBody {
        provider: p.key.public_key(),
        model_hash,
        request_hash: Hash::digest(&body),
        response_hash: Hash::digest(&bytes),
        prompt_tokens: 0,
        completion_tokens: 0,
        price: p.zk.price_per_proof,
        timestamp_ms: unix_now().saturating_mul(1000),
    }
    .sign(&p.key);
    let mut r = (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&receipt.to_hex()) {
        r.headers_mut().insert(RECEIPT_HEADER, v);
    }
    Ok(r)
}

async fn audit_contract(
    State(p): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    match audit_inner(p, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn audit_inner(
    p: AppState,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_error(body)?;
    let req: AuditRequest = parse_body(&body)?;
    let engine = audit::engine_hash();
    if req.model != AUDIT_MODEL && req.model != engine.to_string() {
        return Err(ApiError::model_not_found(&req.model));
    }
    audit::validate(&req)?;
    let busy = Busy::acquire(&p, &p.audit_permits).await?;
    let result = tokio::task::spawn_blocking(move || {
        let _busy = busy;
        audit::run(&req)
    })
    .await;
    let (answer, tokens) =
        result.map_err(|e| ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(signed_answer(&p, engine, &body, answer, tokens, 0))
}

fn finish(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

fn usage(prompt: u32, completion: u32) -> serde_json::Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

async fn run_text(p: &AppState, job: TextJob) -> Result<(Generation, u32), ApiError> {
    let busy = Busy::acquire(p, &p.permits).await?;
    let prompt_tokens = job.prompt_tokens;
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(cancelled.clone());
    let result = tokio::task::spawn_blocking(move || {
        let _busy = busy;
        job.model.generate(&job.prompt, &job.params, &mut |_| {
            !cancelled.load(Ordering::Relaxed)
        })
    })
    .await;
    let generation = result
        .map_err(|e| ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::invalid(None, e.to_string()))?;
    Ok((generation, prompt_tokens))
}

/// A JSON answer with its receipt header.
fn answer(
    p: &Provider,
    info: &ModelInfo,
    request: &[u8],
    response: serde_json::Value,
    prompt: u32,
    completion: u32,
) -> Response {
    signed_answer(p, info.content_hash, request, response, prompt, completion)
}

/// A JSON answer with the receipt of `model_hash` in its header.
fn signed_answer(
    p: &Provider,
    model_hash: Hash,
    request: &[u8],
    response: serde_json::Value,
    prompt: u32,
    completion: u32,
) -> Response {
    let bytes = serde_json::to_vec(&response).unwrap_or_default();
    let receipt = p.receipt(
        model_hash,
        request,
        Hash::digest(&bytes),
        prompt,
        completion,
    );
    let mut r = (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&receipt.to_hex()) {
        r.headers_mut().insert(RECEIPT_HEADER, v);
    }
    r
}

/// Streams a generation as OpenAI chunks; the receipt comes as an SSE comment before `[DONE]`.
fn stream_text(
    p: AppState,
    info: ModelInfo,
    job: TextJob,
    request: Bytes,
    id: String,
    chat: bool,
) -> Response {
    let (events_tx, events_rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        let created = unix_now();
        let chunk = |content: Option<&str>,
                     finish_reason: Option<&str>,
                     first: bool|
         -> serde_json::Value {
            if chat {
                let mut delta = serde_json::Map::new();
                if first {
                    delta.insert("role".into(), json!("assistant"));
                }
                if let Some(c) = content {
                    delta.insert("content".into(), json!(c));
                }
                json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": info.name,
                       "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]})
            } else {
                json!({"id": id, "object": "text_completion", "created": created, "model": info.name,
                       "choices": [{"index": 0, "text": content.unwrap_or(""), "logprobs": null, "finish_reason": finish_reason}]})
            }
        };
        let mut hasher = StreamHasher::default();
        let send = |payload: String, hasher: &mut StreamHasher| {
            hasher.add(&payload);
            Event::default().data(payload)
        };
        let Ok(busy) = Busy::acquire(&p, &p.permits).await else {
            return;
        };
        if chat {
            let first = chunk(None, None, true).to_string();
            if events_tx.send(Ok(send(first, &mut hasher))).await.is_err() {
                return;
            }
        }
        let (piece_tx, mut piece_rx) = mpsc::channel::<String>(256);
        let prompt_tokens = job.prompt_tokens;
        let generation = tokio::task::spawn_blocking(move || {
            let _busy = busy;
            job.model.generate(&job.prompt, &job.params, &mut |piece| {
                piece_tx.blocking_send(piece.to_string()).is_ok()
            })
        });
        while let Some(piece) = piece_rx.recv().await {
            let payload = chunk(Some(&piece), None, false).to_string();
            if events_tx
                .send(Ok(send(payload, &mut hasher)))
                .await
                .is_err()
            {
                // The client left: dropping the receiver stops the generation.
                break;
            }
        }
        drop(piece_rx);
        let result = generation.await;
        match result {
            Ok(Ok(generation)) => {
                let mut last = chunk(None, Some(finish(&generation.finish_reason)), false);
                if let Some(obj) = last.as_object_mut() {
                    obj.insert(
                        "usage".into(),
                        usage(prompt_tokens, generation.completion_tokens),
                    );
                }
                let _ = events_tx
                    .send(Ok(send(last.to_string(), &mut hasher)))
                    .await;
                let receipt = p.receipt(
                    info.content_hash,
                    &request,
                    hasher.finish(),
                    prompt_tokens,
                    generation.completion_tokens,
                );
                let _ = events_tx
                    .send(Ok(
                        Event::default().comment(format!("{RECEIPT_COMMENT}{}", receipt.to_hex()))
                    ))
                    .await;
                let _ = events_tx.send(Ok(Event::default().data("[DONE]"))).await;
            }
            Ok(Err(e)) => {
                let err = ApiError::invalid(None, e.to_string()).body().to_string();
                let _ = events_tx.send(Ok(Event::default().data(err))).await;
            }
            Err(e) => {
                let err = ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                    .body()
                    .to_string();
                let _ = events_tx.send(Ok(Event::default().data(err))).await;
            }
        }
    });
    Sse::new(ReceiverStream::new(events_rx)).into_response()
}
