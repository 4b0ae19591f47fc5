//! Property and scenario tests of the Yuma epoch as a pure function.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::subnets::epoch::{EpochNeuron, EpochOutput, EpochParams, ONE, apportion, run};
use proptest::prelude::*;

fn params(emission: u128) -> EpochParams {
    EpochParams {
        height: 1_000,
        kappa: ONE / 2,
        max_validators: 64,
        activity_cutoff: 5_000,
        bonds_moving_average: ONE / 10 * 9,
        emission,
        owner_cut: ONE / 100 * 18,
    }
}

fn miner() -> EpochNeuron {
    EpochNeuron {
        stake: 0,
        validator: false,
        registered_at: 0,
        weights: None,
        bonds: Vec::new(),
    }
}

fn validator(stake: u128, weights: Vec<(u16, u32)>) -> EpochNeuron {
    EpochNeuron {
        stake,
        validator: true,
        registered_at: 0,
        weights: Some((weights, 990)),
        bonds: Vec::new(),
    }
}

/// Weights in parts per million summing to exactly one million, from raw positive numbers.
fn ppm(uids: &[u16], raw: &[u32]) -> Vec<(u16, u32)> {
    let parts = apportion(
        1_000_000,
        &raw.iter().map(|&r| r as u64).collect::<Vec<_>>(),
    );
    uids.iter()
        .zip(parts)
        .filter(|(_, p)| *p > 0)
        .map(|(&u, p)| (u, p as u32))
        .collect()
}

/// A random subnet: `m` miners first, then validators with random stake and weights.
fn subnet_strategy() -> impl Strategy<Value = Vec<EpochNeuron>> {
    (1usize..12, 1usize..10).prop_flat_map(|(m, v)| {
        let validators = prop::collection::vec(
            (
                1u128..1_000_000_000_000,
                prop::collection::vec(0u32..1000, m),
                any::<bool>(),
            ),
            v,
        );
        validators.prop_map(move |vals| {
            let mut neurons: Vec<EpochNeuron> = (0..m).map(|_| miner()).collect();
            let uids: Vec<u16> = (0..m as u16).collect();
            for (stake, raw, revealed) in vals {
                let w = ppm(&uids, &raw);
                neurons.push(if revealed && !w.is_empty() {
                    validator(stake, w)
                } else {
                    EpochNeuron {
                        weights: None,
                        ..validator(stake, Vec::new())
                    }
                });
            }
            neurons
        })
    })
}

fn sum(v: &[u64]) -> u128 {
    v.iter().map(|&x| x as u128).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Emission per tempo is exactly the configured amount whenever a miner earned incentive,
    /// incentive and dividends each sum to one (up to rounding) and go to the right roles.
    #[test]
    fn emission_is_exact_and_shares_sum(neurons in subnet_strategy(), emission in 0u128..10_000_000_000_000) {
        let out = run(&params(emission), &neurons);
        let paid: u128 = out.emission.iter().sum::<u128>() + out.owner_emission;
        let n = neurons.len() as u128;
        if out.incentive.iter().any(|&i| i > 0) {
            prop_assert_eq!(paid, emission);
            prop_assert!(sum(&out.incentive) <= ONE as u128 && sum(&out.incentive) + n >= ONE as u128);
            prop_assert!(sum(&out.dividends) <= ONE as u128 && sum(&out.dividends) + n >= ONE as u128);
        } else {
            prop_assert_eq!(paid, 0);
        }
        for (k, neuron) in neurons.iter().enumerate() {
            if neuron.validator {
                prop_assert_eq!(out.incentive[k], 0);
            } else {
                prop_assert_eq!(out.dividends[k], 0);
            }
            prop_assert!(out.validator_trust[k] <= ONE);
            prop_assert!(out.trust[k] <= ONE);
        }
    }

    /// A coalition holding less than kappa of the stake cannot move consensus away from what
    /// an honest majority that agrees gives each miner, whatever weights the coalition sets.
    #[test]
    fn minority_cannot_raise_consensus(
        honest_raw in prop::collection::vec(1u32..1000, 6),
        honest_stakes in prop::collection::vec(100u128..1000, 1..5),
        coalition in prop::collection::vec((1u128..60, prop::collection::vec(0u32..1000, 6)), 1..5),
    ) {
        let uids: Vec<u16> = (0..6).collect();
        let honest = ppm(&uids, &honest_raw);
        let mut neurons: Vec<EpochNeuron> = (0..6).map(|_| miner()).collect();
        let honest_total: u128 = honest_stakes.iter().sum();
        for &s in &honest_stakes {
            neurons.push(validator(s, honest.clone()));
        }
        // Keep the coalition's stake below 40% of the total.
        let coalition_total: u128 = coalition.iter().map(|c| c.0).sum();
        let scale = (honest_total * 2 / 3).max(1);
        for (s, raw) in &coalition {
            let stake = (s * scale / coalition_total.max(1)).max(1);
            let w = ppm(&uids, raw);
            if !w.is_empty() {
                neurons.push(validator(stake, w));
            }
        }
        let out = run(&params(1_000_000), &neurons);
        for &(uid, w) in &honest {
            prop_assert_eq!(out.consensus[uid as usize], w as u64 * 1_000);
        }
        for uid in 0..6u16 {
            if !honest.iter().any(|&(u, _)| u == uid) {
                prop_assert_eq!(out.consensus[uid as usize], 0);
                prop_assert_eq!(out.incentive[uid as usize], 0);
            }
        }
    }

    /// Permuting the neurons permutes every result.
    #[test]
    fn permutation_permutes_results(neurons in subnet_strategy(), seed in any::<u64>()) {
        let n = neurons.len();
        // Distinct stakes so that permits do not depend on the order of equal stakes.
        let neurons: Vec<EpochNeuron> = neurons
            .into_iter()
            .enumerate()
            .map(|(k, mut x)| { if x.validator { x.stake = x.stake * 64 + k as u128; } x })
            .collect();
        let mut perm: Vec<usize> = (0..n).collect();
        let mut state = seed | 1;
        for i in (1..n).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            perm.swap(i, (state % (i as u64 + 1)) as usize);
        }
        // perm[new] = old; inverse[old] = new.
        let mut inverse = vec![0u16; n];
        for (new, &old) in perm.iter().enumerate() {
            inverse[old] = new as u16;
        }
        let remap = |w: &Vec<(u16, u32)>| {
            let mut w: Vec<(u16, u32)> = w.iter().map(|&(u, x)| (inverse[u as usize], x)).collect();
            w.sort_unstable();
            w
        };
        let permuted: Vec<EpochNeuron> = perm
            .iter()
            .map(|&old| {
                let x = &neurons[old];
                EpochNeuron {
                    weights: x.weights.as_ref().map(|(w, at)| (remap(w), *at)),
                    ..x.clone()
                }
            })
            .collect();
        let a = run(&params(1_000_000_007), &neurons);
        let b = run(&params(1_000_000_007), &permuted);
        let pick = |v: &Vec<u64>| perm.iter().map(|&old| v[old]).collect::<Vec<u64>>();
        prop_assert_eq!(pick(&a.consensus), b.consensus.clone());
        prop_assert_eq!(pick(&a.incentive), b.incentive.clone());
        prop_assert_eq!(pick(&a.dividends), b.dividends.clone());
        prop_assert_eq!(pick(&a.validator_trust), b.validator_trust.clone());
        prop_assert_eq!(pick(&a.rank), b.rank.clone());
        // Largest-remainder rounding breaks ties by position: at most one token apart.
        for (new, &old) in perm.iter().enumerate() {
            prop_assert!(a.emission[old].abs_diff(b.emission[new]) <= 1);
        }
        prop_assert_eq!(a.emission.iter().sum::<u128>(), b.emission.iter().sum::<u128>());
    }

    /// The epoch never panics, whatever the weights and bonds refer to.
    #[test]
    fn arbitrary_weights_never_panic(
        n in 1usize..20,
        raw in prop::collection::vec((any::<bool>(), 0u128..u128::MAX / 4, prop::collection::vec((any::<u16>(), any::<u32>()), 0..8), prop::collection::vec((any::<u16>(), any::<u64>()), 0..8)), 1..20),
        emission in any::<u64>(),
    ) {
        let neurons: Vec<EpochNeuron> = raw
            .into_iter()
            .take(n)
            .map(|(v, stake, w, b)| EpochNeuron {
                stake,
                validator: v,
                registered_at: 0,
                weights: Some((w, 1_000)),
                bonds: b,
            })
            .collect();
        let out = run(&params(emission as u128), &neurons);
        prop_assert!(out.emission.iter().sum::<u128>() + out.owner_emission <= emission as u128);
    }
}

fn total_dividends(outs: &[EpochOutput], k: usize) -> u128 {
    outs.iter().map(|o| o.emission[k]).sum()
}

/// Runs `epochs` epochs, carrying bonds, with weights from `weights_at(epoch, validator)`.
fn simulate(
    stakes: &[u128],
    miners: usize,
    epochs: usize,
    weights_at: impl Fn(usize, usize) -> Vec<(u16, u32)>,
) -> Vec<EpochOutput> {
    let mut bonds: Vec<Vec<(u16, u64)>> = vec![Vec::new(); stakes.len()];
    let mut outs = Vec::new();
    for e in 0..epochs {
        let mut neurons: Vec<EpochNeuron> = (0..miners).map(|_| miner()).collect();
        for (v, &stake) in stakes.iter().enumerate() {
            neurons.push(EpochNeuron {
                bonds: bonds[v].clone(),
                ..validator(stake, weights_at(e, v))
            });
        }
        let out = run(&params(1_000_000_000), &neurons);
        bonds.clone_from_slice(&out.bonds[miners..miners + stakes.len()]);
        outs.push(out);
    }
    outs
}

#[test]
fn honest_majority_outweighs_a_colluding_minority() {
    // Miners 0 and 1 are good, miner 2 belongs to the colluders, who give it everything.
    let honest = ppm(&[0, 1, 2], &[50, 50, 0]);
    let colluding = vec![(2u16, 1_000_000u32)];
    let stakes = [300u128, 300, 200, 200];
    let outs = simulate(&stakes, 3, 5, |_, v| {
        if v < 2 {
            honest.clone()
        } else {
            colluding.clone()
        }
    });
    let last = outs.last().unwrap();
    assert_eq!(last.incentive[2], 0, "the colluders' miner earns nothing");
    assert!(last.incentive[0] > ONE / 3 && last.incentive[1] > ONE / 3);
    // Honest validators agree with consensus; the colluders do not.
    assert!(last.validator_trust[3] > ONE / 10 * 9);
    assert_eq!(last.validator_trust[5], 0);
    assert!(total_dividends(&outs, 3) > 10 * total_dividends(&outs, 5));
}

#[test]
fn a_stale_weight_copier_earns_less_than_an_honest_validator() {
    // The best miner changes every epoch; honest validators see the current quality, the
    // copier reproduces the weights revealed one interval earlier.
    let miners = 4usize;
    let truth = |e: usize| {
        let raw: Vec<u32> = (0..miners)
            .map(|m| if m == e % miners { 70 } else { 10 })
            .collect();
        ppm(&[0, 1, 2, 3], &raw)
    };
    // Validators 0 and 1 honest, 2 copier, all with equal stake.
    let outs = simulate(&[1_000, 1_000, 1_000], miners, 10, |e, v| {
        if v == 2 {
            truth(e.saturating_sub(1))
        } else {
            truth(e)
        }
    });
    let honest = total_dividends(&outs, miners);
    let copier = total_dividends(&outs, miners + 2);
    assert!(
        copier < honest,
        "copier earned {copier}, honest validator {honest}"
    );
    // And the gap is material, not rounding.
    assert!(
        copier * 10 < honest * 9,
        "copier {copier} vs honest {honest}"
    );
}

#[test]
fn apportion_is_exact_and_proportional() {
    let parts = apportion(100, &[1, 1, 1]);
    assert_eq!(parts, vec![34, 33, 33]);
    assert_eq!(apportion(7, &[0, 0]), vec![0, 0]);
    let parts = apportion(1_000_000_007, &[ONE / 3, ONE / 3, ONE / 3 + 1]);
    assert_eq!(parts.iter().sum::<u128>(), 1_000_000_007);
}

#[test]
fn miners_registered_after_the_weights_get_none_of_them() {
    let mut neurons = vec![miner(), miner()];
    neurons[1].registered_at = 995; // after the reveal at 990: those weights were for its predecessor
    neurons.push(validator(10, ppm(&[0, 1], &[1, 1])));
    let out = run(&params(1_000), &neurons);
    assert_eq!(out.incentive[1], 0);
    assert!(out.incentive[0] > ONE - 10);
}

#[test]
fn inactive_and_unpermitted_validators_do_not_count() {
    let mut p = params(1_000);
    p.max_validators = 1;
    let neurons = vec![
        miner(),
        miner(),
        validator(100, vec![(0, 1_000_000)]),
        validator(10, vec![(1, 1_000_000)]), // no permit: smaller stake
    ];
    let out = run(&p, &neurons);
    assert!(out.permit[2] && !out.permit[3]);
    assert_eq!(out.incentive[1], 0);
    // Weights older than the activity cutoff make the validator inactive.
    let mut stale = neurons.clone();
    stale[2].weights = Some((vec![(0, 1_000_000)], 1));
    p.activity_cutoff = 10;
    let out = run(&p, &stale);
    assert!(!out.active[2]);
    assert_eq!(out.emission.iter().sum::<u128>() + out.owner_emission, 0);
}
