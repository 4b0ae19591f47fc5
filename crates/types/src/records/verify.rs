//! Verify records: registered ZK models, verified inferences and their state keys.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::Address;

/// A registered model.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ZkModelRecord {
    /// Model commitment (content hash of the quantised model).
    pub commitment: [u8; 32],
    /// Who registered it.
    pub owner: Address,
    /// log2 of the circuit's rows.
    pub k: u32,
    /// Shape of one input.
    pub input_shape: Vec<u32>,
    /// Shape of the output.
    pub output_shape: Vec<u32>,
    /// Fractional bits of the output values.
    pub output_scale: u32,
    /// Height of registration.
    pub registered_at: u64,
}

/// A verified inference.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ZkInferenceRecord {
    /// blake3 of the proof file: the result's id.
    pub id: [u8; 32],
    /// Model commitment.
    pub model: [u8; 32],
    /// Hash commitment to the input and salt (Poseidon for halo2, Poseidon2 for a STARK).
    pub input_commitment: [u8; 32],
    /// The input, when the prover revealed it.
    pub public_input: Option<Vec<i64>>,
    /// Quantised output (real value = output / 2^output_scale).
    pub output: Vec<i64>,
    /// Predicted class.
    pub class: u32,
    /// Who submitted it.
    pub submitter: Address,
    /// Height of inclusion.
    pub height: u64,
}

/// State key of a registered model's record.
pub fn model_key(commitment: &[u8; 32]) -> Vec<u8> {
    [b"verify/model/".as_slice(), commitment].concat()
}

/// State key of a verified inference's record.
pub fn inference_key(id: &[u8; 32]) -> Vec<u8> {
    [b"verify/inference/".as_slice(), id].concat()
}
