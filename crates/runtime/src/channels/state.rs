//! Channel state: the channels, the open ones per payer and per (payer, payee) pair, and the
//! escrow account that holds their deposits.

use std::collections::BTreeSet;

use hibana_types::records::channels::{
    CHANNEL_ESCROW, Channel, NEXT_CHANNEL_KEY, channel_key, pair_channels_key, payer_channels_key,
};
use hibana_types::{Address, Amount};

use crate::{ExecError, StateError, StateRead, StateWrite, TxError, bank, get_typed, put_typed};

/// A channel by id.
pub fn channel<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Option<Channel>, StateError> {
    get_typed(state, &channel_key(id))
}

/// The open channels `payer` funds.
pub fn payer_channel_ids<S: StateRead + ?Sized>(
    state: &S,
    payer: &Address,
) -> Result<BTreeSet<u64>, StateError> {
    Ok(get_typed(state, &payer_channels_key(payer))?.unwrap_or_default())
}

/// The open channels from `payer` to `payee`.
pub fn pair_channel_ids<S: StateRead + ?Sized>(
    state: &S,
    payer: &Address,
    payee: &Address,
) -> Result<BTreeSet<u64>, StateError> {
    Ok(get_typed(state, &pair_channels_key(payer, payee))?.unwrap_or_default())
}

/// The channels' escrow balance: every token the open channels still hold.
pub fn escrow_balance<S: StateRead + ?Sized>(state: &S) -> Result<Amount, StateError> {
    Ok(bank::account(state, &CHANNEL_ESCROW)?.balance)
}

/// Moves `amount` from `from`'s balance into the escrow account.
pub(crate) fn lock<S: StateWrite + ?Sized>(
    state: &mut S,
    from: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    bank::move_balance(state, from, &CHANNEL_ESCROW, amount)
}

/// Moves `amount` from the escrow account to `to`'s balance.
pub(crate) fn release<S: StateWrite + ?Sized>(
    state: &mut S,
    to: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    bank::move_balance(state, &CHANNEL_ESCROW, to, amount)
}

pub(crate) fn put_channel<S: StateWrite + ?Sized>(state: &mut S, c: &Channel) {
    put_typed(state, channel_key(c.id), c);
}

fn put_set<S: StateWrite + ?Sized>(state: &mut S, key: Vec<u8>, set: &BTreeSet<u64>) {
    if set.is_empty() {
        state.delete(key);
    } else {
        put_typed(state, key, set);
    }
}

/// Adds (`open`) or removes a channel from its payer's and its pair's sets of open channels.
pub(crate) fn list_open<S: StateWrite + ?Sized>(
    state: &mut S,
    c: &Channel,
    open: bool,
) -> Result<(), ExecError> {
    let mut of_payer = payer_channel_ids(state, &c.payer)?;
    let mut of_pair = pair_channel_ids(state, &c.payer, &c.payee)?;
    if open {
        of_payer.insert(c.id);
        of_pair.insert(c.id);
    } else {
        of_payer.remove(&c.id);
        of_pair.remove(&c.id);
    }
    put_set(state, payer_channels_key(&c.payer), &of_payer);
    put_set(state, pair_channels_key(&c.payer, &c.payee), &of_pair);
    Ok(())
}

/// Takes the next channel id.
pub(crate) fn next_channel_id<S: StateWrite + ?Sized>(state: &mut S) -> Result<u64, ExecError> {
    let id: u64 = get_typed(state, NEXT_CHANNEL_KEY)?.unwrap_or(0);
    let next = id.checked_add(1).ok_or(TxError::Overflow("channel ids"))?;
    put_typed(state, NEXT_CHANNEL_KEY.to_vec(), &next);
    Ok(id)
}
