//! Market state: providers, orders and their bids, the expiry index, leases and their
//! indexes, and the moves of tokens into and out of [`MARKET_ESCROW`].

use std::collections::BTreeSet;

use hibana_types::records::market::{
    Bid, DISPUTE_SLASH, Lease, LeaseStatus, MARKET_ESCROW, NEXT_LEASE_KEY, NEXT_ORDER_KEY, Order,
    OrderStatus, Provider, SET_BUCKETS, bids_key, expiry_key, lease_due_key, lease_key,
    open_orders_key, order_key, owner_leases_key, provider_key, provider_leases_key, providers_key,
};
use hibana_types::records::verify::{BPS, CHALLENGER_REWARD_BPS};
use hibana_types::{Address, Amount, Event};

use crate::{ExecError, StateError, StateRead, StateWrite, TxError, bank, get_typed, put_typed};

/// Reads a provider.
pub fn provider<S: StateRead + ?Sized>(
    state: &S,
    address: &Address,
) -> Result<Option<Provider>, StateError> {
    get_typed(state, &provider_key(address))
}

/// The registered providers' addresses, in order (every bucket read: for queries).
pub fn provider_addresses<S: StateRead + ?Sized>(
    state: &S,
) -> Result<BTreeSet<Address>, StateError> {
    all_buckets(state, providers_key)
}

/// Adds (`true`) or removes a provider from its bucket of the registered set.
pub(crate) fn list_provider<S: StateWrite + ?Sized>(
    state: &mut S,
    address: &Address,
    listed: bool,
) -> Result<(), StateError> {
    let key = providers_key(address.0[0]);
    let mut bucket: BTreeSet<Address> = get_typed(state, &key)?.unwrap_or_default();
    if listed {
        bucket.insert(*address);
    } else {
        bucket.remove(address);
    }
    put_set(state, key, &bucket);
    Ok(())
}

/// Adds (`true`) or removes an order from its bucket of the open set.
pub(crate) fn list_open_order<S: StateWrite + ?Sized>(
    state: &mut S,
    id: u64,
    open: bool,
) -> Result<(), StateError> {
    let key = open_orders_key(order_bucket(id));
    let mut bucket: BTreeSet<u64> = get_typed(state, &key)?.unwrap_or_default();
    if open {
        bucket.insert(id);
    } else {
        bucket.remove(&id);
    }
    put_set(state, key, &bucket);
    Ok(())
}

/// The bucket of order `id`.
fn order_bucket(id: u64) -> u8 {
    (id % SET_BUCKETS as u64) as u8
}

/// The union of every bucket of a set whose bucket keys `key` gives.
fn all_buckets<T: Ord + borsh::BorshDeserialize, S: StateRead + ?Sized>(
    state: &S,
    key: fn(u8) -> Vec<u8>,
) -> Result<BTreeSet<T>, StateError> {
    let mut all = BTreeSet::new();
    for bucket in 0..SET_BUCKETS {
        let part: Option<BTreeSet<T>> = get_typed(state, &key(bucket as u8))?;
        all.extend(part.unwrap_or_default());
    }
    Ok(all)
}

/// Reads an order.
pub fn order<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Option<Order>, StateError> {
    get_typed(state, &order_key(id))
}

/// The ids of the open orders, in order (every bucket read: for queries).
pub fn open_order_ids<S: StateRead + ?Sized>(state: &S) -> Result<BTreeSet<u64>, StateError> {
    all_buckets(state, open_orders_key)
}

/// An order's bids, ordered by provider.
pub fn bids<S: StateRead + ?Sized>(state: &S, order: u64) -> Result<Vec<Bid>, StateError> {
    Ok(get_typed(state, &bids_key(order))?.unwrap_or_default())
}

/// The orders that expire at the end of block `height`.
pub fn expiring_at<S: StateRead + ?Sized>(state: &S, height: u64) -> Result<Vec<u64>, StateError> {
    Ok(get_typed(state, &expiry_key(height))?.unwrap_or_default())
}

/// The active leases that run out at the end of block `height` ([`Lease::due_at`]).
pub fn leases_due_at<S: StateRead + ?Sized>(
    state: &S,
    height: u64,
) -> Result<BTreeSet<u64>, StateError> {
    Ok(get_typed(state, &lease_due_key(height))?.unwrap_or_default())
}

/// Files an active lease under the height it runs out at.
pub(crate) fn file_lease_due<S: StateWrite + ?Sized>(
    state: &mut S,
    lease: &Lease,
) -> Result<(), StateError> {
    let due = lease.due_at();
    let mut set = leases_due_at(state, due)?;
    set.insert(lease.id);
    put_set(state, lease_due_key(due), &set);
    Ok(())
}

/// Takes a lease out of the file of the height it was due at.
pub(crate) fn unfile_lease_due<S: StateWrite + ?Sized>(
    state: &mut S,
    id: u64,
    due: u64,
) -> Result<(), StateError> {
    let mut set = leases_due_at(state, due)?;
    if set.remove(&id) {
        put_set(state, lease_due_key(due), &set);
    }
    Ok(())
}

/// Reads a lease.
pub fn lease<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Option<Lease>, StateError> {
    get_typed(state, &lease_key(id))
}

/// The active leases a client owns.
pub fn owner_lease_ids<S: StateRead + ?Sized>(
    state: &S,
    owner: &Address,
) -> Result<BTreeSet<u64>, StateError> {
    Ok(get_typed(state, &owner_leases_key(owner))?.unwrap_or_default())
}

/// The active leases a provider serves.
pub fn provider_lease_ids<S: StateRead + ?Sized>(
    state: &S,
    provider: &Address,
) -> Result<BTreeSet<u64>, StateError> {
    Ok(get_typed(state, &provider_leases_key(provider))?.unwrap_or_default())
}

/// The market's escrow balance: every token it holds for someone.
pub fn escrow_balance<S: StateRead + ?Sized>(state: &S) -> Result<Amount, StateError> {
    Ok(bank::account(state, &MARKET_ESCROW)?.balance)
}

/// Moves `amount` from `from`'s balance into the escrow account.
pub(crate) fn lock<S: StateWrite + ?Sized>(
    state: &mut S,
    from: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    bank::debit(state, from, amount)?;
    bank::credit(state, &MARKET_ESCROW, amount)
}

/// Moves `amount` from the escrow account to `to`'s balance.
pub(crate) fn release<S: StateWrite + ?Sized>(
    state: &mut S,
    to: &Address,
    amount: Amount,
) -> Result<(), ExecError> {
    bank::move_balance(state, &MARKET_ESCROW, to, amount)
}

pub(crate) fn put_provider<S: StateWrite + ?Sized>(state: &mut S, p: &Provider) {
    put_typed(state, provider_key(&p.address), p);
}

pub(crate) fn put_order<S: StateWrite + ?Sized>(state: &mut S, o: &Order) {
    put_typed(state, order_key(o.id), o);
}

pub(crate) fn put_lease<S: StateWrite + ?Sized>(state: &mut S, l: &Lease) {
    put_typed(state, lease_key(l.id), l);
}

pub(crate) fn put_bids<S: StateWrite + ?Sized>(state: &mut S, order: u64, bids: &[Bid]) {
    if bids.is_empty() {
        state.delete(bids_key(order));
    } else {
        put_typed(state, bids_key(order), &bids.to_vec());
    }
}

/// Writes a set under `key`, deleting the key when the set is empty.
pub(crate) fn put_set<T: borsh::BorshSerialize, S: StateWrite + ?Sized>(
    state: &mut S,
    key: Vec<u8>,
    set: &BTreeSet<T>,
) {
    if set.is_empty() {
        state.delete(key);
    } else {
        put_typed(state, key, set);
    }
}

/// Adds (`true`) or removes `item` in the set under `key`.
pub(crate) fn edit_set<T, S>(
    state: &mut S,
    key: Vec<u8>,
    item: T,
    add: bool,
) -> Result<(), StateError>
where
    T: Ord + borsh::BorshSerialize + borsh::BorshDeserialize,
    S: StateWrite + ?Sized,
{
    let mut set: BTreeSet<T> = get_typed(state, &key)?.unwrap_or_default();
    let changed = if add {
        set.insert(item)
    } else {
        set.remove(&item)
    };
    if changed {
        put_set(state, key, &set);
    }
    Ok(())
}

/// Takes the whole set under `key` out of state (an index of what falls due at a height).
pub(crate) fn take_set<T, S>(state: &mut S, key: Vec<u8>) -> Result<BTreeSet<T>, StateError>
where
    T: Ord + borsh::BorshDeserialize,
    S: StateWrite + ?Sized,
{
    let set: BTreeSet<T> = get_typed(state, &key)?.unwrap_or_default();
    if !set.is_empty() {
        state.delete(key);
    }
    Ok(set)
}

/// Takes the next id from the counter under `key`.
pub(crate) fn next_id<S: StateWrite + ?Sized>(state: &mut S, key: &[u8]) -> Result<u64, ExecError> {
    let id: u64 = get_typed(state, key)?.unwrap_or(0);
    let next = id.checked_add(1).ok_or(TxError::Overflow("id counter"))?;
    put_typed(state, key.to_vec(), &next);
    Ok(id)
}

pub(crate) fn next_order_id<S: StateWrite + ?Sized>(state: &mut S) -> Result<u64, ExecError> {
    next_id(state, NEXT_ORDER_KEY)
}

pub(crate) fn next_lease_id<S: StateWrite + ?Sized>(state: &mut S) -> Result<u64, ExecError> {
    next_id(state, NEXT_LEASE_KEY)
}

/// Returns the deposits of `bids` (all but `except`'s) to their providers and frees their
/// open-bid slots.
pub(crate) fn release_bids<S: StateWrite + ?Sized>(
    state: &mut S,
    bids: &[Bid],
    except: Option<&Address>,
) -> Result<(), ExecError> {
    for bid in bids.iter().filter(|b| Some(&b.provider) != except) {
        release(state, &bid.provider, bid.deposit)?;
        if let Some(mut p) = provider(state, &bid.provider)? {
            p.open_bids = p.open_bids.saturating_sub(1);
            put_provider(state, &p);
        }
    }
    Ok(())
}

/// Ends an unmatched order (closed by its owner or expired): its deposit and every bid's
/// deposit go back, its bids are removed and it leaves the open set.
pub(crate) fn end_order<S: StateWrite + ?Sized>(
    state: &mut S,
    mut order: Order,
    status: OrderStatus,
) -> Result<(), ExecError> {
    let order_bids = bids(state, order.id)?;
    release_bids(state, &order_bids, None)?;
    put_bids(state, order.id, &[]);
    release(state, &order.owner, order.deposit)?;
    list_open_order(state, order.id, false)?;
    order.status = status;
    put_order(state, &order);
    Ok(())
}

/// What settling `lease` at `height` would pay its provider, and whether its escrow would be
/// spent: price × blocks since it was last settled, counting no block after its provider's
/// liveness ran out ([`Lease::owed_at`] up to that height).
pub fn owed<S: StateRead + ?Sized>(
    state: &S,
    lease: &Lease,
    height: u64,
) -> Result<(Amount, bool), StateError> {
    let paid_to = height.min(super::liveness::live_until(state, &lease.provider)?);
    Ok(if paid_to < lease.settled_at {
        (Amount::ZERO, false)
    } else {
        lease.owed_at(paid_to)
    })
}

/// Settles a lease at `height`: pays the provider what it earned since `settled_at` from the
/// escrow, for the blocks it was live (no block after its last heartbeat's interval). Closes the lease if its escrow ran out (overdrawn), if its term is over, or if
/// `close` asks to; a closed lease refunds the rest of the escrow to the client and returns
/// the provider's bid deposit. Returns what was paid.
pub(crate) fn settle<S: StateWrite + ?Sized>(
    state: &mut S,
    mut lease: Lease,
    height: u64,
    close: bool,
    events: &mut Vec<Event>,
) -> Result<Amount, ExecError> {
    let due = lease.due_at();
    let (pay, overdrawn) = owed(state, &lease, height)?;
    release(state, &lease.provider, pay)?;
    lease.escrow = lease
        .escrow
        .checked_sub(pay)
        .ok_or(TxError::Overflow("lease escrow"))?;
    lease.paid = lease
        .paid
        .checked_add(pay)
        .ok_or(TxError::Overflow("lease paid"))?;
    lease.settled_at = height.min(lease.ends_at).max(lease.settled_at);
    let term_over = height >= lease.ends_at;
    let closing = close || overdrawn || term_over;
    let mut refund = Amount::ZERO;
    if closing {
        refund = lease.escrow;
        release(state, &lease.owner, refund)?;
        release(state, &lease.provider, lease.bid_deposit)?;
        lease.escrow = Amount::ZERO;
        lease.status = if overdrawn {
            LeaseStatus::Overdrawn
        } else {
            LeaseStatus::Closed
        };
        lease.closed_at = Some(height);
        unfile_lease_due(state, lease.id, due)?;
        let mut of_owner = owner_lease_ids(state, &lease.owner)?;
        of_owner.remove(&lease.id);
        put_set(state, owner_leases_key(&lease.owner), &of_owner);
        let mut of_provider = provider_lease_ids(state, &lease.provider)?;
        of_provider.remove(&lease.id);
        put_set(state, provider_leases_key(&lease.provider), &of_provider);
        if let Some(mut p) = provider(state, &lease.provider)? {
            p.active_leases = p.active_leases.saturating_sub(1);
            put_provider(state, &p);
        }
    }
    if !closing && lease.due_at() != due {
        // Blocks the provider was down for are skipped, not paid: the escrow lasts longer.
        unfile_lease_due(state, lease.id, due)?;
        file_lease_due(state, &lease)?;
    }
    put_lease(state, &lease);
    events.push(Event::new(
        "market.lease_settled",
        [
            ("lease", lease.id.to_string()),
            ("provider", lease.provider.to_string()),
            ("paid", pay.0.to_string()),
            ("settled_at", lease.settled_at.to_string()),
        ],
    ));
    if closing {
        let status = if lease.status == LeaseStatus::Overdrawn {
            "overdrawn"
        } else {
            "closed"
        };
        events.push(Event::new(
            "market.lease_closed",
            [
                ("lease", lease.id.to_string()),
                ("status", status.to_string()),
                ("refund", refund.0.to_string()),
                ("bid_deposit", lease.bid_deposit.0.to_string()),
            ],
        ));
    }
    Ok(pay)
}

/// Expires the unmatched orders whose expiry height is `height`, releasing every deposit, and
/// closes the leases that run out at `height` (term over or escrow spent), paying the provider
/// and refunding the client, so that nobody has to settle them. Only the orders and leases
/// indexed under this height are read.
pub(crate) fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let leases_due = leases_due_at(state, height)?;
    if !leases_due.is_empty() {
        state.delete(lease_due_key(height));
        for id in leases_due {
            let Some(l) = lease(state, id)? else { continue };
            if l.status == LeaseStatus::Active && l.due_at() <= height {
                settle(state, l, height, false, events)?;
            }
        }
    }
    let due = expiring_at(state, height)?;
    if due.is_empty() {
        return Ok(());
    }
    state.delete(expiry_key(height));
    for id in due {
        // Orders matched or closed earlier stay in the index; they are skipped here.
        let Some(o) = order(state, id)? else { continue };
        if o.status != OrderStatus::Open {
            continue;
        }
        let owner = o.owner;
        let deposit = o.deposit;
        end_order(state, o, OrderStatus::Expired)?;
        events.push(Event::new(
            "market.order_expired",
            [
                ("order", id.to_string()),
                ("owner", owner.to_string()),
                ("refund", deposit.0.to_string()),
            ],
        ));
    }
    Ok(())
}

/// What the slash for a proven fault did with the provider's bond (see [`slash_proven`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slash {
    /// Taken from the bond.
    pub slashed: Amount,
    /// Paid back to the client.
    pub refund: Amount,
    /// Paid to whoever proved the fault.
    pub reward: Amount,
    /// Burned.
    pub burned: Amount,
}

impl Slash {
    /// The slash as event attributes.
    pub(crate) fn attributes(&self) -> [(&'static str, String); 4] {
        [
            ("slashed", self.slashed.0.to_string()),
            ("refund", self.refund.0.to_string()),
            ("reward", self.reward.0.to_string()),
            ("burned", self.burned.0.to_string()),
        ]
    }
}

/// Slashes `provider` for a fault `prover` proved on chain in work its `client` paid `paid`
/// for (nothing when it left the market):
///
/// 1. [`DISPUTE_SLASH`] leaves its bond (or what is left of it);
/// 2. the client gets back what it paid, up to half the slash;
/// 3. the prover gets [`CHALLENGER_REWARD_BPS`] of the rest, rounded down;
/// 4. the remainder (at least a quarter of the slash) is burned, so a provider that proves its
///    own fault from other accounts, even as its own client, still loses it.
pub(crate) fn slash_proven<S: StateWrite + ?Sized>(
    state: &mut S,
    provider_address: &Address,
    (client, paid): (&Address, Amount),
    prover: &Address,
) -> Result<Slash, ExecError> {
    // 1. Into the client's account, then shared out.
    let slashed = if provider(state, provider_address)?.is_some() {
        take_bond(state, provider_address, DISPUTE_SLASH, client)?
    } else {
        Amount::ZERO
    };
    // 2.
    let refund = paid.min(Amount(slashed.0 / 2));
    let rest = slashed.0 - refund.0;
    // 3. (`rest` is at most the slash, so the product cannot overflow.)
    let reward = Amount(rest * u128::from(CHALLENGER_REWARD_BPS) / u128::from(BPS));
    if reward.0 > 0 {
        bank::move_balance(state, client, prover, reward)?;
    }
    // 4.
    let burned = Amount(rest - reward.0);
    if burned.0 > 0 {
        bank::debit(state, client, burned)?;
        bank::burn_supply(state, burned)?;
    }
    Ok(Slash {
        slashed,
        refund,
        reward,
        burned,
    })
}

/// Moves up to `amount` of a registered provider's bond out of the market into `to`, the module
/// account of another component that owes it from then on (a challenge holding it until its
/// verdict); the bond shrinks by as much, so the escrow still holds exactly what the market
/// owes. Returns what moved: less than `amount` only if the bond is smaller.
pub(crate) fn take_bond<S: StateWrite + ?Sized>(
    state: &mut S,
    address: &Address,
    amount: Amount,
    to: &Address,
) -> Result<Amount, ExecError> {
    let mut p = provider(state, address)?.ok_or_else(|| {
        ExecError::Tx(TxError::Invalid(format!(
            "{address} is not a registered provider"
        )))
    })?;
    let taken = amount.min(p.bond);
    p.bond = Amount(p.bond.0 - taken.0);
    put_provider(state, &p);
    if taken.0 > 0 {
        bank::debit(state, &MARKET_ESCROW, taken)?;
        bank::credit(state, to, taken)?;
    }
    Ok(taken)
}

/// Gives `amount`, held in the module account `from` since [`take_bond`], back to a provider:
/// into its bond if it is still registered, else (it left the market meanwhile) to its balance.
/// Returns whether it went back into the bond.
pub(crate) fn return_bond<S: StateWrite + ?Sized>(
    state: &mut S,
    address: &Address,
    amount: Amount,
    from: &Address,
) -> Result<bool, ExecError> {
    if amount.0 == 0 {
        return Ok(provider(state, address)?.is_some());
    }
    bank::debit(state, from, amount)?;
    match provider(state, address)? {
        Some(mut p) => {
            p.bond = p
                .bond
                .checked_add(amount)
                .ok_or(TxError::Overflow("provider bond"))?;
            put_provider(state, &p);
            bank::credit(state, &MARKET_ESCROW, amount)?;
            Ok(true)
        }
        None => {
            bank::credit(state, address, amount)?;
            Ok(false)
        }
    }
}
