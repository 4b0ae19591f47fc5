//! Bank records: accounts and where they live in state.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, Amount};

/// An account's spendable balance and next nonce.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Account {
    /// Spendable balance.
    pub balance: Amount,
    /// Number of transactions this account has had included.
    pub nonce: u64,
}

/// The state key of an account.
pub fn account_key(address: &Address) -> Vec<u8> {
    let mut key = b"acct/".to_vec();
    key.extend_from_slice(&address.0);
    key
}
