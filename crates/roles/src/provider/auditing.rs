//! Solidity audits as a service: `POST /v1/audit` runs the auditor (see [`crate::audit`]) and
//! answers its findings under a receipt of the engine's hash.

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::state::{AppState, Busy, requested_model};
use crate::{
    audit::{self, AUDIT_MODEL, AuditRequest},
    openai::{ApiError, parse_body},
};

/// `POST /v1/audit`.
pub(super) async fn audit_contract(
    State(p): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let req: AuditRequest = parse_body(&body)?;
    let engine = audit::engine_hash();
    let model = requested_model(&headers, &req.model);
    if model != AUDIT_MODEL && model != engine.to_string() {
        return Err(ApiError::model_not_found(model));
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
    Ok(p.signed_answer(engine, &body, answer, tokens, 0))
}
