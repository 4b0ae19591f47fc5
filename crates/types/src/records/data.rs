//! Data network records: bounties that pay for data and labels, the contributions submitted to
//! them, the reviews that judge each contribution by commit-reveal, the reviewers' standing, and
//! the datasets finalised from what was accepted; their limits and their state keys.
//!
//! A bounty's owner escrows the most it can pay (`max_items` × (item reward + reviewers per item
//! × reviewer reward)). A contributor submits an item's blake3 hash and size, bound to one
//! bounty, locking a contribution stake; reviewers who staked in the bounty are assigned to it
//! pseudo-randomly from block data, commit to a verdict, then reveal it; the stake-weighted
//! quorum of the revealed verdicts decides. A finalised dataset is a Merkle root over the
//! accepted items' [`DatasetLeaf`]s in item order, so anyone can prove an item's membership.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, Amount, Hash, encode};

/// The account that holds every bounty's escrow and every contribution and review stake.
/// Nobody has its key: only the data network's rules move its tokens.
pub const DATA_ESCROW: Address = Address(*b"hibana/data/bounties");

/// Domain separator of review commitments.
pub const REVIEW_COMMIT_DOMAIN: &[u8] = b"hibana/data/review/v1\0";
/// Domain separator of a bounty's gold-answer commitment.
pub const GOLD_COMMIT_DOMAIN: &[u8] = b"hibana/data/gold/v1\0";
/// Domain separator of a dataset leaf.
pub const DATASET_LEAF_DOMAIN: &[u8] = b"hibana/data/leaf/v1\0";

/// Longest bounty title, in bytes.
pub const MAX_TITLE_BYTES: usize = 128;
/// Longest item schema (JSON Schema text), in bytes.
pub const MAX_SCHEMA_BYTES: usize = 4096;
/// Longest dataset licence name, in bytes.
pub const MAX_LICENCE_BYTES: usize = 64;
/// Largest item, in bytes (the blob store refuses larger uploads).
pub const MAX_ITEM_BYTES: u64 = 64 * 1024;
/// Most items one bounty accepts submissions for.
pub const MAX_ITEMS_PER_BOUNTY: u32 = 10_000;
/// Most reviewers assigned to one item.
pub const MAX_REVIEWERS_PER_ITEM: u8 = 7;
/// Most reviewers staked in one bounty.
pub const MAX_REVIEWERS_PER_BOUNTY: usize = 64;
/// Most gold (known-answer) items a bounty's owner reveals.
pub const MAX_GOLD_ITEMS: usize = 256;
/// Fewest blocks in a commit or reveal window.
pub const MIN_REVIEW_WINDOW_BLOCKS: u64 = 2;
/// Most blocks in a commit or reveal window.
pub const MAX_REVIEW_WINDOW_BLOCKS: u64 = 100_000;
/// Furthest ahead a bounty's deadline may be, in blocks.
pub const MAX_BOUNTY_BLOCKS: u64 = 10_000_000;
/// Blocks after a bounty's last review window in which only its owner may finalise it (and
/// reveal its gold answers); after that anyone may, so reviewers' stakes are never stuck.
pub const OWNER_FINALIZE_BLOCKS: u64 = 1_000;
/// Basis points in one whole.
pub const BPS: u16 = 10_000;

/// What a bounty asks for and pays.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BountyTerms {
    /// A short human title.
    pub title: String,
    /// The JSON Schema every item must satisfy (checked off chain, before review).
    pub schema: String,
    /// Paid to a contributor per accepted item.
    pub reward_per_item: Amount,
    /// Paid to each reviewer whose revealed verdict matched the outcome, per item.
    pub reviewer_reward: Amount,
    /// Reviewers assigned to each item.
    pub reviewers_per_item: u8,
    /// Share of the revealed stake (basis points) that must accept for an item to be accepted.
    pub quorum_bps: u16,
    /// Locked per submitted item; lost if the item is rejected.
    pub contribution_stake: Amount,
    /// Least a reviewer stakes to review for the bounty.
    pub review_stake: Amount,
    /// Share of a reviewer's stake (basis points) lost per item on which it voted against the
    /// outcome or did not reveal.
    pub slash_bps: u16,
    /// Last height at which items may be submitted.
    pub deadline: u64,
    /// Most items the bounty takes.
    pub max_items: u32,
    /// Blocks after a submission in which assigned reviewers commit.
    pub commit_blocks: u64,
    /// Blocks after the commit window in which they reveal.
    pub reveal_blocks: u64,
    /// Commitment to the owner's known answers ([`gold_commitment`]), revealed at finalising.
    pub gold_commitment: Option<Hash>,
    /// Least share of gold items (basis points) a reviewer must judge right to be paid its
    /// earned rewards; below it they go back to the owner.
    pub gold_floor_bps: u16,
}

impl BountyTerms {
    /// The most one item can cost the bounty: its reward and every reviewer's.
    pub fn item_budget(&self) -> Option<Amount> {
        self.reviewer_reward
            .0
            .checked_mul(u128::from(self.reviewers_per_item))
            .and_then(|r| r.checked_add(self.reward_per_item.0))
            .map(Amount)
    }

    /// What the owner escrows: the budget of `max_items` items.
    pub fn escrow(&self) -> Option<Amount> {
        self.item_budget()?
            .0
            .checked_mul(u128::from(self.max_items))
            .map(Amount)
    }
}

/// Where a bounty stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum BountyStatus {
    /// Taking submissions until its deadline.
    Open,
    /// Its owner closed it early: no more submissions; reviews of submitted items go on.
    Closed,
    /// Settled: rewards and stakes paid out, unspent escrow returned, dataset published.
    Finalized,
}

/// A data bounty.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Bounty {
    /// Id (also the id of the dataset it publishes).
    pub id: u64,
    /// Who funded it.
    pub owner: Address,
    /// What it asks for and pays.
    pub terms: BountyTerms,
    /// Escrowed at creation for rewards.
    pub escrowed: Amount,
    /// Paid out of the escrow so far (item rewards, reviewer rewards).
    pub paid: Amount,
    /// Stakes lost by contributors and reviewers, returned to the owner when finalised.
    pub forfeited: Amount,
    /// Items submitted.
    pub submitted: u32,
    /// Items accepted.
    pub accepted: u32,
    /// Items rejected.
    pub rejected: u32,
    /// Items nobody revealed a verdict on (stake returned, nothing paid).
    pub unreviewed: u32,
    /// Height of creation.
    pub created_at: u64,
    /// Last height at which an item can still be under review.
    pub last_review_height: u64,
    /// Where it stands.
    pub status: BountyStatus,
}

impl Bounty {
    /// Items submitted and not yet settled.
    pub fn pending(&self) -> u32 {
        self.submitted
            .saturating_sub(self.accepted)
            .saturating_sub(self.rejected)
            .saturating_sub(self.unreviewed)
    }

    /// Whether submissions are still taken at `height`.
    pub fn takes_submissions(&self, height: u64) -> bool {
        self.status == BountyStatus::Open
            && height <= self.terms.deadline
            && self.submitted < self.terms.max_items
    }
}

/// One reviewer's standing in one bounty.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Reviewer {
    /// The reviewer.
    pub address: Address,
    /// Stake still locked (its voting weight).
    pub stake: Amount,
    /// Rewards earned and not yet paid (paid when the bounty is finalised, if its gold score
    /// clears the floor).
    pub earned: Amount,
    /// Items assigned to it.
    pub assigned: u32,
    /// Verdicts it revealed.
    pub revealed: u32,
    /// Revealed verdicts that matched the outcome.
    pub agreed: u32,
    /// Assignments it did not reveal in time.
    pub missed: u32,
    /// Stake it lost.
    pub slashed: Amount,
    /// Gold items it judged (known at finalising).
    pub gold_seen: u32,
    /// Gold items it judged right.
    pub gold_right: u32,
}

/// Where a contribution stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Under review.
    Pending,
    /// Accepted by the quorum: paid, and part of the dataset.
    Accepted,
    /// Rejected by the quorum: its stake lost.
    Rejected,
    /// No reviewer revealed a verdict: its stake returned, nothing paid.
    Unreviewed,
}

/// One assigned reviewer's part in an item's review.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReviewSlot {
    /// The assigned reviewer.
    pub reviewer: Address,
    /// Its commitment, once committed.
    pub commitment: Option<Hash>,
    /// Its verdict (true = accept), once revealed.
    pub verdict: Option<bool>,
}

/// A submitted item.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Item {
    /// Id (global).
    pub id: u64,
    /// The bounty it was submitted to, and the only one that can pay for it.
    pub bounty: u64,
    /// Who submitted it.
    pub contributor: Address,
    /// blake3 of its bytes (its address in the blob store).
    pub hash: Hash,
    /// Its size in bytes.
    pub size: u64,
    /// Height of submission.
    pub submitted_at: u64,
    /// Last height to commit a verdict.
    pub commit_until: u64,
    /// Last height to reveal one.
    pub reveal_until: u64,
    /// The assigned reviewers.
    pub reviews: Vec<ReviewSlot>,
    /// Where it stands.
    pub status: ItemStatus,
    /// Height it was settled.
    pub settled_at: Option<u64>,
}

impl Item {
    /// Whether every assigned reviewer has committed.
    pub fn all_committed(&self) -> bool {
        self.reviews.iter().all(|r| r.commitment.is_some())
    }

    /// Whether reveals are taken at `height`: once every reviewer committed or the commit
    /// window is over, until the reveal window ends.
    pub fn reveals_open(&self, height: u64) -> bool {
        self.status == ItemStatus::Pending
            && height <= self.reveal_until
            && (height > self.commit_until || self.all_committed())
    }
}

/// A known answer the bounty's owner mixed in: an item's content hash and the right verdict.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GoldAnswer {
    /// The gold item's content hash.
    pub hash: Hash,
    /// The right verdict (true = accept).
    pub accept: bool,
}

/// The commitment a bounty's owner publishes for its gold answers and a secret salt.
pub fn gold_commitment(answers: &[GoldAnswer], salt: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(GOLD_COMMIT_DOMAIN);
    h.update(&encode(&answers.to_vec()));
    h.update(&salt.0);
    Hash(*h.finalize().as_bytes())
}

/// The commitment a reviewer publishes for its verdict on an item, bound to the item and to
/// itself so nobody can copy another reviewer's commitment.
pub fn review_commitment(item: u64, reviewer: &Address, accept: bool, salt: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(REVIEW_COMMIT_DOMAIN);
    h.update(&item.to_be_bytes());
    h.update(&reviewer.0);
    h.update(&[u8::from(accept)]);
    h.update(&salt.0);
    Hash(*h.finalize().as_bytes())
}

/// What a dataset commits to for each accepted item: its place, its provenance and its bytes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DatasetLeaf {
    /// The bounty (and dataset) id.
    pub bounty: u64,
    /// The item id.
    pub item: u64,
    /// Who contributed it.
    pub contributor: Address,
    /// blake3 of its bytes.
    pub hash: Hash,
}

impl DatasetLeaf {
    /// The leaf's hash in the dataset's Merkle tree.
    pub fn digest(&self) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(DATASET_LEAF_DOMAIN);
        h.update(&encode(self));
        Hash(*h.finalize().as_bytes())
    }
}

/// A finalised dataset.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Dataset {
    /// Id (the bounty's id).
    pub id: u64,
    /// Merkle root over the accepted items' leaves, in item order.
    pub root: Hash,
    /// The accepted items it holds, in order.
    pub items: Vec<u64>,
    /// Its licence (e.g. `CC-BY-4.0`).
    pub licence: String,
    /// Who finalised it.
    pub finalized_by: Address,
    /// Height it was finalised.
    pub finalized_at: u64,
    /// Whether the owner revealed gold answers that measured the reviewers.
    pub gold_revealed: bool,
}

/// State key of a bounty.
pub fn bounty_key(id: u64) -> Vec<u8> {
    [b"data/bounty/".as_slice(), &id.to_be_bytes()].concat()
}

/// State key of the next bounty id (`u64`).
pub const NEXT_BOUNTY_KEY: &[u8] = b"data/next_bounty";

/// State key of the next item id (`u64`).
pub const NEXT_ITEM_KEY: &[u8] = b"data/next_item";

/// State key of the open (not finalised) bounties (`BTreeSet<u64>`).
pub const OPEN_BOUNTIES_KEY: &[u8] = b"data/open";

/// State key of the finalised bounties (`BTreeSet<u64>`).
pub const FINALIZED_BOUNTIES_KEY: &[u8] = b"data/finalized";

/// State key of an item.
pub fn item_key(id: u64) -> Vec<u8> {
    [b"data/item/".as_slice(), &id.to_be_bytes()].concat()
}

/// State key of a bounty's items (`Vec<u64>`, in submission order).
pub fn bounty_items_key(bounty: u64) -> Vec<u8> {
    [b"data/items_of/".as_slice(), &bounty.to_be_bytes()].concat()
}

/// State key of the item a bounty holds with a content hash (`u64`).
pub fn item_by_hash_key(bounty: u64, hash: &Hash) -> Vec<u8> {
    [b"data/by_hash/".as_slice(), &bounty.to_be_bytes(), &hash.0].concat()
}

/// State key of a bounty's reviewers (`Vec<Reviewer>`, in joining order).
pub fn reviewers_key(bounty: u64) -> Vec<u8> {
    [b"data/reviewers/".as_slice(), &bounty.to_be_bytes()].concat()
}

/// State key of the items awaiting an account's review (`BTreeSet<u64>`).
pub fn assignments_key(reviewer: &Address) -> Vec<u8> {
    [b"data/assigned/".as_slice(), &reviewer.0].concat()
}

/// State key of the items whose reveal window ends at a height (`BTreeSet<u64>`).
pub fn review_deadline_key(height: u64) -> Vec<u8> {
    [b"data/due/".as_slice(), &height.to_be_bytes()].concat()
}

/// State key of a finalised dataset.
pub fn dataset_key(id: u64) -> Vec<u8> {
    [b"data/dataset/".as_slice(), &id.to_be_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_escrow_address_is_the_one_the_readme_names() {
        assert_eq!(
            DATA_ESCROW.to_string(),
            "hib1dp5kyctwvyhkgct5vyhkymm4de6xjetnz993d6"
        );
    }

    #[test]
    fn commitments_bind_every_field() {
        let a = Address([1; 20]);
        let salt = Hash([7; 32]);
        let c = review_commitment(3, &a, true, &salt);
        assert_ne!(c, review_commitment(4, &a, true, &salt));
        assert_ne!(c, review_commitment(3, &Address([2; 20]), true, &salt));
        assert_ne!(c, review_commitment(3, &a, false, &salt));
        assert_ne!(c, review_commitment(3, &a, true, &Hash([8; 32])));
        let gold = [GoldAnswer {
            hash: Hash([5; 32]),
            accept: false,
        }];
        assert_ne!(gold_commitment(&gold, &salt), gold_commitment(&[], &salt));
    }

    #[test]
    fn budgets_are_checked() {
        let terms = BountyTerms {
            title: "t".into(),
            schema: "{}".into(),
            reward_per_item: Amount(100),
            reviewer_reward: Amount(10),
            reviewers_per_item: 3,
            quorum_bps: 6_000,
            contribution_stake: Amount(1),
            review_stake: Amount(1),
            slash_bps: 1_000,
            deadline: 10,
            max_items: 4,
            commit_blocks: 5,
            reveal_blocks: 5,
            gold_commitment: None,
            gold_floor_bps: 0,
        };
        assert_eq!(terms.item_budget(), Some(Amount(130)));
        assert_eq!(terms.escrow(), Some(Amount(520)));
        let huge = BountyTerms {
            reward_per_item: Amount(u128::MAX),
            ..terms
        };
        assert_eq!(huge.escrow(), None);
    }
}
