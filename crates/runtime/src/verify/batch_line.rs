//! `DisputeBatchLine`: a challenge of one answered line of a batch inference job, judged by the
//! chain's validators.
//!
//! Stateless: the exchange's sizes, deposit, hashes and signature (as for `ChallengeReceipt`)
//! and the proofs' lengths. Stateful: the batch is committed and inside its dispute window, the
//! receipt is signed by the batch's provider, the request is the line's under the input root and
//! the receipt its result under the results root, and the challenger is not the provider. The
//! electorate is the validator set deciding the next block, weighted by power; an upheld
//! challenge also refutes the batch (`market::refute_batch`, called when it resolves). A line
//! whose proofs show the provider's count false (the root counts it other than its receipt, or
//! counts another total than committed) refutes the batch at once, with no vote and no deposit
//! (`market::refute_miscounted`).

use hibana_types::records::market::{BatchJob, BatchStatus, LineCount, counts_as_answered};
use hibana_types::records::verify::{CHAIN_JUDGED, Elector};
use hibana_types::{DisputeBatchLine, Event, Hash};

use super::messages::{Exchange, Opening, check_exchange, open_challenge, opening};
use super::state::challenge_of_receipt;
use crate::{
    ExecError, MessageHandler, StateRead, StateWrite, TxContext, TxError, invalid, market, staking,
};

/// What a dispute does: open a challenge for the validators, or (its proofs showing the
/// provider's count false) refute the batch at once.
enum Dispute {
    Open(Opening),
    Miscounted(BatchJob, String),
}

fn rules<S: StateRead + ?Sized>(
    m: &DisputeBatchLine,
    receipt_id: &Hash,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Dispute, ExecError> {
    let b = market::existing_batch(state, m.batch)?;
    let Some(results_root) = b.results_root else {
        return Err(invalid(format!(
            "batch {}'s results are not committed yet: there is no answer to challenge",
            b.id
        )));
    };
    match b.status {
        BatchStatus::Done => {}
        BatchStatus::Refuted => return Err(invalid(format!("batch {} is refuted already", b.id))),
        BatchStatus::Running | BatchStatus::Settled | BatchStatus::Expired => {
            return Err(invalid(format!(
                "batch {} is no longer open to challenges",
                b.id
            )));
        }
    }
    let height = ctx.block.height;
    if height > b.dispute_until() {
        return Err(invalid(format!(
            "batch {}'s lines could be challenged until height {}; this is {height}",
            b.id,
            b.dispute_until()
        )));
    }
    if m.line >= b.lines {
        return Err(invalid(format!(
            "batch {} has lines 0 to {}; line {} is not among them",
            b.id,
            b.lines - 1,
            m.line
        )));
    }
    let signer = m.receipt.body.provider.address();
    if signer != b.provider {
        return Err(invalid(format!(
            "the receipt is signed by {signer}, but batch {} is answered by {}",
            b.id, b.provider
        )));
    }
    if ctx.sender == b.provider {
        return Err(invalid("a provider cannot challenge its own answer"));
    }
    let proof = market::check_line_proofs(
        &b,
        &results_root,
        m.line,
        (
            &m.receipt.body.request_hash,
            receipt_id,
            counts_as_answered(Some(&m.receipt)),
        ),
        (&m.input_proof, &m.result_proof),
    )?;
    match proof {
        LineCount::Miscounted(why) => return Ok(Dispute::Miscounted(b, why)),
        LineCount::Holds => {}
    }
    if let Some(earlier) = challenge_of_receipt(state, receipt_id)? {
        return Err(invalid(format!(
            "this line was challenged already (challenge {earlier}): a receipt is challenged once"
        )));
    }
    let provider = market::provider(state, &b.provider)?.ok_or_else(|| {
        invalid(format!(
            "{} left the market: it has no bond to answer for its answers",
            b.provider
        ))
    })?;
    let electors: Vec<Elector> = staking::deciding_validator_set(state)?
        .into_iter()
        .map(|v| Elector {
            account: v.address,
            stake: v.power,
        })
        .collect();
    opening(
        state,
        ctx,
        provider,
        electors,
        m.deposit,
        "the chain has no validator with power to judge the challenge".into(),
    )
    .map(Dispute::Open)
}

impl MessageHandler for DisputeBatchLine {
    /// The receipt's id, once its signature and hashes checked out.
    type Verified = Hash;

    fn check_stateless(&self) -> Result<Hash, TxError> {
        market::check_proof_lengths(&self.input_proof, &self.result_proof)?;
        check_exchange(&self.receipt, &self.request, &self.response, self.deposit)
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        id: &Hash,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        rules(self, id, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        receipt_id: &Hash,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let opening = match rules(self, receipt_id, state, ctx)? {
            Dispute::Open(opening) => opening,
            // No vote needed, no deposit taken: the challenger takes the prover's share of the slash.
            Dispute::Miscounted(b, why) => {
                return market::refute_miscounted(
                    state,
                    b,
                    self.line,
                    ctx,
                    events,
                    (why, &ctx.sender),
                );
            }
        };
        let exchange = Exchange {
            subnet: CHAIN_JUDGED,
            receipt_id: *receipt_id,
            receipt: &self.receipt,
            request: &self.request,
            response: &self.response,
            deposit: self.deposit,
        };
        let id = open_challenge(state, ctx, &exchange, opening, events)?;
        market::link_challenge(state, id, self.batch, self.line);
        events.push(Event::new(
            "market.batch_disputed",
            [
                ("batch", self.batch.to_string()),
                ("line", self.line.to_string()),
                ("challenge", id.to_string()),
                ("challenger", ctx.sender.to_string()),
            ],
        ));
        Ok(())
    }
}
