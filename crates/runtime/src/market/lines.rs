//! Line requests: a provider that will not serve a line of its committed batch to a
//! spot-checker can be made to post it on chain, or lose the batch and part of its bond.
//!
//! `RequestBatchLine` (anyone but the provider, while the batch is committed and at least
//! `LINE_ANSWER_BLOCKS + LINE_RECHECK_BLOCKS` before its dispute window ends) locks
//! [`LINE_REQUEST_DEPOSIT`] and gives the provider `LINE_ANSWER_BLOCKS` to answer.
//! `PostBatchLine` (anyone holding the line) carries its request, response, receipt and proofs;
//! the chain checks them against the committed roots and keeps the line in state, where anyone
//! can read it and challenge it with `DisputeBatchLine` for at least `LINE_RECHECK_BLOCKS`; the
//! deposit pays the poster. A request still open when its block ends is a withheld line:
//!
//! 1. the batch is refuted at that line (its lease closes unpaid, its escrow goes back to the
//!    client, as an upheld challenge does);
//! 2. the provider loses [`DISPUTE_SLASH`] of its bond (or what is left of it);
//! 3. the slash pays the client back what the lease paid the provider, up to the slash, and the
//!    rest goes to the requester;
//! 4. the requester gets its deposit back.
//!
//! A request whose batch was refuted meanwhile ends with its deposit returned. Posted lines are
//! dropped from state when their batch settles or is refuted.

use hibana_types::records::market::{
    BATCH_INPUT_LEAF_DOMAIN, BATCH_RESULT_LEAF_DOMAIN, BatchJob, BatchStatus, DISPUTE_SLASH,
    LINE_ANSWER_BLOCKS, LINE_REQUEST_DEPOSIT, LineRequest, MAX_BATCH_PROOF_STEPS, PostedLine,
    batch_leaf, batch_requested_lines_key, line_request_due_key, line_request_key,
    provider_owed_lines_key,
};
use hibana_types::records::verify::{MAX_CHALLENGE_REQUEST_BYTES, MAX_CHALLENGE_RESPONSE_BYTES};
use hibana_types::{
    Address, Amount, Event, Hash, PostBatchLine, RequestBatchLine, verify_merkle_proof,
};

use super::batch::{existing_batch, refute_line};
use super::state::{edit_set, lock, provider, release, take_bond, take_set};
use crate::{
    ExecError, MessageHandler, StateError, StateRead, StateWrite, TxContext, TxError, bank,
    get_typed, invalid, put_typed,
};

/// The request of one batch line, with the line once posted.
pub fn line_request<S: StateRead + ?Sized>(
    state: &S,
    batch: u64,
    line: u32,
) -> Result<Option<LineRequest>, StateError> {
    get_typed(state, &line_request_key(batch, line))
}

/// A batch's line requests, by line (posted ones carry the line).
pub fn line_requests<S: StateRead + ?Sized>(
    state: &S,
    batch: u64,
) -> Result<Vec<LineRequest>, StateError> {
    let lines: std::collections::BTreeSet<u32> =
        get_typed(state, &batch_requested_lines_key(batch))?.unwrap_or_default();
    let mut out = Vec::with_capacity(lines.len());
    for line in lines.into_iter().take(super::query::MAX_LIST) {
        if let Some(r) = line_request(state, batch, line)? {
            out.push(r);
        }
    }
    Ok(out)
}

/// The line requests a provider has yet to answer, oldest deadline first.
pub fn owed_lines<S: StateRead + ?Sized>(
    state: &S,
    provider: &Address,
) -> Result<Vec<LineRequest>, StateError> {
    let owed: std::collections::BTreeSet<(u64, u32)> =
        get_typed(state, &provider_owed_lines_key(provider))?.unwrap_or_default();
    let mut out = Vec::with_capacity(owed.len());
    for (batch, line) in owed.into_iter().take(super::query::MAX_LIST) {
        if let Some(r) = line_request(state, batch, line)? {
            out.push(r);
        }
    }
    out.sort_by_key(|r| r.due);
    Ok(out)
}

fn request_rules<S: StateRead + ?Sized>(
    m: &RequestBatchLine,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<BatchJob, ExecError> {
    let b = existing_batch(state, m.batch)?;
    if b.status != BatchStatus::Done {
        return Err(invalid(format!(
            "batch {} is {}: only a committed batch that can still be disputed has lines to \
             request",
            b.id,
            status_name(b.status)
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
    if ctx.sender == b.provider {
        return Err(invalid("a provider cannot request its own batch's lines"));
    }
    let height = ctx.block.height;
    if height > b.request_until() {
        return Err(invalid(format!(
            "batch {}'s lines could be requested until height {} (a posted line must stay \
             open to challenge); this is {height}",
            b.id,
            b.request_until()
        )));
    }
    if let Some(r) = line_request(state, b.id, m.line)? {
        return Err(invalid(format!(
            "line {} of batch {} was requested already at height {} by {}",
            m.line, b.id, r.requested_at, r.requester
        )));
    }
    bank::require_balance(state, &ctx.sender, LINE_REQUEST_DEPOSIT)?;
    Ok(b)
}

fn status_name(s: BatchStatus) -> &'static str {
    match s {
        BatchStatus::Running => "still running (its results are not committed)",
        BatchStatus::Done => "committed",
        BatchStatus::Refuted => "refuted",
        BatchStatus::Settled => "settled",
        BatchStatus::Expired => "expired",
    }
}

impl MessageHandler for RequestBatchLine {
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
        request_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let b = request_rules(self, state, ctx)?;
        lock(state, &ctx.sender, LINE_REQUEST_DEPOSIT)?;
        let due = ctx.block.height + LINE_ANSWER_BLOCKS;
        let r = LineRequest {
            batch: b.id,
            line: self.line,
            requester: ctx.sender,
            provider: b.provider,
            deposit: LINE_REQUEST_DEPOSIT,
            requested_at: ctx.block.height,
            due,
            posted: None,
        };
        put_typed(state, line_request_key(b.id, self.line), &r);
        edit_set(state, batch_requested_lines_key(b.id), self.line, true)?;
        edit_set(state, line_request_due_key(due), (b.id, self.line), true)?;
        edit_set(
            state,
            provider_owed_lines_key(&b.provider),
            (b.id, self.line),
            true,
        )?;
        events.push(Event::new(
            "market.batch_line_requested",
            [
                ("batch", b.id.to_string()),
                ("line", self.line.to_string()),
                ("requester", ctx.sender.to_string()),
                ("provider", b.provider.to_string()),
                ("due", due.to_string()),
            ],
        ));
        Ok(())
    }
}

/// The outcome hash a posted line's result leaf commits to: the receipt's id once the receipt
/// checks out over the request and response, else (a refused line) the response's blake3.
fn outcome(m: &PostBatchLine) -> Result<Hash, TxError> {
    if m.request.len() > MAX_CHALLENGE_REQUEST_BYTES {
        return Err(TxError::Invalid(format!(
            "the request is {} bytes, a posted line carries at most {MAX_CHALLENGE_REQUEST_BYTES}",
            m.request.len()
        )));
    }
    if m.response.len() > MAX_CHALLENGE_RESPONSE_BYTES {
        return Err(TxError::Invalid(format!(
            "the response is {} bytes, a posted line carries at most \
             {MAX_CHALLENGE_RESPONSE_BYTES}",
            m.response.len()
        )));
    }
    for (what, proof) in [("input", &m.input_proof), ("result", &m.result_proof)] {
        if proof.len() > MAX_BATCH_PROOF_STEPS {
            return Err(TxError::Invalid(format!(
                "the {what} proof has {} steps, at most {MAX_BATCH_PROOF_STEPS} are accepted",
                proof.len()
            )));
        }
    }
    match &m.receipt {
        Some(r) => crate::verify::check_receipted(r, &m.request, &m.response),
        None => Ok(Hash::digest(&m.response)),
    }
}

fn post_rules<S: StateRead + ?Sized>(
    m: &PostBatchLine,
    outcome: &Hash,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<LineRequest, ExecError> {
    let r = line_request(state, m.batch, m.line)?.ok_or_else(|| {
        invalid(format!(
            "line {} of batch {} was not requested (or its batch has settled)",
            m.line, m.batch
        ))
    })?;
    if r.posted.is_some() {
        return Err(invalid(format!(
            "line {} of batch {} is posted already",
            m.line, m.batch
        )));
    }
    let b = existing_batch(state, m.batch)?;
    let root = match (b.status, b.results_root) {
        (BatchStatus::Done, Some(root)) => root,
        _ => {
            return Err(invalid(format!(
                "batch {} is {}: its lines are no longer asked for",
                b.id,
                status_name(b.status)
            )));
        }
    };
    if ctx.block.height > r.due {
        return Err(invalid(format!(
            "line {} of batch {} had to be posted by height {}",
            m.line, m.batch, r.due
        )));
    }
    let input = batch_leaf(BATCH_INPUT_LEAF_DOMAIN, m.line, &Hash::digest(&m.request));
    if !verify_merkle_proof(&input, &m.input_proof, &b.input_root) {
        return Err(invalid(format!(
            "the request is not line {} of batch {}'s input (its proof does not reach the input \
             root {})",
            m.line, b.id, b.input_root
        )));
    }
    let result = batch_leaf(BATCH_RESULT_LEAF_DOMAIN, m.line, outcome);
    if !verify_merkle_proof(&result, &m.result_proof, &root) {
        return Err(invalid(format!(
            "the result is not line {}'s in batch {} (its proof does not reach the results root \
             {root})",
            m.line, b.id
        )));
    }
    if let Some(receipt) = &m.receipt {
        let signer = receipt.body.provider.address();
        if signer != b.provider {
            return Err(invalid(format!(
                "the receipt is signed by {signer}, but batch {} is answered by {}",
                b.id, b.provider
            )));
        }
    }
    Ok(r)
}

impl MessageHandler for PostBatchLine {
    /// The outcome hash the line's result leaf commits to.
    type Verified = Hash;

    fn check_stateless(&self) -> Result<Hash, TxError> {
        outcome(self)
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        outcome: &Hash,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        post_rules(self, outcome, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        outcome: &Hash,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let mut r = post_rules(self, outcome, state, ctx)?;
        // The deposit pays for posting.
        release(state, &ctx.sender, r.deposit)?;
        edit_set(state, line_request_due_key(r.due), (r.batch, r.line), false)?;
        edit_set(
            state,
            provider_owed_lines_key(&r.provider),
            (r.batch, r.line),
            false,
        )?;
        r.posted = Some(PostedLine {
            request: self.request.clone(),
            response: self.response.clone(),
            receipt: self.receipt.clone(),
            input_proof: self.input_proof.clone(),
            result_proof: self.result_proof.clone(),
            by: ctx.sender,
            posted_at: ctx.block.height,
        });
        put_typed(state, line_request_key(r.batch, r.line), &r);
        events.push(Event::new(
            "market.batch_line_posted",
            [
                ("batch", r.batch.to_string()),
                ("line", r.line.to_string()),
                ("by", ctx.sender.to_string()),
                ("signed", self.receipt.is_some().to_string()),
                ("paid", r.deposit.0.to_string()),
            ],
        ));
        Ok(())
    }
}

fn forget<S: StateWrite + ?Sized>(state: &mut S, r: &LineRequest) -> Result<(), ExecError> {
    state.delete(line_request_key(r.batch, r.line));
    edit_set(state, batch_requested_lines_key(r.batch), r.line, false)?;
    Ok(())
}

/// Drops the posted lines of a batch that settled or was refuted (open requests stay until
/// their deadline, which returns their deposit).
pub(crate) fn drop_posted<S: StateWrite + ?Sized>(
    state: &mut S,
    batch: u64,
) -> Result<(), ExecError> {
    let lines: std::collections::BTreeSet<u32> =
        get_typed(state, &batch_requested_lines_key(batch))?.unwrap_or_default();
    for line in lines {
        if let Some(r) = line_request(state, batch, line)?
            && r.posted.is_some()
        {
            forget(state, &r)?;
        }
    }
    Ok(())
}

/// Ends the line requests due at `height`: one not posted refutes its batch and slashes its
/// provider (steps 1–4 of the module's rule); one whose batch is no longer disputable returns
/// its deposit.
pub(crate) fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    for (batch, line) in take_set::<(u64, u32), _>(state, line_request_due_key(height))? {
        let Some(r) = line_request(state, batch, line)? else {
            continue;
        };
        if r.posted.is_some() {
            continue;
        }
        edit_set(
            state,
            provider_owed_lines_key(&r.provider),
            (batch, line),
            false,
        )?;
        forget(state, &r)?;
        let b = existing_batch(state, batch)?;
        if b.status != BatchStatus::Done {
            release(state, &r.requester, r.deposit)?;
            continue;
        }
        // 1. The batch is refuted at the withheld line.
        let client = b.client;
        let paid = refute_line(
            state,
            b,
            line,
            height,
            events,
            ("withheld_by", r.provider.to_string()),
        )?;
        // 2. The provider is slashed (into the client's account, then shared out).
        let slashed = if provider(state, &r.provider)?.is_some() {
            take_bond(state, &r.provider, DISPUTE_SLASH, &client)?
        } else {
            Amount::ZERO
        };
        // 3. The client takes back what the lease paid, the requester the rest.
        let to_client = slashed.min(paid);
        let reward = Amount(slashed.0 - to_client.0);
        if reward.0 > 0 {
            bank::move_balance(state, &client, &r.requester, reward)?;
        }
        // 4. The requester's deposit goes back.
        release(state, &r.requester, r.deposit)?;
        events.push(Event::new(
            "market.batch_line_withheld",
            [
                ("batch", batch.to_string()),
                ("line", line.to_string()),
                ("provider", r.provider.to_string()),
                ("requester", r.requester.to_string()),
                ("slashed", slashed.0.to_string()),
                ("refund", to_client.0.to_string()),
                ("reward", reward.0.to_string()),
            ],
        ));
    }
    Ok(())
}
