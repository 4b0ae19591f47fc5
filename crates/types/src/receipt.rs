//! Receipts and events: what a transaction did.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Amount, Hash};

/// Something that happened during execution, for indexers and clients.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Event {
    /// The event's kind, `component.name` (e.g. `bank.transfer`).
    pub kind: String,
    /// Key-value attributes in a fixed order.
    pub attributes: Vec<(String, String)>,
}

impl Event {
    /// Creates an event from its kind and attributes.
    pub fn new(kind: &str, attributes: impl IntoIterator<Item = (&'static str, String)>) -> Event {
        Event {
            kind: kind.to_string(),
            attributes: attributes
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }

    /// The value of an attribute, if present.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a transaction's messages took effect.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "status", content = "error", rename_all = "snake_case")]
pub enum TxOutcome {
    /// All messages executed.
    Success,
    /// A message failed; none of the messages took effect, the fee was still paid.
    Failed(String),
}

/// The result of an included transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    /// Hash of the transaction.
    pub tx_hash: Hash,
    /// Height of the block that included it.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// Success, or the reason of failure.
    pub outcome: TxOutcome,
    /// Fee paid.
    pub fee: Amount,
    /// Events emitted (empty on failure except the fee event).
    pub events: Vec<Event>,
}

impl Receipt {
    /// The value of attribute `key` of the first event of kind `kind` (how a client learns the
    /// id its transaction created).
    pub fn attribute(&self, kind: &str, key: &str) -> Option<&str> {
        self.events
            .iter()
            .find(|e| e.kind == kind)?
            .attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Receipt {
    /// True if every message executed.
    pub fn is_success(&self) -> bool {
        self.outcome == TxOutcome::Success
    }
}

/// What a node knows about a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// Waiting in the mempool.
    Pending,
    /// Included in a block.
    Committed {
        /// Its receipt.
        receipt: Receipt,
    },
    /// Refused or dropped, with the reason.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Never seen (or forgotten).
    Unknown,
}
