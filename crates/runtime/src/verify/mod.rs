//! Verify: models registered for zero-knowledge inference and proved inference results; and
//! challenges against providers' signed inference receipts, judged by a subnet's validators,
//! with the slashing that follows.
//!
//! `RegisterZkModel` stores a compiled `.zkm` under its model commitment, owned by the signer.
//! `SubmitZkInference` carries the `.zkm` and a proof; the proof is checked once, in
//! `check_stateless` (no state needed, so blocks check proofs in parallel), which hands the
//! verified result ([`VerifiedSubmission`]) to `check_stateful` (that exact model must be
//! registered and the proof not yet used) and `execute` (charges a verification fee that grows
//! with the circuit size, stores the result and emits `verify.inference`, which other
//! components and apps can rely on).
//!
//! `ChallengeReceipt` carries a provider's signed receipt with the exact request and response
//! bytes it covers; `check_stateless` checks the sizes, the deposit, both hashes and the
//! signature and hands on the receipt's id. Opening needs a registered market provider that is a
//! miner of the named subnet, a receipt at most [`CHALLENGE_WINDOW_MS`] old (and at most
//! [`CHALLENGE_FUTURE_SLACK_MS`] ahead of the block time), never challenged before, and a
//! subnet whose validators hold permits; the deposit and a share of the provider's bond
//! ([`resolution::hold_for`]) move into [`CHALLENGE_ESCROW`], and the electorate (the permitted
//! validators and their stake) is fixed. `VoteChallenge` lets each elector vote once, weighted
//! by its stake, up to the deadline; [`resolution`] decides and settles (upheld: the provider is
//! slashed, the challenger refunded and rewarded, the "wrong" voters paid, the rest burned;
//! rejected: the deposit goes to the "right" voters and the fire; undecided at the deadline:
//! everything goes back). Each block ends by closing the undecided challenges whose deadline it
//! is, and only those.
//!
//! State and fees in [`state`], the messages in `messages`, the pure settlement in
//! [`resolution`], what the RPC answers in [`query`].

mod batch_line;
mod messages;
pub mod query;
pub mod resolution;
pub mod state;

pub use hibana_types::records::verify::{
    BPS, CHAIN_JUDGED, CHALLENGE_ESCROW, CHALLENGE_FUTURE_SLACK_MS, CHALLENGE_SLASH_BPS,
    CHALLENGE_VOTING_BLOCKS, CHALLENGE_WINDOW_MS, CHALLENGER_REWARD_BPS, Challenge,
    ChallengeContent, ChallengeFilter, ChallengeSettlement, ChallengeStatus, Elector,
    MAX_CHALLENGE_REQUEST_BYTES, MAX_CHALLENGE_RESPONSE_BYTES, MIN_CHALLENGE_DEPOSIT,
    MIN_CHALLENGE_SLASH, REJECTED_VOTERS_BPS, UPHELD_VOTERS_BPS, ZkInferenceRecord, ZkModelRecord,
    inference_key, model_key, receipt_id,
};
pub(crate) use messages::check_receipted;
pub use messages::{VerifiedSubmission, verify_submission};
pub use state::{
    MAX_CIRCUIT_K, REGISTER_FEE_PER_BYTE, VERIFY_FEE_BASE, VERIFY_FEE_PER_LOG_ROW,
    VERIFY_FEE_PER_ROW, challenge, challenge_content, challenge_count, challenge_escrow_balance,
    challenge_of_receipt, challenges_due, electorate, inference, model, model_zkm,
    registered_verification_fee, registration_fee, submission_id, verification_fee, vote_of,
};

use hibana_types::Event;

use crate::{BlockContext, Component, ExecError, StateWrite};

/// The verify component.
#[derive(Debug, Clone, Copy, Default)]
pub struct Verify;

impl Component for Verify {
    fn name(&self) -> &'static str {
        "verify"
    }

    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        block: &BlockContext,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        state::end_block(state, block.height, events)
    }
}
