//! Data: the data network, after PublicAI, built to be hard to farm. A bounty's owner escrows
//! the rewards for a number of items of a given schema; contributors submit items (stored off
//! chain in a node's blob store, named here by blake3 hash and size) bound to that one bounty,
//! each locking a contribution stake; reviewers who staked in the bounty are assigned to each
//! item pseudo-randomly from block data (never its contributor, never the owner), commit to a
//! verdict and then reveal it, so nobody can copy the majority; the stake-weighted quorum of
//! the revealed verdicts decides. Accepted items pay their contributor; rejected ones cost the
//! contributor's stake; reviewers on the losing side, or silent, lose a share of theirs. Gold
//! items, known answers the owner committed to at creation and reveals at the end, measure each
//! reviewer: one below the bounty's floor forfeits what it earned. Finalising publishes the
//! Merkle root of the accepted items' [`DatasetLeaf`]s, against which anyone checks an item.
//!
//! Messages (in `messages`): `CreateBounty`, `JoinReviewers`, `SubmitContribution`,
//! `CommitReview`, `RevealReview`, `CloseBounty`, `FinalizeDataset`. Every token sits in one
//! bank account, [`DATA_ESCROW`], so the total supply never changes. Items whose reveal window
//! ends are settled at the end of that block. State in [`state`], what the RPC answers in
//! [`query`].

mod messages;
pub mod query;
pub mod state;

pub use hibana_types::records::data::{
    Bounty, BountyStatus, BountyTerms, DATA_ESCROW, Dataset, DatasetLeaf, GoldAnswer, Item,
    ItemStatus, Reviewer,
};
pub use state::{
    assignments, bounty, bounty_items, dataset, escrow_balance, item, item_by_hash, reviewers,
};

use hibana_types::Event;

use crate::{BlockContext, Component, ExecError, StateWrite};

/// The data component.
#[derive(Debug, Clone, Copy, Default)]
pub struct Data;

impl Component for Data {
    fn name(&self) -> &'static str {
        "data"
    }

    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        block: &BlockContext,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        messages::end_block(state, block.height, events)
    }
}
