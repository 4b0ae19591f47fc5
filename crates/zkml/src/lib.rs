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

mod circuit;
pub mod model;
mod msm;
pub mod onnx;
pub mod stark;
mod zkm;

/// Helpers for the crate's tests.
#[cfg(test)]
pub(crate) mod test_support {
    use proptest::prelude::*;

    use crate::model::{Activation, AffineRow, FloatLayer, FloatModel};

    /// Any activation.
    pub(crate) fn activation() -> impl Strategy<Value = Activation> {
        prop_oneof![
            Just(Activation::None),
            Just(Activation::Relu),
            Just(Activation::Sigmoid)
        ]
    }

    /// `depth` layers of `outputs` neurons each over `inputs` values, random activations;
    /// `dense` rows read every input in order, other rows up to 9 random ones.
    pub(crate) fn layered_model(
        inputs: std::ops::Range<usize>,
        outputs: std::ops::Range<usize>,
        depth: std::ops::Range<usize>,
        dense: bool,
    ) -> impl Strategy<Value = FloatModel> {
        (
            inputs,
            prop::collection::vec((outputs, activation()), depth),
        )
            .prop_flat_map(move |(n_in, shape)| {
                let mut widths = vec![n_in];
                widths.extend(shape.iter().map(|s| s.0));
                let layers: Vec<_> = shape
                    .iter()
                    .enumerate()
                    .map(|(l, &(n_out, act))| {
                        let n_prev = widths[l];
                        let terms = if dense {
                            prop::collection::vec(-1.0f32..1.0, n_prev)
                                .prop_map(|w| (0u32..).zip(w).collect::<Vec<_>>())
                                .boxed()
                        } else {
                            prop::collection::vec((0..n_prev as u32, -1.5f32..1.5), 1..10).boxed()
                        };
                        prop::collection::vec((-1.0f32..1.0, terms), n_out).prop_map(move |rows| {
                            FloatLayer {
                                rows: rows
                                    .into_iter()
                                    .map(|(bias, terms)| AffineRow { bias, terms })
                                    .collect(),
                                activation: act,
                            }
                        })
                    })
                    .collect();
                let out = *widths.last().unwrap_or(&1);
                layers.prop_map(move |layers| FloatModel {
                    input_shape: vec![n_in],
                    input_len: n_in,
                    output_shape: vec![out],
                    layers,
                    softmax_output: false,
                })
            })
    }

    /// A file of the crate's test data.
    pub(crate) fn testdata(name: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("testdata/{name}: {e}"))
    }

    /// Runs `work` inside a rayon pool of `threads` threads, on a thread of its own, and fails
    /// (instead of hanging) if it does not finish within `secs` seconds: `what` names it.
    pub(crate) fn on_rayon_within<T: Send + 'static>(
        threads: usize,
        secs: u64,
        what: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a rayon pool");
            let _ = done.send(pool.install(work));
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(secs))
            .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
    }
}

use std::path::Path;

pub use model::{Calibration, CalibrationReport, FloatModel, QuantModel};
pub use zkm::{
    InferenceProof, InputBinding, PROOF_VERSION, ProofSystem, Prover, STARK_PROOF_VERSION,
    VerifiedInference, Verifier, ZKM_VERSION, ZkModel, cached_verifier,
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
