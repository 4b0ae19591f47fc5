//! The Yuma epoch: from stake and weights to consensus, incentive, bonds, dividends and emission.
//!
//! A pure function in integer fixed point (fractions scaled by [`ONE`]), so every validator
//! computes the same result. The steps:
//! 1. Validator permits go to the `max_validators` largest stakes among validator neurons; a
//!    permitted validator is active if it revealed weights within `activity_cutoff` blocks. The
//!    stake of active permitted validators is normalised to `S`.
//! 2. Each active validator's weights, with weights to non-miners and to miners registered after
//!    the reveal dropped, are normalised per row: `W`.
//! 3. Consensus per miner `C_j` is the stake-weighted median at `kappa`: the largest weight that
//!    validators holding at least `kappa` of the stake give the miner or more.
//! 4. Weights are clipped to consensus, `W̄ = min(W, C)`, so no minority can raise a miner
//!    above what the majority gives it. Validator trust is the row sum of `W̄`.
//! 5. Rank `R = Sᵀ W̄`, incentive `I = R / ΣR`; trust is rank over the unclipped rank.
//! 6. Bonds: `ΔB = S · W̄` normalised per miner, then `B = α ΔB + (1 − α) B_prev`, normalised per
//!    miner again (`1 − α` is the bonds moving average).
//! 7. Dividends `D = B I`, normalised.
//! 8. Emission: the owner's cut, then half of the rest to miners by incentive and half to
//!    validators by dividends, apportioned by largest remainder so the parts add up exactly.
//!    When no miner earned incentive, nothing is minted.

pub use hibana_types::records::subnets::{ONE, apportion};

/// A neuron as the epoch sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochNeuron {
    /// Stake of the neuron's account, in base units.
    pub stake: u128,
    /// Whether it is a validator (else a miner).
    pub validator: bool,
    /// Height of its registration.
    pub registered_at: u64,
    /// Its revealed weights (miner uid, parts per million) and the height they were revealed.
    pub weights: Option<(Vec<(u16, u32)>, u64)>,
    /// Its bonds from the previous epoch (miner uid, fraction of the miner's bonds).
    pub bonds: Vec<(u16, u64)>,
}

/// The subnet parameters the epoch uses, fractions in the [`ONE`] scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochParams {
    /// Current height.
    pub height: u64,
    /// Consensus majority.
    pub kappa: u64,
    /// Most validator permits.
    pub max_validators: usize,
    /// Blocks a validator stays active after revealing weights.
    pub activity_cutoff: u64,
    /// Weight of the previous bonds in the moving average.
    pub bonds_moving_average: u64,
    /// Tokens to distribute this epoch, in base units.
    pub emission: u128,
    /// The owner's share of the emission.
    pub owner_cut: u64,
}

/// Everything the epoch computes, one entry per neuron (fractions in the [`ONE`] scale).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochOutput {
    /// Holds a validator permit.
    pub permit: Vec<bool>,
    /// Permitted and recently active.
    pub active: Vec<bool>,
    /// Normalised active stake.
    pub stake: Vec<u64>,
    /// Consensus weight of each miner.
    pub consensus: Vec<u64>,
    /// Rank of each miner (stake-weighted clipped weight).
    pub rank: Vec<u64>,
    /// Share of a miner's weight that survived clipping.
    pub trust: Vec<u64>,
    /// Share of a validator's weights that agreed with consensus.
    pub validator_trust: Vec<u64>,
    /// Miners' share of the miner emission.
    pub incentive: Vec<u64>,
    /// Validators' share of the validator emission.
    pub dividends: Vec<u64>,
    /// New bonds of each validator.
    pub bonds: Vec<Vec<(u16, u64)>>,
    /// Tokens paid to each neuron.
    pub emission: Vec<u128>,
    /// Tokens paid to the subnet owner.
    pub owner_emission: u128,
}

use rayon::prelude::*;

fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    crate::staking::mul_div(a, b, c).unwrap_or(0)
}

/// `a * b` for two fractions.
fn frac(a: u64, b: u64) -> u64 {
    (a as u128 * b as u128 / ONE as u128) as u64
}

/// `a * ONE / sum`, for `a <= sum`.
fn share(a: u64, sum: u128) -> u64 {
    (a as u128 * ONE as u128 / sum) as u64
}

/// Scales `values` so they sum to about [`ONE`]; all zeros stay zero.
fn normalise(values: &mut [u64]) {
    let sum: u128 = values.iter().map(|&v| v as u128).sum();
    if sum == 0 {
        return;
    }
    for v in values.iter_mut() {
        *v = share(*v, sum);
    }
}

/// Runs one epoch.
pub fn run(params: &EpochParams, neurons: &[EpochNeuron]) -> EpochOutput {
    let n = neurons.len();
    let mut out = EpochOutput {
        permit: vec![false; n],
        active: vec![false; n],
        stake: vec![0; n],
        consensus: vec![0; n],
        rank: vec![0; n],
        trust: vec![0; n],
        validator_trust: vec![0; n],
        incentive: vec![0; n],
        dividends: vec![0; n],
        bonds: vec![Vec::new(); n],
        emission: vec![0; n],
        owner_emission: 0,
    };

    // 1. Permits, activity and normalised active stake.
    let mut candidates: Vec<usize> = (0..n)
        .filter(|&i| neurons[i].validator && neurons[i].stake > 0)
        .collect();
    candidates.sort_by(|&a, &b| neurons[b].stake.cmp(&neurons[a].stake).then(a.cmp(&b)));
    candidates.truncate(params.max_validators);
    candidates.sort_unstable();
    for &i in &candidates {
        out.permit[i] = true;
        out.active[i] = neurons[i]
            .weights
            .as_ref()
            .is_some_and(|(_, at)| params.height.saturating_sub(*at) <= params.activity_cutoff);
    }
    let total: u128 = candidates
        .iter()
        .filter(|&&i| out.active[i])
        .map(|&i| neurons[i].stake)
        .fold(0u128, u128::saturating_add);
    if total > 0 {
        for &i in &candidates {
            if out.active[i] {
                out.stake[i] = mul_div(neurons[i].stake, ONE as u128, total) as u64;
            }
        }
    }

    // 2. Row-normalised weights of the active validators (dense rows over all neurons).
    let voters: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| out.active[i])
        .collect();
    let rows: Vec<Vec<u64>> = voters
        .par_iter()
        .map(|&i| {
            let mut row = vec![0u64; n];
            if let Some((weights, at)) = &neurons[i].weights {
                for &(uid, w) in weights {
                    let j = uid as usize;
                    if j < n && !neurons[j].validator && neurons[j].registered_at <= *at {
                        row[j] = w as u64;
                    }
                }
            }
            normalise(&mut row);
            row
        })
        .collect();

    // 3. Consensus: stake-weighted median at kappa, per miner.
    let consensus: Vec<u64> = (0..n)
        .into_par_iter()
        .map_init(
            || Vec::with_capacity(voters.len()),
            |column: &mut Vec<(u64, u64)>, j| {
                if neurons[j].validator {
                    return 0;
                }
                column.clear();
                column.extend(
                    voters
                        .iter()
                        .zip(&rows)
                        .map(|(&i, row)| (row[j], out.stake[i])),
                );
                column.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
                let mut support = 0u64;
                for &(w, s) in column.iter() {
                    support = support.saturating_add(s);
                    if support >= params.kappa {
                        return w;
                    }
                }
                0
            },
        )
        .collect();
    out.consensus = consensus;

    // 4–5. Clipping, validator trust, rank, trust and incentive.
    let clipped: Vec<Vec<u64>> = rows
        .par_iter()
        .map(|row| {
            row.iter()
                .zip(&out.consensus)
                .map(|(&w, &c)| w.min(c))
                .collect()
        })
        .collect();
    for (&i, clip) in voters.iter().zip(&clipped) {
        out.validator_trust[i] = clip
            .iter()
            .map(|&w| w as u128)
            .sum::<u128>()
            .min(ONE as u128) as u64;
    }
    let (rank, pre_rank): (Vec<u128>, Vec<u128>) = (0..n)
        .into_par_iter()
        .map(|j| {
            let (mut r, mut p) = (0u128, 0u128);
            for ((&i, row), clip) in voters.iter().zip(&rows).zip(&clipped) {
                let s = out.stake[i] as u128;
                r += s * clip[j] as u128;
                p += s * row[j] as u128;
            }
            (r, p)
        })
        .unzip();
    for j in 0..n {
        out.rank[j] = (rank[j] / ONE as u128) as u64;
        out.trust[j] = mul_div(rank[j], ONE as u128, pre_rank[j]) as u64;
    }
    out.incentive = out.rank.clone();
    normalise(&mut out.incentive);

    // 6. Bonds: moving average of stake-weighted clipped weights, normalised per miner.
    let holders = &candidates;
    let position: Vec<Option<usize>> = {
        let mut p = vec![None; n];
        for (k, &i) in voters.iter().enumerate() {
            p[i] = Some(k);
        }
        p
    };
    let mut delta: Vec<Vec<u64>> = holders
        .par_iter()
        .map(|&i| match position[i] {
            Some(k) => clipped[k].iter().map(|&w| frac(out.stake[i], w)).collect(),
            None => vec![0; n],
        })
        .collect();
    normalise_columns(&mut delta, n);
    let alpha = ONE - params.bonds_moving_average.min(ONE);
    let mut bonds: Vec<Vec<u64>> = holders
        .par_iter()
        .zip(delta.par_iter())
        .map(|(&i, d)| {
            let mut previous = vec![0u64; n];
            for &(uid, b) in &neurons[i].bonds {
                if (uid as usize) < n {
                    previous[uid as usize] = b;
                }
            }
            d.iter()
                .zip(&previous)
                .map(|(&d, &p)| frac(alpha, d) + frac(ONE - alpha, p))
                .collect()
        })
        .collect();
    normalise_columns(&mut bonds, n);

    // 7. Dividends.
    for (&i, b) in holders.iter().zip(&bonds) {
        let d: u128 = b
            .iter()
            .zip(&out.incentive)
            .map(|(&b, &inc)| b as u128 * inc as u128)
            .sum();
        out.dividends[i] = (d / ONE as u128) as u64;
        out.bonds[i] = b
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b > 0)
            .map(|(j, &b)| (j as u16, b))
            .collect();
    }
    normalise(&mut out.dividends);

    // 8. Emission.
    if out.incentive.iter().any(|&x| x > 0) {
        let owner = mul_div(
            params.emission,
            params.owner_cut.min(ONE) as u128,
            ONE as u128,
        );
        let rest = params.emission - owner;
        let mut miners = rest / 2;
        let mut validators = rest - miners;
        if out.dividends.iter().all(|&d| d == 0) {
            miners += validators;
            validators = 0;
        }
        let to_miners = apportion(miners, &out.incentive);
        let to_validators = apportion(validators, &out.dividends);
        for j in 0..n {
            out.emission[j] = to_miners[j] + to_validators[j];
        }
        out.owner_emission = owner;
    }
    out
}

/// Normalises each column of a row-major matrix with `n` columns to sum to about [`ONE`].
fn normalise_columns(matrix: &mut [Vec<u64>], n: usize) {
    let mut sums = vec![0u128; n];
    for row in matrix.iter() {
        for (s, &x) in sums.iter_mut().zip(row) {
            *s += x as u128;
        }
    }
    matrix.par_iter_mut().for_each(|row| {
        for (x, &s) in row.iter_mut().zip(&sums) {
            if s > 0 {
                *x = share(*x, s);
            }
        }
    });
}
