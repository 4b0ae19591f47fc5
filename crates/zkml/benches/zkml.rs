//! Proving benchmark (not a test): compile, key derivation, prove, verify times, proof and file
//! sizes and peak memory for the project's two test models.
//!
//! Run: `cargo bench -p hibana-zkml --bench zkml` (add `--profile dev` to reuse a dev build; the
//! workspace compiles dependencies with opt-level 2 there). The reference column repeats the
//! EZKL figures measured on this machine and recorded in issue 4 (logrows 15); EZKL itself is
//! not run here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use hibana_zkml::{Calibration, ZkModel};

const RUNS: usize = 3;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

struct Row {
    name: &'static str,
    k: u32,
    compile: Duration,
    keygen: Duration,
    prove: Duration,
    verify: Duration,
    proof_bytes: usize,
    zkm_bytes: usize,
    agreement: f64,
    peak: Option<f64>,
}

fn bench(name: &'static str, model: &str, calibration: &str, input: &str) -> Row {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let onnx = std::fs::read(dir.join(model)).unwrap();
    let cal: Calibration =
        serde_json::from_slice(&std::fs::read(dir.join(calibration)).unwrap()).unwrap();
    let sample: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(input)).unwrap()).unwrap();
    let x: Vec<f32> = serde_json::from_value(sample["input"].clone()).unwrap();

    let t = Instant::now();
    let zkm = ZkModel::compile(&onnx, &cal).unwrap();
    let compile = t.elapsed();
    let t = Instant::now();
    let prover = zkm.prover().unwrap();
    let keygen = t.elapsed();
    let mut proves = Vec::new();
    let mut verifies = Vec::new();
    let mut proof_bytes = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let proof = prover.prove(&x, false).unwrap();
        proves.push(t.elapsed());
        proof_bytes = proof.to_bytes().unwrap().len();
        let t = Instant::now();
        prover.verifier().verify(&proof).unwrap();
        verifies.push(t.elapsed());
    }
    Row {
        name,
        k: zkm.k,
        compile,
        keygen,
        prove: median(proves),
        verify: median(verifies),
        proof_bytes,
        zkm_bytes: zkm.to_bytes().unwrap().len(),
        agreement: zkm.report.agreement,
        peak: peak_rss_mib(),
    }
}

fn main() {
    let rows = [
        bench(
            "credit MLP 16-32-32-4",
            "credit_mlp.onnx",
            "credit_calibration.json",
            "credit_input.json",
        ),
        bench(
            "digits CNN conv3x3x4-pool-64-10",
            "digits_cnn.onnx",
            "digits_calibration.json",
            "digits_input.json",
        ),
    ];
    println!(
        "{:<32} {:>3} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>7} {:>9}",
        "model (private input)",
        "k",
        "compile",
        "keys",
        "prove",
        "verify",
        "proof B",
        "zkm B",
        "agree",
        "peak MiB"
    );
    for r in &rows {
        println!(
            "{:<32} {:>3} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>6.1}% {:>9}",
            r.name,
            r.k,
            ms(r.compile),
            ms(r.keygen),
            ms(r.prove),
            ms(r.verify),
            r.proof_bytes,
            r.zkm_bytes,
            r.agreement * 100.0,
            r.peak.map_or("-".into(), |p| format!("{p:.0}")),
        );
    }
    println!(
        "reference (EZKL, issue 4, same machine, not run here): MLP 16-32-32-4 prove 7420 ms, \
         verify 44 ms, proof 3072 B; logistic regression prove 7190 ms, verify 40 ms, proof 3648 B"
    );
    println!("(verify includes no key derivation: the verifier is built once per model)");
}
