//! Trains the project's test models on data it makes, deterministically, and writes them as
//! ONNX files with calibration and sample-input JSON into `crates/zkml/testdata/`:
//!
//! - `credit_mlp.onnx`: a credit-grade classifier (16 applicant features → 4 grades),
//!   Gemm 16→32, Relu, Gemm 32→32, Relu, Gemm 32→4, Softmax.
//! - `digits_cnn.onnx`: a digit classifier on 8×8 images, Conv 1→4 (3×3, pad 1), Relu,
//!   AveragePool 2×2, Flatten, Gemm 64→10, Softmax.
//! - `logistic_16.onnx`: logistic regression on the credit features (is the grade 2 or worse?),
//!   Gemm 16→1, Sigmoid.
//! - `mnist_mlp.onnx`: an MNIST-sized digit classifier on 28×28 images (flattened to 784 values),
//!   Gemm 784→128, Relu, Gemm 128→10, Softmax.
//!
//! Each model is made from its own generator seed, in this order, so adding a model at the end
//! leaves the earlier files byte for byte the same.
//!
//! Run: `cargo run -p hibana-zkml --example gen_models --release`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use hibana_zkml::onnx::proto::{
    AttributeProto, Dimension, FLOAT, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};
use prost::Message;

/// splitmix64: a tiny deterministic generator, so the files are the same on every run.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-7);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[derive(Clone, Copy)]
enum Param {
    Train(usize),
    Fixed(f32),
}

struct Row {
    bias: Option<usize>,
    terms: Vec<(usize, Param)>,
}

struct Layer {
    rows: Vec<Row>,
    relu: bool,
}

/// What the last layer's outputs are trained as.
#[derive(Clone, Copy, PartialEq)]
enum Loss {
    /// Logits of a softmax over the classes (cross-entropy).
    Softmax,
    /// One logit of a sigmoid: the probability of class 1 (binary cross-entropy).
    Sigmoid,
}

/// A chain of sparse affine layers with shared trainable parameters: dense layers,
/// convolutions (weights shared across positions) and average pooling (fixed weights).
struct Net {
    layers: Vec<Layer>,
    params: Vec<f32>,
    loss: Loss,
}

impl Net {
    fn new(loss: Loss) -> Self {
        Net {
            layers: Vec::new(),
            params: Vec::new(),
            loss,
        }
    }

    fn weight(&self, p: Param) -> f32 {
        match p {
            Param::Train(i) => self.params[i],
            Param::Fixed(v) => v,
        }
    }

    /// Returns every layer's input and pre-activation values.
    fn forward(&self, x: &[f32]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let mut inputs = vec![x.to_vec()];
        let mut pres = Vec::new();
        for layer in &self.layers {
            let input = inputs.last().unwrap();
            let pre: Vec<f32> = layer
                .rows
                .iter()
                .map(|r| {
                    r.bias.map_or(0.0, |b| self.params[b])
                        + r.terms
                            .iter()
                            .map(|&(i, p)| input[i] * self.weight(p))
                            .sum::<f32>()
                })
                .collect();
            let out = pre
                .iter()
                .map(|&v| if layer.relu { v.max(0.0) } else { v })
                .collect();
            pres.push(pre);
            inputs.push(out);
        }
        (inputs, pres)
    }

    fn predict(&self, x: &[f32]) -> usize {
        let logits = self.forward(x).0.pop().unwrap();
        match self.loss {
            Loss::Softmax => argmax(&logits),
            Loss::Sigmoid => usize::from(logits[0] >= 0.0),
        }
    }

    /// Gradient of the loss with respect to the logits.
    fn output_gradient(&self, logits: &[f32], label: usize) -> Vec<f32> {
        match self.loss {
            Loss::Softmax => {
                let max = logits.iter().cloned().fold(f32::MIN, f32::max);
                let exps: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                let mut d_out: Vec<f32> = exps.iter().map(|e| e / sum).collect();
                d_out[label] -= 1.0;
                d_out
            }
            Loss::Sigmoid => vec![1.0 / (1.0 + (-logits[0]).exp()) - label as f32],
        }
    }

    /// One SGD step of the loss (softmax or binary cross-entropy) on a batch.
    fn step(&mut self, batch: &[(Vec<f32>, usize)], lr: f32) {
        let mut grad = vec![0f32; self.params.len()];
        for (x, label) in batch {
            let (inputs, pres) = self.forward(x);
            let mut d_out = self.output_gradient(inputs.last().unwrap(), *label);
            for (l, layer) in self.layers.iter().enumerate().rev() {
                let input = &inputs[l];
                let mut d_in = vec![0f32; input.len()];
                for (j, row) in layer.rows.iter().enumerate() {
                    let dy = if layer.relu && pres[l][j] <= 0.0 {
                        0.0
                    } else {
                        d_out[j]
                    };
                    if dy == 0.0 {
                        continue;
                    }
                    if let Some(b) = row.bias {
                        grad[b] += dy;
                    }
                    for &(i, p) in &row.terms {
                        if let Param::Train(w) = p {
                            grad[w] += dy * input[i];
                        }
                        d_in[i] += dy * self.weight(p);
                    }
                }
                d_out = d_in;
            }
        }
        let scale = lr / batch.len() as f32;
        for (p, g) in self.params.iter_mut().zip(grad) {
            *p -= scale * g;
        }
    }

    fn train(&mut self, data: &[(Vec<f32>, usize)], epochs: usize, lr: f32, rng: &mut Rng) {
        let mut order: Vec<usize> = (0..data.len()).collect();
        for _ in 0..epochs {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            for chunk in order.chunks(16) {
                let batch: Vec<_> = chunk.iter().map(|&i| data[i].clone()).collect();
                self.step(&batch, lr);
            }
        }
    }

    fn accuracy(&self, data: &[(Vec<f32>, usize)]) -> f64 {
        data.iter().filter(|(x, y)| self.predict(x) == *y).count() as f64 / data.len() as f64
    }

    fn param_block(&mut self, n: usize, std: f32, rng: &mut Rng) -> usize {
        let start = self.params.len();
        self.params.extend((0..n).map(|_| rng.normal() * std));
        start
    }

    /// Adds a dense layer; weights stored row-major [out][in].
    fn dense(&mut self, n_in: usize, n_out: usize, relu: bool, rng: &mut Rng) -> (usize, usize) {
        let w = self.param_block(n_in * n_out, (2.0 / n_in as f32).sqrt(), rng);
        let b = self.param_block(n_out, 0.0, rng);
        let rows = (0..n_out)
            .map(|o| Row {
                bias: Some(b + o),
                terms: (0..n_in)
                    .map(|i| (i, Param::Train(w + o * n_in + i)))
                    .collect(),
            })
            .collect();
        self.layers.push(Layer { rows, relu });
        (w, b)
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
        .0
}

/// Synthetic loan applicants: 16 standardised features; the grade (0 best … 3 worst) comes
/// from a hidden risk score with interactions and noise.
fn credit_data(n: usize, rng: &mut Rng) -> Vec<(Vec<f32>, usize)> {
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let x: Vec<f32> = (0..16).map(|_| rng.normal()).collect();
        // income, debt ratio, late payments, utilisation, history length, inquiries, …
        let risk = -0.9 * x[0] + 1.1 * x[1] + 0.8 * x[2].max(0.0) * 1.5 + 0.7 * x[3] - 0.6 * x[4]
            + 0.4 * x[5]
            + 0.5 * x[1] * x[3]
            - 0.3 * x[6] * x[0]
            + 0.2 * (x[7] + x[8] - x[9])
            + 0.25 * rng.normal();
        let grade = if risk < -1.0 {
            0
        } else if risk < 0.3 {
            1
        } else if risk < 1.5 {
            2
        } else {
            3
        };
        rows.push((x, grade));
    }
    rows
}

/// 3×5 glyphs of the digits 0–9, one string per row.
const GLYPHS: [[&str; 5]; 10] = [
    ["###", "#.#", "#.#", "#.#", "###"],
    [".#.", "##.", ".#.", ".#.", "###"],
    ["###", "..#", "###", "#..", "###"],
    ["###", "..#", ".##", "..#", "###"],
    ["#.#", "#.#", "###", "..#", "..#"],
    ["###", "#..", "###", "..#", "###"],
    ["###", "#..", "###", "#.#", "###"],
    ["###", "..#", ".#.", ".#.", ".#."],
    ["###", "#.#", "###", "#.#", "###"],
    ["###", "#.#", "###", "..#", "###"],
];

/// Synthetic 8×8 digit images: a glyph drawn 6×5 (doubled horizontally) at a random offset,
/// random stroke intensity, Gaussian noise.
fn digit_data(n: usize, rng: &mut Rng) -> Vec<(Vec<f32>, usize)> {
    (0..n)
        .map(|_| {
            let d = rng.below(10);
            let (oy, ox) = (rng.below(4), rng.below(3));
            let ink = 0.6 + 0.4 * rng.uniform();
            let mut img = vec![0f32; 64];
            for (gy, line) in GLYPHS[d].iter().enumerate() {
                for (gx, c) in line.bytes().enumerate() {
                    if c == b'#' {
                        img[(oy + gy) * 8 + ox + 2 * gx] = ink;
                        img[(oy + gy) * 8 + ox + 2 * gx + 1] = ink;
                    }
                }
            }
            for p in &mut img {
                *p = (*p + 0.15 * rng.normal()).clamp(0.0, 1.0);
            }
            (img, d)
        })
        .collect()
}

/// Synthetic 28×28 digit images, MNIST-sized: a glyph drawn with 4×4 or 5×5 pixel cells at a
/// random offset, random stroke intensity, Gaussian noise, then rounded to eighths (so the JSON
/// stays short: every value prints with at most three decimals).
fn mnist_data(n: usize, rng: &mut Rng) -> Vec<(Vec<f32>, usize)> {
    const SIDE: usize = 28;
    (0..n)
        .map(|_| {
            let d = rng.below(10);
            let cell = 4 + rng.below(2);
            let (oy, ox) = (
                rng.below(SIDE - 5 * cell + 1),
                rng.below(SIDE - 3 * cell + 1),
            );
            let ink = 0.6 + 0.4 * rng.uniform();
            let mut img = vec![0f32; SIDE * SIDE];
            for (gy, line) in GLYPHS[d].iter().enumerate() {
                for (gx, c) in line.bytes().enumerate() {
                    if c != b'#' {
                        continue;
                    }
                    for y in oy + gy * cell..oy + (gy + 1) * cell {
                        for x in ox + gx * cell..ox + (gx + 1) * cell {
                            img[y * SIDE + x] = ink;
                        }
                    }
                }
            }
            for p in &mut img {
                *p = ((*p + 0.1 * rng.normal()).clamp(0.0, 1.0) * 8.0).round() / 8.0;
            }
            (img, d)
        })
        .collect()
}

fn tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: FLOAT,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        name: name.into(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            dim_value: *d,
                            dim_param: d.is_none().then(|| "batch".to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: name.into(),
        op_type: op.into(),
        attribute: attrs,
        domain: String::new(),
    }
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

fn model(graph: GraphProto) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        producer_name: "hibana-zkml gen_models".into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
    }
    .encode_to_vec()
}

/// A trained dense layer: (weight, bias) offsets into `Net::params`, and (inputs, outputs).
type DenseLayer = ((usize, usize), (i64, i64));

/// A chain of dense layers as ONNX: `Gemm` (weights `W{i}` `[out, in]`, bias `B{i}`), `Relu`
/// between layers, and `head` = (`Softmax` or `Sigmoid`, output name) at the end.
fn dense_graph(
    name: &str,
    params: &[f32],
    layers: &[DenseLayer],
    input: &str,
    head: (&str, &str),
) -> GraphProto {
    let mut inits = Vec::new();
    let mut nodes = Vec::new();
    let mut cur = input.to_string();
    for (i, &((w, b), (n_in, n_out))) in layers.iter().enumerate() {
        inits.push(tensor(
            &format!("W{i}"),
            &[n_out, n_in],
            &params[w..w + (n_in * n_out) as usize],
        ));
        inits.push(tensor(
            &format!("B{i}"),
            &[n_out],
            &params[b..b + n_out as usize],
        ));
        let y = format!("dense{i}");
        nodes.push(node(
            "Gemm",
            &format!("gemm{i}"),
            &[&cur, &format!("W{i}"), &format!("B{i}")],
            &y,
            vec![int("transB", 1)],
        ));
        cur = y;
        if i + 1 < layers.len() {
            let r = format!("relu{i}");
            nodes.push(node("Relu", &r, &[&cur], &r, vec![]));
            cur = r;
        }
    }
    let (op, output) = head;
    let attrs = if op == "Softmax" {
        vec![int("axis", 1)]
    } else {
        vec![]
    };
    nodes.push(node(op, &op.to_lowercase(), &[&cur], output, attrs));
    let (n_in, n_out) = (layers[0].1.0, layers[layers.len() - 1].1.1);
    GraphProto {
        node: nodes,
        name: name.into(),
        initializer: inits,
        input: vec![value_info(input, &[None, Some(n_in)])],
        output: vec![value_info(output, &[None, Some(n_out)])],
    }
}

fn write_json(path: &Path, data: &[(Vec<f32>, usize)]) {
    let inputs: Vec<Vec<f32>> = data.iter().map(|(x, _)| round(x)).collect();
    let labels: Vec<usize> = data.iter().map(|(_, y)| *y).collect();
    let json = serde_json::json!({ "inputs": inputs, "labels": labels });
    std::fs::write(path, serde_json::to_string(&json).unwrap()).unwrap();
}

fn round(x: &[f32]) -> Vec<f32> {
    x.iter().map(|v| (v * 1000.0).round() / 1000.0).collect()
}

fn main() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    std::fs::create_dir_all(&out).unwrap();

    // Credit MLP.
    let mut rng = Rng(0x0C0F_FEE0);
    let train = credit_data(4000, &mut rng);
    let test = credit_data(1000, &mut rng);
    let mut net = Net::new(Loss::Softmax);
    let l1 = net.dense(16, 32, true, &mut rng);
    let l2 = net.dense(32, 32, true, &mut rng);
    let l3 = net.dense(32, 4, false, &mut rng);
    net.train(&train, 30, 0.05, &mut rng);
    println!(
        "credit_mlp: train accuracy {:.3}, test accuracy {:.3}",
        net.accuracy(&train),
        net.accuracy(&test)
    );
    let graph = dense_graph(
        "credit_mlp",
        &net.params,
        &[(l1, (16, 32)), (l2, (32, 32)), (l3, (32, 4))],
        "features",
        ("Softmax", "grade_probabilities"),
    );
    std::fs::write(out.join("credit_mlp.onnx"), model(graph)).unwrap();
    write_json(&out.join("credit_calibration.json"), &test[..200]);
    let sample = serde_json::json!({ "input": round(&test[200].0), "label": test[200].1 });
    std::fs::write(out.join("credit_input.json"), sample.to_string()).unwrap();

    // Digits CNN.
    let mut rng = Rng(0xD161_7500);
    let train = digit_data(3000, &mut rng);
    let test = digit_data(1000, &mut rng);
    let mut net = Net::new(Loss::Softmax);
    let (cout, k) = (4usize, 3usize);
    let cw = net.param_block(cout * k * k, (2.0 / 9.0f32).sqrt(), &mut rng);
    let cb = net.param_block(cout, 0.0, &mut rng);
    let mut rows = Vec::new();
    for co in 0..cout {
        for oy in 0..8 {
            for ox in 0..8 {
                let mut terms = Vec::new();
                for ky in 0..k {
                    for kx in 0..k {
                        let (iy, ix) = (oy + ky, ox + kx);
                        if (1..=8).contains(&iy) && (1..=8).contains(&ix) {
                            terms.push((
                                (iy - 1) * 8 + ix - 1,
                                Param::Train(cw + (co * k + ky) * k + kx),
                            ));
                        }
                    }
                }
                rows.push(Row {
                    bias: Some(cb + co),
                    terms,
                });
            }
        }
    }
    net.layers.push(Layer { rows, relu: true });
    let mut rows = Vec::new();
    for c in 0..cout {
        for oy in 0..4 {
            for ox in 0..4 {
                let terms = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|(dy, dx)| ((c * 8 + 2 * oy + dy) * 8 + 2 * ox + dx, Param::Fixed(0.25)))
                    .collect();
                rows.push(Row { bias: None, terms });
            }
        }
    }
    net.layers.push(Layer { rows, relu: false });
    let (dw, db) = net.dense(64, 10, false, &mut rng);
    net.train(&train, 40, 0.1, &mut rng);
    println!(
        "digits_cnn: train accuracy {:.3}, test accuracy {:.3}",
        net.accuracy(&train),
        net.accuracy(&test)
    );
    let p = &net.params;
    let graph = GraphProto {
        node: vec![
            node(
                "Conv",
                "conv",
                &["image", "conv_w", "conv_b"],
                "conv_out",
                vec![
                    ints("kernel_shape", &[3, 3]),
                    ints("pads", &[1, 1, 1, 1]),
                    ints("strides", &[1, 1]),
                ],
            ),
            node("Relu", "relu", &["conv_out"], "relu_out", vec![]),
            node(
                "AveragePool",
                "pool",
                &["relu_out"],
                "pool_out",
                vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
            ),
            node(
                "Flatten",
                "flatten",
                &["pool_out"],
                "flat",
                vec![int("axis", 1)],
            ),
            node(
                "Gemm",
                "classifier",
                &["flat", "fc_w", "fc_b"],
                "logits",
                vec![int("transB", 1)],
            ),
            node(
                "Softmax",
                "softmax",
                &["logits"],
                "digit_probabilities",
                vec![int("axis", 1)],
            ),
        ],
        name: "digits_cnn".into(),
        initializer: vec![
            tensor("conv_w", &[cout as i64, 1, 3, 3], &p[cw..cw + cout * 9]),
            tensor("conv_b", &[cout as i64], &p[cb..cb + cout]),
            tensor("fc_w", &[10, 64], &p[dw..dw + 640]),
            tensor("fc_b", &[10], &p[db..db + 10]),
        ],
        input: vec![value_info("image", &[None, Some(1), Some(8), Some(8)])],
        output: vec![value_info("digit_probabilities", &[None, Some(10)])],
    };
    std::fs::write(out.join("digits_cnn.onnx"), model(graph)).unwrap();
    write_json(&out.join("digits_calibration.json"), &test[..200]);
    let sample = serde_json::json!({ "input": round(&test[200].0), "label": test[200].1 });
    std::fs::write(out.join("digits_input.json"), sample.to_string()).unwrap();
    // An unsupported operator, for the error tests.
    let graph = GraphProto {
        node: vec![node("LeakyRelu", "leaky", &["x"], "y", vec![])],
        name: "unsupported".into(),
        initializer: vec![],
        input: vec![value_info("x", &[None, Some(4)])],
        output: vec![value_info("y", &[None, Some(4)])],
    };
    std::fs::write(out.join("unsupported_leakyrelu.onnx"), model(graph)).unwrap();
    // Logistic regression on the credit features: is the grade 2 or worse?
    let mut rng = Rng(0x1061_5710);
    let binary = |rows: Vec<(Vec<f32>, usize)>| -> Vec<(Vec<f32>, usize)> {
        rows.into_iter()
            .map(|(x, grade)| (x, usize::from(grade >= 2)))
            .collect()
    };
    let train = binary(credit_data(4000, &mut rng));
    let test = binary(credit_data(1000, &mut rng));
    let mut net = Net::new(Loss::Sigmoid);
    let l1 = net.dense(16, 1, false, &mut rng);
    net.train(&train, 30, 0.05, &mut rng);
    println!(
        "logistic_16: train accuracy {:.3}, test accuracy {:.3}",
        net.accuracy(&train),
        net.accuracy(&test)
    );
    let graph = dense_graph(
        "logistic_16",
        &net.params,
        &[(l1, (16, 1))],
        "features",
        ("Sigmoid", "risk_probability"),
    );
    std::fs::write(out.join("logistic_16.onnx"), model(graph)).unwrap();
    write_json(&out.join("logistic_16_calibration.json"), &test[..200]);
    let sample = serde_json::json!({ "input": round(&test[200].0), "label": test[200].1 });
    std::fs::write(out.join("logistic_16_input.json"), sample.to_string()).unwrap();

    // MNIST-sized MLP. Fewer calibration samples than the other models: each has 784 values.
    let mut rng = Rng(0x3A15_7028);
    let train = mnist_data(2000, &mut rng);
    let test = mnist_data(500, &mut rng);
    let mut net = Net::new(Loss::Softmax);
    let l1 = net.dense(784, 128, true, &mut rng);
    let l2 = net.dense(128, 10, false, &mut rng);
    net.train(&train, 5, 0.1, &mut rng);
    println!(
        "mnist_mlp: train accuracy {:.3}, test accuracy {:.3}",
        net.accuracy(&train),
        net.accuracy(&test)
    );
    let graph = dense_graph(
        "mnist_mlp",
        &net.params,
        &[(l1, (784, 128)), (l2, (128, 10))],
        "pixels",
        ("Softmax", "digit_probabilities"),
    );
    std::fs::write(out.join("mnist_mlp.onnx"), model(graph)).unwrap();
    write_json(&out.join("mnist_mlp_calibration.json"), &test[..64]);
    let sample = serde_json::json!({ "input": round(&test[64].0), "label": test[64].1 });
    std::fs::write(out.join("mnist_mlp_input.json"), sample.to_string()).unwrap();

    println!("wrote models to {}", out.display());
}
