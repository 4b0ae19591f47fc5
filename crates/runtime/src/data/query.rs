//! What the RPC answers about the data network.

use hibana_types::records::data::{Bounty, Dataset, DatasetLeaf, Item, Reviewer};
use hibana_types::{Address, Amount};

use super::state::*;
use crate::{StateError, StateRead};

/// Most items one page of a bounty's items holds.
pub const MAX_ITEMS_PER_PAGE: usize = 1_000;

/// A bounty with its reviewers.
pub fn bounty_with_reviewers<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
) -> Result<Option<(Bounty, Vec<Reviewer>)>, StateError> {
    let Some(b) = bounty(state, id)? else {
        return Ok(None);
    };
    Ok(Some((b, reviewers(state, id)?)))
}

/// Every bounty, open ones first, newest first within each group, at most `limit`.
pub fn list_bounties<S: StateRead + ?Sized>(
    state: &S,
    limit: usize,
) -> Result<Vec<Bounty>, StateError> {
    let mut out = Vec::new();
    for id in open_bounties(state)?
        .into_iter()
        .rev()
        .chain(finalized_bounties(state)?.into_iter().rev())
    {
        if out.len() >= limit {
            break;
        }
        if let Some(b) = bounty(state, id)? {
            out.push(b);
        }
    }
    Ok(out)
}

/// A page of a bounty's items, from position `from` in submission order.
pub fn items_page<S: StateRead + ?Sized>(
    state: &S,
    bounty_id: u64,
    from: usize,
    limit: usize,
) -> Result<Vec<Item>, StateError> {
    let ids = bounty_items(state, bounty_id)?;
    let mut out = Vec::new();
    for id in ids
        .into_iter()
        .skip(from)
        .take(limit.min(MAX_ITEMS_PER_PAGE))
    {
        if let Some(i) = item(state, id)? {
            out.push(i);
        }
    }
    Ok(out)
}

/// The items awaiting `reviewer`'s commit or reveal.
pub fn pending_reviews<S: StateRead + ?Sized>(
    state: &S,
    reviewer: &Address,
) -> Result<Vec<Item>, StateError> {
    let mut out = Vec::new();
    for id in assignments(state, reviewer)? {
        if let Some(i) = item(state, id)? {
            out.push(i);
        }
    }
    Ok(out)
}

/// A finalised dataset with the leaves its root commits to, in order.
pub fn dataset_with_leaves<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
) -> Result<Option<(Dataset, Vec<DatasetLeaf>)>, StateError> {
    let Some(d) = dataset(state, id)? else {
        return Ok(None);
    };
    let mut leaves = Vec::with_capacity(d.items.len());
    for item_id in &d.items {
        if let Some(i) = item(state, *item_id)? {
            leaves.push(DatasetLeaf {
                bounty: d.id,
                item: i.id,
                contributor: i.contributor,
                hash: i.hash,
            });
        }
    }
    Ok(Some((d, leaves)))
}

/// What the escrow should hold for the bounties not yet finalised: unspent budgets, earnings
/// owed, reviewer stakes, pending contribution stakes and forfeited stakes. Equal to
/// [`escrow_balance`] at every height (the property tests check it).
pub fn escrow_owed<S: StateRead + ?Sized>(state: &S) -> Result<Amount, StateError> {
    let mut total: u128 = 0;
    for id in open_bounties(state)? {
        let Some(b) = bounty(state, id)? else {
            continue;
        };
        total = total
            .saturating_add(b.escrowed.0.saturating_sub(b.paid.0))
            .saturating_add(b.forfeited.0)
            .saturating_add(
                b.terms
                    .contribution_stake
                    .0
                    .saturating_mul(u128::from(b.pending())),
            );
        for r in reviewers(state, id)? {
            total = total.saturating_add(r.stake.0).saturating_add(r.earned.0);
        }
    }
    Ok(Amount(total))
}
