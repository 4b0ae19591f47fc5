#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End to end: `hibana zk compile/prove/verify` run as real processes on the zkml test models.

use std::{
    path::Path,
    process::{Command, Output},
};

mod support;

use support::zk_testdata as testdata;

fn hibana(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hibana"))
        .args(args)
        .output()
        .expect("the hibana binary runs")
}

fn ok_json(out: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn compile_prove_verify_and_reject_a_corrupted_proof() {
    // The default system (STARK) and halo2.
    compile_prove_verify_in(
        &[],
        "STARK: 16 terms per layer-trace row, 2^11 rows",
        "STARK",
    );
    compile_prove_verify_in(
        &["--system", "halo2"],
        "compact (.zkm v3): 8 values × 1 neuron per dot row",
        "halo2",
    );
    let out = hibana(&[
        "zk",
        "compile",
        "m.onnx",
        "--calibration",
        "c.json",
        "-o",
        "x",
        "--system",
        "groth16",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("groth16"));
}

fn compile_prove_verify_in(system: &[&str], layout: &str, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let zkm = path(dir.path(), "credit.zkm");
    let mut args = vec![
        "zk",
        "compile",
        &testdata("credit_mlp.onnx"),
        "--calibration",
        &testdata("credit_calibration.json"),
        "-o",
        &zkm,
        "--json",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    args.extend(system.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let compiled = ok_json(&hibana(&args));
    assert_eq!(compiled["input_shape"], serde_json::json!([16]));
    assert_eq!(compiled["circuit_layout"], layout);
    assert!(
        compiled["proof_system"].as_str().unwrap().contains(name),
        "{compiled}"
    );
    assert_eq!(compiled["output_shape"], serde_json::json!([4]));
    assert!(compiled["calibration"]["agreement"].as_f64().unwrap() > 0.9);
    let commitment = compiled["model_commitment"].as_str().unwrap().to_string();

    let proof = path(dir.path(), "credit.proof");
    let proved = ok_json(&hibana(&[
        "zk",
        "prove",
        &zkm,
        "--input",
        &testdata("credit_input.json"),
        "-o",
        &proof,
        "--json",
    ]));
    assert_eq!(proved["model_commitment"], commitment.as_str());
    assert_eq!(proved["public_input"], false);
    assert!(proved["proof_bytes"].as_u64().unwrap() > 1000);

    let verified = ok_json(&hibana(&["zk", "verify", &zkm, &proof, "--json"]));
    assert_eq!(verified["valid"], true);
    assert_eq!(verified["model"], commitment.as_str());
    assert_eq!(verified["output"], proved["output"]);
    assert_eq!(verified["class"], proved["class"]);
    assert_eq!(verified["public_input"], false);

    // The text form prints the same result for people.
    let text = hibana(&["zk", "verify", &zkm, &proof]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("class"));

    // One flipped byte: rejected with a clear message and a failing exit code.
    let mut bytes = std::fs::read(&proof).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let bad = path(dir.path(), "bad.proof");
    std::fs::write(&bad, &bytes).unwrap();
    let out = hibana(&["zk", "verify", &zkm, &bad]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("corrupted"), "{stderr}");

    // A truncated proof too.
    std::fs::write(&bad, &bytes[..20]).unwrap();
    let out = hibana(&["zk", "verify", &zkm, &bad]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}

#[test]
fn public_input_proof_of_the_cnn_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let zkm = path(dir.path(), "digits.zkm");
    ok_json(&hibana(&[
        "zk",
        "compile",
        &testdata("digits_cnn.onnx"),
        "--calibration",
        &testdata("digits_calibration.json"),
        "-o",
        &zkm,
        "--json",
    ]));
    let proof = path(dir.path(), "digits.proof");
    let proved = ok_json(&hibana(&[
        "zk",
        "prove",
        &zkm,
        "--input",
        &testdata("digits_input.json"),
        "-o",
        &proof,
        "--public-input",
        "--json",
    ]));
    let label: serde_json::Value =
        serde_json::from_slice(&std::fs::read(testdata("digits_input.json")).unwrap()).unwrap();
    assert_eq!(proved["class"], label["label"]);
    let verified = ok_json(&hibana(&["zk", "verify", &zkm, &proof, "--json"]));
    assert_eq!(verified["public_input"], true);
    assert_eq!(verified["class"], label["label"]);
}

#[test]
fn unsupported_operator_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cal = path(dir.path(), "cal.json");
    std::fs::write(&cal, r#"{"inputs": [[0, 0, 0, 0]]}"#).unwrap();
    let out = hibana(&[
        "zk",
        "compile",
        &testdata("unsupported_leakyrelu.onnx"),
        "--calibration",
        &cal,
        "-o",
        &path(dir.path(), "x.zkm"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unsupported ONNX operator `LeakyRelu` at node `leaky`"),
        "{stderr}"
    );
}
