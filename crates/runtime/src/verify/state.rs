//! Verify state: registered models, their `.zkm` files, verified inferences and fees; and
//! challenges against signed receipts: their records, contents, electorates and votes, the
//! index of receipts challenged and of voting deadlines, and the moves of tokens into and out
//! of [`CHALLENGE_ESCROW`].

use hibana_types::records::verify::{
    CHALLENGE_ESCROW, Challenge, ChallengeContent, ChallengeSettlement, ChallengeStatus, Elector,
    NEXT_CHALLENGE_KEY, ZkInferenceRecord, ZkModelRecord, challenge_content_key,
    challenge_deadline_key, challenge_key, challenge_vote_key, challenged_receipt_key,
    electorate_key, inference_key, model_key,
};
use hibana_types::{Address, Amount, Event, Hash, SubmitZkInference};
use hibana_zkml::{ProofSystem, ZkModel};

use super::resolution::{self, Tally, Verdict};
use crate::{
    ExecError, StateError, StateRead, StateWrite, TxError, bank, get_typed, market, put_typed,
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

/// Reads a challenge.
pub fn challenge<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
) -> Result<Option<Challenge>, StateError> {
    get_typed(state, &challenge_key(id))
}

/// Reads the request and response a challenge carries.
pub fn challenge_content<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
) -> Result<Option<ChallengeContent>, StateError> {
    get_typed(state, &challenge_content_key(id))
}

/// A challenge's electorate, by account.
pub fn electorate<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Vec<Elector>, StateError> {
    Ok(get_typed(state, &electorate_key(id))?.unwrap_or_default())
}

/// An account's vote on a challenge (`true` for "wrong"), if it voted.
pub fn vote_of<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
    voter: &Address,
) -> Result<Option<bool>, StateError> {
    get_typed(state, &challenge_vote_key(id, voter))
}

/// The challenge of a receipt, by the receipt's id.
pub fn challenge_of_receipt<S: StateRead + ?Sized>(
    state: &S,
    receipt_id: &Hash,
) -> Result<Option<u64>, StateError> {
    get_typed(state, &challenged_receipt_key(receipt_id))
}

/// The challenges whose voting ends with block `height`.
pub fn challenges_due<S: StateRead + ?Sized>(
    state: &S,
    height: u64,
) -> Result<Vec<u64>, StateError> {
    Ok(get_typed(state, &challenge_deadline_key(height))?.unwrap_or_default())
}

/// The number of challenges opened so far (the next id).
pub fn challenge_count<S: StateRead + ?Sized>(state: &S) -> Result<u64, StateError> {
    Ok(get_typed(state, NEXT_CHALLENGE_KEY)?.unwrap_or(0))
}

/// The challenge escrow's balance: the deposits and held bonds of the open challenges.
pub fn challenge_escrow_balance<S: StateRead + ?Sized>(state: &S) -> Result<Amount, StateError> {
    Ok(bank::account(state, &CHALLENGE_ESCROW)?.balance)
}

pub(crate) fn put_challenge<S: StateWrite + ?Sized>(state: &mut S, c: &Challenge) {
    put_typed(state, challenge_key(c.id), c);
}

/// Takes the next challenge id.
pub(crate) fn next_challenge_id<S: StateWrite + ?Sized>(state: &mut S) -> Result<u64, ExecError> {
    let id = challenge_count(state)?;
    let next = id
        .checked_add(1)
        .ok_or(TxError::Overflow("challenge id counter"))?;
    put_typed(state, NEXT_CHALLENGE_KEY.to_vec(), &next);
    Ok(id)
}

/// The electors of challenge `c` who voted `wrong` (in the electorate's order, by account).
pub(crate) fn voters_for<S: StateRead + ?Sized>(
    state: &S,
    c: &Challenge,
    wrong: bool,
) -> Result<Vec<Elector>, StateError> {
    let mut out = Vec::new();
    for e in electorate(state, c.id)? {
        if vote_of(state, c.id, &e.account)? == Some(wrong) {
            out.push(e);
        }
    }
    Ok(out)
}

/// The tally of a challenge.
pub(crate) fn tally(c: &Challenge) -> Tally {
    Tally {
        electorate: c.electorate_stake.0,
        wrong: c.wrong_stake.0,
        right: c.right_stake.0,
    }
}

/// Resolves challenge `c` with `verdict` (undecided: no quorum) at `height`: settles it by the
/// rules of [`resolution`], moves the tokens out of the escrow, stores it and says so.
pub(crate) fn resolve<S: StateWrite + ?Sized>(
    state: &mut S,
    mut c: Challenge,
    verdict: Verdict,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let settlement = match verdict {
        Verdict::Upheld => {
            let winners = voters_for(state, &c, true)?;
            resolution::upheld(height, c.held, c.deposit, c.receipt.body.price, &winners)?
        }
        Verdict::Rejected => {
            let winners = voters_for(state, &c, false)?;
            resolution::rejected(height, c.held, c.deposit, &winners)?
        }
        Verdict::Undecided => resolution::no_quorum(height, c.held, c.deposit),
    };
    let held = c
        .held
        .checked_add(c.deposit)
        .ok_or(TxError::Overflow("challenge escrow"))?;
    if resolution::paid_out(&settlement) != Some(held.0) {
        // The settlement must pay out exactly what the challenge holds: a bug otherwise, and
        // the message fails rather than moving tokens that are not there.
        return Err(TxError::Invalid(format!(
            "internal error: challenge {} would pay out other than the {held} it holds",
            c.id
        ))
        .into());
    }
    pay_out(state, &c, &settlement, events)?;
    c.status = resolution::status_of(verdict);
    events.push(Event::new(
        "verify.challenge_resolved",
        [
            ("challenge", c.id.to_string()),
            ("outcome", c.status.name().to_string()),
            ("provider", c.provider.to_string()),
            ("challenger", c.challenger.to_string()),
            ("slashed", settlement.slashed.0.to_string()),
            ("bond_returned", settlement.bond_returned.0.to_string()),
            (
                "deposit_returned",
                settlement.deposit_returned.0.to_string(),
            ),
            ("refund", settlement.refund.0.to_string()),
            (
                "challenger_reward",
                settlement.challenger_reward.0.to_string(),
            ),
            (
                "voters_paid",
                settlement
                    .voters
                    .iter()
                    .map(|(_, a)| a.0)
                    .sum::<u128>()
                    .to_string(),
            ),
            ("burned", settlement.burned.0.to_string()),
        ],
    ));
    c.settlement = Some(settlement);
    put_challenge(state, &c);
    if c.status == ChallengeStatus::Upheld {
        // A wrong batch line refutes its batch and closes the lease.
        market::refute_batch(state, c.id, height, events)?;
    }
    Ok(())
}

/// Moves a settlement's tokens out of the escrow: the held bond back to the provider, the
/// challenger's due, each voter's share, and the burn (which lowers the total supply).
fn pay_out<S: StateWrite + ?Sized>(
    state: &mut S,
    c: &Challenge,
    s: &ChallengeSettlement,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    if s.bond_returned.0 > 0 {
        let to_bond =
            market::state::return_bond(state, &c.provider, s.bond_returned, &CHALLENGE_ESCROW)?;
        events.push(Event::new(
            "verify.bond_returned",
            [
                ("challenge", c.id.to_string()),
                ("provider", c.provider.to_string()),
                ("amount", s.bond_returned.0.to_string()),
                ("to", if to_bond { "bond" } else { "balance" }.to_string()),
            ],
        ));
    }
    if s.slashed.0 > 0 {
        events.push(Event::new(
            "verify.provider_slashed",
            [
                ("challenge", c.id.to_string()),
                ("provider", c.provider.to_string()),
                ("amount", s.slashed.0.to_string()),
            ],
        ));
    }
    let challenger_due = s
        .deposit_returned
        .checked_add(s.refund)
        .and_then(|a| a.checked_add(s.challenger_reward))
        .ok_or(TxError::Overflow("challenger payout"))?;
    release(state, &c.challenger, challenger_due)?;
    for (voter, share) in &s.voters {
        release(state, voter, *share)?;
        events.push(Event::new(
            "verify.challenge_voter_paid",
            [
                ("challenge", c.id.to_string()),
                ("voter", voter.to_string()),
                ("amount", share.0.to_string()),
            ],
        ));
    }
    if s.burned.0 > 0 {
        bank::debit(state, &CHALLENGE_ESCROW, s.burned)?;
        bank::burn_supply(state, s.burned)?;
    }
    Ok(())
}

/// Moves `amount` from the challenge escrow to `to`.
fn release<S: StateWrite + ?Sized>(
    state: &mut S,
    to: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    bank::move_balance(state, &CHALLENGE_ESCROW, to, amount)
}

/// Closes with no quorum the challenges whose voting ended with block `height` undecided
/// (those decided earlier stay in the index and are skipped). Only the challenges indexed under
/// this height are read.
pub(crate) fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let due = challenges_due(state, height)?;
    if due.is_empty() {
        return Ok(());
    }
    state.delete(challenge_deadline_key(height));
    for id in due {
        let Some(c) = challenge(state, id)? else {
            continue;
        };
        if c.status != ChallengeStatus::Open {
            continue;
        }
        resolve(state, c, Verdict::Undecided, height, events)?;
    }
    Ok(())
}
