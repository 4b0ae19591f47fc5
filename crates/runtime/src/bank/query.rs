//! Bank queries: an account as the RPC shows it.

use hibana_types::{AccountView, Address};

use super::state::account;
use crate::{StateError, StateRead, staking};

/// Reads an account's balance, nonce and stake.
pub fn query_account<S: StateRead + ?Sized>(
    state: &S,
    address: &Address,
) -> Result<AccountView, StateError> {
    let account = account(state, address)?;
    let (delegations, stake) = staking::stake_of(state, address)?;
    Ok(AccountView {
        address: *address,
        balance: account.balance,
        nonce: account.nonce,
        stake,
        delegations,
    })
}
