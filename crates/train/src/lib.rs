//! Hibana's reproducible trainer: logistic regression and MLP classifiers trained with integer
//! arithmetic only, so that every machine, thread count and build profile computes the same
//! parameters bit for bit, and the chain can re-run any single step to settle a dispute.
//!
//! Numbers are fixed-point with [`FRAC_BITS`] fractional bits ([`ONE`] is 1.0), clamped to
//! ±[`LIMIT`]. A step draws its batch from the dataset by the job's seed ([`batch_indices`]),
//! runs the forward pass (affine layers, ReLU between them, softmax at the end through an integer
//! `exp`), back-propagates the cross-entropy gradient, sums it over the batch and moves every
//! parameter by `learning_rate × gradient / batch`, rounding toward zero. Integer addition is
//! associative, so summing the batch in parallel chunks ([`step_parallel`]) gives the same sum as
//! summing it in order ([`step`]): parallelism cannot change a bit.
//!
//! The state after step `s` is named by [`state_hash`]; a provider commits these hashes on chain,
//! and a dispute carries the parameters before the disputed step with the step's rows, each
//! proved under the dataset's Merkle root ([`Dataset::proven_row`], [`check_rows`]).
//!
//! ```
//! use hibana_train::{Dataset, Trainer, TrainingSpec};
//! let rows = (0..40).map(|i| {
//!     let x = f64::from(i) / 40.0;
//!     format!("{{\"features\": [{x}, {}], \"label\": {}}}\n", 1.0 - x, u8::from(x > 0.5))
//! });
//! let data = Dataset::from_jsonl(&rows.collect::<String>()).unwrap();
//! let spec = TrainingSpec {
//!     dataset_root: data.root(), rows: data.len() as u64, features: 2, hidden: vec![],
//!     classes: 2, learning_rate: 1 << 16, batch: 8, steps: 20, seed: 7, checkpoint_every: 10,
//! };
//! let mut trainer = Trainer::new(&spec).unwrap();
//! let hashes: Vec<_> = (0..20).map(|_| trainer.next_step(&data).unwrap()).collect();
//! assert_eq!(hashes.last(), Some(&hibana_train::state_hash(20, trainer.params())));
//! ```

#![forbid(unsafe_code)]

use rayon::prelude::*;

pub use hibana_types::records::market::TrainingSpec;
use hibana_types::{Hash, ProvenRow, merkle_proof, merkle_root, verify_merkle_proof};

/// Fractional bits of every fixed-point number.
pub const FRAC_BITS: u32 = 16;
/// 1.0 in fixed point.
pub const ONE: i64 = 1 << FRAC_BITS;
/// The largest magnitude of a feature, an activation or a parameter (256.0).
pub const LIMIT: i64 = 1 << 24;

/// Why a dataset, a spec, parameters or a dispute's rows were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainError {
    /// The spec is outside the chain's limits or does not fit the data.
    #[error("training spec: {0}")]
    Spec(String),
    /// A line of the dataset is not a row.
    #[error("dataset line {line}: {reason}")]
    Data {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Parameters of the wrong length.
    #[error("expected {expected} parameters, got {got}")]
    Params {
        /// What the spec's model has.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// A batch row does not belong where it claims.
    #[error("batch: {0}")]
    Rows(String),
}

/// One training example: features in fixed point and a class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its class, below the spec's class count.
    pub label: u32,
    /// Its features, fixed-point, within ±[`LIMIT`].
    pub features: Vec<i32>,
}

/// The Merkle leaf of row `index`: the index is inside, so a proof cannot move a row.
pub fn row_leaf(index: u64, label: u32, features: &[i32]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"hibana/train/row");
    h.update(&index.to_le_bytes());
    h.update(&label.to_le_bytes());
    h.update(&(features.len() as u64).to_le_bytes());
    for f in features {
        h.update(&f.to_le_bytes());
    }
    Hash(*h.finalize().as_bytes())
}

/// A value in fixed point, rounded to nearest; `None` if it is not finite or beyond ±[`LIMIT`].
pub fn quantise(x: f64) -> Option<i32> {
    let q = (x * ONE as f64).round();
    (q.is_finite() && q.abs() <= LIMIT as f64).then_some(q as i32)
}

/// A training dataset in memory, with its Merkle tree.
#[derive(Debug, Clone)]
pub struct Dataset {
    rows: Vec<Row>,
    leaves: Vec<Hash>,
    root: Hash,
}

/// Most bytes of a dataset file read into memory.
pub const MAX_DATASET_BYTES: usize = 256 << 20;

impl Dataset {
    /// A dataset from rows, which must all have the same number of features.
    pub fn from_rows(rows: Vec<Row>) -> Result<Self, TrainError> {
        let width = rows.first().map(|r| r.features.len()).unwrap_or(0);
        if rows.is_empty() {
            return Err(TrainError::Data {
                line: 0,
                reason: "the dataset has no rows".into(),
            });
        }
        if rows.len() as u64 > hibana_types::records::market::MAX_TRAIN_ROWS {
            return Err(TrainError::Data {
                line: rows.len(),
                reason: "too many rows".into(),
            });
        }
        for (i, r) in rows.iter().enumerate() {
            if r.features.len() != width {
                return Err(TrainError::Data {
                    line: i + 1,
                    reason: format!(
                        "{} features where the first row has {width}",
                        r.features.len()
                    ),
                });
            }
            if r.features.iter().any(|&f| i64::from(f).abs() > LIMIT) {
                return Err(TrainError::Data {
                    line: i + 1,
                    reason: "a feature is beyond ±256".into(),
                });
            }
        }
        let leaves: Vec<Hash> = rows
            .par_iter()
            .enumerate()
            .map(|(i, r)| row_leaf(i as u64, r.label, &r.features))
            .collect();
        let root = merkle_root(&leaves);
        Ok(Self { rows, leaves, root })
    }

    /// A dataset from JSON lines `{"features": [numbers], "label": class}` (blank lines skipped).
    pub fn from_jsonl(text: &str) -> Result<Self, TrainError> {
        if text.len() > MAX_DATASET_BYTES {
            return Err(TrainError::Data {
                line: 0,
                reason: format!("the file is over {MAX_DATASET_BYTES} bytes"),
            });
        }
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |reason: String| TrainError::Data {
                line: i + 1,
                reason,
            };
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
            let label = v
                .get("label")
                .and_then(serde_json::Value::as_u64)
                .and_then(|l| u32::try_from(l).ok())
                .ok_or_else(|| bad("\"label\" must be a class number".into()))?;
            let features = v
                .get("features")
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| bad("\"features\" must be an array of numbers".into()))?
                .iter()
                .map(|f| {
                    f.as_f64()
                        .and_then(quantise)
                        .ok_or_else(|| bad(format!("feature {f} is not a number within ±256")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(Row { label, features });
        }
        Self::from_rows(rows)
    }

    /// The Merkle root of the rows: the dataset's name on chain.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows (never, once built).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Features per row.
    pub fn features(&self) -> usize {
        self.rows.first().map(|r| r.features.len()).unwrap_or(0)
    }

    /// One more than the largest label.
    pub fn classes(&self) -> u32 {
        self.rows.iter().map(|r| r.label).max().map_or(0, |m| m + 1)
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Row `index` with its Merkle proof, as a dispute carries it.
    pub fn proven_row(&self, index: u64) -> Option<ProvenRow> {
        let i = usize::try_from(index).ok()?;
        let row = self.rows.get(i)?;
        Some(ProvenRow {
            index,
            label: row.label,
            features: row.features.clone(),
            proof: merkle_proof(&self.leaves, i)?,
        })
    }

    /// Whether `spec` names this dataset and fits its rows.
    pub fn check_spec(&self, spec: &TrainingSpec) -> Result<(), TrainError> {
        spec.check().map_err(TrainError::Spec)?;
        if spec.dataset_root != self.root {
            return Err(TrainError::Spec(format!(
                "the job names dataset {} but this file is dataset {}",
                spec.dataset_root, self.root
            )));
        }
        if spec.rows != self.len() as u64 || spec.features as usize != self.features() {
            return Err(TrainError::Spec(format!(
                "the job expects {} rows of {} features; the file has {} of {}",
                spec.rows,
                spec.features,
                self.len(),
                self.features()
            )));
        }
        if self.classes() > spec.classes {
            return Err(TrainError::Spec(format!(
                "a row has class {} but the model has {} classes",
                self.classes() - 1,
                spec.classes
            )));
        }
        Ok(())
    }
}

/// SplitMix64: a small, exactly specified generator, so the seed means the same everywhere.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The integer square root (floor).
fn isqrt(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let mut x = n;
    let mut y = x.div_ceil(2);
    while y < x {
        x = y;
        y = (x + n / x) / 2;
    }
    x
}

/// The parameters before step 1: weights uniform in ±√(6 / (in + out)) (Glorot), biases zero,
/// drawn from the seed. Layout: per layer, its weights row by row (`[out][in]`), then its biases.
pub fn init_params(spec: &TrainingSpec) -> Vec<i32> {
    let mut rng = spec.seed ^ 0x6869_6261_6e61_2f69; // "hibana/i"
    let mut params = Vec::with_capacity(spec.param_count() as usize);
    for w in spec.widths().windows(2) {
        let (n_in, n_out) = (u64::from(w[0]), u64::from(w[1]));
        let limit = isqrt((6 << (2 * FRAC_BITS)) / (n_in + n_out).max(1));
        for _ in 0..n_in * n_out {
            let r = splitmix(&mut rng) % (2 * limit + 1);
            params.push((r as i64 - limit as i64) as i32);
        }
        params.extend(std::iter::repeat_n(0, n_out as usize));
    }
    params
}

/// The rows of step `step`'s batch (1-based), in batch order.
pub fn batch_rows<'a>(
    spec: &TrainingSpec,
    data: &'a Dataset,
    step: u64,
) -> Result<Vec<&'a Row>, TrainError> {
    batch_indices(spec, step)
        .iter()
        .map(|&i| {
            data.rows()
                .get(i as usize)
                .ok_or_else(|| TrainError::Rows(format!("row {i} is past the dataset's end")))
        })
        .collect()
}

/// The rows of step `step` (1-based), drawn with replacement from the seed.
pub fn batch_indices(spec: &TrainingSpec, step: u64) -> Vec<u64> {
    let mut rng = spec.seed ^ step.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (0..spec.batch)
        .map(|_| splitmix(&mut rng) % spec.rows.max(1))
        .collect()
}

/// The bytes of a checkpoint: a domain tag, the step, the parameter count and every parameter,
/// little-endian. Their blake3 hash is [`state_hash`], so a checkpoint stored in a
/// content-addressed blob store is found by the hash committed on chain.
pub fn checkpoint_bytes(step: u64, params: &[i32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(STATE_TAG.len() + 16 + 4 * params.len());
    out.extend_from_slice(STATE_TAG);
    out.extend_from_slice(&step.to_le_bytes());
    out.extend_from_slice(&(params.len() as u64).to_le_bytes());
    for p in params {
        out.extend_from_slice(&p.to_le_bytes());
    }
    out
}

const STATE_TAG: &[u8] = b"hibana/train/state";

/// Reads [`checkpoint_bytes`] back: the step and the parameters.
pub fn parse_checkpoint(bytes: &[u8]) -> Result<(u64, Vec<i32>), TrainError> {
    let rest = bytes
        .strip_prefix(STATE_TAG)
        .ok_or_else(|| TrainError::Spec("not a checkpoint".into()))?;
    if rest.len() < 16 {
        return Err(TrainError::Spec("a truncated checkpoint".into()));
    }
    let (head, body) = rest.split_at(16);
    let step = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
    let count = u64::from_le_bytes(head[8..].try_into().unwrap_or_default());
    let max = hibana_types::records::market::MAX_TRAIN_PARAMS;
    if count > max {
        return Err(TrainError::Spec(format!(
            "a checkpoint of {count} parameters: at most {max}"
        )));
    }
    if body.len() as u64 != 4 * count {
        return Err(TrainError::Spec(format!(
            "a checkpoint of {count} parameters must have {} bytes of them, not {}",
            4 * count,
            body.len()
        )));
    }
    let params = body
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((step, params))
}

/// The name of the state after `step` steps: the blake3 hash of its [`checkpoint_bytes`].
pub fn state_hash(step: u64, params: &[i32]) -> Hash {
    Hash(*blake3::hash(&checkpoint_bytes(step, params)).as_bytes())
}

fn clamp(x: i64) -> i64 {
    x.clamp(-LIMIT, LIMIT)
}

/// e^x in fixed point for x ≤ 0, as 2^(x·log₂e): the integer part is a shift, the fraction a
/// sixth-degree polynomial (error below 10⁻⁴).
fn exp_neg(x: i64) -> i64 {
    if x <= -16 * ONE {
        return 0;
    }
    let t = (x * 94_548) >> FRAC_BITS; // log₂e = 1.442695 → 94,548 / 65,536
    let n = t >> FRAC_BITS; // floor: ≤ 0
    let f = t - (n << FRAC_BITS); // [0, ONE)
    // Taylor series of 2^f to degree 6 (ln2^k / k!), Horner's rule.
    let mut p: i64 = 10;
    for c in [87, 630, 3_638, 15_743, 45_426, ONE] {
        p = ((p * f) >> FRAC_BITS) + c;
    }
    p >> (-n).min(62)
}

/// A layer's weights and biases, borrowed from the flat parameters.
struct Layer<'a> {
    n_in: usize,
    n_out: usize,
    w: &'a [i32],
    b: &'a [i32],
    /// Offset of `w` in the flat parameters.
    at: usize,
}

fn layers<'a>(spec: &TrainingSpec, params: &'a [i32]) -> Result<Vec<Layer<'a>>, TrainError> {
    let expected = spec.param_count() as usize;
    if params.len() != expected {
        return Err(TrainError::Params {
            expected,
            got: params.len(),
        });
    }
    let mut at = 0;
    let mut out = Vec::new();
    for w in spec.widths().windows(2) {
        let (n_in, n_out) = (w[0] as usize, w[1] as usize);
        let nw = n_in * n_out;
        out.push(Layer {
            n_in,
            n_out,
            w: &params[at..at + nw],
            b: &params[at + nw..at + nw + n_out],
            at,
        });
        at += nw + n_out;
    }
    Ok(out)
}

/// Pre-activations of every layer for one input (the last are the logits).
fn forward(layers: &[Layer<'_>], input: &[i32]) -> Vec<Vec<i64>> {
    let mut zs: Vec<Vec<i64>> = Vec::with_capacity(layers.len());
    let mut a: Vec<i64> = input.iter().map(|&x| i64::from(x)).collect();
    for (l, layer) in layers.iter().enumerate() {
        let z: Vec<i64> = (0..layer.n_out)
            .map(|j| {
                let row = &layer.w[j * layer.n_in..(j + 1) * layer.n_in];
                let dot: i64 = row.iter().zip(&a).map(|(&w, &x)| i64::from(w) * x).sum();
                clamp((dot >> FRAC_BITS) + i64::from(layer.b[j]))
            })
            .collect();
        if l + 1 < layers.len() {
            a = z.iter().map(|&v| v.max(0)).collect();
        }
        zs.push(z);
    }
    zs
}

/// Softmax probabilities of logits, in fixed point.
fn softmax(z: &[i64]) -> Vec<i64> {
    let max = z.iter().copied().max().unwrap_or(0);
    let e: Vec<i64> = z.iter().map(|&v| exp_neg(v - max)).collect();
    let sum: i64 = e.iter().sum::<i64>().max(1);
    e.iter().map(|&v| (v << FRAC_BITS) / sum).collect()
}

/// Adds one example's cross-entropy gradient to `grad` (same layout as the parameters).
fn accumulate(layers: &[Layer<'_>], row: &Row, grad: &mut [i64]) {
    let zs = forward(layers, &row.features);
    let last = zs.len() - 1;
    let mut dz: Vec<i64> = softmax(&zs[last]);
    if let Some(d) = dz.get_mut(row.label as usize) {
        *d -= ONE;
    }
    for l in (0..layers.len()).rev() {
        let layer = &layers[l];
        let input: Vec<i64> = if l == 0 {
            row.features.iter().map(|&x| i64::from(x)).collect()
        } else {
            zs[l - 1].iter().map(|&v| v.max(0)).collect()
        };
        for j in 0..layer.n_out {
            let g = &mut grad[layer.at + j * layer.n_in..layer.at + (j + 1) * layer.n_in];
            for (gi, &x) in g.iter_mut().zip(&input) {
                *gi += (dz[j] * x) >> FRAC_BITS;
            }
            grad[layer.at + layer.n_in * layer.n_out + j] += dz[j];
        }
        if l > 0 {
            let prev = &zs[l - 1];
            dz = (0..layer.n_in)
                .map(|i| {
                    if prev[i] <= 0 {
                        return 0;
                    }
                    let back: i64 = (0..layer.n_out)
                        .map(|j| i64::from(layer.w[j * layer.n_in + i]) * dz[j])
                        .sum();
                    clamp(back >> FRAC_BITS)
                })
                .collect();
        }
    }
}

fn apply(spec: &TrainingSpec, params: &[i32], grad: &[i64]) -> Vec<i32> {
    let lr = i128::from(spec.learning_rate);
    let div = i128::from(spec.batch.max(1)) * i128::from(ONE);
    params
        .iter()
        .zip(grad)
        .map(|(&p, &g)| {
            let delta = lr * i128::from(g) / div; // rounds toward zero
            let moved = i128::from(p) - delta;
            moved.clamp(-i128::from(LIMIT), i128::from(LIMIT)) as i32
        })
        .collect()
}

fn check_batch(spec: &TrainingSpec, batch: &[&Row]) -> Result<(), TrainError> {
    if batch.len() != spec.batch as usize {
        return Err(TrainError::Rows(format!(
            "{} rows where the job's batch is {}",
            batch.len(),
            spec.batch
        )));
    }
    for r in batch {
        if r.features.len() != spec.features as usize || r.label >= spec.classes {
            return Err(TrainError::Rows(format!(
                "a row of {} features and class {} does not fit a model of {} features and {} classes",
                r.features.len(),
                r.label,
                spec.features,
                spec.classes
            )));
        }
        if r.features.iter().any(|&f| i64::from(f).abs() > LIMIT) {
            return Err(TrainError::Rows("a feature is beyond ±256".into()));
        }
    }
    Ok(())
}

/// One SGD step over `batch` (the rows of [`batch_indices`]), summed in order: what the chain
/// runs to settle a dispute.
pub fn step(spec: &TrainingSpec, params: &[i32], batch: &[&Row]) -> Result<Vec<i32>, TrainError> {
    let layers = layers(spec, params)?;
    check_batch(spec, batch)?;
    let mut grad = vec![0i64; params.len()];
    for row in batch {
        accumulate(&layers, row, &mut grad);
    }
    Ok(apply(spec, params, &grad))
}

/// The same step with the batch split into chunks of `chunk` rows summed on the rayon pool; the
/// result equals [`step`]'s bit for bit.
pub fn step_parallel(
    spec: &TrainingSpec,
    params: &[i32],
    batch: &[&Row],
    chunk: usize,
) -> Result<Vec<i32>, TrainError> {
    let layers = layers(spec, params)?;
    check_batch(spec, batch)?;
    let grad = batch
        .par_chunks(chunk.max(1))
        .map(|rows| {
            let mut g = vec![0i64; params.len()];
            for row in rows {
                accumulate(&layers, row, &mut g);
            }
            g
        })
        .reduce(
            || vec![0i64; params.len()],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    Ok(apply(spec, params, &grad))
}

/// The logits of one input, fixed-point.
pub fn logits(
    spec: &TrainingSpec,
    params: &[i32],
    features: &[i32],
) -> Result<Vec<i64>, TrainError> {
    let layers = layers(spec, params)?;
    if features.len() != spec.features as usize {
        return Err(TrainError::Rows(format!(
            "{} features where the model takes {}",
            features.len(),
            spec.features
        )));
    }
    Ok(forward(&layers, features).pop().unwrap_or_default())
}

/// The predicted class of one input (the first of equal logits).
pub fn predict(spec: &TrainingSpec, params: &[i32], features: &[i32]) -> Result<u32, TrainError> {
    let z = logits(spec, params, features)?;
    let mut best = 0;
    for (k, v) in z.iter().enumerate() {
        if *v > z[best] {
            best = k;
        }
    }
    Ok(best as u32)
}

/// How many rows of `data` the model classifies right.
pub fn correct(spec: &TrainingSpec, params: &[i32], data: &Dataset) -> Result<usize, TrainError> {
    let layers = layers(spec, params)?;
    Ok(data
        .rows()
        .par_iter()
        .filter(|r| {
            let z = forward(&layers, &r.features).pop().unwrap_or_default();
            let best = (0..z.len()).fold(0, |b, k| if z[k] > z[b] { k } else { b });
            best == r.label as usize
        })
        .count())
}

/// Checks a dispute's rows: exactly the batch of `step`, in order, each proved under the
/// job's dataset root and fitting its model. Returns them as rows.
pub fn check_rows(
    spec: &TrainingSpec,
    step: u64,
    rows: &[ProvenRow],
) -> Result<Vec<Row>, TrainError> {
    let indices = batch_indices(spec, step);
    if rows.len() != indices.len() {
        return Err(TrainError::Rows(format!(
            "step {step} uses {} rows; {} were given",
            indices.len(),
            rows.len()
        )));
    }
    let mut out = Vec::with_capacity(rows.len());
    for (k, (r, &want)) in rows.iter().zip(&indices).enumerate() {
        if r.index != want {
            return Err(TrainError::Rows(format!(
                "row {k} of step {step} is dataset row {want}, not {}",
                r.index
            )));
        }
        if r.proof.len() > 64 {
            return Err(TrainError::Rows(format!("row {want}'s proof is too long")));
        }
        let leaf = row_leaf(r.index, r.label, &r.features);
        if !verify_merkle_proof(&leaf, &r.proof, &spec.dataset_root) {
            return Err(TrainError::Rows(format!(
                "row {want} is not in dataset {}",
                spec.dataset_root
            )));
        }
        out.push(Row {
            label: r.label,
            features: r.features.clone(),
        });
    }
    let refs: Vec<&Row> = out.iter().collect();
    check_batch(spec, &refs)?;
    Ok(out)
}

/// A training run in progress: the spec, the step reached and the parameters.
#[derive(Debug, Clone)]
pub struct Trainer {
    spec: TrainingSpec,
    step: u64,
    params: Vec<i32>,
}

impl Trainer {
    /// A run at step 0, from the spec's initial parameters.
    pub fn new(spec: &TrainingSpec) -> Result<Self, TrainError> {
        spec.check().map_err(TrainError::Spec)?;
        Ok(Self {
            spec: spec.clone(),
            step: 0,
            params: init_params(spec),
        })
    }

    /// A run resumed at `step` from parameters whose hash is `expected`.
    pub fn resume(
        spec: &TrainingSpec,
        step: u64,
        params: Vec<i32>,
        expected: &Hash,
    ) -> Result<Self, TrainError> {
        spec.check().map_err(TrainError::Spec)?;
        layers(spec, &params)?;
        let got = state_hash(step, &params);
        if &got != expected {
            return Err(TrainError::Spec(format!(
                "the checkpoint of step {step} hashes to {got}, not to the committed {expected}"
            )));
        }
        Ok(Self {
            spec: spec.clone(),
            step,
            params,
        })
    }

    /// Runs the next step on `data` and returns the new state's hash.
    pub fn next_step(&mut self, data: &Dataset) -> Result<Hash, TrainError> {
        let next = self.step + 1;
        if next > self.spec.steps {
            return Err(TrainError::Spec(format!(
                "the job has {} steps; it is done",
                self.spec.steps
            )));
        }
        let rows = batch_rows(&self.spec, data, next)?;
        self.params = step_parallel(&self.spec, &self.params, &rows, 8)?;
        self.step = next;
        Ok(state_hash(self.step, &self.params))
    }

    /// Steps done.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The current parameters.
    pub fn params(&self) -> &[i32] {
        &self.params
    }

    /// The spec.
    pub fn spec(&self) -> &TrainingSpec {
        &self.spec
    }
}

/// A trained layer as floats for export: weights `[out][in]` row by row, biases, and widths.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatLayer {
    /// Weights, `n_out` rows of `n_in`.
    pub weights: Vec<f32>,
    /// Biases.
    pub biases: Vec<f32>,
    /// Inputs.
    pub n_in: usize,
    /// Outputs.
    pub n_out: usize,
}

/// The model's layers as floats (each parameter divided by [`ONE`]), for ONNX export.
pub fn float_layers(spec: &TrainingSpec, params: &[i32]) -> Result<Vec<FloatLayer>, TrainError> {
    let to_f = |v: &[i32]| v.iter().map(|&p| p as f32 / ONE as f32).collect();
    Ok(layers(spec, params)?
        .iter()
        .map(|l| FloatLayer {
            weights: to_f(l.w),
            biases: to_f(l.b),
            n_in: l.n_in,
            n_out: l.n_out,
        })
        .collect())
}

pub mod diloco;
pub mod synthetic;

#[cfg(test)]
mod tests;
