//! A BERT encoder on candle that runs a batch of sentences without padding, and pools each into
//! a unit vector (the sentence-transformers recipe: mean over tokens, then L2 normalisation).
//!
//! The batch is ragged: every sentence's tokens are stacked into one `[tokens, hidden]` matrix,
//! so each dense layer is one matrix product over the real tokens of the whole batch, and a
//! sentence's vector does not depend on the sentences beside it. The steps between products
//! run as fused kernels (candle custom ops) that parallelise over rows:
//! 1. embeddings: word + position + token type 0, then layer norm;
//! 2. per layer: `qkv = x·Wqkv` (one product for the three projections);
//! 3. attention per sentence and head over that sentence's own tokens, adding the biases;
//! 4. `x = norm(x + ctx·Wo + bo)`;
//! 5. `u = gelu(x·Wup + bup)` (exact GELU, with erf);
//! 6. `x = norm(x + u·Wdown + bdown)`;
//! 7. mean over each sentence's rows, then divide by the L2 norm.

use std::collections::HashMap;

use candle_core::{
    CpuStorage, CustomOp1, DType, Device, InplaceOp1, InplaceOp2, Layout, Shape, Tensor,
};
use rayon::prelude::*;
use serde::Deserialize;

/// Rows a parallel task takes at once, so that a task outweighs its hand-off.
const ROWS_PER_TASK: usize = 8;

/// The fields of a Hugging Face BERT `config.json` the encoder reads.
#[derive(Debug, Deserialize)]
pub(crate) struct Config {
    vocab_size: usize,
    /// Width of every token's vector, and so of the sentence vector.
    pub hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: String,
    /// Longest token sequence the model takes.
    pub max_position_embeddings: usize,
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    model_type: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

/// Layer norm's scale and shift.
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// One encoder layer; products' weights are stored `[in, out]` for `x·W`.
struct Layer {
    qkv: Tensor,
    qkv_bias: Vec<f32>,
    out: Tensor,
    out_bias: Vec<f32>,
    attention_norm: Norm,
    up: Tensor,
    up_bias: Vec<f32>,
    down: Tensor,
    down_bias: Vec<f32>,
    output_norm: Norm,
}

/// A loaded BERT encoder with mean pooling.
pub(crate) struct Bert {
    hidden: usize,
    heads: usize,
    eps: f32,
    vocab: usize,
    max_positions: usize,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

/// Reads named tensors out of a safetensors buffer, with or without a `bert.` prefix.
struct Weights {
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
}

impl Weights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, String> {
        let key = format!("{}{name}", self.prefix);
        let t = self
            .tensors
            .get(&key)
            .ok_or_else(|| format!("model.safetensors has no tensor {key}"))?;
        if t.dims() != shape {
            return Err(format!(
                "tensor {key} has shape {:?}, the config implies {shape:?}",
                t.dims()
            ));
        }
        t.to_dtype(DType::F32).map_err(|e| format!("{key}: {e}"))
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, String> {
        self.get(name, &[len])?
            .to_vec1::<f32>()
            .map_err(|e| format!("{name}: {e}"))
    }

    fn table(&self, name: &str, rows: usize, cols: usize) -> Result<Vec<f32>, String> {
        self.get(name, &[rows, cols])?
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| format!("{name}: {e}"))
    }

    /// A dense layer's `[out, in]` weight, transposed to a contiguous `[in, out]`.
    fn dense(&self, name: &str, inputs: usize, outputs: usize) -> Result<Tensor, String> {
        self.get(name, &[outputs, inputs])?
            .t()
            .and_then(|t| t.contiguous())
            .map_err(|e| format!("{name}: {e}"))
    }

    fn norm(&self, name: &str, len: usize) -> Result<Norm, String> {
        Ok(Norm {
            gamma: self.vector(&format!("{name}.weight"), len)?,
            beta: self.vector(&format!("{name}.bias"), len)?,
        })
    }
}

impl Bert {
    /// Loads the encoder from `model.safetensors` bytes; the error says what is wrong.
    pub(crate) fn load(config: &Config, safetensors: &[u8]) -> Result<Self, String> {
        if config.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only \"gelu\")",
                config.hidden_act
            ));
        }
        if config
            .position_embedding_type
            .as_deref()
            .is_some_and(|p| p != "absolute")
        {
            return Err("only absolute position embeddings are supported".into());
        }
        if config.model_type.as_deref().is_some_and(|m| m != "bert") {
            // RoBERTa and its kin count positions from another offset.
            return Err(format!(
                "model_type {:?} is not supported (only \"bert\")",
                config.model_type
            ));
        }
        let (h, heads) = (config.hidden_size, config.num_attention_heads);
        if h == 0 || heads == 0 || h % heads != 0 {
            return Err(format!(
                "hidden_size {h} must be a positive multiple of num_attention_heads {heads}"
            ));
        }
        for (field, value) in [
            ("vocab_size", config.vocab_size),
            ("intermediate_size", config.intermediate_size),
            ("max_position_embeddings", config.max_position_embeddings),
            ("type_vocab_size", config.type_vocab_size),
        ] {
            if value == 0 {
                return Err(format!("{field} must be positive"));
            }
        }
        let tensors = candle_core::safetensors::load_buffer(safetensors, &Device::Cpu)
            .map_err(|e| format!("model.safetensors: {e}"))?;
        let prefix = if tensors.contains_key("embeddings.word_embeddings.weight") {
            ""
        } else {
            "bert."
        };
        let w = Weights { tensors, prefix };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                let qkv = Tensor::cat(
                    &[
                        w.dense(&format!("{p}.attention.self.query.weight"), h, h)?,
                        w.dense(&format!("{p}.attention.self.key.weight"), h, h)?,
                        w.dense(&format!("{p}.attention.self.value.weight"), h, h)?,
                    ],
                    1,
                )
                .map_err(|e| format!("{p}: {e}"))?;
                let mut qkv_bias = w.vector(&format!("{p}.attention.self.query.bias"), h)?;
                qkv_bias.extend(w.vector(&format!("{p}.attention.self.key.bias"), h)?);
                qkv_bias.extend(w.vector(&format!("{p}.attention.self.value.bias"), h)?);
                let ffn = config.intermediate_size;
                Ok(Layer {
                    qkv,
                    qkv_bias,
                    out: w.dense(&format!("{p}.attention.output.dense.weight"), h, h)?,
                    out_bias: w.vector(&format!("{p}.attention.output.dense.bias"), h)?,
                    attention_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                    up: w.dense(&format!("{p}.intermediate.dense.weight"), h, ffn)?,
                    up_bias: w.vector(&format!("{p}.intermediate.dense.bias"), ffn)?,
                    down: w.dense(&format!("{p}.output.dense.weight"), ffn, h)?,
                    down_bias: w.vector(&format!("{p}.output.dense.bias"), h)?,
                    output_norm: w.norm(&format!("{p}.output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let token_type = w.table(
            "embeddings.token_type_embeddings.weight",
            config.type_vocab_size,
            h,
        )?;
        Ok(Bert {
            hidden: h,
            heads,
            eps: config.layer_norm_eps as f32,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
            word: w.table("embeddings.word_embeddings.weight", config.vocab_size, h)?,
            position: w.table(
                "embeddings.position_embeddings.weight",
                config.max_position_embeddings,
                h,
            )?,
            token_type: token_type[..h].to_vec(),
            embedding_norm: w.norm("embeddings.LayerNorm", h)?,
            layers,
        })
    }

    /// The unit sentence vector of each token sequence (mean over its tokens of the last layer).
    pub(crate) fn embed(&self, sentences: &[&[u32]]) -> Result<Vec<Vec<f32>>, String> {
        let h = self.hidden;
        let mut spans = Vec::with_capacity(sentences.len());
        let mut tokens = Vec::new();
        for s in sentences {
            if s.is_empty() || s.len() > self.max_positions {
                return Err(format!(
                    "a sequence of {} tokens; the model takes 1 to {}",
                    s.len(),
                    self.max_positions
                ));
            }
            spans.push((tokens.len(), s.len()));
            for (position, &id) in s.iter().enumerate() {
                let id = id as usize;
                if id >= self.vocab {
                    return Err(format!("token id {id} is outside the vocabulary"));
                }
                tokens.push((id, position));
            }
        }
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let fail = |e: candle_core::Error| e.to_string();

        // 1. Embeddings.
        let mut x = vec![0f32; tokens.len() * h];
        x.par_chunks_mut(h)
            .zip(tokens.par_iter())
            .for_each(|(row, &(id, position))| {
                let word = &self.word[id * h..(id + 1) * h];
                let pos = &self.position[position * h..(position + 1) * h];
                for (((r, w), p), t) in row.iter_mut().zip(word).zip(pos).zip(&self.token_type) {
                    *r = w + p + t;
                }
                normalize(row, &self.embedding_norm, self.eps);
            });
        let mut x = Tensor::from_vec(x, (tokens.len(), h), &Device::Cpu).map_err(fail)?;

        for layer in &self.layers {
            // 2–3. Self-attention.
            let qkv = x.matmul(&layer.qkv).map_err(fail)?;
            let context = qkv
                .apply_op1_no_bwd(&Attention {
                    spans: &spans,
                    heads: self.heads,
                    bias: &layer.qkv_bias,
                })
                .map_err(fail)?;
            // 4. Output projection, residual, norm.
            let attended = context.matmul(&layer.out).map_err(fail)?;
            attended
                .inplace_op2(
                    &x,
                    &AddNorm {
                        bias: &layer.out_bias,
                        norm: &layer.attention_norm,
                        eps: self.eps,
                    },
                )
                .map_err(fail)?;
            x = attended;
            // 5. Feed-forward up with GELU.
            let up = x.matmul(&layer.up).map_err(fail)?;
            up.inplace_op1(&BiasGelu {
                bias: &layer.up_bias,
            })
            .map_err(fail)?;
            // 6. Down, residual, norm.
            let down = up.matmul(&layer.down).map_err(fail)?;
            down.inplace_op2(
                &x,
                &AddNorm {
                    bias: &layer.down_bias,
                    norm: &layer.output_norm,
                    eps: self.eps,
                },
            )
            .map_err(fail)?;
            x = down;
        }

        // 7. Mean pooling and L2 normalisation.
        let hidden = x
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(fail)?;
        Ok(spans
            .iter()
            .map(|&(start, len)| {
                let mut mean = vec![0f32; h];
                for row in hidden[start * h..(start + len) * h].chunks_exact(h) {
                    for (m, v) in mean.iter_mut().zip(row) {
                        *m += v;
                    }
                }
                let n = len as f32;
                mean.iter_mut().for_each(|m| *m /= n);
                let norm = mean.iter().map(|m| m * m).sum::<f32>().sqrt().max(1e-12);
                mean.iter_mut().for_each(|m| *m /= norm);
                mean
            })
            .collect())
    }
}

/// Layer norm of one row in place.
#[inline(always)]
fn normalize(row: &mut [f32], norm: &Norm, eps: f32) {
    let n = row.len() as f32;
    let mean = lanes(row, |x| x) / n;
    let var = lanes(row, |x| (x - mean) * (x - mean)) / n;
    let scale = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
        *v = (*v - mean) * scale * g + b;
    }
}

/// `Σ f(x)` in eight running sums, an order the compiler can vectorise.
#[inline(always)]
fn lanes(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ aᵢ·bᵢ` in eight running sums.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, p), q) in acc.iter_mut().zip(x).zip(y) {
            *s += p * q;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `eˣ` without branches or calls, so that loops over it vectorise: `x = k·ln 2 + r` with
/// `|r| ≤ ln 2 / 2`, `eʳ` by its Taylor series to `r⁷` (relative error under 2·10⁻⁷), and `2ᵏ`
/// written into the exponent bits. Inputs are clamped to the normal range of `f32`.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer.
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = (x - k * 0.693_145_75) - k * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // The low bits of `shifted` hold k + 2²²; move k into the exponent field.
    let bits = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127)
        << 23;
    p * f32::from_bits(bits)
}

/// `erf(x)` by Abramowitz and Stegun 7.1.26 (absolute error under 1.5·10⁻⁷), branch-free.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// Exact GELU: `x·Φ(x)`.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

fn contiguous<'s>(s: &'s CpuStorage, l: &Layout) -> candle_core::Result<&'s [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => Err(candle_core::Error::Msg(
            "expected a contiguous f32 tensor".into(),
        )),
    }
}

fn contiguous_mut<'s>(s: &'s mut CpuStorage, l: &Layout) -> candle_core::Result<&'s mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => Err(candle_core::Error::Msg(
            "expected a contiguous f32 tensor".into(),
        )),
    }
}

/// Self-attention of each sentence over its own rows of a `[tokens, 3·hidden]` product.
struct Attention<'a> {
    spans: &'a [(usize, usize)],
    heads: usize,
    bias: &'a [f32],
}

impl CustomOp1 for Attention<'_> {
    fn name(&self) -> &'static str {
        "ragged-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = contiguous(s, l)?;
        let (rows, width) = l.shape().dims2()?;
        let h = width / 3;
        let d = h / self.heads;
        let work: Vec<(usize, usize)> = (0..self.spans.len())
            .flat_map(|s| (0..self.heads).map(move |head| (s, head)))
            .collect();
        let arch = pulp::Arch::new();
        let results: Vec<Vec<f32>> = work
            .par_iter()
            .map(|&(s, head)| {
                let (start, len) = self.spans[s];
                arch.dispatch(Head {
                    qkv,
                    width,
                    rows: start..start + len,
                    column: head * d,
                    d,
                    bias: self.bias,
                })
            })
            .collect();
        let mut out = vec![0f32; rows * h];
        for (&(s, head), context) in work.iter().zip(&results) {
            let (start, _) = self.spans[s];
            for (i, ci) in context.chunks_exact(d).enumerate() {
                let at = (start + i) * h + head * d;
                out[at..at + d].copy_from_slice(ci);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, h))))
    }
}

/// One sentence's attention through one head, compiled for the CPU's vector width: the
/// context vectors of its rows, `d` values each.
struct Head<'a> {
    qkv: &'a [f32],
    width: usize,
    rows: std::ops::Range<usize>,
    column: usize,
    d: usize,
    bias: &'a [f32],
}

impl pulp::WithSimd for Head<'_> {
    type Output = Vec<f32>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<f32> {
        let (d, h) = (self.d, self.width / 3);
        let scale = 1.0 / (d as f32).sqrt();
        // This head's q, k and v of the sentence's rows, biases added.
        let take = |part: usize| -> Vec<f32> {
            let col = part * h + self.column;
            let bias = &self.bias[col..col + d];
            let mut out = Vec::with_capacity(self.rows.len() * d);
            for r in self.rows.clone() {
                let row = &self.qkv[r * self.width + col..r * self.width + col + d];
                out.extend(row.iter().zip(bias).map(|(v, b)| v + b));
            }
            out
        };
        let (q, k, v) = (take(0), take(1), take(2));
        let mut context = vec![0f32; q.len()];
        let mut scores = vec![0f32; self.rows.len()];
        for (qi, ci) in q.chunks_exact(d).zip(context.chunks_exact_mut(d)) {
            let mut max = f32::NEG_INFINITY;
            for (sj, kj) in scores.iter_mut().zip(k.chunks_exact(d)) {
                *sj = dot(qi, kj) * scale;
                max = max.max(*sj);
            }
            for sj in scores.iter_mut() {
                *sj = exp(*sj - max);
            }
            let total = lanes(&scores, |x| x);
            for (sj, vj) in scores.iter().zip(v.chunks_exact(d)) {
                let p = sj / total;
                for (c, x) in ci.iter_mut().zip(vj) {
                    *c += p * x;
                }
            }
        }
        context
    }
}

/// `dst = norm(dst + bias + residual)`, row by row.
struct AddNorm<'a> {
    bias: &'a [f32],
    norm: &'a Norm,
    eps: f32,
}

impl InplaceOp2 for AddNorm<'_> {
    fn name(&self) -> &'static str {
        "add-bias-residual-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let residual = contiguous(s2, l2)?;
        let dst = contiguous_mut(s1, l1)?;
        let h = self.bias.len();
        if h == 0 || dst.len() != residual.len() || dst.len() % h != 0 {
            return Err(candle_core::Error::Msg("add-norm: shapes differ".into()));
        }
        let arch = pulp::Arch::new();
        dst.par_chunks_mut(h * ROWS_PER_TASK)
            .zip(residual.par_chunks(h * ROWS_PER_TASK))
            .for_each(|(rows, residual)| {
                arch.dispatch(AddNormRows {
                    rows,
                    residual,
                    op: self,
                })
            });
        Ok(())
    }
}

/// One task's rows of [`AddNorm`], compiled for the CPU's vector width.
struct AddNormRows<'a, 'b> {
    rows: &'a mut [f32],
    residual: &'a [f32],
    op: &'a AddNorm<'b>,
}

impl pulp::WithSimd for AddNormRows<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let h = self.op.bias.len();
        for (row, res) in self
            .rows
            .chunks_exact_mut(h)
            .zip(self.residual.chunks_exact(h))
        {
            for ((v, b), x) in row.iter_mut().zip(self.op.bias).zip(res) {
                *v += b + x;
            }
            normalize(row, self.op.norm, self.op.eps);
        }
    }
}

/// One task's rows of [`BiasGelu`], compiled for the CPU's vector width.
struct GeluRows<'a> {
    rows: &'a mut [f32],
    bias: &'a [f32],
}

impl pulp::WithSimd for GeluRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for row in self.rows.chunks_exact_mut(self.bias.len()) {
            for (v, b) in row.iter_mut().zip(self.bias) {
                *v = gelu(*v + b);
            }
        }
    }
}

/// `dst = gelu(dst + bias)`, row by row.
struct BiasGelu<'a> {
    bias: &'a [f32],
}

impl InplaceOp1 for BiasGelu<'_> {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        let dst = contiguous_mut(s, l)?;
        let w = self.bias.len();
        if w == 0 || dst.len() % w != 0 {
            return Err(candle_core::Error::Msg("bias-gelu: shapes differ".into()));
        }
        let arch = pulp::Arch::new();
        dst.par_chunks_mut(w * ROWS_PER_TASK).for_each(|rows| {
            arch.dispatch(GeluRows {
                rows,
                bias: self.bias,
            })
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_match_the_library_functions() {
        let mut worst_exp = 0f64;
        let mut worst_erf = 0f64;
        for i in -20_000..=20_000 {
            let x = i as f32 / 1000.0;
            let want = f64::from(x).exp();
            worst_exp = worst_exp.max(((f64::from(exp(x)) - want) / want).abs());
            let want = f64::from(candle_core::cpu::erf::erf_f32(x));
            worst_erf = worst_erf.max((f64::from(erf(x)) - want).abs());
        }
        assert!(worst_exp < 5e-7, "exp relative error {worst_exp}");
        assert!(worst_erf < 5e-7, "erf absolute error {worst_erf}");
        // Clamped, never infinite or zero-divided.
        assert!(exp(-1000.0) > 0.0 && exp(1000.0).is_finite());
        assert_eq!(erf(0.0), 0.0);
        assert!((gelu(3.0) - 2.995_95).abs() < 1e-4);
        assert!(gelu(-10.0).abs() < 1e-6);
    }

    #[test]
    fn unusable_configs_are_refused_before_the_weights_are_read() {
        let base = serde_json::json!({
            "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "hidden_act": "gelu",
            "max_position_embeddings": 4, "type_vocab_size": 2, "model_type": "bert"
        });
        let refused = |field: &str, value: serde_json::Value, says: &str| {
            let mut c = base.clone();
            c[field] = value;
            let config: Config = serde_json::from_value(c).expect("config");
            let err = Bert::load(&config, b"").err().expect("refused");
            assert!(err.contains(says), "{field}: {err}");
        };
        refused(
            "intermediate_size",
            0.into(),
            "intermediate_size must be positive",
        );
        refused(
            "type_vocab_size",
            0.into(),
            "type_vocab_size must be positive",
        );
        refused("num_attention_heads", 3.into(), "positive multiple");
        refused("hidden_act", "relu".into(), "not supported");
        refused("model_type", "roberta".into(), "not supported");
        // A sound config reaches the weights, which are checked next.
        let config: Config = serde_json::from_value(base).expect("config");
        let err = Bert::load(&config, b"").err().expect("no weights");
        assert!(err.contains("model.safetensors"), "{err}");
    }

    #[test]
    fn sums_in_lanes_match_the_plain_sums() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 / (i as f32 + 1.0)).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
        assert!((lanes(&a, |x| x) - a.iter().sum::<f32>()).abs() < 1e-4);
    }
}
