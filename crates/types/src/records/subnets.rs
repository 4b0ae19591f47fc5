//! Subnet records: subnets, neurons, weights, epoch summaries, and the fixed-point helpers that
//! clients share with the runtime.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, Amount, Hash, NeuronRole, SubnetParams};

/// A subnet.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Subnet {
    /// Id.
    pub id: u32,
    /// Unique name.
    pub name: String,
    /// Task served.
    pub task: String,
    /// Creator, who receives the owner's cut.
    pub owner: Address,
    /// Tokens locked by the owner.
    pub deposit: Amount,
    /// Parameters.
    pub params: SubnetParams,
    /// Height of creation; epochs run at `created_at + k * tempo`.
    pub created_at: u64,
    /// Epochs run so far.
    pub epochs: u64,
    /// Height of the last epoch (0 if none).
    pub last_epoch_height: u64,
}

impl Subnet {
    /// The height of the first epoch after `height` (epochs run at `created_at + k * tempo`).
    pub fn next_epoch(&self, height: u64) -> u64 {
        let tempo = self.params.tempo.max(1);
        let since = height.saturating_sub(self.created_at);
        self.created_at
            .saturating_add((since / tempo).saturating_add(1).saturating_mul(tempo))
    }
}

/// A neuron and its scores from the last epoch (fractions scaled by [`ONE`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Neuron {
    /// Position in the subnet.
    pub uid: u16,
    /// The account that registered and is paid.
    pub account: Address,
    /// Miner or validator.
    pub role: NeuronRole,
    /// Its endpoint URL.
    pub endpoint: String,
    /// Content hash of the model it serves.
    pub model: Hash,
    /// Height of registration.
    pub registered_at: u64,
    /// Stake of its account at the last epoch.
    pub stake: Amount,
    /// Held a validator permit at the last epoch.
    pub permit: bool,
    /// Was an active validator at the last epoch.
    pub active: bool,
    /// Miner: stake-weighted clipped weight.
    pub rank: u64,
    /// Miner: share of its weight that survived clipping.
    pub trust: u64,
    /// Miner: consensus weight.
    pub consensus: u64,
    /// Miner: share of the miners' emission.
    pub incentive: u64,
    /// Validator: share of its weights that agreed with consensus.
    pub validator_trust: u64,
    /// Validator: share of the validators' emission.
    pub dividends: u64,
    /// Tokens paid at the last epoch; the lowest is replaced first when the subnet is full.
    pub last_emission: Amount,
    /// Tokens paid since registration.
    pub total_emission: Amount,
}

/// A validator's revealed weights.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct WeightsRecord {
    /// (miner uid, parts per million).
    pub weights: Vec<(u16, u32)>,
    /// Height of the reveal.
    pub revealed_at: u64,
    /// Height of the matching commitment.
    pub committed_at: u64,
}

/// A commitment waiting for its reveal.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PendingCommit {
    /// The commitment.
    pub commitment: Hash,
    /// Height it was made.
    pub height: u64,
}

/// What one epoch paid.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EpochSummary {
    /// Epoch number (1 for the first).
    pub epoch: u64,
    /// Height it ran at.
    pub height: u64,
    /// Tokens minted in total.
    pub minted: Amount,
    /// Tokens paid to the owner.
    pub owner: Amount,
    /// (uid, account, tokens) for every neuron paid.
    pub paid: Vec<(u16, Address, Amount)>,
}

/// One, in the fixed-point scale of every fraction the epoch computes.
pub const ONE: u64 = 1_000_000_000;

/// The account that holds the deposits subnet creators lock. Nobody has its key: only the
/// subnets' rules move its tokens.
pub const SUBNET_DEPOSITS: Address = Address(*b"hibana/subnet/locked");

/// Splits `pool` in proportion to `weights` so that the parts add up to exactly `pool` (largest
/// remainder, ties to the lower index). All-zero weights give all-zero parts.
pub fn apportion(pool: u128, weights: &[u64]) -> Vec<u128> {
    let sum: u128 = weights.iter().map(|&w| w as u128).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let (q, r) = (pool / sum, pool % sum);
    for (i, &w) in weights.iter().enumerate() {
        // pool * w / sum = q*w + r*w/sum, with r*w < sum * 2^64 fitting in u128.
        let w = w as u128;
        let exact = r * w;
        parts.push(q * w + exact / sum);
        remainders.push((exact % sum, i));
    }
    let handed: u128 = parts.iter().sum();
    let mut left = pool - handed;
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in &remainders {
        if left == 0 {
            break;
        }
        if weights[i] > 0 {
            parts[i] += 1;
            left -= 1;
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deposit_address_is_the_one_the_readme_names() {
        assert_eq!(
            SUBNET_DEPOSITS.to_string(),
            "hib1dp5kyctwvyhhxatzdejhgtmvda3kkety62937r"
        );
    }
}
