//! Signed inference receipts: a provider's statement of what it computed, for whom, at what
//! price, bound to the exact request and response bytes.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Amount, Hash, PublicKey, SecretKey, Signature, SignatureError, decode, encode};

/// Domain separator of receipt signatures.
pub const RECEIPT_SIGN_DOMAIN: &[u8] = b"hibana/inference-receipt/v1\0";

/// The signed fields of an inference receipt.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// The provider's key.
    pub provider: PublicKey,
    /// Content hash of the model that ran.
    pub model_hash: Hash,
    /// blake3 of the request body exactly as received.
    pub request_hash: Hash,
    /// blake3 of the response body exactly as sent (for a stream: of its data payloads in order).
    pub response_hash: Hash,
    /// Tokens read.
    pub prompt_tokens: u32,
    /// Tokens produced.
    pub completion_tokens: u32,
    /// Price charged.
    pub price: Amount,
    /// When the provider answered (ms since the Unix epoch).
    pub timestamp_ms: u64,
}

/// A receipt with the provider's signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct InferenceReceipt {
    /// What the provider signed.
    pub body: ReceiptBody,
    /// Signature over the domain separator and the body's encoding.
    pub signature: Signature,
}

/// A receipt that does not match what was exchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Not decodable.
    #[error("receipt is malformed: {0}")]
    Malformed(String),
    /// Bad signature.
    #[error("receipt signature is invalid: {0}")]
    Signature(#[from] SignatureError),
    /// Signed by another key than expected.
    #[error("receipt is signed by {found}, expected provider {expected}")]
    WrongProvider {
        /// The provider's known key.
        expected: PublicKey,
        /// The receipt's key.
        found: PublicKey,
    },
    /// The request hash differs.
    #[error("receipt does not cover the request that was sent")]
    RequestMismatch,
    /// The response hash differs.
    #[error("receipt does not cover the response that was received")]
    ResponseMismatch,
}

impl ReceiptBody {
    /// Whether it is for no tokens and no price: how a provider signs a batch line's refusal.
    pub fn is_free(&self) -> bool {
        self.prompt_tokens == 0 && self.completion_tokens == 0 && self.price.0 == 0
    }

    fn sign_bytes(&self) -> Vec<u8> {
        let mut bytes = RECEIPT_SIGN_DOMAIN.to_vec();
        bytes.extend_from_slice(&encode(self));
        bytes
    }

    /// Signs the body.
    pub fn sign(self, key: &SecretKey) -> InferenceReceipt {
        let signature = key.sign(&self.sign_bytes());
        InferenceReceipt {
            body: self,
            signature,
        }
    }
}

impl InferenceReceipt {
    /// Hex of the canonical encoding (the `x-hibana-receipt` header value).
    pub fn to_hex(&self) -> String {
        hex::encode(encode(self))
    }

    /// Parses the hex form.
    pub fn from_hex(s: &str) -> Result<InferenceReceipt, ReceiptError> {
        let bytes = hex::decode(s.trim()).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        decode(&bytes).map_err(|e| ReceiptError::Malformed(e.to_string()))
    }

    /// Checks the signature, the provider and that the receipt covers these request and
    /// response bytes.
    pub fn verify(
        &self,
        provider: &PublicKey,
        request_hash: &Hash,
        response_hash: &Hash,
    ) -> Result<(), ReceiptError> {
        if self.body.provider != *provider {
            return Err(ReceiptError::WrongProvider {
                expected: *provider,
                found: self.body.provider,
            });
        }
        self.body
            .provider
            .verify(&self.body.sign_bytes(), &self.signature)?;
        if self.body.request_hash != *request_hash {
            return Err(ReceiptError::RequestMismatch);
        }
        if self.body.response_hash != *response_hash {
            return Err(ReceiptError::ResponseMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_verify_and_bind_request_response_and_provider() {
        let key = SecretKey::generate();
        let (req, resp) = (Hash::digest(b"req"), Hash::digest(b"resp"));
        let receipt = ReceiptBody {
            provider: key.public_key(),
            model_hash: Hash::digest(b"model"),
            request_hash: req,
            response_hash: resp,
            prompt_tokens: 3,
            completion_tokens: 5,
            price: Amount(10),
            timestamp_ms: 1,
        }
        .sign(&key);
        let parsed = InferenceReceipt::from_hex(&receipt.to_hex()).unwrap();
        assert_eq!(parsed.verify(&key.public_key(), &req, &resp), Ok(()));
        assert_eq!(
            parsed.verify(&key.public_key(), &resp, &resp),
            Err(ReceiptError::RequestMismatch)
        );
        assert_eq!(
            parsed.verify(&key.public_key(), &req, &req),
            Err(ReceiptError::ResponseMismatch)
        );
        let other = SecretKey::generate().public_key();
        assert!(matches!(
            parsed.verify(&other, &req, &resp),
            Err(ReceiptError::WrongProvider { .. })
        ));
        let mut tampered = parsed;
        tampered.body.completion_tokens = 6;
        assert!(matches!(
            tampered.verify(&key.public_key(), &req, &resp),
            Err(ReceiptError::Signature(_))
        ));
        assert!(InferenceReceipt::from_hex("zz").is_err());
    }
}
