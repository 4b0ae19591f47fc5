//! The reproducible trainer against an ordinary float library: the same MLP (same data, same
//! batches, same initial weights, same learning rate) trained with Hibana's integer trainer and
//! with candle's f32 autograd, steps per second and accuracy side by side; what re-running one
//! step costs a validator settling a dispute against the whole job; whether this build
//! reproduces the reference job's pinned hash; and two or four providers averaging periodically
//! (`diloco`) against one, with the bytes they exchange. Run with
//! `cargo bench -p hibana-train --bench trainer`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Module, Optimizer};
use hibana_train::{
    Dataset, ONE, Row, Trainer, TrainingSpec, batch_indices, check_rows, correct, diloco,
    float_layers, init_params, state_hash, step,
    synthetic::{REFERENCE_JOB_HASH, reference_job, xor_rows},
};

fn job(steps: u64) -> (TrainingSpec, Dataset) {
    let data = Dataset::from_rows(xor_rows(4_000, 14, 5)).unwrap();
    let spec = TrainingSpec {
        dataset_root: data.root(),
        rows: data.len() as u64,
        features: 16,
        hidden: vec![64, 32],
        classes: 2,
        learning_rate: ONE as u32 / 4,
        batch: 64,
        steps,
        seed: 3,
        checkpoint_every: 100,
    };
    (spec, data)
}

/// Trains with candle from the same initial parameters; returns (seconds, accuracy).
fn candle_run(spec: &TrainingSpec, data: &Dataset) -> (f64, f64) {
    let dev = Device::Cpu;
    let init = float_layers(spec, &init_params(spec)).unwrap();
    let vars: Vec<(Var, Var)> = init
        .iter()
        .map(|l| {
            (
                Var::from_tensor(
                    &Tensor::from_vec(l.weights.clone(), (l.n_out, l.n_in), &dev).unwrap(),
                )
                .unwrap(),
                Var::from_tensor(&Tensor::from_vec(l.biases.clone(), l.n_out, &dev).unwrap())
                    .unwrap(),
            )
        })
        .collect();
    let mut opt = candle_nn::SGD::new(
        vars.iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect(),
        f64::from(spec.learning_rate) / ONE as f64,
    )
    .unwrap();
    let forward = |xs: &Tensor| -> Tensor {
        let mut a = xs.clone();
        for (i, (w, b)) in vars.iter().enumerate() {
            let layer = candle_nn::Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone()));
            a = layer.forward(&a).unwrap();
            if i + 1 < vars.len() {
                a = a.relu().unwrap();
            }
        }
        a
    };
    let scale = ONE as f32;
    let features = |rows: &[&Row]| -> Tensor {
        let flat: Vec<f32> = rows
            .iter()
            .flat_map(|r| r.features.iter().map(|&f| f as f32 / scale))
            .collect();
        Tensor::from_vec(flat, (rows.len(), spec.features as usize), &dev).unwrap()
    };
    let start = Instant::now();
    for s in 1..=spec.steps {
        let rows: Vec<&Row> = batch_indices(spec, s)
            .iter()
            .map(|&i| &data.rows()[i as usize])
            .collect();
        let ys = Tensor::from_vec(
            rows.iter().map(|r| r.label).collect::<Vec<u32>>(),
            rows.len(),
            &dev,
        )
        .unwrap();
        let loss = candle_nn::loss::cross_entropy(&forward(&features(&rows)), &ys).unwrap();
        opt.backward_step(&loss).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let all: Vec<&Row> = data.rows().iter().collect();
    let predicted: Vec<u32> = forward(&features(&all))
        .argmax(1)
        .unwrap()
        .to_dtype(DType::U32)
        .unwrap()
        .to_vec1()
        .unwrap();
    let right = predicted
        .iter()
        .zip(data.rows())
        .filter(|(p, r)| **p == r.label)
        .count();
    (secs, right as f64 / data.len() as f64)
}

/// Trains with the integer trainer; returns (seconds, accuracy, final parameters).
fn hibana_run(spec: &TrainingSpec, data: &Dataset) -> (f64, f64, Vec<i32>) {
    let start = Instant::now();
    let mut t = Trainer::new(spec).unwrap();
    for _ in 0..spec.steps {
        t.next_step(data).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let right = correct(spec, t.params(), data).unwrap();
    (secs, right as f64 / data.len() as f64, t.params().to_vec())
}

fn main() {
    let steps = 600;
    let (spec, data) = job(steps);
    println!(
        "MLP {}-{:?}-{}, {} parameters, batch {}, {} steps on {} rows, {} threads",
        spec.features,
        spec.hidden,
        spec.classes,
        spec.param_count(),
        spec.batch,
        steps,
        data.len(),
        rayon::current_num_threads()
    );
    // Warm both up once.
    let (warm, _) = job(20);
    candle_run(&warm, &data);
    hibana_run(&warm, &data);

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..3 {
        ours.push(hibana_run(&spec, &data));
        theirs.push(candle_run(&spec, &data));
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let h_secs = best(&ours.iter().map(|r| r.0).collect::<Vec<_>>());
    let c_secs = best(&theirs.iter().map(|r| r.0).collect::<Vec<_>>());
    println!();
    println!("| trainer | steps/s (best of 3) | rows/s | accuracy on the data |");
    println!("|---|---|---|---|");
    println!(
        "| hibana-train (integer, reproducible) | {:.0} | {:.0} | {:.1}% |",
        steps as f64 / h_secs,
        (steps * u64::from(spec.batch)) as f64 / h_secs,
        ours[0].1 * 100.0
    );
    println!(
        "| candle 0.11 (f32 autograd) | {:.0} | {:.0} | {:.1}% |",
        steps as f64 / c_secs,
        (steps * u64::from(spec.batch)) as f64 / c_secs,
        theirs[0].1 * 100.0
    );
    println!(
        "ratio (hibana / candle steps per second): {:.2}×",
        c_secs / h_secs
    );
    let same = ours.windows(2).all(|w| w[0].2 == w[1].2);
    println!("integer runs identical across the 3 repetitions: {same}");

    // A dispute: the validator checks the rows' proofs and re-runs one step, sequentially, as
    // the chain does.
    let s = steps / 2;
    let mut t = Trainer::new(&spec).unwrap();
    for _ in 1..s {
        t.next_step(&data).unwrap();
    }
    let before = t.params().to_vec();
    let proven: Vec<_> = batch_indices(&spec, s)
        .iter()
        .map(|&i| data.proven_row(i).unwrap())
        .collect();
    let reps = 200;
    let start = Instant::now();
    for _ in 0..reps {
        let rows = check_rows(&spec, s, &proven).unwrap();
        let refs: Vec<&Row> = rows.iter().collect();
        let after = step(&spec, &before, &refs).unwrap();
        std::hint::black_box(state_hash(s, &after));
    }
    let one = start.elapsed().as_secs_f64() / f64::from(reps);
    println!();
    println!(
        "one dispute step (proofs + step + hash, one thread): {:.3} ms; the whole job: {:.1} ms; \
         the step costs {:.0}× less",
        one * 1e3,
        h_secs * 1e3,
        h_secs / one
    );

    let (rspec, rdata) = reference_job().unwrap();
    let mut r = Trainer::new(&rspec).unwrap();
    for _ in 0..rspec.steps {
        r.next_step(&rdata).unwrap();
    }
    let got = state_hash(r.step(), r.params()).to_string();
    println!(
        "reference job in this build ({}): {got} — {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        },
        if got == REFERENCE_JOB_HASH {
            "matches the pinned hash the debug tests check"
        } else {
            "DIFFERS from the pinned hash"
        }
    );
    assert_eq!(got, REFERENCE_JOB_HASH);

    // Two or four providers with periodic averaging against one provider alone, the same total
    // steps (so the same batches), and the bytes they exchange against a per-step gradient
    // exchange.
    println!();
    println!(
        "| training | rounds | accuracy | bytes exchanged | per-step gradient exchange | saved |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| one provider, {steps} steps | – | {:.1}% | 0 | – | – |",
        ours[0].1 * 100.0
    );
    for (workers, local_steps) in [(2, 10), (2, 50), (4, 25)] {
        let plan = diloco::Plan {
            workers,
            local_steps,
        };
        let run = diloco::train(&spec, &data, &plan).unwrap();
        let acc = correct(&spec, &run.params, &data).unwrap() as f64 / data.len() as f64;
        println!(
            "| {workers} providers, averaging every {local_steps} local steps | {} | {:.1}% | {:.2} MB | {:.2} MB | {:.0}× |",
            run.rounds,
            acc * 100.0,
            run.bytes_exchanged as f64 / 1e6,
            run.bytes_per_step_exchange as f64 / 1e6,
            run.bytes_per_step_exchange as f64 / run.bytes_exchanged as f64
        );
    }
}
