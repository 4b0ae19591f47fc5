//! `hibana zk …`: the local zkml commands (`compile` an ONNX model to a `.zkm` circuit, `prove`
//! an inference, `verify` a proof) plus the on-chain ones: `register` and `submit` sign and send
//! `RegisterZkModel` / `SubmitZkInference`, `show-model` and `result` read what the chain's
//! verify component stored.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Subcommand, ValueEnum};
use hibana_rpc::{ClientError, ZkInferenceView, ZkModelView};
use hibana_runtime::verify;
use hibana_types::{Message, Receipt, RegisterZkModel, SubmitZkInference};
use hibana_zkml::{Calibration, InferenceProof, ProofSystem, ZkError, ZkModel};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::{
    cli::common::{NodeHome, Sent, TxFlags, client, sign_and_submit, signing_key},
    output::{print_json, print_pending, print_receipt},
};

/// `hibana zk <command>`: local commands, which need no node, and chain commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ZkCommand {
    #[command(flatten)]
    Local(LocalCommand),
    #[command(flatten)]
    Chain(ChainCommand),
}

/// The `hibana zk` commands that talk to a node.
#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
    /// Register a compiled model on chain (RegisterZkModel), so proofs of it can be submitted.
    Register {
        /// The compiled model (.zkm).
        zkm: PathBuf,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Submit a proof of a registered model (SubmitZkInference); the chain verifies it and
    /// stores the result under an id (blake3 of the proof file).
    Submit {
        /// The registered model's .zkm.
        zkm: PathBuf,
        /// The proof file (from `hibana zk prove` or a provider's /v1/zk/infer).
        proof: PathBuf,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Show a registered model: by commitment (hex) or by the path of its .zkm.
    ShowModel {
        /// Model commitment, or a .zkm file.
        model: String,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Show a verified inference result by id.
    Result {
        /// The result id printed by `hibana zk submit` (hex).
        id: String,
        #[command(flatten)]
        node: NodeHome,
    },
}

/// The `hibana zk` commands that need no chain.
#[derive(Debug, Subcommand)]
pub(crate) enum LocalCommand {
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
        #[arg(long, value_enum, default_value_t = SystemArg::from(ProofSystem::default()))]
        system: SystemArg,
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

/// The proof system, as `--system` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SystemArg {
    /// halo2 PLONK with IPA commitments over the Pasta curves: proofs of about 5 KB.
    Halo2,
    /// A STARK (Plonky3, FRI over KoalaBear, zero knowledge): proofs of about 150 KB that
    /// verify several times faster.
    Stark,
}

impl From<ProofSystem> for SystemArg {
    fn from(system: ProofSystem) -> Self {
        match system {
            ProofSystem::Halo2 => SystemArg::Halo2,
            ProofSystem::Stark => SystemArg::Stark,
        }
    }
}

impl From<SystemArg> for ProofSystem {
    fn from(system: SystemArg) -> Self {
        match system {
            SystemArg::Halo2 => ProofSystem::Halo2,
            SystemArg::Stark => ProofSystem::Stark,
        }
    }
}

/// Where the `zk` commands keep halo2's parameters: `HIBANA_ZK_PARAMS`, else the user's cache
/// folder.
fn params_dir() -> std::path::PathBuf {
    std::env::var_os("HIBANA_ZK_PARAMS")
        .map(std::path::PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|c| c.join("hibana").join("zk-params")))
        .unwrap_or_else(|| std::env::temp_dir().join("hibana-zk-params"))
}

/// Runs a local `hibana zk` command; `json` prints one JSON document to stdout instead of text.
pub(crate) fn local(cmd: &LocalCommand, json: bool) -> Result<ExitCode> {
    // A ZkError's message already names its cause: `{:#}` would print the cause twice.
    run_local(cmd, json).map_err(|e| anyhow!("{e}"))?;
    Ok(ExitCode::SUCCESS)
}

fn run_local(cmd: &LocalCommand, json: bool) -> Result<(), ZkError> {
    // halo2's IPA parameters take seconds to derive: the CLI keeps them between runs. A node
    // never does, so no file on its disk can change a verdict.
    hibana_zkml::set_params_dir(params_dir());
    let summary = match cmd {
        LocalCommand::Compile {
            model,
            calibration,
            out,
            system,
        } => compile(model, calibration, out, (*system).into(), json)?,
        LocalCommand::Prove {
            zkm,
            input,
            out,
            public_input,
        } => prove(zkm, input, out, *public_input, json)?,
        LocalCommand::Verify { zkm, proof } => verify_proof(zkm, proof, json)?,
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

fn verify_proof(
    zkm_path: &Path,
    proof_path: &Path,
    quiet: bool,
) -> Result<serde_json::Value, ZkError> {
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

fn read_file(path: &PathBuf, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

fn parse_id(what: &str, text: &str) -> Result<[u8; 32]> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| anyhow!("{what} must be 64 hex characters, got {text:?}"))
}

/// Explains a refused transaction in the terms of the command that sent it.
fn refused(e: anyhow::Error, what: &str) -> anyhow::Error {
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Rpc { message, .. }) => {
            anyhow!("the chain refused the {what}: {message}")
        }
        Some(ClientError::Rejected { reason, .. }) => {
            anyhow!("the chain refused the {what}: {reason}")
        }
        _ => e,
    }
}

/// Runs an on-chain `hibana zk` command.
pub(crate) async fn chain(cmd: ChainCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        ChainCommand::Register { zkm, tx } => register(zkm, &tx, rpc, json).await,
        ChainCommand::Submit { zkm, proof, tx } => submit(zkm, proof, &tx, rpc, json).await,
        ChainCommand::ShowModel { model, node } => {
            let commitment = match PathBuf::from(&model) {
                path if path.is_file() => ZkModel::from_bytes(&read_file(&path, ".zkm")?)
                    .with_context(|| format!("{} is not a valid .zkm", path.display()))?
                    .commitment(),
                _ => parse_id("the model commitment", &model)?,
            };
            let client = client(rpc, node.home.as_deref())?;
            let Some(view) = client.zk_model(&commitment).await? else {
                bail!(
                    "model {} is not registered on this chain; register it with `hibana zk register MODEL.zkm --from KEY`",
                    hex::encode(commitment)
                );
            };
            print_model(&view, json)?;
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Result { id, node } => {
            let id = parse_id("the result id", &id)?;
            let client = client(rpc, node.home.as_deref())?;
            let Some(view) = client.zk_inference(&id).await? else {
                bail!(
                    "no verified inference has id {} on this chain",
                    hex::encode(id)
                );
            };
            print_inference(&view, json)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn register(
    path: PathBuf,
    flags: &TxFlags,
    rpc: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let bytes = read_file(&path, ".zkm")?;
    let zkm = ZkModel::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid .zkm", path.display()))?;
    let commitment = zkm.commitment();
    let client = client(rpc, flags.keys.home.as_deref())?;
    if let Some(existing) = client.zk_model(&commitment).await? {
        bail!(
            "model {} is already registered (by {} at height {}, as a .zkm of {} bytes); submit proofs with `hibana zk submit` and that .zkm",
            existing.commitment,
            existing.owner,
            existing.registered_at,
            existing.zkm_bytes
        );
    }
    let key = signing_key(&flags.from, &flags.keys)?;
    if !json {
        eprintln!(
            "Registering model {} ({} bytes; registration fee {} base units)",
            hex::encode(commitment),
            bytes.len(),
            verify::registration_fee(bytes.len()).0
        );
    }
    let sent = sign_and_submit(
        &client,
        &key,
        Message::RegisterZkModel(RegisterZkModel { zkm: bytes }),
        flags,
    )
    .await
    .map_err(|e| refused(e, "model registration"))?;
    let commitment = hex::encode(commitment);
    finish(sent, json, &[("model_commitment", commitment.as_str())])
}

async fn submit(
    zkm_path: PathBuf,
    proof_path: PathBuf,
    flags: &TxFlags,
    rpc: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let zkm_bytes = read_file(&zkm_path, ".zkm")?;
    let zkm = ZkModel::from_bytes(&zkm_bytes)
        .with_context(|| format!("{} is not a valid .zkm", zkm_path.display()))?;
    let proof_bytes = read_file(&proof_path, "proof")?;
    let proof = InferenceProof::from_bytes(&proof_bytes)
        .with_context(|| format!("{} is not a valid proof file", proof_path.display()))?;
    if proof.model != zkm.commitment() {
        bail!(
            "the proof is for model {}, not for {} (model {})",
            hex::encode(proof.model),
            zkm_path.display(),
            hex::encode(zkm.commitment())
        );
    }
    let client = client(rpc, flags.keys.home.as_deref())?;
    if client.zk_model(&proof.model).await?.is_none() {
        bail!(
            "model {} is not registered on this chain: register it first with `hibana zk register {} --from KEY`",
            hex::encode(proof.model),
            zkm_path.display()
        );
    }
    let message = SubmitZkInference {
        zkm: zkm_bytes,
        proof: proof_bytes,
    };
    let id = verify::submission_id(&message);
    if let Some(existing) = client.zk_inference(&id).await? {
        bail!(
            "this proof was already submitted: result {} at height {}",
            existing.id,
            existing.included_at
        );
    }
    let key = signing_key(&flags.from, &flags.keys)?;
    if !json {
        eprintln!(
            "Submitting a proof of model {} (verification fee {} base units)",
            hex::encode(proof.model),
            verify::verification_fee(zkm.system, zkm.k).0
        );
    }
    let sent = sign_and_submit(&client, &key, Message::SubmitZkInference(message), flags)
        .await
        .map_err(|e| refused(e, "proof"))?;
    let id = hex::encode(id);
    let code = finish(sent, json, &[("result_id", id.as_str())])?;
    if !json && code == ExitCode::SUCCESS {
        println!("  result id: {id}  (read it with `hibana zk result {id}`)");
    }
    Ok(code)
}

/// Prints the outcome of a sent transaction with extra fields (JSON) or lines (text).
fn finish(sent: Sent, json: bool, extra: &[(&str, &str)]) -> Result<ExitCode> {
    let receipt: Receipt = match sent {
        Sent::Pending(hash) => {
            print_pending(&hash, json)?;
            return Ok(ExitCode::SUCCESS);
        }
        Sent::Committed(receipt) => receipt,
    };
    if json {
        let mut doc = serde_json::to_value(&receipt)?;
        if let Some(map) = doc.as_object_mut() {
            for (k, v) in extra {
                map.insert((*k).to_string(), (*v).into());
            }
        }
        print_json(&doc)?;
    } else {
        print_receipt(&receipt, false)?;
    }
    Ok(if receipt.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_model(view: &ZkModelView, json: bool) -> Result<()> {
    if json {
        return print_json(view);
    }
    println!("model {}", view.commitment);
    println!("  owner:            {}", view.owner);
    println!("  registered at:    height {}", view.registered_at);
    println!("  input shape:      {:?}", view.input_shape);
    println!("  output shape:     {:?}", view.output_shape);
    println!("  circuit rows:     2^{}", view.k);
    println!("  .zkm size:        {} bytes", view.zkm_bytes);
    println!("  verification fee: {} base units", view.verification_fee.0);
    Ok(())
}

fn print_inference(view: &ZkInferenceView, json: bool) -> Result<()> {
    if json {
        return print_json(view);
    }
    println!("verified inference {}", view.id);
    println!("  model:            {}", view.model);
    println!("  input commitment: {}", view.input_commitment);
    match &view.public_input {
        Some(input) => println!("  input (public):   {input:?}"),
        None => println!("  input:            private (only its commitment is on chain)"),
    }
    println!("  output:           {:?}", view.output_values);
    println!("  class:            {}", view.class);
    println!("  submitted by:     {}", view.submitter);
    println!("  included at:      height {}", view.included_at);
    Ok(())
}
