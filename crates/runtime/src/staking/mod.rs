//! Staking: bonding to validators (share-based, so slashing needs no iteration over delegators),
//! unbonding with a delay, slashing and jailing, and the validator set.
//!
//! State and the slashing hook other components use in [`state`], `Bond`, `Unbond` and
//! `SubmitEvidence` in `messages`, the validator set and an account's stake in [`query`]. At
//! genesis it bonds the genesis validators; each block begins by returning matured unbonding
//! stake.

mod messages;
pub mod query;
pub mod state;

pub use hibana_types::records::staking::{
    DelegationView, PPM, UnbondingEntry, Validator, ValidatorInfo, delegations_key, validator_key,
};
pub use query::{
    deciding_validator_set, record_validator_set, recorded_validator_set, stake_of, validator_set,
};
pub use state::{
    EQUIVOCATION_SLASH_PPM, delegations, jail, jailed_at, mul_div, shares_to_tokens, slash,
    total_staked, unbonding_at, validator,
};

use hibana_types::Event;

use crate::{BlockContext, Component, ExecError, Genesis, StateWrite};

/// The staking component.
#[derive(Debug, Clone, Copy, Default)]
pub struct Staking;

impl Component for Staking {
    fn name(&self) -> &'static str {
        "staking"
    }

    fn init_genesis(&self, state: &mut dyn StateWrite, genesis: &Genesis) -> Result<(), ExecError> {
        state::check_params(&genesis.params)?;
        for v in &genesis.validators {
            state::genesis_validator(state, v.public_key, v.stake)?;
        }
        query::record_validator_set(state)?;
        Ok(())
    }

    fn begin_block(
        &self,
        state: &mut dyn StateWrite,
        block: &BlockContext,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        state::begin_block(state, block.height, events)
    }

    /// Records the set that decides the next block, after every change this block made (other
    /// components slash and jail only while executing transactions, before any end of block).
    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        _block: &BlockContext,
        _events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        query::record_validator_set(state)?;
        Ok(())
    }
}
