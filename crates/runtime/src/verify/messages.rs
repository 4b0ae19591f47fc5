//! Verify messages: `RegisterZkModel` and `SubmitZkInference` (proved inferences), and
//! `ChallengeReceipt` and `VoteChallenge` (signed receipts challenged as wrong answers, judged
//! by a subnet's validators).
//!
//! The challenge messages' stateful rules each live in one function that reads what the
//! message needs and returns it; `check_stateful` calls it and discards the result, `execute`
//! calls it again on the same state and writes, so the two can never disagree.

use hibana_types::records::market::Provider;
use hibana_types::records::verify::{
    CHAIN_JUDGED, CHALLENGE_ESCROW, CHALLENGE_FUTURE_SLACK_MS, CHALLENGE_VOTING_BLOCKS,
    CHALLENGE_WINDOW_MS, Challenge, ChallengeContent, ChallengeStatus, Elector,
    MAX_CHALLENGE_REQUEST_BYTES, MAX_CHALLENGE_RESPONSE_BYTES, MIN_CHALLENGE_DEPOSIT,
    ZkInferenceRecord, ZkModelRecord, challenge_content_key, challenge_deadline_key,
    challenge_vote_key, challenged_receipt_key, electorate_key, inference_key, model_key,
    receipt_id,
};
use hibana_types::{
    Amount, ChallengeReceipt, Event, Hash, InferenceReceipt, NeuronRole, ReceiptError,
    RegisterZkModel, SubmitZkInference, VoteChallenge,
};
use hibana_zkml::{InferenceProof, VerifiedInference, ZkModel};

use super::resolution::{self, Verdict};
use super::state::{
    MAX_CIRCUIT_K, challenge, challenge_of_receipt, challenges_due, electorate, inference, model,
    model_zkm, next_challenge_id, put_challenge, registration_fee, resolve, submission_id, tally,
    verification_fee, vote_of, zkm_key,
};
use crate::{
    ExecError, MessageHandler, StateRead, StateWrite, TxContext, TxError, bank, invalid, market,
    put_typed, subnets,
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

/// Checks a challenge without state: sizes, deposit, that the request and response are the
/// bytes the receipt covers, and the provider's signature. Returns the receipt's id.
fn check_challenge(m: &ChallengeReceipt) -> Result<Hash, TxError> {
    if m.receipt.body.is_free() {
        // Judged against the models the provider declared for the batch, which only a batch
        // line's challenge knows.
        return Err(TxError::Invalid(
            "a receipt for no tokens and no price is a batch line's signed refusal: challenge \
             it with DisputeBatchLine (`hibana batch dispute`)"
                .into(),
        ));
    }
    check_exchange(&m.receipt, &m.request, &m.response, m.deposit)
}

/// The stateless checks of a challenged exchange: sizes, deposit, both hashes and the
/// provider's signature; returns the receipt's id.
pub(super) fn check_exchange(
    receipt: &InferenceReceipt,
    request: &[u8],
    response: &[u8],
    deposit: Amount,
) -> Result<Hash, TxError> {
    if request.len() > MAX_CHALLENGE_REQUEST_BYTES {
        return Err(TxError::Invalid(format!(
            "the request is {} bytes, a challenge carries at most {MAX_CHALLENGE_REQUEST_BYTES}",
            request.len()
        )));
    }
    if response.len() > MAX_CHALLENGE_RESPONSE_BYTES {
        return Err(TxError::Invalid(format!(
            "the response is {} bytes, a challenge carries at most {MAX_CHALLENGE_RESPONSE_BYTES}",
            response.len()
        )));
    }
    if deposit < MIN_CHALLENGE_DEPOSIT {
        return Err(TxError::Invalid(format!(
            "deposit {} is below the minimum challenge deposit {MIN_CHALLENGE_DEPOSIT}",
            deposit
        )));
    }
    check_receipted(receipt, request, response)
}

/// Checks that `request` and `response` are the bytes `receipt` covers and that its provider
/// signed it; returns the receipt's id.
pub(crate) fn check_receipted(
    receipt: &InferenceReceipt,
    request: &[u8],
    response: &[u8],
) -> Result<Hash, TxError> {
    // The hashes first (cheap), then the signature.
    let body = &receipt.body;
    let (request, response) = (Hash::digest(request), Hash::digest(response));
    if request != body.request_hash {
        return Err(TxError::Invalid(format!(
            "the request does not match the receipt: its blake3 is {request}, the receipt covers \
             {} (send the request bytes exactly as the provider received them)",
            body.request_hash
        )));
    }
    if response != body.response_hash {
        return Err(TxError::Invalid(format!(
            "the response does not match the receipt: its blake3 is {response}, the receipt \
             covers {} (send the response bytes exactly as received; for a stream, each data \
             payload followed by a newline)",
            body.response_hash
        )));
    }
    receipt
        .verify(&body.provider, &request, &response)
        .map_err(|e| match e {
            ReceiptError::Signature(e) => TxError::Invalid(format!(
                "the receipt's signature does not verify against its provider key {}: {e}",
                body.provider
            )),
            other => TxError::Invalid(other.to_string()),
        })?;
    Ok(receipt_id(receipt))
}

/// What opening a challenge needs from state.
pub(super) struct Opening {
    provider: Provider,
    held: Amount,
    electorate: Vec<Elector>,
    electorate_stake: Amount,
}

/// The rules of opening a challenge on the receipt `id` (see [`check_challenge`]).
fn challenge_rules<S: StateRead + ?Sized>(
    m: &ChallengeReceipt,
    id: &Hash,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Opening, ExecError> {
    let address = m.receipt.body.provider.address();
    let provider = market::provider(state, &address)?.ok_or_else(|| {
        invalid(format!(
            "{address}, which signed the receipt, is not a registered market provider: only a \
             provider's bond answers for its receipts"
        ))
    })?;
    subnets::subnet(state, m.subnet)?
        .ok_or_else(|| invalid(format!("subnet {} does not exist", m.subnet)))?;
    // The judges are the validators of a subnet the provider serves; otherwise anyone could
    // open a subnet of their own, be its only validator and slash any provider at will.
    let neurons = subnets::neurons(state, m.subnet)?;
    let serves = subnets::uid_of(state, m.subnet, &address)?
        .and_then(|uid| neurons.get(uid as usize))
        .is_some_and(|n| n.role == NeuronRole::Miner);
    if !serves {
        return Err(invalid(format!(
            "provider {address} is not a miner of subnet {}: a receipt is judged by the \
             validators of a subnet its provider serves",
            m.subnet
        )));
    }
    let signed = m.receipt.body.timestamp_ms;
    let now = ctx.block.time_ms;
    if signed > now.saturating_add(CHALLENGE_FUTURE_SLACK_MS) {
        return Err(invalid(format!(
            "the receipt is from the future: signed at {signed} ms, the block time is {now} ms \
             (at most {CHALLENGE_FUTURE_SLACK_MS} ms ahead is accepted)"
        )));
    }
    if now.saturating_sub(signed) > CHALLENGE_WINDOW_MS {
        return Err(invalid(format!(
            "the receipt expired: signed at {signed} ms, more than {CHALLENGE_WINDOW_MS} ms \
             before the block time {now} ms"
        )));
    }
    if let Some(earlier) = challenge_of_receipt(state, id)? {
        return Err(invalid(format!(
            "this receipt was challenged already (challenge {earlier}): a receipt is challenged \
             once"
        )));
    }
    let electors: Vec<Elector> = neurons
        .iter()
        .filter(|n| n.role == NeuronRole::Validator && n.permit && n.stake.0 > 0)
        .map(|n| Elector {
            account: n.account,
            stake: n.stake,
        })
        .collect();
    let no_judges = format!(
        "subnet {} has no validator with a permit and stake yet (permits are given at each \
         epoch): nobody could judge the challenge",
        m.subnet
    );
    opening(state, ctx, provider, electors, m.deposit, no_judges)
}

/// The opening of a challenge of `provider` judged by `electors` (sorted here), once the
/// electorate has stake, the provider a bond to hold and the challenger its deposit;
/// `no_judges` says why an electorate without stake cannot judge.
pub(super) fn opening<S: StateRead + ?Sized>(
    state: &S,
    ctx: &TxContext<'_>,
    provider: Provider,
    mut electors: Vec<Elector>,
    deposit: Amount,
    no_judges: String,
) -> Result<Opening, ExecError> {
    electors.sort_by_key(|e| e.account);
    let electorate_stake = electors
        .iter()
        .try_fold(Amount::ZERO, |sum, e| sum.checked_add(e.stake))
        .ok_or(TxError::Overflow("electorate stake"))?;
    if electorate_stake.0 == 0 {
        return Err(invalid(no_judges));
    }
    let held = resolution::hold_for(provider.bond);
    if held.0 == 0 {
        return Err(invalid(format!(
            "provider {} has no bond left to answer with: open challenges hold all of it",
            provider.address
        )));
    }
    bank::require_balance(state, &ctx.sender, deposit)?;
    Ok(Opening {
        provider,
        held,
        electorate: electors,
        electorate_stake,
    })
}

impl MessageHandler for ChallengeReceipt {
    /// The receipt's id, once its signature and hashes checked out.
    type Verified = Hash;

    fn check_stateless(&self) -> Result<Hash, TxError> {
        check_challenge(self)
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        id: &Hash,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        challenge_rules(self, id, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        receipt: &Hash,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let opening = challenge_rules(self, receipt, state, ctx)?;
        let exchange = Exchange {
            subnet: self.subnet,
            receipt_id: *receipt,
            receipt: &self.receipt,
            request: &self.request,
            response: &self.response,
            deposit: self.deposit,
        };
        open_challenge(state, ctx, &exchange, opening, events).map(|_| ())
    }
}

/// A challenged exchange: what a new challenge holds.
pub(super) struct Exchange<'a> {
    pub(super) subnet: u32,
    pub(super) receipt_id: Hash,
    pub(super) receipt: &'a InferenceReceipt,
    pub(super) request: &'a [u8],
    pub(super) response: &'a [u8],
    pub(super) deposit: Amount,
}

/// Opens a challenge of `x` that `opening`'s electorate judges: locks the deposit and the held
/// part of the bond, files the deadline; returns the challenge's id.
pub(super) fn open_challenge<S: StateWrite + ?Sized>(
    state: &mut S,
    ctx: &TxContext<'_>,
    x: &Exchange<'_>,
    opening: Opening,
    events: &mut Vec<Event>,
) -> Result<u64, ExecError> {
    let provider = opening.provider.address;
    bank::debit(state, &ctx.sender, x.deposit)?;
    bank::credit(state, &CHALLENGE_ESCROW, x.deposit)?;
    let held = market::state::take_bond(state, &provider, opening.held, &CHALLENGE_ESCROW)?;
    let id = next_challenge_id(state)?;
    let height = ctx.block.height;
    let deadline = height
        .checked_add(CHALLENGE_VOTING_BLOCKS)
        .ok_or(TxError::Overflow("challenge deadline"))?;
    let c = Challenge {
        id,
        subnet: x.subnet,
        challenger: ctx.sender,
        provider,
        receipt_id: x.receipt_id,
        receipt: x.receipt.clone(),
        deposit: x.deposit,
        held,
        opened_at: height,
        deadline,
        electorate_stake: opening.electorate_stake,
        electorate_size: u32::try_from(opening.electorate.len())
            .map_err(|_| TxError::Overflow("electorate size"))?,
        wrong_stake: Amount::ZERO,
        right_stake: Amount::ZERO,
        votes: 0,
        status: ChallengeStatus::Open,
        settlement: None,
    };
    put_challenge(state, &c);
    put_typed(
        state,
        challenge_content_key(id),
        &ChallengeContent {
            request: x.request.to_vec(),
            response: x.response.to_vec(),
        },
    );
    put_typed(state, electorate_key(id), &opening.electorate);
    put_typed(state, challenged_receipt_key(&x.receipt_id), &id);
    let mut due = challenges_due(state, deadline)?;
    due.push(id);
    put_typed(state, challenge_deadline_key(deadline), &due);
    events.push(Event::new(
        "verify.challenge_opened",
        [
            ("challenge", id.to_string()),
            ("subnet", x.subnet.to_string()),
            ("challenger", ctx.sender.to_string()),
            ("provider", provider.to_string()),
            ("receipt", x.receipt_id.to_string()),
            ("deposit", x.deposit.0.to_string()),
            ("held", held.0.to_string()),
            ("deadline", deadline.to_string()),
            ("electorate_stake", opening.electorate_stake.0.to_string()),
        ],
    ));
    Ok(id)
}

/// A subnet challenge's voter must be a validator of its subnet holding a permit.
fn subnet_voter<S: StateRead + ?Sized>(
    state: &S,
    c: &Challenge,
    voter: &hibana_types::Address,
) -> Result<(), ExecError> {
    let uid = subnets::uid_of(state, c.subnet, voter)?;
    let neurons = subnets::neurons(state, c.subnet)?;
    let neuron = uid
        .and_then(|uid| neurons.get(uid as usize))
        .ok_or_else(|| {
            invalid(format!(
                "{voter} is not a neuron of subnet {}: only its validators vote",
                c.subnet
            ))
        })?;
    if neuron.role != NeuronRole::Validator {
        return Err(invalid(format!(
            "{voter} is a miner of subnet {}: only its validators vote",
            c.subnet
        )));
    }
    if !neuron.permit {
        return Err(invalid(format!(
            "{voter} holds no validator permit in subnet {}",
            c.subnet
        )));
    }
    Ok(())
}

/// The rules of a vote: the open challenge and the voter's place in its electorate.
fn vote_rules<S: StateRead + ?Sized>(
    m: &VoteChallenge,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Challenge, Elector), ExecError> {
    let c = challenge(state, m.id)?
        .ok_or_else(|| invalid(format!("challenge {} does not exist", m.id)))?;
    if c.status != ChallengeStatus::Open {
        return Err(invalid(format!(
            "challenge {} is resolved already ({})",
            m.id,
            c.status.name()
        )));
    }
    let height = ctx.block.height;
    if height > c.deadline {
        return Err(invalid(format!(
            "voting on challenge {} closed with block {}",
            m.id, c.deadline
        )));
    }
    let voter = ctx.sender;
    if c.subnet == CHAIN_JUDGED {
        // A batch line: the chain's validators judge, while bonded and unjailed.
        let active = crate::staking::validator(state, &voter)?.is_some_and(|v| !v.jailed);
        if !active {
            return Err(invalid(format!(
                "{voter} is not a bonded, unjailed validator: only the chain's validators vote \
                 on a batch line"
            )));
        }
    } else {
        subnet_voter(state, &c, &voter)?;
    }
    let electors = electorate(state, c.id)?;
    let elector = electors
        .binary_search_by(|e| e.account.cmp(&voter))
        .ok()
        .and_then(|i| electors.get(i).cloned())
        .ok_or_else(|| {
            invalid(format!(
                "{voter} is not in challenge {}'s electorate: only the validators that held a \
                 permit when it opened (height {}) vote",
                m.id, c.opened_at
            ))
        })?;
    if vote_of(state, c.id, &voter)?.is_some() {
        return Err(invalid(format!(
            "{voter} has voted on challenge {} already",
            m.id
        )));
    }
    Ok((c, elector))
}

impl MessageHandler for VoteChallenge {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        vote_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let (mut c, elector) = vote_rules(self, state, ctx)?;
        put_typed(state, challenge_vote_key(c.id, &ctx.sender), &self.wrong);
        let side = if self.wrong {
            &mut c.wrong_stake
        } else {
            &mut c.right_stake
        };
        *side = side
            .checked_add(elector.stake)
            .ok_or(TxError::Overflow("challenge tally"))?;
        c.votes = c.votes.saturating_add(1);
        events.push(Event::new(
            "verify.challenge_vote",
            [
                ("challenge", c.id.to_string()),
                ("voter", ctx.sender.to_string()),
                (
                    "vote",
                    if self.wrong { "wrong" } else { "right" }.to_string(),
                ),
                ("stake", elector.stake.0.to_string()),
                ("wrong_stake", c.wrong_stake.0.to_string()),
                ("right_stake", c.right_stake.0.to_string()),
                ("electorate_stake", c.electorate_stake.0.to_string()),
            ],
        ));
        match resolution::verdict(&tally(&c)) {
            Verdict::Undecided => put_challenge(state, &c),
            decided => resolve(state, c, decided, ctx.block.height, events)?,
        }
        Ok(())
    }
}
