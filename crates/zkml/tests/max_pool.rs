#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! MaxPool: the lowering computes ONNX's max pooling exactly, and a CNN with MaxPool compiles,
//! proves and verifies.

use std::path::Path;

use hibana_zkml::{
    Calibration, ZkError, ZkModel,
    onnx::{
        self,
        proto::{AttributeProto, ModelProto, NodeProto},
    },
};
use proptest::prelude::*;
use prost::Message;

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name),
    )
    .unwrap()
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: 7,
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: v,
        r#type: 2,
        ..Default::default()
    }
}

fn node(op: &str, input: &str, output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: vec![input.into()],
        output: vec![output.into()],
        name: output.into(),
        op_type: op.into(),
        attribute,
        ..Default::default()
    }
}

/// Pooling geometry: kernel, strides, pads (top, left, bottom, right).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    kernel: [usize; 2],
    strides: [usize; 2],
    pads: [usize; 4],
}

const GEOMETRIES: [Geometry; 4] = [
    Geometry {
        kernel: [2, 2],
        strides: [2, 2],
        pads: [0, 0, 0, 0],
    },
    Geometry {
        kernel: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
    },
    Geometry {
        kernel: [3, 2],
        strides: [1, 3],
        pads: [0, 1, 2, 0],
    },
    Geometry {
        kernel: [5, 5],
        strides: [1, 1],
        pads: [0, 0, 0, 0],
    },
];

fn max_pool_attrs(g: Geometry) -> Vec<AttributeProto> {
    let as_i64 = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
    vec![
        ints("kernel_shape", &as_i64(&g.kernel)),
        ints("strides", &as_i64(&g.strides)),
        ints("pads", &as_i64(&g.pads)),
    ]
}

/// The digits CNN's file with its graph replaced: MaxPool on the 1×8×8 image, then Flatten.
fn pool_only(g: Geometry, extra: Vec<AttributeProto>) -> Vec<u8> {
    let mut model = ModelProto::decode(testdata("digits_cnn.onnx").as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let mut attrs = max_pool_attrs(g);
    attrs.extend(extra);
    graph.node = vec![
        node("MaxPool", "image", "pooled", attrs),
        node("Flatten", "pooled", "flat", vec![int("axis", 1)]),
    ];
    graph.initializer.clear();
    graph.output[0].name = "flat".into();
    model.encode_to_vec()
}

/// ONNX MaxPool written out directly: padding never wins.
fn reference(image: &[f32], g: Geometry) -> Vec<f64> {
    let (h, w) = (8usize, 8usize);
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.strides;
    let [pt, pl, pb, pr] = g.pads;
    let oh = (h + pt + pb - kh) / sh + 1;
    let ow = (w + pl + pr - kw) / sw + 1;
    let mut out = Vec::new();
    for oy in 0..oh {
        for ox in 0..ow {
            let mut best = f64::NEG_INFINITY;
            for ky in 0..kh {
                for kx in 0..kw {
                    let (y, x) = (
                        (oy * sh + ky) as isize - pt as isize,
                        (ox * sw + kx) as isize - pl as isize,
                    );
                    if (0..h as isize).contains(&y) && (0..w as isize).contains(&x) {
                        best = best.max(f64::from(image[y as usize * w + x as usize]));
                    }
                }
            }
            out.push(best);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn max_pool_is_the_window_maximum(
        image in prop::collection::vec(-4.0f32..4.0, 64),
        which in 0usize..GEOMETRIES.len(),
    ) {
        let g = GEOMETRIES[which];
        let model = onnx::import(&pool_only(g, vec![])).unwrap();
        let got = model.eval(&image).unwrap();
        let want = reference(&image, g);
        prop_assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            prop_assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}

#[test]
fn unsupported_max_pool_attributes_are_named() {
    let g = GEOMETRIES[0];
    for (extra, expected) in [
        (vec![int("ceil_mode", 1)], "ceil_mode"),
        (vec![ints("dilations", &[2, 2])], "dilation"),
    ] {
        let err = onnx::import(&pool_only(g, extra)).unwrap_err().to_string();
        assert!(err.contains(expected) && err.contains("MaxPool"), "{err}");
    }
    // MaxPool's optional second output (the indices) is refused, not ignored.
    let mut model = ModelProto::decode(pool_only(g, vec![]).as_slice()).unwrap();
    model.graph.as_mut().unwrap().node[0]
        .output
        .push("indices".into());
    let err = onnx::import(&model.encode_to_vec()).unwrap_err();
    assert!(matches!(err, ZkError::Shape { .. }), "{err}");
}

/// The digits CNN with MaxPool in place of AveragePool: quantised like the float model, and a
/// proof of it verifies with the quantised model's output.
#[test]
fn a_cnn_with_max_pool_proves_and_verifies() {
    let mut model = ModelProto::decode(testdata("digits_cnn.onnx").as_slice()).unwrap();
    let pool = model
        .graph
        .as_mut()
        .unwrap()
        .node
        .iter_mut()
        .find(|n| n.op_type == "AveragePool")
        .unwrap();
    pool.op_type = "MaxPool".into();
    let cal: Calibration = serde_json::from_slice(&testdata("digits_calibration.json")).unwrap();
    let zkm = ZkModel::compile(&model.encode_to_vec(), &cal).unwrap();
    assert!(zkm.report.agreement >= 0.95, "{:?}", zkm.report);
    let input: Vec<f32> = cal.inputs[7].clone();
    let prover = zkm.prover().unwrap();
    let proof = prover.prove(&input, false).unwrap();
    let verified = prover.verifier().verify(&proof).unwrap();
    let expected = zkm
        .model
        .eval(&zkm.model.quantise_input(&input).unwrap())
        .unwrap();
    assert_eq!(verified.output, expected.output());
    let mut bad = proof.clone();
    bad.output[0] += 1;
    assert!(matches!(
        prover.verifier().verify(&bad),
        Err(ZkError::InvalidProof(_))
    ));
}
