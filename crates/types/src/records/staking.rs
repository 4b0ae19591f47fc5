//! Staking records: validators, delegations, unbonding stake and their state keys.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, Amount, PublicKey};

/// Parts per million: the unit of slashing fractions.
pub const PPM: u32 = 1_000_000;

/// A validator: its key, the tokens bonded to it and the shares that claim them.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Validator {
    /// Consensus and account key.
    pub public_key: PublicKey,
    /// Tokens bonded (its voting power).
    pub tokens: Amount,
    /// Shares issued to delegators.
    pub shares: u128,
    /// Jailed validators are out of the validator set.
    pub jailed: bool,
}

/// Stake waiting out the unbonding period.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct UnbondingEntry {
    /// Who receives the tokens.
    pub delegator: Address,
    /// The validator they were bonded to (slashing still reaches them).
    pub validator: Address,
    /// Tokens to return.
    pub amount: Amount,
}

/// A member of the validator set.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// Address.
    pub address: Address,
    /// Consensus key.
    pub public_key: PublicKey,
    /// Voting power: bonded tokens in base units.
    pub power: Amount,
}

/// One delegation of an account, valued in tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationView {
    /// The validator.
    pub validator: Address,
    /// Shares held.
    pub shares: u128,
    /// Their current token value.
    pub tokens: Amount,
}

/// State key of the validator set that decides the next block (`Vec<ValidatorInfo>`), as
/// staking records it at genesis and at the end of every block; light clients prove it under a
/// header's `app_hash`.
pub const VALIDATOR_SET_KEY: &[u8] = b"staking/validator_set";

/// State key of a validator.
pub fn validator_key(address: &Address) -> Vec<u8> {
    let mut key = b"staking/validator/".to_vec();
    key.extend_from_slice(&address.0);
    key
}

/// State key of an account's delegations (validator → shares).
pub fn delegations_key(delegator: &Address) -> Vec<u8> {
    let mut key = b"staking/delegations/".to_vec();
    key.extend_from_slice(&delegator.0);
    key
}
