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

fn leaf_hash(leaf: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0]);
    h.update(&leaf.0);
    Hash(*h.finalize().as_bytes())
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[1]);
    h.update(&left.0);
    h.update(&right.0);
    Hash(*h.finalize().as_bytes())
}

/// The levels of the tree over `leaves`, from the hashed leaves up to the root.
fn merkle_levels(leaves: &[Hash]) -> Vec<Vec<Hash>> {
    let mut levels = vec![leaves.iter().map(leaf_hash).collect::<Vec<_>>()];
    while levels.last().is_some_and(|l| l.len() > 1) {
        let next = levels
            .last()
            .map(|level| {
                level
                    .chunks(2)
                    .map(|pair| match pair {
                        [left, right] => node_hash(left, right),
                        [single] => *single,
                        _ => Hash::ZERO,
                    })
                    .collect()
            })
            .unwrap_or_default();
        levels.push(next);
    }
    levels
}

/// A binary blake3 Merkle root over leaves, with domain-separated leaf and node hashing; an odd
/// node is promoted unchanged. The empty list has the zero root.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    merkle_levels(leaves)
        .last()
        .and_then(|top| top.first().copied())
        .unwrap_or(Hash::ZERO)
}

/// One step of a Merkle inclusion proof: the sibling met on the way up, and its side.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct MerkleStep {
    /// The sibling's hash.
    pub sibling: Hash,
    /// Whether the sibling is on the left.
    pub left: bool,
}

/// The inclusion proof of `leaves[index]` in [`merkle_root`]`(leaves)`, or `None` when
/// `index` is out of range.
pub fn merkle_proof(leaves: &[Hash], index: usize) -> Option<Vec<MerkleStep>> {
    if index >= leaves.len() {
        return None;
    }
    let levels = merkle_levels(leaves);
    let mut steps = Vec::new();
    let mut i = index;
    for level in &levels[..levels.len() - 1] {
        let sibling = i ^ 1;
        if let Some(hash) = level.get(sibling) {
            steps.push(MerkleStep {
                sibling: *hash,
                left: sibling < i,
            });
        }
        i /= 2;
    }
    Some(steps)
}

/// Whether `proof` shows `leaf` under `root`.
pub fn verify_merkle_proof(leaf: &Hash, proof: &[MerkleStep], root: &Hash) -> bool {
    let top = proof.iter().fold(leaf_hash(leaf), |acc, step| {
        if step.left {
            node_hash(&step.sibling, &acc)
        } else {
            node_hash(&acc, &step.sibling)
        }
    });
    top == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_of_every_tree_size_proves_and_nothing_else_does() {
        for n in 1..40u8 {
            let leaves: Vec<Hash> = (0..n).map(|i| Hash([i; 32])).collect();
            let root = merkle_root(&leaves);
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = merkle_proof(&leaves, i).unwrap();
                assert!(verify_merkle_proof(leaf, &proof, &root), "n={n} i={i}");
                assert!(!verify_merkle_proof(&Hash([200; 32]), &proof, &root));
                if let Some(first) = proof.first() {
                    let mut flipped = proof.clone();
                    flipped[0].left = !first.left;
                    assert!(!verify_merkle_proof(leaf, &flipped, &root), "n={n} i={i}");
                }
            }
            assert!(merkle_proof(&leaves, n as usize).is_none());
        }
        assert_eq!(merkle_root(&[]), Hash::ZERO);
    }
}
