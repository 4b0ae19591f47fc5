//! Models as chains of affine maps with activations: the float model imported from ONNX, its
//! fixed-point quantisation (calibrated on sample inputs), and the two reference evaluators.
//!
//! Fixed point: every activation is an integer `v` standing for `v / 2^scale`, with a per-layer
//! scale chosen by calibration so that the calibration data uses at most 3/4 of the signed
//! `act_bits` range. A layer computes `acc = bias + Σ w·x` exactly, then `y = floor(acc / 2^8)`
//! (weights carry 8 more fractional bits than the rescale drops, so every layer rescales by the
//! same [`SHIFT`]), then the activation. The circuit proves exactly these integer steps.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::ZkError;

/// Bits dropped by every rescale: each remainder is range-checked to `[0, 2^SHIFT)`.
pub const SHIFT: u32 = 8;
/// Default signed bit width of activations (the circuit's lookup table has half as many rows
/// per sigmoid layer).
pub const DEFAULT_ACT_BITS: u32 = 10;
/// Scale (fractional bits) of a sigmoid's output.
pub const SIGMOID_SCALE: u32 = 8;
/// Largest activation scale calibration may pick. Keeping it at SHIFT means a layer's weight
/// scale `pre_scale + SHIFT - in_scale` is never negative, whatever the previous layer chose.
const MAX_SCALE: u32 = SHIFT;
/// Share of the activation range calibration data may use; the rest is headroom for inputs
/// beyond the calibration set.
const HEADROOM: f64 = 0.75;
/// Most input values a model may take: more than the largest circuit has rows (2^20) could never
/// be proved, and the provers and verifiers size tables by the input length.
pub const MAX_INPUT_LEN: u32 = 1 << 20;
/// Largest weight magnitude after quantisation (keeps accumulators far below the field size).
const MAX_WEIGHT: i64 = 1 << 40;

/// Element-wise function applied after an affine map.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize,
)]
pub enum Activation {
    /// Identity.
    None,
    /// max(x, 0).
    Relu,
    /// 1 / (1 + e^-x), by a lookup table.
    Sigmoid,
}

/// One output of an affine map: `bias + Σ weight · input[index]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AffineRow {
    /// Constant term.
    pub bias: f32,
    /// (input index, weight) pairs.
    pub terms: Vec<(u32, f32)>,
}

/// An affine map followed by an activation, in floating point.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatLayer {
    /// One row per output.
    pub rows: Vec<AffineRow>,
    /// Applied to every output.
    pub activation: Activation,
}

/// A model imported from ONNX, in floating point.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatModel {
    /// Shape of one input sample (batch dimension dropped).
    pub input_shape: Vec<usize>,
    /// Number of input values.
    pub input_len: usize,
    /// Shape of the output.
    pub output_shape: Vec<usize>,
    /// Layers in order.
    pub layers: Vec<FloatLayer>,
    /// True when the ONNX graph ends in Softmax (the circuit proves the logits before it).
    pub softmax_output: bool,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl FloatModel {
    /// Evaluates the model on one sample; returns the pre-activation vectors of every layer and
    /// the output.
    pub fn eval_traced(&self, input: &[f32]) -> Result<(Vec<Vec<f64>>, Vec<f64>), ZkError> {
        check_len(input.len(), self.input_len)?;
        let mut x: Vec<f64> = input.iter().map(|&v| f64::from(v)).collect();
        let mut pre = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let y: Vec<f64> = layer
                .rows
                .iter()
                .map(|row| {
                    row.terms.iter().fold(f64::from(row.bias), |acc, &(i, w)| {
                        acc + f64::from(w) * x.get(i as usize).copied().unwrap_or(0.0)
                    })
                })
                .collect();
            x = y
                .iter()
                .map(|&v| match layer.activation {
                    Activation::None => v,
                    Activation::Relu => v.max(0.0),
                    Activation::Sigmoid => sigmoid(v),
                })
                .collect();
            pre.push(y);
        }
        Ok((pre, x))
    }

    /// Evaluates the model on one sample.
    pub fn eval(&self, input: &[f32]) -> Result<Vec<f64>, ZkError> {
        Ok(self.eval_traced(input)?.1)
    }
}

fn check_len(got: usize, want: usize) -> Result<(), ZkError> {
    if got == want {
        Ok(())
    } else {
        Err(ZkError::InputShape { got, want })
    }
}

/// One output of a quantised affine map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct QuantRow {
    /// Bias at scale `out_scale + SHIFT`.
    pub bias: i64,
    /// (input index, weight at scale `out_scale + SHIFT - in_scale`).
    pub terms: Vec<(u32, i64)>,
}

/// A quantised layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct QuantLayer {
    /// One row per output.
    pub rows: Vec<QuantRow>,
    /// Applied after the rescale.
    pub activation: Activation,
    /// Fractional bits of the pre-activation `y`.
    pub pre_scale: u32,
    /// Sigmoid output for every `y` in the activation range, in order (empty otherwise).
    pub table: Vec<i64>,
}

impl QuantLayer {
    /// Fractional bits of this layer's output.
    pub fn out_scale(&self) -> u32 {
        match self.activation {
            Activation::Sigmoid => SIGMOID_SCALE,
            _ => self.pre_scale,
        }
    }
}

/// A fixed-point model: what the circuit proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct QuantModel {
    /// Shape of one input sample.
    pub input_shape: Vec<u32>,
    /// Number of input values.
    pub input_len: u32,
    /// Shape of the output.
    pub output_shape: Vec<u32>,
    /// Fractional bits of the quantised input.
    pub input_scale: u32,
    /// Signed bit width of every activation.
    pub act_bits: u32,
    /// Layers in order.
    pub layers: Vec<QuantLayer>,
    /// True when the source model ended in Softmax.
    pub softmax_output: bool,
}

/// Every intermediate value of a quantised evaluation (the circuit's witness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantTrace {
    /// Quantised input.
    pub input: Vec<i64>,
    /// Per layer: pre-activation `y` values.
    pub pre: Vec<Vec<i64>>,
    /// Per layer: outputs after the activation.
    pub post: Vec<Vec<i64>>,
}

impl QuantTrace {
    /// The model's output.
    pub fn output(&self) -> &[i64] {
        self.post.last().map_or(&[], Vec::as_slice)
    }
}

impl QuantModel {
    /// Smallest activation value.
    pub fn act_min(&self) -> i64 {
        -(1i64 << (self.act_bits - 1))
    }

    /// Largest activation value.
    pub fn act_max(&self) -> i64 {
        (1i64 << (self.act_bits - 1)) - 1
    }

    /// Number of output values.
    pub fn output_len(&self) -> usize {
        self.layers.last().map_or(0, |l| l.rows.len())
    }

    /// Fractional bits of the output.
    pub fn output_scale(&self) -> u32 {
        self.layers.last().map_or(0, QuantLayer::out_scale)
    }

    /// Quantises a float input. Values outside the activation range saturate to its ends
    /// (documented behaviour: the proof is then about the saturated input).
    pub fn quantise_input(&self, input: &[f32]) -> Result<Vec<i64>, ZkError> {
        check_len(input.len(), self.input_len as usize)?;
        let scale = f64::from(1u32 << self.input_scale);
        input
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if !v.is_finite() {
                    return Err(ZkError::InputValue {
                        index: i,
                        why: format!("{v} is not a finite number"),
                    });
                }
                let q = (f64::from(v) * scale).round();
                Ok((q as i64).clamp(self.act_min(), self.act_max()))
            })
            .collect()
    }

    /// Turns a quantised output back into real numbers.
    pub fn dequantise_output(&self, output: &[i64]) -> Vec<f64> {
        let scale = f64::from(1u32 << self.output_scale());
        output.iter().map(|&v| v as f64 / scale).collect()
    }

    /// Predicted class of dequantised output values: argmax, or `≥ 0.5` for one sigmoid output
    /// (`≥ 0` for one raw output).
    pub fn classify(&self, values: &[f64]) -> usize {
        let sigmoid = self.layers.last().map(|l| l.activation) == Some(Activation::Sigmoid);
        predicted_class(values, if sigmoid { 0.5 } else { 0.0 })
    }

    /// Evaluates the quantised model exactly as the circuit does. Errors when a value leaves
    /// the activation range (the circuit could not prove it).
    pub fn eval(&self, input: &[i64]) -> Result<QuantTrace, ZkError> {
        check_len(input.len(), self.input_len as usize)?;
        let (lo, hi) = (self.act_min(), self.act_max());
        if let Some((index, v)) = input
            .iter()
            .enumerate()
            .find(|(_, v)| !(lo..=hi).contains(*v))
        {
            return Err(ZkError::InputValue {
                index,
                why: format!("{v} is outside the quantised range [{lo}, {hi}]"),
            });
        }
        let mut x = input.to_vec();
        let mut trace = QuantTrace {
            input: input.to_vec(),
            pre: Vec::new(),
            post: Vec::new(),
        };
        for (l, layer) in self.layers.iter().enumerate() {
            let mut pre = Vec::with_capacity(layer.rows.len());
            let mut post = Vec::with_capacity(layer.rows.len());
            for row in &layer.rows {
                let mut acc = i128::from(row.bias);
                for &(i, w) in &row.terms {
                    let xi = x.get(i as usize).copied().ok_or_else(|| {
                        ZkError::Format(format!("layer {l} reads input {i} out of range"))
                    })?;
                    acc += i128::from(w) * i128::from(xi);
                }
                let y = acc.div_euclid(1 << SHIFT);
                let y = i64::try_from(y)
                    .ok()
                    .filter(|y| (lo..=hi).contains(y))
                    .ok_or(ZkError::ActivationOverflow {
                        layer: l,
                        value: y,
                        min: lo,
                        max: hi,
                    })?;
                pre.push(y);
                post.push(self.activate(layer, y)?);
            }
            trace.pre.push(pre);
            x = post.clone();
            trace.post.push(post);
        }
        Ok(trace)
    }

    /// Applies a layer's activation to an in-range pre-activation value.
    pub fn activate(&self, layer: &QuantLayer, y: i64) -> Result<i64, ZkError> {
        Ok(match layer.activation {
            Activation::None => y,
            Activation::Relu => y.max(0),
            Activation::Sigmoid => usize::try_from(y - self.act_min())
                .ok()
                .and_then(|i| layer.table.get(i).copied())
                .ok_or_else(|| ZkError::Format("sigmoid table is too short".into()))?,
        })
    }

    /// Checks the structure of a model read from a file (indices in range, tables complete).
    pub fn validate(&self) -> Result<(), ZkError> {
        if !(4..=16).contains(&self.act_bits) || self.input_scale > MAX_SCALE {
            return Err(ZkError::Format(
                "activation width or scale out of range".into(),
            ));
        }
        if self.layers.is_empty() {
            return Err(ZkError::Format("the model has no layer".into()));
        }
        // Checked before anything is sized by it: a `.zkm` claiming 2^32 inputs made the STARK
        // layout allocate tens of GB (found by the `zkm` fuzz target).
        if self.input_len > MAX_INPUT_LEN {
            return Err(ZkError::Format(format!(
                "{} input values exceed the limit of {MAX_INPUT_LEN}",
                self.input_len
            )));
        }
        let range = 1usize << self.act_bits;
        let mut width = self.input_len as usize;
        for (l, layer) in self.layers.iter().enumerate() {
            let bad = |why: &str| Err(ZkError::Format(format!("layer {l}: {why}")));
            if layer.rows.is_empty() || layer.pre_scale > MAX_SCALE {
                return bad("no outputs or scale out of range");
            }
            if layer
                .rows
                .iter()
                .any(|r| r.terms.is_empty() || r.terms.iter().any(|&(i, _)| i as usize >= width))
            {
                return bad("a row reads an input out of range");
            }
            let want_table = if layer.activation == Activation::Sigmoid {
                range
            } else {
                0
            };
            if layer.table.len() != want_table {
                return bad("activation table has the wrong size");
            }
            width = layer.rows.len();
        }
        Ok(())
    }

    /// Content hash binding weights, scales, tables and shapes: the model's commitment.
    pub fn commitment(&self) -> [u8; 32] {
        let bytes = borsh::to_vec(self).unwrap_or_default();
        *blake3::Hasher::new_derive_key("hibana zkml model v1")
            .update(&bytes)
            .finalize()
            .as_bytes()
    }
}

/// Quantisation quality measured on the calibration data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// Number of calibration samples.
    pub samples: usize,
    /// Chosen fractional bits: input, then each layer's pre-activation.
    pub scales: Vec<u32>,
    /// Share of samples whose predicted class (argmax, or output ≥ 0.5 for one output) is the
    /// same for the float and the quantised model.
    pub agreement: f64,
    /// Largest absolute difference between float and dequantised outputs.
    pub max_abs_error: f64,
    /// Accuracy of the float model against the labels, when the calibration data has labels.
    pub float_accuracy: Option<f64>,
    /// Accuracy of the quantised model against the labels.
    pub quant_accuracy: Option<f64>,
}

/// Calibration data: sample inputs and optional class labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Sample inputs, each flattened.
    pub inputs: Vec<Vec<f32>>,
    /// Class of each sample (optional).
    #[serde(default)]
    pub labels: Option<Vec<usize>>,
}

/// Predicted class: argmax, or `output ≥ threshold` for a single output.
pub fn predicted_class(output: &[f64], threshold: f64) -> usize {
    match output {
        [one] => usize::from(*one >= threshold),
        _ => {
            output
                .iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        }
    }
}

fn pick_scale(max_abs: f64, act_bits: u32) -> u32 {
    let budget = HEADROOM * (1u64 << (act_bits - 1)) as f64;
    (0..=MAX_SCALE)
        .rev()
        .find(|&s| max_abs * f64::from(1u32 << s) <= budget)
        .unwrap_or(0)
}

fn quantise(value: f64, scale_bits: u32, what: &str) -> Result<i64, ZkError> {
    let q = (value * (1u64 << scale_bits) as f64).round();
    if !q.is_finite() || q.abs() > MAX_WEIGHT as f64 {
        return Err(ZkError::Calibration(format!(
            "{what} {value} does not fit the fixed-point format"
        )));
    }
    Ok(q as i64)
}

/// Quantises a float model, choosing per-layer scales from calibration samples, and reports
/// float-versus-quantised accuracy on them.
pub fn calibrate(
    model: &FloatModel,
    calibration: &Calibration,
    act_bits: u32,
) -> Result<(QuantModel, CalibrationReport), ZkError> {
    if calibration.inputs.is_empty() {
        return Err(ZkError::Calibration("no calibration samples".into()));
    }
    if !(4..=16).contains(&act_bits) {
        return Err(ZkError::Calibration(format!(
            "act_bits {act_bits} not in 4..=16"
        )));
    }
    let mut in_max = 0f64;
    let mut pre_max = vec![0f64; model.layers.len()];
    let mut float_out = Vec::with_capacity(calibration.inputs.len());
    for (n, sample) in calibration.inputs.iter().enumerate() {
        let (pre, out) = model
            .eval_traced(sample)
            .map_err(|e| ZkError::Calibration(format!("sample {n}: {e}")))?;
        if sample.iter().any(|v| !v.is_finite()) {
            return Err(ZkError::Calibration(format!("sample {n} is not finite")));
        }
        in_max = sample
            .iter()
            .fold(in_max, |m, &v| m.max(f64::from(v).abs()));
        for (m, layer) in pre_max.iter_mut().zip(&pre) {
            *m = layer.iter().fold(*m, |m, v| m.max(v.abs()));
        }
        float_out.push(out);
    }
    let input_scale = pick_scale(in_max, act_bits);
    let mut scales = vec![input_scale];
    let mut in_scale = input_scale;
    let mut layers = Vec::with_capacity(model.layers.len());
    let range = 1i64 << (act_bits - 1);
    for (l, (layer, &max)) in model.layers.iter().zip(&pre_max).enumerate() {
        let pre_scale = pick_scale(max, act_bits);
        let w_scale = pre_scale + SHIFT - in_scale;
        let rows = layer
            .rows
            .iter()
            .map(|row| {
                Ok(QuantRow {
                    bias: quantise(f64::from(row.bias), pre_scale + SHIFT, "bias")?,
                    terms: row
                        .terms
                        .iter()
                        .map(|&(i, w)| Ok((i, quantise(f64::from(w), w_scale, "weight")?)))
                        .collect::<Result<_, ZkError>>()?,
                })
            })
            .collect::<Result<Vec<_>, ZkError>>()?;
        let table = if layer.activation == Activation::Sigmoid {
            (-range..range)
                .map(|y| {
                    let x = y as f64 / f64::from(1u32 << pre_scale);
                    (sigmoid(x) * f64::from(1u32 << SIGMOID_SCALE)).round() as i64
                })
                .collect()
        } else {
            Vec::new()
        };
        let q = QuantLayer {
            rows,
            activation: layer.activation,
            pre_scale,
            table,
        };
        if max * f64::from(1u32 << pre_scale) >= range as f64 {
            return Err(ZkError::Calibration(format!(
                "layer {l}: activations up to {max:.3} do not fit {act_bits} bits"
            )));
        }
        in_scale = q.out_scale();
        scales.push(pre_scale);
        layers.push(q);
    }
    let quant = QuantModel {
        input_shape: model.input_shape.iter().map(|&d| d as u32).collect(),
        input_len: model.input_len as u32,
        output_shape: model.output_shape.iter().map(|&d| d as u32).collect(),
        input_scale,
        act_bits,
        layers,
        softmax_output: model.softmax_output,
    };
    quant.validate()?;
    let report = measure(model, &quant, calibration, &float_out, scales)?;
    Ok((quant, report))
}

fn measure(
    model: &FloatModel,
    quant: &QuantModel,
    calibration: &Calibration,
    float_out: &[Vec<f64>],
    scales: Vec<u32>,
) -> Result<CalibrationReport, ZkError> {
    let threshold = if model.layers.last().map(|l| l.activation) == Some(Activation::Sigmoid) {
        0.5
    } else {
        0.0
    };
    let (mut agree, mut max_err) = (0usize, 0f64);
    let (mut float_right, mut quant_right) = (0usize, 0usize);
    let labels = calibration
        .labels
        .as_ref()
        .filter(|l| l.len() == calibration.inputs.len());
    for (n, (sample, fout)) in calibration.inputs.iter().zip(float_out).enumerate() {
        let q = quant
            .eval(&quant.quantise_input(sample)?)
            .map_err(|e| ZkError::Calibration(format!("sample {n}: {e}")))?;
        let qout = quant.dequantise_output(q.output());
        for (a, b) in fout.iter().zip(&qout) {
            max_err = max_err.max((a - b).abs());
        }
        let (fc, qc) = (
            predicted_class(fout, threshold),
            predicted_class(&qout, threshold),
        );
        agree += usize::from(fc == qc);
        if let Some(labels) = labels {
            float_right += usize::from(fc == labels[n]);
            quant_right += usize::from(qc == labels[n]);
        }
    }
    let total = calibration.inputs.len() as f64;
    Ok(CalibrationReport {
        samples: calibration.inputs.len(),
        scales,
        agreement: agree as f64 / total,
        max_abs_error: max_err,
        float_accuracy: labels.map(|_| float_right as f64 / total),
        quant_accuracy: labels.map(|_| quant_right as f64 / total),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_layer(input_len: u32) -> QuantModel {
        QuantModel {
            input_shape: vec![input_len],
            input_len,
            output_shape: vec![1],
            input_scale: 4,
            act_bits: 8,
            layers: vec![QuantLayer {
                rows: vec![QuantRow {
                    bias: 0,
                    terms: vec![(0, 1)],
                }],
                activation: Activation::None,
                pre_scale: 4,
                table: vec![],
            }],
            softmax_output: false,
        }
    }

    #[test]
    fn an_input_longer_than_any_circuit_is_refused() {
        assert!(one_layer(MAX_INPUT_LEN).validate().is_ok());
        assert!(matches!(
            one_layer(MAX_INPUT_LEN + 1).validate(),
            Err(ZkError::Format(_))
        ));
        assert!(one_layer(u32::MAX).validate().is_err());
    }
}
