//! Market: the compute market (after Akash). Providers register what they offer with a stake
//! bond, clients post orders with a deposit, providers that match bid, the client accepts one
//! and the order becomes a lease that pays the provider per block from escrow, settled lazily
//! (on withdraw, top-up or close), and closed by the chain at the end of its term or of its
//! escrow.
//!
//! Messages (in `messages`): `RegisterProvider`, `UpdateProvider`, `DeregisterProvider`,
//! `CreateOrder`, `CloseOrder`, `PlaceBid`, `AcceptBid`, `WithdrawLease`, `TopUpLease`,
//! `CloseLease`; training jobs on a lease in `jobs` (`SubmitJob`, `CommitSteps`,
//! `DisputeStep`, `MoveJob`), trained on several leases at once in `parallel` (`CommitAverage`,
//! `DisputeAverage`); batch inference jobs in `batch` (`SubmitBatch`,
//! `CommitBatch`; their lines are challenged through `verify`, and posted on chain on request in
//! `lines`: `RequestBatchLine`, `PostBatchLine`); providers prove they are up in `liveness` (`Heartbeat`); orders accept their cheapest
//! reputable bid by themselves in `auto_accept` (`SetAutoAccept`); validators attest providers'
//! attributes in `attest` (`AttestProvider`). Every
//! token the market holds (bonds, order deposits, bid deposits, lease escrow) sits in one
//! bank account, [`MARKET_ESCROW`], so the total supply never changes and the escrow's balance
//! is what the market owes. State in [`state`], what the RPC answers in [`query`]; each block
//! ends by expiring the unmatched orders and closing the leases indexed under its height.

mod attest;
mod auto_accept;
mod batch;
mod jobs;
mod lines;
mod liveness;
mod messages;
mod parallel;
pub mod query;
pub mod state;

pub use attest::attestations;
pub use auto_accept::auto_accept;
pub use batch::{batch, challenged_line};
pub(crate) use batch::{
    check_line_proofs, check_proof_lengths, existing_batch, link_challenge, refute as refute_batch,
    refute_miscounted,
};
pub use hibana_types::records::market::{
    BID_DEPOSIT, BatchJob, BatchStatus, Bid, Job, JobStatus, Lease, LeaseStatus, MARKET_ESCROW,
    MIN_DEPOSIT_BLOCKS, MIN_PROVIDER_BOND, Order, OrderStatus, Provider, ProviderAttributes,
    Resources, TrainingSpec,
};
pub use jobs::{checkpoint, checkpoint_hashes, job, job_of_lease, jobs_due_at, step_hash};
pub use lines::{line_request, line_requests, owed_lines};
pub use liveness::{live_until, liveness, liveness_due_at, market_params};
pub use messages::mismatch;
pub use state::{
    bids, escrow_balance, expiring_at, lease, leases_due_at, open_order_ids, order, owed,
    owner_lease_ids, provider, provider_addresses, provider_lease_ids,
};

use hibana_types::Event;

use crate::{BlockContext, Component, ExecError, StateWrite};

/// The market component.
#[derive(Debug, Clone, Copy, Default)]
pub struct Market;

impl Component for Market {
    fn name(&self) -> &'static str {
        "market"
    }

    fn init_genesis(
        &self,
        state: &mut dyn StateWrite,
        genesis: &crate::Genesis,
    ) -> Result<(), ExecError> {
        if genesis.market.liveness_blocks == 0 {
            return Err(ExecError::Tx(crate::TxError::Invalid(
                "market.liveness_blocks must be at least 1".into(),
            )));
        }
        crate::put_typed(
            state,
            hibana_types::records::market::MARKET_PARAMS_KEY.to_vec(),
            &genesis.market,
        );
        Ok(())
    }

    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        block: &BlockContext,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        // Liveness first: a provider that missed its check is not paid for the blocks after.
        liveness::end_block(state, block.height, events)?;
        auto_accept::end_block(state, block.height, events)?;
        state::end_block(state, block.height, events)?;
        lines::end_block(state, block.height, events)?;
        batch::end_block(state, block.height, events)?;
        jobs::end_block(state, block.height, events)
    }
}
