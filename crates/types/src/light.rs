//! Light-client checks: that a block header was decided by the validators, from the precommit
//! signatures of its commit certificate, so a client need not trust the node that served it.
//!
//! A header is accepted when (1) its hash is the value the commit signs, (2) validators holding
//! more than two thirds of the power of the set that decided it (staking's recorded set in the
//! state before the block, proven under the header's `app_hash`) signed a precommit for it, and
//! (3) when the client already trusts a set from an earlier height, validators holding more
//! than a third of that set's power are among the signers (CometBFT's skipping verification):
//! at least one honest validator the client trusted vouches for the new set.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    Address, BlockHeader, ConsensusVote, Hash, Signature, VoteKind, VoteRound, VoteValue,
    consensus_sign_bytes, records::staking::ValidatorInfo,
};

/// One validator's precommit signature in a commit.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitSignature {
    /// The validator.
    pub validator: Address,
    /// Its signature over the precommit for the block.
    pub signature: Signature,
}

/// The precommits that decided a block: height, round, block hash and signatures.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Commit {
    /// Height.
    pub height: u64,
    /// Round in which the block was decided.
    pub round: u32,
    /// Hash of the decided block's header.
    pub block_hash: Hash,
    /// Precommit signatures.
    pub signatures: Vec<CommitSignature>,
}

/// Why a header was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightError {
    /// The commit is for another height or block than the header.
    #[error("the commit is not for this header: {0}")]
    Mismatch(String),
    /// A validator's signature does not verify, or it signed twice.
    #[error("bad commit signature: {0}")]
    BadSignature(String),
    /// The signers hold too little of the deciding set's power.
    #[error(
        "validators with {signed} of {total} voting power signed; more than two thirds are needed"
    )]
    NoQuorum {
        /// Power that signed.
        signed: u128,
        /// Power of the set.
        total: u128,
    },
    /// Too few of the validators the client trusts signed.
    #[error(
        "validators the client trusts (height {height}) hold {signed} of {total} power among the \
         signers; more than a third is needed"
    )]
    Untrusted {
        /// Height of the trusted set.
        height: u64,
        /// Trusted power that signed.
        signed: u128,
        /// Trusted set's power.
        total: u128,
    },
    /// The validator set is empty or its power overflows.
    #[error("invalid validator set: {0}")]
    BadSet(String),
}

/// A validator set the client trusts, and the height of the header it was verified at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedSet {
    /// Chain id.
    pub chain_id: String,
    /// Height whose header was verified.
    pub height: u64,
    /// The set that decided that header.
    pub validators: Vec<ValidatorInfo>,
}

impl Commit {
    /// The total power of `validators` whose valid precommit for this commit's block is in it,
    /// each counted once; signatures of others are ignored, and a bad signature of a member is
    /// an error.
    pub fn signed_power(
        &self,
        chain_id: &str,
        validators: &[ValidatorInfo],
    ) -> Result<u128, LightError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut power: u128 = 0;
        for s in &self.signatures {
            let Some(v) = validators.iter().find(|v| v.address == s.validator) else {
                continue;
            };
            if !seen.insert(s.validator) {
                return Err(LightError::BadSignature(format!(
                    "{} signed twice",
                    s.validator
                )));
            }
            let vote = ConsensusVote {
                kind: VoteKind::Precommit,
                height: self.height,
                round: VoteRound::Some(self.round),
                value: VoteValue::Block(self.block_hash),
                validator: s.validator,
            };
            v.public_key
                .verify(&consensus_sign_bytes(chain_id, "vote", &vote), &s.signature)
                .map_err(|e| LightError::BadSignature(format!("{}: {e}", s.validator)))?;
            power = power
                .checked_add(v.power.0)
                .ok_or_else(|| LightError::BadSet("voting power overflows".into()))?;
        }
        Ok(power)
    }
}

/// Total voting power of a set.
fn total_power(validators: &[ValidatorInfo]) -> Result<u128, LightError> {
    let total = validators
        .iter()
        .try_fold(0u128, |t, v| t.checked_add(v.power.0))
        .ok_or_else(|| LightError::BadSet("voting power overflows".into()))?;
    if total == 0 {
        return Err(LightError::BadSet("no voting power".into()));
    }
    Ok(total)
}

/// Whether `part` is more than `num/den` of `total` (exact, without overflow).
fn more_than(part: u128, total: u128, num: u128, den: u128) -> bool {
    // part/total > num/den  ⇔  part·den > total·num, compared in 256 bits.
    let wide = |a: u128, b: u128| {
        let (hi_a, lo_a) = (a >> 64, a & u128::from(u64::MAX));
        let lo = lo_a * b;
        let hi = hi_a * b + (lo >> 64);
        (
            hi >> 64,
            ((hi & u128::from(u64::MAX)) << 64) | (lo & u128::from(u64::MAX)),
        )
    };
    wide(part, den) > wide(total, num)
}

/// Checks that `header` was decided by `deciding` (the set recorded in the state before it)
/// through `commit`, and, given a `trusted` set of an earlier height, that more than a third of
/// its power signed; returns the set to trust from now on.
pub fn verify_header(
    chain_id: &str,
    header: &BlockHeader,
    commit: &Commit,
    deciding: &[ValidatorInfo],
    trusted: Option<&TrustedSet>,
) -> Result<TrustedSet, LightError> {
    if header.chain_id != chain_id {
        return Err(LightError::Mismatch(format!(
            "the header is of chain {:?}, not {chain_id:?}",
            header.chain_id
        )));
    }
    if commit.height != header.height {
        return Err(LightError::Mismatch(format!(
            "commit height {} for header height {}",
            commit.height, header.height
        )));
    }
    if commit.block_hash != header.hash() {
        return Err(LightError::Mismatch(format!(
            "the commit signs block {}, the header hashes to {}",
            commit.block_hash,
            header.hash()
        )));
    }
    let total = total_power(deciding)?;
    let signed = commit.signed_power(chain_id, deciding)?;
    if !more_than(signed, total, 2, 3) {
        return Err(LightError::NoQuorum { signed, total });
    }
    if let Some(t) = trusted
        && t.validators != deciding
    {
        let trusted_total = total_power(&t.validators)?;
        let trusted_signed = commit.signed_power(chain_id, &t.validators)?;
        if !more_than(trusted_signed, trusted_total, 1, 3) {
            return Err(LightError::Untrusted {
                height: t.height,
                signed: trusted_signed,
                total: trusted_total,
            });
        }
    }
    Ok(TrustedSet {
        chain_id: chain_id.to_string(),
        height: header.height,
        validators: deciding.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Amount, SecretKey};

    fn set(keys: &[SecretKey], power: &[u128]) -> Vec<ValidatorInfo> {
        keys.iter()
            .zip(power)
            .map(|(k, p)| ValidatorInfo {
                address: k.public_key().address(),
                public_key: k.public_key(),
                power: Amount(*p),
            })
            .collect()
    }

    fn header(height: u64) -> BlockHeader {
        BlockHeader {
            chain_id: "test".into(),
            height,
            parent_hash: Hash::digest(b"parent"),
            time_ms: 1,
            proposer: SecretKey::from_bytes([9; 32]).public_key().address(),
            tx_root: Hash::digest(b"txs"),
            state_root: Hash::digest(b"state"),
            app_hash: Hash::digest(b"app"),
        }
    }

    fn commit(header: &BlockHeader, signers: &[&SecretKey]) -> Commit {
        let block_hash = header.hash();
        Commit {
            height: header.height,
            round: 0,
            block_hash,
            signatures: signers
                .iter()
                .map(|k| {
                    let vote = ConsensusVote {
                        kind: VoteKind::Precommit,
                        height: header.height,
                        round: VoteRound::Some(0),
                        value: VoteValue::Block(block_hash),
                        validator: k.public_key().address(),
                    };
                    CommitSignature {
                        validator: k.public_key().address(),
                        signature: k.sign(&consensus_sign_bytes("test", "vote", &vote)),
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn a_header_needs_two_thirds_of_the_deciding_power() {
        let keys: Vec<SecretKey> = (1..=4).map(|i| SecretKey::from_bytes([i; 32])).collect();
        let validators = set(&keys, &[1, 1, 1, 1]);
        let h = header(5);
        let three = commit(&h, &[&keys[0], &keys[1], &keys[2]]);
        assert!(verify_header("test", &h, &three, &validators, None).is_ok());
        let two = commit(&h, &[&keys[0], &keys[1]]);
        assert_eq!(
            verify_header("test", &h, &two, &validators, None),
            Err(LightError::NoQuorum {
                signed: 2,
                total: 4
            })
        );
        // Signatures of outsiders add nothing.
        let outsider = SecretKey::from_bytes([77; 32]);
        let padded = commit(&h, &[&keys[0], &keys[1], &outsider]);
        assert!(matches!(
            verify_header("test", &h, &padded, &validators, None),
            Err(LightError::NoQuorum { signed: 2, .. })
        ));
        // The same signer twice is refused.
        let twice = commit(&h, &[&keys[0], &keys[0], &keys[1]]);
        assert!(matches!(
            verify_header("test", &h, &twice, &validators, None),
            Err(LightError::BadSignature(_))
        ));
    }

    #[test]
    fn a_changed_header_or_a_forged_signature_is_caught() {
        let keys: Vec<SecretKey> = (1..=4).map(|i| SecretKey::from_bytes([i; 32])).collect();
        let validators = set(&keys, &[1, 1, 1, 1]);
        let h = header(5);
        let c = commit(&h, &[&keys[0], &keys[1], &keys[2]]);
        // A node that serves another state root under the same commit.
        let mut lie = h.clone();
        lie.state_root = Hash::digest(b"another state");
        assert!(matches!(
            verify_header("test", &lie, &c, &validators, None),
            Err(LightError::Mismatch(_))
        ));
        // …or re-points the commit at its header: the signatures no longer verify.
        let mut repointed = c.clone();
        repointed.block_hash = lie.hash();
        assert!(matches!(
            verify_header("test", &lie, &repointed, &validators, None),
            Err(LightError::BadSignature(_))
        ));
        // Another chain's header is not this chain's.
        assert!(matches!(
            verify_header("other", &h, &c, &validators, None),
            Err(LightError::Mismatch(_))
        ));
    }

    #[test]
    fn a_set_the_client_does_not_trust_needs_a_third_of_the_trusted_power() {
        let old: Vec<SecretKey> = (1..=4).map(|i| SecretKey::from_bytes([i; 32])).collect();
        let fake: Vec<SecretKey> = (11..=14).map(|i| SecretKey::from_bytes([i; 32])).collect();
        let trusted = TrustedSet {
            chain_id: "test".into(),
            height: 3,
            validators: set(&old, &[1, 1, 1, 1]),
        };
        // A node that invents a whole validator set signs its header with it: refused.
        let h = header(9);
        let forged = commit(&h, &fake.iter().collect::<Vec<_>>());
        let fake_set = set(&fake, &[1, 1, 1, 1]);
        assert_eq!(
            verify_header("test", &h, &forged, &fake_set, Some(&trusted)),
            Err(LightError::Untrusted {
                height: 3,
                signed: 0,
                total: 4
            })
        );
        // A set that changed by one validator, signed by enough of the old one: accepted.
        let mut next_keys = old[..3].to_vec();
        next_keys.push(fake[0].clone());
        let next = set(&next_keys, &[1, 1, 1, 1]);
        let c = commit(&h, &next_keys.iter().collect::<Vec<_>>());
        let now = verify_header("test", &h, &c, &next, Some(&trusted)).unwrap();
        assert_eq!((now.height, now.validators), (9, next));
    }

    #[test]
    fn fractions_compare_exactly_at_the_extremes() {
        assert!(more_than(3, 4, 2, 3));
        assert!(!more_than(2, 3, 2, 3));
        assert!(more_than(u128::MAX, u128::MAX, 2, 3));
        assert!(!more_than(u128::MAX / 3, u128::MAX, 1, 3));
        assert!(more_than(u128::MAX / 3 + 1, u128::MAX, 1, 3));
    }
}
