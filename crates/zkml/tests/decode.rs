#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Untrusted bytes (ONNX, .zkm, proof files) decode to errors, never panics.

use std::{path::Path, sync::OnceLock};

use hibana_zkml::{Calibration, InferenceProof, ZkModel, onnx};
use proptest::prelude::*;

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name),
    )
    .unwrap()
}

fn zkm_bytes() -> &'static Vec<u8> {
    static Z: OnceLock<Vec<u8>> = OnceLock::new();
    Z.get_or_init(|| {
        let cal: Calibration =
            serde_json::from_slice(&testdata("credit_calibration.json")).unwrap();
        ZkModel::compile(&testdata("credit_mlp.onnx"), &cal)
            .unwrap()
            .to_bytes()
            .unwrap()
    })
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)]) -> Vec<u8> {
    for &(at, v) in edits {
        let len = bytes.len();
        bytes[at % len] = v;
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_bytes_are_errors(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(ZkModel::from_bytes(&bytes).is_err());
        prop_assert!(InferenceProof::from_bytes(&bytes).is_err());
        let _ = onnx::import(&bytes);
    }

    /// Mutated real ONNX files import to a model or an error; a model that imports can be
    /// evaluated on a zero input without panicking.
    #[test]
    fn mutated_onnx_never_panics(
        which in 0usize..2,
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let name = ["credit_mlp.onnx", "digits_cnn.onnx"][which];
        if let Ok(model) = onnx::import(&mutate(testdata(name), &edits)) {
            let _ = model.eval(&vec![0.0; model.input_len]);
        }
    }

    /// A mutated .zkm is rejected by its checksum.
    #[test]
    fn mutated_zkm_is_rejected(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let original = zkm_bytes();
        let bytes = mutate(original.clone(), &edits);
        if &bytes != original {
            prop_assert!(ZkModel::from_bytes(&bytes).is_err());
        }
    }
}
