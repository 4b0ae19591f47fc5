//! Verify messages: `RegisterZkModel` and `SubmitZkInference`.

use hibana_types::records::verify::{ZkInferenceRecord, ZkModelRecord, inference_key, model_key};
use hibana_types::{Amount, Event, RegisterZkModel, SubmitZkInference};
use hibana_zkml::{InferenceProof, VerifiedInference, ZkModel};

use super::state::{
    MAX_CIRCUIT_K, inference, model, model_zkm, registration_fee, submission_id, verification_fee,
    zkm_key,
};
use crate::{
    ExecError, MessageHandler, StateRead, StateWrite, TxContext, TxError, bank, invalid, put_typed,
};

/// A proved inference whose proof verified against the `.zkm` it carries: what
/// `check_stateless` hands to `check_stateful` and `execute`, so the proof is checked once.
#[derive(Debug)]
pub struct VerifiedSubmission {
    /// The decoded `.zkm`.
    pub zkm: ZkModel,
    /// What the proof states.
    pub verified: VerifiedInference,
    /// The decoded proof.
    pub proof: InferenceProof,
}

fn zk_invalid(what: &str, e: impl std::fmt::Display) -> TxError {
    TxError::Invalid(format!("{what}: {e}"))
}

fn decode_zkm(bytes: &[u8]) -> Result<ZkModel, TxError> {
    let zkm = ZkModel::from_bytes(bytes).map_err(|e| zk_invalid("zkm", e))?;
    if zkm.k > MAX_CIRCUIT_K {
        return Err(TxError::Invalid(format!(
            "the circuit has 2^{} rows, the chain verifies at most 2^{MAX_CIRCUIT_K}",
            zkm.k
        )));
    }
    Ok(zkm)
}

/// Pays a fee from the sender to the block proposer.
fn charge<S: StateWrite + ?Sized>(
    state: &mut S,
    ctx: &TxContext<'_>,
    fee: Amount,
    events: &mut Vec<Event>,
    kind: &str,
) -> Result<(), ExecError> {
    bank::debit(state, &ctx.sender, fee)?;
    bank::credit(state, &ctx.block.proposer, fee)?;
    events.push(Event::new(
        "verify.fee",
        [
            ("payer", ctx.sender.to_string()),
            ("amount", fee.0.to_string()),
            ("for", kind.to_string()),
        ],
    ));
    Ok(())
}

impl MessageHandler for RegisterZkModel {
    /// The decoded `.zkm`.
    type Verified = ZkModel;

    fn check_stateless(&self) -> Result<ZkModel, TxError> {
        decode_zkm(&self.zkm)
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        zkm: &ZkModel,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        if model(state, &zkm.commitment())?.is_some() {
            return Err(invalid(format!(
                "model {} is already registered",
                hex::encode(zkm.commitment())
            )));
        }
        bank::require_balance(state, &ctx.sender, registration_fee(self.zkm.len()))
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        zkm: &ZkModel,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let commitment = zkm.commitment();
        if model(state, &commitment)?.is_some() {
            return Err(invalid("model already registered"));
        }
        charge(
            state,
            ctx,
            registration_fee(self.zkm.len()),
            events,
            "register",
        )?;
        let record = ZkModelRecord {
            commitment,
            owner: ctx.sender,
            k: zkm.k,
            input_shape: zkm.model.input_shape.clone(),
            output_shape: zkm.model.output_shape.clone(),
            output_scale: zkm.model.output_scale(),
            registered_at: ctx.block.height,
        };
        put_typed(state, model_key(&commitment), &record);
        put_typed(state, zkm_key(&commitment), &self.zkm);
        events.push(Event::new(
            "verify.model_registered",
            [
                ("model", hex::encode(commitment)),
                ("owner", ctx.sender.to_string()),
                ("k", zkm.k.to_string()),
                ("system", zkm.system.name().to_string()),
            ],
        ));
        Ok(())
    }
}

/// Verifies a submission's proof against the `.zkm` it carries (no state). Every call derives
/// the verifier and checks the proof afresh: the verdict depends on the bytes alone.
pub fn verify_submission(msg: &SubmitZkInference) -> Result<VerifiedSubmission, TxError> {
    let zkm = decode_zkm(&msg.zkm)?;
    let proof = InferenceProof::from_bytes(&msg.proof).map_err(|e| zk_invalid("proof", e))?;
    let verifier = zkm.verifier().map_err(|e| zk_invalid("zkm", e))?;
    let verified = verifier
        .verify(&proof)
        .map_err(|e| zk_invalid("proof rejected", e))?;
    Ok(VerifiedSubmission {
        zkm,
        verified,
        proof,
    })
}

/// Requires `zkm` (decoded from `bytes`) to be the registered `.zkm` of its model, byte for
/// byte: another compilation of the same model could lay the circuit out differently, and the
/// layout decides what an input commitment means.
fn require_registered_zkm<S: StateRead + ?Sized>(
    state: &S,
    zkm: &ZkModel,
    bytes: &[u8],
) -> Result<(), ExecError> {
    let commitment = zkm.commitment();
    match model_zkm(state, &commitment)? {
        None => Err(invalid(format!(
            "model {} is not registered",
            hex::encode(commitment)
        ))),
        Some(registered) if registered != bytes => Err(invalid(format!(
            "the .zkm differs from the one registered for model {}: submit with the registered \
             .zkm (its circuit layout decides what the input commitment means)",
            hex::encode(commitment)
        ))),
        Some(_) => Ok(()),
    }
}

impl MessageHandler for SubmitZkInference {
    /// The verified proof.
    type Verified = VerifiedSubmission;

    fn check_stateless(&self) -> Result<VerifiedSubmission, TxError> {
        verify_submission(self)
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        checked: &VerifiedSubmission,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        let zkm = &checked.zkm;
        require_registered_zkm(state, zkm, &self.zkm)?;
        if inference(state, &submission_id(self))?.is_some() {
            return Err(invalid("this proof was already submitted"));
        }
        bank::require_balance(state, &ctx.sender, verification_fee(zkm.system, zkm.k))
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        checked: &VerifiedSubmission,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let VerifiedSubmission {
            zkm,
            verified,
            proof,
        } = checked;
        let commitment = zkm.commitment();
        require_registered_zkm(state, zkm, &self.zkm)?;
        let id = submission_id(self);
        if inference(state, &id)?.is_some() {
            return Err(invalid("proof already submitted"));
        }
        charge(
            state,
            ctx,
            verification_fee(zkm.system, zkm.k),
            events,
            "verify",
        )?;
        let input_commitment = proof
            .input_commitment(zkm)
            .map_err(|e| zk_invalid("proof", e))?;
        let record = ZkInferenceRecord {
            id,
            model: commitment,
            input_commitment,
            public_input: match &proof.input {
                hibana_zkml::InputBinding::Public { input, .. } => Some(input.clone()),
                hibana_zkml::InputBinding::Private { .. } => None,
            },
            output: verified.output.clone(),
            class: u32::try_from(verified.class).unwrap_or(u32::MAX),
            submitter: ctx.sender,
            height: ctx.block.height,
        };
        put_typed(state, inference_key(&id), &record);
        events.push(Event::new(
            "verify.inference",
            [
                ("id", hex::encode(id)),
                ("model", hex::encode(commitment)),
                ("input_commitment", hex::encode(input_commitment)),
                (
                    "output",
                    record
                        .output
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                ("class", record.class.to_string()),
                ("submitter", ctx.sender.to_string()),
            ],
        ));
        Ok(())
    }
}
