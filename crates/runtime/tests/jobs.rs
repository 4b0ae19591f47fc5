//! Training jobs on leases through transactions: an honest job commits every step, survives a
//! dispute (the challenger's deposit goes to the provider) and settles, pruning its hashes; a
//! provider that cheats at one step loses the dispute on that step, its bond slashed and the
//! client refunded; bad input is refused with a reason and moves no balance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::bank;
use hibana_runtime::market::{
    self, JobStatus, LeaseStatus, MARKET_ESCROW, MIN_PROVIDER_BOND, TrainingSpec,
};
use hibana_train::{Dataset, Row, Trainer, batch_indices, init_params, quantise};
use hibana_types::records::market::{DISPUTE_DEPOSIT, DISPUTE_SLASH, DISPUTE_WINDOW_BLOCKS};
use hibana_types::{
    Address, Amount, CommitSteps, DisputeStep, Hash, Message, MoveJob, SecretKey, SubmitJob,
};

use proptest::prelude::*;

mod common;

use common::World;

fn addr(k: &SecretKey) -> Address {
    k.public_key().address()
}

fn hib(n: u128) -> Amount {
    Amount(n * 1_000_000_000)
}

/// 120 rows of two noisy classes split by x > y.
fn dataset() -> Dataset {
    let rows = (0..120u32)
        .map(|i| {
            let x = f64::from(i % 11) / 10.0 - 0.5;
            let y = f64::from((i * 7) % 13) / 12.0 - 0.5;
            Row {
                label: u32::from(x > y),
                features: vec![quantise(x).unwrap(), quantise(y).unwrap(), 1 << 14],
            }
        })
        .collect();
    Dataset::from_rows(rows).unwrap()
}

fn spec(data: &Dataset) -> TrainingSpec {
    TrainingSpec {
        dataset_root: data.root(),
        rows: data.len() as u64,
        features: 3,
        hidden: vec![6],
        classes: 2,
        learning_rate: 1 << 15,
        batch: 8,
        steps: 25,
        seed: 11,
        checkpoint_every: 10,
    }
}

/// Client `c` leases provider `p`'s machine for 200 blocks at 1,000 per block: lease 0.
fn lease(w: &mut World, c: &SecretKey, p: &SecretKey) {
    lease_as(w, c, p, 0);
}

/// As [`lease`], for the market's `order`-th order (and lease).
fn lease_as(w: &mut World, c: &SecretKey, p: &SecretKey, order: u64) {
    w.lease(c, p, order);
}

/// Every state of a run: `states[s]` is the parameters after step `s`. `cheat` adds 1 to the
/// first parameter after that step, as a provider that skimps would diverge.
fn run(spec: &TrainingSpec, data: &Dataset, cheat: Option<u64>) -> Vec<Vec<i32>> {
    let mut t = Trainer::new(spec).unwrap();
    let mut states = vec![t.params().to_vec()];
    for s in 1..=spec.steps {
        t.next_step(data).unwrap();
        let mut p = t.params().to_vec();
        if cheat == Some(s) {
            p[0] += 1;
            let h = hibana_train::state_hash(s, &p);
            t = Trainer::resume(spec, s, p.clone(), &h).unwrap();
        }
        states.push(p);
    }
    states
}

fn hashes(states: &[Vec<i32>]) -> Vec<Hash> {
    states
        .iter()
        .enumerate()
        .skip(1)
        .map(|(s, p)| hibana_train::state_hash(s as u64, p))
        .collect()
}

fn commit_all(w: &mut World, p: &SecretKey, job: u64, hashes: &[Hash], every: usize) {
    for (i, chunk) in hashes.chunks(every).enumerate() {
        w.ok(
            p,
            Message::CommitSteps(CommitSteps {
                job,
                after: (i * every) as u64,
                hashes: chunk.to_vec(),
            }),
        );
    }
}

fn dispute(data: &Dataset, spec: &TrainingSpec, states: &[Vec<i32>], step: u64) -> Message {
    Message::DisputeStep(DisputeStep {
        job: 0,
        step,
        params: states[step as usize - 1].clone(),
        rows: batch_indices(spec, step)
            .iter()
            .map(|&i| data.proven_row(i).unwrap())
            .collect(),
    })
}

/// A client, a provider and a challenger; lease 0 between the first two, and job 0 on it.
fn submitted() -> (
    World,
    SecretKey,
    SecretKey,
    SecretKey,
    Dataset,
    TrainingSpec,
) {
    let (c, p, v) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let mut w = World::new(&[&c, &p, &v], hib(100));
    lease(&mut w, &c, &p);
    let data = dataset();
    let spec = spec(&data);
    w.ok(
        &c,
        Message::SubmitJob(SubmitJob {
            lease: 0,
            spec: spec.clone(),
            with: vec![],
        }),
    );
    (w, c, p, v, data, spec)
}

#[test]
fn an_honest_job_survives_a_dispute_and_settles_pruning_its_hashes() {
    let (mut w, _, p, v, data, spec) = submitted();
    let states = run(&spec, &data, None);
    commit_all(&mut w, &p, 0, &hashes(&states), 10);
    let job = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(job.committed_steps, 25);
    assert_eq!(job.last_hash, hibana_train::state_hash(25, &states[25]));
    assert_eq!(market::checkpoint_hashes(&w.state, 0, 2).unwrap().len(), 5);

    // A wrong dispute costs the challenger its deposit, paid to the provider.
    let (v0, p0) = (w.balance(&addr(&v)), w.balance(&addr(&p)));
    w.ok(&v, dispute(&data, &spec, &states, 13));
    assert_eq!(
        w.balance(&addr(&v)).0,
        v0.0 - DISPUTE_DEPOSIT.0 - common::FEE
    );
    assert_eq!(w.balance(&addr(&p)).0, p0.0 + DISPUTE_DEPOSIT.0);
    assert_eq!(
        market::job(&w.state, 0).unwrap().unwrap().status,
        JobStatus::Done
    );

    // The window closes: the result stands and the hashes go.
    let until = job.dispute_until();
    assert_eq!(until, job.last_commit_at + DISPUTE_WINDOW_BLOCKS);
    w.idle(until - w.height);
    let job = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Settled);
    assert!(
        market::checkpoint_hashes(&w.state, 0, 0)
            .unwrap()
            .is_empty()
    );
    w.fails(&v, dispute(&data, &spec, &states, 2), "settled");
}

#[test]
fn a_provider_that_cheats_at_one_step_loses_the_dispute_on_that_step() {
    let (mut w, c, p, v, data, spec) = submitted();
    let cheat = run(&spec, &data, Some(14));
    commit_all(&mut w, &p, 0, &hashes(&cheat), 10);
    w.idle(5);

    // The challenger re-runs honestly; the first hash that differs is step 14's.
    let honest = run(&spec, &data, None);
    let first = hashes(&honest)
        .iter()
        .zip(hashes(&cheat))
        .position(|(a, b)| *a != b)
        .unwrap() as u64
        + 1;
    assert_eq!(first, 14);
    // A later step cannot be disputed from the honest state: the parameters must be the
    // provider's own.
    w.fails(
        &v,
        dispute(&data, &spec, &honest, 16),
        "dispute the first step",
    );

    let before = w.balances();
    let bal = |a: &SecretKey| before.iter().find(|(x, _)| *x == addr(a)).unwrap().1;
    let lease0 = market::lease(&w.state, 0).unwrap().unwrap();
    let escrow0 = lease0.escrow.0;
    w.ok(&v, dispute(&data, &spec, &honest, first));
    let job = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Refuted);
    assert_eq!(job.refuted_step, Some(14));
    let l = market::lease(&w.state, 0).unwrap().unwrap();
    assert_eq!(l.status, LeaseStatus::Closed);
    // Nothing more was paid for the lease: the escrow went back to the client.
    assert_eq!(l.paid, lease0.paid);
    let provider = market::provider(&w.state, &addr(&p)).unwrap().unwrap();
    assert_eq!(provider.bond.0, MIN_PROVIDER_BOND.0 - DISPUTE_SLASH.0);
    // The client gets the escrow and what the lease paid back (up to half the slash); the
    // challenger half the rest, and the other half is burned.
    let refund = l.paid.0.min(DISPUTE_SLASH.0 / 2);
    assert_eq!(w.balance(&addr(&c)).0, bal(&c).0 + escrow0 + refund);
    assert_eq!(
        w.balance(&addr(&v)).0,
        bal(&v).0 - common::FEE + (DISPUTE_SLASH.0 - refund) / 2
    );
    assert!(
        market::checkpoint_hashes(&w.state, 0, 1)
            .unwrap()
            .is_empty()
    );
    // What the market holds is the provider's bond and its bid deposit, now returned.
    assert_eq!(w.balance(&MARKET_ESCROW), provider.bond);
    w.fails(&v, dispute(&data, &spec, &honest, first), "refuted already");
}

#[test]
fn bad_job_messages_are_refused_with_a_reason() {
    let (c, p, v) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let mut w = World::new(&[&c, &p, &v], hib(100));
    lease(&mut w, &c, &p);
    let data = dataset();
    let spec = spec(&data);
    let submit = |spec: TrainingSpec| {
        Message::SubmitJob(SubmitJob {
            lease: 0,
            spec,
            with: vec![],
        })
    };
    w.fails(&v, submit(spec.clone()), "only its client submits jobs");
    w.fails(
        &c,
        submit(TrainingSpec {
            hidden: vec![500],
            ..spec.clone()
        }),
        "hidden layer",
    );
    w.fails(
        &c,
        Message::SubmitJob(SubmitJob {
            lease: 9,
            spec: spec.clone(),
            with: vec![],
        }),
        "does not exist",
    );
    w.ok(&c, submit(spec.clone()));
    w.fails(&c, submit(spec.clone()), "running job 0");

    let states = run(&spec, &data, None);
    let hs = hashes(&states);
    let commit_after = |after: u64, hashes: &[Hash]| {
        Message::CommitSteps(CommitSteps {
            job: 0,
            after,
            hashes: hashes.to_vec(),
        })
    };
    let commit = |hashes: &[Hash]| commit_after(0, hashes);
    w.fails(&v, commit(&hs[..10]), "trained by");
    w.fails(&p, commit(&hs[..9]), "10 step hashes at a time");
    w.fails(&p, commit(&[]), "1 to 1024");
    w.fails(
        &p,
        commit_after(10, &hs[..10]),
        "has 0 steps committed, not 10",
    );
    w.ok(&p, commit(&hs[..10]));
    // The same commit again (sent twice after a lost answer) is not taken as steps 11 to 20.
    w.fails(
        &p,
        commit(&hs[..10]),
        "has 10 steps committed, not 0: this commit is stale",
    );

    w.fails(&v, dispute(&data, &spec, &states, 11), "not among them");
    w.fails(&p, dispute(&data, &spec, &states, 4), "its own step");
    let mut wrong = dispute(&data, &spec, &states, 4);
    if let Message::DisputeStep(d) = &mut wrong {
        d.rows[2].label ^= 1;
    }
    w.fails(&v, wrong, "is not in dataset");
    let mut short = dispute(&data, &spec, &states, 4);
    if let Message::DisputeStep(d) = &mut short {
        d.params.pop();
    }
    w.fails(&v, short, "parameters");
    let mut first = dispute(&data, &spec, &states, 1);
    if let Message::DisputeStep(d) = &mut first {
        d.params[0] += 1;
    }
    w.fails(&v, first, "dispute the first step");
    // The initial parameters are agreed without any commitment: the spec names them.
    assert_eq!(
        hibana_train::state_hash(0, &init_params(&spec)),
        hibana_train::state_hash(0, &states[0])
    );
}

#[test]
fn a_moved_job_goes_on_with_another_provider_and_a_dispute_slashes_the_one_that_cheated() {
    let (c, p1, p2, v) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let mut w = World::new(&[&c, &p1, &p2, &v], hib(100));
    lease_as(&mut w, &c, &p1, 0);
    lease_as(&mut w, &c, &p2, 1);
    let data = dataset();
    let spec = spec(&data);
    w.ok(
        &c,
        Message::SubmitJob(SubmitJob {
            lease: 0,
            spec: spec.clone(),
            with: vec![],
        }),
    );
    // p1 cheats at step 4 and stops after its first checkpoint.
    let cheat = run(&spec, &data, Some(4));
    commit_all(&mut w, &p1, 0, &hashes(&cheat)[..10], 10);
    let move_to = |lease| {
        Message::MoveJob(MoveJob {
            job: 0,
            lease,
            replaces: None,
        })
    };
    w.fails(&v, move_to(1), "only its client moves it");
    w.fails(&c, move_to(0), "already");
    w.fails(&c, move_to(7), "does not exist");
    w.ok(&c, move_to(1));
    let j = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!((j.lease, j.provider, j.committed_steps), (1, addr(&p2), 10));
    assert_eq!(
        market::lease(&w.state, 0).unwrap().unwrap().status,
        LeaseStatus::Closed
    );
    assert_eq!(market::job_of_lease(&w.state, 1).unwrap(), Some(0));
    // The old provider can no longer commit; the new one goes on from step 10.
    let rest = hashes(&cheat)[10..20].to_vec();
    w.fails(
        &p1,
        Message::CommitSteps(CommitSteps {
            job: 0,
            after: 10,
            hashes: rest.clone(),
        }),
        "trained by",
    );
    w.ok(
        &p2,
        Message::CommitSteps(CommitSteps {
            job: 0,
            after: 10,
            hashes: rest,
        }),
    );
    let cp = market::checkpoint(&w.state, 0, 0).unwrap().unwrap();
    assert_eq!((cp.provider, cp.lease), (addr(&p1), 0));
    assert_eq!(
        market::checkpoint(&w.state, 0, 1)
            .unwrap()
            .unwrap()
            .provider,
        addr(&p2)
    );

    // The dispute of step 4 slashes p1, who committed it; p2 keeps its bond and its lease.
    let honest = run(&spec, &data, None);
    w.ok(&v, dispute(&data, &spec, &honest, 4));
    let bond = |k: &SecretKey| market::provider(&w.state, &addr(k)).unwrap().unwrap().bond;
    assert_eq!(bond(&p1).0, MIN_PROVIDER_BOND.0 - DISPUTE_SLASH.0);
    assert_eq!(bond(&p2), MIN_PROVIDER_BOND);
    assert_eq!(
        market::job(&w.state, 0).unwrap().unwrap().status,
        JobStatus::Refuted
    );
    assert_eq!(
        market::lease(&w.state, 1).unwrap().unwrap().status,
        LeaseStatus::Active
    );
}

#[derive(Debug, Clone)]
enum JobAction {
    /// The job's current provider commits its next checkpoint.
    Commit,
    /// The client moves the job to the other lease.
    Move,
    /// The challenger disputes a step, carrying the parameters of the honest run (`true`) or
    /// of the provider's run.
    Dispute {
        step: u64,
        honest: bool,
    },
    /// Either side closes the lease the job runs on.
    CloseLease,
    Idle(u64),
}

fn job_action() -> impl Strategy<Value = JobAction> {
    prop_oneof![
        5 => Just(JobAction::Commit),
        1 => Just(JobAction::Move),
        3 => (1u64..=25, any::<bool>()).prop_map(|(step, honest)| JobAction::Dispute { step, honest }),
        1 => Just(JobAction::CloseLease),
        1 => (1u64..30).prop_map(JobAction::Idle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the order of commits, moves, disputes and closes: the supply never changes, a
    /// job is refuted only at the one wrong step, and then exactly the provider that committed
    /// it loses exactly the slash.
    #[test]
    fn jobs_conserve_supply_and_only_the_wrong_step_is_refuted(
        wrong in 1u64..=25,
        actions in proptest::collection::vec(job_action(), 1..40),
    ) {
        let (c, p1, p2, v) = (SecretKey::generate(), SecretKey::generate(), SecretKey::generate(), SecretKey::generate());
        let mut w = World::new(&[&c, &p1, &p2, &v], hib(100));
        lease_as(&mut w, &c, &p1, 0);
        lease_as(&mut w, &c, &p2, 1);
        let data = dataset();
        let spec = spec(&data);
        w.ok(&c, Message::SubmitJob(SubmitJob { lease: 0, spec: spec.clone(), with: vec![] }));
        let cheat = run(&spec, &data, Some(wrong));
        let honest = run(&spec, &data, None);
        let cheat_hashes = hashes(&cheat);
        let supply = bank::total_supply(&w.state).unwrap();
        let mut committer_of_wrong = None;
        for a in actions {
            let j = market::job(&w.state, 0).unwrap().unwrap();
            let current = if j.provider == addr(&p1) { &p1 } else { &p2 };
            match a {
                JobAction::Commit => {
                    let from = j.committed_steps as usize;
                    let to = (from + 10).min(25);
                    if from < 25 {
                        let outcome = w.block(vec![(current, Message::CommitSteps(CommitSteps {
                            job: 0,
                            after: from as u64,
                            hashes: cheat_hashes[from..to].to_vec(),
                        }))]).remove(0);
                        if outcome == hibana_types::TxOutcome::Success && (from as u64) < wrong && wrong <= to as u64 {
                            committer_of_wrong = Some(j.provider);
                        }
                    }
                }
                JobAction::Move => {
                    let to = 1 - j.lease.min(1);
                    w.block(vec![(&c, Message::MoveJob(MoveJob { job: 0, lease: to, replaces: None }))]);
                }
                JobAction::Dispute { step, honest: h } => {
                    let states = if h { &honest } else { &cheat };
                    w.block(vec![(&v, dispute(&data, &spec, states, step))]);
                }
                JobAction::CloseLease => {
                    w.block(vec![(&c, Message::CloseLease(hibana_types::CloseLease { lease: j.lease }))]);
                }
                JobAction::Idle(n) => w.idle(n),
            }
            prop_assert!(burned_as_refuted(&w, supply), "the supply changed otherwise");
        }
        let j = market::job(&w.state, 0).unwrap().unwrap();
        let bond = |k: &SecretKey| market::provider(&w.state, &addr(k)).unwrap().unwrap().bond.0;
        if j.status == JobStatus::Refuted {
            prop_assert_eq!(j.refuted_step, Some(wrong));
            let slashed = committer_of_wrong.expect("a refuted step was committed");
            for k in [&p1, &p2] {
                let want = if addr(k) == slashed { MIN_PROVIDER_BOND.0 - DISPUTE_SLASH.0 } else { MIN_PROVIDER_BOND.0 };
                prop_assert_eq!(bond(k), want);
            }
        } else {
            prop_assert_eq!(bond(&p1), MIN_PROVIDER_BOND.0);
            prop_assert_eq!(bond(&p2), MIN_PROVIDER_BOND.0);
        }
    }
}

/// Whether the supply is `supply` while job 0 stands, and once it is refuted, `supply` less
/// what its slash burned: half of what was left once the client got back what the cheat's
/// lease (0 or 1) paid, up to half the slash.
fn burned_as_refuted(w: &World, supply: Amount) -> bool {
    let now = bank::total_supply(&w.state).unwrap().0;
    if market::job(&w.state, 0).unwrap().unwrap().status != JobStatus::Refuted {
        return now == supply.0;
    }
    [0, 1].iter().any(|&l| {
        let paid =
            market::lease(&w.state, l).map_or(u128::MAX, |l| l.map_or(u128::MAX, |l| l.paid.0));
        let rest = DISPUTE_SLASH.0 - paid.min(DISPUTE_SLASH.0 / 2);
        now + (rest - rest / 2) == supply.0
    })
}

/// A client, two providers and a challenger; leases 0 (first provider) and 1 (second), and a
/// data-parallel job 0 on both: 20 steps, 5 local steps a round, so 2 rounds.
fn parallel() -> (
    World,
    [SecretKey; 4],
    Dataset,
    TrainingSpec,
    hibana_train::diloco::Plan,
) {
    let keys = [
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    ];
    let [c, p1, p2, v] = &keys;
    let mut w = World::new(&[c, p1, p2, v], hib(100));
    lease_as(&mut w, c, p1, 0);
    lease_as(&mut w, c, p2, 1);
    let data = dataset();
    let spec = TrainingSpec {
        steps: 20,
        checkpoint_every: 5,
        ..spec(&data)
    };
    let submit = |spec: &TrainingSpec, lease: u64, with: Vec<u64>| {
        Message::SubmitJob(SubmitJob {
            lease,
            spec: spec.clone(),
            with,
        })
    };
    w.fails(c, submit(&spec, 0, vec![0]), "named twice");
    w.fails(
        c,
        submit(
            &TrainingSpec {
                steps: 25,
                ..spec.clone()
            },
            0,
            vec![1],
        ),
        "whole rounds",
    );
    w.fails(c, submit(&spec, 0, vec![1, 2, 3, 4]), "at most 4 leases");
    w.fails(v, submit(&spec, 0, vec![1]), "only its client");
    w.ok(c, submit(&spec, 0, vec![1]));
    let job = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!(job.workers(), 2);
    assert_eq!(market::job_of_lease(&w.state, 1).unwrap(), Some(0));
    let plan = hibana_train::diloco::Plan {
        workers: 2,
        local_steps: 5,
    };
    (w, keys, data, spec, plan)
}

/// Worker `k`'s honest round from `start`: its parameters and step hashes.
fn part(
    spec: &TrainingSpec,
    data: &Dataset,
    plan: &hibana_train::diloco::Plan,
    start: &[i32],
    round: u64,
    k: u32,
) -> (Vec<i32>, Vec<Hash>) {
    hibana_train::diloco::worker_round_hashes(spec, data, plan, start, round, k).unwrap()
}

fn commit_round(after: u64, hashes: &[Hash]) -> Message {
    Message::CommitSteps(CommitSteps {
        job: 0,
        after,
        hashes: hashes.to_vec(),
    })
}

fn average_msg(round: u64, hash: Hash) -> Message {
    Message::CommitAverage(hibana_types::CommitAverage {
        job: 0,
        round,
        hash,
    })
}

#[test]
fn a_data_parallel_job_averages_rounds_and_a_wrong_average_loses_its_dispute() {
    let (mut w, [_, p1, p2, v], data, spec, plan) = parallel();
    let start = init_params(&spec);
    let (a0, ha0) = part(&spec, &data, &plan, &start, 0, 0);
    let (b0, hb0) = part(&spec, &data, &plan, &start, 0, 1);
    let m = commit_round(0, &ha0);
    w.ok(&p1, m.clone());
    w.fails(&p1, m, "committed round 0 already");
    w.fails(&p1, average_msg(0, Hash::default()), "worker 1");
    let m = commit_round(0, &hb0[..4]);
    w.fails(&p2, m, "5 step hashes a round");
    w.ok(&p2, commit_round(0, &hb0));
    // Each worker's steps are stored by global step: worker 1's second local step is step 4.
    let job = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!(market::step_hash(&w.state, &job, 4).unwrap(), Some(hb0[1]));
    assert_eq!(job.committed_steps, 0);
    let avg0 = hibana_train::diloco::average(&[a0.clone(), b0.clone()]).unwrap();
    let h0 = hibana_train::state_hash(10, &avg0);
    w.fails(&v, average_msg(0, h0), "trained by");
    w.ok(&p2, average_msg(0, h0));
    w.fails(&p1, average_msg(0, h0), "stale");
    let job = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!((job.committed_steps, job.last_hash), (10, h0));

    // Round 1 starts from the average; the second provider commits a wrong average of it.
    let (a1, ha1) = part(&spec, &data, &plan, &avg0, 1, 0);
    let (b1, hb1) = part(&spec, &data, &plan, &avg0, 1, 1);
    w.ok(&p1, commit_round(10, &ha1));
    w.ok(&p2, commit_round(10, &hb1));
    let mut wrong = hibana_train::diloco::average(&[a1.clone(), b1.clone()]).unwrap();
    wrong[0] += 1;
    w.ok(&p2, average_msg(1, hibana_train::state_hash(20, &wrong)));
    assert_eq!(
        market::job(&w.state, 0).unwrap().unwrap().status,
        JobStatus::Done
    );

    // A right step of round 1, disputed from the committed average, costs the deposit.
    let p1_before = w.balance(&addr(&p1));
    w.ok(
        &v,
        Message::DisputeStep(DisputeStep {
            job: 0,
            step: 11,
            params: avg0.clone(),
            rows: batch_indices(&spec, 11)
                .iter()
                .map(|&i| data.proven_row(i).unwrap())
                .collect(),
        }),
    );
    assert_eq!(w.balance(&addr(&p1)).0, p1_before.0 + DISPUTE_DEPOSIT.0);
    let dispute = |parts: Vec<Vec<i32>>| {
        Message::DisputeAverage(hibana_types::DisputeAverage {
            job: 0,
            round: 1,
            parts,
        })
    };
    w.fails(
        &v,
        dispute(vec![a1.clone(), a1.clone()]),
        "part 1 hashes to",
    );
    w.fails(&v, dispute(vec![a1.clone()]), "2 workers");
    w.fails(
        &p2,
        dispute(vec![a1.clone(), b1.clone()]),
        "its own average",
    );
    let escrow = w.balance(&MARKET_ESCROW);
    w.ok(&v, dispute(vec![a1.clone(), b1.clone()]));
    let job = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Refuted);
    assert_eq!(job.refuted_step, Some(20));
    let bond = market::provider(&w.state, &addr(&p2))
        .unwrap()
        .unwrap()
        .bond;
    assert_eq!(bond.0, MIN_PROVIDER_BOND.0 - DISPUTE_SLASH.0);
    assert_eq!(
        market::lease(&w.state, 1).unwrap().unwrap().status,
        LeaseStatus::Closed
    );
    assert!(w.balance(&MARKET_ESCROW).0 < escrow.0);
    // Every hash of the job is gone, averages included.
    for index in 0..job.checkpoint_indexes() {
        assert!(
            market::checkpoint_hashes(&w.state, 0, index)
                .unwrap()
                .is_empty()
        );
    }
}

#[test]
fn a_worker_that_cheats_at_a_local_step_loses_the_dispute_on_that_step() {
    let (mut w, [_, p1, p2, v], data, spec, plan) = parallel();
    let start = init_params(&spec);
    let (a0, ha0) = part(&spec, &data, &plan, &start, 0, 0);
    let (b0, hb0) = part(&spec, &data, &plan, &start, 0, 1);
    for (p, h) in [(&p1, &ha0), (&p2, &hb0)] {
        w.ok(p, commit_round(0, h));
    }
    let avg0 = hibana_train::diloco::average(&[a0, b0]).unwrap();
    w.ok(&p1, average_msg(0, hibana_train::state_hash(10, &avg0)));
    // In round 1 the second worker skews its third local step (global step 16) and goes on.
    let global = hibana_train::diloco::global_step(&plan, 1, 2, 1);
    assert_eq!(global, 16);
    let mut params = avg0.clone();
    let mut hashes = Vec::new();
    let mut before_cheat = Vec::new();
    for local in 0..5 {
        let g = hibana_train::diloco::global_step(&plan, 1, local, 1);
        let rows: Vec<Row> = batch_indices(&spec, g)
            .iter()
            .map(|&i| data.rows()[i as usize].clone())
            .collect();
        let refs: Vec<&Row> = rows.iter().collect();
        if g == global {
            before_cheat = params.clone();
        }
        params = hibana_train::step(&spec, &params, &refs).unwrap();
        if g == global {
            params[0] += 1;
        }
        hashes.push(hibana_train::state_hash(g, &params));
    }
    w.ok(&p2, commit_round(10, &hashes));
    let disputed = |step: u64, params: Vec<i32>| {
        Message::DisputeStep(DisputeStep {
            job: 0,
            step,
            params,
            rows: batch_indices(&spec, step)
                .iter()
                .map(|&i| data.proven_row(i).unwrap())
                .collect(),
        })
    };
    // Step 17 is the first worker's, not committed yet.
    w.fails(&v, disputed(17, before_cheat.clone()), "no committed hash");
    // The parameters must be the worker's own state after its previous local step (step 14).
    w.fails(&v, disputed(16, avg0.clone()), "after step 14");
    w.ok(&v, disputed(16, before_cheat));
    let job = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Refuted);
    assert_eq!(job.refuted_step, Some(16));
    assert_eq!(
        market::lease(&w.state, 1).unwrap().unwrap().status,
        LeaseStatus::Closed
    );
    assert_eq!(
        market::lease(&w.state, 0).unwrap().unwrap().status,
        LeaseStatus::Active
    );
    let bond = market::provider(&w.state, &addr(&p2))
        .unwrap()
        .unwrap()
        .bond;
    assert_eq!(bond.0, MIN_PROVIDER_BOND.0 - DISPUTE_SLASH.0);
}

/// One worker's round as committed: the state before each local step and after the last, and
/// the step hashes.
#[derive(Clone)]
struct Round {
    states: Vec<Vec<i32>>,
    hashes: Vec<Hash>,
}

/// Worker `k`'s round `round` from `start`, skewed after global step `skew` if given.
fn round_of(
    spec: &TrainingSpec,
    data: &Dataset,
    plan: &hibana_train::diloco::Plan,
    start: &[i32],
    round: u64,
    k: u32,
    skew: Option<u64>,
) -> Round {
    let mut states = vec![start.to_vec()];
    let mut hashes = Vec::new();
    for local in 0..plan.local_steps {
        let g = hibana_train::diloco::global_step(plan, round, local, k);
        let rows: Vec<&Row> = batch_indices(spec, g)
            .iter()
            .map(|&i| &data.rows()[i as usize])
            .collect();
        let mut next = hibana_train::step(spec, states.last().unwrap(), &rows).unwrap();
        if skew == Some(g) {
            next[0] += 1;
        }
        hashes.push(hibana_train::state_hash(g, &next));
        states.push(next);
    }
    Round { states, hashes }
}

#[derive(Debug, Clone)]
enum ParallelAction {
    /// Worker `k` commits its round; the second worker may cheat at its third local step.
    Commit {
        k: u32,
        cheat: bool,
    },
    /// Worker `k` commits the round's average; the second worker's may be off by one.
    Average {
        k: u32,
        wrong: bool,
    },
    /// The challenger disputes a step with the parameters of the run that was committed.
    DisputeStep(u64),
    /// The challenger disputes a round's average with the committed parts.
    DisputeAverage(u64),
    /// The client closes worker `k`'s lease.
    CloseLease(u32),
    Idle(u64),
}

fn parallel_action() -> impl Strategy<Value = ParallelAction> {
    prop_oneof![
        5 => (0u32..2, any::<bool>()).prop_map(|(k, cheat)| ParallelAction::Commit { k, cheat }),
        3 => (0u32..2, any::<bool>()).prop_map(|(k, wrong)| ParallelAction::Average { k, wrong }),
        2 => prop_oneof![Just(6u64), Just(16), 1u64..=20].prop_map(ParallelAction::DisputeStep),
        2 => (0u64..2).prop_map(ParallelAction::DisputeAverage),
        1 => (0u32..2).prop_map(ParallelAction::CloseLease),
        1 => (1u64..30).prop_map(ParallelAction::Idle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever the order of rounds, averages, disputes and closes in a data-parallel job where
    /// only the second provider may cheat: the supply never changes, the honest provider never
    /// loses bond, and a refuted job slashed the cheat once.
    #[test]
    fn data_parallel_jobs_conserve_supply_and_only_the_cheat_is_slashed(
        actions in proptest::collection::vec(parallel_action(), 1..40),
    ) {
        let (mut w, [c, p1, p2, v], data, spec, plan) = parallel();
        let supply = bank::total_supply(&w.state).unwrap();
        let workers = [&p1, &p2];
        // What each worker committed in each round (None: nothing yet).
        let mut committed: Vec<[Option<Round>; 2]> = vec![[None, None], [None, None]];
        let mut averages: Vec<Option<Vec<i32>>> = vec![None, None];
        for a in actions {
            let j = market::job(&w.state, 0).unwrap().unwrap();
            let round = (j.committed_steps / 10).min(1);
            let start = if round == 0 {
                init_params(&spec)
            } else {
                averages[0].clone().unwrap_or_else(|| init_params(&spec))
            };
            let part = |r: &Option<Round>| r.as_ref().map(|r| r.states.last().unwrap().clone());
            match a {
                ParallelAction::Commit { k, cheat } => {
                    let skew = (k == 1 && cheat).then_some(round * 10 + 6);
                    let r = round_of(&spec, &data, &plan, &start, round, k, skew);
                    let m = commit_round(round * 10, &r.hashes);
                    if w.block(vec![(workers[k as usize], m)]).remove(0) == hibana_types::TxOutcome::Success {
                        committed[round as usize][k as usize] = Some(r);
                    }
                }
                ParallelAction::Average { k, wrong } => {
                    let parts: Option<Vec<Vec<i32>>> = committed[round as usize].iter().map(part).collect();
                    if let Some(parts) = parts {
                        let mut avg = hibana_train::diloco::average(&parts).unwrap();
                        if k == 1 && wrong {
                            avg[0] += 1;
                        }
                        let h = hibana_train::state_hash((round + 1) * 10, &avg);
                        if w.block(vec![(workers[k as usize], average_msg(round, h))]).remove(0) == hibana_types::TxOutcome::Success {
                            averages[round as usize] = Some(avg);
                        }
                    }
                }
                ParallelAction::DisputeStep(g) => {
                    let (r, s, k) = hibana_train::diloco::locate(&plan, g).unwrap();
                    if let Some(run) = &committed[r as usize][k as usize] {
                        w.block(vec![(&v, Message::DisputeStep(DisputeStep {
                            job: 0,
                            step: g,
                            params: run.states[s as usize].clone(),
                            rows: batch_indices(&spec, g).iter().map(|&i| data.proven_row(i).unwrap()).collect(),
                        }))]);
                    }
                }
                ParallelAction::DisputeAverage(r) => {
                    let parts: Option<Vec<Vec<i32>>> = committed[r as usize].iter().map(part).collect();
                    if let Some(parts) = parts {
                        w.block(vec![(&v, Message::DisputeAverage(hibana_types::DisputeAverage { job: 0, round: r, parts }))]);
                    }
                }
                ParallelAction::CloseLease(k) => {
                    w.block(vec![(&c, Message::CloseLease(hibana_types::CloseLease { lease: u64::from(k) }))]);
                }
                ParallelAction::Idle(n) => w.idle(n),
            }
            prop_assert!(burned_as_refuted(&w, supply), "the supply changed otherwise");
            let bond = |k: &SecretKey| market::provider(&w.state, &addr(k)).unwrap().unwrap().bond.0;
            prop_assert_eq!(bond(&p1), MIN_PROVIDER_BOND.0);
            let j = market::job(&w.state, 0).unwrap().unwrap();
            if j.status == JobStatus::Refuted {
                prop_assert_eq!(bond(&p2), MIN_PROVIDER_BOND.0 - DISPUTE_SLASH.0);
            } else {
                prop_assert_eq!(bond(&p2), MIN_PROVIDER_BOND.0);
            }
        }
    }
}

#[test]
fn hostile_rounds_and_steps_are_refused_and_a_stuck_job_frees_its_leases() {
    let (mut w, [c, _, _, v], _, spec, _) = parallel();
    w.fails(
        &v,
        Message::DisputeAverage(hibana_types::DisputeAverage {
            job: 0,
            round: u64::MAX,
            parts: vec![vec![0; 26], vec![0; 26]],
        }),
        "rounds 0 to 1",
    );
    for step in [21, u64::MAX] {
        w.fails(
            &v,
            Message::DisputeStep(DisputeStep {
                job: 0,
                step,
                params: init_params(&spec),
                rows: Vec::new(),
            }),
            "no committed hash",
        );
    }
    // The running job holds both leases; once one closes it can never finish, and the other
    // lease takes a new job.
    let single = |lease| {
        Message::SubmitJob(SubmitJob {
            lease,
            spec: spec.clone(),
            with: vec![],
        })
    };
    w.fails(&c, single(0), "running job 0 still");
    w.ok(
        &c,
        Message::CloseLease(hibana_types::CloseLease { lease: 1 }),
    );
    w.ok(&c, single(0));
    assert_eq!(market::job_of_lease(&w.state, 0).unwrap(), Some(1));
}

#[test]
fn a_worker_of_a_data_parallel_job_moves_to_another_provider_mid_job() {
    let (mut w, [c, p1, p2, _], data, spec, plan) = parallel();
    let p3 = SecretKey::generate();
    w.ok(
        &c,
        Message::Transfer(hibana_types::Transfer {
            to: addr(&p3),
            amount: hib(50),
        }),
    );
    lease_as(&mut w, &c, &p3, 2);
    let start = init_params(&spec);
    let (a0, ha0) = part(&spec, &data, &plan, &start, 0, 0);
    let (b0, hb0) = part(&spec, &data, &plan, &start, 0, 1);
    w.ok(&p1, commit_round(0, &ha0));
    w.ok(&p2, commit_round(0, &hb0));
    // The second provider stops; its worker moves to lease 2 (the third provider).
    let moving = |lease, replaces| {
        Message::MoveJob(MoveJob {
            job: 0,
            lease,
            replaces,
        })
    };
    w.fails(&c, moving(2, None), "name the worker's lease");
    w.fails(&c, moving(2, Some(7)), "not one of job 0's leases");
    w.fails(&c, moving(0, Some(1)), "runs on lease 0 already");
    w.ok(&c, moving(2, Some(1)));
    let job = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!(job.worker_of(&addr(&p3)), Some(1));
    assert_eq!(job.worker_of(&addr(&p2)), None);
    assert_eq!(
        market::lease(&w.state, 1).unwrap().unwrap().status,
        LeaseStatus::Closed
    );
    // The round's commits stand; the new worker averages them and trains the next round.
    let avg0 = hibana_train::diloco::average(&[a0, b0.clone()]).unwrap();
    let h0 = hibana_train::state_hash(10, &avg0);
    w.fails(&p2, average_msg(0, h0), "trained by");
    w.ok(&p3, average_msg(0, h0));
    let (_, hb1) = part(&spec, &data, &plan, &avg0, 1, 1);
    w.fails(&p2, commit_round(10, &hb1), "trained by");
    w.ok(&p3, commit_round(10, &hb1));
    // A dispute of the moved worker's round-0 step still slashes the provider that made it
    // (here a right step, so the challenger's deposit goes to that provider).
    let p2_before = w.balance(&addr(&p2));
    w.ok(
        &c,
        Message::DisputeStep(DisputeStep {
            job: 0,
            step: 2,
            params: init_params(&spec),
            rows: batch_indices(&spec, 2)
                .iter()
                .map(|&i| data.proven_row(i).unwrap())
                .collect(),
        }),
    );
    assert_eq!(w.balance(&addr(&p2)).0, p2_before.0 + DISPUTE_DEPOSIT.0);
}

#[test]
fn a_provider_cannot_leave_with_its_bond_while_its_steps_can_be_disputed() {
    let (mut w, _, p, _, data, spec) = submitted();
    let states = run(&spec, &data, None);
    commit_all(&mut w, &p, 0, &hashes(&states), 10);
    w.ok(
        &p,
        Message::CloseLease(hibana_types::CloseLease { lease: 0 }),
    );
    let leave = || Message::DeregisterProvider(hibana_types::DeregisterProvider {});
    w.fails(&p, leave(), "training job 0, which can be disputed until");
    let job = market::job(&w.state, 0).unwrap().unwrap();
    w.idle(job.dispute_until() + 1 - w.height);
    assert_eq!(
        market::job(&w.state, 0).unwrap().unwrap().status,
        JobStatus::Settled
    );
    w.ok(&p, leave());
}

#[test]
fn worker_0_of_a_data_parallel_job_moves_too() {
    let (mut w, [c, p1, p2, _], data, spec, plan) = parallel();
    let p3 = SecretKey::generate();
    w.ok(
        &c,
        Message::Transfer(hibana_types::Transfer {
            to: addr(&p3),
            amount: hib(50),
        }),
    );
    lease_as(&mut w, &c, &p3, 2);
    let start = init_params(&spec);
    let (a0, ha0) = part(&spec, &data, &plan, &start, 0, 0);
    let (b0, hb0) = part(&spec, &data, &plan, &start, 0, 1);
    w.ok(&p1, commit_round(0, &ha0));
    w.ok(
        &c,
        Message::MoveJob(MoveJob {
            job: 0,
            lease: 2,
            replaces: Some(0),
        }),
    );
    let job = market::job(&w.state, 0).unwrap().unwrap();
    assert_eq!((job.lease, job.provider), (2, addr(&p3)));
    assert_eq!(job.worker_of(&addr(&p1)), None);
    // Worker 0's round is committed already (by the first provider); the new one averages.
    w.fails(&p3, commit_round(0, &ha0), "committed round 0 already");
    w.ok(&p2, commit_round(0, &hb0));
    let avg0 = hibana_train::diloco::average(&[a0, b0]).unwrap();
    w.ok(&p3, average_msg(0, hibana_train::state_hash(10, &avg0)));
    assert_eq!(
        market::job(&w.state, 0).unwrap().unwrap().committed_steps,
        10
    );
}
