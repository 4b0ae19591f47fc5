//! The provider role: serves models over an OpenAI-shaped HTTP API and returns, with every
//! result, a receipt signed by the provider's key that binds the model, the exact request and
//! response bytes, the token counts and the price. With [`Provider::with_zk`] it also proves
//! inferences of compiled ZK models at `POST /v1/zk/infer` (see [`crate::zk`]); connected to a
//! chain, it trains the jobs its leases' clients submit (see [`jobs`]) and answers their batches
//! (see [`batch`]).
//!
//! One module per concern, each using only those listed before it: `state` (the [`Provider`],
//! its models and capacity), `receipts` (signing), then one module per endpoint family: `text`
//! (chat and completions), `embed` (embeddings), `proving` (ZK inference) and `auditing`
//! (Solidity audits), `jobs` (training jobs leased through the market), `batch` (batch
//! inference jobs leased through the market); this file wires them
//! to the HTTP routes and reports health.

mod auditing;
pub mod batch;
pub(crate) mod embed;
pub mod jobs;
pub mod payments;
mod proving;
mod receipts;
mod state;
pub(crate) mod text;

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    routing::{get, post, put},
};
use serde_json::json;

use self::{
    auditing::audit_contract,
    embed::embeddings,
    proving::zk_infer,
    state::{AppState, Loaded},
    text::{chat, completions},
};
pub use self::{
    receipts::{RECEIPT_COMMENT, RECEIPT_HEADER, StreamHasher},
    state::{MODEL_HEADER, Provider, ProviderConfig},
};
use crate::{
    audit::{self, AUDIT_MODEL},
    openai::ApiError,
};

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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
        .route("/v1/vouchers", post(payments::take_voucher))
        .route(
            "/v1/jobs/{id}/data",
            put(jobs::upload_data).layer(DefaultBodyLimit::max(jobs::MAX_DATASET_UPLOAD)),
        )
        .route("/v1/jobs/{id}", get(jobs::status))
        .route("/v1/jobs/{id}/params", get(jobs::params))
        .route(
            "/v1/batches/{id}/input",
            put(batch::upload_input).layer(DefaultBodyLimit::max(batch::MAX_BATCH_UPLOAD)),
        )
        .route("/v1/batches/{id}", get(batch::status))
        .route("/v1/batches/{id}/results", get(batch::results))
        .route("/v1/batches/{id}/lines/{line}", get(batch::line))
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
    let listener = crate::listen(addr)?;
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
