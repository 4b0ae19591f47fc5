//! Data network state: bounties, items, reviewers, assignments, review deadlines, datasets, and
//! the escrow account that holds every bounty's rewards and every stake.

use std::collections::BTreeSet;

use hibana_types::records::data::{
    Bounty, DATA_ESCROW, Dataset, FINALIZED_BOUNTIES_KEY, Item, NEXT_BOUNTY_KEY, NEXT_ITEM_KEY,
    OPEN_BOUNTIES_KEY, Reviewer, assignments_key, bounty_items_key, bounty_key, dataset_key,
    item_by_hash_key, item_key, review_deadline_key, reviewers_key,
};
use hibana_types::{Address, Amount, Hash};

use crate::{ExecError, StateError, StateRead, StateWrite, TxError, bank, get_typed, put_typed};

/// A bounty by id.
pub fn bounty<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Option<Bounty>, StateError> {
    get_typed(state, &bounty_key(id))
}

/// An item by id.
pub fn item<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Option<Item>, StateError> {
    get_typed(state, &item_key(id))
}

/// A finalised dataset by id.
pub fn dataset<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Option<Dataset>, StateError> {
    get_typed(state, &dataset_key(id))
}

/// A bounty's items, in submission order.
pub fn bounty_items<S: StateRead + ?Sized>(state: &S, bounty: u64) -> Result<Vec<u64>, StateError> {
    Ok(get_typed(state, &bounty_items_key(bounty))?.unwrap_or_default())
}

/// The item a bounty holds with a content hash.
pub fn item_by_hash<S: StateRead + ?Sized>(
    state: &S,
    bounty: u64,
    hash: &Hash,
) -> Result<Option<u64>, StateError> {
    get_typed(state, &item_by_hash_key(bounty, hash))
}

/// A bounty's reviewers, in joining order.
pub fn reviewers<S: StateRead + ?Sized>(
    state: &S,
    bounty: u64,
) -> Result<Vec<Reviewer>, StateError> {
    Ok(get_typed(state, &reviewers_key(bounty))?.unwrap_or_default())
}

/// The items awaiting `reviewer`'s commit or reveal.
pub fn assignments<S: StateRead + ?Sized>(
    state: &S,
    reviewer: &Address,
) -> Result<BTreeSet<u64>, StateError> {
    Ok(get_typed(state, &assignments_key(reviewer))?.unwrap_or_default())
}

/// The bounties not yet finalised.
pub fn open_bounties<S: StateRead + ?Sized>(state: &S) -> Result<BTreeSet<u64>, StateError> {
    Ok(get_typed(state, OPEN_BOUNTIES_KEY)?.unwrap_or_default())
}

/// The finalised bounties.
pub fn finalized_bounties<S: StateRead + ?Sized>(state: &S) -> Result<BTreeSet<u64>, StateError> {
    Ok(get_typed(state, FINALIZED_BOUNTIES_KEY)?.unwrap_or_default())
}

/// The items whose reveal window ends at `height`.
pub fn reviews_due<S: StateRead + ?Sized>(
    state: &S,
    height: u64,
) -> Result<BTreeSet<u64>, StateError> {
    Ok(get_typed(state, &review_deadline_key(height))?.unwrap_or_default())
}

/// The escrow's balance: every reward and stake the data network still holds.
pub fn escrow_balance<S: StateRead + ?Sized>(state: &S) -> Result<Amount, StateError> {
    Ok(bank::account(state, &DATA_ESCROW)?.balance)
}

/// Moves `amount` from `from`'s balance into the escrow.
pub(crate) fn lock<S: StateWrite + ?Sized>(
    state: &mut S,
    from: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    bank::move_balance(state, from, &DATA_ESCROW, amount)
}

/// Moves `amount` from the escrow to `to`'s balance.
pub(crate) fn release<S: StateWrite + ?Sized>(
    state: &mut S,
    to: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    bank::move_balance(state, &DATA_ESCROW, to, amount)
}

pub(crate) fn put_bounty<S: StateWrite + ?Sized>(state: &mut S, b: &Bounty) {
    put_typed(state, bounty_key(b.id), b);
}

pub(crate) fn put_item<S: StateWrite + ?Sized>(state: &mut S, i: &Item) {
    put_typed(state, item_key(i.id), i);
}

pub(crate) fn put_reviewers<S: StateWrite + ?Sized>(state: &mut S, bounty: u64, r: &[Reviewer]) {
    put_typed(state, reviewers_key(bounty), &r.to_vec());
}

pub(crate) fn put_set<S: StateWrite + ?Sized>(state: &mut S, key: Vec<u8>, set: &BTreeSet<u64>) {
    if set.is_empty() {
        state.delete(key);
    } else {
        put_typed(state, key, set);
    }
}

/// Adds or removes `item` from `reviewer`'s assignments.
pub(crate) fn assign<S: StateWrite + ?Sized>(
    state: &mut S,
    reviewer: &Address,
    item: u64,
    assigned: bool,
) -> Result<(), ExecError> {
    let mut set = assignments(state, reviewer)?;
    if assigned {
        set.insert(item);
    } else {
        set.remove(&item);
    }
    put_set(state, assignments_key(reviewer), &set);
    Ok(())
}

/// Takes the next id stored under `key`.
pub(crate) fn next_id<S: StateWrite + ?Sized>(
    state: &mut S,
    key: &[u8],
    what: &'static str,
) -> Result<u64, ExecError> {
    let id: u64 = get_typed(state, key)?.unwrap_or(0);
    let next = id.checked_add(1).ok_or(TxError::Overflow(what))?;
    put_typed(state, key.to_vec(), &next);
    Ok(id)
}

/// The next bounty id.
pub(crate) fn next_bounty_id<S: StateWrite + ?Sized>(state: &mut S) -> Result<u64, ExecError> {
    next_id(state, NEXT_BOUNTY_KEY, "bounty ids")
}

/// The next item id.
pub(crate) fn next_item_id<S: StateWrite + ?Sized>(state: &mut S) -> Result<u64, ExecError> {
    next_id(state, NEXT_ITEM_KEY, "item ids")
}
