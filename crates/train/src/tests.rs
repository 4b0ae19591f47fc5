use proptest::prelude::*;

use super::*;

use crate::synthetic::{REFERENCE_JOB_HASH, reference_job, xor_rows};

/// Two classes split by the line x + y = 0.
fn linear_rows(n: usize, seed: u64) -> Vec<Row> {
    let mut rng = seed;
    let mut unit = move || (splitmix(&mut rng) % 2_001) as f64 / 1_000.0 - 1.0;
    (0..n)
        .map(|_| {
            let (x, y) = (unit(), unit());
            Row {
                label: u32::from(x + y > 0.0),
                features: vec![quantise(x).unwrap_or(0), quantise(y).unwrap_or(0)],
            }
        })
        .collect()
}

pub(crate) fn spec_for(data: &Dataset, hidden: Vec<u32>, steps: u64) -> TrainingSpec {
    TrainingSpec {
        dataset_root: data.root(),
        rows: data.len() as u64,
        features: data.features() as u32,
        hidden,
        classes: 2,
        learning_rate: ONE as u32 / 2,
        batch: 32,
        steps,
        seed: 42,
        checkpoint_every: 50,
    }
}

fn train(spec: &TrainingSpec, data: &Dataset) -> Trainer {
    let mut t = Trainer::new(spec).expect("spec");
    for _ in 0..spec.steps {
        t.next_step(data).expect("step");
    }
    t
}

#[test]
fn integer_exp_is_within_a_ten_thousandth_of_the_real_one() {
    for k in 0..=16 * 64 {
        let x = -(k as i64) * ONE / 64;
        let got = exp_neg(x) as f64 / ONE as f64;
        let want = (x as f64 / ONE as f64).exp();
        assert!((got - want).abs() < 2e-4, "x={x}: {got} vs {want}");
    }
    assert_eq!(exp_neg(-17 * ONE), 0);
}

#[test]
fn softmax_sums_to_one_within_rounding() {
    for z in [vec![0, 0], vec![ONE, -ONE, 3 * ONE], vec![-LIMIT, LIMIT]] {
        let sum: i64 = softmax(&z).iter().sum();
        assert!((ONE - sum).abs() <= z.len() as i64, "{z:?}: {sum}");
    }
}

#[test]
fn logistic_regression_learns_a_linear_split() {
    let data = Dataset::from_rows(linear_rows(400, 1)).expect("data");
    let spec = spec_for(&data, vec![], 200);
    let before = correct(&spec, &init_params(&spec), &data).expect("eval");
    let t = train(&spec, &data);
    let after = correct(&spec, t.params(), &data).expect("eval");
    assert!(after >= 380, "accuracy {after}/400 (before: {before})");
}

#[test]
fn an_mlp_learns_what_logistic_regression_cannot() {
    let data = Dataset::from_rows(xor_rows(600, 0, 2)).expect("data");
    let linear = train(&spec_for(&data, vec![], 300), &data);
    let lin_acc = correct(linear.spec(), linear.params(), &data).expect("eval");
    let mlp = train(&spec_for(&data, vec![16], 300), &data);
    let mlp_acc = correct(mlp.spec(), mlp.params(), &data).expect("eval");
    assert!(
        lin_acc < 450,
        "logistic regression should fail on XOR: {lin_acc}/600"
    );
    assert!(mlp_acc >= 540, "the MLP should learn XOR: {mlp_acc}/600");
}

#[test]
fn the_pinned_job_reaches_the_same_hash_on_one_thread_and_on_two() {
    let (spec, data) = reference_job().expect("reference job");
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| {
                let t = train(&spec, &data);
                state_hash(t.step(), t.params())
            })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one.to_string(), REFERENCE_JOB_HASH);
}

proptest! {
    #[test]
    fn a_step_summed_in_chunks_equals_the_step_summed_in_order(
        seed in any::<u64>(),
        hidden in proptest::collection::vec(1u32..20, 0..3),
        chunk in 1usize..40,
        lr in 1u32..(4 << 16),
    ) {
        let data = Dataset::from_rows(xor_rows(100, 3, seed)).expect("data");
        let hidden: Vec<u32> = hidden.into_iter().take(2).collect();
        let mut spec = spec_for(&data, hidden, 10);
        spec.learning_rate = lr;
        spec.seed = seed;
        let mut p = init_params(&spec);
        for s in 1..=3 {
            let rows: Vec<&Row> = batch_indices(&spec, s).iter().map(|&i| &data.rows()[i as usize]).collect();
            let seq = step(&spec, &p, &rows).expect("step");
            prop_assert_eq!(&seq, &step_parallel(&spec, &p, &rows, chunk).expect("step"));
            p = seq;
        }
    }

    #[test]
    fn any_parameter_change_changes_the_state_hash(i in 0usize..50, delta in 1i32..1000) {
        let params: Vec<i32> = (0..50).collect();
        let mut other = params.clone();
        other[i] += delta;
        prop_assert_ne!(state_hash(3, &params), state_hash(3, &other));
        prop_assert_ne!(state_hash(3, &params), state_hash(4, &params));
    }
}

#[test]
fn a_disputes_rows_must_be_the_steps_batch_proved_under_the_root() {
    let data = Dataset::from_rows(xor_rows(100, 0, 3)).expect("data");
    let spec = spec_for(&data, vec![4], 10);
    let honest: Vec<ProvenRow> = batch_indices(&spec, 5)
        .iter()
        .map(|&i| data.proven_row(i).expect("row"))
        .collect();
    let rows = check_rows(&spec, 5, &honest).expect("honest rows");
    assert_eq!(rows.len(), spec.batch as usize);

    let err = |rows: &[ProvenRow], step: u64| {
        check_rows(&spec, step, rows)
            .expect_err("must be refused")
            .to_string()
    };
    assert!(err(&honest, 6).contains("is dataset row"));
    assert!(err(&honest[1..], 5).contains("were given"));
    let mut relabelled = honest.clone();
    relabelled[3].label ^= 1;
    assert!(err(&relabelled, 5).contains("is not in dataset"));
    let mut moved = honest.clone();
    moved[0].features[0] += 1;
    assert!(err(&moved, 5).contains("is not in dataset"));
    // A row proved under the root but outside the model (class 7 of 2) is refused too.
    let target = honest[0].index;
    let other = Dataset::from_rows(
        data.rows()
            .iter()
            .enumerate()
            .map(|(i, r)| Row {
                label: if i as u64 == target { 7 } else { r.label },
                features: r.features.clone(),
            })
            .collect(),
    )
    .expect("data");
    let spec7 = TrainingSpec {
        dataset_root: other.root(),
        ..spec.clone()
    };
    let rows7: Vec<ProvenRow> = batch_indices(&spec7, 5)
        .iter()
        .map(|&i| other.proven_row(i).expect("row"))
        .collect();
    assert!(err_with(&spec7, &rows7).contains("does not fit"));
}

fn err_with(spec: &TrainingSpec, rows: &[ProvenRow]) -> String {
    check_rows(spec, 5, rows)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn a_dataset_file_with_a_bad_line_is_refused_naming_the_line() {
    let ok = "{\"features\": [0.5, 1], \"label\": 0}\n\n{\"features\": [1, -2.25], \"label\": 1}\n";
    let d = Dataset::from_jsonl(ok).expect("valid");
    assert_eq!((d.len(), d.features(), d.classes()), (2, 2, 2));
    assert_eq!(
        d.rows()[1].features,
        vec![ONE as i32, -(9 * ONE / 4) as i32]
    );
    for (text, line, says) in [
        ("{\"features\": [1], \"label\": 0}\nnope\n", 2, "not JSON"),
        ("{\"features\": [1], \"label\": -1}\n", 1, "label"),
        (
            "{\"features\": [1, 2], \"label\": 0}\n{\"features\": [1], \"label\": 0}\n",
            2,
            "features where",
        ),
        ("{\"features\": [1e9], \"label\": 0}\n", 1, "within"),
        ("{\"label\": 0}\n", 1, "array"),
    ] {
        let e = Dataset::from_jsonl(text).expect_err(text);
        assert!(
            matches!(&e, TrainError::Data { line: l, .. } if *l == line),
            "{text}: {e}"
        );
        assert!(e.to_string().contains(says), "{text}: {e}");
    }
    assert!(Dataset::from_jsonl("\n").is_err());
}

#[test]
fn a_spec_that_does_not_fit_the_file_is_refused() {
    let data = Dataset::from_rows(linear_rows(50, 4)).expect("data");
    let spec = spec_for(&data, vec![], 10);
    data.check_spec(&spec).expect("fits");
    let other = Dataset::from_rows(linear_rows(50, 5)).expect("data");
    assert!(other.check_spec(&spec).is_err());
    let wide = TrainingSpec {
        hidden: vec![200],
        ..spec.clone()
    };
    assert!(
        data.check_spec(&wide)
            .expect_err("too wide")
            .to_string()
            .contains("hidden")
    );
    assert!(matches!(
        step(&spec, &[0; 3], &[]),
        Err(TrainError::Params {
            expected: 6,
            got: 3
        })
    ));
}

#[test]
fn resuming_from_a_checkpoint_continues_the_same_run() {
    let data = Dataset::from_rows(xor_rows(200, 0, 6)).expect("data");
    let spec = spec_for(&data, vec![8], 40);
    let whole = train(&spec, &data);
    let mut first = Trainer::new(&spec).expect("spec");
    for _ in 0..17 {
        first.next_step(&data).expect("step");
    }
    let at = state_hash(17, first.params());
    let mut resumed = Trainer::resume(&spec, 17, first.params().to_vec(), &at).expect("resume");
    for _ in 17..40 {
        resumed.next_step(&data).expect("step");
    }
    assert_eq!(resumed.params(), whole.params());
    assert!(Trainer::resume(&spec, 16, first.params().to_vec(), &at).is_err());
    assert!(
        resumed.next_step(&data).is_err(),
        "a finished run takes no more steps"
    );
}

#[test]
fn a_checkpoint_reads_back_and_is_named_by_its_state_hash() {
    let params: Vec<i32> = (-50..50).collect();
    let bytes = checkpoint_bytes(12, &params);
    assert_eq!(
        Hash(*blake3::hash(&bytes).as_bytes()),
        state_hash(12, &params)
    );
    assert_eq!(parse_checkpoint(&bytes).expect("valid"), (12, params));
    assert!(parse_checkpoint(&bytes[..bytes.len() - 1]).is_err());
    assert!(parse_checkpoint(&bytes[1..]).is_err());
    assert!(parse_checkpoint(b"hibana/train/state").is_err());
}

#[test]
fn a_checkpoint_claiming_too_many_parameters_is_refused_not_overflowed() {
    let mut bytes = checkpoint_bytes(1, &[]);
    let at = bytes.len() - 8;
    bytes[at..].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = parse_checkpoint(&bytes).expect_err("refused");
    assert!(e.to_string().contains("at most"), "{e}");
}
