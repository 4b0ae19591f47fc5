//! A Merkle sum tree: a binary blake3 Merkle tree whose every node also commits to a count,
//! the sum of its leaves' counts, so that one leaf's inclusion proof also proves the total.
//!
//! A batch's results root is one: each line's leaf counts 1 if the line is answered (and
//! paid), so a provider that commits more answered lines than its leaves count is caught by
//! the proof of any line, and one that counts a refused line as answered by that line's.
//!
//! The shape is [`crate::merkle_root`]'s (pairs left to right, an odd node promoted), fixed
//! by the number of leaves: [`verify_count_proof`] takes the leaf's index and the leaf count
//! and accepts only the steps that shape has, and a sibling's count only up to what the
//! leaves it covers can hold. So a tree of `n` leaves counts at most `n × max_leaf`, and a
//! count inflated by a made-up subtree leaves every line under that subtree unprovable.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::Hash;

/// One step of a [`verify_count_proof`] proof: the sibling met on the way up, its count and
/// its side.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct CountStep {
    /// The sibling's hash.
    pub sibling: Hash,
    /// The sum of the counts under the sibling.
    pub count: u32,
    /// Whether the sibling is on the left.
    pub left: bool,
}

const LEAF_DOMAIN: &[u8] = b"hibana/count-tree/leaf/v1\0";
const NODE_DOMAIN: &[u8] = b"hibana/count-tree/node/v1\0";

fn leaf_node(leaf: &Hash, count: u32) -> (Hash, u32) {
    let mut h = blake3::Hasher::new();
    h.update(LEAF_DOMAIN);
    h.update(&leaf.0);
    h.update(&count.to_le_bytes());
    (Hash(*h.finalize().as_bytes()), count)
}

/// The parent of two nodes, or `None` when their counts overflow.
fn parent((lh, lc): (Hash, u32), (rh, rc): (Hash, u32)) -> Option<(Hash, u32)> {
    let count = lc.checked_add(rc)?;
    let mut h = blake3::Hasher::new();
    h.update(NODE_DOMAIN);
    h.update(&lh.0);
    h.update(&lc.to_le_bytes());
    h.update(&rh.0);
    h.update(&rc.to_le_bytes());
    Some((Hash(*h.finalize().as_bytes()), count))
}

/// The tree's levels, from the leaf nodes up to the root; `None` when the counts overflow.
fn levels(leaves: &[(Hash, u32)]) -> Option<Vec<Vec<(Hash, u32)>>> {
    let mut levels = vec![
        leaves
            .iter()
            .map(|(h, c)| leaf_node(h, *c))
            .collect::<Vec<_>>(),
    ];
    while let Some(level) = levels.last().filter(|l| l.len() > 1) {
        let next = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => parent(*left, *right),
                [single] => Some(*single),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        levels.push(next);
    }
    Some(levels)
}

/// The root over `(leaf, count)` pairs and the total count; the empty list has the zero root
/// and total; `None` when the total overflows a `u32`.
pub fn count_root(leaves: &[(Hash, u32)]) -> Option<(Hash, u32)> {
    Some(
        levels(leaves)?
            .last()
            .and_then(|top| top.first().copied())
            .unwrap_or((Hash::ZERO, 0)),
    )
}

/// The inclusion proof of `leaves[index]` under [`count_root`]`(leaves)`, or `None` when
/// `index` is out of range or the counts overflow.
pub fn count_proof(leaves: &[(Hash, u32)], index: usize) -> Option<Vec<CountStep>> {
    if index >= leaves.len() {
        return None;
    }
    let levels = levels(leaves)?;
    let mut steps = Vec::new();
    let mut i = index;
    for level in &levels[..levels.len() - 1] {
        let sibling = i ^ 1;
        if let Some(&(hash, count)) = level.get(sibling) {
            steps.push(CountStep {
                sibling: hash,
                count,
                left: sibling < i,
            });
        }
        i /= 2;
    }
    Some(steps)
}

/// The total count `proof` shows under `root` for leaf `index` of a tree of `n` leaves
/// holding `(leaf, count)`, or `None` when it does not: a step the tree's shape lacks (or
/// lacks one it has), a sibling counting more than `max_leaf` for each leaf it covers, or a
/// path that does not reach `root`.
pub fn verify_count_proof(
    (leaf, count): (&Hash, u32),
    (index, n): (u32, u32),
    max_leaf: u32,
    proof: &[CountStep],
    root: &Hash,
) -> Option<u32> {
    if index >= n || count > max_leaf {
        return None;
    }
    let (index, n) = (u64::from(index), u64::from(n));
    let mut node = leaf_node(leaf, count);
    let mut steps = proof.iter();
    // At level `depth`, node `i` covers leaves `[i << depth, (i + 1) << depth) ∩ [0, n)`.
    let mut depth = 0u32;
    loop {
        let width = n.div_ceil(1 << depth);
        if width <= 1 {
            break;
        }
        let i = index >> depth;
        let sibling = i ^ 1;
        if sibling < width {
            let step = steps.next()?;
            if step.left != (sibling < i) {
                return None;
            }
            let covers = ((sibling + 1) << depth).min(n) - (sibling << depth);
            if u64::from(step.count) > covers * u64::from(max_leaf) {
                return None;
            }
            let other = (step.sibling, step.count);
            node = if step.left {
                parent(other, node)?
            } else {
                parent(node, other)?
            };
        }
        depth += 1;
        if depth >= 64 {
            return None;
        }
    }
    (steps.next().is_none() && node.0 == *root).then_some(node.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<(Hash, u32)> {
        (0..n)
            .map(|i| (Hash([i; 32]), u32::from(i % 3 == 0)))
            .collect()
    }

    #[test]
    fn every_leaf_of_every_size_proves_the_total_and_nothing_else_does() {
        for n in 1..40u8 {
            let leaves = leaves(n);
            let (root, total) = count_root(&leaves).unwrap();
            let expected: u32 = leaves.iter().map(|l| l.1).sum();
            assert_eq!(total, expected);
            for (i, (leaf, count)) in leaves.iter().enumerate() {
                let proof = count_proof(&leaves, i).unwrap();
                let at = (i as u32, u32::from(n));
                assert_eq!(
                    verify_count_proof((leaf, *count), at, 1, &proof, &root),
                    Some(total),
                    "n={n} i={i}"
                );
                // The other count, another index, a short proof: refused.
                assert_eq!(
                    verify_count_proof((leaf, 1 - count), at, 1, &proof, &root),
                    None
                );
                if n > 1 {
                    let other = ((i as u32 + 1) % u32::from(n), u32::from(n));
                    assert_eq!(
                        verify_count_proof((leaf, *count), other, 1, &proof, &root),
                        None
                    );
                    assert_eq!(
                        verify_count_proof((leaf, *count), at, 1, &proof[1..], &root),
                        None
                    );
                }
            }
        }
    }

    #[test]
    fn a_made_up_subtree_cannot_count_more_than_its_leaves() {
        // Three leaves; the provider replaces leaf 2 by a subtree claiming 5.
        let leaves = leaves(3);
        let fake = (Hash([9; 32]), 5);
        let left = parent(leaf_node(&leaves[0].0, 1), leaf_node(&leaves[1].0, 0)).unwrap();
        let (root, total) = parent(left, fake).unwrap();
        assert_eq!(total, 6);
        let proof = [
            CountStep {
                sibling: leaf_node(&leaves[1].0, 0).0,
                count: 0,
                left: false,
            },
            CountStep {
                sibling: fake.0,
                count: 5,
                left: false,
            },
        ];
        assert_eq!(
            verify_count_proof((&leaves[0].0, 1), (0, 3), 1, &proof, &root),
            None
        );
        // The same shape counting honestly proves.
        let honest = (leaf_node(&leaves[2].0, 0).0, 0);
        let (root, total) = parent(left, honest).unwrap();
        let proof = [
            proof[0],
            CountStep {
                sibling: honest.0,
                count: 0,
                left: false,
            },
        ];
        assert_eq!(
            verify_count_proof((&leaves[0].0, 1), (0, 3), 1, &proof, &root),
            Some(total)
        );
    }

    #[test]
    fn the_empty_tree_and_overflowing_counts() {
        assert_eq!(count_root(&[]), Some((Hash::ZERO, 0)));
        assert_eq!(count_root(&[(Hash::ZERO, u32::MAX), (Hash::ZERO, 1)]), None);
        assert_eq!(count_proof(&leaves(2), 2), None);
    }
}
