//! Sentence embeddings: `POST /v1/embeddings`, as floats or base64, with a signed receipt.

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use base64::Engine;
use serde_json::json;

use std::sync::Arc;

use hibana_ai::{catalog::ModelInfo, embed::Embedder};

use super::state::{AppState, Busy, Loaded, requested_model};
use crate::openai::{ApiError, EmbeddingRequest, parse_body};

/// Most tokens one embeddings request may hold (inputs are truncated to the model's 256 first):
/// about a minute of CPU here.
pub(crate) const MAX_EMBED_TOKENS: u64 = 65_536;

/// An embeddings request admitted on a model.
pub(crate) struct EmbedJob {
    /// The model.
    pub(crate) embedder: Arc<Embedder>,
    /// The texts to embed.
    pub(crate) inputs: Vec<String>,
    /// Vectors as base64 rather than floats.
    pub(crate) base64: bool,
}

/// Admits an embeddings request on a model, or says why it is refused: the checks a provider
/// makes before embedding, which a judge of a refusal repeats (the token limit is checked by
/// [`Embedder::embed_at_most`] while embedding).
pub(crate) fn admit_embeddings(
    info: &ModelInfo,
    model: &Loaded,
    req: &EmbeddingRequest,
) -> Result<EmbedJob, ApiError> {
    let Loaded::Embed(embedder) = model else {
        return Err(ApiError::invalid(
            Some("model"),
            format!("`{}` is not an embedding model", info.name),
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
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                Some("encoding_format"),
                format!("unknown encoding_format {other:?}"),
            ));
        }
    };
    Ok(EmbedJob {
        embedder: embedder.clone(),
        inputs,
        base64,
    })
}

/// `POST /v1/embeddings`.
pub(super) async fn embeddings(
    State(p): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let req: EmbeddingRequest = parse_body(&body)?;
    let served = p.find(requested_model(&headers, &req.model))?;
    let EmbedJob {
        embedder,
        inputs,
        base64: base64_format,
    } = admit_embeddings(&served.info, &served.model, &req)?;
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
    Ok(p.signed_answer(info.content_hash, &body, response, tokens, 0))
}
