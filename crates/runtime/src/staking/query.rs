//! Staking queries: the validator set and an account's stake.

use hibana_types::records::staking::{DelegationView, ValidatorInfo};
use hibana_types::{Address, Amount};

use super::state::*;
use crate::{StateError, StateRead, params};

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
