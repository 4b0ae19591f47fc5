//! Evidence of equivocation: two conflicting consensus votes signed by one validator.
//!
//! The vote types mirror the borsh encoding of the consensus engine's votes exactly (a test in
//! `hibana-consensus` checks this), so the chain can check a vote's signature without depending
//! on the engine.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, Hash, PublicKey, Signature, encode};

/// Domain tag of every consensus signature.
pub const CONSENSUS_SIGN_DOMAIN: &[u8] = b"hibana/consensus/v1";

/// The bytes a consensus signature covers: the domain tag, the chain id, the message kind
/// (`vote`, `proposal`, `part`, `extension`) and the message's borsh encoding.
pub fn consensus_sign_bytes<T: BorshSerialize>(chain_id: &str, kind: &str, message: &T) -> Vec<u8> {
    let mut bytes = CONSENSUS_SIGN_DOMAIN.to_vec();
    bytes.extend_from_slice(&encode(&(chain_id, kind)));
    bytes.extend_from_slice(&encode(message));
    bytes
}

/// Prevote or precommit.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    /// First voting step.
    Prevote,
    /// Second voting step.
    Precommit,
}

/// A consensus round, or none.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VoteRound {
    /// No round (-1).
    Nil,
    /// Round r ≥ 0.
    Some(u32),
}

/// What a vote is for: nil or a block hash.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VoteValue {
    /// Nil.
    Nil,
    /// A block hash.
    Block(Hash),
}

/// A consensus vote as the validators sign it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ConsensusVote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// Height.
    pub height: u64,
    /// Round.
    pub round: VoteRound,
    /// The block voted for, or nil.
    pub value: VoteValue,
    /// The voter.
    pub validator: Address,
}

/// A vote with its signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: ConsensusVote,
    /// The validator's ed25519 signature over [`consensus_sign_bytes`] of the vote.
    pub signature: Signature,
}

/// Two votes of one validator for different values at the same height, round and step.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Equivocation {
    /// The validator's public key (its address must be the voter's).
    pub public_key: PublicKey,
    /// One vote.
    pub first: SignedVote,
    /// The conflicting vote.
    pub second: SignedVote,
}

impl Equivocation {
    /// Checks that the votes conflict and are signed by `public_key` for `chain_id`; returns
    /// what is wrong otherwise.
    pub fn check(&self, chain_id: &str) -> Result<(), String> {
        let (a, b) = (&self.first.vote, &self.second.vote);
        if a.validator != b.validator {
            return Err("the votes are from different validators".into());
        }
        if self.public_key.address() != a.validator {
            return Err(format!(
                "the public key is not the key of validator {}",
                a.validator
            ));
        }
        if (a.kind, a.height, a.round) != (b.kind, b.height, b.round) {
            return Err("the votes are not for the same height, round and step".into());
        }
        if a.value == b.value {
            return Err("the votes are for the same value: no equivocation".into());
        }
        for (name, signed) in [("first", &self.first), ("second", &self.second)] {
            let bytes = consensus_sign_bytes(chain_id, "vote", &signed.vote);
            self.public_key
                .verify(&bytes, &signed.signature)
                .map_err(|e| format!("the {name} vote's signature does not verify: {e}"))?;
        }
        Ok(())
    }
}
