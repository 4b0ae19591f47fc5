//! Verify: models registered for zero-knowledge inference, and proved inference results.
//!
//! `RegisterZkModel` stores a compiled `.zkm` under its model commitment, owned by the signer.
//! `SubmitZkInference` carries the `.zkm` and a proof; the proof is checked once, in
//! `check_stateless` (no state needed, so blocks check proofs in parallel), which hands the
//! verified result ([`VerifiedSubmission`]) to `check_stateful` (that exact model must be
//! registered and the proof not yet used) and `execute` (charges a verification fee that grows
//! with the circuit size, stores the result and emits `verify.inference`, which other
//! components and apps can rely on).
//!
//! State and fees in [`state`], the messages in `messages`.

mod messages;
pub mod resolution;
pub mod state;

pub use hibana_types::records::verify::{
    ZkInferenceRecord, ZkModelRecord, inference_key, model_key,
};
pub use messages::{VerifiedSubmission, verify_submission};
pub use state::{
    MAX_CIRCUIT_K, REGISTER_FEE_PER_BYTE, VERIFY_FEE_BASE, VERIFY_FEE_PER_LOG_ROW,
    VERIFY_FEE_PER_ROW, inference, model, model_zkm, registered_verification_fee, registration_fee,
    submission_id, verification_fee,
};

use crate::Component;

/// The verify component (messages only: nothing happens at genesis or per block).
#[derive(Debug, Clone, Copy, Default)]
pub struct Verify;

impl Component for Verify {
    fn name(&self) -> &'static str {
        "verify"
    }
}
