//! Verify state: registered models, their `.zkm` files, verified inferences and fees.

use hibana_types::records::verify::{ZkInferenceRecord, ZkModelRecord, inference_key, model_key};
use hibana_types::{Amount, SubmitZkInference};
use hibana_zkml::{ProofSystem, ZkModel};

use crate::{StateError, StateRead, get_typed};

/// Largest circuit (log2 rows) the chain verifies; bounds the cost of one proof check.
pub const MAX_CIRCUIT_K: u32 = 16;

/// Verification fee: fixed part, in base units.
pub const VERIFY_FEE_BASE: u128 = 10_000;

/// Verification fee per halo2 circuit row (IPA verification is linear in the rows), in base
/// units.
pub const VERIFY_FEE_PER_ROW: u128 = 10;

/// Verification fee per doubling of a STARK's trace (FRI verification grows with log2 rows), in
/// base units.
pub const VERIFY_FEE_PER_LOG_ROW: u128 = 640;

/// Registration fee per stored byte of `.zkm`, in base units.
pub const REGISTER_FEE_PER_BYTE: u128 = 10;

pub(crate) fn zkm_key(commitment: &[u8; 32]) -> Vec<u8> {
    [b"verify/zkm/".as_slice(), commitment].concat()
}

/// Reads a registered model.
pub fn model<S: StateRead + ?Sized>(
    state: &S,
    commitment: &[u8; 32],
) -> Result<Option<ZkModelRecord>, StateError> {
    get_typed(state, &model_key(commitment))
}

/// Reads a registered model's `.zkm` bytes.
pub fn model_zkm<S: StateRead + ?Sized>(
    state: &S,
    commitment: &[u8; 32],
) -> Result<Option<Vec<u8>>, StateError> {
    get_typed(state, &zkm_key(commitment))
}

/// Reads a verified inference by id.
pub fn inference<S: StateRead + ?Sized>(
    state: &S,
    id: &[u8; 32],
) -> Result<Option<ZkInferenceRecord>, StateError> {
    get_typed(state, &inference_key(id))
}

/// The verification fee of a proof in `system` for a circuit with 2^k rows.
pub fn verification_fee(system: ProofSystem, k: u32) -> Amount {
    let k = k.min(MAX_CIRCUIT_K);
    Amount(
        VERIFY_FEE_BASE
            + match system {
                ProofSystem::Halo2 => VERIFY_FEE_PER_ROW * (1u128 << k),
                ProofSystem::Stark => VERIFY_FEE_PER_LOG_ROW * u128::from(k),
            },
    )
}

/// The verification fee of a registered model, from its stored `.zkm` (which records the proof
/// system) and its circuit size.
pub fn registered_verification_fee(zkm: Option<&[u8]>, k: u32) -> Amount {
    let system = zkm
        .and_then(|z| ZkModel::from_bytes(z).ok())
        .map_or(ProofSystem::Halo2, |z| z.system);
    verification_fee(system, k)
}

/// The registration fee of a `.zkm` of `bytes` bytes.
pub fn registration_fee(bytes: usize) -> Amount {
    Amount(REGISTER_FEE_PER_BYTE * bytes as u128)
}

/// A submission's result id: blake3 of the proof file.
pub fn submission_id(msg: &SubmitZkInference) -> [u8; 32] {
    *blake3::hash(&msg.proof).as_bytes()
}
