//! Staking state: validators, delegations, unbonding queues, slashing and jailing.

use std::collections::{BTreeMap, BTreeSet};

use hibana_types::records::staking::{
    PPM, UnbondingEntry, Validator, delegations_key, validator_key,
};
use hibana_types::{Address, Amount, Event, PublicKey, VoteKind};

use crate::{
    ExecError, Params, StateError, StateRead, StateWrite, TxError, bank, get_typed, invalid,
    params, put_typed,
};

pub(crate) const VALIDATOR_INDEX_KEY: &[u8] = b"staking/validators";

/// Share of a validator's stake (and of the stake unbonding from it) burned for equivocation.
pub const EQUIVOCATION_SLASH_PPM: u32 = 50_000;

pub(crate) fn unbonding_key(release_height: u64) -> Vec<u8> {
    let mut key = b"staking/unbonding/".to_vec();
    key.extend_from_slice(&release_height.to_be_bytes());
    key
}

/// Reads a validator.
pub fn validator<S: StateRead + ?Sized>(
    state: &S,
    address: &Address,
) -> Result<Option<Validator>, StateError> {
    get_typed(state, &validator_key(address))
}

/// Reads an account's delegations.
pub fn delegations<S: StateRead + ?Sized>(
    state: &S,
    delegator: &Address,
) -> Result<BTreeMap<Address, u128>, StateError> {
    Ok(get_typed(state, &delegations_key(delegator))?.unwrap_or_default())
}

pub(crate) fn set_delegations<S: StateWrite + ?Sized>(
    state: &mut S,
    delegator: &Address,
    d: &BTreeMap<Address, u128>,
) {
    if d.is_empty() {
        state.delete(delegations_key(delegator));
    } else {
        put_typed(state, delegations_key(delegator), d);
    }
}

pub(crate) fn validator_index<S: StateRead + ?Sized>(
    state: &S,
) -> Result<BTreeSet<Address>, StateError> {
    Ok(get_typed(state, VALIDATOR_INDEX_KEY)?.unwrap_or_default())
}

/// Unbonding entries released at a height.
pub fn unbonding_at<S: StateRead + ?Sized>(
    state: &S,
    height: u64,
) -> Result<Vec<UnbondingEntry>, StateError> {
    Ok(get_typed(state, &unbonding_key(height))?.unwrap_or_default())
}

/// `a * b / c` without overflow of the intermediate product where possible; `None` if the result
/// does not fit or `c` is zero. Rounds down.
pub fn mul_div(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    match a.checked_mul(b) {
        Some(p) => Some(p / c),
        None => {
            // Split a = q*c + r so that a*b/c = q*b + r*b/c, keeping intermediates small.
            let (q, r) = (a / c, a % c);
            q.checked_mul(b)?.checked_add(r.checked_mul(b)? / c)
        }
    }
}

/// Token value of `shares` of a validator.
pub fn shares_to_tokens(v: &Validator, shares: u128) -> Amount {
    Amount(mul_div(shares, v.tokens.0, v.shares).unwrap_or(0))
}

/// Sum of all stake that is bonded or unbonding (for supply checks).
pub fn total_staked<S: StateRead + ?Sized>(
    state: &S,
    from_height: u64,
) -> Result<u128, StateError> {
    let mut total: u128 = 0;
    for address in validator_index(state)? {
        if let Some(v) = validator(state, &address)? {
            total = total.saturating_add(v.tokens.0);
        }
    }
    let period = params(state)?.unbonding_period.max(1);
    for release in from_height..=from_height.saturating_add(period) {
        for e in unbonding_at(state, release)? {
            total = total.saturating_add(e.amount.0);
        }
    }
    Ok(total)
}

/// Bonds `amount` (already taken from a balance or minted) from `delegator` to `validator_addr`.
pub(crate) fn bond_tokens<S: StateWrite + ?Sized>(
    state: &mut S,
    delegator: &Address,
    validator_addr: &Address,
    own_key: Option<PublicKey>,
    amount: Amount,
) -> Result<(), ExecError> {
    let mut v = match (validator(state, validator_addr)?, own_key) {
        (Some(v), _) => v,
        (None, Some(public_key)) => {
            let mut index = validator_index(state)?;
            index.insert(*validator_addr);
            put_typed(state, VALIDATOR_INDEX_KEY.to_vec(), &index);
            Validator {
                public_key,
                tokens: Amount::ZERO,
                shares: 0,
                jailed: false,
            }
        }
        (None, None) => {
            return Err(invalid(format!(
                "{validator_addr} is not a validator: a validator registers by bonding to its own address"
            )));
        }
    };
    if v.jailed {
        return Err(invalid(format!("validator {validator_addr} is jailed")));
    }
    let new_shares = if v.shares == 0 {
        amount.0
    } else if v.tokens.0 == 0 {
        return Err(invalid(format!(
            "validator {validator_addr} has been slashed to zero"
        )));
    } else {
        mul_div(amount.0, v.shares, v.tokens.0).ok_or(TxError::Overflow("shares"))?
    };
    if new_shares == 0 {
        return Err(invalid("bond amount is too small to buy a share"));
    }
    v.tokens = v
        .tokens
        .checked_add(amount)
        .ok_or(TxError::Overflow("validator tokens"))?;
    v.shares = v
        .shares
        .checked_add(new_shares)
        .ok_or(TxError::Overflow("validator shares"))?;
    put_typed(state, validator_key(validator_addr), &v);
    let mut d = delegations(state, delegator)?;
    let held = d.entry(*validator_addr).or_insert(0);
    *held = held
        .checked_add(new_shares)
        .ok_or(TxError::Overflow("delegation shares"))?;
    set_delegations(state, delegator, &d);
    Ok(())
}

/// Writes the genesis validator: stake minted and self-bonded.
pub(crate) fn genesis_validator<S: StateWrite + ?Sized>(
    state: &mut S,
    public_key: PublicKey,
    stake: Amount,
) -> Result<(), ExecError> {
    let address = public_key.address();
    bank::mint_supply(state, stake)?;
    bond_tokens(state, &address, &address, Some(public_key), stake)
}

/// Returns matured unbonding stake to its owners at the start of block `height`.
pub(crate) fn begin_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let entries = unbonding_at(state, height)?;
    if entries.is_empty() {
        return Ok(());
    }
    state.delete(unbonding_key(height));
    for entry in entries {
        bank::credit(state, &entry.delegator, entry.amount)?;
        events.push(Event::new(
            "staking.unbonded",
            [
                ("delegator", entry.delegator.to_string()),
                ("amount", entry.amount.0.to_string()),
            ],
        ));
    }
    Ok(())
}

/// Slashes `fraction_ppm` parts per million of the stake bonded to `validator_addr`, including
/// stake still unbonding from it, and burns it. Called by other components on proven misbehaviour.
/// Returns the amount burned.
pub fn slash<S: StateWrite + ?Sized>(
    state: &mut S,
    validator_addr: &Address,
    fraction_ppm: u32,
    reason: &str,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<Amount, ExecError> {
    if fraction_ppm > PPM {
        return Err(invalid(format!(
            "slash fraction {fraction_ppm} ppm exceeds 100%"
        )));
    }
    let mut v = validator(state, validator_addr)?
        .ok_or_else(|| invalid(format!("{validator_addr} is not a validator")))?;
    let ppm = u128::from(fraction_ppm);
    let cut = mul_div(v.tokens.0, ppm, u128::from(PPM)).ok_or(TxError::Overflow("slash"))?;
    v.tokens = Amount(v.tokens.0 - cut);
    put_typed(state, validator_key(validator_addr), &v);
    let mut burned = cut;
    let period = params(state)?.unbonding_period.max(1);
    for release in height.saturating_add(1)..=height.saturating_add(period) {
        let mut queue = unbonding_at(state, release)?;
        let mut changed = false;
        for entry in queue.iter_mut().filter(|e| e.validator == *validator_addr) {
            let entry_cut =
                mul_div(entry.amount.0, ppm, u128::from(PPM)).ok_or(TxError::Overflow("slash"))?;
            entry.amount = Amount(entry.amount.0 - entry_cut);
            burned = burned
                .checked_add(entry_cut)
                .ok_or(TxError::Overflow("slash"))?;
            changed = true;
        }
        if changed {
            put_typed(state, unbonding_key(release), &queue);
        }
    }
    bank::burn_supply(state, Amount(burned))?;
    events.push(Event::new(
        "staking.slash",
        [
            ("validator", validator_addr.to_string()),
            ("fraction_ppm", fraction_ppm.to_string()),
            ("burned", burned.to_string()),
            ("reason", reason.to_string()),
        ],
    ));
    Ok(Amount(burned))
}

/// State key of the height a validator was jailed at.
pub(crate) fn jailed_at_key(validator: &Address) -> Vec<u8> {
    let mut key = b"staking/jailed_at/".to_vec();
    key.extend_from_slice(&validator.0);
    key
}

/// The height a jailed validator was jailed at (0 for one jailed before this was recorded).
pub fn jailed_at<S: StateRead + ?Sized>(state: &S, validator: &Address) -> Result<u64, StateError> {
    Ok(get_typed(state, &jailed_at_key(validator))?.unwrap_or(0))
}

/// Removes a validator from the validator set until it is unjailed (`Unjail`, once the jail
/// period, the unbonding period, is over).
pub fn jail<S: StateWrite + ?Sized>(
    state: &mut S,
    validator_addr: &Address,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let mut v = validator(state, validator_addr)?
        .ok_or_else(|| invalid(format!("{validator_addr} is not a validator")))?;
    v.jailed = true;
    put_typed(state, validator_key(validator_addr), &v);
    put_typed(state, jailed_at_key(validator_addr), &height);
    events.push(Event::new(
        "staking.jail",
        [("validator", validator_addr.to_string())],
    ));
    Ok(())
}

pub(crate) fn check_params(p: &Params) -> Result<(), TxError> {
    if p.unbonding_period == 0 {
        return Err(TxError::Invalid("unbonding period must be positive".into()));
    }
    Ok(())
}

pub(crate) fn evidence_key(e: &hibana_types::Equivocation) -> Vec<u8> {
    let v = &e.first.vote;
    let mut key = b"staking/evidence/".to_vec();
    key.extend_from_slice(&v.validator.0);
    key.extend_from_slice(&v.height.to_be_bytes());
    key.extend_from_slice(&hibana_types::encode(&(
        v.round,
        v.kind == VoteKind::Precommit,
    )));
    key
}

/// Where the height of a validator's first equivocation punishment is kept: one slash per
/// validator, however many conflicting votes a double-signing setup produced.
pub(crate) fn punished_key(validator: &Address) -> Vec<u8> {
    let mut key = b"staking/equivocated/".to_vec();
    key.extend_from_slice(&validator.0);
    key
}
