//! Data-parallel training jobs (after DiLoCo): a job submitted with more leases (`SubmitJob`'s
//! `with`) is trained by each lease's provider at once. Every round, each worker takes
//! `checkpoint_every` local steps from the round's starting parameters and commits their step
//! hashes (`CommitSteps`, one checkpoint per worker and round); once all have, any worker
//! commits the hash of their average (`CommitAverage`), which the next round starts from. The
//! workers exchange only parameters, through the node's blob store, once a round.
//!
//! A worker's step is disputed like any step (`DisputeStep`); an average by `DisputeAverage`,
//! which carries every worker's parameters at the round's end: each must hash to that worker's
//! own last commitment, and the chain averages them (`hibana_train::diloco::average`, exact
//! integer arithmetic). A wrong average is judged as a wrong step: its committer is slashed.

use hibana_types::records::market::Job;
use hibana_types::records::market::{
    CheckpointCommit, DISPUTE_DEPOSIT, JobStatus, MAX_JOB_WORKERS, MAX_TRAIN_PARAMS, job_steps_key,
};
use hibana_types::{CommitAverage, DisputeAverage, Event};

use super::jobs::{
    Verdict, advance, checkpoint, existing_job, job_done, judge, plan, workers_running_job,
};
use crate::{
    ExecError, MessageHandler, StateRead, StateWrite, TxContext, TxError, bank, invalid, put_typed,
};

/// A data-parallel job's round: every worker's commitment present, and the round is the
/// job's current one.
fn average_rules<S: StateRead + ?Sized>(
    m: &CommitAverage,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Job, u32), ExecError> {
    let (j, k, _) = workers_running_job(state, m.job, ctx)?;
    if j.with.is_empty() {
        return Err(invalid(format!(
            "job {} trains on one lease: it has no rounds to average",
            j.id
        )));
    }
    let round = j.committed_steps / j.steps_per_round();
    if m.round != round {
        return Err(invalid(format!(
            "job {} is at round {round}, not {}: this average is stale",
            j.id, m.round
        )));
    }
    for w in 0..j.workers() {
        if checkpoint(state, j.id, j.worker_index(round, w))?.is_none() {
            return Err(invalid(format!(
                "worker {w} of job {} has not committed round {round} yet",
                j.id
            )));
        }
    }
    Ok((j, k))
}

impl MessageHandler for CommitAverage {
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
        average_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let (mut j, k) = average_rules(self, state, ctx)?;
        let w = j.worker(k).ok_or_else(|| invalid("no such worker"))?;
        put_typed(
            state,
            job_steps_key(j.id, j.worker_index(self.round, j.workers())),
            &CheckpointCommit {
                provider: w.provider,
                lease: w.lease,
                hashes: vec![self.hash],
            },
        );
        super::jobs::open_work(state, &w.provider, j.id)?;
        let per_round = j.steps_per_round();
        advance(state, &mut j, per_round, self.hash, ctx.block.height)?;
        events.push(Event::new(
            "market.average_committed",
            [
                ("job", j.id.to_string()),
                ("round", self.round.to_string()),
                ("provider", w.provider.to_string()),
                ("step", j.committed_steps.to_string()),
                ("hash", self.hash.to_string()),
            ],
        ));
        events.extend(job_done(&j));
        Ok(())
    }
}

/// The job, and the verdict's inputs short of the average itself: the committed average and
/// its committer.
fn average_dispute_rules<S: StateRead + ?Sized>(
    m: &DisputeAverage,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Job, CheckpointCommit), ExecError> {
    let j = existing_job(state, m.job)?;
    if !matches!(j.status, JobStatus::Running | JobStatus::Done) {
        return Err(invalid(format!(
            "job {} is {} and can no longer be disputed",
            j.id,
            if j.status == JobStatus::Refuted {
                "refuted already"
            } else {
                "settled"
            }
        )));
    }
    if j.with.is_empty() {
        return Err(invalid(format!(
            "job {} trains on one lease: it has no averages to dispute",
            j.id
        )));
    }
    if m.round >= j.rounds() {
        return Err(invalid(format!(
            "job {} has rounds 0 to {}; round {} is not among them",
            j.id,
            j.rounds().saturating_sub(1),
            m.round
        )));
    }
    let committed = checkpoint(state, j.id, j.worker_index(m.round, j.workers()))?
        .filter(|c| c.hashes.len() == 1)
        .ok_or_else(|| {
            invalid(format!(
                "job {} has no committed average of round {}",
                j.id, m.round
            ))
        })?;
    if m.parts.len() != j.workers() as usize {
        return Err(invalid(format!(
            "job {} has {} workers; the dispute carries {} parts",
            j.id,
            j.workers(),
            m.parts.len()
        )));
    }
    let plan = plan(&j);
    let expected = j.spec.param_count() as usize;
    for (w, part) in m.parts.iter().enumerate() {
        if part.len() != expected {
            return Err(invalid(format!(
                "job {}'s model has {expected} parameters; part {w} has {}",
                j.id,
                part.len()
            )));
        }
        let last = hibana_train::diloco::last_step(&plan, m.round, w as u32, j.spec.steps);
        let theirs = checkpoint(state, j.id, j.worker_index(m.round, w as u32))?
            .and_then(|c| c.hashes.last().copied())
            .ok_or_else(|| invalid(format!("job {}'s step hashes are pruned", j.id)))?;
        let given = hibana_train::state_hash(last, part);
        if given != theirs {
            return Err(invalid(format!(
                "part {w} hashes to {given}, not to worker {w}'s state after step {last} ({theirs}): each part must be what its worker committed"
            )));
        }
    }
    if ctx.sender == committed.provider {
        return Err(invalid("a provider cannot dispute its own average"));
    }
    bank::require_balance(state, &ctx.sender, DISPUTE_DEPOSIT)?;
    Ok((j, committed))
}

impl MessageHandler for DisputeAverage {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.parts.is_empty()
            || self.parts.len() > MAX_JOB_WORKERS as usize
            || self.parts.iter().any(|p| p.len() as u64 > MAX_TRAIN_PARAMS)
        {
            return Err(TxError::Invalid(format!(
                "a dispute of an average carries 1 to {MAX_JOB_WORKERS} parts of at most {MAX_TRAIN_PARAMS} parameters"
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
        average_dispute_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let (job, committed) = average_dispute_rules(self, state, ctx)?;
        let average = hibana_train::diloco::average(&self.parts)
            .map_err(|e| invalid(format!("job {}: {e}", job.id)))?;
        let end = (self.round + 1) * job.steps_per_round();
        let verdict = Verdict {
            step: end,
            claimed: committed.hashes[0],
            honest: hibana_train::state_hash(end, &average),
            cheat: committed.provider,
            cheat_lease: committed.lease,
        };
        judge(state, job, &verdict, ctx, events)
    }
}
