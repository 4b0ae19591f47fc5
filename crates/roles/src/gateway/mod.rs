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
//! failover order. `"model": "<content hash>"` pins one model. A miner's endpoint is anyone's
//! to write, so miners at loopback, private or link-local addresses are left out unless the
//! configuration allows them (`miner_endpoints`; a devnet does).
//!
//! Load is bounded, never queued: at most `max_in_flight` inference requests at once
//! ([`DEFAULT_MAX_IN_FLIGHT`] by default), and at most [`IN_FLIGHT_PER_PROVIDER_SLOT`] per
//! generation a provider decodes together; a request past either bound gets 429 with
//! `Retry-After` before its body is read, and is counted neither in its key's rate limit nor in
//! its usage.
//!
//! One module per concern, each using only those listed before it: `providers` (what the
//! gateway knows of each provider), `auth` (API keys and rate limits), `usage`, `receipts`
//! (receipt checks), `health` (health checks), `subnets` (chain sync), `routing`, `state` (the
//! [`Gateway`] that holds them), `relay` (SSE), `forward` (retry and failover); this file wires
//! them to the HTTP routes.

mod auth;
mod billing;
mod forward;
mod health;
pub mod ledger;
mod providers;
mod receipts;
mod relay;
mod routing;
mod state;
mod subnets;
mod usage;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    http::HeaderMap,
    routing::{get, post},
};
use serde_json::json;

use self::forward::forward;
pub use self::{
    billing::{Billing, EXPIRY_MARGIN_BLOCKS},
    providers::IN_FLIGHT_PER_PROVIDER_SLOT,
    state::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_PROVIDER_DEPOSIT, Gateway, GatewayConfig, Sampling},
};
use crate::{openai::ApiError, provider::MAX_BODY_BYTES};

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
            post(|s, r| forward(s, r, "/v1/chat/completions")),
        )
        .route(
            "/v1/completions",
            post(|s, r| forward(s, r, "/v1/completions")),
        )
        .route(
            "/v1/embeddings",
            post(|s, r| forward(s, r, "/v1/embeddings")),
        )
        .route("/v1/zk/infer", post(|s, r| forward(s, r, "/v1/zk/infer")))
        .route("/v1/audit", post(|s, r| forward(s, r, "/v1/audit")))
        .fallback(|| async { ApiError::unknown_endpoint() })
        .method_not_allowed_fallback(|| async { ApiError::wrong_method() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors())
        .with_state(gateway)
}

/// Lets web pages of any origin (the node's dashboard, a user's own app) call the API, as
/// OpenAI's own API does: requests are authorised by their bearer key, never by cookies, so
/// a page learns nothing it could not fetch with the key itself. The receipt header is exposed
/// so a page can check it.
fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method, header};
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(crate::provider::MODEL_HEADER),
        ])
        .expose_headers([HeaderName::from_static(crate::provider::RECEIPT_HEADER)])
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
            background.usage.save();
        }
    });
    // Billing waits on the chain (a redemption, opening a channel): it runs beside the health
    // checks, never in their way.
    let billing = gateway.clone();
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(billing.config.health_interval.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            billing.billing_upkeep().await;
        }
    });
    let listener = crate::listen(addr)?;
    let local = listener.local_addr()?;
    let app = router(gateway);
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((local, task))
}

async fn models(
    State(g): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    g.admission.admit(&headers)?;
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
    let key = g.admission.admit(&headers)?;
    let usage = match g.billing() {
        Some(b) => b.ledger.usage(&key.name),
        None => g.usage.of(&key.name),
    };
    Ok(Json(
        json!({"key": key.name, "account": key.account, "usage": usage}),
    ))
}

/// The routing table: every provider with its health, subnets, latency and counts.
async fn router_table(
    State(g): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    g.admission.admit(&headers)?;
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
                "terms": s.terms,
                "latency_ms": s.latency_ms,
                "in_flight": s.in_flight,
                "served": s.served,
                "failures": s.failures,
            })
        })
        .collect();
    Ok(Json(json!({"providers": rows})))
}
