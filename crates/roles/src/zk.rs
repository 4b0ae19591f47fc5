//! Proved inference on the provider: `POST /v1/zk/infer` runs a compiled `.zkm` model on an
//! input and returns the output with a zero-knowledge proof that the chain's verify component
//! accepts (`hibana zk submit`), under the provider's signed receipt like every other answer.
//!
//! Request: `{"model": NAME or COMMITMENT_HEX, "input": [numbers…], "private": true}`;
//! `private` (default `true`) hides the input behind a salted hash commitment, `false` reveals it
//! in the proof. Proving takes seconds, so it runs on a blocking thread, a bounded number at a
//! time; bad input is refused with a 4xx before any proving starts.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use hibana_types::Amount;
use hibana_zkml::{InputBinding, Prover, ZkError, ZkModel};
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::openai::ApiError;

/// One `.zkm` model a provider proves inferences of.
pub struct ZkServedModel {
    /// Name clients use (the file name without `.zkm`).
    pub name: String,
    /// Model commitment, as registered on chain.
    pub commitment: [u8; 32],
    /// Size of the `.zkm` file.
    pub zkm_bytes: usize,
    prover: Arc<Prover>,
}

impl std::fmt::Debug for ZkServedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ZkServedModel({}, {})",
            self.name,
            hex::encode(self.commitment)
        )
    }
}

impl ZkServedModel {
    /// Reads a `.zkm` file and derives its proving key (about a second for the test models).
    pub fn load(path: &Path) -> Result<ZkServedModel, ZkError> {
        let bytes = std::fs::read(path).map_err(|e| ZkError::io(path, e))?;
        let zkm = ZkModel::from_bytes(&bytes)
            .map_err(|e| ZkError::Format(format!("{}: {e}", path.display())))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| hex::encode(zkm.commitment()));
        Ok(ZkServedModel {
            name,
            commitment: zkm.commitment(),
            zkm_bytes: bytes.len(),
            prover: Arc::new(zkm.prover()?),
        })
    }

    fn zkm(&self) -> &ZkModel {
        self.prover.verifier().zkm()
    }

    /// Shape of one input.
    pub fn input_shape(&self) -> &[u32] {
        &self.zkm().model.input_shape
    }

    /// Shape of the output.
    pub fn output_shape(&self) -> &[u32] {
        &self.zkm().model.output_shape
    }

    /// The real-valued range of inputs the circuit proves without saturating.
    pub fn input_range(&self) -> (f64, f64) {
        let m = &self.zkm().model;
        let scale = f64::from(1u32 << m.input_scale.min(31));
        (m.act_min() as f64 / scale, m.act_max() as f64 / scale)
    }
}

/// The ZK models a provider serves, their price and how many proofs run at once.
#[derive(Debug)]
pub struct ZkService {
    models: Vec<ZkServedModel>,
    /// Price of one proof.
    pub price_per_proof: Amount,
    /// Proofs computed at once; further requests wait.
    pub capacity: usize,
    pub(crate) permits: Arc<Semaphore>,
}

impl Default for ZkService {
    fn default() -> Self {
        ZkService::new(Vec::new(), Amount(0), 1)
    }
}

impl ZkService {
    /// Serves `models` at `price_per_proof`, proving at most `capacity` at a time.
    pub fn new(models: Vec<ZkServedModel>, price_per_proof: Amount, capacity: usize) -> ZkService {
        let capacity = capacity.max(1);
        ZkService {
            models,
            price_per_proof,
            capacity,
            permits: Arc::new(Semaphore::new(capacity)),
        }
    }

    /// Loads every `.zkm` in `paths`; two files of the same name or model are refused.
    pub fn load(
        paths: &[PathBuf],
        price_per_proof: Amount,
        capacity: usize,
    ) -> Result<ZkService, ZkError> {
        let mut models: Vec<ZkServedModel> = Vec::new();
        for path in paths {
            let m = ZkServedModel::load(path)?;
            if models
                .iter()
                .any(|o| o.name == m.name || o.commitment == m.commitment)
            {
                return Err(ZkError::Format(format!(
                    "{}: a model with the name `{}` or the same commitment is already served",
                    path.display(),
                    m.name
                )));
            }
            models.push(m);
        }
        Ok(ZkService::new(models, price_per_proof, capacity))
    }

    /// The served models.
    pub fn models(&self) -> &[ZkServedModel] {
        &self.models
    }

    /// A served model by name or commitment (hex).
    pub fn find(&self, model: &str) -> Option<&ZkServedModel> {
        let model = model.trim();
        self.models
            .iter()
            .find(|m| m.name == model || hex::encode(m.commitment).eq_ignore_ascii_case(model))
    }
}

/// `POST /v1/zk/infer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkInferRequest {
    /// Model name or commitment (hex).
    pub model: String,
    /// The input values, flattened in the model's input shape.
    pub input: Vec<f64>,
    /// Hide the input behind a commitment (default) or reveal it in the proof.
    #[serde(default = "default_private")]
    pub private: bool,
}

fn default_private() -> bool {
    true
}

/// A checked request, ready to prove.
pub(crate) struct ZkJob {
    pub(crate) prover: Arc<Prover>,
    pub(crate) input: Vec<i64>,
    pub(crate) private: bool,
}

/// Checks the input against the model (count, range, provability) without proving.
pub(crate) fn prepare(served: &ZkServedModel, req: &ZkInferRequest) -> Result<ZkJob, ApiError> {
    let model = &served.zkm().model;
    let want = model.input_len as usize;
    if req.input.len() != want {
        return Err(ApiError::invalid(
            Some("input"),
            format!(
                "the input has {} values; model `{}` expects {want} (shape {:?})",
                req.input.len(),
                served.name,
                model.input_shape
            ),
        ));
    }
    let (lo, hi) = served.input_range();
    if let Some((i, v)) = req
        .input
        .iter()
        .enumerate()
        .find(|(_, v)| !(lo..=hi).contains(*v))
    {
        return Err(ApiError::invalid(
            Some("input"),
            format!(
                "input[{i}] = {v} is outside the range [{lo}, {hi}] that model `{}` can prove",
                served.name
            ),
        ));
    }
    let floats: Vec<f32> = req.input.iter().map(|&v| v as f32).collect();
    let input = model
        .quantise_input(&floats)
        .map_err(|e| ApiError::invalid(Some("input"), e.to_string()))?;
    // The quantised evaluation is cheap: an input the circuit cannot prove is refused now,
    // not after seconds of proving.
    model
        .eval(&input)
        .map_err(|e| ApiError::invalid(Some("input"), e.to_string()))?;
    Ok(ZkJob {
        prover: served.prover.clone(),
        input,
        private: req.private,
    })
}

/// Proves a checked job (blocking: seconds of CPU) and describes the result as JSON.
pub(crate) fn prove(job: &ZkJob, served_name: &str) -> Result<serde_json::Value, ZkError> {
    let start = Instant::now();
    let proof = job.prover.prove_quantised(&job.input, !job.private)?;
    let prove_ms = start.elapsed().as_secs_f64() * 1000.0;
    let bytes = proof.to_bytes()?;
    let model = &job.prover.verifier().zkm().model;
    let values = model.dequantise_output(&proof.output);
    Ok(serde_json::json!({
        "object": "zk.inference",
        "model": served_name,
        "model_commitment": hex::encode(proof.model),
        "private": job.private,
        "input_commitment": hex::encode(proof.input_commitment(job.prover.verifier().zkm())?),
        "public_input": match &proof.input {
            InputBinding::Public { input, .. } => Some(input.clone()),
            InputBinding::Private { .. } => None,
        },
        "output": proof.output,
        "output_values": values,
        "class": model.classify(&values),
        "proof": hex::encode(&bytes),
        "proof_bytes": bytes.len(),
        "result_id": hex::encode(blake3::hash(&bytes).as_bytes()),
        "prove_ms": prove_ms,
    }))
}
