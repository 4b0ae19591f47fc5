//! `hibana zk …`: the local zkml commands (compile, prove, verify) plus the on-chain ones:
//! `register` and `submit` sign and send `RegisterZkModel` / `SubmitZkInference`, `show-model`
//! and `result` read what the chain's verify component stored.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use hibana_rpc::{ClientError, ZkInferenceView, ZkModelView};
use hibana_runtime::verify;
use hibana_types::{Message, Receipt, RegisterZkModel, SubmitZkInference};
use hibana_zkml::{InferenceProof, ZkModel};

use crate::{
    TxFlags,
    commands::{
        Sent, client, print_json, print_pending, print_receipt, sign_and_submit, signing_key,
    },
};

/// `hibana zk <command>`.
#[derive(Debug, Subcommand)]
pub(crate) enum ZkCommand {
    #[command(flatten)]
    Local(hibana_zkml::cli::ZkCommand),
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
        /// A devnet home: talk to its node.
        #[arg(long, env = "HIBANA_HOME")]
        home: Option<PathBuf>,
    },
    /// Show a verified inference result by id.
    Result {
        /// The result id printed by `hibana zk submit` (hex).
        id: String,
        /// A devnet home: talk to its node.
        #[arg(long, env = "HIBANA_HOME")]
        home: Option<PathBuf>,
    },
}

fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>> {
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

/// Runs an on-chain `hibana zk` command (the local ones run before the async runtime starts).
pub(crate) async fn run(cmd: ZkCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        ZkCommand::Local(cmd) => {
            hibana_zkml::cli::run(&cmd, json)?;
            Ok(ExitCode::SUCCESS)
        }
        ZkCommand::Register { zkm, tx } => register(zkm, &tx, rpc, json).await,
        ZkCommand::Submit { zkm, proof, tx } => submit(zkm, proof, &tx, rpc, json).await,
        ZkCommand::ShowModel { model, home } => {
            let commitment = match PathBuf::from(&model) {
                path if path.is_file() => ZkModel::from_bytes(&read(&path, ".zkm")?)
                    .with_context(|| format!("{} is not a valid .zkm", path.display()))?
                    .commitment(),
                _ => parse_id("the model commitment", &model)?,
            };
            let client = client(rpc, home.as_deref())?;
            let Some(view) = client.zk_model(&commitment).await? else {
                bail!(
                    "model {} is not registered on this chain; register it with `hibana zk register MODEL.zkm --from KEY`",
                    hex::encode(commitment)
                );
            };
            print_model(&view, json)?;
            Ok(ExitCode::SUCCESS)
        }
        ZkCommand::Result { id, home } => {
            let id = parse_id("the result id", &id)?;
            let client = client(rpc, home.as_deref())?;
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
    let bytes = read(&path, ".zkm")?;
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
    let zkm_bytes = read(&zkm_path, ".zkm")?;
    let zkm = ZkModel::from_bytes(&zkm_bytes)
        .with_context(|| format!("{} is not a valid .zkm", zkm_path.display()))?;
    let proof_bytes = read(&proof_path, "proof")?;
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
