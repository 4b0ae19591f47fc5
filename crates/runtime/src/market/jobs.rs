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
//! the lease paid it, up to half, the challenger half the rest, and the remainder is burned:
//! `state::slash_proven`), its lease closes without further pay, and the
//! job is refuted; if not, the challenger's [`DISPUTE_DEPOSIT`] goes to the provider.
//!
//! A job whose last step is committed settles `DISPUTE_WINDOW_BLOCKS` later; its step hashes
//! are then pruned, so state holds hashes only of jobs that can still be disputed.

use hibana_types::records::market::{
    CheckpointCommit, DISPUTE_DEPOSIT, Job, JobStatus, Lease, LeaseStatus, MAX_CHECKPOINT_EVERY,
    MAX_JOB_WORKERS, MAX_TRAIN_BATCH, MAX_TRAIN_PARAMS, NEXT_JOB_KEY, WORK_JOB, Worker,
    job_due_key, job_key, job_steps_key, lease_job_key, provider_open_work_key,
};
use hibana_types::{Address, Amount, CommitSteps, DisputeStep, Event, Hash, MoveJob, SubmitJob};

use super::state::{
    edit_set, file_lease_due, lease, next_id, put_lease, settle, slash_proven, take_set,
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
    Ok(located(state, job, step)?.and_then(|(c, at)| c.hashes.get(at).copied()))
}

/// How a data-parallel job's steps are split over its workers.
pub(super) fn plan(job: &Job) -> hibana_train::diloco::Plan {
    hibana_train::diloco::Plan::of(job)
}

/// The checkpoint that holds step `step`'s hash, and the hash's place in it.
fn located<S: StateRead + ?Sized>(
    state: &S,
    job: &Job,
    step: u64,
) -> Result<Option<(CheckpointCommit, usize)>, StateError> {
    if step == 0 {
        return Ok(None);
    }
    let (index, at) = if job.with.is_empty() {
        if step > job.committed_steps {
            return Ok(None);
        }
        let every = u64::from(job.spec.checkpoint_every.max(1));
        ((step - 1) / every, ((step - 1) % every) as usize)
    } else {
        if step > job.spec.steps {
            return Ok(None);
        }
        let Some((round, local, worker)) = hibana_train::diloco::locate(&plan(job), step) else {
            return Ok(None);
        };
        (job.worker_index(round, worker), local as usize)
    };
    Ok(checkpoint(state, job.id, index)?
        .filter(|c| at < c.hashes.len())
        .map(|c| (c, at)))
}

/// The state step `step` starts from: the global step it is hashed at, and its hash as
/// committed (the initial parameters' at step 0; in a data-parallel job, a round's first local
/// step starts from the previous round's committed average).
fn hash_before<S: StateRead + ?Sized>(
    state: &S,
    job: &Job,
    step: u64,
) -> Result<Option<(u64, Hash)>, StateError> {
    let initial = || hibana_train::state_hash(0, &hibana_train::init_params(&job.spec));
    if job.with.is_empty() {
        return Ok(match step {
            0 => None,
            1 => Some((0, initial())),
            s => step_hash(state, job, s - 1)?.map(|h| (s - 1, h)),
        });
    }
    let plan = plan(job);
    let (Some((round, local, _)), Some(before)) = (
        hibana_train::diloco::locate(&plan, step),
        hibana_train::diloco::step_before(&plan, step),
    ) else {
        return Ok(None);
    };
    if local > 0 {
        return Ok(step_hash(state, job, before)?.map(|h| (before, h)));
    }
    if round == 0 {
        return Ok(Some((0, initial())));
    }
    let average = checkpoint(state, job.id, job.worker_index(round - 1, job.workers()))?;
    Ok(average.and_then(|c| c.hashes.first().map(|h| (before, *h))))
}

/// The jobs whose dispute window ends at `height`.
pub fn jobs_due_at<S: StateRead + ?Sized>(
    state: &S,
    height: u64,
) -> Result<std::collections::BTreeSet<u64>, StateError> {
    Ok(get_typed(state, &job_due_key(height))?.unwrap_or_default())
}

pub(super) fn put_job<S: StateWrite + ?Sized>(state: &mut S, j: &Job) {
    put_typed(state, job_key(j.id), j);
}

pub(super) fn existing_job<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Job, ExecError> {
    job(state, id)?.ok_or_else(|| invalid(format!("job {id} does not exist")))
}

/// Lease `id`, which must be active and the sender's, as a client that submits `what`.
pub(crate) fn clients_active_lease<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
    ctx: &TxContext<'_>,
    what: &str,
) -> Result<Lease, ExecError> {
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

/// Lease `id`, active, the sender's and running no job, for a new job. A data-parallel job
/// one of whose leases closed can never finish, and holds none of its other leases.
fn free_lease<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
    ctx: &TxContext<'_>,
) -> Result<Lease, ExecError> {
    let l = clients_active_lease(state, id, ctx, "jobs")?;
    if let Some(job_id) = job_of_lease(state, id)?
        && let Some(j) = job(state, job_id)?
        && j.status == JobStatus::Running
        && all_leases_active(state, &j)?
    {
        return Err(invalid(format!(
            "lease {id} is running job {job_id} still: wait for it, or close the lease"
        )));
    }
    Ok(l)
}

/// Whether every lease of a job is active.
fn all_leases_active<S: StateRead + ?Sized>(state: &S, j: &Job) -> Result<bool, StateError> {
    for k in 0..j.workers() {
        let Some(w) = j.worker(k) else { continue };
        if !lease(state, w.lease)?.is_some_and(|l| l.status == LeaseStatus::Active) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The job's leases, worker 0 first.
fn submit_rules<S: StateRead + ?Sized>(
    m: &SubmitJob,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Vec<Lease>, ExecError> {
    let mut leases = vec![free_lease(state, m.lease, ctx)?];
    for &id in &m.with {
        if leases.iter().any(|l| l.id == id) {
            return Err(invalid(format!("lease {id} is named twice")));
        }
        let l = free_lease(state, id, ctx)?;
        if let Some(same) = leases.iter().find(|o| o.provider == l.provider) {
            return Err(invalid(format!(
                "leases {} and {id} are both with provider {}: a data-parallel job needs a provider per lease",
                same.id, l.provider
            )));
        }
        leases.push(l);
    }
    let workers = leases.len() as u64;
    let per_round = workers * u64::from(m.spec.checkpoint_every);
    if workers > 1 && !m.spec.steps.is_multiple_of(per_round) {
        return Err(invalid(format!(
            "a job over {workers} leases trains whole rounds: its steps ({}) must be a multiple of {workers} × {} local steps",
            m.spec.steps, m.spec.checkpoint_every
        )));
    }
    Ok(leases)
}

impl MessageHandler for SubmitJob {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.with.len() >= MAX_JOB_WORKERS as usize {
            return Err(TxError::Invalid(format!(
                "a job trains on at most {MAX_JOB_WORKERS} leases, not {}",
                self.with.len() + 1
            )));
        }
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
        let leases = submit_rules(self, state, ctx)?;
        let l = &leases[0];
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
            with: leases[1..]
                .iter()
                .map(|l| Worker {
                    lease: l.id,
                    provider: l.provider,
                })
                .collect(),
        };
        put_job(state, &j);
        for l in &leases {
            put_typed(state, lease_job_key(l.id), &id);
        }
        events.push(Event::new(
            "market.job_submitted",
            [
                ("job", id.to_string()),
                ("lease", l.id.to_string()),
                ("provider", l.provider.to_string()),
                ("dataset", self.spec.dataset_root.to_string()),
                ("steps", self.spec.steps.to_string()),
                ("workers", j.workers().to_string()),
            ],
        ));
        Ok(())
    }
}

/// A running job, and which of its workers the sender is, on an active lease.
pub(super) fn workers_running_job<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
    ctx: &TxContext<'_>,
) -> Result<(Job, u32, Worker), ExecError> {
    let j = existing_job(state, id)?;
    let Some(k) = j.worker_of(&ctx.sender) else {
        let by: Vec<String> = (0..j.workers())
            .filter_map(|k| j.worker(k).map(|w| w.provider.to_string()))
            .collect();
        return Err(invalid(format!(
            "job {} is trained by {}, not by {}",
            j.id,
            by.join(" and "),
            ctx.sender
        )));
    };
    if j.status != JobStatus::Running {
        return Err(invalid(format!(
            "job {} has all its steps committed already",
            j.id
        )));
    }
    let w = j.worker(k).ok_or_else(|| invalid("no such worker"))?;
    let active = lease(state, w.lease)?.is_some_and(|l| l.status == LeaseStatus::Active);
    if !active {
        return Err(invalid(format!(
            "lease {} of job {} is closed: the job stopped",
            w.lease, j.id
        )));
    }
    Ok((j, k, w))
}

/// The job, and the checkpoint index the commit fills.
fn commit_rules<S: StateRead + ?Sized>(
    m: &CommitSteps,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Job, u64), ExecError> {
    let (j, k, _) = workers_running_job(state, m.job, ctx)?;
    if m.after != j.committed_steps {
        return Err(invalid(format!(
            "job {} has {} steps committed, not {}: this commit is stale",
            j.id, j.committed_steps, m.after
        )));
    }
    let every = u64::from(j.spec.checkpoint_every);
    if !j.with.is_empty() {
        let round = j.committed_steps / j.steps_per_round();
        let index = j.worker_index(round, k);
        if checkpoint(state, j.id, index)?.is_some() {
            return Err(invalid(format!(
                "worker {k} of job {} has committed round {round} already: its next steps wait for the round's average",
                j.id
            )));
        }
        if m.hashes.len() as u64 != every {
            return Err(invalid(format!(
                "job {} commits {every} step hashes a round per worker; {} were given",
                j.id,
                m.hashes.len()
            )));
        }
        return Ok((j, index));
    }
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
    let index = j.committed_steps / every;
    Ok((j, index))
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
        let (mut j, index) = commit_rules(self, state, ctx)?;
        let k = j.worker_of(&ctx.sender).unwrap_or_default();
        let w = j.worker(k).ok_or_else(|| invalid("no such worker"))?;
        put_typed(
            state,
            job_steps_key(j.id, index),
            &CheckpointCommit {
                provider: w.provider,
                lease: w.lease,
                hashes: self.hashes.clone(),
            },
        );
        open_work(state, &w.provider, j.id)?;
        if !j.with.is_empty() {
            // A worker's round: the job's count moves when the round's average is committed.
            j.last_commit_at = ctx.block.height;
            put_job(state, &j);
            let round = j.committed_steps / j.steps_per_round();
            events.push(Event::new(
                "market.round_steps_committed",
                [
                    ("job", j.id.to_string()),
                    ("provider", w.provider.to_string()),
                    ("round", round.to_string()),
                    ("worker", k.to_string()),
                    (
                        "hash",
                        self.hashes.last().copied().unwrap_or_default().to_string(),
                    ),
                ],
            ));
            return Ok(());
        }
        let from = j.committed_steps + 1;
        let last = *self.hashes.last().unwrap_or(&j.last_hash);
        advance(
            state,
            &mut j,
            self.hashes.len() as u64,
            last,
            ctx.block.height,
        )?;
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
        events.extend(job_done(&j));
        Ok(())
    }
}

/// Records `steps` more committed steps of a job, ending with state `hash` at `height`; the
/// last makes it done, disputable for a window before it settles.
pub(super) fn advance<S: StateWrite + ?Sized>(
    state: &mut S,
    j: &mut Job,
    steps: u64,
    hash: Hash,
    height: u64,
) -> Result<(), ExecError> {
    j.committed_steps += steps;
    j.last_hash = hash;
    j.last_commit_at = height;
    if j.committed_steps >= j.spec.steps {
        j.status = JobStatus::Done;
        edit_set(state, job_due_key(j.dispute_until()), j.id, true)?;
    }
    put_job(state, j);
    Ok(())
}

/// The event of a job whose every step is committed, if it is.
pub(super) fn job_done(j: &Job) -> Option<Event> {
    (j.status == JobStatus::Done).then(|| {
        Event::new(
            "market.job_done",
            [
                ("job", j.id.to_string()),
                ("hash", j.last_hash.to_string()),
                ("disputable_until", j.dispute_until().to_string()),
            ],
        )
    })
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
    let Some((window, at)) = located(state, &j, m.step)? else {
        return Err(invalid(if j.with.is_empty() {
            format!(
                "job {} has steps 1 to {} committed; step {} is not among them",
                j.id, j.committed_steps, m.step
            )
        } else {
            format!("job {} has no committed hash of step {}", j.id, m.step)
        }));
    };
    let expected = j.spec.param_count() as usize;
    if m.params.len() != expected {
        return Err(invalid(format!(
            "job {}'s model has {expected} parameters; the dispute carries {}",
            j.id,
            m.params.len()
        )));
    }
    let (before, agreed) = hash_before(state, &j, m.step)?
        .ok_or_else(|| invalid(format!("job {}'s step hashes are pruned", j.id)))?;
    let given = hibana_train::state_hash(before, &m.params);
    if given != agreed {
        return Err(invalid(format!(
            "the parameters hash to {given}, not to the committed state after step {before} ({agreed}): dispute the first step where your hashes and the provider's differ"
        )));
    }
    let rows = hibana_train::check_rows(&j.spec, m.step, &m.rows)
        .map_err(|e| invalid(format!("job {}: {e}", j.id)))?;
    let claimed = window.hashes[at];
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

/// Deletes a job's step hashes, and the job from its committers' open work.
fn prune_steps<S: StateWrite + ?Sized>(state: &mut S, j: &Job) -> Result<(), ExecError> {
    let mut committers = std::collections::BTreeSet::new();
    for index in 0..j.checkpoint_indexes() {
        if let Some(c) = checkpoint(state, j.id, index)? {
            committers.insert(c.provider);
        }
        state.delete(job_steps_key(j.id, index));
    }
    for provider in committers {
        edit_set(
            state,
            provider_open_work_key(&provider),
            (WORK_JOB, j.id),
            false,
        )?;
    }
    Ok(())
}

/// Notes that `provider` committed to job `id`: its bond answers for it until the job settles.
pub(super) fn open_work<S: StateWrite + ?Sized>(
    state: &mut S,
    provider: &Address,
    id: u64,
) -> Result<(), ExecError> {
    edit_set(
        state,
        provider_open_work_key(provider),
        (WORK_JOB, id),
        true,
    )?;
    Ok(())
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
            job,
            rows,
            claimed,
            committer: (cheat, cheat_lease),
        } = dispute_rules(self, state, ctx)?;
        let refs: Vec<&hibana_train::Row> = rows.iter().collect();
        let after = hibana_train::step(&job.spec, &self.params, &refs)
            .map_err(|e| invalid(format!("job {}: {e}", job.id)))?;
        let honest = hibana_train::state_hash(self.step, &after);
        let verdict = Verdict {
            step: self.step,
            claimed,
            honest,
            cheat,
            cheat_lease,
        };
        judge(state, job, &verdict, ctx, events)
    }
}

/// A re-run's outcome: the state hash after `step` as committed by `cheat` (on `cheat_lease`)
/// and as the chain computed it.
pub(super) struct Verdict {
    pub(super) step: u64,
    pub(super) claimed: Hash,
    pub(super) honest: Hash,
    pub(super) cheat: Address,
    pub(super) cheat_lease: u64,
}

/// Settles a dispute: a right commitment takes the challenger's deposit; a wrong one slashes
/// its committer, closes its lease unpaid and refutes the job.
pub(super) fn judge<S: StateWrite + ?Sized>(
    state: &mut S,
    mut job: Job,
    v: &Verdict,
    ctx: &TxContext<'_>,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let Verdict {
        step,
        claimed,
        honest,
        cheat,
        cheat_lease,
    } = *v;
    if honest == claimed {
        bank::move_balance(state, &ctx.sender, &cheat, DISPUTE_DEPOSIT)?;
        events.push(Event::new(
            "market.dispute_lost",
            [
                ("job", job.id.to_string()),
                ("step", step.to_string()),
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
    // The client takes back what the lease paid the cheat, the challenger half the rest.
    let slash = slash_proven(state, &cheat, (&job.client, paid), &ctx.sender)?;
    if job.status == JobStatus::Done {
        edit_set(state, job_due_key(job.dispute_until()), job.id, false)?;
    }
    prune_steps(state, &job)?;
    job.status = JobStatus::Refuted;
    job.refuted_step = Some(step);
    put_job(state, &job);
    events.push(Event::new(
        "market.job_refuted",
        [
            ("job", job.id.to_string()),
            ("step", step.to_string()),
            ("provider", cheat.to_string()),
            ("challenger", ctx.sender.to_string()),
            ("claimed", claimed.to_string()),
            ("recomputed", honest.to_string()),
        ]
        .into_iter()
        .chain(slash.attributes()),
    ));
    Ok(())
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

/// The job, the new lease, and the worker that moves to it.
fn move_rules<S: StateRead + ?Sized>(
    m: &MoveJob,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Job, Lease, u32), ExecError> {
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
    let leases: Vec<u64> = (0..j.workers())
        .filter_map(|k| j.worker(k).map(|w| w.lease))
        .collect();
    let k = match m.replaces {
        None if j.with.is_empty() => 0,
        None => {
            return Err(invalid(format!(
                "job {} trains on leases {leases:?} at once: name the worker's lease the new one replaces",
                j.id
            )));
        }
        Some(old) => leases.iter().position(|&l| l == old).ok_or_else(|| {
            invalid(format!(
                "lease {old} is not one of job {}'s leases {leases:?}",
                j.id
            ))
        })? as u32,
    };
    if leases.contains(&m.lease) {
        return Err(invalid(format!(
            "job {} runs on lease {} already",
            j.id, m.lease
        )));
    }
    let to = free_lease(state, m.lease, ctx)?;
    if let Some(other) = (0..j.workers())
        .filter(|&o| o != k)
        .filter_map(|o| j.worker(o))
        .find(|w| w.provider == to.provider)
    {
        return Err(invalid(format!(
            "lease {} is with provider {}, which trains job {} on lease {} already: a data-parallel job needs a provider per lease",
            to.id, to.provider, j.id, other.lease
        )));
    }
    Ok((j, to, k))
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
        let (mut j, to, k) = move_rules(self, state, ctx)?;
        let old = j.worker(k).ok_or_else(|| invalid("no such worker"))?;
        // The old lease ends: what its provider earned until now is paid, the rest refunded.
        if let Some(l) = lease(state, old.lease)?
            && l.status == LeaseStatus::Active
        {
            settle(state, l, ctx.block.height, true, events)?;
        }
        let from = (old.lease, old.provider);
        let moved = Worker {
            lease: to.id,
            provider: to.provider,
        };
        if k == 0 {
            j.lease = moved.lease;
            j.provider = moved.provider;
        } else if let Some(w) = j.with.get_mut(k as usize - 1) {
            *w = moved;
        }
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
                ("worker", k.to_string()),
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
        prune_steps(state, &j)?;
        j.status = JobStatus::Settled;
        put_job(state, &j);
        events.push(Event::new(
            "market.job_settled",
            [("job", id.to_string()), ("hash", j.last_hash.to_string())],
        ));
    }
    Ok(())
}
