//! Market queries: providers, orders with their bids, and leases, as the RPC answers.

use hibana_types::Address;
use hibana_types::records::market::{Bid, Lease, Order, Provider};

use super::state::{
    bids, lease, open_order_ids, order, owner_lease_ids, provider, provider_addresses,
    provider_lease_ids,
};
use crate::{StateError, StateRead};

/// Most records one list query returns.
pub const MAX_LIST: usize = 500;

/// The registered providers, by address (at most [`MAX_LIST`]).
pub fn providers<S: StateRead + ?Sized>(state: &S) -> Result<Vec<Provider>, StateError> {
    let mut out = Vec::new();
    for address in provider_addresses(state)?.iter().take(MAX_LIST) {
        if let Some(p) = provider(state, address)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// The open orders, oldest first (at most [`MAX_LIST`]).
pub fn open_orders<S: StateRead + ?Sized>(state: &S) -> Result<Vec<Order>, StateError> {
    let mut out = Vec::new();
    for id in open_order_ids(state)?.iter().take(MAX_LIST) {
        if let Some(o) = order(state, *id)? {
            out.push(o);
        }
    }
    Ok(out)
}

/// An order and its bids.
pub fn order_with_bids<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
) -> Result<Option<(Order, Vec<Bid>)>, StateError> {
    match order(state, id)? {
        None => Ok(None),
        Some(o) => Ok(Some((o, bids(state, id)?))),
    }
}

/// The active leases an account owns as a client or serves as a provider, by id.
pub fn active_leases<S: StateRead + ?Sized>(
    state: &S,
    account: &Address,
) -> Result<Vec<Lease>, StateError> {
    let mut ids = owner_lease_ids(state, account)?;
    ids.extend(provider_lease_ids(state, account)?);
    let mut out = Vec::new();
    for id in ids.iter().take(MAX_LIST) {
        if let Some(l) = lease(state, *id)? {
            out.push(l);
        }
    }
    Ok(out)
}
