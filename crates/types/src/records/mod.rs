//! The records clients read: what the runtime stores per component and what the RPC answers
//! with, and the state keys a client needs to check a Merkle proof. The runtime re-exports them
//! from its components; clients use them without linking the state machine.

pub mod bank;
pub mod channels;
pub mod data;
pub mod market;
pub mod staking;
pub mod subnets;
pub mod verify;

use crate::{Address, Amount};

/// The keyless accounts in which components hold locked tokens; only their rules move those
/// tokens, so nobody may send to them (a gift would be stuck and break what they owe).
pub const MODULE_ACCOUNTS: [Address; 5] = [
    market::MARKET_ESCROW,
    subnets::SUBNET_DEPOSITS,
    channels::CHANNEL_ESCROW,
    verify::CHALLENGE_ESCROW,
    data::DATA_ESCROW,
];

/// An account as the RPC shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountView {
    /// The address.
    pub address: Address,
    /// Spendable balance.
    pub balance: Amount,
    /// Next nonce.
    pub nonce: u64,
    /// Total bonded stake, valued in tokens.
    pub stake: Amount,
    /// Delegations per validator.
    pub delegations: Vec<staking::DelegationView>,
}
