//! The SQL endpoint over HTTP, served next to the indexer by `hibana devnet` and
//! `hibana analytics serve`.
//!
//! - `POST /sql` with `{"sql": "SELECT …", "format": "table|json|csv|parquet", "max_rows": n}`
//!   answers the rows in that format; a refused or failed query answers 400 with
//!   `{"error": "…"}` (408 past the time limit, 413 past the row limit).
//! - `POST /labels` with `{"address": "hib1…", "name": "…"}` names an address.
//! - `GET /tables` lists the tables and their columns; `GET /status` the indexed height.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;

use crate::{Format, SqlEngine, SqlError, SqlLimits, TableStore, tables::TABLES};

/// Most rows a request may ask for with `max_rows` (exports of a whole account history).
pub const MAX_ROWS_CEILING: usize = 1_000_000;

/// A running endpoint.
#[derive(Debug)]
pub struct AnalyticsServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The serving task.
    pub task: tokio::task::JoinHandle<()>,
}

struct Shared {
    engine: SqlEngine,
    store: TableStore,
}

/// A SQL request.
#[derive(Debug, Deserialize)]
pub struct SqlRequest {
    /// The query.
    pub sql: String,
    /// Output format (default `json`).
    #[serde(default)]
    pub format: Option<String>,
    /// Most rows (default: the server's limit; at most [`MAX_ROWS_CEILING`]).
    #[serde(default)]
    pub max_rows: Option<usize>,
}

/// A label request.
#[derive(Debug, Deserialize)]
pub struct LabelRequest {
    /// The address.
    pub address: String,
    /// Its name.
    pub name: String,
}

/// What an endpoint serves besides SQL, and to which web pages.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// Origins of the web pages allowed to call the endpoint from a browser (a node's
    /// dashboard, e.g. `http://127.0.0.1:26657`); none: no page of another origin may.
    pub allowed_origins: Vec<String>,
    /// More routes served on the same port (`POST /ask`, which needs the models).
    pub routes: Option<Router>,
}

/// Serves SQL over `store` on `addr` (port 0 picks a free one).
pub async fn serve(
    store: TableStore,
    limits: SqlLimits,
    addr: SocketAddr,
    options: ServeOptions,
) -> std::io::Result<AnalyticsServer> {
    let shared = Arc::new(Shared {
        engine: SqlEngine::new(store.clone(), limits),
        store,
    });
    let app = Router::new()
        .route("/sql", post(sql))
        .route("/labels", post(label))
        .route("/tables", get(tables))
        .route("/status", get(status))
        .with_state(shared)
        .merge(options.routes.unwrap_or_default())
        .layer(cors(&options.allowed_origins));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the analytics endpoint stopped");
        }
    });
    Ok(AnalyticsServer { addr, task })
}

/// Only the listed origins' pages may call the endpoint from a browser: it also names
/// addresses (`POST /labels`) and spends CPU on queries, which no other site should trigger.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn sql(State(shared): State<Arc<Shared>>, Json(req): Json<SqlRequest>) -> Response {
    let format = match req.format.as_deref().unwrap_or("json").parse::<Format>() {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let mut limits = shared.engine.limits();
    if let Some(n) = req.max_rows {
        limits.max_rows = n.min(MAX_ROWS_CEILING);
    }
    match shared.engine.with_limits(limits).query(&req.sql).await {
        Ok(result) => match result.render(format) {
            Ok(bytes) => ([(header::CONTENT_TYPE, format.content_type())], bytes).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        Err(e) => {
            let status = match e {
                SqlError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
                SqlError::TooManyRows(_) => StatusCode::PAYLOAD_TOO_LARGE,
                SqlError::Failed(_) | SqlError::Output(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            error(status, e.to_string())
        }
    }
}

async fn label(State(shared): State<Arc<Shared>>, Json(req): Json<LabelRequest>) -> Response {
    match shared.store.set_label(&req.address, &req.name) {
        Ok(()) => Json(serde_json::json!({"address": req.address, "name": req.name.trim()}))
            .into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn tables() -> Response {
    let list: Vec<_> = TABLES
        .iter()
        .map(|t| {
            let columns: Vec<_> = t
                .schema()
                .fields()
                .iter()
                .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
                .collect();
            serde_json::json!({"name": t.name, "about": t.about, "columns": columns})
        })
        .collect();
    Json(list).into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    match shared.store.cursor() {
        Ok(c) => Json(serde_json::json!({"height": c.height, "chain_id": c.chain_id, "block_hash": c.block_hash})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
