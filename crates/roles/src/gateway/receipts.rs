//! Receipt checks: an answer reaches the client only with a receipt signed by the key the
//! gateway expects for its provider (the key of the account registered on chain, when the
//! gateway reads a chain), over the exact bytes sent and the exact bytes answered, naming the
//! model asked for, counting no more tokens than the request could produce and charging no
//! more than the registered price.

use hibana_types::{Amount, Hash, InferenceReceipt, PublicKey};

/// What a receipt must say.
#[derive(Debug, Clone)]
pub(super) struct Expected {
    /// The key it must be signed with.
    pub(super) key: PublicKey,
    /// blake3 of the request bytes.
    pub(super) request: Hash,
    /// The model it must name, if known.
    pub(super) model: Option<Hash>,
    /// The most it may charge per token, if the chain says.
    pub(super) price_per_token: Option<Amount>,
    /// The most prompt and completion tokens the request can produce, if bounded.
    pub(super) tokens: Option<(u64, u64)>,
}

/// Decodes the hex `receipt` and checks it against what is `expected` and the `response`.
pub(super) fn check(
    receipt: &str,
    expected: &Expected,
    response: &Hash,
) -> Result<InferenceReceipt, String> {
    let receipt = InferenceReceipt::from_hex(receipt).map_err(|e| e.to_string())?;
    receipt
        .verify(&expected.key, &expected.request, response)
        .map_err(|e| e.to_string())?;
    let body = &receipt.body;
    if let Some(model) = expected.model
        && body.model_hash != model
    {
        return Err(format!(
            "the receipt names model {}, not {model} that was asked for",
            body.model_hash
        ));
    }
    let (prompt, completion) = (
        u64::from(body.prompt_tokens),
        u64::from(body.completion_tokens),
    );
    if let Some((max_prompt, max_completion)) = expected.tokens
        && (prompt > max_prompt || completion > max_completion)
    {
        return Err(format!(
            "the receipt counts {prompt} prompt and {completion} completion tokens; the request allows at most {max_prompt} and {max_completion}"
        ));
    }
    if let Some(per_token) = expected.price_per_token {
        let most = per_token.0.saturating_mul(u128::from(prompt + completion));
        if body.price.0 > most {
            return Err(format!(
                "the receipt charges {}, above {} tokens at the registered {per_token} per token",
                body.price,
                prompt + completion
            ));
        }
    }
    Ok(receipt)
}
