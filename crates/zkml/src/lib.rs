//! Zero-knowledge proofs that a committed model produced an output on an input.
//!
//! `hibana-zkml` turns an ONNX model (Gemm/MatMul, Add, Relu, Sigmoid, Conv, AveragePool,
//! MaxPool, Flatten/Reshape, Softmax at the output) into a fixed-point circuit and proves
//! inferences with one of two transparent systems, with no trusted setup and so no party holding
//! secrets that could forge proofs ([`ProofSystem`]): a STARK ([`stark`], the default) or halo2
//! over the Pasta curves with IPA commitments.
//!
//! Data flow:
//! 1. [`onnx::import`] lowers the graph to a [`FloatModel`] (a chain of affine maps and
//!    activations).
//! 2. [`ZkModel::compile`] calibrates fixed-point scales on sample inputs ([`Calibration`]),
//!    reports float-versus-quantised accuracy ([`CalibrationReport`]) and sizes the circuit; it
//!    is saved as a `.zkm` file whose content hash is the model commitment.
//! 3. [`Prover::prove`] evaluates the quantised model and proves it; the [`InferenceProof`]
//!    binds the model commitment, the input (a hash commitment, or in the clear) and the
//!    output.
//! 4. [`Verifier::verify`] checks a proof against the `.zkm` and returns the
//!    [`VerifiedInference`].
//!
//! Security of the STARK: FRI over KoalaBear (degree-4 extension, about 124 bits) with blowup 8,
//! 28 queries and 16 bits of grinding, about 100 bits of conjectured security; Fiat–Shamir and
//! Merkle trees with Blake3; hiding commitments (zero knowledge); input commitments with
//! Poseidon2 and a 248-bit salt; weights in preprocessed columns of the verifying key.
//!
//! Security of halo2: PLONK with IPA polynomial commitments over Pallas/Vesta (255-bit curves, about
//! 126-bit discrete-log security), Fiat–Shamir with BLAKE2b, input commitments with Poseidon
//! (P128Pow5T3, 128-bit) and a 252-bit random salt. The generators are hashed to the curve from
//! a public string, so there is no trusted setup and no secret that could forge a proof. The
//! weights are fixed columns of the verifying key, which every verifier derives from the `.zkm`;
//! the model commitment is also a public input, bound through the transcript. Every input and
//! every pre-activation is range-checked by lookup, so the proof states exactly the integer
//! evaluation of [`QuantModel::eval`].
//!
//! ```no_run
//! # fn main() -> Result<(), hibana_zkml::ZkError> {
//! use hibana_zkml::{Calibration, ZkModel};
//! let onnx = std::fs::read("credit.onnx").map_err(|e| hibana_zkml::ZkError::io("credit.onnx".as_ref(), e))?;
//! let calibration = Calibration { inputs: vec![vec![0.5; 16]], labels: None };
//! let zkm = ZkModel::compile(&onnx, &calibration)?;
//! let prover = zkm.prover()?;
//! let proof = prover.prove(&[0.5; 16], false)?;
//! let verified = prover.verifier().verify(&proof)?;
//! println!("class {}", verified.class);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
// A verifier-only build (no `prover` feature) leaves the provers' trace and witness builders
// unused; they stay compiled in one place rather than behind a cfg each.
#![cfg_attr(not(feature = "prover"), allow(dead_code, unused_imports))]

mod circuit;
mod memo;
pub mod model;
mod msm;
#[cfg(feature = "prover")]
pub mod onnx;
pub mod stark;
mod zkm;

/// Helpers for the crate's tests.
#[cfg(test)]
pub(crate) mod test_support;

use std::path::Path;

pub use model::{Calibration, CalibrationReport, FloatModel, QuantModel};
#[cfg(feature = "prover")]
pub use zkm::Prover;
pub use zkm::{
    InferenceProof, InputBinding, PROOF_VERSION, ProofSystem, STARK_PROOF_VERSION,
    VerifiedInference, Verifier, ZKM_VERSION, ZkModel, set_params_dir,
};

/// Everything that can go wrong compiling, proving or verifying.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The ONNX file could not be read as a supported graph.
    #[error("ONNX: {0}")]
    Onnx(String),
    /// The graph uses an operator the circuit compiler does not support.
    #[error("unsupported ONNX operator `{op}` at node `{node}`")]
    UnsupportedOperator {
        /// Operator type, e.g. `LSTM`.
        op: String,
        /// Node name (or `#index` when unnamed).
        node: String,
    },
    /// An operator's operands do not fit together.
    #[error("node `{node}` ({op}): {why}")]
    Shape {
        /// Node name.
        node: String,
        /// Operator type.
        op: String,
        /// What does not match.
        why: String,
    },
    /// Calibration failed.
    #[error("calibration: {0}")]
    Calibration(String),
    /// The input has the wrong number of values.
    #[error("the input has {got} values, the model expects {want}")]
    InputShape {
        /// Values given.
        got: usize,
        /// Values expected.
        want: usize,
    },
    /// An input value cannot be used.
    #[error("input value {index}: {why}")]
    InputValue {
        /// Position in the flattened input.
        index: usize,
        /// Why.
        why: String,
    },
    /// An intermediate value leaves the range the circuit can prove.
    #[error(
        "layer {layer}: value {value} is outside the provable range [{min}, {max}]; the input is \
         far outside the calibration data (recompile with wider calibration samples)"
    )]
    ActivationOverflow {
        /// Layer index.
        layer: usize,
        /// Offending value.
        value: i128,
        /// Smallest provable value.
        min: i64,
        /// Largest provable value.
        max: i64,
    },
    /// The model needs a circuit larger than supported.
    #[error("the model needs {rows} circuit rows, more than the 2^20 supported")]
    TooLarge {
        /// Rows needed.
        rows: usize,
    },
    /// A `.zkm`, proof or JSON file is malformed.
    #[error("{0}")]
    Format(String),
    /// The proof is for another model.
    #[error("the proof is for model {proof}, not for this .zkm's model {zkm}")]
    ModelMismatch {
        /// Commitment in the proof.
        proof: String,
        /// Commitment of the `.zkm`.
        zkm: String,
    },
    /// The proof does not verify.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// The proving system failed (either system).
    #[error("proving system: {0}")]
    System(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl ZkError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ZkError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn from_halo2(e: halo2_proofs::plonk::Error) -> Self {
        ZkError::System(e.to_string())
    }
}
