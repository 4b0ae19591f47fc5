//! Why a transaction cannot be included, or why its messages failed.

use hibana_types::{Address, Amount};

use crate::StateError;

/// A transaction that must not enter a block: it is rejected by the mempool and makes a block
/// that contains it invalid. Nothing about it is recorded in state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Signed for another chain.
    #[error("wrong chain id: transaction is for {found:?}, this chain is {expected:?}")]
    WrongChain {
        /// This chain's id.
        expected: String,
        /// The transaction's chain id.
        found: String,
    },
    /// The signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The nonce is not the account's next nonce.
    #[error("wrong nonce for {account}: expected {expected}, got {found}{hint}")]
    WrongNonce {
        /// The sender.
        account: Address,
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        found: u64,
        /// A hint (replay or gap).
        hint: &'static str,
    },
    /// The fee is below the chain's minimum.
    #[error("fee {found} is below the minimum fee {minimum}")]
    FeeTooLow {
        /// The chain's minimum fee.
        minimum: Amount,
        /// The transaction's fee.
        found: Amount,
    },
    /// The sender cannot pay the fee.
    #[error("insufficient funds for the fee: {account} has {available}, the fee is {fee}")]
    CannotPayFee {
        /// The sender.
        account: Address,
        /// Its balance.
        available: Amount,
        /// The fee.
        fee: Amount,
    },
    /// Executing it now would fail (insufficient funds, unknown validator…), so it is refused
    /// rather than charged a fee.
    #[error("transaction would fail: {0}")]
    WouldFail(String),
    /// The transaction is malformed (no messages, too many, too large…).
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// The sender's recent transactions failed too many costly checks (proofs): its costly
    /// transactions are refused unchecked for a while.
    #[error(
        "{account} sent {failures} transactions whose costly checks (proofs) failed recently; its \
         transactions with proofs are not checked again before height {until}"
    )]
    Throttled {
        /// The sender.
        account: Address,
        /// Its failures in the current window.
        failures: u32,
        /// The first height of the next window.
        until: u64,
    },
}

/// A message that failed: the transaction is included, pays its fee, and has no other effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Not enough balance.
    #[error("insufficient funds: {account} has {available}, needs {needed}")]
    InsufficientFunds {
        /// The account.
        account: Address,
        /// Its balance.
        available: Amount,
        /// What the message needs.
        needed: Amount,
    },
    /// An arithmetic overflow.
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    /// Any other failed precondition, described.
    #[error("{0}")]
    Invalid(String),
}

/// The outcome of running a message: either it failed (recorded in the receipt) or storage
/// failed (the block aborts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The message failed.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// Storage failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Shorthand for an invalid-message error.
pub(crate) fn invalid(msg: impl Into<String>) -> ExecError {
    ExecError::Tx(TxError::Invalid(msg.into()))
}
