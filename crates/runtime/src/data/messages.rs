//! Data network messages: `CreateBounty`, `JoinReviewers`, `SubmitContribution`,
//! `CommitReview`, `RevealReview`, `CloseBounty`, `FinalizeDataset`.
//!
//! As in the other components, each message's stateful rules live in one function that reads
//! what the message needs and returns it; `check_stateful` calls it and discards the result,
//! `execute` calls it again on the same state and writes, so the two can never disagree.

use std::collections::BTreeSet;

use hibana_types::records::data::{
    BPS, Bounty, BountyStatus, BountyTerms, DatasetLeaf, FINALIZED_BOUNTIES_KEY, Item, ItemStatus,
    MAX_BOUNTY_BLOCKS, MAX_GOLD_ITEMS, MAX_ITEM_BYTES, MAX_ITEMS_PER_BOUNTY, MAX_LICENCE_BYTES,
    MAX_REVIEW_WINDOW_BLOCKS, MAX_REVIEWERS_PER_BOUNTY, MAX_REVIEWERS_PER_ITEM, MAX_SCHEMA_BYTES,
    MAX_TITLE_BYTES, MIN_REVIEW_WINDOW_BLOCKS, OPEN_BOUNTIES_KEY, OWNER_FINALIZE_BLOCKS,
    ReviewSlot, Reviewer, bounty_items_key, gold_commitment, item_by_hash_key, review_commitment,
    review_deadline_key,
};
use hibana_types::records::data::{Dataset, GoldAnswer, dataset_key};
use hibana_types::{
    Address, Amount, CloseBounty, CommitReview, CreateBounty, Event, FinalizeDataset, Hash,
    JoinReviewers, RevealReview, SubmitContribution, merkle_root,
};

use super::state::*;
use crate::{
    BlockContext, ExecError, MessageHandler, StateRead, StateWrite, TxContext, TxError, bank,
    invalid, put_typed,
};

fn bad(msg: impl Into<String>) -> TxError {
    TxError::Invalid(msg.into())
}

/// The bounty `id`, which must exist.
fn existing_bounty<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Bounty, ExecError> {
    bounty(state, id)?.ok_or_else(|| invalid(format!("bounty {id} does not exist")))
}

/// The item `id`, which must exist and be under review.
fn pending_item<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Item, ExecError> {
    let item = item(state, id)?.ok_or_else(|| invalid(format!("item {id} does not exist")))?;
    if item.status != ItemStatus::Pending {
        return Err(invalid(format!(
            "item {id} is already settled ({:?})",
            item.status
        )));
    }
    Ok(item)
}

/// `amount` × `bps` / 10,000, rounded down.
fn share(amount: Amount, bps: u16) -> Amount {
    // amount ≤ u128::MAX and bps ≤ 10,000: divide first where the product could overflow.
    Amount(
        amount
            .0
            .checked_mul(u128::from(bps))
            .map(|p| p / u128::from(BPS))
            .unwrap_or_else(|| amount.0 / u128::from(BPS) * u128::from(bps)),
    )
}

fn add(a: Amount, b: Amount, what: &'static str) -> Result<Amount, ExecError> {
    a.checked_add(b)
        .ok_or(ExecError::Tx(TxError::Overflow(what)))
}

fn sub(a: Amount, b: Amount, what: &'static str) -> Result<Amount, ExecError> {
    a.checked_sub(b)
        .ok_or(ExecError::Tx(TxError::Overflow(what)))
}

fn check_terms(t: &BountyTerms) -> Result<(), TxError> {
    if t.title.trim().is_empty() || t.title.len() > MAX_TITLE_BYTES {
        return Err(bad(format!(
            "a bounty's title is 1 to {MAX_TITLE_BYTES} bytes"
        )));
    }
    if t.schema.len() > MAX_SCHEMA_BYTES {
        return Err(bad(format!(
            "the item schema is {} bytes, more than the {MAX_SCHEMA_BYTES} allowed",
            t.schema.len()
        )));
    }
    if t.reward_per_item.0 == 0 {
        return Err(bad("a bounty pays a reward per accepted item above 0"));
    }
    if t.reviewers_per_item == 0 || t.reviewers_per_item > MAX_REVIEWERS_PER_ITEM {
        return Err(bad(format!(
            "reviewers per item must be 1 to {MAX_REVIEWERS_PER_ITEM}, not {}",
            t.reviewers_per_item
        )));
    }
    if t.quorum_bps <= BPS / 2 || t.quorum_bps > BPS {
        return Err(bad(format!(
            "the quorum must be more than half and at most all of the revealed stake (5001 to 10000 basis points), not {}",
            t.quorum_bps
        )));
    }
    if t.slash_bps > BPS || t.gold_floor_bps > BPS {
        return Err(bad(
            "slash and gold-floor shares are at most 10000 basis points",
        ));
    }
    if t.review_stake.0 == 0 {
        return Err(bad(
            "reviewers must stake something: with a review stake of 0 a lazy reviewer risks nothing",
        ));
    }
    if t.max_items == 0 || t.max_items > MAX_ITEMS_PER_BOUNTY {
        return Err(bad(format!(
            "a bounty takes 1 to {MAX_ITEMS_PER_BOUNTY} items, not {}",
            t.max_items
        )));
    }
    for (name, blocks) in [("commit", t.commit_blocks), ("reveal", t.reveal_blocks)] {
        if !(MIN_REVIEW_WINDOW_BLOCKS..=MAX_REVIEW_WINDOW_BLOCKS).contains(&blocks) {
            return Err(bad(format!(
                "the {name} window is {MIN_REVIEW_WINDOW_BLOCKS} to {MAX_REVIEW_WINDOW_BLOCKS} blocks, not {blocks}"
            )));
        }
    }
    if t.escrow().is_none() {
        return Err(TxError::Overflow("bounty escrow"));
    }
    Ok(())
}

fn create_rules<S: StateRead + ?Sized>(
    m: &CreateBounty,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Amount, ExecError> {
    let height = ctx.block.height;
    let latest = height.saturating_add(MAX_BOUNTY_BLOCKS);
    if m.terms.deadline < height || m.terms.deadline > latest {
        return Err(invalid(format!(
            "the deadline {} must be from the current height {height} to {latest}",
            m.terms.deadline
        )));
    }
    let escrow = m
        .terms
        .escrow()
        .ok_or(ExecError::Tx(TxError::Overflow("bounty escrow")))?;
    bank::require_balance(state, &ctx.sender, escrow)?;
    Ok(escrow)
}

impl MessageHandler for CreateBounty {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        check_terms(&self.terms)
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        create_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let escrow = create_rules(self, state, ctx)?;
        lock(state, &ctx.sender, escrow)?;
        let b = Bounty {
            id: next_bounty_id(state)?,
            owner: ctx.sender,
            terms: self.terms.clone(),
            escrowed: escrow,
            paid: Amount::ZERO,
            forfeited: Amount::ZERO,
            submitted: 0,
            accepted: 0,
            rejected: 0,
            unreviewed: 0,
            created_at: ctx.block.height,
            last_review_height: self.terms.deadline,
            status: BountyStatus::Open,
        };
        put_bounty(state, &b);
        let mut open = open_bounties(state)?;
        open.insert(b.id);
        put_set(state, OPEN_BOUNTIES_KEY.to_vec(), &open);
        events.push(Event::new(
            "data.bounty_created",
            [
                ("bounty", b.id.to_string()),
                ("owner", b.owner.to_string()),
                ("escrow", escrow.0.to_string()),
                ("max_items", b.terms.max_items.to_string()),
                ("deadline", b.terms.deadline.to_string()),
            ],
        ));
        Ok(())
    }
}

/// The bounty's reviewers with the sender's stake added, and whether the sender is new.
fn join_rules<S: StateRead + ?Sized>(
    m: &JoinReviewers,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Vec<Reviewer>, ExecError> {
    let b = existing_bounty(state, m.bounty)?;
    if b.status != BountyStatus::Open || ctx.block.height > b.terms.deadline {
        return Err(invalid(format!(
            "bounty {} no longer takes submissions, so it needs no new reviewers",
            b.id
        )));
    }
    if b.owner == ctx.sender {
        return Err(invalid(
            "a bounty's owner cannot review it: rejecting items would save it rewards",
        ));
    }
    let mut list = reviewers(state, m.bounty)?;
    match list.iter_mut().find(|r| r.address == ctx.sender) {
        Some(r) => r.stake = add(r.stake, m.stake, "review stake")?,
        None => {
            if list.len() >= MAX_REVIEWERS_PER_BOUNTY {
                return Err(invalid(format!(
                    "bounty {} has {MAX_REVIEWERS_PER_BOUNTY} reviewers, the most allowed",
                    b.id
                )));
            }
            if m.stake < b.terms.review_stake {
                return Err(invalid(format!(
                    "bounty {} asks reviewers to stake at least {}, not {}",
                    b.id, b.terms.review_stake, m.stake
                )));
            }
            list.push(Reviewer {
                address: ctx.sender,
                stake: m.stake,
                ..Reviewer::default()
            });
        }
    }
    bank::require_balance(state, &ctx.sender, m.stake)?;
    Ok(list)
}

impl MessageHandler for JoinReviewers {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.stake.0 == 0 {
            return Err(bad("a reviewer stakes more than 0"));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        join_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let list = join_rules(self, state, ctx)?;
        lock(state, &ctx.sender, self.stake)?;
        put_reviewers(state, self.bounty, &list);
        events.push(Event::new(
            "data.reviewer_staked",
            [
                ("bounty", self.bounty.to_string()),
                ("reviewer", ctx.sender.to_string()),
                ("stake", self.stake.0.to_string()),
            ],
        ));
        Ok(())
    }
}

/// Picks up to `k` of `candidates` from a seed that block data and the item fix: a partial
/// Fisher-Yates shuffle driven by blake3, the same on every validator.
fn pick_reviewers(mut candidates: Vec<Address>, k: usize, seed: &Hash) -> Vec<Address> {
    let k = k.min(candidates.len());
    for j in 0..k {
        let mut h = blake3::Hasher::new();
        h.update(&seed.0);
        h.update(&(j as u64).to_be_bytes());
        let digest = h.finalize();
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest.as_bytes()[..8]);
        let remaining = (candidates.len() - j) as u64;
        let pick = j + (u64::from_be_bytes(word) % remaining) as usize;
        candidates.swap(j, pick);
    }
    candidates.truncate(k);
    candidates
}

/// The seed an item's reviewers are drawn from: the block's data and the item itself. A
/// contributor cannot choose it without choosing the block; a proposer that grinds block times
/// could (see the README: a beacon from the validators' signatures would close that).
fn assignment_seed(block: &BlockContext, item: u64, hash: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"hibana/data/assign/v1\0");
    h.update(block.chain_id.as_bytes());
    h.update(&block.height.to_be_bytes());
    h.update(&block.time_ms.to_be_bytes());
    h.update(&block.proposer.0);
    h.update(&item.to_be_bytes());
    h.update(&hash.0);
    Hash(*h.finalize().as_bytes())
}

/// The bounty and the reviewers eligible for the sender's item.
fn submit_rules<S: StateRead + ?Sized>(
    m: &SubmitContribution,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Bounty, Vec<Address>), ExecError> {
    let b = existing_bounty(state, m.bounty)?;
    let height = ctx.block.height;
    if b.status != BountyStatus::Open {
        return Err(invalid(format!("bounty {} is closed to submissions", b.id)));
    }
    if height > b.terms.deadline {
        return Err(invalid(format!(
            "bounty {}'s deadline was height {}; it is now {height}",
            b.id, b.terms.deadline
        )));
    }
    if b.submitted >= b.terms.max_items {
        return Err(invalid(format!(
            "bounty {} already has its maximum of {} items",
            b.id, b.terms.max_items
        )));
    }
    if let Some(existing) = item_by_hash(state, m.bounty, &m.hash)? {
        return Err(invalid(format!(
            "bounty {} already holds this item (item {existing}): an item is paid once",
            b.id
        )));
    }
    let eligible: Vec<Address> = reviewers(state, m.bounty)?
        .into_iter()
        .filter(|r| r.address != ctx.sender && r.stake >= b.terms.review_stake)
        .map(|r| r.address)
        .collect();
    if eligible.is_empty() {
        return Err(invalid(format!(
            "bounty {} has no staked reviewer other than {}: nobody could review the item",
            b.id, ctx.sender
        )));
    }
    bank::require_balance(state, &ctx.sender, b.terms.contribution_stake)?;
    Ok((b, eligible))
}

impl MessageHandler for SubmitContribution {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.size == 0 || self.size > MAX_ITEM_BYTES {
            return Err(bad(format!(
                "an item is 1 to {MAX_ITEM_BYTES} bytes, not {}",
                self.size
            )));
        }
        if self.hash == Hash::ZERO {
            return Err(bad("the zero hash names no item"));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        submit_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let (mut b, eligible) = submit_rules(self, state, ctx)?;
        lock(state, &ctx.sender, b.terms.contribution_stake)?;
        let id = next_item_id(state)?;
        let seed = assignment_seed(ctx.block, id, &self.hash);
        let chosen = pick_reviewers(eligible, usize::from(b.terms.reviewers_per_item), &seed);
        let height = ctx.block.height;
        let commit_until = height.saturating_add(b.terms.commit_blocks);
        let reveal_until = commit_until.saturating_add(b.terms.reveal_blocks);
        let item = Item {
            id,
            bounty: b.id,
            contributor: ctx.sender,
            hash: self.hash,
            size: self.size,
            submitted_at: height,
            commit_until,
            reveal_until,
            reviews: chosen
                .iter()
                .map(|r| ReviewSlot {
                    reviewer: *r,
                    commitment: None,
                    verdict: None,
                })
                .collect(),
            status: ItemStatus::Pending,
            settled_at: None,
        };
        let mut list = reviewers(state, b.id)?;
        for r in list.iter_mut().filter(|r| chosen.contains(&r.address)) {
            r.assigned = r.assigned.saturating_add(1);
        }
        put_reviewers(state, b.id, &list);
        for r in &chosen {
            assign(state, r, id, true)?;
        }
        put_item(state, &item);
        put_typed(state, item_by_hash_key(b.id, &self.hash), &id);
        let mut items = bounty_items(state, b.id)?;
        items.push(id);
        put_typed(state, bounty_items_key(b.id), &items);
        let mut due = reviews_due(state, reveal_until)?;
        due.insert(id);
        put_set(state, review_deadline_key(reveal_until), &due);
        b.submitted = b.submitted.saturating_add(1);
        b.last_review_height = b.last_review_height.max(reveal_until);
        put_bounty(state, &b);
        events.push(Event::new(
            "data.item_submitted",
            [
                ("bounty", b.id.to_string()),
                ("item", id.to_string()),
                ("contributor", ctx.sender.to_string()),
                ("hash", self.hash.to_string()),
                (
                    "reviewers",
                    chosen
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ],
        ));
        Ok(())
    }
}

/// The item and the index of the sender's review slot in it.
fn slot_of(item: &Item, sender: &Address) -> Result<usize, ExecError> {
    item.reviews
        .iter()
        .position(|r| r.reviewer == *sender)
        .ok_or_else(|| {
            invalid(format!(
                "{sender} is not assigned to review item {}",
                item.id
            ))
        })
}

fn commit_rules<S: StateRead + ?Sized>(
    m: &CommitReview,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Item, usize), ExecError> {
    let item = pending_item(state, m.item)?;
    let slot = slot_of(&item, &ctx.sender)?;
    if ctx.block.height > item.commit_until {
        return Err(invalid(format!(
            "item {}'s commit window ended at height {}",
            item.id, item.commit_until
        )));
    }
    if item.reviews[slot].commitment.is_some() {
        return Err(invalid(format!(
            "{} already committed on item {}",
            ctx.sender, item.id
        )));
    }
    Ok((item, slot))
}

impl MessageHandler for CommitReview {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        commit_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let (mut item, slot) = commit_rules(self, state, ctx)?;
        item.reviews[slot].commitment = Some(self.commitment);
        put_item(state, &item);
        events.push(Event::new(
            "data.review_committed",
            [
                ("item", item.id.to_string()),
                ("reviewer", ctx.sender.to_string()),
            ],
        ));
        Ok(())
    }
}

fn reveal_rules<S: StateRead + ?Sized>(
    m: &RevealReview,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Item, usize), ExecError> {
    let item = pending_item(state, m.item)?;
    let slot = slot_of(&item, &ctx.sender)?;
    let height = ctx.block.height;
    let Some(commitment) = item.reviews[slot].commitment else {
        return Err(invalid(format!(
            "{} did not commit on item {}: there is nothing to reveal",
            ctx.sender, item.id
        )));
    };
    if item.reviews[slot].verdict.is_some() {
        return Err(invalid(format!(
            "{} already revealed on item {}",
            ctx.sender, item.id
        )));
    }
    if height > item.reveal_until {
        return Err(invalid(format!(
            "item {}'s reveal window ended at height {}",
            item.id, item.reveal_until
        )));
    }
    if !item.reveals_open(height) {
        return Err(invalid(format!(
            "item {}'s reveals open after height {} or once every reviewer committed",
            item.id, item.commit_until
        )));
    }
    if review_commitment(item.id, &ctx.sender, m.accept, &m.salt) != commitment {
        return Err(invalid(format!(
            "the verdict and salt do not match {}'s commitment on item {}",
            ctx.sender, item.id
        )));
    }
    Ok((item, slot))
}

impl MessageHandler for RevealReview {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        reveal_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let (mut item, slot) = reveal_rules(self, state, ctx)?;
        item.reviews[slot].verdict = Some(self.accept);
        events.push(Event::new(
            "data.review_revealed",
            [
                ("item", item.id.to_string()),
                ("reviewer", ctx.sender.to_string()),
                ("accept", self.accept.to_string()),
            ],
        ));
        if item.reviews.iter().all(|r| r.verdict.is_some()) {
            let mut due = reviews_due(state, item.reveal_until)?;
            due.remove(&item.id);
            put_set(state, review_deadline_key(item.reveal_until), &due);
            settle(state, item, ctx.block.height, events)
        } else {
            put_item(state, &item);
            Ok(())
        }
    }
}

/// Settles an item under review: the stake-weighted quorum of the revealed verdicts decides;
/// reviewers who voted with the outcome earn the reviewer reward, those who voted against it
/// or did not reveal lose the bounty's slash share of their stake; an accepted item pays its
/// contributor, a rejected one costs the contributor's stake, an unreviewed one returns it.
pub(crate) fn settle<S: StateWrite + ?Sized>(
    state: &mut S,
    mut item: Item,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let mut b = existing_bounty(state, item.bounty)?;
    let mut list = reviewers(state, b.id)?;
    let weight = |list: &[Reviewer], who: &Address| {
        list.iter()
            .find(|r| r.address == *who)
            .map_or(Amount::ZERO, |r| r.stake)
    };
    let (mut accept_w, mut reject_w) = (0u128, 0u128);
    for slot in &item.reviews {
        match slot.verdict {
            Some(true) => accept_w = accept_w.saturating_add(weight(&list, &slot.reviewer).0),
            Some(false) => reject_w = reject_w.saturating_add(weight(&list, &slot.reviewer).0),
            None => {}
        }
    }
    let revealed = accept_w.saturating_add(reject_w);
    let outcome = if item.reviews.iter().all(|s| s.verdict.is_none()) {
        ItemStatus::Unreviewed
    } else {
        // accept_w / revealed ≥ quorum / 10,000, compared without division; a revealed weight
        // of 0 (every voter slashed to nothing) accepts nothing.
        let lhs = accept_w.checked_mul(u128::from(BPS));
        let rhs = revealed.checked_mul(u128::from(b.terms.quorum_bps));
        match (lhs, rhs) {
            (Some(l), Some(r)) if revealed > 0 && l >= r => ItemStatus::Accepted,
            (None, _) | (_, None) => {
                // Weights this large only compare by division.
                if revealed > 0
                    && accept_w / u128::from(b.terms.quorum_bps) >= revealed / u128::from(BPS)
                {
                    ItemStatus::Accepted
                } else {
                    ItemStatus::Rejected
                }
            }
            _ => ItemStatus::Rejected,
        }
    };
    let verdict = outcome == ItemStatus::Accepted;
    for slot in &item.reviews {
        let Some(r) = list.iter_mut().find(|r| r.address == slot.reviewer) else {
            continue;
        };
        let agreed = slot.verdict == Some(verdict) && outcome != ItemStatus::Unreviewed;
        if slot.verdict.is_some() {
            r.revealed = r.revealed.saturating_add(1);
        } else {
            r.missed = r.missed.saturating_add(1);
        }
        if agreed {
            r.agreed = r.agreed.saturating_add(1);
            r.earned = add(r.earned, b.terms.reviewer_reward, "reviewer earnings")?;
            b.paid = add(b.paid, b.terms.reviewer_reward, "bounty payouts")?;
        } else {
            let lost = share(r.stake, b.terms.slash_bps);
            r.stake = sub(r.stake, lost, "review stake")?;
            r.slashed = add(r.slashed, lost, "reviewer slashes")?;
            b.forfeited = add(b.forfeited, lost, "forfeited stakes")?;
            events.push(Event::new(
                "data.reviewer_slashed",
                [
                    ("bounty", b.id.to_string()),
                    ("item", item.id.to_string()),
                    ("reviewer", r.address.to_string()),
                    ("amount", lost.0.to_string()),
                    (
                        "reason",
                        if slot.verdict.is_some() {
                            "voted against the outcome"
                        } else {
                            "did not reveal"
                        }
                        .to_string(),
                    ),
                ],
            ));
        }
        assign(state, &r.address, item.id, false)?;
    }
    match outcome {
        ItemStatus::Accepted => {
            let due = add(
                b.terms.reward_per_item,
                b.terms.contribution_stake,
                "contributor payout",
            )?;
            release(state, &item.contributor, due)?;
            b.paid = add(b.paid, b.terms.reward_per_item, "bounty payouts")?;
            b.accepted = b.accepted.saturating_add(1);
        }
        ItemStatus::Rejected => {
            b.forfeited = add(b.forfeited, b.terms.contribution_stake, "forfeited stakes")?;
            b.rejected = b.rejected.saturating_add(1);
        }
        ItemStatus::Unreviewed | ItemStatus::Pending => {
            release(state, &item.contributor, b.terms.contribution_stake)?;
            b.unreviewed = b.unreviewed.saturating_add(1);
        }
    }
    item.status = outcome;
    item.settled_at = Some(height);
    events.push(Event::new(
        "data.item_settled",
        [
            ("bounty", b.id.to_string()),
            ("item", item.id.to_string()),
            ("contributor", item.contributor.to_string()),
            ("outcome", format!("{outcome:?}").to_lowercase()),
            ("accept_weight", accept_w.to_string()),
            ("reject_weight", reject_w.to_string()),
        ],
    ));
    put_item(state, &item);
    put_reviewers(state, b.id, &list);
    put_bounty(state, &b);
    Ok(())
}

fn close_rules<S: StateRead + ?Sized>(
    m: &CloseBounty,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Bounty, ExecError> {
    let b = existing_bounty(state, m.bounty)?;
    if b.owner != ctx.sender {
        return Err(invalid(format!(
            "only the owner {} closes bounty {}",
            b.owner, b.id
        )));
    }
    if b.status != BountyStatus::Open {
        return Err(invalid(format!(
            "bounty {} is already {:?}",
            b.id, b.status
        )));
    }
    Ok(b)
}

impl MessageHandler for CloseBounty {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        close_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let mut b = close_rules(self, state, ctx)?;
        b.status = BountyStatus::Closed;
        put_bounty(state, &b);
        events.push(Event::new(
            "data.bounty_closed",
            [
                ("bounty", b.id.to_string()),
                ("pending", b.pending().to_string()),
            ],
        ));
        Ok(())
    }
}

/// Everything finalising a bounty decides, computed without writing.
struct Finalization {
    bounty: Bounty,
    reviewers: Vec<Reviewer>,
    /// Per reviewer (same order): whether its earnings are paid.
    paid: Vec<bool>,
    dataset: Dataset,
    gold_items: BTreeSet<u64>,
}

fn finalize_rules<S: StateRead + ?Sized>(
    m: &FinalizeDataset,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Finalization, ExecError> {
    let b = existing_bounty(state, m.bounty)?;
    let height = ctx.block.height;
    if b.status == BountyStatus::Finalized {
        return Err(invalid(format!("bounty {} is already finalised", b.id)));
    }
    let submissions_over = b.status == BountyStatus::Closed
        || height > b.terms.deadline
        || b.submitted >= b.terms.max_items;
    if !submissions_over {
        return Err(invalid(format!(
            "bounty {} takes submissions until height {}: close it first",
            b.id, b.terms.deadline
        )));
    }
    if b.pending() > 0 {
        return Err(invalid(format!(
            "bounty {} has {} items under review (the last review window ends at height {})",
            b.id,
            b.pending(),
            b.last_review_height
        )));
    }
    let anyone_from = b
        .terms
        .deadline
        .max(b.last_review_height)
        .saturating_add(OWNER_FINALIZE_BLOCKS);
    let is_owner = ctx.sender == b.owner;
    if !is_owner && height <= anyone_from {
        return Err(invalid(format!(
            "only the owner {} finalises bounty {} until height {anyone_from}",
            b.owner, b.id
        )));
    }
    // The owner reveals its gold answers; anyone finalising after the owner's window has none.
    let gold: &[GoldAnswer] = if is_owner { &m.gold } else { &[] };
    if !is_owner && !m.gold.is_empty() {
        return Err(invalid("only the bounty's owner reveals gold answers"));
    }
    if is_owner {
        match b.terms.gold_commitment {
            Some(c) if gold_commitment(gold, &m.gold_salt) != c => {
                return Err(invalid(format!(
                    "the gold answers and salt do not match bounty {}'s gold commitment",
                    b.id
                )));
            }
            None if !gold.is_empty() => {
                return Err(invalid(format!(
                    "bounty {} committed to no gold answers",
                    b.id
                )));
            }
            _ => {}
        }
    }
    let mut list = reviewers(state, b.id)?;
    let mut gold_items = BTreeSet::new();
    for answer in gold {
        let Some(id) = item_by_hash(state, b.id, &answer.hash)? else {
            continue;
        };
        gold_items.insert(id);
        let Some(item) = item(state, id)? else {
            continue;
        };
        for slot in &item.reviews {
            let (Some(verdict), Some(r)) = (
                slot.verdict,
                list.iter_mut().find(|r| r.address == slot.reviewer),
            ) else {
                continue;
            };
            r.gold_seen = r.gold_seen.saturating_add(1);
            if verdict == answer.accept {
                r.gold_right = r.gold_right.saturating_add(1);
            }
        }
    }
    let paid: Vec<bool> = list
        .iter()
        .map(|r| {
            r.gold_seen == 0
                || u64::from(r.gold_right) * u64::from(BPS)
                    >= u64::from(b.terms.gold_floor_bps) * u64::from(r.gold_seen)
        })
        .collect();
    let mut items = Vec::new();
    let mut leaves = Vec::new();
    for id in bounty_items(state, b.id)? {
        if gold_items.contains(&id) {
            continue;
        }
        let Some(item) = item(state, id)? else {
            continue;
        };
        if item.status == ItemStatus::Accepted {
            items.push(id);
            leaves.push(
                DatasetLeaf {
                    bounty: b.id,
                    item: id,
                    contributor: item.contributor,
                    hash: item.hash,
                }
                .digest(),
            );
        }
    }
    let dataset = Dataset {
        id: b.id,
        root: merkle_root(&leaves),
        items,
        licence: m.licence.clone(),
        finalized_by: ctx.sender,
        finalized_at: height,
        gold_revealed: !gold.is_empty(),
    };
    Ok(Finalization {
        bounty: b,
        reviewers: list,
        paid,
        dataset,
        gold_items,
    })
}

impl MessageHandler for FinalizeDataset {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.licence.trim().is_empty() || self.licence.len() > MAX_LICENCE_BYTES {
            return Err(bad(format!(
                "a dataset's licence is 1 to {MAX_LICENCE_BYTES} bytes"
            )));
        }
        if self.gold.len() > MAX_GOLD_ITEMS {
            return Err(bad(format!(
                "at most {MAX_GOLD_ITEMS} gold answers, not {}",
                self.gold.len()
            )));
        }
        let distinct: BTreeSet<Hash> = self.gold.iter().map(|g| g.hash).collect();
        if distinct.len() != self.gold.len() {
            return Err(bad("each gold item is named once"));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        finalize_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let Finalization {
            mut bounty,
            mut reviewers,
            paid,
            dataset,
            gold_items,
        } = finalize_rules(self, state, ctx)?;
        for (r, pay) in reviewers.iter_mut().zip(&paid) {
            let earned = std::mem::take(&mut r.earned);
            if *pay {
                release(state, &r.address, earned)?;
            } else {
                // Earnings withheld for failing the gold items return to the budget.
                bounty.paid = sub(bounty.paid, earned, "bounty payouts")?;
                events.push(Event::new(
                    "data.earnings_withheld",
                    [
                        ("bounty", bounty.id.to_string()),
                        ("reviewer", r.address.to_string()),
                        ("amount", earned.0.to_string()),
                        ("gold_right", r.gold_right.to_string()),
                        ("gold_seen", r.gold_seen.to_string()),
                    ],
                ));
            }
            let stake = std::mem::take(&mut r.stake);
            release(state, &r.address, stake)?;
        }
        let refund = add(
            sub(bounty.escrowed, bounty.paid, "bounty escrow")?,
            bounty.forfeited,
            "bounty refund",
        )?;
        release(state, &bounty.owner, refund)?;
        bounty.status = BountyStatus::Finalized;
        put_bounty(state, &bounty);
        put_reviewers(state, bounty.id, &reviewers);
        let mut open = open_bounties(state)?;
        open.remove(&bounty.id);
        put_set(state, OPEN_BOUNTIES_KEY.to_vec(), &open);
        let mut done = finalized_bounties(state)?;
        done.insert(bounty.id);
        put_set(state, FINALIZED_BOUNTIES_KEY.to_vec(), &done);
        put_typed(state, dataset_key(dataset.id), &dataset);
        events.push(Event::new(
            "data.dataset_finalized",
            [
                ("bounty", bounty.id.to_string()),
                ("root", dataset.root.to_string()),
                ("items", dataset.items.len().to_string()),
                ("gold_items", gold_items.len().to_string()),
                ("refund", refund.0.to_string()),
                ("licence", dataset.licence.clone()),
            ],
        ));
        Ok(())
    }
}

/// Settles the items whose reveal window ends at `height`.
pub(crate) fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let due = reviews_due(state, height)?;
    if due.is_empty() {
        return Ok(());
    }
    state.delete(review_deadline_key(height));
    for id in due {
        if let Some(item) = item(state, id)?
            && item.status == ItemStatus::Pending
        {
            settle(state, item, height, events)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviewer_picks_are_distinct_bounded_and_fixed_by_the_seed() {
        let people: Vec<Address> = (0..10u8).map(|i| Address([i; 20])).collect();
        let seed = Hash([3; 32]);
        let a = pick_reviewers(people.clone(), 3, &seed);
        assert_eq!(a, pick_reviewers(people.clone(), 3, &seed));
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), 3);
        assert_eq!(pick_reviewers(people[..2].to_vec(), 5, &seed).len(), 2);
        // Over many seeds every candidate is picked sometimes.
        let mut seen = BTreeSet::new();
        for s in 0..64u8 {
            seen.extend(pick_reviewers(people.clone(), 1, &Hash([s; 32])));
        }
        assert_eq!(seen.len(), people.len());
    }

    #[test]
    fn shares_round_down_and_never_overflow() {
        assert_eq!(share(Amount(1_000), 2_500), Amount(250));
        assert_eq!(share(Amount(3), 5_000), Amount(1));
        assert_eq!(
            share(Amount(u128::MAX), BPS),
            Amount(u128::MAX / 10_000 * 10_000)
        );
    }
}
