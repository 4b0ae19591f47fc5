//! Low-communication data parallelism (after DiLoCo and INTELLECT-1, with plain averaging as
//! the outer step): `workers` providers train the same job, each taking `local_steps` steps on
//! its own batches from the same parameters; then the parameters are averaged and every worker
//! starts the next round from the average. Only parameters cross the network, once per round
//! per worker each way, instead of a gradient every step.
//!
//! Everything stays integer and ordered, so a round is as reproducible as a step:
//!
//! 1. Worker `w`'s `s`-th local step of round `r` (all 0-based) trains on the batch of global
//!    step `r × local_steps × workers + s × workers + w + 1` ([`crate::batch_indices`]): the
//!    workers together draw exactly the batches a single trainer of that many steps would.
//! 2. Each worker's steps are ordinary [`crate::step`]s, so each is hashable and disputable.
//! 3. The average is `floor(Σ params[w] / workers)` per parameter, summed in worker order in
//!    `i64` (exact), then clamped to ±[`crate::LIMIT`] (a mean of clamped values stays within).
//! 4. The round's state is [`crate::state_hash`] of the average at the round's global step
//!    count, committed on chain like a checkpoint.

use rayon::prelude::*;

use hibana_types::Hash;

use crate::{Dataset, TrainError, TrainingSpec, batch_rows, init_params, state_hash, step};

/// How a job is split over providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Providers training at once (at least 1).
    pub workers: u32,
    /// Steps each takes between two averagings (at least 1).
    pub local_steps: u32,
}

impl Plan {
    /// Global steps one round covers: `workers × local_steps`.
    pub fn steps_per_round(&self) -> u64 {
        u64::from(self.workers) * u64::from(self.local_steps)
    }

    /// Rounds a job of `spec.steps` global steps takes (the last may be short).
    pub fn rounds(&self, spec: &TrainingSpec) -> u64 {
        spec.steps.div_ceil(self.steps_per_round().max(1))
    }

    /// How `job` is split: its workers, each taking `checkpoint_every` local steps a round.
    pub fn of(job: &hibana_types::records::market::Job) -> Plan {
        Plan {
            workers: job.workers(),
            local_steps: job.spec.checkpoint_every.max(1),
        }
    }

    fn check(&self) -> Result<(), TrainError> {
        if self.workers == 0 || self.local_steps == 0 {
            return Err(TrainError::Spec(
                "a plan needs at least one worker and one local step".into(),
            ));
        }
        Ok(())
    }
}

/// The global step of worker `worker`'s local step `local` in round `round` (1-based, as
/// [`batch_indices`] numbers steps).
pub fn global_step(plan: &Plan, round: u64, local: u32, worker: u32) -> u64 {
    round * plan.steps_per_round()
        + u64::from(local) * u64::from(plan.workers)
        + u64::from(worker)
        + 1
}

/// Where global step `step` (1-based) falls: its round, local step and worker, the inverse of
/// [`global_step`]; `None` for step 0.
pub fn locate(plan: &Plan, step: u64) -> Option<(u64, u32, u32)> {
    let per_round = plan.steps_per_round();
    if step == 0 || per_round == 0 {
        return None;
    }
    let within = (step - 1) % per_round;
    let workers = u64::from(plan.workers);
    Some((
        (step - 1) / per_round,
        (within / workers) as u32,
        (within % workers) as u32,
    ))
}

/// The global step whose state a worker's step `step` starts from: the same worker's previous
/// local step, or for a round's first local step the previous round's end (0 at the start).
pub fn step_before(plan: &Plan, step: u64) -> Option<u64> {
    let (round, local, _) = locate(plan, step)?;
    Some(if local == 0 {
        round * plan.steps_per_round()
    } else {
        step - u64::from(plan.workers)
    })
}

/// The global step after worker `worker`'s last local step of round `round` (its part of the
/// round's average is hashed at that step), within a job of `steps` global steps.
pub fn last_step(plan: &Plan, round: u64, worker: u32, steps: u64) -> u64 {
    (0..plan.local_steps)
        .rev()
        .map(|local| global_step(plan, round, local, worker))
        .find(|&g| g <= steps)
        .unwrap_or(round * plan.steps_per_round())
}

/// Worker `worker`'s part of round `round` from `start`, with the state hash after each of its
/// local steps ([`crate::state_hash`] at the global step), skipping global steps past the job's
/// end.
pub fn worker_round_hashes(
    spec: &TrainingSpec,
    data: &Dataset,
    plan: &Plan,
    start: &[i32],
    round: u64,
    worker: u32,
) -> Result<(Vec<i32>, Vec<Hash>), TrainError> {
    plan.check()?;
    let mut params = start.to_vec();
    let mut hashes = Vec::with_capacity(plan.local_steps as usize);
    for local in 0..plan.local_steps {
        let global = global_step(plan, round, local, worker);
        if global > spec.steps {
            break;
        }
        params = step(spec, &params, &batch_rows(spec, data, global)?)?;
        hashes.push(state_hash(global, &params));
    }
    Ok((params, hashes))
}

/// What re-running a worker's committed round found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Every committed hash matched: the worker's parameters at the round's end.
    Matches(Vec<i32>),
    /// The first committed hash that did not.
    Diverges {
        /// The global step.
        step: u64,
        /// The parameters before it (agreed by both sides).
        params_before: Vec<i32>,
        /// The hash the committer gave.
        claimed: Hash,
        /// The hash the re-run gives.
        honest: Hash,
    },
}

/// Re-runs worker `worker`'s round `round` from `start` against the step hashes it committed,
/// stopping at the first that differs.
pub fn replay(
    spec: &TrainingSpec,
    data: &Dataset,
    plan: &Plan,
    start: &[i32],
    round: u64,
    worker: u32,
    committed: &[Hash],
) -> Result<Replay, TrainError> {
    plan.check()?;
    let mut params = start.to_vec();
    for (local, claimed) in committed.iter().enumerate() {
        let global = global_step(plan, round, local as u32, worker);
        let next = step(spec, &params, &batch_rows(spec, data, global)?)?;
        let honest = state_hash(global, &next);
        if honest != *claimed {
            return Ok(Replay::Diverges {
                step: global,
                params_before: params,
                claimed: *claimed,
                honest,
            });
        }
        params = next;
    }
    Ok(Replay::Matches(params))
}

/// Worker `worker`'s part of round `round`: its local steps from `start`, skipping global
/// steps past the job's end.
pub fn worker_round(
    spec: &TrainingSpec,
    data: &Dataset,
    plan: &Plan,
    start: &[i32],
    round: u64,
    worker: u32,
) -> Result<Vec<i32>, TrainError> {
    worker_round_hashes(spec, data, plan, start, round, worker).map(|(p, _)| p)
}

/// The average of the workers' parameters (step 3 of the module's rules).
pub fn average(parts: &[Vec<i32>]) -> Result<Vec<i32>, TrainError> {
    let n = parts.first().map_or(0, Vec::len);
    if parts.is_empty() || parts.iter().any(|p| p.len() != n) {
        return Err(TrainError::Spec(
            "averaging needs at least one part, all of one length".into(),
        ));
    }
    let w = parts.len() as i64;
    Ok((0..n)
        .map(|i| {
            let sum: i64 = parts.iter().map(|p| i64::from(p[i])).sum();
            sum.div_euclid(w).clamp(-crate::LIMIT, crate::LIMIT) as i32
        })
        .collect())
}

/// A finished data-parallel run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The averaged parameters after the last round.
    pub params: Vec<i32>,
    /// Rounds run.
    pub rounds: u64,
    /// Bytes the workers exchanged: each sends its parameters and receives the average once per
    /// round (4 bytes a parameter).
    pub bytes_exchanged: u64,
    /// Bytes a per-step gradient exchange would have cost for the same steps: each worker sends
    /// its gradient and receives the reduced one every local step.
    pub bytes_per_step_exchange: u64,
}

/// Trains `spec` on `data` as `plan` splits it, the workers of a round in parallel; the result
/// does not depend on how they are scheduled.
pub fn train(spec: &TrainingSpec, data: &Dataset, plan: &Plan) -> Result<Run, TrainError> {
    spec.check().map_err(TrainError::Spec)?;
    plan.check()?;
    let mut params = init_params(spec);
    let rounds = plan.rounds(spec);
    for round in 0..rounds {
        let parts = (0..plan.workers)
            .into_par_iter()
            .map(|w| worker_round(spec, data, plan, &params, round, w))
            .collect::<Result<Vec<_>, _>>()?;
        params = average(&parts)?;
    }
    let per_param = 4 * params.len() as u64;
    let workers = u64::from(plan.workers);
    let local_steps = spec.steps.div_ceil(workers);
    Ok(Run {
        params,
        rounds,
        bytes_exchanged: 2 * per_param * workers * rounds,
        bytes_per_step_exchange: 2 * per_param * workers * local_steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Trainer, correct, synthetic};

    #[test]
    fn the_workers_draw_exactly_a_single_trainers_batches() {
        let plan = Plan {
            workers: 3,
            local_steps: 4,
        };
        let mut seen: Vec<u64> = (0..2)
            .flat_map(|r| {
                (0..4).flat_map(move |s| (0..3).map(move |w| global_step(&plan, r, s, w)))
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=24).collect::<Vec<_>>());
        for r in 0..2 {
            for s in 0..4 {
                for w in 0..3 {
                    let g = global_step(&plan, r, s, w);
                    assert_eq!(locate(&plan, g), Some((r, s, w)));
                    let before = step_before(&plan, g).unwrap();
                    if s == 0 {
                        assert_eq!(before, r * 12);
                    } else {
                        assert_eq!(before, global_step(&plan, r, s - 1, w));
                    }
                }
            }
        }
        assert_eq!(locate(&plan, 0), None);
        assert_eq!(last_step(&plan, 1, 2, 24), 24);
        assert_eq!(last_step(&plan, 1, 2, 20), 18);
        assert_eq!(last_step(&plan, 1, 2, 12), 12);
    }

    #[test]
    fn a_replay_matches_an_honest_round_and_finds_the_first_wrong_step() {
        let (spec, data) = synthetic::reference_job().unwrap();
        let plan = Plan {
            workers: 2,
            local_steps: 5,
        };
        let start = init_params(&spec);
        let (params, mut hashes) = worker_round_hashes(&spec, &data, &plan, &start, 1, 1).unwrap();
        let run = |h: &[Hash]| replay(&spec, &data, &plan, &start, 1, 1, h).unwrap();
        assert_eq!(run(&hashes), Replay::Matches(params));
        hashes[2] = Hash([7; 32]);
        let Replay::Diverges {
            step: at,
            params_before,
            claimed,
            ..
        } = run(&hashes)
        else {
            panic!("a wrong hash matched");
        };
        assert_eq!(at, global_step(&plan, 1, 2, 1));
        assert_eq!(claimed, Hash([7; 32]));
        // The state before local step 2 is the state after local steps 0 and 1.
        let mut before = start.clone();
        for local in 0..2 {
            let g = global_step(&plan, 1, local, 1);
            before = step(&spec, &before, &batch_rows(&spec, &data, g).unwrap()).unwrap();
        }
        assert_eq!(params_before, before);
    }

    #[test]
    fn averaging_is_exact_and_floors() {
        let avg = average(&[vec![1, -1, 7], vec![2, -2, 8]]).unwrap();
        assert_eq!(avg, vec![1, -2, 7]);
        assert!(average(&[vec![1], vec![1, 2]]).is_err());
        assert!(average(&[]).is_err());
    }

    #[test]
    fn one_worker_is_the_ordinary_trainer_and_runs_are_reproducible() {
        let (spec, data) = synthetic::reference_job().unwrap();
        let single = train(
            &spec,
            &data,
            &Plan {
                workers: 1,
                local_steps: 7,
            },
        )
        .unwrap();
        let mut t = Trainer::new(&spec).unwrap();
        for _ in 0..spec.steps {
            t.next_step(&data).unwrap();
        }
        assert_eq!(single.params, t.params());
        let plan = Plan {
            workers: 2,
            local_steps: 10,
        };
        let a = train(&spec, &data, &plan).unwrap();
        // The same run on one thread: the same bits.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| train(&spec, &data, &plan)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rounds, 5);
        assert_eq!(a.bytes_exchanged * 10, a.bytes_per_step_exchange);
        // Two workers averaging every 10 steps learn the task about as well as one.
        let (one, two) = (
            correct(&spec, t.params(), &data).unwrap(),
            correct(&spec, &a.params, &data).unwrap(),
        );
        assert!(
            two * 100 >= one * 90,
            "one provider {one}, two {two} of {}",
            data.len()
        );
    }
}
