//! Verify: models registered for zero-knowledge inference, and proved inference results.
//!
//! `RegisterZkModel` stores a compiled `.zkm` under its model commitment, owned by the signer.
//! `SubmitZkInference` carries the `.zkm` and a proof; the proof is checked in
//! `check_stateless` (no state needed, so blocks check proofs in parallel; execution reuses the
//! verdicts the verifier remembers), `check_stateful`
//! requires that exact model to be registered and the proof not yet used, and `execute` charges
//! a verification fee that grows with the circuit size, stores the result and emits
//! `verify.inference`, which other components and apps can rely on.

use borsh::{BorshDeserialize, BorshSerialize};
use hibana_types::{Address, Amount, Event, RegisterZkModel, SubmitZkInference};
use hibana_zkml::{InferenceProof, ProofSystem, VerifiedInference, ZkModel};
use serde::{Deserialize, Serialize};

use crate::{
    ExecError, MessageHandler, StateError, StateRead, StateWrite, TxContext, TxError, bank,
    get_typed, invalid, put_typed,
};

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

fn zkm_key(commitment: &[u8; 32]) -> Vec<u8> {
    [b"verify/zkm/".as_slice(), commitment].concat()
}

/// State key of a verified inference's record.
pub fn inference_key(id: &[u8; 32]) -> Vec<u8> {
    [b"verify/inference/".as_slice(), id].concat()
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
    fn check_stateless(&self) -> Result<(), TxError> {
        decode_zkm(&self.zkm).map(|_| ())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        let zkm = decode_zkm(&self.zkm)?;
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
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let zkm = decode_zkm(&self.zkm)?;
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

/// Verifies a submission's proof against the `.zkm` it carries (no state).
pub fn verify_submission(
    msg: &SubmitZkInference,
) -> Result<(ZkModel, VerifiedInference, InferenceProof), TxError> {
    let zkm = decode_zkm(&msg.zkm)?;
    let proof = InferenceProof::from_bytes(&msg.proof).map_err(|e| zk_invalid("proof", e))?;
    let verifier = hibana_zkml::cached_verifier(&msg.zkm).map_err(|e| zk_invalid("zkm", e))?;
    let verified = verifier
        .verify_file(&msg.proof)
        .map_err(|e| zk_invalid("proof rejected", e))?;
    Ok((zkm, verified, proof))
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

/// A submission's result id: blake3 of the proof file.
pub fn submission_id(msg: &SubmitZkInference) -> [u8; 32] {
    *blake3::hash(&msg.proof).as_bytes()
}

impl MessageHandler for SubmitZkInference {
    fn check_stateless(&self) -> Result<(), TxError> {
        verify_submission(self).map(|_| ())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        let zkm = decode_zkm(&self.zkm)?;
        require_registered_zkm(state, &zkm, &self.zkm)?;
        if inference(state, &submission_id(self))?.is_some() {
            return Err(invalid("this proof was already submitted"));
        }
        bank::require_balance(state, &ctx.sender, verification_fee(zkm.system, zkm.k))
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        // check_stateless verified the proof; the cached verifier remembers the verdict.
        let (zkm, verified, proof) = verify_submission(self)?;
        let commitment = zkm.commitment();
        require_registered_zkm(state, &zkm, &self.zkm)?;
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
            .input_commitment(&zkm)
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
