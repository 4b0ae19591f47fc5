//! Blocks and block headers.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, Hash, SignedTransaction, encode};

/// A block header; its hash identifies the block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    /// The chain this block belongs to.
    pub chain_id: String,
    /// Height, starting at 1 (0 is the genesis state).
    pub height: u64,
    /// Hash of the previous block's header (zero for height 1).
    pub parent_hash: Hash,
    /// Proposal time in milliseconds since the Unix epoch, strictly increasing.
    pub time_ms: u64,
    /// Address of the validator that proposed the block.
    pub proposer: Address,
    /// Merkle root of the transaction hashes.
    pub tx_root: Hash,
    /// State root after executing this block.
    pub state_root: Hash,
    /// State root after the previous block (the genesis root for height 1).
    pub app_hash: Hash,
}

/// A block: a header and the transactions it orders.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// Transactions in execution order.
    pub txs: Vec<SignedTransaction>,
}

impl BlockHeader {
    /// The block hash: blake3 of the header's canonical encoding.
    pub fn hash(&self) -> Hash {
        Hash::digest(&encode(self))
    }
}

impl Block {
    /// The block hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The Merkle root of this block's transaction hashes.
    pub fn compute_tx_root(&self) -> Hash {
        let hashes: Vec<Hash> = self.txs.iter().map(SignedTransaction::hash).collect();
        merkle_root(&hashes)
    }
}

/// A binary blake3 Merkle root over leaves, with domain-separated leaf and node hashing; an odd
/// node is promoted unchanged. The empty list has the zero root.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::ZERO;
    }
    let mut level: Vec<Hash> = leaves
        .iter()
        .map(|leaf| {
            let mut h = blake3::Hasher::new();
            h.update(&[0]);
            h.update(&leaf.0);
            Hash(*h.finalize().as_bytes())
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut h = blake3::Hasher::new();
                    h.update(&[1]);
                    h.update(&left.0);
                    h.update(&right.0);
                    Hash(*h.finalize().as_bytes())
                }
                [single] => *single,
                _ => Hash::ZERO,
            })
            .collect();
    }
    level[0]
}
