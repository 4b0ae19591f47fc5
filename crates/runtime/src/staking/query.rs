//! Staking queries: the validator set and an account's stake.

use hibana_types::records::staking::{DelegationView, VALIDATOR_SET_KEY, ValidatorInfo};
use hibana_types::{Address, Amount};

use super::state::*;
use crate::{StateError, StateRead, StateWrite, get_typed, params, put_typed};

/// The current validator set: unjailed validators with stake, largest first (ties by address),
/// at most `max_validators`.
pub fn validator_set<S: StateRead + ?Sized>(state: &S) -> Result<Vec<ValidatorInfo>, StateError> {
    let max = params(state)?.max_validators as usize;
    let mut set = Vec::new();
    for address in validator_index(state)? {
        if let Some(v) = validator(state, &address)?
            && !v.jailed
            && v.tokens.0 > 0
        {
            set.push(ValidatorInfo {
                address,
                public_key: v.public_key,
                power: v.tokens,
            });
        }
    }
    set.sort_by(|a, b| b.power.cmp(&a.power).then(a.address.cmp(&b.address)));
    set.truncate(max);
    Ok(set)
}

/// Stores the current [`validator_set`] under [`VALIDATOR_SET_KEY`] when it changed, so a light
/// client can prove the set that decides a block with one Merkle proof.
pub fn record_validator_set<S: StateWrite + ?Sized>(state: &mut S) -> Result<(), StateError> {
    let set = validator_set(state)?;
    if recorded_validator_set(state)?.as_ref() != Some(&set) {
        put_typed(state, VALIDATOR_SET_KEY.to_vec(), &set);
    }
    Ok(())
}

/// The set that decides the block after this state: the recorded one (computed for a state
/// written before sets were recorded).
pub fn deciding_validator_set<S: StateRead + ?Sized>(
    state: &S,
) -> Result<Vec<ValidatorInfo>, StateError> {
    match recorded_validator_set(state)? {
        Some(set) => Ok(set),
        None => validator_set(state),
    }
}

/// The validator set recorded by the last end of block (or genesis), if any.
pub fn recorded_validator_set<S: StateRead + ?Sized>(
    state: &S,
) -> Result<Option<Vec<ValidatorInfo>>, StateError> {
    get_typed(state, VALIDATOR_SET_KEY)
}

/// An account's delegations valued in tokens, and their total.
pub fn stake_of<S: StateRead + ?Sized>(
    state: &S,
    delegator: &Address,
) -> Result<(Vec<DelegationView>, Amount), StateError> {
    let mut views = Vec::new();
    let mut total = Amount::ZERO;
    for (validator_addr, shares) in delegations(state, delegator)? {
        let tokens = match validator(state, &validator_addr)? {
            Some(v) => shares_to_tokens(&v, shares),
            None => Amount::ZERO,
        };
        total = total.checked_add(tokens).unwrap_or(total);
        views.push(DelegationView {
            validator: validator_addr,
            shares,
            tokens,
        });
    }
    Ok((views, total))
}
