//! Training jobs on leases: `SubmitJob` (the client names data, model and schedule),
//! `CommitSteps` (the provider commits the state hash after every step, one checkpoint per
//! message) and `DisputeStep` (anyone shows one committed step wrong).
//!
//! Every step's hash is on chain, so a challenger who re-ran the job finds the first step where
//! its hashes and the provider's part without asking anyone: the bisection is a lookup. The
//! dispute carries the parameters before that step (they must hash to the provider's own
//! commitment, so both sides agree on them) and the step's batch rows, each proved under the
//! job's dataset root; the chain re-runs that single step with the integer trainer
//! (`hibana-train`), which every machine computes bit for bit. If the result differs from the
//! provider's hash, the provider loses [`DISPUTE_SLASH`] of its bond (the client gets back what
//! the lease paid it, the challenger the rest), its lease closes without further pay, and the
//! job is refuted; if not, the challenger's [`DISPUTE_DEPOSIT`] goes to the provider.
//!
//! A job whose last step is committed settles `DISPUTE_WINDOW_BLOCKS` later; its step hashes
//! are then pruned, so state holds hashes only of jobs that can still be disputed.

use hibana_types::records::market::{
    CheckpointCommit, DISPUTE_DEPOSIT, DISPUTE_SLASH, Job, JobStatus, LeaseStatus,
    MAX_CHECKPOINT_EVERY, MAX_TRAIN_BATCH, MAX_TRAIN_PARAMS, NEXT_JOB_KEY, job_due_key, job_key,
    job_steps_key, lease_job_key,
};
use hibana_types::{Address, Amount, CommitSteps, DisputeStep, Event, Hash, MoveJob, SubmitJob};

use super::state::{
    edit_set, file_lease_due, lease, next_id, provider, put_lease, settle, take_bond, take_set,
    unfile_lease_due,
};
use crate::{
    ExecError, MessageHandler, StateError, StateRead, StateWrite, TxContext, TxError, bank,
    get_typed, invalid, put_typed,
};

/// Reads a job.
pub fn job<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Option<Job>, StateError> {
    get_typed(state, &job_key(id))
}

/// The job that runs (or ran last) on a lease.
pub fn job_of_lease<S: StateRead + ?Sized>(
    state: &S,
    lease: u64,
) -> Result<Option<u64>, StateError> {
    get_typed(state, &lease_job_key(lease))
}

/// Checkpoint `index` of a job (`None` once pruned or not yet committed).
pub fn checkpoint<S: StateRead + ?Sized>(
    state: &S,
    job: u64,
    index: u64,
) -> Result<Option<CheckpointCommit>, StateError> {
    get_typed(state, &job_steps_key(job, index))
}

/// The committed hashes of checkpoint `index` of a job (empty once pruned or not yet
/// committed).
pub fn checkpoint_hashes<S: StateRead + ?Sized>(
    state: &S,
    job: u64,
    index: u64,
) -> Result<Vec<Hash>, StateError> {
    Ok(checkpoint(state, job, index)?.map_or_else(Vec::new, |c| c.hashes))
}

/// The provider's committed hash after `step` (1-based), if it is still in state.
pub fn step_hash<S: StateRead + ?Sized>(
    state: &S,
    job: &Job,
    step: u64,
) -> Result<Option<Hash>, StateError> {
    if step == 0 || step > job.committed_steps {
        return Ok(None);
    }
    let every = u64::from(job.spec.checkpoint_every.max(1));
    let hashes = checkpoint_hashes(state, job.id, (step - 1) / every)?;
    Ok(hashes.get(((step - 1) % every) as usize).copied())
}

/// The checkpoint that holds step `step`'s hash.
fn checkpoint_of<S: StateRead + ?Sized>(
    state: &S,
    job: &Job,
    step: u64,
) -> Result<Option<CheckpointCommit>, StateError> {
    let every = u64::from(job.spec.checkpoint_every.max(1));
    checkpoint(state, job.id, step.saturating_sub(1) / every)
}

/// The jobs whose dispute window ends at `height`.
pub fn jobs_due_at<S: StateRead + ?Sized>(
    state: &S,
    height: u64,
) -> Result<std::collections::BTreeSet<u64>, StateError> {
    Ok(get_typed(state, &job_due_key(height))?.unwrap_or_default())
}

fn put_job<S: StateWrite + ?Sized>(state: &mut S, j: &Job) {
    put_typed(state, job_key(j.id), j);
}

fn existing_job<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Job, ExecError> {
    job(state, id)?.ok_or_else(|| invalid(format!("job {id} does not exist")))
}

/// Lease `id`, which must be active and the sender's, as a client that submits `what`.
pub(crate) fn clients_active_lease<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
    ctx: &TxContext<'_>,
    what: &str,
) -> Result<hibana_types::records::market::Lease, ExecError> {
    let l = lease(state, id)?.ok_or_else(|| invalid(format!("lease {id} does not exist")))?;
    if l.status != LeaseStatus::Active {
        return Err(invalid(format!("lease {id} is closed already")));
    }
    if l.owner != ctx.sender {
        return Err(invalid(format!(
            "lease {id} belongs to {}, not to {}: only its client submits {what}",
            l.owner, ctx.sender
        )));
    }
    Ok(l)
}

fn submit_rules<S: StateRead + ?Sized>(
    m: &SubmitJob,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<hibana_types::records::market::Lease, ExecError> {
    let l = clients_active_lease(state, m.lease, ctx, "jobs")?;
    if let Some(id) = job_of_lease(state, m.lease)?
        && let Some(j) = job(state, id)?
        && j.status == JobStatus::Running
    {
        return Err(invalid(format!(
            "lease {} is running job {id} still: wait for it, or close the lease",
            m.lease
        )));
    }
    Ok(l)
}

impl MessageHandler for SubmitJob {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        self.spec.check().map_err(TxError::Invalid)
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
        let l = submit_rules(self, state, ctx)?;
        let id = next_id(state, NEXT_JOB_KEY)?;
        let height = ctx.block.height;
        let j = Job {
            id,
            lease: l.id,
            client: l.owner,
            provider: l.provider,
            spec: self.spec.clone(),
            submitted_at: height,
            committed_steps: 0,
            last_hash: hibana_train::state_hash(0, &hibana_train::init_params(&self.spec)),
            last_commit_at: height,
            status: JobStatus::Running,
            refuted_step: None,
        };
        put_job(state, &j);
        put_typed(state, lease_job_key(l.id), &id);
        events.push(Event::new(
            "market.job_submitted",
            [
                ("job", id.to_string()),
                ("lease", l.id.to_string()),
                ("provider", l.provider.to_string()),
                ("dataset", self.spec.dataset_root.to_string()),
                ("steps", self.spec.steps.to_string()),
            ],
        ));
        Ok(())
    }
}

fn commit_rules<S: StateRead + ?Sized>(
    m: &CommitSteps,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Job, ExecError> {
    let j = existing_job(state, m.job)?;
    if j.provider != ctx.sender {
        return Err(invalid(format!(
            "job {} is trained by {}, not by {}",
            j.id, j.provider, ctx.sender
        )));
    }
    if j.status != JobStatus::Running {
        return Err(invalid(format!(
            "job {} has all its steps committed already",
            j.id
        )));
    }
    let active = lease(state, j.lease)?.is_some_and(|l| l.status == LeaseStatus::Active);
    if !active {
        return Err(invalid(format!(
            "lease {} of job {} is closed: the job stopped",
            j.lease, j.id
        )));
    }
    if m.after != j.committed_steps {
        return Err(invalid(format!(
            "job {} has {} steps committed, not {}: this commit is stale",
            j.id, j.committed_steps, m.after
        )));
    }
    let every = u64::from(j.spec.checkpoint_every);
    let want = every.min(j.spec.steps - j.committed_steps);
    if m.hashes.len() as u64 != want {
        return Err(invalid(format!(
            "job {} commits {want} step hashes at a time (steps {} to {}); {} were given",
            j.id,
            j.committed_steps + 1,
            j.committed_steps + want,
            m.hashes.len()
        )));
    }
    Ok(j)
}

impl MessageHandler for CommitSteps {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.hashes.is_empty() || self.hashes.len() > MAX_CHECKPOINT_EVERY as usize {
            return Err(TxError::Invalid(format!(
                "a checkpoint commits 1 to {MAX_CHECKPOINT_EVERY} step hashes, not {}",
                self.hashes.len()
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
        commit_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let mut j = commit_rules(self, state, ctx)?;
        let index = j.committed_steps / u64::from(j.spec.checkpoint_every);
        put_typed(
            state,
            job_steps_key(j.id, index),
            &CheckpointCommit {
                provider: j.provider,
                lease: j.lease,
                hashes: self.hashes.clone(),
            },
        );
        let from = j.committed_steps + 1;
        j.committed_steps += self.hashes.len() as u64;
        j.last_hash = *self.hashes.last().unwrap_or(&j.last_hash);
        j.last_commit_at = ctx.block.height;
        if j.committed_steps == j.spec.steps {
            j.status = JobStatus::Done;
            edit_set(state, job_due_key(j.dispute_until()), j.id, true)?;
        }
        put_job(state, &j);
        events.push(Event::new(
            "market.steps_committed",
            [
                ("job", j.id.to_string()),
                ("provider", j.provider.to_string()),
                ("from", from.to_string()),
                ("to", j.committed_steps.to_string()),
                ("hash", j.last_hash.to_string()),
            ],
        ));
        if j.status == JobStatus::Done {
            events.push(Event::new(
                "market.job_done",
                [
                    ("job", j.id.to_string()),
                    ("hash", j.last_hash.to_string()),
                    ("disputable_until", j.dispute_until().to_string()),
                ],
            ));
        }
        Ok(())
    }
}

/// What a dispute established before the step is re-run: the job, the rows, and the
/// provider's claimed hash after the step.
struct Disputed {
    job: Job,
    rows: Vec<hibana_train::Row>,
    claimed: Hash,
    /// Who committed the step, and on which lease.
    committer: (Address, u64),
}

fn dispute_rules<S: StateRead + ?Sized>(
    m: &DisputeStep,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Disputed, ExecError> {
    let j = existing_job(state, m.job)?;
    if !matches!(j.status, JobStatus::Running | JobStatus::Done) {
        return Err(invalid(format!(
            "job {} is {} and can no longer be disputed",
            j.id,
            match j.status {
                JobStatus::Refuted => "refuted already",
                _ => "settled",
            }
        )));
    }
    if m.step == 0 || m.step > j.committed_steps {
        return Err(invalid(format!(
            "job {} has steps 1 to {} committed; step {} is not among them",
            j.id, j.committed_steps, m.step
        )));
    }
    let expected = j.spec.param_count() as usize;
    if m.params.len() != expected {
        return Err(invalid(format!(
            "job {}'s model has {expected} parameters; the dispute carries {}",
            j.id,
            m.params.len()
        )));
    }
    let agreed = if m.step == 1 {
        hibana_train::state_hash(0, &hibana_train::init_params(&j.spec))
    } else {
        step_hash(state, &j, m.step - 1)?
            .ok_or_else(|| invalid(format!("job {}'s step hashes are pruned", j.id)))?
    };
    let given = hibana_train::state_hash(m.step - 1, &m.params);
    if given != agreed {
        return Err(invalid(format!(
            "the parameters hash to {given}, not to the provider's state after step {} ({agreed}): dispute the first step where your hashes and the provider's differ",
            m.step - 1
        )));
    }
    let rows = hibana_train::check_rows(&j.spec, m.step, &m.rows)
        .map_err(|e| invalid(format!("job {}: {e}", j.id)))?;
    let claimed = step_hash(state, &j, m.step)?
        .ok_or_else(|| invalid(format!("job {}'s step hashes are pruned", j.id)))?;
    let window = checkpoint_of(state, &j, m.step)?
        .ok_or_else(|| invalid(format!("job {}'s step hashes are pruned", j.id)))?;
    if ctx.sender == window.provider {
        return Err(invalid("a provider cannot dispute its own step"));
    }
    bank::require_balance(state, &ctx.sender, DISPUTE_DEPOSIT)?;
    Ok(Disputed {
        job: j,
        rows,
        claimed,
        committer: (window.provider, window.lease),
    })
}

/// Deletes a job's step hashes.
fn prune_steps<S: StateWrite + ?Sized>(state: &mut S, j: &Job) {
    for index in 0..j.spec.checkpoints() {
        state.delete(job_steps_key(j.id, index));
    }
}

impl MessageHandler for DisputeStep {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.rows.len() > MAX_TRAIN_BATCH as usize || self.params.len() as u64 > MAX_TRAIN_PARAMS
        {
            return Err(TxError::Invalid(format!(
                "a dispute carries at most {MAX_TRAIN_BATCH} rows and {MAX_TRAIN_PARAMS} parameters"
            )));
        }
        if self.step == 0 {
            return Err(TxError::Invalid("steps are counted from 1".into()));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        // The re-run itself waits for execution: the transaction is valid whatever its verdict.
        dispute_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let Disputed {
            mut job,
            rows,
            claimed,
            committer: (cheat, cheat_lease),
        } = dispute_rules(self, state, ctx)?;
        let refs: Vec<&hibana_train::Row> = rows.iter().collect();
        let after = hibana_train::step(&job.spec, &self.params, &refs)
            .map_err(|e| invalid(format!("job {}: {e}", job.id)))?;
        let honest = hibana_train::state_hash(self.step, &after);
        if honest == claimed {
            bank::move_balance(state, &ctx.sender, &cheat, DISPUTE_DEPOSIT)?;
            events.push(Event::new(
                "market.dispute_lost",
                [
                    ("job", job.id.to_string()),
                    ("step", self.step.to_string()),
                    ("challenger", ctx.sender.to_string()),
                    ("provider", cheat.to_string()),
                    ("amount", DISPUTE_DEPOSIT.0.to_string()),
                ],
            ));
            return Ok(());
        }
        let height = ctx.block.height;
        // The lease the wrong step was trained on closes without paying for any block after
        // its last settlement.
        let paid = close_unpaid(state, cheat_lease, height, events)?;
        let slashed = if provider(state, &cheat)?.is_some() {
            take_bond(state, &cheat, DISPUTE_SLASH, &job.client)?
        } else {
            Amount::ZERO
        };
        // The client takes back what the lease paid the cheat, the challenger the rest.
        let to_client = slashed.min(paid);
        let reward = Amount(slashed.0 - to_client.0);
        if reward.0 > 0 {
            bank::move_balance(state, &job.client, &ctx.sender, reward)?;
        }
        if job.status == JobStatus::Done {
            edit_set(state, job_due_key(job.dispute_until()), job.id, false)?;
        }
        prune_steps(state, &job);
        job.status = JobStatus::Refuted;
        job.refuted_step = Some(self.step);
        put_job(state, &job);
        events.push(Event::new(
            "market.job_refuted",
            [
                ("job", job.id.to_string()),
                ("step", self.step.to_string()),
                ("provider", cheat.to_string()),
                ("challenger", ctx.sender.to_string()),
                ("slashed", slashed.0.to_string()),
                ("refund", to_client.0.to_string()),
                ("reward", reward.0.to_string()),
                ("claimed", claimed.to_string()),
                ("recomputed", honest.to_string()),
            ],
        ));
        Ok(())
    }
}

/// Closes a lease whose provider was caught cheating, paying nothing for the blocks since its
/// last settlement; returns what the lease paid the provider in all.
pub(crate) fn close_unpaid<S: StateWrite + ?Sized>(
    state: &mut S,
    lease_id: u64,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<Amount, ExecError> {
    let Some(mut l) = lease(state, lease_id)? else {
        return Ok(Amount::ZERO);
    };
    if l.status == LeaseStatus::Active {
        unfile_lease_due(state, l.id, l.due_at())?;
        l.settled_at = l.settled_at.max(height.min(l.ends_at));
        put_lease(state, &l);
        file_lease_due(state, &l)?;
        settle(state, l, height, true, events)?;
    }
    Ok(lease(state, lease_id)?.map_or(Amount::ZERO, |l| l.paid))
}

fn move_rules<S: StateRead + ?Sized>(
    m: &MoveJob,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Job, hibana_types::records::market::Lease), ExecError> {
    let j = existing_job(state, m.job)?;
    if j.client != ctx.sender {
        return Err(invalid(format!(
            "job {} belongs to {}, not to {}: only its client moves it",
            j.id, j.client, ctx.sender
        )));
    }
    if j.status != JobStatus::Running {
        return Err(invalid(format!(
            "job {} has every step committed already: there is nothing to move",
            j.id
        )));
    }
    if m.lease == j.lease {
        return Err(invalid(format!(
            "job {} runs on lease {} already",
            j.id, m.lease
        )));
    }
    let to = submit_rules(
        &SubmitJob {
            lease: m.lease,
            spec: j.spec.clone(),
        },
        state,
        ctx,
    )?;
    Ok((j, to))
}

impl MessageHandler for MoveJob {
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
        move_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let (mut j, to) = move_rules(self, state, ctx)?;
        // The old lease ends: what its provider earned until now is paid, the rest refunded.
        if let Some(old) = lease(state, j.lease)?
            && old.status == LeaseStatus::Active
        {
            settle(state, old, ctx.block.height, true, events)?;
        }
        let from = (j.lease, j.provider);
        j.lease = to.id;
        j.provider = to.provider;
        put_job(state, &j);
        put_typed(state, lease_job_key(to.id), &j.id);
        events.push(Event::new(
            "market.job_moved",
            [
                ("job", j.id.to_string()),
                ("from_lease", from.0.to_string()),
                ("from_provider", from.1.to_string()),
                ("lease", to.id.to_string()),
                ("provider", to.provider.to_string()),
                ("step", j.committed_steps.to_string()),
                ("hash", j.last_hash.to_string()),
            ],
        ));
        Ok(())
    }
}

/// Settles the jobs whose dispute window ends at `height`: their results stand and their step
/// hashes are pruned.
pub(crate) fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    for id in take_set::<u64, _>(state, job_due_key(height))? {
        let Some(mut j) = job(state, id)? else {
            continue;
        };
        if j.status != JobStatus::Done {
            continue;
        }
        prune_steps(state, &j);
        j.status = JobStatus::Settled;
        put_job(state, &j);
        events.push(Event::new(
            "market.job_settled",
            [("job", id.to_string()), ("hash", j.last_hash.to_string())],
        ));
    }
    Ok(())
}
