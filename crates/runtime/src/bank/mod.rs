//! Bank: account balances and nonces, transfers, fees and the total supply.
//!
//! State in [`state`] (accounts under `acct/`, the supply), the `Transfer` message in
//! `messages`, and the account view the RPC answers with in [`query`]. At genesis it credits
//! the genesis accounts and mints their balances into the supply.

mod messages;
pub mod query;
pub mod state;

pub use hibana_types::records::bank::{Account, account_key};
pub use state::{
    account, burn_supply, credit, debit, mint_supply, move_balance, require_balance, set_account,
    total_supply,
};

use crate::{Component, ExecError, Genesis, StateWrite};

/// The bank component.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bank;

impl Component for Bank {
    fn name(&self) -> &'static str {
        "bank"
    }

    fn init_genesis(&self, state: &mut dyn StateWrite, genesis: &Genesis) -> Result<(), ExecError> {
        for account in &genesis.accounts {
            credit(state, &account.address, account.balance)?;
            mint_supply(state, account.balance)?;
        }
        Ok(())
    }
}
