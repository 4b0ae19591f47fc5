//! Line requests: a provider that will not serve a line of its committed batch to a
//! spot-checker can be made to post it on chain, or lose the batch and part of its bond.
//!
//! `RequestBatchLine` (anyone but the provider, while the batch is committed and within its
//! first dispute window) locks [`LINE_REQUEST_DEPOSIT`] and gives the provider a deadline
//! [`LINE_ANSWER_BLOCKS`] away, plus a block for every line it owes already, so that a flood of
//! requests asks of a provider a third of what one transaction of posts a block carries
//! ([`LINES_PER_POST_TX`]; a line posted, or whose request ended, no longer counts). The
//! batch's dispute window stretches to the deadline plus [`LINE_RECHECK_BLOCKS`] (and its pay
//! waits as long). `PostBatchLine` (anyone holding the
//! line) carries its request, response, receipt (or signed refusal) and proofs; the chain checks
//! them against the committed roots and keeps the line in state, where anyone can read it and
//! challenge it with `DisputeBatchLine`. The poster gets [`LINE_POST_FEE`] of the deposit, the
//! requester the rest. A request still open when its deadline's block ends is a withheld line:
//!
//! 1. the batch is refuted at that line (its lease closes unpaid, its escrow goes back to the
//!    client, as an upheld challenge does);
//! 2. the provider loses [`DISPUTE_SLASH`] of its bond (or what is left of it);
//! 3. the slash pays the client back what the lease paid the provider, up to half the slash,
//!    the requester half the rest, and the remainder is burned (`state::slash_proven`);
//! 4. the requester gets its deposit back.
//!
//! A post whose proofs show the provider's count false (the results root counts the line other
//! than its receipt, or counts another number of answered lines than committed) refutes the
//! batch and slashes the provider as a withheld line does, the requester taking the prover's
//! share (`batch::refute_miscounted`).
//!
//! When a batch settles or is refuted, its requests end: posted lines leave state, and open
//! ones (only a refuted batch has any) return their deposits.

use hibana_types::records::market::{
    BatchJob, BatchStatus, LINE_ANSWER_BLOCKS, LINE_POST_FEE, LINE_RECHECK_BLOCKS,
    LINE_REQUEST_DEPOSIT, LineCount, LineRequest, PostedLine, batch_due_key, batch_request_at_key,
    batch_request_count_key, counts_as_answered, line_due_providers_key, line_request_key,
    provider_lines_due_key, provider_owed_key,
};
use hibana_types::records::verify::{MAX_CHALLENGE_REQUEST_BYTES, MAX_CHALLENGE_RESPONSE_BYTES};
use hibana_types::{Address, Amount, Event, Hash, PostBatchLine, RequestBatchLine};

use super::batch::{existing_batch, put_batch, refute_and_slash, refute_miscounted};
use super::state::{edit_set, lock, release, take_set};
use crate::{
    ExecError, MessageHandler, StateError, StateRead, StateWrite, TxContext, TxError, bank,
    get_typed, invalid, put_typed,
};

/// Most heights [`owed_lines`] looks ahead through.
const OWED_SCAN_HEIGHTS: u64 = 10_000;

/// The request of one batch line, with the line once posted.
pub fn line_request<S: StateRead + ?Sized>(
    state: &S,
    batch: u64,
    line: u32,
) -> Result<Option<LineRequest>, StateError> {
    get_typed(state, &line_request_key(batch, line))
}

fn request_count<S: StateRead + ?Sized>(state: &S, batch: u64) -> Result<u32, StateError> {
    Ok(get_typed(state, &batch_request_count_key(batch))?.unwrap_or(0))
}

/// A batch's line requests in the order they were made (at most `MAX_LIST`), posted lines
/// without their request and response bytes (read one whole with [`line_request`]).
pub fn line_requests<S: StateRead + ?Sized>(
    state: &S,
    batch: u64,
) -> Result<Vec<LineRequest>, StateError> {
    let n = request_count(state, batch)?;
    let mut out = Vec::new();
    for i in 0..n {
        if out.len() == super::query::MAX_LIST {
            break;
        }
        let Some(line) = get_typed::<u32, _>(state, &batch_request_at_key(batch, i))? else {
            continue;
        };
        if let Some(mut r) = line_request(state, batch, line)? {
            if let Some(p) = &mut r.posted {
                p.request.clear();
                p.response.clear();
            }
            out.push(r);
        }
    }
    Ok(out)
}

/// The line requests a provider has yet to answer, soonest deadline first, from height `from`
/// on (at most `MAX_LIST`).
pub fn owed_lines<S: StateRead + ?Sized>(
    state: &S,
    provider: &Address,
    from: u64,
) -> Result<Vec<LineRequest>, StateError> {
    let Some((_, last)) = get_typed::<(u32, u64), _>(state, &provider_owed_key(provider))? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for height in from..=last.min(from.saturating_add(OWED_SCAN_HEIGHTS)) {
        let due: Vec<(u64, u32)> =
            get_typed(state, &provider_lines_due_key(provider, height))?.unwrap_or_default();
        for (batch, line) in due {
            if out.len() == super::query::MAX_LIST {
                return Ok(out);
            }
            if let Some(r) = line_request(state, batch, line)?
                && r.posted.is_none()
            {
                out.push(r);
            }
        }
    }
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
            "batch {}'s lines could be requested until height {}; this is {height}",
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

/// The deadline of a new request of `provider`'s at `height`: [`LINE_ANSWER_BLOCKS`] away,
/// plus a block for every line the provider owes already; counts the new line as owed.
fn next_due<S: StateWrite + ?Sized>(
    state: &mut S,
    provider: &Address,
    height: u64,
) -> Result<u64, ExecError> {
    let (open, last): (u32, u64) =
        get_typed(state, &provider_owed_key(provider))?.unwrap_or((0, 0));
    let due = height
        .checked_add(LINE_ANSWER_BLOCKS)
        .and_then(|h| h.checked_add(u64::from(open)))
        .ok_or(TxError::Overflow("line deadline"))?;
    put_typed(
        state,
        provider_owed_key(provider),
        &(open.saturating_add(1), last.max(due)),
    );
    Ok(due)
}

/// A line of `provider`'s no longer owed (posted, or its request ended).
fn settle_owed<S: StateWrite + ?Sized>(state: &mut S, provider: &Address) -> Result<(), ExecError> {
    let key = provider_owed_key(provider);
    let (open, last): (u32, u64) = get_typed(state, &key)?.unwrap_or((0, 0));
    if open <= 1 {
        state.delete(key);
    } else {
        put_typed(state, key, &(open - 1, last));
    }
    Ok(())
}

/// Adds or removes `(batch, line)` among `provider`'s lines due at `due`.
fn edit_due<S: StateWrite + ?Sized>(
    state: &mut S,
    provider: &Address,
    due: u64,
    item: (u64, u32),
    add: bool,
) -> Result<(), ExecError> {
    let key = provider_lines_due_key(provider, due);
    let mut list: Vec<(u64, u32)> = get_typed(state, &key)?.unwrap_or_default();
    if add {
        list.push(item);
    } else {
        list.retain(|x| *x != item);
    }
    if list.is_empty() {
        state.delete(key);
    } else {
        put_typed(state, key, &list);
    }
    if add {
        edit_set(state, line_due_providers_key(due), *provider, true)?;
    }
    Ok(())
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
        let mut b = request_rules(self, state, ctx)?;
        lock(state, &ctx.sender, LINE_REQUEST_DEPOSIT)?;
        let due = next_due(state, &b.provider, ctx.block.height)?;
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
        let n = request_count(state, b.id)?;
        put_typed(state, batch_request_at_key(b.id, n), &self.line);
        put_typed(state, batch_request_count_key(b.id), &(n + 1));
        edit_due(state, &b.provider, due, (b.id, self.line), true)?;
        // The line stays open to challenge after its deadline, and the batch's pay waits.
        let until = due
            .checked_add(LINE_RECHECK_BLOCKS)
            .ok_or(TxError::Overflow("line deadline"))?;
        if until > b.dispute_until() {
            edit_set(state, batch_due_key(b.pay_at()), b.id, false)?;
            b.lines_until = until;
            edit_set(state, batch_due_key(b.pay_at()), b.id, true)?;
            put_batch(state, &b);
        }
        events.push(Event::new(
            "market.batch_line_requested",
            [
                ("batch", b.id.to_string()),
                ("line", self.line.to_string()),
                ("requester", ctx.sender.to_string()),
                ("provider", b.provider.to_string()),
                ("due", due.to_string()),
                ("dispute_until", b.dispute_until().to_string()),
            ],
        ));
        Ok(())
    }
}

/// The outcome hash a posted line's result leaf commits to: the receipt's id once the receipt
/// checks out over the request and response, else (a refusal without a signature) the
/// response's blake3.
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
    super::batch::check_proof_lengths(&m.input_proof, &m.result_proof)?;
    match &m.receipt {
        Some(r) => crate::verify::check_receipted(r, &m.request, &m.response),
        None => Ok(Hash::digest(&m.response)),
    }
}

/// The request a post answers and what its proofs show, or none when the line is posted
/// already (then the post does nothing: two posters racing, or a provider's transaction of
/// several lines, are not failed by it).
fn post_rules<S: StateRead + ?Sized>(
    m: &PostBatchLine,
    outcome: &Hash,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Option<(LineRequest, BatchJob, LineCount)>, ExecError> {
    let r = line_request(state, m.batch, m.line)?.ok_or_else(|| {
        invalid(format!(
            "line {} of batch {} was not requested (or its batch has settled)",
            m.line, m.batch
        ))
    })?;
    if r.posted.is_some() {
        return Ok(None);
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
    if let Some(receipt) = &m.receipt {
        let signer = receipt.body.provider.address();
        if signer != b.provider {
            return Err(invalid(format!(
                "the receipt is signed by {signer}, but batch {} is answered by {}",
                b.id, b.provider
            )));
        }
    }
    let proof = super::batch::check_line_proofs(
        &b,
        &root,
        m.line,
        (
            &Hash::digest(&m.request),
            outcome,
            counts_as_answered(m.receipt.as_ref()),
        ),
        (&m.input_proof, &m.result_proof),
    )?;
    Ok(Some((r, b, proof)))
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
        let Some((mut r, b, proof)) = post_rules(self, outcome, state, ctx)? else {
            return Ok(());
        };
        if let LineCount::Miscounted(why) = proof {
            // The line proves its provider's count false: the batch is refuted and its
            // provider slashed, half the slash's rest paying the requester (who made it
            // post); the request ends with the batch, its deposit back.
            return refute_miscounted(state, b, r.line, ctx, events, (why, &r.requester));
        }
        // The poster is paid for posting; the requester gets the rest back.
        let fee = LINE_POST_FEE.min(r.deposit);
        release(state, &ctx.sender, fee)?;
        release(state, &r.requester, Amount(r.deposit.0 - fee.0))?;
        edit_due(state, &r.provider, r.due, (r.batch, r.line), false)?;
        settle_owed(state, &r.provider)?;
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
                ("fee", fee.0.to_string()),
            ],
        ));
        Ok(())
    }
}

/// Ends a batch's line requests (it settled or was refuted): posted lines leave state, open
/// ones return their deposit to their requester and leave their provider's deadlines.
pub(crate) fn end_requests<S: StateWrite + ?Sized>(
    state: &mut S,
    batch: u64,
) -> Result<(), ExecError> {
    let n = request_count(state, batch)?;
    for i in 0..n {
        let key = batch_request_at_key(batch, i);
        let Some(line) = get_typed::<u32, _>(state, &key)? else {
            continue;
        };
        state.delete(key);
        let Some(r) = line_request(state, batch, line)? else {
            continue;
        };
        if r.posted.is_none() {
            release(state, &r.requester, r.deposit)?;
            edit_due(state, &r.provider, r.due, (batch, line), false)?;
            settle_owed(state, &r.provider)?;
        }
        state.delete(line_request_key(batch, line));
    }
    state.delete(batch_request_count_key(batch));
    Ok(())
}

/// Ends the line requests due at `height`: one not posted refutes its batch and slashes its
/// provider (steps 1–4 of the module's rule).
pub(crate) fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    for provider_address in take_set::<Address, _>(state, line_due_providers_key(height))? {
        let key = provider_lines_due_key(&provider_address, height);
        let due: Vec<(u64, u32)> = get_typed(state, &key)?.unwrap_or_default();
        state.delete(key);
        for (batch, line) in due {
            // A request ended meanwhile (its batch refuted at an earlier line) is gone.
            let Some(r) = line_request(state, batch, line)? else {
                continue;
            };
            if r.posted.is_some() {
                continue;
            }
            settle_owed(state, &r.provider)?;
            let b = existing_batch(state, batch)?;
            if b.status != BatchStatus::Done {
                // Not reachable (a batch's requests end with it), but never keep a deposit.
                release(state, &r.requester, r.deposit)?;
                state.delete(line_request_key(batch, line));
                continue;
            }
            // 1. The batch is refuted at the withheld line (its other requests end with it,
            //    this one's deposit is returned below); 2–3. the provider is slashed, the slash
            //    paying the client back what the lease paid and the requester half the rest.
            state.delete(line_request_key(batch, line));
            let slash = refute_and_slash(
                state,
                b,
                line,
                height,
                events,
                ("withheld_by", r.provider.to_string()),
                &r.requester,
            )?;
            // 4. The requester's deposit goes back.
            release(state, &r.requester, r.deposit)?;
            events.push(Event::new(
                "market.batch_line_withheld",
                [
                    ("batch", batch.to_string()),
                    ("line", line.to_string()),
                    ("provider", r.provider.to_string()),
                    ("requester", r.requester.to_string()),
                ]
                .into_iter()
                .chain(slash.attributes()),
            ));
        }
    }
    Ok(())
}
