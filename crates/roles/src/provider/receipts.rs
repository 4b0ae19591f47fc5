//! Receipts: every answer carries one, signed by the provider's key, that binds the model's
//! content hash, the hash of the exact request bytes received, the hash of the response (of
//! the body, or of a stream's data payloads), the token counts and the price.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use hibana_types::{Amount, Hash, InferenceReceipt, ReceiptBody};

use super::state::Provider;
use crate::openai::unix_now;

/// Header carrying the hex receipt of a non-streamed answer.
pub const RECEIPT_HEADER: &str = "x-hibana-receipt";
/// Prefix of the SSE comment carrying the receipt at the end of a stream.
pub const RECEIPT_COMMENT: &str = "x-hibana-receipt ";

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

impl Provider {
    /// A receipt for an answer of `model_hash` to `request`, priced per token.
    pub(super) fn receipt(
        &self,
        model_hash: Hash,
        request: &[u8],
        response_hash: Hash,
        prompt: u32,
        completion: u32,
    ) -> InferenceReceipt {
        let tokens = u128::from(prompt) + u128::from(completion);
        self.receipt_at_price(
            model_hash,
            request,
            response_hash,
            (prompt, completion),
            Amount(self.price_per_token.0.saturating_mul(tokens)),
        )
    }

    /// A receipt for an answer of `model_hash` to `request`, with its `(prompt, completion)`
    /// token counts and its `price`.
    pub(super) fn receipt_at_price(
        &self,
        model_hash: Hash,
        request: &[u8],
        response_hash: Hash,
        (prompt, completion): (u32, u32),
        price: Amount,
    ) -> InferenceReceipt {
        ReceiptBody {
            provider: self.key.public_key(),
            model_hash,
            request_hash: Hash::digest(request),
            response_hash,
            prompt_tokens: prompt,
            completion_tokens: completion,
            price,
            timestamp_ms: unix_now().saturating_mul(1000),
        }
        .sign(&self.key)
    }

    /// A JSON answer to `request` with the receipt of `model_hash` in its header.
    pub(super) fn signed_answer(
        &self,
        model_hash: Hash,
        request: &[u8],
        response: serde_json::Value,
        prompt: u32,
        completion: u32,
    ) -> Response {
        let bytes = serde_json::to_vec(&response).unwrap_or_default();
        let receipt = self.receipt(
            model_hash,
            request,
            Hash::digest(&bytes),
            prompt,
            completion,
        );
        with_receipt(bytes, &receipt)
    }
}

/// A 200 JSON answer of `bytes` with `receipt` in its header.
pub(super) fn with_receipt(bytes: Vec<u8>, receipt: &InferenceReceipt) -> Response {
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&receipt.to_hex()) {
        r.headers_mut().insert(RECEIPT_HEADER, v);
    }
    r
}
