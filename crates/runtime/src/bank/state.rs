//! Bank state: accounts, balances and the total supply.

use hibana_types::{Address, Amount};

use crate::{ExecError, StateError, StateRead, StateWrite, TxError, get_typed, put_typed};
use hibana_types::records::bank::{Account, account_key};

pub(crate) const SUPPLY_KEY: &[u8] = b"bank/supply";

/// Reads an account (a default, empty account if it was never touched).
pub fn account<S: StateRead + ?Sized>(state: &S, address: &Address) -> Result<Account, StateError> {
    Ok(get_typed(state, &account_key(address))?.unwrap_or_default())
}

/// Writes an account, deleting it when it is empty.
pub fn set_account<S: StateWrite + ?Sized>(state: &mut S, address: &Address, account: &Account) {
    if *account == Account::default() {
        state.delete(account_key(address));
    } else {
        put_typed(state, account_key(address), account);
    }
}

/// The total supply: balances, bonded stake and unbonding stake together.
pub fn total_supply<S: StateRead + ?Sized>(state: &S) -> Result<Amount, StateError> {
    Ok(get_typed(state, SUPPLY_KEY)?.unwrap_or_default())
}

/// Increases the total supply (new tokens minted into an account or into stake).
pub fn mint_supply<S: StateWrite + ?Sized>(state: &mut S, amount: Amount) -> Result<(), ExecError> {
    let supply = total_supply(state)?
        .checked_add(amount)
        .ok_or(TxError::Overflow("total supply"))?;
    put_typed(state, SUPPLY_KEY.to_vec(), &supply);
    Ok(())
}

/// Decreases the total supply (tokens burned).
pub fn burn_supply<S: StateWrite + ?Sized>(state: &mut S, amount: Amount) -> Result<(), ExecError> {
    let supply = total_supply(state)?
        .checked_sub(amount)
        .ok_or(TxError::Overflow("total supply"))?;
    put_typed(state, SUPPLY_KEY.to_vec(), &supply);
    Ok(())
}

/// Adds to an account's balance.
pub fn credit<S: StateWrite + ?Sized>(
    state: &mut S,
    to: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    let mut acct = account(state, to)?;
    acct.balance = acct
        .balance
        .checked_add(amount)
        .ok_or(TxError::Overflow("balance"))?;
    set_account(state, to, &acct);
    Ok(())
}

/// Moves `amount` from `from`'s balance to `to`'s, touching neither for 0: how components lock
/// tokens in their escrow accounts and release them. Releasing more than an escrow holds fails,
/// so a bookkeeping bug fails the message rather than paying out tokens that are not there.
pub fn move_balance<S: StateWrite + ?Sized>(
    state: &mut S,
    from: &Address,
    to: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    if amount.0 == 0 {
        return Ok(());
    }
    debit(state, from, amount)?;
    credit(state, to, amount)
}

/// Fails unless `address` can spend `needed`.
pub fn require_balance<S: StateRead + ?Sized>(
    state: &S,
    address: &Address,
    needed: Amount,
) -> Result<(), ExecError> {
    let available = account(state, address)?.balance;
    if available < needed {
        return Err(TxError::InsufficientFunds {
            account: *address,
            available,
            needed,
        }
        .into());
    }
    Ok(())
}

/// Takes from an account's balance, failing if it is too small.
pub fn debit<S: StateWrite + ?Sized>(
    state: &mut S,
    from: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    let mut acct = account(state, from)?;
    acct.balance = acct
        .balance
        .checked_sub(amount)
        .ok_or(TxError::InsufficientFunds {
            account: *from,
            available: acct.balance,
            needed: amount,
        })?;
    set_account(state, from, &acct);
    Ok(())
}
