//! The `hibana zk` subcommand: compile ONNX models to `.zkm` circuits, prove inferences, verify
//! proofs.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::{Calibration, InferenceProof, ProofSystem, ZkError, ZkModel};

/// `hibana zk <command>`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ZkCommand {
    /// Compile an ONNX model to a .zkm circuit file (quantise with calibration data, size the
    /// circuit, derive the keys once to check them, report quantisation accuracy).
    Compile {
        /// The ONNX model.
        model: PathBuf,
        /// Calibration data: JSON {"inputs": [[…], …], "labels": [..]} (labels optional).
        #[arg(long)]
        calibration: PathBuf,
        /// Where to write the .zkm file.
        #[arg(short, long)]
        out: PathBuf,
        /// Proof system: `stark` (larger proofs, faster verification) or `halo2` (proofs of
        /// about 5 KB).
        #[arg(long, value_enum, default_value_t = ProofSystem::default())]
        system: ProofSystem,
    },
    /// Prove one inference: the output of the .zkm's model on an input.
    Prove {
        /// The compiled model.
        zkm: PathBuf,
        /// The input: JSON {"input": […]} or a plain array of numbers.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the proof.
        #[arg(short, long)]
        out: PathBuf,
        /// Reveal the input in the proof (default: only a hiding commitment to it).
        #[arg(long)]
        public_input: bool,
    },
    /// Verify a proof against a compiled model; exits non-zero when it does not verify.
    Verify {
        /// The compiled model.
        zkm: PathBuf,
        /// The proof file.
        proof: PathBuf,
    },
}

/// Runs a `hibana zk` command; `json` prints one JSON document to stdout instead of text.
pub fn run(cmd: &ZkCommand, json: bool) -> Result<(), ZkError> {
    let summary = match cmd {
        ZkCommand::Compile {
            model,
            calibration,
            out,
            system,
        } => compile(model, calibration, out, *system, json)?,
        ZkCommand::Prove {
            zkm,
            input,
            out,
            public_input,
        } => prove(zkm, input, out, *public_input, json)?,
        ZkCommand::Verify { zkm, proof } => verify(zkm, proof, json)?,
    };
    if json {
        let text =
            serde_json::to_string_pretty(&summary).map_err(|e| ZkError::Format(e.to_string()))?;
        println!("{text}");
    } else {
        for (key, value) in summary.as_object().into_iter().flatten() {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("{key:>18}: {value}");
        }
    }
    Ok(())
}

/// Runs `work` behind a spinner on stderr (unless `quiet`) and returns its result and duration.
fn step<T>(
    quiet: bool,
    what: &str,
    work: impl FnOnce() -> Result<T, ZkError>,
) -> Result<(T, Duration), ZkError> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    };
    bar.set_message(what.to_string());
    let start = Instant::now();
    let result = work();
    let took = start.elapsed();
    bar.finish_and_clear();
    if !quiet && result.is_ok() {
        eprintln!("{what}: {}", fmt_duration(took));
    }
    result.map(|t| (t, took))
}

fn fmt_duration(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn read(path: &Path) -> Result<Vec<u8>, ZkError> {
    std::fs::read(path).map_err(|e| ZkError::io(path, e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ZkError> {
    std::fs::write(path, bytes).map_err(|e| ZkError::io(path, e))
}

fn json_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ZkError> {
    serde_json::from_slice(&read(path)?)
        .map_err(|e| ZkError::Format(format!("{}: {e}", path.display())))
}

/// An input file: `{"input": […]}` or a bare array.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum InputFile {
    Wrapped { input: Vec<f32> },
    Bare(Vec<f32>),
}

fn json_value(v: impl Serialize) -> Result<serde_json::Value, ZkError> {
    serde_json::to_value(v).map_err(|e| ZkError::Format(e.to_string()))
}

fn compile(
    model: &Path,
    calibration: &Path,
    out: &Path,
    system: ProofSystem,
    quiet: bool,
) -> Result<serde_json::Value, ZkError> {
    let onnx = read(model)?;
    let cal: Calibration = json_file(calibration)?;
    let (zkm, compile_time) = step(quiet, "quantising and sizing the circuit", || {
        ZkModel::compile_for(&onnx, &cal, system)
    })?;
    let (_, key_time) = step(quiet, "deriving parameters and keys", || zkm.prover())?;
    let bytes = zkm.to_bytes()?;
    write(out, &bytes)?;
    let m = &zkm.model;
    Ok(serde_json::json!({
        "zkm": out.display().to_string(),
        "model_commitment": hex::encode(zkm.commitment()),
        "input_shape": m.input_shape,
        "output_shape": m.output_shape,
        "layers": m.layers.len(),
        "circuit_rows_log2": zkm.k,
        "circuit_layout": zkm.layout_description(),
        "zkm_bytes": bytes.len(),
        "compile_ms": compile_time.as_secs_f64() * 1000.0,
        "keygen_ms": key_time.as_secs_f64() * 1000.0,
        "calibration": json_value(&zkm.report)?,
        "proof_system": match zkm.system {
            ProofSystem::Halo2 =>
                "halo2 PLONK, IPA commitments over Pasta (transparent, no trusted setup)",
            ProofSystem::Stark =>
                "STARK: Plonky3, FRI over KoalaBear, zero knowledge (transparent, no trusted setup)",
        },
    }))
}

fn prove(
    zkm_path: &Path,
    input: &Path,
    out: &Path,
    public_input: bool,
    quiet: bool,
) -> Result<serde_json::Value, ZkError> {
    let zkm = ZkModel::read(zkm_path)?;
    let x = match json_file::<InputFile>(input)? {
        InputFile::Wrapped { input } | InputFile::Bare(input) => input,
    };
    let (prover, key_time) = step(quiet, "deriving parameters and keys", || zkm.prover())?;
    let (proof, prove_time) = step(quiet, "proving", || prover.prove(&x, public_input))?;
    let bytes = proof.to_bytes()?;
    write(out, &bytes)?;
    let values = zkm.model.dequantise_output(&proof.output);
    Ok(serde_json::json!({
        "proof": out.display().to_string(),
        "model_commitment": hex::encode(proof.model),
        "input_commitment": hex::encode(proof.input_commitment(&zkm)?),
        "public_input": public_input,
        "output": proof.output,
        "output_values": values,
        "class": zkm.model.classify(&values),
        "proof_bytes": bytes.len(),
        "keygen_ms": key_time.as_secs_f64() * 1000.0,
        "prove_ms": prove_time.as_secs_f64() * 1000.0,
    }))
}

fn verify(zkm_path: &Path, proof_path: &Path, quiet: bool) -> Result<serde_json::Value, ZkError> {
    let zkm = ZkModel::read(zkm_path)?;
    let proof = InferenceProof::from_bytes(&read(proof_path)?)?;
    let (verifier, key_time) = step(quiet, "deriving parameters and verifying key", || {
        zkm.verifier()
    })?;
    let (verified, verify_time) = step(quiet, "verifying", || verifier.verify(&proof))?;
    let mut doc = json_value(&verified)?;
    if let Some(map) = doc.as_object_mut() {
        map.insert("valid".into(), true.into());
        map.insert("keygen_ms".into(), (key_time.as_secs_f64() * 1000.0).into());
        map.insert(
            "verify_ms".into(),
            (verify_time.as_secs_f64() * 1000.0).into(),
        );
    }
    Ok(doc)
}
