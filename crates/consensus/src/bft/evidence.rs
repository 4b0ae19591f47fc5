//! Watches the votes the engine verifies for equivocation: two validly signed votes of one
//! validator for different values at the same height, round and step. The engine's vote keeper
//! notices them too but keeps them to itself, so the signer hands every vote it verified to
//! this watch, which keeps the evidence the chain's staking component punishes.

use std::collections::{HashMap, HashSet, VecDeque};

use hibana_types::{
    Address, ConsensusVote as ChainVote, Equivocation, PublicKey, Signature, SignedVote, VoteKind,
    VoteRound, VoteValue,
};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::ConsensusVote;

/// Heights below the highest vote seen that are still watched.
const HEIGHTS_KEPT: u64 = 16;
/// Most votes remembered; beyond it new slots go unwatched until old heights are forgotten.
const MAX_VOTES: usize = 50_000;
/// Most pieces of evidence waiting to be reported.
const MAX_FOUND: usize = 256;

/// Which vote a validator may cast only once.
type Slot = (u64, VoteRound, VoteKind, Address);

#[derive(Default)]
struct Seen {
    /// The first vote seen per slot, with its signature.
    votes: HashMap<Slot, (VoteValue, Signature)>,
    /// Slots already reported, so one equivocation yields one piece of evidence.
    reported: HashSet<Slot>,
    found: VecDeque<Equivocation>,
    highest: u64,
}

/// Votes verified by this node's engine, and the equivocations found among them.
#[derive(Default)]
pub struct EvidenceWatch {
    seen: Mutex<Seen>,
    ready: Notify,
}

impl std::fmt::Debug for EvidenceWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seen = self.seen.lock();
        write!(
            f,
            "EvidenceWatch({} votes, {} found)",
            seen.votes.len(),
            seen.found.len()
        )
    }
}

impl EvidenceWatch {
    /// An empty watch.
    pub fn new() -> EvidenceWatch {
        EvidenceWatch::default()
    }

    /// Records a vote whose signature by `public_key` verified; returns the evidence if it
    /// conflicts with the validator's earlier vote in the same slot.
    pub fn observe(
        &self,
        vote: &ConsensusVote,
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Option<Equivocation> {
        // Both types have the same encoding (a test checks it), so this cannot fail for a vote
        // the engine decoded.
        let vote: ChainVote = hibana_types::decode(&hibana_types::encode(vote)).ok()?;
        let slot = (vote.height, vote.round, vote.kind, vote.validator);
        let mut seen = self.seen.lock();
        if vote.height.saturating_add(HEIGHTS_KEPT) < seen.highest {
            return None;
        }
        if vote.height > seen.highest {
            seen.highest = vote.height;
            let floor = seen.highest.saturating_sub(HEIGHTS_KEPT);
            seen.votes.retain(|s, _| s.0 >= floor);
            seen.reported.retain(|s| s.0 >= floor);
        }
        let (first_value, first_signature) = match seen.votes.get(&slot) {
            None => {
                if seen.votes.len() < MAX_VOTES {
                    seen.votes.insert(slot, (vote.value, *signature));
                }
                return None;
            }
            Some((value, _)) if *value == vote.value => return None,
            Some(first) => *first,
        };
        if !seen.reported.insert(slot) {
            return None;
        }
        let evidence = Equivocation {
            public_key: *public_key,
            first: SignedVote {
                vote: ChainVote {
                    value: first_value,
                    ..vote.clone()
                },
                signature: first_signature,
            },
            second: SignedVote {
                vote,
                signature: *signature,
            },
        };
        if seen.found.len() >= MAX_FOUND {
            seen.found.pop_front();
        }
        seen.found.push_back(evidence.clone());
        drop(seen);
        self.ready.notify_one();
        Some(evidence)
    }

    /// Takes the evidence found since the last call.
    pub fn take(&self) -> Vec<Equivocation> {
        self.seen.lock().found.drain(..).collect()
    }

    /// Resolves when evidence is waiting.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }
}
