//! Receipt checks: an answer reaches the client only with a receipt signed by the key the
//! gateway expects for its provider (the key of the account registered on chain, when the
//! gateway reads a chain), over the exact bytes sent and the exact bytes answered, naming the
//! model asked for, counting no more tokens than the request could produce and charging no
//! more than the registered price.

use hibana_types::{
    Amount, Hash, InferenceReceipt, PublicKey, records::verify::CHALLENGE_FUTURE_SLACK_MS,
};

/// How old a receipt may be when its answer arrives: it is signed as the answer is sent.
const MAX_RECEIPT_AGE_MS: u64 = 10 * 60 * 1000;

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
    // A receipt must be challengeable on chain: dated now, not in a future where the chain
    // would refuse a challenge, nor so old that its window closes early.
    let now = crate::openai::unix_now().saturating_mul(1000);
    if body.timestamp_ms > now.saturating_add(CHALLENGE_FUTURE_SLACK_MS)
        || body.timestamp_ms < now.saturating_sub(MAX_RECEIPT_AGE_MS)
    {
        return Err(format!(
            "the receipt is dated {} ms since the epoch, this gateway's clock says {now}",
            body.timestamp_ms
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use hibana_types::{ReceiptBody, SecretKey};

    fn signed(key: &SecretKey, timestamp_ms: u64, price: u128, tokens: u32) -> String {
        ReceiptBody {
            provider: key.public_key(),
            model_hash: Hash::digest(b"m"),
            request_hash: Hash::digest(b"req"),
            response_hash: Hash::digest(b"resp"),
            prompt_tokens: tokens,
            completion_tokens: tokens,
            price: Amount(price),
            timestamp_ms,
        }
        .sign(key)
        .to_hex()
    }

    #[test]
    fn receipts_must_name_the_model_stay_within_price_and_tokens_and_be_dated_now() {
        let key = SecretKey::generate();
        let now = crate::openai::unix_now() * 1000;
        let expected = Expected {
            key: key.public_key(),
            request: Hash::digest(b"req"),
            model: Some(Hash::digest(b"m")),
            price_per_token: Some(Amount(10)),
            tokens: Some((5, 5)),
        };
        let resp = Hash::digest(b"resp");
        assert!(check(&signed(&key, now, 100, 5), &expected, &resp).is_ok());
        let err = |hex: String, e: &Expected| check(&hex, e, &resp).unwrap_err();
        assert!(err(signed(&key, now, 101, 5), &expected).contains("above 10 tokens"));
        assert!(err(signed(&key, now, 10, 6), &expected).contains("at most 5 and 5"));
        assert!(err(signed(&key, now + 3_600_000, 10, 1), &expected).contains("clock"));
        assert!(err(signed(&key, now - 3_600_000, 10, 1), &expected).contains("clock"));
        let other_model = Expected {
            model: Some(Hash::digest(b"other")),
            ..expected.clone()
        };
        assert!(err(signed(&key, now, 10, 1), &other_model).contains("not "));
        let other_key = Expected {
            key: SecretKey::generate().public_key(),
            ..expected.clone()
        };
        assert!(err(signed(&key, now, 10, 1), &other_key).contains("signed by"));
        assert!(check(&signed(&key, now, 10, 1), &expected, &Hash::digest(b"x")).is_err());
    }
}
