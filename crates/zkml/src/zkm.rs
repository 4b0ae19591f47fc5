//! The `.zkm` compiled-model file, the proof file, and proving and verifying.
//!
//! Both files are `magic ‖ version (u16 LE) ‖ borsh body ‖ blake3(magic ‖ version ‖ body)`, so a
//! truncated or corrupted file is rejected with a clear error before any cryptography runs.
//! Keys are not stored: the IPA parameters are derived from public hashes (no trusted setup) and
//! the keys are regenerated deterministically from the quantised model.

use std::{path::Path, sync::Arc};

use borsh::{BorshDeserialize, BorshSerialize};
use halo2_proofs::{
    pasta::{
        EqAffine, Fp,
        group::{
            Curve,
            ff::{Field, FromUniformBytes, PrimeField},
        },
    },
    plonk::{
        self, ProvingKey, SingleVerifier, VerificationStrategy, VerifyingKey, keygen_pk, keygen_vk,
    },
    poly::commitment::{Guard, MSM, Params},
    transcript::{Blake2bRead, Blake2bWrite, Challenge255, EncodedChallenge},
};
use rand_core::{TryRng, UnwrapErr};
use serde::{Deserialize, Serialize};

use crate::{
    ZkError,
    circuit::{
        INSTANCE_HEADER, InferenceCircuit, LEGACY_NARROW, Layout, MIN_K, Packing, Witness,
        choose_layout, commitment_limbs, fe, input_commitment, k_for, packing, rows_with,
        with_layout,
    },
    memo::Memo,
    model::{Calibration, CalibrationReport, DEFAULT_ACT_BITS, FloatModel, QuantModel, calibrate},
    msm::FixedBases,
    stark::StarkModel,
};

const ZKM_MAGIC: &[u8; 4] = b"HZKM";
const PROOF_MAGIC: &[u8; 4] = b"HZKP";
/// Version of the `.zkm` format this code reads and writes (4 records the proof system).
pub const ZKM_VERSION: u16 = 4;
/// Oldest `.zkm` version this code still reads (version 1 had 8 values per dot row throughout).
const ZKM_OLDEST: u16 = 1;
/// Version of the proof format this code writes for halo2 proofs.
pub const PROOF_VERSION: u16 = 1;
/// Version of the proof format for STARK proofs.
pub const STARK_PROOF_VERSION: u16 = 2;
/// Smallest and largest circuit size (log2 rows) accepted.
const K_RANGE: std::ops::RangeInclusive<u32> = MIN_K..=20;

fn seal(magic: &[u8; 4], version: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 38);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(body);
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// Checks magic, version (from `oldest` to `version`) and checksum; returns the version found and
/// the body.
fn open<'a>(
    magic: &[u8; 4],
    oldest: u16,
    version: u16,
    what: &str,
    bytes: &'a [u8],
) -> Result<(u16, &'a [u8]), ZkError> {
    if bytes.len() < 38 {
        return Err(ZkError::Format(format!(
            "{what} is truncated ({} bytes)",
            bytes.len()
        )));
    }
    if &bytes[..4] != magic {
        return Err(ZkError::Format(format!("not a {what} (bad magic bytes)")));
    }
    let found = u16::from_le_bytes([bytes[4], bytes[5]]);
    if !(oldest..=version).contains(&found) {
        return Err(ZkError::Format(format!(
            "{what} version {found} is not supported (this build reads versions {oldest} to {version})"
        )));
    }
    let (data, sum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(data).as_bytes() != sum {
        return Err(ZkError::Format(format!(
            "{what} is corrupted or truncated (checksum mismatch)"
        )));
    }
    Ok((found, &data[6..]))
}

/// The proof system a compiled model is proved with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProofSystem {
    /// halo2 PLONK with IPA commitments over the Pasta curves: proofs of about 5 KB.
    Halo2,
    /// A STARK (Plonky3, FRI over KoalaBear, zero knowledge): proofs of about 150 KB that
    /// verify several times faster.
    #[default]
    Stark,
}

impl ProofSystem {
    /// Its name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            ProofSystem::Halo2 => "halo2",
            ProofSystem::Stark => "stark",
        }
    }
}

/// A compiled model: the quantised model, the circuit size and the calibration report.
#[derive(Debug, Clone, PartialEq)]
pub struct ZkModel {
    /// The quantised model the circuit proves.
    pub model: Arc<QuantModel>,
    /// The proof system.
    pub system: ProofSystem,
    /// log2 of the circuit's rows (for a STARK, of its layer trace).
    pub k: u32,
    /// Calibration report from compilation.
    pub report: CalibrationReport,
    /// How the circuit lays the model out.
    layout: Layout,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct ZkmBody {
    model: QuantModel,
    k: u32,
    report_json: String,
    /// Values per dot row.
    lanes: u8,
    /// Neurons per dot row.
    block: u8,
    /// Whether the circuit uses the compact layout (version 3 on).
    compact: bool,
    /// Proof system (version 4 on): 0 halo2, 1 STARK.
    system: u8,
}

/// The version 3 layout.
#[derive(BorshDeserialize)]
struct ZkmBodyV3 {
    model: QuantModel,
    k: u32,
    report_json: String,
    lanes: u8,
    block: u8,
    compact: bool,
}

/// The version 2 layout: legacy circuits, 8 or 16 values per dot row.
#[derive(BorshSerialize, BorshDeserialize)]
struct ZkmBodyV2 {
    model: QuantModel,
    k: u32,
    report_json: String,
    lanes: u8,
}

/// The version 1 layout.
#[derive(BorshDeserialize)]
struct ZkmBodyV1 {
    model: QuantModel,
    k: u32,
    report_json: String,
}

impl ZkModel {
    /// Compiles ONNX bytes with calibration samples for the default proof system: import,
    /// quantise, size the circuit.
    #[cfg(feature = "prover")]
    pub fn compile(onnx: &[u8], calibration: &Calibration) -> Result<Self, ZkError> {
        Self::compile_for(onnx, calibration, ProofSystem::default())
    }

    /// [`compile`](Self::compile) for a chosen proof system.
    #[cfg(feature = "prover")]
    pub fn compile_for(
        onnx: &[u8],
        calibration: &Calibration,
        system: ProofSystem,
    ) -> Result<Self, ZkError> {
        let float = crate::onnx::import(onnx)?;
        Self::from_float_for(&float, calibration, system)
    }

    /// Quantises an imported model and sizes its circuit for the default proof system.
    pub fn from_float(float: &FloatModel, calibration: &Calibration) -> Result<Self, ZkError> {
        Self::from_float_for(float, calibration, ProofSystem::default())
    }

    /// [`from_float`](Self::from_float) for a chosen proof system.
    pub fn from_float_for(
        float: &FloatModel,
        calibration: &Calibration,
        system: ProofSystem,
    ) -> Result<Self, ZkError> {
        let (model, report) = calibrate(float, calibration, DEFAULT_ACT_BITS)?;
        let layout = choose_layout(&model);
        let k = size(&model, layout, system)?;
        Ok(ZkModel {
            model: Arc::new(model),
            system,
            k,
            report,
            layout,
        })
    }

    /// How the circuit lays the model out, in words (the `.zkm` records it).
    pub fn layout_description(&self) -> String {
        if self.system == ProofSystem::Stark {
            return format!(
                "STARK: {} terms per layer-trace row, 2^{} rows",
                crate::stark::LANES,
                self.k
            );
        }
        let l = self.layout;
        format!(
            "{}: {} values × {} neuron{} per dot row",
            if l.compact {
                "compact (.zkm v3)"
            } else {
                "legacy (.zkm v1-2)"
            },
            l.lanes,
            l.block,
            if l.block == 1 { "" } else { "s" }
        )
    }

    /// The model commitment (content hash of the quantised model), as registered on chain.
    pub fn commitment(&self) -> [u8; 32] {
        self.model.commitment()
    }

    /// Serialises to the `.zkm` format.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ZkError> {
        let body = ZkmBody {
            model: (*self.model).clone(),
            k: self.k,
            report_json: serde_json::to_string(&self.report)
                .map_err(|e| ZkError::Format(e.to_string()))?,
            lanes: self.layout.lanes as u8,
            block: self.layout.block as u8,
            compact: self.layout.compact,
            system: match self.system {
                ProofSystem::Halo2 => 0,
                ProofSystem::Stark => 1,
            },
        };
        let body = borsh::to_vec(&body).map_err(|e| ZkError::Format(e.to_string()))?;
        Ok(seal(ZKM_MAGIC, ZKM_VERSION, &body))
    }

    /// Parses and validates the `.zkm` format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        let (version, body) = open(ZKM_MAGIC, ZKM_OLDEST, ZKM_VERSION, ".zkm file", bytes)?;
        let undecodable =
            |e: std::io::Error| ZkError::Format(format!(".zkm body does not decode: {e}"));
        let legacy = |model, k, report_json, lanes: usize| ZkmBody {
            model,
            k,
            report_json,
            lanes: lanes as u8,
            block: 1,
            compact: false,
            system: 0,
        };
        let body = match version {
            1 => {
                let v1 = ZkmBodyV1::try_from_slice(body).map_err(undecodable)?;
                legacy(v1.model, v1.k, v1.report_json, LEGACY_NARROW.lanes)
            }
            2 => {
                let v2 = ZkmBodyV2::try_from_slice(body).map_err(undecodable)?;
                legacy(v2.model, v2.k, v2.report_json, v2.lanes.into())
            }
            3 => {
                let v3 = ZkmBodyV3::try_from_slice(body).map_err(undecodable)?;
                ZkmBody {
                    model: v3.model,
                    k: v3.k,
                    report_json: v3.report_json,
                    lanes: v3.lanes,
                    block: v3.block,
                    compact: v3.compact,
                    system: 0,
                }
            }
            _ => ZkmBody::try_from_slice(body).map_err(undecodable)?,
        };
        let system = match body.system {
            0 => ProofSystem::Halo2,
            1 => ProofSystem::Stark,
            other => {
                return Err(ZkError::Format(format!(
                    ".zkm proof system {other} is unknown"
                )));
            }
        };
        body.model.validate()?;
        let layout = Layout {
            lanes: body.lanes.into(),
            block: body.block.into(),
            compact: body.compact,
        };
        if !layout.supports(&body.model) {
            return Err(ZkError::Format(format!(
                ".zkm circuit layout ({} values and {} neurons per dot row{}) is not supported \
                 for this model",
                layout.lanes,
                layout.block,
                if layout.compact { ", compact" } else { "" }
            )));
        }
        let k = size(&body.model, layout, system)
            .map_err(|e| ZkError::Format(format!(".zkm model cannot be proved: {e}")))?;
        let fits = match system {
            ProofSystem::Halo2 => K_RANGE.contains(&body.k) && k <= body.k,
            ProofSystem::Stark => k == body.k,
        };
        if !fits {
            return Err(ZkError::Format(format!(
                ".zkm circuit size 2^{} does not fit its model (2^{k} rows)",
                body.k
            )));
        }
        let report = serde_json::from_str(&body.report_json)
            .map_err(|e| ZkError::Format(format!(".zkm report does not decode: {e}")))?;
        Ok(ZkModel {
            model: Arc::new(body.model),
            system,
            k: body.k,
            report,
            layout,
        })
    }

    /// Reads a `.zkm` file.
    pub fn read(path: &Path) -> Result<Self, ZkError> {
        let bytes = std::fs::read(path).map_err(|e| ZkError::io(path, e))?;
        Self::from_bytes(&bytes)
    }

    /// How the input commitment packs and hashes the input.
    fn packing(&self) -> Packing {
        packing(&self.model, self.layout)
    }

    fn circuit<const L: usize, const B: usize, const C: bool>(
        &self,
        witness: Option<Witness>,
    ) -> InferenceCircuit<L, B, C> {
        InferenceCircuit {
            model: self.model.clone(),
            witness,
        }
    }

    /// Derives the verifying key: for halo2 the transparent IPA parameters and the key, for a
    /// STARK the commitment to the model's fixed columns.
    pub fn verifier(&self) -> Result<Verifier, ZkError> {
        let backend = match self.system {
            ProofSystem::Halo2 => Backend::Halo2(Box::new(self.halo2_verifier()?)),
            ProofSystem::Stark => Backend::Stark(Box::new(StarkModel::new(self.model.clone())?)),
        };
        Ok(Verifier {
            zkm: self.clone(),
            commitment: self.commitment(),
            backend,
        })
    }

    fn halo2_verifier(&self) -> Result<Halo2Verifier, ZkError> {
        let params = ipa_params(self.k);
        fn vk<const L: usize, const B: usize, const C: bool>(
            zkm: &ZkModel,
            params: &Params<EqAffine>,
        ) -> Result<VerifyingKey<EqAffine>, plonk::Error> {
            keygen_vk(params, &zkm.circuit::<L, B, C>(None))
        }
        let vk = with_layout!(self.layout, vk(self, &params)).map_err(ZkError::from_halo2)?;
        Ok(Halo2Verifier {
            bases: std::sync::OnceLock::new(),
            verifications: Default::default(),
            params,
            vk,
        })
    }

    /// Derives the verifier and, for halo2, the proving key.
    #[cfg(feature = "prover")]
    pub fn prover(&self) -> Result<Prover, ZkError> {
        let verifier = self.verifier()?;
        let Backend::Halo2(h) = &verifier.backend else {
            return Ok(Prover { verifier, pk: None });
        };
        let (params, vk) = (&h.params, h.vk.clone());
        fn pk<const L: usize, const B: usize, const C: bool>(
            zkm: &ZkModel,
            params: &Params<EqAffine>,
            vk: VerifyingKey<EqAffine>,
        ) -> Result<ProvingKey<EqAffine>, plonk::Error> {
            keygen_pk(params, vk, &zkm.circuit::<L, B, C>(None))
        }
        let pk = with_layout!(self.layout, pk(self, params, vk)).map_err(ZkError::from_halo2)?;
        Ok(Prover {
            verifier,
            pk: Some(pk),
        })
    }
}

/// log2 of the rows `model` needs in `system` (for halo2 in `layout`).
fn size(model: &QuantModel, layout: Layout, system: ProofSystem) -> Result<u32, ZkError> {
    match system {
        ProofSystem::Halo2 => {
            let rows = rows_with(model, layout);
            let k = k_for(rows);
            if !K_RANGE.contains(&k) {
                return Err(ZkError::TooLarge { rows });
            }
            Ok(k)
        }
        ProofSystem::Stark => crate::stark::layer_rows_log2(model),
    }
}

/// The IPA parameters for 2^k rows: generators hashed to the curve from a public string, so
/// nobody knows relations between them (no trusted setup). Deriving them takes seconds, so they
/// are remembered in the process (they depend on `k` alone) and, when a program set a folder
/// with [`set_params_dir`], kept there as a plain cache. Nothing here reads the environment: a
/// validator's verdicts never depend on a file on its disk unless its program chose so.
fn ipa_params(k: u32) -> Params<EqAffine> {
    static PARAMS: Memo<u32, Params<EqAffine>> = Memo::new(32);
    if let Some(p) = PARAMS.get(&k) {
        return p;
    }
    // Read or derived without the memo's lock: deriving runs on rayon, and a rayon worker
    // waiting there may pick up another verification that needs these parameters.
    PARAMS.put(k, read_or_derive_params(k))
}

/// The folder [`set_params_dir`] named, if any.
static PARAMS_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Keeps halo2's derived IPA parameters in `dir` across runs of a program (the CLI's prover, for
/// instance). Only the first call counts; a file there that does not decode is rewritten.
pub fn set_params_dir(dir: impl Into<std::path::PathBuf>) {
    let _ = PARAMS_DIR.set(dir.into());
}

/// The IPA parameters for 2^k rows from the cache file, or derived (and the file written).
fn read_or_derive_params(k: u32) -> Params<EqAffine> {
    let file = PARAMS_DIR
        .get()
        .map(|d| d.join(format!("pasta-ipa-k{k}.params")));
    let from_disk = file
        .as_ref()
        .and_then(|f| std::fs::read(f).ok())
        // k ‖ 2^k generators and their Lagrange forms ‖ w ‖ u: check before decoding, so a
        // damaged file cannot ask for a huge allocation.
        .filter(|b| b.len() == 4 + (64usize << k) + 64 && b[..4] == k.to_le_bytes())
        .and_then(|bytes| Params::<EqAffine>::read(&mut bytes.as_slice()).ok())
        .filter(|p| p.k() == k);
    from_disk.unwrap_or_else(|| {
        let params = Params::<EqAffine>::new(k);
        if let Some(f) = &file {
            let mut bytes = Vec::new();
            // The cache is an optimisation: failing to write it is not an error.
            if params.write(&mut bytes).is_ok()
                && f.parent()
                    .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
            {
                let tmp = f.with_extension(format!("tmp{}", std::process::id()));
                if std::fs::write(&tmp, &bytes).is_ok() {
                    let _ = std::fs::rename(&tmp, f);
                }
            }
        }
        params
    })
}

/// How the proof binds the input.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum InputBinding {
    /// Only the Poseidon commitment to (salt, input) is revealed.
    Private {
        /// Commitment (field element, little-endian).
        commitment: [u8; 32],
    },
    /// The quantised input and the salt are revealed; the verifier recomputes the commitment.
    Public {
        /// Quantised input.
        input: Vec<i64>,
        /// Salt (field element, little-endian).
        salt: [u8; 32],
    },
}

/// A proof of one inference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferenceProof {
    /// The proof system (the file's format version says which).
    pub system: ProofSystem,
    /// Commitment of the model the proof is for.
    pub model: [u8; 32],
    /// The input, committed or in the clear.
    pub input: InputBinding,
    /// Quantised output (divide by 2^output_scale for real values).
    pub output: Vec<i64>,
    /// The halo2 or STARK proof.
    pub proof: Vec<u8>,
}

/// The proof file's body (the same for both systems).
#[derive(BorshSerialize, BorshDeserialize)]
struct ProofBody {
    model: [u8; 32],
    input: InputBinding,
    output: Vec<i64>,
    proof: Vec<u8>,
}

impl InferenceProof {
    /// Serialises to the proof file format.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ZkError> {
        let body = ProofBody {
            model: self.model,
            input: self.input.clone(),
            output: self.output.clone(),
            proof: self.proof.clone(),
        };
        let body = borsh::to_vec(&body).map_err(|e| ZkError::Format(e.to_string()))?;
        let version = match self.system {
            ProofSystem::Halo2 => PROOF_VERSION,
            ProofSystem::Stark => STARK_PROOF_VERSION,
        };
        Ok(seal(PROOF_MAGIC, version, &body))
    }

    /// Parses the proof file format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        let (version, body) = open(
            PROOF_MAGIC,
            PROOF_VERSION,
            STARK_PROOF_VERSION,
            "proof file",
            bytes,
        )?;
        let body = ProofBody::try_from_slice(body)
            .map_err(|e| ZkError::Format(format!("proof body does not decode: {e}")))?;
        Ok(InferenceProof {
            system: if version == STARK_PROOF_VERSION {
                ProofSystem::Stark
            } else {
                ProofSystem::Halo2
            },
            model: body.model,
            input: body.input,
            output: body.output,
            proof: body.proof,
        })
    }

    /// The input commitment this proof claims, for the model `zkm` (a public input is
    /// committed as that model's circuit packs it).
    pub fn input_commitment(&self, zkm: &ZkModel) -> Result<[u8; 32], ZkError> {
        match (&self.input, zkm.system) {
            (InputBinding::Private { commitment }, _) => Ok(*commitment),
            (InputBinding::Public { input, salt }, ProofSystem::Halo2) => {
                let salt = field_from_bytes(salt)?;
                Ok(input_commitment(input, salt, zkm.packing()).to_repr())
            }
            (InputBinding::Public { input, salt }, ProofSystem::Stark) => {
                crate::stark::input_commitment(input, salt)
            }
        }
    }
}

fn field_from_bytes(bytes: &[u8; 32]) -> Result<Fp, ZkError> {
    Option::from(Fp::from_repr(*bytes))
        .ok_or_else(|| ZkError::Format("a field element is not canonical".into()))
}

/// Checks proofs for one model (parameters and verifying key derived once).
#[derive(Debug)]
pub struct Verifier {
    zkm: ZkModel,
    /// The model commitment, hashed once (a large model's weights take milliseconds).
    commitment: [u8; 32],
    backend: Backend,
}

/// The proof system's verifying data.
#[derive(Debug)]
enum Backend {
    Halo2(Box<Halo2Verifier>),
    Stark(Box<StarkModel>),
}

/// halo2's parameters and verifying key.
#[derive(Debug)]
struct Halo2Verifier {
    params: Params<EqAffine>,
    vk: VerifyingKey<EqAffine>,
    /// The generators' precomputed multiples (circuits up to 2^12 rows), made at the second
    /// verification: building them costs several verifications' worth of time, which a
    /// one-off check (the CLI's) would not win back.
    bases: std::sync::OnceLock<Option<Arc<FixedBases>>>,
    /// Verifications started, to know when the tables pay.
    verifications: std::sync::atomic::AtomicUsize,
}

/// What a successful verification establishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedInference {
    /// Model commitment (hex).
    pub model: String,
    /// Input commitment (hex).
    pub input_commitment: String,
    /// Whether the input was revealed.
    pub public_input: bool,
    /// Quantised output.
    pub output: Vec<i64>,
    /// Output as real numbers.
    pub output_values: Vec<f64>,
    /// Predicted class (argmax of the output; threshold 0.5 for one sigmoid output).
    pub class: usize,
}

impl Verifier {
    /// The compiled model this verifier checks.
    pub fn zkm(&self) -> &ZkModel {
        &self.zkm
    }

    /// Verifies a proof file (bytes) for this model.
    pub fn verify_file(&self, proof: &[u8]) -> Result<VerifiedInference, ZkError> {
        self.verify(&InferenceProof::from_bytes(proof)?)
    }

    /// Verifies a proof for this model and returns what it proves.
    pub fn verify(&self, proof: &InferenceProof) -> Result<VerifiedInference, ZkError> {
        let model = self.commitment;
        if proof.system != self.zkm.system {
            return Err(ZkError::InvalidProof(format!(
                "this is a {} proof; the model is compiled for {}",
                proof.system.name(),
                self.zkm.system.name()
            )));
        }
        if proof.model != model {
            return Err(ZkError::ModelMismatch {
                proof: hex::encode(proof.model),
                zkm: hex::encode(model),
            });
        }
        if proof.output.len() != self.zkm.model.output_len() {
            return Err(ZkError::InvalidProof(format!(
                "{} output values, the model has {}",
                proof.output.len(),
                self.zkm.model.output_len()
            )));
        }
        if let InputBinding::Public { input, .. } = &proof.input {
            if input.len() != self.zkm.model.input_len as usize {
                return Err(ZkError::InputShape {
                    got: input.len(),
                    want: self.zkm.model.input_len as usize,
                });
            }
            // The circuit range-checks every input, which is what makes the packing in the
            // commitment one-to-one: a revealed value outside the range could stand for another
            // input with the same commitment.
            let (lo, hi) = (self.zkm.model.act_min(), self.zkm.model.act_max());
            if let Some((i, v)) = input
                .iter()
                .enumerate()
                .find(|(_, v)| !(lo..=hi).contains(*v))
            {
                return Err(ZkError::InvalidProof(format!(
                    "revealed input {i} is {v}, outside the quantised range {lo}..={hi}"
                )));
            }
        }
        let commitment = proof.input_commitment(&self.zkm)?;
        self.verify_raw(&proof.model, &commitment, &proof.output, &proof.proof)?;
        let values = self.zkm.model.dequantise_output(&proof.output);
        Ok(VerifiedInference {
            model: hex::encode(model),
            input_commitment: hex::encode(commitment),
            public_input: matches!(proof.input, InputBinding::Public { .. }),
            class: self.zkm.model.classify(&values),
            output: proof.output.clone(),
            output_values: values,
        })
    }

    /// Checks the proof bytes against explicit public values (model commitment, input
    /// commitment, output), without the file-level checks.
    pub fn verify_raw(
        &self,
        model: &[u8; 32],
        input_commitment: &[u8; 32],
        output: &[i64],
        proof: &[u8],
    ) -> Result<(), ZkError> {
        match &self.backend {
            Backend::Halo2(h) => h.check(model, input_commitment, output, proof, h.bases()),
            Backend::Stark(stark) => {
                if *model != self.commitment {
                    return Err(ZkError::ModelMismatch {
                        proof: hex::encode(model),
                        zkm: hex::encode(self.commitment),
                    });
                }
                stark.verify(input_commitment, output, proof)
            }
        }
    }
}

impl Halo2Verifier {
    /// The generator tables, unless this is the verifier's first verification.
    fn bases(&self) -> Option<&FixedBases> {
        use std::sync::atomic::Ordering;
        if let Some(bases) = self.bases.get() {
            return bases.as_deref();
        }
        if self.verifications.fetch_add(1, Ordering::Relaxed) == 0 {
            return None;
        }
        // Built outside `get_or_init`: the build runs on rayon, and a rayon worker waiting
        // there may pick up another verification by this verifier.
        let built = FixedBases::cached(&self.params);
        self.bases.get_or_init(|| built).as_deref()
    }

    /// [`verify_raw`](Self::verify_raw), with ⟨s, G⟩ on `bases` when given, else by halo2.
    fn check(
        &self,
        model: &[u8; 32],
        input_commitment: &[u8; 32],
        output: &[i64],
        proof: &[u8],
        bases: Option<&FixedBases>,
    ) -> Result<(), ZkError> {
        let instance = instance(model, field_from_bytes(input_commitment)?, output);
        let mut rest = proof;
        // The transcript reads through `rest`, which is left holding what it did not read.
        let mut transcript = Blake2bRead::<_, EqAffine, Challenge255<_>>::init(&mut rest);
        let verdict = match (bases, opening_c(proof)) {
            (Some(bases), Some(c)) => {
                // Reading the proof runs on one thread (see `serial`); ⟨s, G⟩ and the final
                // MSM run on the caller's threads.
                serial(|| {
                    plonk::verify_proof(
                        &self.params,
                        &self.vk,
                        OpeningChallenges {
                            msm: MSM::new(first_generators()),
                        },
                        &[&[&instance]],
                        &mut transcript,
                    )
                })
                .and_then(|(mut msm, u)| {
                    let s = ipa_s(&u);
                    if s.len() != bases.len() {
                        return Err(plonk::Error::ConstraintSystemFailure);
                    }
                    // The term [−c]·G'_0, G'_0 = ⟨s, G⟩ (see `OpeningChallenges`).
                    msm.append_term(-c, bases.msm(&s).to_affine());
                    match msm.eval() {
                        true => Ok(()),
                        false => Err(plonk::Error::ConstraintSystemFailure),
                    }
                })
            }
            _ => plonk::verify_proof(
                &self.params,
                &self.vk,
                SingleVerifier::new(&self.params),
                &[&[&instance]],
                &mut transcript,
            ),
        };
        // The opening's c was taken from the proof's end, which is where the transcript read it
        // only if it read the whole proof.
        let verdict = verdict.and_then(|()| match rest.is_empty() {
            true => Ok(()),
            false => Err(plonk::Error::Transcript(std::io::Error::other(format!(
                "{} bytes after the proof's end",
                rest.len()
            )))),
        });
        verdict.map_err(|e| ZkError::InvalidProof(format!("the proof does not verify ({e})")))
    }
}

/// IPA parameters for 2 rows. Their generators G_0, G_1, W and U are the same points as every
/// larger size's (each is hashed from its own index), so an MSM over them can carry the opening's
/// one G term, [−v]·G_0, without the 2^k − 1 zero terms an MSM over the full parameters
/// multiplies out.
fn first_generators() -> &'static Params<EqAffine> {
    static PARAMS: std::sync::OnceLock<Params<EqAffine>> = std::sync::OnceLock::new();
    if let Some(params) = PARAMS.get() {
        return params;
    }
    // Derived outside `get_or_init`, which must not wait on rayon work (see `ipa_params`).
    let params = Params::new(1);
    PARAMS.get_or_init(|| params)
}

/// The first half of halo2's single-proof check (the same equation as [`SingleVerifier`]):
/// reads and checks the proof up to the opening, and hands back the check's MSM without the
/// term [−c]·⟨s, G⟩, with the opening's challenges u_j that s is made of. The caller adds that
/// term, ⟨s, G⟩ over the 2^k generators being the check's one large multiplication, and
/// evaluates the MSM.
///
/// The check's MSM is built over [`first_generators`]: halo2_proofs 0.4.1 adds only the
/// constant term to the generator scalars when it verifies a proof, and ⟨s, G⟩ is added by the
/// caller as a point (which is why halo2_proofs is pinned).
struct OpeningChallenges<'p> {
    msm: MSM<'p, EqAffine>,
}

impl<'p> VerificationStrategy<'p, EqAffine> for OpeningChallenges<'p> {
    type Output = (MSM<'p, EqAffine>, Vec<Fp>);

    fn process<E: EncodedChallenge<EqAffine>>(
        self,
        f: impl FnOnce(MSM<'p, EqAffine>) -> Result<Guard<'p, EqAffine, E>, plonk::Error>,
    ) -> Result<Self::Output, plonk::Error> {
        let guard = f(self.msm)?;
        // The guard keeps the opening's challenges u_j private, and the accumulator it hands
        // out carries them. Handing it the identity for G'_0 adds no term to the check.
        let (msm, accumulator) = guard.use_g(EqAffine::default());
        let u = accumulator
            .u_packed
            .iter()
            .map(|c| c.get_scalar())
            .collect();
        Ok((msm, u))
    }
}

/// Runs `f` on a single-thread rayon pool of the calling thread's own.
///
/// halo2_proofs 0.4.1's `best_multiexp`, given more than one thread, shifts each window's sum
/// into place on its own: c·i doublings for window i, quadratic in the window count. For the
/// instance commitment the verifier computes (a handful of terms, 85 windows) that is about
/// 10,000 doublings where the serial path does 255, so one thread is faster than two.
fn serial<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread_local! {
        static POOL: Option<rayon::ThreadPool> =
            rayon::ThreadPoolBuilder::new().num_threads(1).build().ok();
    }
    POOL.with(|pool| match pool {
        Some(pool) => pool.install(f),
        // No thread to be had: the caller's threads, as before.
        None => f(),
    })
}

/// The IPA opening's c: the proof ends with the scalars c and f, so c is the next-to-last 32
/// bytes of a proof the transcript reads to its end (which the caller checks afterwards).
fn opening_c(proof: &[u8]) -> Option<Fp> {
    let start = proof.len().checked_sub(64)?;
    let bytes: [u8; 32] = proof.get(start..start + 32)?.try_into().ok()?;
    Option::from(Fp::from_repr(bytes))
}

/// The coefficients of ∏_j (1 + u_{k−1−j}·X^(2^j)): entry i is the product of the u_j whose
/// bit is set in i (u_0 the top bit), the weights that fold the generators to G'_0.
fn ipa_s(u: &[Fp]) -> Vec<Fp> {
    let mut s = vec![Fp::ZERO; 1 << u.len()];
    s[0] = Fp::ONE;
    for (i, u_j) in u.iter().rev().enumerate() {
        let (low, high) = s.split_at_mut(1 << i);
        for (h, l) in high.iter_mut().zip(low.iter()) {
            *h = *l * u_j;
        }
    }
    s
}

fn instance(model: &[u8; 32], commitment: Fp, output: &[i64]) -> Vec<Fp> {
    let [lo, hi] = commitment_limbs(model);
    let mut v = Vec::with_capacity(INSTANCE_HEADER + output.len());
    v.extend([lo, hi, commitment]);
    v.extend(output.iter().map(|&o| fe(o.into())));
    v
}

/// Makes proofs for one model (parameters and keys derived once).
#[cfg(feature = "prover")]
#[derive(Debug)]
pub struct Prover {
    verifier: Verifier,
    /// halo2's proving key (a STARK needs none beyond the verifier's data).
    pk: Option<ProvingKey<EqAffine>>,
}

#[cfg(feature = "prover")]
impl Prover {
    /// The matching verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Proves one inference on a float input (quantised with saturation).
    pub fn prove(&self, input: &[f32], public_input: bool) -> Result<InferenceProof, ZkError> {
        let q = self.verifier.zkm.model.quantise_input(input)?;
        self.prove_quantised(&q, public_input)
    }

    /// Proves one inference on an already quantised input.
    pub fn prove_quantised(
        &self,
        input: &[i64],
        public_input: bool,
    ) -> Result<InferenceProof, ZkError> {
        let zkm = &self.verifier.zkm;
        let model = self.verifier.commitment;
        let (h, pk) = match (&self.verifier.backend, &self.pk) {
            (Backend::Halo2(h), Some(pk)) => (h, pk),
            (Backend::Stark(stark), _) => {
                let proved = stark.prove(input)?;
                return Ok(InferenceProof {
                    system: ProofSystem::Stark,
                    model,
                    input: if public_input {
                        InputBinding::Public {
                            input: input.to_vec(),
                            salt: proved.salt,
                        }
                    } else {
                        InputBinding::Private {
                            commitment: proved.commitment,
                        }
                    },
                    output: proved.output,
                    proof: proved.proof,
                });
            }
            (Backend::Halo2(_), None) => {
                return Err(ZkError::System("the prover has no proving key".into()));
            }
        };
        let trace = zkm.model.eval(input)?;
        let mut salt_bytes = [0u8; 64];
        rand::rngs::SysRng
            .try_fill_bytes(&mut salt_bytes)
            .map_err(|e| ZkError::System(format!("no randomness from the OS: {e}")))?;
        let salt = Fp::from_uniform_bytes(&salt_bytes);
        let commitment = input_commitment(input, salt, zkm.packing());
        let output = trace.output().to_vec();
        let instance = instance(&model, commitment, &output);
        let witness = Witness {
            input: input.to_vec(),
            salt,
            #[cfg(test)]
            tamper: None,
        };
        let mut transcript = Blake2bWrite::<_, EqAffine, Challenge255<_>>::init(vec![]);
        let (params, instances) = (&h.params, &[&[&instance[..]][..]]);
        let rng = UnwrapErr(rand::rngs::SysRng);
        type Transcript = Blake2bWrite<Vec<u8>, EqAffine, Challenge255<EqAffine>>;
        fn create<const L: usize, const B: usize, const C: bool>(
            zkm: &ZkModel,
            witness: Witness,
            params: &Params<EqAffine>,
            pk: &ProvingKey<EqAffine>,
            instances: &[&[&[Fp]]],
            rng: UnwrapErr<rand::rngs::SysRng>,
            transcript: &mut Transcript,
        ) -> Result<(), plonk::Error> {
            let circuit = zkm.circuit::<L, B, C>(Some(witness));
            plonk::create_proof(params, pk, &[circuit], instances, rng, transcript)
        }
        with_layout!(
            zkm.layout,
            create(zkm, witness, params, pk, instances, rng, &mut transcript)
        )
        .map_err(ZkError::from_halo2)?;
        Ok(InferenceProof {
            system: ProofSystem::Halo2,
            model,
            input: if public_input {
                InputBinding::Public {
                    input: input.to_vec(),
                    salt: salt.to_repr(),
                }
            } else {
                InputBinding::Private {
                    commitment: commitment.to_repr(),
                }
            },
            output,
            proof: transcript.finalize(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::test_support::testdata;

    fn credit() -> ZkModel {
        let onnx = testdata("credit_mlp.onnx");
        let cal = testdata("credit_calibration.json");
        ZkModel::compile_for(
            &onnx,
            &serde_json::from_slice(&cal).unwrap(),
            ProofSystem::Halo2,
        )
        .unwrap()
    }

    /// The halo2 part of a halo2 model's verifier.
    fn halo2(verifier: &Verifier) -> &Halo2Verifier {
        match &verifier.backend {
            Backend::Halo2(h) => h,
            Backend::Stark(_) => panic!("a halo2 model"),
        }
    }

    #[test]
    fn a_version_1_zkm_still_reads_with_the_legacy_layout() {
        let compact = credit();
        let zkm = ZkModel {
            layout: LEGACY_NARROW,
            k: k_for(rows_with(&compact.model, LEGACY_NARROW)),
            ..compact
        };
        let v1 = borsh::to_vec(&(
            (*zkm.model).clone(),
            zkm.k,
            serde_json::to_string(&zkm.report).unwrap(),
        ))
        .unwrap();
        let read = ZkModel::from_bytes(&seal(ZKM_MAGIC, 1, &v1)).unwrap();
        assert_eq!(read, zkm);
        // Version 2 records the width; an unsupported one is refused by name.
        let v2 = |lanes: u8| {
            let body = ZkmBodyV2 {
                model: (*zkm.model).clone(),
                k: zkm.k,
                report_json: serde_json::to_string(&zkm.report).unwrap(),
                lanes,
            };
            seal(ZKM_MAGIC, 2, &borsh::to_vec(&body).unwrap())
        };
        assert_eq!(ZkModel::from_bytes(&v2(8)).unwrap(), zkm);
        let err = ZkModel::from_bytes(&v2(12)).unwrap_err().to_string();
        assert!(err.contains("12 values"), "{err}");
        // A version 1 body is not a version 3 one.
        assert!(ZkModel::from_bytes(&seal(ZKM_MAGIC, 3, &v1)).is_err());
    }

    #[test]
    fn a_new_compilation_is_compact_and_round_trips_through_version_4() {
        let zkm = credit();
        assert!(zkm.layout.compact);
        let bytes = zkm.to_bytes().unwrap();
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 4);
        assert_eq!(ZkModel::from_bytes(&bytes).unwrap(), zkm);
        let raw = open(ZKM_MAGIC, 4, 4, "", &bytes).unwrap().1.to_vec();
        // A version 3 body is a version 4 one without the proof system (last): halo2.
        let v3 = ZkModel::from_bytes(&seal(ZKM_MAGIC, 3, &raw[..raw.len() - 1])).unwrap();
        assert_eq!(v3, zkm);
        // A layout this build has no circuit for is refused, not run as another.
        let mut body = ZkmBody::try_from_slice(&raw).unwrap();
        body.block = 4;
        let err = ZkModel::from_bytes(&seal(ZKM_MAGIC, 4, &borsh::to_vec(&body).unwrap()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("4 neurons"), "{err}");
        // So is a proof system this build does not know.
        body.block = 1;
        body.system = 9;
        let err = ZkModel::from_bytes(&seal(ZKM_MAGIC, 4, &borsh::to_vec(&body).unwrap()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("proof system 9"), "{err}");
    }

    /// A STARK model round-trips through its `.zkm`, proves through the same prover API, and its
    /// verifier refuses a halo2 proof of the same model (and the other way round).
    #[test]
    fn stark_models_prove_and_verify_through_the_zkm_api() {
        let onnx = testdata("credit_mlp.onnx");
        let cal: Calibration =
            serde_json::from_slice(&testdata("credit_calibration.json")).unwrap();
        let zkm = ZkModel::compile(&onnx, &cal).unwrap();
        assert_eq!(zkm.system, ProofSystem::Stark);
        assert_eq!(ZkModel::from_bytes(&zkm.to_bytes().unwrap()).unwrap(), zkm);
        let prover = zkm.prover().unwrap();
        let x = cal.inputs[0].clone();
        for public in [false, true] {
            let proof = prover.prove(&x, public).unwrap();
            let bytes = proof.to_bytes().unwrap();
            assert_eq!(
                u16::from_le_bytes([bytes[4], bytes[5]]),
                STARK_PROOF_VERSION
            );
            let read = InferenceProof::from_bytes(&bytes).unwrap();
            assert_eq!(read, proof);
            let verified = prover.verifier().verify_file(&bytes).unwrap();
            assert_eq!(verified.public_input, public);
            assert_eq!(
                verified.input_commitment,
                hex::encode(proof.input_commitment(&zkm).unwrap())
            );
            let mut changed = proof.clone();
            changed.output[0] += 1;
            assert!(prover.verifier().verify(&changed).is_err());
            if let InputBinding::Public { input, salt } = &proof.input {
                let mut other = proof.clone();
                let mut input = input.clone();
                input[0] += 1;
                other.input = InputBinding::Public { input, salt: *salt };
                assert!(prover.verifier().verify(&other).is_err());
            }
        }
        let halo2 = credit();
        let halo2_proof = halo2.prover().unwrap().prove(&x, false).unwrap();
        let err = prover
            .verifier()
            .verify(&halo2_proof)
            .unwrap_err()
            .to_string();
        assert!(err.contains("this is a halo2 proof"), "{err}");
        let stark_proof = prover.prove(&x, false).unwrap();
        let err = halo2
            .verifier()
            .unwrap()
            .verify(&stark_proof)
            .unwrap_err()
            .to_string();
        assert!(err.contains("this is a stark proof"), "{err}");
    }

    /// The first-generators parameters are the same points as a full size's: G_0, G_1, and W and
    /// U (the last 64 bytes of the written parameters).
    #[test]
    fn the_first_generators_are_every_size_s_first_generators() {
        let (tiny, full) = (first_generators(), ipa_params(10));
        assert_eq!(tiny.get_g()[..], full.get_g()[..2]);
        let bytes = |p: &Params<EqAffine>| {
            let mut b = Vec::new();
            p.write(&mut b).unwrap();
            b
        };
        let (tiny, full) = (bytes(tiny), bytes(&full));
        assert_eq!(tiny[tiny.len() - 64..], full[full.len() - 64..]);
    }

    /// The verifier with precomputed tables gives halo2's verdict on a genuine proof and on
    /// damaged ones, and refuses bytes after a proof's end.
    #[test]
    fn the_table_verifier_agrees_with_halo2() {
        let zkm = credit();
        let prover = zkm.prover().unwrap();
        let verifier = prover.verifier();
        assert!(
            halo2(verifier).bases().is_none(),
            "no tables for a first verification"
        );
        let bases = halo2(verifier).bases().expect("a 2^10 circuit gets tables");
        let proof = prover.prove(&[0.5; 16], false).unwrap();
        let ic = proof.input_commitment(&zkm).unwrap();
        let check = |output: &[i64], bytes: &[u8], tables: bool| {
            let bases = tables.then_some(bases);
            halo2(verifier)
                .check(&proof.model, &ic, output, bytes, bases)
                .is_ok()
        };
        assert!(check(&proof.output, &proof.proof, true));
        assert!(check(&proof.output, &proof.proof, false));
        let mut changed = proof.output.clone();
        changed[0] += 1;
        assert!(!check(&changed, &proof.proof, true));
        assert!(!check(&changed, &proof.proof, false));
        // Every 37th byte flipped in turn, the opening's c and f among them.
        let n = proof.proof.len();
        for i in (0..n).step_by(37).chain([n - 64, n - 33, n - 1]) {
            let mut bytes = proof.proof.clone();
            bytes[i] ^= 1;
            assert!(!check(&proof.output, &bytes, true), "byte {i}");
            assert!(!check(&proof.output, &bytes, false), "byte {i}");
        }
        // A byte after the end: halo2's own path verifies the proof and then finds it; the
        // table path may already fail on the c it read one byte off.
        let mut longer = proof.proof.clone();
        longer.push(0);
        let err = halo2(verifier)
            .check(&proof.model, &ic, &proof.output, &longer, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 bytes after the proof's end"), "{err}");
        assert!(!check(&proof.output, &longer, true));
        assert!(!check(&proof.output, &proof.proof[..n - 1], true));
    }

    /// `serial` runs its work where rayon sees one thread (which is what sends halo2's MSMs to
    /// their serial path), and verifications that use it from many rayon jobs at once finish
    /// and agree.
    #[test]
    fn verifications_from_rayon_jobs_read_proofs_on_one_thread_each() {
        use rayon::prelude::*;
        assert_eq!(serial(rayon::current_num_threads), 1);
        // A deadlock fails the test instead of hanging it.
        let verdicts =
            crate::test_support::on_rayon_within(2, 300, "8 verifications from rayon jobs", || {
                let zkm = credit();
                let prover = zkm.prover().unwrap();
                let verifier = prover.verifier();
                let _ = halo2(verifier).bases();
                let bases = halo2(verifier).bases().expect("a 2^10 circuit gets tables");
                let proof = prover.prove(&[0.5; 16], false).unwrap();
                let ic = proof.input_commitment(&zkm).unwrap();
                (0..8)
                    .into_par_iter()
                    .map(|i| {
                        let mut output = proof.output.clone();
                        output[0] += i64::from(i % 2 == 1);
                        halo2(verifier)
                            .check(&proof.model, &ic, &output, &proof.proof, Some(bases))
                            .is_ok()
                    })
                    .collect::<Vec<bool>>()
            });
        let expected: Vec<bool> = (0..8).map(|i| i % 2 == 0).collect();
        assert_eq!(verdicts, expected);
    }

    /// A model compiled and proved by the version 2 code (testdata made before the compact
    /// layout) keeps its verifying key: its old proofs still verify, and a changed output does
    /// not.
    #[test]
    fn proofs_made_before_the_compact_layout_still_verify() {
        let zkm = ZkModel::from_bytes(&testdata("credit_v2.zkm")).unwrap();
        assert_eq!(zkm.layout, LEGACY_NARROW);
        let verifier = zkm.verifier().unwrap();
        for name in ["credit_v2_private.proof", "credit_v2_public.proof"] {
            let proof = InferenceProof::from_bytes(&testdata(name)).unwrap();
            verifier.verify(&proof).unwrap();
            let mut changed = proof.clone();
            changed.output[0] += 1;
            assert!(verifier.verify(&changed).is_err(), "{name}");
        }
    }
}
