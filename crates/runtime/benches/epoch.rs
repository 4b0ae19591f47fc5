//! Yuma epoch time for the subnet sizes of issue 6; prints a table against the 50 ms target.
//! Run with `cargo bench -p hibana-runtime --bench epoch`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use hibana_runtime::subnets::epoch::{EpochNeuron, EpochParams, ONE, apportion, run};

/// A subnet of `neurons` neurons of which `validators` are validators weighting every miner.
fn subnet(neurons: usize, validators: usize, seed: u64) -> Vec<EpochNeuron> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let miners = neurons - validators;
    let mut out: Vec<EpochNeuron> = (0..miners)
        .map(|_| EpochNeuron {
            stake: 0,
            validator: false,
            registered_at: 0,
            weights: None,
            bonds: Vec::new(),
        })
        .collect();
    for _ in 0..validators {
        let raw: Vec<u64> = (0..miners).map(|_| next() % 1000 + 1).collect();
        let parts = apportion(1_000_000, &raw);
        let weights = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| **p > 0)
            .map(|(j, &p)| (j as u16, p as u32))
            .collect();
        let bonds = (0..miners)
            .map(|j| (j as u16, ONE / validators as u64))
            .collect();
        out.push(EpochNeuron {
            stake: u128::from(next() % 1_000_000 + 1) * 1_000_000_000,
            validator: true,
            registered_at: 0,
            weights: Some((weights, 10)),
            bonds,
        });
    }
    out
}

fn main() {
    let params = EpochParams {
        height: 100,
        kappa: ONE / 2,
        max_validators: 128,
        activity_cutoff: 5_000,
        bonds_moving_average: ONE / 10 * 9,
        emission: 10_000_000_000_000,
        owner_cut: ONE / 100 * 18,
    };
    println!(
        "| neurons | validators | epoch p50 | epoch max | target | threads |\n|---|---|---|---|---|---|"
    );
    for (n, v) in [(256usize, 64usize), (4096, 128)] {
        let neurons = subnet(n, v, 42);
        let mut times = Vec::new();
        for _ in 0..15 {
            let start = Instant::now();
            let out = run(&params, &neurons);
            times.push(start.elapsed().as_secs_f64() * 1e3);
            assert!(out.incentive.iter().any(|&i| i > 0));
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {n} | {v} | {:.1} ms | {:.1} ms | ≤ 50 ms | {} |",
            times[times.len() / 2],
            times[times.len() - 1],
            rayon::current_num_threads()
        );
    }
}
