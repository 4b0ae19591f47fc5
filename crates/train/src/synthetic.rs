//! Data the project makes for its own tests and benchmarks, and a reference job whose final
//! state hash every build, machine and thread count must reproduce.

use crate::{Dataset, ONE, Row, TrainError, TrainingSpec, quantise, splitmix};

/// `n` rows of two classes that no straight line separates (the XOR of the signs of two
/// coordinates in [-1, 1]), each with `extra` features of small noise; drawn from `seed`.
pub fn xor_rows(n: usize, extra: usize, seed: u64) -> Vec<Row> {
    let mut rng = seed;
    let mut unit = move || (splitmix(&mut rng) % 2_001) as f64 / 1_000.0 - 1.0;
    (0..n)
        .map(|_| {
            let (x, y) = (unit(), unit());
            let mut features = vec![quantise(x).unwrap_or(0), quantise(y).unwrap_or(0)];
            features.extend((0..extra).map(|_| quantise(unit() * 0.1).unwrap_or(0)));
            Row {
                label: u32::from((x > 0.0) != (y > 0.0)),
                features,
            }
        })
        .collect()
}

/// The reference job: 100 steps of a two-hidden-layer MLP (24 and 12 wide, 3 classes) on 500
/// XOR rows with 6 noise features.
pub fn reference_job() -> Result<(TrainingSpec, Dataset), TrainError> {
    let data = Dataset::from_rows(xor_rows(500, 6, 9))?;
    let spec = TrainingSpec {
        dataset_root: data.root(),
        rows: data.len() as u64,
        features: 8,
        hidden: vec![24, 12],
        classes: 3,
        learning_rate: ONE as u32 / 2,
        batch: 32,
        steps: 100,
        seed: 42,
        checkpoint_every: 50,
    };
    Ok((spec, data))
}

/// The state hash the reference job ends at, computed once and pinned.
pub const REFERENCE_JOB_HASH: &str =
    "19ca16527602fcb98622b77c6621c537cfcde32e3c1eee9e247f2b2d737bcd51";
