//! Receipt checks: an answer reaches the client only with a receipt signed by the key the
//! gateway pinned for its provider, over the exact bytes sent and the exact bytes answered.

use hibana_types::{Hash, InferenceReceipt, PublicKey};

/// Decodes the hex `receipt` and checks it is `provider`'s over `request` and `response`.
pub(super) fn check(
    receipt: &str,
    provider: &PublicKey,
    request: &Hash,
    response: &Hash,
) -> Result<InferenceReceipt, String> {
    let receipt = InferenceReceipt::from_hex(receipt).map_err(|e| e.to_string())?;
    receipt
        .verify(provider, request, response)
        .map_err(|e| e.to_string())?;
    Ok(receipt)
}
