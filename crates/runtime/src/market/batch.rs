//! Batch inference jobs on leases: `SubmitBatch` (the client names a JSONL file of OpenAI batch
//! lines by the Merkle root over their request hashes) and `CommitBatch` (the provider commits
//! the Merkle sum tree root over its results, a receipt's id per line counting 1 if answered,
//! and the answered lines it counts: any line's proof shows the root's count, and a count the
//! root does not hold refutes the batch at once, [`refute_miscounted`]).
//!
//! The chain cannot re-run a language model, so a wrong line is judged the way a wrong receipt
//! is: `DisputeBatchLine` (in `verify`) carries the line's receipt, request and response with
//! their proofs under both roots, and opens a challenge that the chain's validators re-check and
//! vote on. When one is upheld, [`refute`] marks the batch refuted and closes its lease without
//! pay for the blocks since its last settlement. Lines can be challenged for
//! `DISPUTE_WINDOW_BLOCKS` after the commit.

use hibana_types::records::market::{
    BATCH_INPUT_LEAF_DOMAIN, BATCH_RESULT_LEAF_DOMAIN, BatchJob, BatchStatus, LeaseStatus,
    LineCount, MAX_BATCH_BYTES, MAX_BATCH_LINES, MAX_BATCH_PROOF_STEPS, NEXT_BATCH_KEY, WORK_BATCH,
    batch_challenge_key, batch_due_key, batch_key, batch_leaf, line_count, provider_open_work_key,
};
use hibana_types::{
    Address, Amount, CommitBatch, CountStep, Event, Hash, MerkleStep, SubmitBatch,
    verify_merkle_proof,
};

use super::jobs::{clients_active_lease, close_unpaid};
use super::state::{Slash, edit_set, lease, lock, next_id, release, slash_proven, take_set};
use crate::{
    ExecError, MessageHandler, StateError, StateRead, StateWrite, TxContext, TxError, bank,
    get_typed, invalid, put_typed,
};

/// Reads a batch job.
pub fn batch<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Option<BatchJob>, StateError> {
    get_typed(state, &batch_key(id))
}

/// The batch line a challenge disputes, if it disputes one.
pub fn challenged_line<S: StateRead + ?Sized>(
    state: &S,
    challenge: u64,
) -> Result<Option<(u64, u32)>, StateError> {
    get_typed(state, &batch_challenge_key(challenge))
}

/// Records that `challenge` disputes line `line` of batch `batch`.
pub(crate) fn link_challenge<S: StateWrite + ?Sized>(
    state: &mut S,
    challenge: u64,
    batch: u64,
    line: u32,
) {
    put_typed(state, batch_challenge_key(challenge), &(batch, line));
}

pub(crate) fn put_batch<S: StateWrite + ?Sized>(state: &mut S, b: &BatchJob) {
    put_typed(state, batch_key(b.id), b);
}

/// Reads a batch job that must exist.
pub(crate) fn existing_batch<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
) -> Result<BatchJob, ExecError> {
    batch(state, id)?.ok_or_else(|| invalid(format!("batch {id} does not exist")))
}

/// After the validators upheld `challenge`: if it disputed a batch line, the batch is refuted
/// and its lease closes unpaid since its last settlement.
pub(crate) fn refute<S: StateWrite + ?Sized>(
    state: &mut S,
    challenge: u64,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let Some((id, line)) = challenged_line(state, challenge)? else {
        return Ok(());
    };
    let b = existing_batch(state, id)?;
    if b.status != BatchStatus::Done {
        return Ok(());
    }
    refute_line(
        state,
        b,
        line,
        height,
        events,
        ("challenge", challenge.to_string()),
    )
    .map(|_| ())
}

/// Refutes committed batch `b` at `line` (`cause` names why, in the event): its lease closes
/// unpaid since its last settlement, its escrow goes back to the client, its provider's bond
/// is free of it, and its line requests end (open ones refunded). Returns what the lease paid the provider.
pub(crate) fn refute_line<S: StateWrite + ?Sized>(
    state: &mut S,
    mut b: BatchJob,
    line: u32,
    height: u64,
    events: &mut Vec<Event>,
    cause: (&'static str, String),
) -> Result<Amount, ExecError> {
    let paid = close_unpaid(state, b.lease, height, events)?;
    // Its lines are not paid: the escrow goes back to the client (once: a batch is refuted or
    // settled, not both).
    release(state, &b.client, b.escrow())?;
    edit_set(
        state,
        provider_open_work_key(&b.provider),
        (WORK_BATCH, b.id),
        false,
    )?;
    super::lines::end_requests(state, b.id)?;
    b.status = BatchStatus::Refuted;
    b.refuted_line = Some(line);
    put_batch(state, &b);
    events.push(Event::new(
        "market.batch_refuted",
        [
            ("batch", b.id.to_string()),
            ("line", line.to_string()),
            (cause.0, cause.1),
            ("provider", b.provider.to_string()),
            ("lease", b.lease.to_string()),
        ],
    ));
    Ok(paid)
}

/// Checks a line's proofs: `request_hash` is line `line`'s under batch `b`'s input root and
/// `outcome` (a receipt's id, or an unsigned refusal's blake3) its result under the committed
/// `results_root`, counted once or not at all; whether that count and the root's total agree
/// with `answered` (the line's receipt) and the batch's committed count.
pub(crate) fn check_line_proofs(
    b: &BatchJob,
    results_root: &Hash,
    line: u32,
    (request_hash, outcome, answered): (&Hash, &Hash, bool),
    (input_proof, result_proof): (&[MerkleStep], &[CountStep]),
) -> Result<LineCount, ExecError> {
    let input = batch_leaf(BATCH_INPUT_LEAF_DOMAIN, line, request_hash);
    if !verify_merkle_proof(&input, input_proof, &b.input_root) {
        return Err(invalid(format!(
            "the request is not line {line} of batch {}'s input (its proof does not reach the \
             input root {})",
            b.id, b.input_root
        )));
    }
    let result = batch_leaf(BATCH_RESULT_LEAF_DOMAIN, line, outcome);
    line_count(b, results_root, (line, &result, answered), result_proof).ok_or_else(|| {
        invalid(format!(
            "the result is not line {line}'s in batch {} (its proof does not reach the results \
             root {results_root})",
            b.id
        ))
    })
}

/// Refutes committed batch `b` at `line` for a fault proven on chain (`cause`, for the event)
/// and slashes its provider ([`slash_proven`]: the client gets back what the lease paid, up to
/// half the slash, and `prover` half the rest; the remainder is burned).
pub(crate) fn refute_and_slash<S: StateWrite + ?Sized>(
    state: &mut S,
    b: BatchJob,
    line: u32,
    height: u64,
    events: &mut Vec<Event>,
    cause: (&'static str, String),
    prover: &Address,
) -> Result<Slash, ExecError> {
    let (client, provider_address) = (b.client, b.provider);
    let paid = refute_line(state, b, line, height, events, cause)?;
    slash_proven(state, &provider_address, (&client, paid), prover)
}

/// Refutes committed batch `b` at `line`, whose proofs showed its provider's count false
/// (`why`), and slashes its provider, `prover` taking the prover's share.
pub(crate) fn refute_miscounted<S: StateWrite + ?Sized>(
    state: &mut S,
    b: BatchJob,
    line: u32,
    ctx: &TxContext<'_>,
    events: &mut Vec<Event>,
    (why, prover): (String, &Address),
) -> Result<(), ExecError> {
    let (id, provider_address) = (b.id, b.provider);
    let slash = refute_and_slash(
        state,
        b,
        line,
        ctx.block.height,
        events,
        ("miscounted_by", provider_address.to_string()),
        prover,
    )?;
    events.push(Event::new(
        "market.batch_miscounted",
        [
            ("batch", id.to_string()),
            ("line", line.to_string()),
            ("provider", provider_address.to_string()),
            ("prover", prover.to_string()),
            ("why", why),
        ]
        .into_iter()
        .chain(slash.attributes()),
    ));
    Ok(())
}

/// Refuses proofs longer than a batch's tree is deep (before any state is read).
pub(crate) fn check_proof_lengths(
    input_proof: &[MerkleStep],
    result_proof: &[CountStep],
) -> Result<(), TxError> {
    for (what, steps) in [("input", input_proof.len()), ("result", result_proof.len())] {
        if steps > MAX_BATCH_PROOF_STEPS {
            return Err(TxError::Invalid(format!(
                "the {what} proof has {steps} steps, at most {MAX_BATCH_PROOF_STEPS} are accepted"
            )));
        }
    }
    Ok(())
}

/// The lease, and the escrow the batch holds from the client.
fn submit_rules<S: StateRead + ?Sized>(
    m: &SubmitBatch,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(hibana_types::records::market::Lease, Amount), ExecError> {
    let l = clients_active_lease(state, m.lease, ctx, "batches")?;
    let escrow = u128::from(m.lines)
        .checked_mul(m.price_per_line.0)
        .map(Amount)
        .ok_or_else(|| invalid("lines × price per line overflows"))?;
    if escrow.0 > 0 {
        bank::require_balance(state, &ctx.sender, escrow)?;
    }
    Ok((l, escrow))
}

impl MessageHandler for SubmitBatch {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.lines == 0 || self.lines > MAX_BATCH_LINES {
            return Err(TxError::Invalid(format!(
                "a batch has 1 to {MAX_BATCH_LINES} lines, not {}",
                self.lines
            )));
        }
        if self.input_bytes == 0 || self.input_bytes > MAX_BATCH_BYTES {
            return Err(TxError::Invalid(format!(
                "a batch file has 1 to {MAX_BATCH_BYTES} bytes, not {}",
                self.input_bytes
            )));
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
        let (l, escrow) = submit_rules(self, state, ctx)?;
        let id = next_id(state, NEXT_BATCH_KEY)?;
        if escrow.0 > 0 {
            lock(state, &ctx.sender, escrow)?;
            // Refunded if no results are committed by the end of the lease's term.
            let expires = l.ends_at.max(ctx.block.height + 1);
            edit_set(state, batch_due_key(expires), id, true)?;
        }
        let b = BatchJob {
            id,
            lease: l.id,
            client: l.owner,
            provider: l.provider,
            input_root: self.input_root,
            lines: self.lines,
            input_bytes: self.input_bytes,
            submitted_at: ctx.block.height,
            results_root: None,
            answered: 0,
            committed_at: 0,
            status: BatchStatus::Running,
            refuted_line: None,
            price_per_line: self.price_per_line,
            lines_until: 0,
            models: Vec::new(),
        };
        put_batch(state, &b);
        events.push(Event::new(
            "market.batch_submitted",
            [
                ("batch", id.to_string()),
                ("lease", l.id.to_string()),
                ("provider", l.provider.to_string()),
                ("input", self.input_root.to_string()),
                ("lines", self.lines.to_string()),
                ("escrow", escrow.0.to_string()),
            ],
        ));
        Ok(())
    }
}

fn commit_rules<S: StateRead + ?Sized>(
    m: &CommitBatch,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<BatchJob, ExecError> {
    let b = existing_batch(state, m.batch)?;
    if b.provider != ctx.sender {
        return Err(invalid(format!(
            "batch {} is answered by {}, not by {}",
            b.id, b.provider, ctx.sender
        )));
    }
    match b.status {
        BatchStatus::Running => {}
        BatchStatus::Expired => {
            return Err(invalid(format!(
                "batch {} expired with its lease's term: its escrow went back to the client",
                b.id
            )));
        }
        _ => {
            return Err(invalid(format!(
                "batch {}'s results are committed already",
                b.id
            )));
        }
    }
    if m.answered > b.lines {
        return Err(invalid(format!(
            "batch {} has {} lines; {} cannot be answered",
            b.id, b.lines, m.answered
        )));
    }
    let l = lease(state, b.lease)?
        .ok_or_else(|| invalid(format!("lease {} does not exist", b.lease)))?;
    // A priced batch pays from its own escrow, so its provider may commit until the lease's
    // term ends even if the client closed the lease after taking the results; an unpriced one
    // is paid by the lease alone and needs it active.
    let open = if b.escrow().0 > 0 {
        ctx.block.height <= l.ends_at
    } else {
        l.status == LeaseStatus::Active
    };
    if !open {
        return Err(invalid(format!(
            "lease {} closed before batch {} was committed",
            b.lease, b.id
        )));
    }
    Ok(b)
}

impl MessageHandler for CommitBatch {
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
        let mut b = commit_rules(self, state, ctx)?;
        // A refusal is judged against the models declared now, whatever the provider declares
        // later.
        b.models = super::state::provider(state, &b.provider)?
            .map(|p| p.attributes.models)
            .unwrap_or_default();
        b.results_root = Some(self.results_root);
        b.answered = self.answered;
        b.committed_at = ctx.block.height;
        b.status = BatchStatus::Done;
        put_batch(state, &b);
        // Paid (a priced batch) and released from the provider's open work at `pay_at`.
        edit_set(state, batch_due_key(b.pay_at()), b.id, true)?;
        // Its bond answers for the lines until they can no longer be challenged.
        edit_set(
            state,
            provider_open_work_key(&b.provider),
            (WORK_BATCH, b.id),
            true,
        )?;
        events.push(Event::new(
            "market.batch_done",
            [
                ("batch", b.id.to_string()),
                ("lease", b.lease.to_string()),
                ("results", self.results_root.to_string()),
                ("answered", self.answered.to_string()),
                ("lines", b.lines.to_string()),
                ("paid_at", b.pay_at().to_string()),
            ],
        ));
        Ok(())
    }
}

/// Pays or refunds the escrow of the batches due at `height`: a committed batch whose lines can
/// no longer be challenged pays its answered lines to the provider and refunds the refused ones;
/// one never committed by the end of its lease's term is refunded whole.
pub(crate) fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    for id in take_set::<u64, _>(state, batch_due_key(height))? {
        let Some(mut b) = batch(state, id)? else {
            continue;
        };
        match b.status {
            BatchStatus::Running => {
                release(state, &b.client, b.escrow())?;
                b.status = BatchStatus::Expired;
                put_batch(state, &b);
                events.push(Event::new(
                    "market.batch_expired",
                    [
                        ("batch", id.to_string()),
                        ("refund", b.escrow().0.to_string()),
                    ],
                ));
            }
            BatchStatus::Done if height >= b.pay_at() => {
                let price = b.price_per_line.0;
                let paid = Amount(u128::from(b.answered) * price);
                let refund = Amount(u128::from(b.lines - b.answered.min(b.lines)) * price);
                release(state, &b.provider, paid)?;
                release(state, &b.client, refund)?;
                edit_set(
                    state,
                    provider_open_work_key(&b.provider),
                    (WORK_BATCH, b.id),
                    false,
                )?;
                super::lines::end_requests(state, b.id)?;
                b.status = BatchStatus::Settled;
                put_batch(state, &b);
                events.push(Event::new(
                    "market.batch_settled",
                    [
                        ("batch", id.to_string()),
                        ("provider", b.provider.to_string()),
                        ("paid", paid.0.to_string()),
                        ("refund", refund.0.to_string()),
                    ],
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
