//! Proved inference: `POST /v1/zk/infer` runs a compiled ZK model and answers its output with a
//! zero-knowledge proof (see [`crate::zk`]), under a receipt priced per proof.

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use hibana_types::Hash;
use hibana_zkml::ZkError;

use super::{
    receipts::with_receipt,
    state::{AppState, Busy, requested_model},
};
use crate::{
    openai::{ApiError, parse_body},
    zk::{self, ZkInferRequest},
};

/// `POST /v1/zk/infer`.
pub(super) async fn zk_infer(
    State(p): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let req: ZkInferRequest = parse_body(&body)?;
    let model = requested_model(&headers, &req.model);
    let served =
        p.zk.find(model)
            .ok_or_else(|| ApiError::model_not_found(model))?;
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
    let receipt = p.receipt_at_price(
        model_hash,
        &body,
        Hash::digest(&bytes),
        (0, 0),
        p.zk.price_per_proof,
    );
    Ok(with_receipt(bytes, &receipt))
}
