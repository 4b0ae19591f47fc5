#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Compile → prove → verify on the project's test models, and the soundness checks.

use std::{path::Path, sync::OnceLock};

use hibana_zkml::{
    Calibration, InferenceProof, InputBinding, ProofSystem, Prover, ZkError, ZkModel,
};

/// Both proof systems, each test runs on both.
const SYSTEMS: [ProofSystem; 2] = [ProofSystem::Stark, ProofSystem::Halo2];

fn testdata(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn compile(model: &str, calibration: &str, system: ProofSystem) -> ZkModel {
    let onnx = std::fs::read(testdata(model)).unwrap();
    let cal: Calibration =
        serde_json::from_slice(&std::fs::read(testdata(calibration)).unwrap()).unwrap();
    ZkModel::compile_for(&onnx, &cal, system).unwrap()
}

fn sample(name: &str) -> (Vec<f32>, usize) {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(testdata(name)).unwrap()).unwrap();
    let input = serde_json::from_value(v["input"].clone()).unwrap();
    (input, v["label"].as_u64().unwrap() as usize)
}

fn credit(system: ProofSystem) -> &'static Prover {
    static P: [OnceLock<Prover>; 2] = [OnceLock::new(), OnceLock::new()];
    P[system as usize].get_or_init(|| {
        compile("credit_mlp.onnx", "credit_calibration.json", system)
            .prover()
            .unwrap()
    })
}

fn digits(system: ProofSystem) -> &'static Prover {
    static P: [OnceLock<Prover>; 2] = [OnceLock::new(), OnceLock::new()];
    P[system as usize].get_or_init(|| {
        compile("digits_cnn.onnx", "digits_calibration.json", system)
            .prover()
            .unwrap()
    })
}

#[test]
fn credit_mlp_private_round_trip() {
    for system in SYSTEMS {
        credit_mlp_private_round_trip_in(system);
    }
}

fn credit_mlp_private_round_trip_in(system: ProofSystem) {
    let prover = credit(system);
    let zkm = prover.verifier().zkm();
    assert!(zkm.report.agreement > 0.9, "{:?}", zkm.report);
    let (input, label) = sample("credit_input.json");
    let proof = prover.prove(&input, false).unwrap();
    assert!(matches!(proof.input, InputBinding::Private { .. }));
    // The proof travels as bytes; decode and verify with a verifier derived from the .zkm file.
    let bytes = proof.to_bytes().unwrap();
    let zkm2 = ZkModel::from_bytes(&zkm.to_bytes().unwrap()).unwrap();
    let verified = zkm2
        .verifier()
        .unwrap()
        .verify(&InferenceProof::from_bytes(&bytes).unwrap())
        .unwrap();
    let expected = zkm
        .model
        .eval(&zkm.model.quantise_input(&input).unwrap())
        .unwrap();
    assert_eq!(verified.output, expected.output());
    assert!(!verified.public_input);
    assert_eq!(verified.class, label, "the sample is classified right");
}

#[test]
fn digits_cnn_public_round_trip() {
    for system in SYSTEMS {
        digits_cnn_public_round_trip_in(system);
    }
}

fn digits_cnn_public_round_trip_in(system: ProofSystem) {
    let prover = digits(system);
    let (input, label) = sample("digits_input.json");
    let proof = prover.prove(&input, true).unwrap();
    let verified = prover.verifier().verify(&proof).unwrap();
    assert!(verified.public_input);
    assert_eq!(verified.class, label);
    // The revealed input is the quantised sample.
    let InputBinding::Public {
        input: revealed, ..
    } = &proof.input
    else {
        panic!("public input expected");
    };
    let zkm = prover.verifier().zkm();
    assert_eq!(revealed, &zkm.model.quantise_input(&input).unwrap());

    // Another revealed input with the same commitment (for halo2, one step of the packing's
    // radix moved between two values) is refused: the first value is outside the quantised
    // range.
    let mut swapped = proof.clone();
    let InputBinding::Public { input: values, .. } = &mut swapped.input else {
        panic!("public input expected");
    };
    values[0] += 1 << zkm.model.act_bits;
    values[1] -= 1;
    if system == ProofSystem::Halo2 {
        assert_eq!(
            swapped.input_commitment(zkm).unwrap(),
            proof.input_commitment(zkm).unwrap()
        );
    }
    let err = prover.verifier().verify(&swapped).unwrap_err().to_string();
    assert!(err.contains("outside the quantised range"), "{err}");
}

#[test]
fn tampered_proofs_are_rejected() {
    for system in SYSTEMS {
        tampered_proofs_are_rejected_in(system);
    }
}

fn tampered_proofs_are_rejected_in(system: ProofSystem) {
    let prover = credit(system);
    let verifier = prover.verifier();
    let (input, _) = sample("credit_input.json");
    let proof = prover.prove(&input, false).unwrap();
    verifier.verify(&proof).unwrap();

    // A changed output.
    let mut bad = proof.clone();
    bad.output[0] += 1;
    assert!(matches!(
        verifier.verify(&bad),
        Err(ZkError::InvalidProof(_))
    ));

    // A flipped byte inside the proof.
    let mut bad = proof.clone();
    let mid = bad.proof.len() / 2;
    bad.proof[mid] ^= 1;
    assert!(matches!(
        verifier.verify(&bad),
        Err(ZkError::InvalidProof(_))
    ));

    // A changed input commitment (another valid field element).
    let mut bad = proof.clone();
    let InputBinding::Private { commitment } = &mut bad.input else {
        panic!()
    };
    commitment[0] ^= 1;
    assert!(verifier.verify(&bad).is_err());

    // A claimed public input that is not the one proved.
    let public = prover.prove(&input, true).unwrap();
    verifier.verify(&public).unwrap();
    let mut bad = public.clone();
    let InputBinding::Public {
        input: revealed, ..
    } = &mut bad.input
    else {
        panic!()
    };
    revealed[3] += 1;
    assert!(matches!(
        verifier.verify(&bad),
        Err(ZkError::InvalidProof(_))
    ));

    // A wrong model commitment: the file-level check, and the proof itself (bound through the
    // public instance) both reject it.
    let mut bad = proof.clone();
    bad.model[5] ^= 0x40;
    assert!(matches!(
        verifier.verify(&bad),
        Err(ZkError::ModelMismatch { .. })
    ));
    let InputBinding::Private { commitment } = &proof.input else {
        panic!()
    };
    assert!(
        verifier
            .verify_raw(&bad.model, commitment, &proof.output, &proof.proof)
            .is_err()
    );
    verifier
        .verify_raw(&proof.model, commitment, &proof.output, &proof.proof)
        .unwrap();
}

#[test]
fn proof_for_another_model_is_rejected() {
    for system in SYSTEMS {
        proof_for_another_model_is_rejected_in(system);
    }
}

fn proof_for_another_model_is_rejected_in(system: ProofSystem) {
    let credit = credit(system);
    let digits = digits(system);
    let (input, _) = sample("credit_input.json");
    let proof = credit.prove(&input, false).unwrap();
    // Against the other model's .zkm: commitment mismatch.
    assert!(matches!(
        digits.verifier().verify(&proof),
        Err(ZkError::ModelMismatch { .. })
    ));
    // Even when relabelled with the other model's commitment, its verifying key rejects it.
    let mut relabelled = proof.clone();
    relabelled.model = digits.verifier().zkm().commitment();
    relabelled.output.resize(10, 0);
    assert!(digits.verifier().verify(&relabelled).is_err());
}

#[test]
fn corrupted_files_are_errors() {
    let zkm = credit(ProofSystem::Stark).verifier().zkm();
    let bytes = zkm.to_bytes().unwrap();
    for cut in [0, 5, 37, bytes.len() / 2, bytes.len() - 1] {
        assert!(matches!(
            ZkModel::from_bytes(&bytes[..cut]),
            Err(ZkError::Format(_))
        ));
    }
    let mut flipped = bytes.clone();
    flipped[100] ^= 0xff;
    assert!(matches!(
        ZkModel::from_bytes(&flipped),
        Err(ZkError::Format(_))
    ));
    let mut version = bytes.clone();
    version[4] = 9;
    let err = ZkModel::from_bytes(&version).unwrap_err().to_string();
    assert!(err.contains("version 9"), "{err}");

    let (input, _) = sample("credit_input.json");
    let proof = credit(ProofSystem::Stark)
        .prove(&input, false)
        .unwrap()
        .to_bytes()
        .unwrap();
    for cut in [0, 10, proof.len() - 33, proof.len() - 1] {
        assert!(matches!(
            InferenceProof::from_bytes(&proof[..cut]),
            Err(ZkError::Format(_))
        ));
    }
    let mut flipped = proof.clone();
    flipped[50] ^= 1;
    let err = InferenceProof::from_bytes(&flipped)
        .unwrap_err()
        .to_string();
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn bad_inputs_are_errors() {
    let prover = credit(ProofSystem::Stark);
    assert!(matches!(
        prover.prove(&[0.0; 15], false),
        Err(ZkError::InputShape { got: 15, want: 16 })
    ));
    assert!(matches!(
        prover.prove(&[f32::NAN; 16], false),
        Err(ZkError::InputValue { index: 0, .. })
    ));
    // Far outside the calibration data: inputs saturate, and an intermediate value that leaves
    // the provable range is reported rather than proved wrongly.
    match prover.prove(&[1.0e6; 16], false) {
        Ok(proof) => {
            prover.verifier().verify(&proof).unwrap();
        }
        Err(e) => assert!(matches!(e, ZkError::ActivationOverflow { .. }), "{e}"),
    }
    let model = &prover.verifier().zkm().model;
    let max = model.act_max();
    assert!(
        model
            .quantise_input(&[1.0e6; 16])
            .unwrap()
            .iter()
            .all(|&v| v == max)
    );
}

#[test]
fn unsupported_operator_names_op_and_node() {
    let onnx = std::fs::read(testdata("unsupported_leakyrelu.onnx")).unwrap();
    let cal = Calibration {
        inputs: vec![vec![0.0; 4]],
        labels: None,
    };
    let err = ZkModel::compile(&onnx, &cal).unwrap_err();
    assert!(
        matches!(&err, ZkError::UnsupportedOperator { op, node } if op == "LeakyRelu" && node == "leaky"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "unsupported ONNX operator `LeakyRelu` at node `leaky`"
    );
    // Garbage is an error, not a panic.
    assert!(matches!(
        ZkModel::compile(b"\x0a\xff\xff\xff garbage", &cal),
        Err(ZkError::Onnx(_))
    ));
}
