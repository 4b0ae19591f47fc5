//! Compute market records: providers, orders, bids, leases, the market's limits and its state
//! keys.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, Amount, BASE_UNITS_PER_HIB, Hash};

/// The account that holds every token the market has locked (provider bonds, order deposits,
/// lease escrow, bid deposits). Nobody has its key: only the market's rules move its tokens.
pub const MARKET_ESCROW: Address = Address(*b"hibana/market/escrow");

/// Smallest stake bond a provider registers with.
pub const MIN_PROVIDER_BOND: Amount = Amount(10 * BASE_UNITS_PER_HIB);
/// Deposit a provider locks with each bid, returned when the bid loses, the order ends or the
/// lease closes.
pub const BID_DEPOSIT: Amount = Amount(BASE_UNITS_PER_HIB);
/// An order's deposit must pay its maximum price for at least this many blocks.
pub const MIN_DEPOSIT_BLOCKS: u64 = 10;
/// Longest lease an order may ask for, in blocks.
pub const MAX_LEASE_BLOCKS: u64 = 10_000_000;
/// Furthest ahead an order's expiry height may be, in blocks.
pub const MAX_ORDER_TTL_BLOCKS: u64 = 100_000;
/// Most bids an order takes.
pub const MAX_BIDS_PER_ORDER: usize = 32;
/// Most bids a provider may have open at once.
pub const MAX_OPEN_BIDS_PER_PROVIDER: u32 = 64;
/// Most active leases a provider may hold at once.
pub const MAX_ACTIVE_LEASES_PER_PROVIDER: u32 = 64;
/// Most models a provider declares.
pub const MAX_MODELS: usize = 16;
/// Longest GPU model name, in bytes.
pub const MAX_GPU_MODEL_BYTES: usize = 64;
/// Longest region name, in bytes.
pub const MAX_REGION_BYTES: usize = 32;
/// Most GPUs a provider declares or an order asks for.
pub const MAX_GPUS: u32 = 1_024;
/// Most cores a provider declares or an order asks for.
pub const MAX_CORES: u32 = 1 << 20;

/// What a provider declares it offers.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct ProviderAttributes {
    /// CPU cores.
    pub cores: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// GPU model name (empty for none).
    pub gpu_model: String,
    /// Number of GPUs (0 when `gpu_model` is empty).
    pub gpu_count: u32,
    /// Region, lowercase (`eu-west`, `us-east`…).
    pub region: String,
    /// Content hashes of the models it serves.
    pub models: Vec<Hash>,
}

/// A registered provider.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Provider {
    /// The provider's account, which bids and is paid.
    pub address: Address,
    /// Its declared attributes.
    pub attributes: ProviderAttributes,
    /// Its asking price per block, in base units.
    pub price_per_block: Amount,
    /// Its price per token of an inference request, in base units (0: free); a receipt may
    /// charge at most its tokens times this.
    pub price_per_token: Amount,
    /// Where it answers (`http://` or `https://` URL).
    pub endpoint: String,
    /// Stake bond held in [`MARKET_ESCROW`].
    pub bond: Amount,
    /// Height of registration.
    pub registered_at: u64,
    /// Bids it has open on orders.
    pub open_bids: u32,
    /// Leases it serves that are not closed.
    pub active_leases: u32,
}

/// What an order needs from a provider.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Resources {
    /// Fewest cores.
    pub min_cores: u32,
    /// Least memory in MiB.
    pub min_memory_mib: u64,
    /// A GPU model the provider must have, if any.
    pub gpu_model: Option<String>,
    /// Fewest GPUs (0 for none).
    pub gpu_count: u32,
    /// A region the provider must be in, if any.
    pub region: Option<String>,
    /// A model (content hash) the provider must serve, if any.
    pub model: Option<Hash>,
}

/// Where an order stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Taking bids.
    Open,
    /// A bid was accepted: the order became a lease.
    Matched,
    /// Closed by its owner before a match.
    Closed,
    /// Reached its expiry height unmatched.
    Expired,
}

/// A client's request for compute.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Order {
    /// Id.
    pub id: u64,
    /// The client.
    pub owner: Address,
    /// What it needs.
    pub resources: Resources,
    /// Lease length in blocks.
    pub duration_blocks: u64,
    /// Highest price per block it pays.
    pub max_price_per_block: Amount,
    /// Deposit held in [`MARKET_ESCROW`]; it becomes the lease's escrow.
    pub deposit: Amount,
    /// Height of creation.
    pub created_at: u64,
    /// The order expires at the end of this block if unmatched.
    pub expires_at: u64,
    /// Where it stands.
    pub status: OrderStatus,
    /// The lease it became, once matched.
    pub lease: Option<u64>,
}

/// A provider's offer on an order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Bid {
    /// The order.
    pub order: u64,
    /// The provider.
    pub provider: Address,
    /// Price per block offered.
    pub price_per_block: Amount,
    /// Deposit held in [`MARKET_ESCROW`].
    pub deposit: Amount,
    /// Height of the bid.
    pub placed_at: u64,
}

/// Where a lease stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LeaseStatus {
    /// Running and paying the provider.
    Active,
    /// Closed by a side or at the end of its term.
    Closed,
    /// Closed because its escrow ran out before the end of its term.
    Overdrawn,
}

/// A matched order: the provider is paid per block from escrow, settled lazily.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Lease {
    /// Id.
    pub id: u64,
    /// The order it came from.
    pub order: u64,
    /// The client.
    pub owner: Address,
    /// The provider.
    pub provider: Address,
    /// Price per block (the accepted bid's).
    pub price_per_block: Amount,
    /// Escrow left, held in [`MARKET_ESCROW`].
    pub escrow: Amount,
    /// The provider's bid deposit, held until the lease closes.
    pub bid_deposit: Amount,
    /// Paid to the provider so far.
    pub paid: Amount,
    /// Height the lease started.
    pub started_at: u64,
    /// Last height it pays for (`started_at + duration_blocks`).
    pub ends_at: u64,
    /// Height up to which the provider has been paid.
    pub settled_at: u64,
    /// Where it stands.
    pub status: LeaseStatus,
    /// Height it closed, once closed.
    pub closed_at: Option<u64>,
}

impl Lease {
    /// The height at which the lease runs out unless topped up: the end of its term, or the
    /// first height [`Lease::owed_at`] finds its escrow spent if that comes first.
    pub fn due_at(&self) -> u64 {
        match (self.price_per_block.0 > 0).then(|| self.escrow.0.div_ceil(self.price_per_block.0)) {
            Some(blocks) => {
                let blocks = u64::try_from(blocks).unwrap_or(u64::MAX);
                self.settled_at.saturating_add(blocks).min(self.ends_at)
            }
            // Free: only the term ends it.
            None => self.ends_at,
        }
    }

    /// What settling at `height` pays the provider (price × blocks since `settled_at`, capped
    /// at `ends_at` and by the escrow left), and whether the escrow runs out before `ends_at`.
    pub fn owed_at(&self, height: u64) -> (Amount, bool) {
        let until = height.min(self.ends_at);
        let blocks = until.saturating_sub(self.settled_at);
        let full = self.price_per_block.0.checked_mul(u128::from(blocks));
        match full {
            Some(due) if due <= self.escrow.0 => {
                // Escrow that is exactly spent before the term's end leaves nothing to pay the
                // next block with: the lease is overdrawn then too.
                let exhausted = due == self.escrow.0 && until < self.ends_at;
                (Amount(due), exhausted)
            }
            _ => (self.escrow, until < self.ends_at || full.is_none()),
        }
    }
}

/// State key of a provider.
pub fn provider_key(address: &Address) -> Vec<u8> {
    [b"market/provider/".as_slice(), &address.0].concat()
}

/// Buckets the sets of registered providers and of open orders are spread over, so that adding
/// or removing one rewrites a 256th of the set, not all of it.
pub const SET_BUCKETS: usize = 256;

/// State key of one bucket (`BTreeSet<Address>`) of the registered providers: those whose
/// address starts with the byte `bucket`.
pub fn providers_key(bucket: u8) -> Vec<u8> {
    [b"market/providers/".as_slice(), &[bucket]].concat()
}

/// State key of the next order id (`u64`).
pub const NEXT_ORDER_KEY: &[u8] = b"market/next_order";

/// State key of the next lease id (`u64`).
pub const NEXT_LEASE_KEY: &[u8] = b"market/next_lease";

/// State key of one bucket (`BTreeSet<u64>`) of the open orders: those whose id is `bucket`
/// modulo [`SET_BUCKETS`].
pub fn open_orders_key(bucket: u8) -> Vec<u8> {
    [b"market/open_orders/".as_slice(), &[bucket]].concat()
}

/// State key of an order.
pub fn order_key(id: u64) -> Vec<u8> {
    [b"market/order/".as_slice(), &id.to_be_bytes()].concat()
}

/// State key of an order's bids (`Vec<Bid>`, ordered by provider).
pub fn bids_key(order: u64) -> Vec<u8> {
    [b"market/bids/".as_slice(), &order.to_be_bytes()].concat()
}

/// State key of the orders that expire at the end of a block (`Vec<u64>`).
pub fn expiry_key(height: u64) -> Vec<u8> {
    [b"market/expiry/".as_slice(), &height.to_be_bytes()].concat()
}

/// State key of the active leases that run out at the end of a block, their term over or
/// their escrow spent (`BTreeSet<u64>`).
pub fn lease_due_key(height: u64) -> Vec<u8> {
    [b"market/lease_due/".as_slice(), &height.to_be_bytes()].concat()
}

/// State key of a lease.
pub fn lease_key(id: u64) -> Vec<u8> {
    [b"market/lease/".as_slice(), &id.to_be_bytes()].concat()
}

/// State key of the active leases a client owns (`BTreeSet<u64>`).
pub fn owner_leases_key(owner: &Address) -> Vec<u8> {
    [b"market/leases_of_owner/".as_slice(), &owner.0].concat()
}

/// State key of the active leases a provider serves (`BTreeSet<u64>`).
pub fn provider_leases_key(provider: &Address) -> Vec<u8> {
    [b"market/leases_of_provider/".as_slice(), &provider.0].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(price: u128, escrow: u128, settled_at: u64, ends_at: u64) -> Lease {
        Lease {
            id: 0,
            order: 0,
            owner: Address([1; 20]),
            provider: Address([2; 20]),
            price_per_block: Amount(price),
            escrow: Amount(escrow),
            bid_deposit: BID_DEPOSIT,
            paid: Amount::ZERO,
            started_at: 0,
            ends_at,
            settled_at,
            status: LeaseStatus::Active,
            closed_at: None,
        }
    }

    #[test]
    fn the_escrow_address_is_the_one_the_readme_names() {
        assert_eq!(
            MARKET_ESCROW.to_string(),
            "hib1dp5kyctwvyhk6ctjddjhgtm9wd3hymmhhzdeak"
        );
    }

    #[test]
    fn owed_is_price_times_blocks_capped_by_term_and_escrow() {
        assert_eq!(lease(5, 100, 10, 50).owed_at(14), (Amount(20), false));
        assert_eq!(lease(5, 100, 10, 20).owed_at(99), (Amount(50), false));
        assert_eq!(lease(5, 100, 10, 50).owed_at(40), (Amount(100), true));
        assert_eq!(lease(5, 100, 10, 30).owed_at(30), (Amount(100), false));
        assert_eq!(lease(5, 100, 10, 50).owed_at(30), (Amount(100), true));
        assert_eq!(lease(5, 100, 10, 50).owed_at(5), (Amount(0), false));
        assert_eq!(
            lease(u128::MAX, 7, 0, u64::MAX).owed_at(2),
            (Amount(7), true)
        );
    }
}
