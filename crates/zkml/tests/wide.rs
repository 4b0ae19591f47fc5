#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! A model with a wide dense layer gets dot rows of 16 values shared by 8 neurons, which
//! quarters its circuit; it proves and verifies like any other, and a changed output or another
//! model's verifier is rejected.

use hibana_zkml::{
    Calibration, ProofSystem, ZkModel,
    model::{Activation, AffineRow, FloatLayer, FloatModel},
};

/// Deterministic weights in [-0.5, 0.5) from a small linear congruential sequence.
fn weights(seed: u64, n: usize) -> Vec<f32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

fn dense(seed: u64, n_in: usize, n_out: usize, activation: Activation) -> FloatLayer {
    let w = weights(seed, n_in * n_out);
    FloatLayer {
        rows: (0..n_out)
            .map(|o| AffineRow {
                bias: 0.01 * o as f32,
                terms: (0..n_in)
                    .map(|i| (i as u32, w[o * n_in + i] / (n_in as f32).sqrt()))
                    .collect(),
            })
            .collect(),
        activation,
    }
}

fn model(n_in: usize) -> FloatModel {
    FloatModel {
        input_shape: vec![n_in],
        input_len: n_in,
        output_shape: vec![4],
        layers: vec![
            dense(1, n_in, 32, Activation::Relu),
            dense(2, 32, 4, Activation::None),
        ],
        softmax_output: false,
    }
}

fn calibration(n_in: usize) -> Calibration {
    Calibration {
        inputs: (0..16).map(|s| weights(100 + s, n_in)).collect(),
        labels: None,
    }
}

#[test]
fn a_wide_dense_layer_shares_dot_rows_and_still_proves_soundly() {
    // 512 inputs × 32 outputs: 32 × (64 + 1) rows with 8 values per dot row (2^12 rows in all),
    // 32 × (32 + 1) with 16 (2^11), and 4 × (32 + 8) with 16 values for 8 neurons per row:
    // 2^10, the 512 input rows beside them.
    let halo2 = ProofSystem::Halo2;
    let wide = ZkModel::from_float_for(&model(512), &calibration(512), halo2).expect("compile");
    assert_eq!(wide.k, 10, "8 neurons per dot row fit 2^10 rows");
    assert_eq!(
        wide.layout_description(),
        "compact (.zkm v3): 16 values × 8 neurons per dot row"
    );
    // A narrow model of the same family gets the circuit its range table needs.
    let narrow = ZkModel::from_float_for(&model(16), &calibration(16), halo2).expect("compile");
    assert_eq!(narrow.k, 10);

    let prover = wide.prover().expect("keys");
    let input = weights(7, 512);
    let proof = prover.prove(&input, false).expect("prove");
    let verified = prover.verifier().verify(&proof).expect("verifies");
    assert_eq!(verified.output, proof.output);

    let mut changed = proof.clone();
    changed.output[0] += 1;
    assert!(prover.verifier().verify(&changed).is_err());

    // The same proof against another model's verifier is refused.
    let other = narrow.verifier().expect("verifier");
    assert!(other.verify(&proof).is_err());

    // The .zkm round-trips to the same circuit size and verifying key.
    let again = ZkModel::from_bytes(&wide.to_bytes().unwrap()).unwrap();
    assert_eq!(again.k, wide.k);
    assert!(again.verifier().unwrap().verify(&proof).is_ok());
}

#[test]
fn a_wide_dense_layer_proves_soundly_with_the_stark() {
    // 512 × 32 terms at 16 a row: 1024 layer rows, beside the 2 × 1024-entry activation table.
    let wide = ZkModel::from_float(&model(512), &calibration(512)).expect("compile");
    assert_eq!(wide.system, ProofSystem::Stark);
    assert_eq!(wide.k, 11);
    let prover = wide.prover().expect("keys");
    let proof = prover.prove(&weights(7, 512), true).expect("prove");
    let verified = prover.verifier().verify(&proof).expect("verifies");
    assert_eq!(verified.output, proof.output);
    let mut changed = proof.clone();
    changed.output[0] += 1;
    assert!(prover.verifier().verify(&changed).is_err());
    let narrow = ZkModel::from_float(&model(16), &calibration(16)).expect("compile");
    assert!(narrow.verifier().expect("verifier").verify(&proof).is_err());
}
