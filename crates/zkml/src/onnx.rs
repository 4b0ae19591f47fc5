//! ONNX import: the protobuf subset we read and write, and the lowering of a graph to a chain of
//! affine maps with activations ([`FloatModel`]).
//!
//! Every supported operator is either an affine map on the flattened activation vector (Gemm,
//! MatMul, Add of a constant, Conv, AveragePool) or an element-wise activation (Relu, Sigmoid), or
//! only changes the shape (Flatten, Reshape). MaxPool becomes Relu layers, since
//! `max(a, b) = relu(a − b) + relu(b) − relu(−b)`. Softmax is accepted as the last node: it does
//! not change the argmax, so the circuit proves the logits.

use std::collections::BTreeMap;

use prost::Message;

use crate::{
    ZkError,
    model::{Activation, AffineRow, FloatLayer, FloatModel},
};

/// The ONNX protobuf messages (the fields Hibana reads and writes; field numbers as in `onnx.proto`).
pub mod proto {
    /// `onnx.ModelProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        /// IR version of the file format.
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        /// Tool that wrote the model.
        #[prost(string, tag = "2")]
        pub producer_name: String,
        /// The computation graph.
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        /// Operator sets the graph uses.
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
    }

    /// `onnx.OperatorSetIdProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        /// Operator set domain ("" is the default ONNX domain).
        #[prost(string, tag = "1")]
        pub domain: String,
        /// Operator set version.
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    /// `onnx.GraphProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        /// Nodes in topological order.
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        /// Graph name.
        #[prost(string, tag = "2")]
        pub name: String,
        /// Constant tensors (weights).
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        /// Graph inputs.
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        /// Graph outputs.
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }

    /// `onnx.NodeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        /// Input tensor names.
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        /// Output tensor names.
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        /// Node name.
        #[prost(string, tag = "3")]
        pub name: String,
        /// Operator name, e.g. `Gemm`.
        #[prost(string, tag = "4")]
        pub op_type: String,
        /// Operator attributes.
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
        /// Operator domain.
        #[prost(string, tag = "7")]
        pub domain: String,
    }

    /// `onnx.AttributeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        /// Attribute name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Float value.
        #[prost(float, tag = "2")]
        pub f: f32,
        /// Integer value.
        #[prost(int64, tag = "3")]
        pub i: i64,
        /// Bytes value.
        #[prost(bytes = "vec", tag = "4")]
        pub s: Vec<u8>,
        /// Tensor value.
        #[prost(message, optional, tag = "5")]
        pub t: Option<TensorProto>,
        /// Float list.
        #[prost(float, repeated, tag = "7")]
        pub floats: Vec<f32>,
        /// Integer list.
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        /// Attribute type (1 float, 2 int, 3 string, 4 tensor, 6 floats, 7 ints).
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    /// `onnx.TensorProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        /// Shape.
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        /// Element type (1 float, 7 int64).
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        /// Float values (when not in `raw_data`).
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        /// Int64 values (when not in `raw_data`).
        #[prost(int64, repeated, tag = "7")]
        pub int64_data: Vec<i64>,
        /// Tensor name.
        #[prost(string, tag = "8")]
        pub name: String,
        /// Little-endian packed values.
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }

    /// `onnx.ValueInfoProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        /// Tensor name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Tensor type.
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<TypeProto>,
    }

    /// `onnx.TypeProto` (tensor types only).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProto {
        /// Tensor type.
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TensorTypeProto>,
    }

    /// `onnx.TypeProto.Tensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorTypeProto {
        /// Element type (1 float).
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        /// Shape.
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }

    /// `onnx.TensorShapeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        /// Dimensions.
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    /// `onnx.TensorShapeProto.Dimension`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        /// Fixed size (when set).
        #[prost(int64, optional, tag = "1")]
        pub dim_value: Option<i64>,
        /// Symbolic size such as `batch`.
        #[prost(string, optional, tag = "2")]
        pub dim_param: Option<String>,
    }

    /// ONNX element type of 32-bit floats.
    pub const FLOAT: i32 = 1;
    /// ONNX element type of 64-bit integers.
    pub const INT64: i32 = 7;
}

use proto::{AttributeProto, NodeProto, TensorProto};

/// Largest tensor (elements) accepted from a file, so a hostile file cannot make us allocate
/// without bound.
const MAX_ELEMENTS: usize = 1 << 24;

/// Operators the compiler lowers.
pub const SUPPORTED: &[&str] = &[
    "Gemm",
    "MatMul",
    "Add",
    "Relu",
    "Sigmoid",
    "Flatten",
    "Reshape",
    "Identity",
    "Dropout",
    "Softmax",
    "Conv",
    "AveragePool",
    "GlobalAveragePool",
    "MaxPool",
];

/// A constant tensor read from the graph's initializers.
struct Constant {
    dims: Vec<usize>,
    floats: Vec<f32>,
    ints: Vec<i64>,
}

fn decode_constant(t: &TensorProto) -> Result<Constant, ZkError> {
    let bad = |why: String| ZkError::Onnx(format!("initializer `{}`: {why}", t.name));
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("negative dimension {d}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| bad("too many elements".into()))?;
    let (floats, ints) = match t.data_type {
        proto::FLOAT if !t.raw_data.is_empty() => {
            if t.raw_data.len() != count * 4 {
                return Err(bad(format!(
                    "raw data has {} bytes, shape needs {}",
                    t.raw_data.len(),
                    count * 4
                )));
            }
            let f = t
                .raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (f, Vec::new())
        }
        proto::FLOAT => (t.float_data.clone(), Vec::new()),
        proto::INT64 if !t.raw_data.is_empty() => {
            if t.raw_data.len() != count * 8 {
                return Err(bad("raw data does not match its shape".into()));
            }
            let i = t
                .raw_data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            (Vec::new(), i)
        }
        proto::INT64 => (Vec::new(), t.int64_data.clone()),
        other => return Err(bad(format!("element type {other} is not supported"))),
    };
    let len = floats.len().max(ints.len());
    if len != count {
        return Err(bad(format!("{len} values for a shape of {count} elements")));
    }
    if floats.iter().any(|v| !v.is_finite()) {
        return Err(bad("weights must be finite".into()));
    }
    Ok(Constant { dims, floats, ints })
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_int(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_float(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

/// Import state: the single activation tensor flowing through the chain.
struct Lowering<'g> {
    constants: BTreeMap<&'g str, Constant>,
    current: String,
    shape: Vec<usize>,
    layers: Vec<FloatLayer>,
    /// True when the last layer's output is the current tensor with no activation yet.
    open_affine: bool,
    softmax: bool,
    /// Affine terms created so far (bounded, so a hostile file cannot exhaust memory).
    terms: usize,
}

/// Most affine terms (multiplications) a model may have; far beyond what a 2^20-row circuit
/// can hold, so it only stops absurd inputs early.
const MAX_TERMS: usize = 1 << 23;

fn node_label(node: &NodeProto, index: usize) -> String {
    if node.name.is_empty() {
        format!("#{index}")
    } else {
        node.name.clone()
    }
}

/// One dense layer to write: weights `[n_out][n_in]` row by row, and biases.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseLayer {
    /// Weights, `n_out` rows of `n_in`.
    pub weights: Vec<f32>,
    /// Biases, `n_out`.
    pub biases: Vec<f32>,
    /// Inputs.
    pub n_in: usize,
    /// Outputs.
    pub n_out: usize,
}

/// A dense classifier as an ONNX model that [`import`] reads: one `Gemm` per layer (weights
/// `W{i}` as `[out, in]` with `transB = 1`, bias `B{i}`), `Relu` between layers and `Softmax`
/// on the last, from input `input` (`[batch, n_in]`) to output `probabilities`.
pub fn dense_classifier(name: &str, layers: &[DenseLayer]) -> Vec<u8> {
    use proto::{
        Dimension, FLOAT, GraphProto, ModelProto, OperatorSetIdProto, TensorShapeProto,
        TensorTypeProto, TypeProto, ValueInfoProto,
    };
    let value = |name: &str, width: usize| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        Dimension {
                            dim_value: None,
                            dim_param: Some("batch".into()),
                        },
                        Dimension {
                            dim_value: Some(width as i64),
                            dim_param: None,
                        },
                    ],
                }),
            }),
        }),
    };
    let tensor = |name: String, dims: Vec<i64>, values: &[f32]| TensorProto {
        dims,
        data_type: FLOAT,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        name,
        ..Default::default()
    };
    let node = |op: &str, name: String, inputs: Vec<String>, output: String, attribute| NodeProto {
        input: inputs,
        output: vec![output],
        name,
        op_type: op.into(),
        attribute,
        domain: String::new(),
    };
    let int = |name: &str, i: i64| AttributeProto {
        name: name.into(),
        i,
        r#type: 2,
        ..Default::default()
    };
    let mut initializer = Vec::new();
    let mut nodes = Vec::new();
    let mut current = "input".to_string();
    for (i, l) in layers.iter().enumerate() {
        initializer.push(tensor(
            format!("W{i}"),
            vec![l.n_out as i64, l.n_in as i64],
            &l.weights,
        ));
        initializer.push(tensor(format!("B{i}"), vec![l.n_out as i64], &l.biases));
        let out = format!("dense{i}");
        nodes.push(node(
            "Gemm",
            format!("gemm{i}"),
            vec![current.clone(), format!("W{i}"), format!("B{i}")],
            out.clone(),
            vec![int("transB", 1)],
        ));
        current = out;
        if i + 1 < layers.len() {
            let relu = format!("relu{i}");
            nodes.push(node(
                "Relu",
                relu.clone(),
                vec![current],
                relu.clone(),
                vec![],
            ));
            current = relu;
        }
    }
    nodes.push(node(
        "Softmax",
        "softmax".into(),
        vec![current],
        "probabilities".into(),
        vec![int("axis", 1)],
    ));
    let (n_in, n_out) = (
        layers.first().map_or(0, |l| l.n_in),
        layers.last().map_or(0, |l| l.n_out),
    );
    ModelProto {
        ir_version: 8,
        producer_name: "hibana".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: name.into(),
            initializer,
            input: vec![value("input", n_in)],
            output: vec![value("probabilities", n_out)],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
    }
    .encode_to_vec()
}

/// Parses ONNX bytes and lowers the graph to a [`FloatModel`].
pub fn import(bytes: &[u8]) -> Result<FloatModel, ZkError> {
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| ZkError::Onnx(format!("not an ONNX model: {e}")))?;
    let graph = model
        .graph
        .ok_or_else(|| ZkError::Onnx("the model has no graph".into()))?;
    let mut constants = BTreeMap::new();
    for t in &graph.initializer {
        constants.insert(t.name.as_str(), decode_constant(t)?);
    }
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !constants.contains_key(i.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(ZkError::Onnx(format!(
            "the graph must have exactly one data input, it has {}",
            inputs.len()
        )));
    };
    let dims = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .ok_or_else(|| ZkError::Onnx(format!("input `{}` has no shape", input.name)))?;
    let mut shape = Vec::new();
    for (i, d) in dims.dim.iter().enumerate() {
        match d.dim_value {
            Some(v) if v > 0 => shape.push(usize::try_from(v).unwrap_or(usize::MAX)),
            // A symbolic or missing leading dimension is the batch: one sample per proof.
            _ if i == 0 => shape.push(1),
            _ => {
                return Err(ZkError::Onnx(format!(
                    "input `{}` dimension {i} is not fixed",
                    input.name
                )));
            }
        }
    }
    // Drop the batch dimension of 1.
    if shape.len() > 1 && shape[0] == 1 {
        shape.remove(0);
    }
    let input_shape = shape.clone();
    let input_len = numel(&shape)?;
    let mut st = Lowering {
        constants,
        current: input.name.clone(),
        shape,
        layers: Vec::new(),
        open_affine: false,
        softmax: false,
        terms: 0,
    };
    for (index, node) in graph.node.iter().enumerate() {
        st.lower(node, index)?;
    }
    let output_names: Vec<_> = graph.output.iter().map(|o| o.name.as_str()).collect();
    if output_names != [st.current.as_str()] {
        return Err(ZkError::Onnx(format!(
            "the graph output {output_names:?} is not the end of its operator chain `{}`",
            st.current
        )));
    }
    if st.layers.is_empty() {
        return Err(ZkError::Onnx("the graph has no affine operator".into()));
    }
    Ok(FloatModel {
        input_shape,
        input_len,
        output_shape: st.shape,
        layers: st.layers,
        softmax_output: st.softmax,
    })
}

fn numel(shape: &[usize]) -> Result<usize, ZkError> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| ZkError::Onnx(format!("shape {shape:?} is too large")))
}

impl<'g> Lowering<'g> {
    fn lower(&mut self, node: &NodeProto, index: usize) -> Result<(), ZkError> {
        let label = node_label(node, index);
        let shape_err = |why: String| ZkError::Shape {
            node: label.clone(),
            op: node.op_type.clone(),
            why,
        };
        if !SUPPORTED.contains(&node.op_type.as_str()) {
            return Err(ZkError::UnsupportedOperator {
                op: node.op_type.clone(),
                node: label,
            });
        }
        if self.softmax {
            return Err(shape_err("Softmax must be the last operator".into()));
        }
        let [out] = node.output.as_slice() else {
            return Err(shape_err("expected exactly one output".into()));
        };
        // The node's data input must be the chain's current tensor; the others are constants.
        let data_inputs: Vec<_> = node
            .input
            .iter()
            .filter(|i| !i.is_empty() && !self.constants.contains_key(i.as_str()))
            .collect();
        if data_inputs != [&self.current] {
            return Err(shape_err(format!(
                "operands {data_inputs:?} are not the chain tensor `{}` plus constants \
                 (branches and residual connections are not supported)",
                self.current
            )));
        }
        if node.input.first() != Some(&self.current) && node.op_type != "Add" {
            return Err(shape_err("the data operand must come first".into()));
        }
        let constants = std::mem::take(&mut self.constants);
        let result = self.lower_op(node, &label, &constants);
        self.constants = constants;
        result?;
        self.current = out.clone();
        Ok(())
    }

    fn lower_op(
        &mut self,
        node: &NodeProto,
        label: &str,
        constants: &BTreeMap<&'g str, Constant>,
    ) -> Result<(), ZkError> {
        let shape_err = |why: String| ZkError::Shape {
            node: label.to_string(),
            op: node.op_type.clone(),
            why,
        };
        let konst = |i: usize| -> Result<&Constant, ZkError> {
            node.input
                .get(i)
                .and_then(|n| constants.get(n.as_str()))
                .ok_or_else(|| shape_err(format!("operand {i} must be a constant initializer")))
        };
        match node.op_type.as_str() {
            "Gemm" | "MatMul" => {
                let n = numel(&self.shape)?;
                let gemm = node.op_type == "Gemm";
                if gemm && attr_int(node, "transA", 0) != 0 {
                    return Err(shape_err("transA=1 is not supported".into()));
                }
                let trans_b = gemm && attr_int(node, "transB", 0) != 0;
                let alpha = if gemm {
                    attr_float(node, "alpha", 1.0)
                } else {
                    1.0
                };
                let beta = if gemm {
                    attr_float(node, "beta", 1.0)
                } else {
                    1.0
                };
                let b = konst(1)?;
                let (k, m) = match (b.dims.as_slice(), trans_b) {
                    ([k, m], false) => (*k, *m),
                    ([m, k], true) => (*k, *m),
                    (d, _) => return Err(shape_err(format!("weight shape {d:?} is not 2-D"))),
                };
                if b.floats.len() != k * m {
                    return Err(shape_err("the weight must be a float tensor".into()));
                }
                if k != n {
                    return Err(shape_err(format!(
                        "input has {n} features (shape {:?}) but the weight expects {k}",
                        self.shape
                    )));
                }
                let bias = if gemm && node.input.len() > 2 {
                    let c = konst(2)?;
                    broadcast_bias(&c.floats, m).ok_or_else(|| {
                        shape_err(format!("bias of {} values for {m} outputs", c.floats.len()))
                    })?
                } else {
                    vec![0.0; m]
                };
                self.budget(&[k, m], &shape_err)?;
                let rows = (0..m)
                    .map(|j| AffineRow {
                        bias: beta * bias[j],
                        terms: (0..k)
                            .map(|i| {
                                let w = if trans_b {
                                    b.floats[j * k + i]
                                } else {
                                    b.floats[i * m + j]
                                };
                                (i as u32, alpha * w)
                            })
                            .collect(),
                    })
                    .collect();
                self.push_affine(rows, vec![m]);
            }
            "Add" => {
                let c = node
                    .input
                    .iter()
                    .find(|i| *i != &self.current)
                    .and_then(|n| constants.get(n.as_str()))
                    .ok_or_else(|| shape_err("one operand must be a constant".into()))?;
                let n = numel(&self.shape)?;
                let bias = broadcast_bias(&c.floats, n).ok_or_else(|| {
                    shape_err(format!("cannot add {} values to {n}", c.floats.len()))
                })?;
                match self.layers.last_mut() {
                    Some(last) if self.open_affine => {
                        for (row, b) in last.rows.iter_mut().zip(bias) {
                            row.bias += b;
                        }
                    }
                    _ => {
                        self.budget(&[n], &shape_err)?;
                        let rows = bias
                            .into_iter()
                            .enumerate()
                            .map(|(i, b)| AffineRow {
                                bias: b,
                                terms: vec![(i as u32, 1.0)],
                            })
                            .collect();
                        let shape = self.shape.clone();
                        self.push_affine(rows, shape);
                    }
                }
            }
            "Relu" | "Sigmoid" => {
                let act = if node.op_type == "Relu" {
                    Activation::Relu
                } else {
                    Activation::Sigmoid
                };
                match self.layers.last_mut() {
                    Some(last) if self.open_affine => last.activation = act,
                    _ => {
                        return Err(shape_err(
                            "an activation must directly follow Gemm, MatMul, Conv, Add, \
                             AveragePool or MaxPool"
                                .into(),
                        ));
                    }
                }
                self.open_affine = false;
            }
            "Flatten" => {
                let n = numel(&self.shape)?;
                self.shape = vec![n];
            }
            "Reshape" => {
                let target = konst(1)?;
                let n = numel(&self.shape)?;
                let mut dims: Vec<i64> = target.ints.clone();
                // A leading batch dimension of 1 (or -1 standing for it) is dropped.
                if dims.len() > 1 && (dims[0] == 1 || dims[0] == -1) {
                    dims.remove(0);
                }
                let known: usize = dims
                    .iter()
                    .enumerate()
                    .filter(|&(_, d)| *d != -1)
                    .map(|(i, &d)| {
                        if d == 0 {
                            self.shape.get(i).copied().unwrap_or(0)
                        } else {
                            usize::try_from(d).unwrap_or(0)
                        }
                    })
                    .product();
                let mut shape = Vec::new();
                for (i, &d) in dims.iter().enumerate() {
                    shape.push(match d {
                        -1 if known > 0 => n / known,
                        0 => self.shape.get(i).copied().unwrap_or(0),
                        d => usize::try_from(d).unwrap_or(0),
                    });
                }
                if numel(&shape)? != n {
                    return Err(shape_err(format!(
                        "cannot reshape {:?} ({n} elements) to {dims:?}",
                        self.shape
                    )));
                }
                self.shape = shape;
            }
            "Identity" | "Dropout" => {}
            "Softmax" => self.softmax = true,
            "Conv" => self.lower_conv(node, &shape_err, &konst)?,
            "AveragePool" | "GlobalAveragePool" => self.lower_pool(node, &shape_err)?,
            "MaxPool" => self.lower_max_pool(node, &shape_err)?,
            other => {
                return Err(ZkError::UnsupportedOperator {
                    op: other.to_string(),
                    node: label.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Counts the terms of a new affine map (the product of `dims`) against [`MAX_TERMS`].
    fn budget(
        &mut self,
        dims: &[usize],
        shape_err: &dyn Fn(String) -> ZkError,
    ) -> Result<(), ZkError> {
        let total = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_add(self.terms))
            .filter(|&n| n <= MAX_TERMS)
            .ok_or_else(|| {
                shape_err(format!(
                    "the model needs more than {MAX_TERMS} multiplications"
                ))
            })?;
        self.terms = total;
        Ok(())
    }

    fn push_affine(&mut self, rows: Vec<AffineRow>, shape: Vec<usize>) {
        self.layers.push(FloatLayer {
            rows,
            activation: Activation::None,
        });
        self.shape = shape;
        self.open_affine = true;
    }

    fn chw(&self, shape_err: &dyn Fn(String) -> ZkError) -> Result<[usize; 3], ZkError> {
        match self.shape.as_slice() {
            [c, h, w] => Ok([*c, *h, *w]),
            s => Err(shape_err(format!("expected a C×H×W input, got {s:?}"))),
        }
    }

    fn lower_conv<'c>(
        &mut self,
        node: &NodeProto,
        shape_err: &dyn Fn(String) -> ZkError,
        konst: &dyn Fn(usize) -> Result<&'c Constant, ZkError>,
    ) -> Result<(), ZkError> {
        let [cin, h, w] = self.chw(shape_err)?;
        let wt = konst(1)?;
        let [cout, wcin, kh, kw] = match wt.dims.as_slice() {
            [a, b, c, d] => [*a, *b, *c, *d],
            d => return Err(shape_err(format!("weight shape {d:?} is not 4-D"))),
        };
        if wt.floats.len() != cout * wcin * kh * kw {
            return Err(shape_err("the weight must be a float tensor".into()));
        }
        if attr_int(node, "group", 1) != 1 {
            return Err(shape_err("grouped convolution is not supported".into()));
        }
        if wcin != cin {
            return Err(shape_err(format!(
                "input has {cin} channels, the weight expects {wcin}"
            )));
        }
        if attr_ints(node, "dilations").is_some_and(|d| d.iter().any(|&x| x != 1)) {
            return Err(shape_err("dilation other than 1 is not supported".into()));
        }
        let geo = Window::from_node(node, [h, w], [kh, kw], shape_err)?;
        let bias = if node.input.len() > 2 {
            let b = konst(2)?;
            if b.floats.len() != cout {
                return Err(shape_err(format!(
                    "bias has {} values, not {cout}",
                    b.floats.len()
                )));
            }
            b.floats.clone()
        } else {
            vec![0.0; cout]
        };
        self.budget(&[cout, geo.oh, geo.ow, cin, kh, kw], shape_err)?;
        let mut rows = Vec::with_capacity(cout * geo.oh * geo.ow);
        for (co, b) in bias.iter().enumerate() {
            for oy in 0..geo.oh {
                for ox in 0..geo.ow {
                    let mut terms = Vec::new();
                    for ci in 0..cin {
                        for (ky, kx, iy, ix) in geo.taps(oy, ox) {
                            let wv = wt.floats[((co * cin + ci) * kh + ky) * kw + kx];
                            terms.push((((ci * h + iy) * w + ix) as u32, wv));
                        }
                    }
                    rows.push(AffineRow { bias: *b, terms });
                }
            }
        }
        self.push_affine(rows, vec![cout, geo.oh, geo.ow]);
        Ok(())
    }

    fn lower_pool(
        &mut self,
        node: &NodeProto,
        shape_err: &dyn Fn(String) -> ZkError,
    ) -> Result<(), ZkError> {
        let [c, h, w] = self.chw(shape_err)?;
        let (geo, include_pad) = if node.op_type == "GlobalAveragePool" {
            (Window::global(h, w), false)
        } else {
            let k = attr_ints(node, "kernel_shape")
                .ok_or_else(|| shape_err("kernel_shape is required".into()))?;
            let [kh, kw] = match k.as_slice() {
                [a, b] if *a > 0 && *b > 0 => [*a as usize, *b as usize],
                _ => return Err(shape_err(format!("kernel_shape {k:?} is not 2-D"))),
            };
            let include = attr_int(node, "count_include_pad", 0) != 0;
            (
                Window::from_node(node, [h, w], [kh, kw], shape_err)?,
                include,
            )
        };
        self.budget(&[c, geo.oh, geo.ow, geo.kh, geo.kw], shape_err)?;
        let mut rows = Vec::with_capacity(c * geo.oh * geo.ow);
        for ch in 0..c {
            for oy in 0..geo.oh {
                for ox in 0..geo.ow {
                    let taps: Vec<_> = geo.taps(oy, ox).collect();
                    let count = if include_pad {
                        geo.kh * geo.kw
                    } else {
                        taps.len()
                    };
                    let weight = 1.0 / count.max(1) as f32;
                    let terms = taps
                        .into_iter()
                        .map(|(_, _, iy, ix)| (((ch * h + iy) * w + ix) as u32, weight))
                        .collect();
                    rows.push(AffineRow { bias: 0.0, terms });
                }
            }
        }
        self.push_affine(rows, vec![c, geo.oh, geo.ow]);
        Ok(())
    }

    /// MaxPool as layers the circuit already proves: `max(a, b) = relu(a − b) + relu(b) −
    /// relu(−b)`, so each halving of the windows' candidates is one Relu layer (three outputs
    /// per pair, two to carry an odd one), and a last linear layer reads the maxima out.
    /// Padding is never the maximum, as in ONNX.
    fn lower_max_pool(
        &mut self,
        node: &NodeProto,
        shape_err: &dyn Fn(String) -> ZkError,
    ) -> Result<(), ZkError> {
        let [c, h, w] = self.chw(shape_err)?;
        let k = attr_ints(node, "kernel_shape")
            .ok_or_else(|| shape_err("kernel_shape is required".into()))?;
        let [kh, kw] = match k.as_slice() {
            [a, b] if *a > 0 && *b > 0 => [*a as usize, *b as usize],
            _ => return Err(shape_err(format!("kernel_shape {k:?} is not 2-D"))),
        };
        if attr_ints(node, "dilations").is_some_and(|d| d.iter().any(|&x| x != 1)) {
            return Err(shape_err("dilation other than 1 is not supported".into()));
        }
        let geo = Window::from_node(node, [h, w], [kh, kw], shape_err)?;
        // Every candidate costs at most three rows of two terms per halving.
        self.budget(&[c, geo.oh, geo.ow, kh, kw, 12], shape_err)?;
        // Per output: its candidates, as expressions over the current layer's outputs.
        let mut windows: Vec<Vec<Expr>> = Vec::with_capacity(c * geo.oh * geo.ow);
        for ch in 0..c {
            for oy in 0..geo.oh {
                for ox in 0..geo.ow {
                    let taps: Vec<Expr> = geo
                        .taps(oy, ox)
                        .map(|(_, _, iy, ix)| vec![(((ch * h + iy) * w + ix) as u32, 1.0)])
                        .collect();
                    if taps.is_empty() {
                        return Err(shape_err(format!(
                            "the window of output ({oy}, {ox}) holds only padding"
                        )));
                    }
                    windows.push(taps);
                }
            }
        }
        while windows.iter().any(|cands| cands.len() > 1) {
            let mut rows = Vec::new();
            let mut next = Vec::with_capacity(windows.len());
            let out = |expr: Expr, rows: &mut Vec<AffineRow>| -> Expr {
                rows.push(AffineRow {
                    bias: 0.0,
                    terms: expr,
                });
                vec![((rows.len() - 1) as u32, 1.0)]
            };
            for cands in &windows {
                let mut halved = Vec::with_capacity(cands.len().div_ceil(2));
                for pair in cands.chunks(2) {
                    match pair {
                        [a, b] => {
                            let d = out(combine(&[(1.0, a), (-1.0, b)]), &mut rows);
                            let p = out(b.clone(), &mut rows);
                            let n = out(combine(&[(-1.0, b)]), &mut rows);
                            halved.push(combine(&[(1.0, &d), (1.0, &p), (-1.0, &n)]));
                        }
                        [a] => {
                            let p = out(a.clone(), &mut rows);
                            let n = out(combine(&[(-1.0, a)]), &mut rows);
                            halved.push(combine(&[(1.0, &p), (-1.0, &n)]));
                        }
                        _ => {}
                    }
                }
                next.push(halved);
            }
            self.layers.push(FloatLayer {
                rows,
                activation: Activation::Relu,
            });
            windows = next;
        }
        let rows = windows
            .into_iter()
            .map(|mut cands| AffineRow {
                bias: 0.0,
                terms: cands.pop().unwrap_or_default(),
            })
            .collect();
        self.push_affine(rows, vec![c, geo.oh, geo.ow]);
        Ok(())
    }
}

/// A value as an affine expression over the outputs of the previous layer.
type Expr = Vec<(u32, f32)>;

/// `Σ k·e` of expressions scaled by `k`.
fn combine(parts: &[(f32, &Expr)]) -> Expr {
    let mut out: Expr = Vec::new();
    for (k, e) in parts {
        for &(i, w) in *e {
            match out.iter_mut().find(|(j, _)| *j == i) {
                Some(t) => t.1 += k * w,
                None => out.push((i, k * w)),
            }
        }
    }
    out.retain(|&(_, w)| w != 0.0);
    out
}

fn broadcast_bias(values: &[f32], n: usize) -> Option<Vec<f32>> {
    match values.len() {
        1 => Some(vec![values[0]; n]),
        len if len == n => Some(values.to_vec()),
        _ => None,
    }
}

/// A 2-D sliding window (convolution or pooling) over an H×W plane.
struct Window {
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    pt: usize,
    pl: usize,
    oh: usize,
    ow: usize,
}

impl Window {
    fn global(h: usize, w: usize) -> Self {
        Window {
            h,
            w,
            kh: h,
            kw: w,
            sh: 1,
            sw: 1,
            pt: 0,
            pl: 0,
            oh: 1,
            ow: 1,
        }
    }

    fn from_node(
        node: &NodeProto,
        [h, w]: [usize; 2],
        [kh, kw]: [usize; 2],
        shape_err: &dyn Fn(String) -> ZkError,
    ) -> Result<Self, ZkError> {
        let strides = attr_ints(node, "strides").unwrap_or_else(|| vec![1, 1]);
        let pads = attr_ints(node, "pads").unwrap_or_else(|| vec![0, 0, 0, 0]);
        if let Some(a) = attr(node, "auto_pad")
            && !a.s.is_empty()
            && a.s != b"NOTSET"
        {
            return Err(shape_err(
                "auto_pad is not supported; give explicit pads".into(),
            ));
        }
        if attr_int(node, "ceil_mode", 0) != 0 {
            return Err(shape_err("ceil_mode is not supported".into()));
        }
        let ok = |v: &i64| (0..=64).contains(v);
        let (&[sh, sw], &[pt, pl, pb, pr]) = (strides.as_slice(), pads.as_slice()) else {
            return Err(shape_err(format!(
                "strides {strides:?} / pads {pads:?} are not 2-D"
            )));
        };
        if !(ok(&pt) && ok(&pl) && ok(&pb) && ok(&pr) && sh > 0 && sw > 0 && ok(&sh) && ok(&sw)) {
            return Err(shape_err(format!(
                "strides {strides:?} / pads {pads:?} out of range"
            )));
        }
        let [sh, sw, pt, pl, pb, pr] = [sh, sw, pt, pl, pb, pr].map(|v| v as usize);
        let (ph, pw) = (h + pt + pb, w + pl + pr);
        if kh == 0 || kw == 0 || kh > ph || kw > pw {
            return Err(shape_err(format!(
                "kernel {kh}×{kw} does not fit the padded {ph}×{pw} input"
            )));
        }
        Ok(Window {
            h,
            w,
            kh,
            kw,
            sh,
            sw,
            pt,
            pl,
            oh: (ph - kh) / sh + 1,
            ow: (pw - kw) / sw + 1,
        })
    }

    /// Kernel taps `(ky, kx, iy, ix)` of output (oy, ox) that land inside the input.
    fn taps(
        &self,
        oy: usize,
        ox: usize,
    ) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
        (0..self.kh).flat_map(move |ky| {
            (0..self.kw).filter_map(move |kx| {
                let iy = (oy * self.sh + ky).checked_sub(self.pt)?;
                let ix = (ox * self.sw + kx).checked_sub(self.pl)?;
                (iy < self.h && ix < self.w).then_some((ky, kx, iy, ix))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_dense_classifier_reads_back_and_computes_its_layers() {
        let layers = [
            DenseLayer {
                weights: vec![1.0, -1.0, 0.5, 2.0],
                biases: vec![0.0, -1.0],
                n_in: 2,
                n_out: 2,
            },
            DenseLayer {
                weights: vec![1.0, 0.0, -1.0, 3.0, 0.25, 0.5],
                biases: vec![0.5, 0.0, -0.5],
                n_in: 2,
                n_out: 3,
            },
        ];
        let model = import(&dense_classifier("t", &layers)).expect("reads back");
        let out = model.eval(&[1.0, 2.0]).expect("evaluates");
        // Hidden: relu(1 - 2) = 0, relu(0.5 + 4 - 1) = 3.5; logits before softmax.
        let want = [0.5, 10.5, 1.25];
        assert_eq!(out.len(), 3);
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-5, "{out:?}");
        }
    }
}
