//! Authenticated state: the hasher of the state tree and the check of a state proof.

use crate::Hash;

/// The hash function of the state tree (blake3).
#[derive(Clone)]
pub struct StateHasher(blake3::Hasher);

impl jmt::SimpleHasher for StateHasher {
    fn new() -> Self {
        StateHasher(blake3::Hasher::new())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

/// A proof that a key has a given value, or no value, under a state root.
pub type StateProof = jmt::proof::SparseMerkleProof<StateHasher>;

/// The tree position of a state key.
pub fn state_key_hash(key: &[u8]) -> jmt::KeyHash {
    jmt::KeyHash::with::<StateHasher>(key)
}

/// A state proof that does not match the claimed root, key and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state proof does not verify against root {root}: {reason}")]
pub struct ProofError {
    /// The root checked against.
    pub root: Hash,
    /// Why it failed.
    pub reason: String,
}

/// Checks that `key` has `value` (or, with `None`, no value) under `root`.
pub fn verify_state_proof(
    root: Hash,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), ProofError> {
    proof
        .verify(jmt::RootHash(root.0), state_key_hash(key), value)
        .map_err(|e| ProofError {
            root,
            reason: e.to_string(),
        })
}
