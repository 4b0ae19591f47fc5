//! Transparent STARK proofs of a quantised inference: Plonky3's batch STARK with FRI over the
//! KoalaBear field (degree-4 extension), hiding commitments (zero knowledge) and LogUp buses.
//!
//! The statement is the same as the halo2 circuit's: `output = QuantModel::eval(input)` for the
//! model whose weights are fixed in the verifying key, with the input bound by a salted hash
//! commitment (revealed with its salt when the input is public).
//!
//! Two AIRs are proved together:
//! - the *layer* AIR: every row takes [`LANES`] terms of one output's affine sum (weights and the
//!   ids of the values they read are preprocessed columns, the values are main columns), keeps a
//!   running sum, and on an output's last row splits `sum + bias = 2^SHIFT·y + r` and applies the
//!   activation `z = f(y)` by a lookup into a preprocessed table `(tag, y, f(y))`. That table
//!   lists only `y` in the activation range, so the lookup is also `y`'s range check; `r` is
//!   range-checked against a 256-row table.
//! - the *hash* AIR: one Poseidon2 permutation (width 16, KoalaBear's standard constants) per
//!   row, chained as an overwrite-mode sponge: a salt row, then the input 8 values a row, gives
//!   the input commitment; the output 8 values a row gives the output digest. Both digests are
//!   public values pinned to their rows by preprocessed selectors.
//!
//! A bus `val` carries `(id, value)`: every value is provided once, with its fan-out as
//! multiplicity, by the row that produces it (an input lane of the hash AIR, or a layer output)
//! and taken by every row that reads it (a layer term, or an output lane of the hash AIR).
//!
//! Integers live in the field modulo `p = 2^31 - 2^24 + 1`. The split `2^SHIFT·y + r` with `y`
//! and `r` range-checked has a single solution as long as no sum can wrap modulo `p`;
//! [`StarkModel::new`] refuses models whose weights would allow it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use p3_air::{Air, AirBuilder, BaseAir, PermutationAirBuilder, WindowAccess};
use p3_batch_stark::{
    BatchProof, CommonData, ProverData, StarkInstance, prove_batch, verify_batch,
};
use p3_blake3::Blake3;
use p3_challenger::{HashChallenger, SerializingChallenger32};
use p3_commit::ExtensionMmcs;
use p3_dft::Radix2DitParallel;
use p3_field::extension::BinomialExtensionField;
use p3_field::{PrimeCharacteristicRing, PrimeField32};
use p3_fri::{FriParameters, HidingFriPcs};
use p3_koala_bear::{
    GenericPoseidon2LinearLayersKoalaBear, KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL, KOALABEAR_POSEIDON2_RC_16_INTERNAL, KoalaBear,
};
use p3_lookup::{Count, InteractionBuilder};
use p3_matrix::dense::RowMajorMatrix;
use p3_merkle_tree::MerkleTreeHidingMmcs;
use p3_poseidon2::GenericPoseidon2LinearLayers;
use p3_symmetric::{CompressionFunctionFromHasher, SerializingHasher};
use p3_uni_stark::StarkConfig;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_core::TryRng;

use crate::ZkError;
use crate::model::{Activation, QuantModel, SHIFT};

type Val = KoalaBear;
type Challenge = BinomialExtensionField<Val, 4>;
type Dft = Radix2DitParallel<Val>;
type FieldHash = SerializingHasher<Blake3>;
type Compress = CompressionFunctionFromHasher<Blake3, 2, 32>;
type Challenger = SerializingChallenger32<Val, HashChallenger<u8, Blake3, 32>>;
/// Field elements of random salt in every Merkle leaf (hiding commitments).
const LEAF_SALT: usize = 4;
type Mmcs = MerkleTreeHidingMmcs<Val, u8, FieldHash, Compress, StdRng, 2, 32, LEAF_SALT>;
type ChallengeMmcs = ExtensionMmcs<Val, Challenge, Mmcs>;
type Pcs = HidingFriPcs<Val, Dft, Mmcs, ChallengeMmcs, StdRng>;
type Config = StarkConfig<Pcs, Challenge, Challenger>;
type Proof = BatchProof<Config>;
type LinearLayers = GenericPoseidon2LinearLayersKoalaBear;

/// log2 of the FRI blowup (8×).
const LOG_BLOWUP: usize = 3;
/// FRI queries: with the blowup and the grinding below, 28·3 + 16 = 100 bits of conjectured
/// security (the ethSTARK conjecture); the degree-4 extension has about 124 bits.
const QUERIES: usize = 28;
/// FRI folds by up to 2^3 per round (fewer rounds, so fewer Merkle paths per query).
const LOG_FOLD_ARITY: usize = 3;
/// FRI stops at a polynomial of 2^3 coefficients, sent in the clear.
const LOG_FINAL_POLY: usize = 3;
/// Merkle trees are opened below a cap of 2^3 roots (shorter paths in every opening).
const MERKLE_CAP_BITS: usize = 3;
/// Proof-of-work bits ground before the queries.
const QUERY_POW_BITS: usize = 16;

/// Terms of an affine sum taken per layer-AIR row.
pub const LANES: usize = 16;
/// Fewest rows of an AIR: hiding needs at least 2·(4·2 + QUERIES) random mask values (and the
/// FRI's final polynomial and fold arity some rows).
const MIN_HEIGHT: usize = 128;
/// Largest layer trace (log2 rows).
const MAX_LOG_ROWS: usize = 20;
/// Field modulus.
const P: u64 = 0x7f00_0001;

/// Builds the proof-system configuration; `seed` feeds the hiding randomness (the prover's must
/// be secret and fresh, the verifier never draws from it). `domain` starts the transcript.
fn config(seed: [u8; 32], domain: &[u8; 32]) -> Config {
    let mmcs = Mmcs::new(
        FieldHash::new(Blake3),
        Compress::new(Blake3),
        MERKLE_CAP_BITS,
        StdRng::from_seed(seed),
    );
    let fri = FriParameters {
        log_blowup: LOG_BLOWUP,
        log_final_poly_len: LOG_FINAL_POLY,
        max_log_arity: LOG_FOLD_ARITY,
        num_queries: QUERIES,
        batch_proof_of_work_bits: 0,
        commit_proof_of_work_bits: 0,
        query_proof_of_work_bits: QUERY_POW_BITS,
        mmcs: ChallengeMmcs::new(mmcs.clone()),
    };
    let mut codeword_seed = seed;
    codeword_seed[0] ^= 0x5a;
    let pcs = Pcs::new(
        Dft::default(),
        mmcs,
        fri,
        4,
        StdRng::from_seed(codeword_seed),
    );
    Config::new(pcs, Challenger::from_hasher(domain.to_vec(), Blake3))
}

/// A signed integer as a field element.
fn fe(v: i64) -> Val {
    let m = Val::from_u64(v.unsigned_abs() % P);
    if v < 0 { -m } else { m }
}

// ---------------------------------------------------------------- Poseidon2 (width 16)

const WIDTH: usize = 16;
const RATE: usize = 8;
const HALF_FULL: usize = 4;
const PARTIAL: usize = 20;
/// Columns of one permutation: the input, the state after each full round, the S-box output
/// of each partial round.
const P2_COLS: usize = WIDTH + 2 * HALF_FULL * WIDTH + PARTIAL;
const P2_FULL1: usize = WIDTH;
const P2_PARTIAL: usize = WIDTH + HALF_FULL * WIDTH;
const P2_FULL2: usize = P2_PARTIAL + PARTIAL;
const P2_OUT: usize = P2_COLS - WIDTH;

fn cube<R: PrimeCharacteristicRing>(x: R) -> R {
    x.clone() * x.clone() * x
}

/// One permutation's columns (the output is the last `WIDTH`).
fn p2_row(input: [Val; WIDTH]) -> [Val; P2_COLS] {
    let mut row = [Val::ZERO; P2_COLS];
    row[..WIDTH].copy_from_slice(&input);
    let mut st = input;
    LinearLayers::external_linear_layer(&mut st);
    let full = |st: &mut [Val; WIDTH], rc: &[Val; WIDTH], out: &mut [Val]| {
        for (s, c) in st.iter_mut().zip(rc) {
            *s = cube(*s + *c);
        }
        LinearLayers::external_linear_layer(st);
        out.copy_from_slice(st);
    };
    for (r, rc) in KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL
        .iter()
        .enumerate()
    {
        let at = P2_FULL1 + r * WIDTH;
        full(&mut st, rc, &mut row[at..at + WIDTH]);
    }
    for (i, c) in KOALABEAR_POSEIDON2_RC_16_INTERNAL.iter().enumerate() {
        st[0] = cube(st[0] + *c);
        row[P2_PARTIAL + i] = st[0];
        LinearLayers::internal_linear_layer(&mut st);
    }
    for (r, rc) in KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL.iter().enumerate() {
        let at = P2_FULL2 + r * WIDTH;
        full(&mut st, rc, &mut row[at..at + WIDTH]);
    }
    row
}

/// Constrains `local[..P2_COLS]` to be one permutation.
fn eval_p2<AB: AirBuilder<F = Val>>(builder: &mut AB, local: &[AB::Var]) {
    let mut st: [AB::Expr; WIDTH] = std::array::from_fn(|j| local[j].into());
    LinearLayers::external_linear_layer(&mut st);
    let full = |builder: &mut AB, st: &mut [AB::Expr; WIDTH], rc: &[Val; WIDTH], at: usize| {
        let mut t: [AB::Expr; WIDTH] =
            std::array::from_fn(|j| cube(st[j].clone() + AB::Expr::from(rc[j])));
        LinearLayers::external_linear_layer(&mut t);
        for (j, t) in t.into_iter().enumerate() {
            builder.assert_eq(local[at + j], t);
        }
        *st = std::array::from_fn(|j| local[at + j].into());
    };
    for (r, rc) in KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL
        .iter()
        .enumerate()
    {
        full(builder, &mut st, rc, P2_FULL1 + r * WIDTH);
    }
    for (i, c) in KOALABEAR_POSEIDON2_RC_16_INTERNAL.iter().enumerate() {
        let v = cube(st[0].clone() + AB::Expr::from(*c));
        builder.assert_eq(local[P2_PARTIAL + i], v);
        st[0] = local[P2_PARTIAL + i].into();
        LinearLayers::internal_linear_layer(&mut st);
    }
    for (r, rc) in KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL.iter().enumerate() {
        full(builder, &mut st, rc, P2_FULL2 + r * WIDTH);
    }
}

/// Domain tag of a sponge over `len` values: input (`kind` 1) or output (`kind` 2).
fn domain(kind: u64, len: usize) -> Val {
    Val::from_u64(((len as u64) << 2 | kind) % P)
}

/// The sponge's absorbed chunks: each row takes `RATE` values (zero-padded).
fn chunks(values: &[Val]) -> Vec<[Val; RATE]> {
    values
        .chunks(RATE)
        .map(|c| std::array::from_fn(|k| c.get(k).copied().unwrap_or(Val::ZERO)))
        .collect()
}

/// Runs the sponge over `rows` (the first starts from the domain tag); returns each row's
/// permutation columns.
fn sponge_rows(tag: Val, rows: &[[Val; RATE]]) -> Vec<[Val; P2_COLS]> {
    let mut cap = [Val::ZERO; RATE];
    cap[0] = tag;
    rows.iter()
        .map(|chunk| {
            let mut input = [Val::ZERO; WIDTH];
            input[..RATE].copy_from_slice(chunk);
            input[RATE..].copy_from_slice(&cap);
            let row = p2_row(input);
            cap.copy_from_slice(&row[P2_OUT + RATE..]);
            row
        })
        .collect()
}

fn digest(rows: &[[Val; P2_COLS]]) -> [Val; RATE] {
    rows.last().map_or([Val::ZERO; RATE], |r| {
        std::array::from_fn(|k| r[P2_OUT + k])
    })
}

/// Commitment to an input: the sponge over the salt and then the values.
fn commit_input(input: &[i64], salt: &[u32; RATE]) -> [u32; RATE] {
    let d = digest(&input_sponge(input, salt));
    std::array::from_fn(|k| d[k].as_canonical_u32())
}

/// The input sponge's rows: the salt, then the input 8 values a row.
fn input_sponge(input: &[i64], salt: &[u32; RATE]) -> Vec<[Val; P2_COLS]> {
    let mut rows = vec![std::array::from_fn(|k| Val::from_u32(salt[k]))];
    rows.extend(chunks(&input.iter().map(|&v| fe(v)).collect::<Vec<_>>()));
    sponge_rows(domain(1, input.len()), &rows)
}

/// The commitment to a revealed input and its salt, as a STARK proof states it.
pub fn input_commitment(input: &[i64], salt: &[u8; 32]) -> Result<[u8; 32], ZkError> {
    Ok(to_bytes(&commit_input(input, &from_bytes(salt, "salt")?)))
}

fn output_digest(output: &[i64]) -> [Val; RATE] {
    let values: Vec<Val> = output.iter().map(|&v| fe(v)).collect();
    digest(&sponge_rows(domain(2, output.len()), &chunks(&values)))
}

// ---------------------------------------------------------------- layer AIR

/// Layer AIR preprocessed columns.
mod lp {
    use super::LANES;
    pub(super) const W: usize = 0;
    pub(super) const ID: usize = W + LANES;
    pub(super) const LIVE: usize = ID + LANES;
    pub(super) const START: usize = LIVE + LANES;
    pub(super) const END: usize = START + 1;
    pub(super) const BIAS: usize = END + 1;
    pub(super) const OUT_ID: usize = BIAS + 1;
    pub(super) const FANOUT: usize = OUT_ID + 1;
    pub(super) const TAG: usize = FANOUT + 1;
    pub(super) const T_TAG: usize = TAG + 1;
    pub(super) const T_Y: usize = T_TAG + 1;
    pub(super) const T_Z: usize = T_Y + 1;
    pub(super) const T_R: usize = T_Z + 1;
    pub(super) const WIDTH: usize = T_R + 1;
}

/// Layer AIR main columns.
mod lm {
    use super::LANES;
    pub(super) const X: usize = 0;
    pub(super) const ACC: usize = LANES;
    pub(super) const Y: usize = ACC + 1;
    pub(super) const R: usize = Y + 1;
    pub(super) const Z: usize = R + 1;
    pub(super) const M_ACT: usize = Z + 1;
    pub(super) const M_R: usize = M_ACT + 1;
    pub(super) const WIDTH: usize = M_R + 1;
}

/// Hash AIR preprocessed columns.
mod hp {
    use super::RATE;
    pub(super) const FIRST: usize = 0;
    pub(super) const DOM: usize = 1;
    pub(super) const SEL_IN: usize = 2;
    pub(super) const SEL_OUT: usize = 3;
    pub(super) const ID: usize = 4;
    pub(super) const PROVIDE: usize = ID + RATE;
    pub(super) const READ: usize = PROVIDE + RATE;
    pub(super) const LIVE: usize = READ + RATE;
    pub(super) const RANGE: usize = LIVE + RATE;
    pub(super) const WIDTH: usize = RANGE + RATE;
}

const BUS_VAL: &str = "val";
const BUS_ACT: &str = "act";
const BUS_REM: &str = "rem";

/// The two AIRs of a model.
#[derive(Clone, Debug)]
enum ModelAir {
    Layer(Arc<RowMajorMatrix<Val>>),
    Hash(Arc<RowMajorMatrix<Val>>),
}

impl BaseAir<Val> for ModelAir {
    fn width(&self) -> usize {
        match self {
            ModelAir::Layer(_) => lm::WIDTH,
            ModelAir::Hash(_) => P2_COLS,
        }
    }

    fn preprocessed_trace(&self) -> Option<RowMajorMatrix<Val>> {
        match self {
            ModelAir::Layer(p) | ModelAir::Hash(p) => Some(p.as_ref().clone()),
        }
    }

    fn preprocessed_width(&self) -> usize {
        match self {
            ModelAir::Layer(_) => lp::WIDTH,
            ModelAir::Hash(_) => hp::WIDTH,
        }
    }

    fn main_next_row_columns(&self) -> Vec<usize> {
        match self {
            ModelAir::Layer(_) => vec![lm::ACC],
            ModelAir::Hash(_) => (RATE..WIDTH).collect(),
        }
    }

    fn preprocessed_next_row_columns(&self) -> Vec<usize> {
        match self {
            ModelAir::Layer(_) => vec![],
            ModelAir::Hash(_) => vec![hp::FIRST],
        }
    }

    fn num_public_values(&self) -> usize {
        match self {
            ModelAir::Layer(_) => 0,
            ModelAir::Hash(_) => 2 * RATE,
        }
    }
}

impl<AB> Air<AB> for ModelAir
where
    AB: AirBuilder<F = Val> + PermutationAirBuilder + InteractionBuilder,
{
    fn eval(&self, builder: &mut AB) {
        match self {
            ModelAir::Layer(_) => eval_layer(builder),
            ModelAir::Hash(_) => eval_hash(builder),
        }
    }
}

fn eval_layer<AB: AirBuilder<F = Val> + InteractionBuilder>(builder: &mut AB) {
    let main = builder.main();
    let local: Vec<AB::Var> = main.current_slice().to_vec();
    let next: Vec<AB::Var> = main.next_slice().to_vec();
    let pre: Vec<AB::Var> = builder.preprocessed().current_slice().to_vec();
    let e = |v: AB::Var| -> AB::Expr { v.into() };
    let mut sum = e(local[lm::ACC]);
    for k in 0..LANES {
        sum += e(local[lm::X + k]) * e(pre[lp::W + k]);
    }
    builder.assert_zero(e(pre[lp::START]) * e(local[lm::ACC]));
    builder
        .when_transition()
        .assert_zero((AB::Expr::ONE - e(pre[lp::END])) * (e(next[lm::ACC]) - sum.clone()));
    builder.assert_zero(
        e(pre[lp::END])
            * (sum + e(pre[lp::BIAS])
                - e(local[lm::Y]) * AB::Expr::from_u64(1 << SHIFT)
                - e(local[lm::R])),
    );
    for k in 0..LANES {
        builder.push_interaction(
            BUS_VAL,
            [e(pre[lp::ID + k]), e(local[lm::X + k])],
            Count::bounded(e(pre[lp::LIVE + k]), 1),
        );
    }
    builder.push_interaction(
        BUS_VAL,
        [e(pre[lp::OUT_ID]), e(local[lm::Z])],
        Count::provided(-e(pre[lp::FANOUT])),
    );
    builder.push_interaction(
        BUS_ACT,
        [e(pre[lp::TAG]), e(local[lm::Y]), e(local[lm::Z])],
        Count::bounded(e(pre[lp::END]), 1),
    );
    builder.push_interaction(
        BUS_ACT,
        [e(pre[lp::T_TAG]), e(pre[lp::T_Y]), e(pre[lp::T_Z])],
        Count::provided(-e(local[lm::M_ACT])),
    );
    builder.push_interaction(
        BUS_REM,
        [e(local[lm::R])],
        Count::bounded(e(pre[lp::END]), 1),
    );
    builder.push_interaction(
        BUS_REM,
        [e(pre[lp::T_R])],
        Count::provided(-e(local[lm::M_R])),
    );
}

fn eval_hash<AB: AirBuilder<F = Val> + InteractionBuilder>(builder: &mut AB) {
    let main = builder.main();
    let local: Vec<AB::Var> = main.current_slice().to_vec();
    let next: Vec<AB::Var> = main.next_slice().to_vec();
    let pre: Vec<AB::Var> = builder.preprocessed().current_slice().to_vec();
    let pre_next: Vec<AB::Var> = builder.preprocessed().next_slice().to_vec();
    let public: Vec<AB::Expr> = builder.public_values().iter().map(|&v| v.into()).collect();
    let e = |v: AB::Var| -> AB::Expr { v.into() };
    eval_p2(builder, &local);
    let first = e(pre[hp::FIRST]);
    builder.assert_zero(first.clone() * (e(local[RATE]) - e(pre[hp::DOM])));
    for j in 1..RATE {
        builder.assert_zero(first.clone() * e(local[RATE + j]));
    }
    for j in 0..RATE {
        builder.when_transition().assert_zero(
            (AB::Expr::ONE - e(pre_next[hp::FIRST]))
                * (e(next[RATE + j]) - e(local[P2_OUT + RATE + j])),
        );
    }
    for k in 0..RATE {
        builder.assert_zero((AB::Expr::ONE - e(pre[hp::LIVE + k])) * e(local[k]));
        builder.assert_zero(e(pre[hp::SEL_IN]) * (e(local[P2_OUT + k]) - public[k].clone()));
        builder
            .assert_zero(e(pre[hp::SEL_OUT]) * (e(local[P2_OUT + k]) - public[RATE + k].clone()));
        builder.push_interaction(
            BUS_VAL,
            [e(pre[hp::ID + k]), e(local[k])],
            Count::provided(-e(pre[hp::PROVIDE + k])),
        );
        builder.push_interaction(
            BUS_VAL,
            [e(pre[hp::ID + k]), e(local[k])],
            Count::bounded(e(pre[hp::READ + k]), 1),
        );
        builder.push_interaction(
            BUS_ACT,
            [AB::Expr::ZERO, e(local[k]), e(local[k])],
            Count::bounded(e(pre[hp::RANGE + k]), 1),
        );
    }
}

// ---------------------------------------------------------------- layout

/// Where every row of a model's AIRs comes from.
#[derive(Debug)]
struct Layout {
    /// Layer AIR rows: (layer, output, first term) for each row that carries terms.
    rows: Vec<(usize, usize, usize)>,
    /// Activation table entries `(tag, y, f(y))`.
    table: Vec<(u64, i64, i64)>,
    /// log2 of the layer AIR's height.
    layer_bits: usize,
    /// log2 of the hash AIR's height.
    hash_bits: usize,
    /// Id of the first output of each layer (inputs are ids `0..input_len`).
    base: Vec<usize>,
    /// How many times each value id is read.
    fanout: Vec<u64>,
    /// Activation table tag of each layer.
    tags: Vec<u64>,
    /// Row of each layer's first activation table entry.
    table_start: Vec<usize>,
    /// Hash AIR rows of the input sponge (salt row included).
    in_rows: usize,
    /// Hash AIR rows of the output sponge.
    out_rows: usize,
}

impl Layout {
    fn new(model: &QuantModel) -> Result<Self, ZkError> {
        model.validate()?;
        let (lo, hi) = (model.act_min(), model.act_max());
        // No sum may wrap modulo p: |bias| + Σ|w|·2^(act_bits-1) must stay below p/2 minus the
        // split's own span.
        let limit = (P / 2 - (1 << (SHIFT + model.act_bits))) as u128;
        for (l, layer) in model.layers.iter().enumerate() {
            for (j, row) in layer.rows.iter().enumerate() {
                let bound = row
                    .terms
                    .iter()
                    .fold(u128::from(row.bias.unsigned_abs()), |b, t| {
                        b + u128::from(t.1.unsigned_abs()) * (1u128 << (model.act_bits - 1))
                    });
                if bound >= limit {
                    return Err(ZkError::Calibration(format!(
                        "layer {l}, output {j}: weights too large for the STARK field (sums up \
                         to {bound}, limit {limit}); use the halo2 system for this model"
                    )));
                }
            }
        }
        let mut base = Vec::with_capacity(model.layers.len());
        let mut next_id = model.input_len as usize;
        let mut rows = Vec::new();
        let mut tags = Vec::with_capacity(model.layers.len());
        let mut table: Vec<(u64, i64, i64)> = (lo..=hi).map(|y| (0, y, y)).collect();
        let mut relu = None;
        let mut table_start = Vec::with_capacity(model.layers.len());
        for (l, layer) in model.layers.iter().enumerate() {
            base.push(next_id);
            next_id += layer.rows.len();
            for (j, row) in layer.rows.iter().enumerate() {
                rows.extend((0..row.terms.len()).step_by(LANES).map(|t| (l, j, t)));
            }
            let (tag, start) = match layer.activation {
                Activation::None => (0, 0),
                Activation::Relu => {
                    let start = *relu.get_or_insert_with(|| {
                        let start = table.len();
                        table.extend((lo..=hi).map(|y| (1, y, y.max(0))));
                        start
                    });
                    (1, start)
                }
                Activation::Sigmoid => {
                    let start = table.len();
                    for y in lo..=hi {
                        table.push((2 + l as u64, y, model.activate(layer, y)?));
                    }
                    (2 + l as u64, start)
                }
            };
            tags.push(tag);
            table_start.push(start);
        }
        let mut fanout = vec![0u64; next_id];
        let mut prev = 0..model.input_len as usize;
        for (l, layer) in model.layers.iter().enumerate() {
            for row in &layer.rows {
                for &(i, _) in &row.terms {
                    fanout[prev.start + i as usize] += 1;
                }
            }
            prev = base[l]..base[l] + layer.rows.len();
        }
        for id in prev {
            fanout[id] += 1; // read by the output sponge
        }
        let height = rows.len().max(table.len()).max(1 << SHIFT).max(MIN_HEIGHT);
        if height > 1 << MAX_LOG_ROWS {
            return Err(ZkError::TooLarge { rows: height });
        }
        let layer_bits = height.next_power_of_two().trailing_zeros() as usize;
        let in_rows = 1 + (model.input_len as usize).div_ceil(RATE);
        let out_rows = model.output_len().div_ceil(RATE);
        let hash_bits = (in_rows + out_rows)
            .max(MIN_HEIGHT)
            .next_power_of_two()
            .trailing_zeros() as usize;
        Ok(Layout {
            rows,
            table,
            layer_bits,
            hash_bits,
            base,
            fanout,
            tags,
            table_start,
            in_rows,
            out_rows,
        })
    }

    fn layer_preprocessed(&self, model: &QuantModel) -> RowMajorMatrix<Val> {
        let n = 1 << self.layer_bits;
        let mut v = Val::zero_vec(n * lp::WIDTH);
        let prev_base = |l: usize| if l == 0 { 0 } else { self.base[l - 1] };
        for (r, &(l, j, t)) in self.rows.iter().enumerate() {
            let row = &mut v[r * lp::WIDTH..(r + 1) * lp::WIDTH];
            let q = &model.layers[l].rows[j];
            for (k, &(i, w)) in q.terms[t..].iter().take(LANES).enumerate() {
                row[lp::W + k] = fe(w);
                row[lp::ID + k] = Val::from_u64((prev_base(l) + i as usize) as u64);
                row[lp::LIVE + k] = Val::ONE;
            }
            if t == 0 {
                row[lp::START] = Val::ONE;
            }
            if t + LANES >= q.terms.len() {
                let id = self.base[l] + j;
                row[lp::END] = Val::ONE;
                row[lp::BIAS] = fe(q.bias);
                row[lp::OUT_ID] = Val::from_u64(id as u64);
                row[lp::FANOUT] = Val::from_u64(self.fanout[id]);
                row[lp::TAG] = Val::from_u64(self.tags[l]);
            }
        }
        for r in 0..n {
            let row = &mut v[r * lp::WIDTH..(r + 1) * lp::WIDTH];
            let (tag, y, z) = self.table.get(r).copied().unwrap_or(self.table[0]);
            row[lp::T_TAG] = Val::from_u64(tag);
            row[lp::T_Y] = fe(y);
            row[lp::T_Z] = fe(z);
            row[lp::T_R] = Val::from_u64(if r < 1 << SHIFT { r as u64 } else { 0 });
        }
        RowMajorMatrix::new(v, lp::WIDTH)
    }

    fn hash_preprocessed(&self, model: &QuantModel) -> RowMajorMatrix<Val> {
        let n = 1 << self.hash_bits;
        let mut v = Val::zero_vec(n * hp::WIDTH);
        let input_len = model.input_len as usize;
        let output_len = model.output_len();
        let out_base = self.base.last().copied().unwrap_or(0);
        for r in 0..self.in_rows + self.out_rows {
            let row = &mut v[r * hp::WIDTH..(r + 1) * hp::WIDTH];
            if r == self.in_rows - 1 {
                row[hp::SEL_IN] = Val::ONE;
            }
            if r == 0 {
                row[hp::FIRST] = Val::ONE;
                row[hp::DOM] = domain(1, input_len);
                for k in 0..RATE {
                    row[hp::LIVE + k] = Val::ONE;
                }
                continue;
            }
            if r == self.in_rows {
                row[hp::FIRST] = Val::ONE;
                row[hp::DOM] = domain(2, output_len);
            }
            if r == self.in_rows + self.out_rows - 1 {
                row[hp::SEL_OUT] = Val::ONE;
            }
            for k in 0..RATE {
                if r < self.in_rows {
                    let i = (r - 1) * RATE + k;
                    if i < input_len {
                        row[hp::ID + k] = Val::from_u64(i as u64);
                        row[hp::PROVIDE + k] = Val::from_u64(self.fanout[i]);
                        row[hp::LIVE + k] = Val::ONE;
                        row[hp::RANGE + k] = Val::ONE;
                    }
                } else {
                    let o = (r - self.in_rows) * RATE + k;
                    if o < output_len {
                        row[hp::ID + k] = Val::from_u64((out_base + o) as u64);
                        row[hp::READ + k] = Val::ONE;
                        row[hp::LIVE + k] = Val::ONE;
                    }
                }
            }
        }
        RowMajorMatrix::new(v, hp::WIDTH)
    }
}

// ---------------------------------------------------------------- prover and verifier

/// log2 of the rows of `model`'s layer trace; errors when the model cannot be proved with the
/// STARK (a sum that could wrap modulo the field).
pub fn layer_rows_log2(model: &QuantModel) -> Result<u32, ZkError> {
    Ok(Layout::new(model)?.layer_bits as u32)
}

/// A model ready to prove and verify with the STARK system: its layout and the preprocessed
/// commitments (the verifying key), derived deterministically from the model.
pub struct StarkModel {
    model: Arc<QuantModel>,
    commitment: [u8; 32],
    layout: Layout,
    airs: [ModelAir; 2],
    data: ProverData<Config>,
}

/// What [`StarkModel::prove`] makes: the input commitment and salt (canonical field elements,
/// 4 bytes little-endian each), the output and the serialised proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarkProved {
    /// Input commitment.
    pub commitment: [u8; 32],
    /// Salt of the input commitment.
    pub salt: [u8; 32],
    /// Quantised output.
    pub output: Vec<i64>,
    /// The batch STARK proof.
    pub proof: Vec<u8>,
}

/// 8 field elements as 32 bytes (little-endian each).
fn to_bytes(v: &[u32; RATE]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, x) in out.chunks_exact_mut(4).zip(v) {
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    out
}

/// 32 bytes as 8 canonical field elements.
fn from_bytes(bytes: &[u8; 32], what: &str) -> Result<[u32; RATE], ZkError> {
    let mut out = [0u32; RATE];
    for (x, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *x = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if u64::from(*x) >= P {
            return Err(ZkError::Format(format!(
                "the {what} is not made of canonical field elements"
            )));
        }
    }
    Ok(out)
}

/// Runs `work`, turning a panic inside the proof system into the error `failed` makes.
fn guarded<T>(
    work: impl FnOnce() -> Result<T, ZkError>,
    failed: impl FnOnce() -> ZkError,
) -> Result<T, ZkError> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| Err(failed()))
}

impl StarkModel {
    /// Lays out `model` and commits its preprocessed columns. Errors when the model's weights
    /// could make a sum wrap modulo the 31-bit field.
    pub fn new(model: impl Into<Arc<QuantModel>>) -> Result<Self, ZkError> {
        let model = model.into();
        let layout = Layout::new(&model)?;
        let airs = [
            ModelAir::Layer(Arc::new(layout.layer_preprocessed(&model))),
            ModelAir::Hash(Arc::new(layout.hash_preprocessed(&model))),
        ];
        let commitment = model.commitment();
        let config = config([0; 32], &commitment);
        let degrees = [layout.layer_bits + 1, layout.hash_bits + 1];
        let data = ProverData::from_airs_and_degrees(&config, &airs, &degrees)
            .map_err(|e| ZkError::System(format!("preprocessing: {e:?}")))?;
        Ok(StarkModel {
            model,
            commitment,
            layout,
            airs,
            data,
        })
    }

    /// Height of the layer AIR and of the hash AIR (log2).
    pub fn heights(&self) -> (usize, usize) {
        (self.layout.layer_bits, self.layout.hash_bits)
    }

    /// The verifying data shared with the prover.
    fn common(&self) -> &CommonData<Config> {
        &self.data.common
    }

    /// Proves the model on a quantised input.
    #[cfg(feature = "prover")]
    pub fn prove(&self, input: &[i64]) -> Result<StarkProved, ZkError> {
        let trace = self.model.eval(input)?;
        let mut seed = [0u8; 32];
        let mut salt = [0u32; RATE];
        let mut os = rand::rngs::SysRng;
        os.try_fill_bytes(&mut seed)
            .map_err(|e| ZkError::System(format!("no randomness from the OS: {e}")))?;
        for s in &mut salt {
            // Uniform below p by rejection.
            *s = loop {
                let v = os
                    .try_next_u32()
                    .map_err(|e| ZkError::System(format!("no randomness from the OS: {e}")))?
                    & 0x7fff_ffff;
                if u64::from(v) < P {
                    break v;
                }
            };
        }
        let mut values: Vec<i64> = trace.input.clone();
        for post in &trace.post {
            values.extend_from_slice(post);
        }
        let layer = self.layer_trace(&trace.pre, &values)?;
        let (hash, in_digest, out_digest) = self.hash_trace(input, trace.output(), &salt);
        let public = vec![vec![], [in_digest, out_digest].concat()];
        let traces = [&layer, &hash];
        let instances = StarkInstance::new_multiple(&self.airs, &traces, &public);
        let config = config(seed, &self.commitment);
        let proof = guarded(
            || {
                prove_batch(&config, &instances, &self.data)
                    .map_err(|e| ZkError::System(format!("proving: {e:?}")))
            },
            || ZkError::System("the prover failed on this witness".into()),
        )?;
        let proof =
            postcard::to_allocvec(&proof).map_err(|e| ZkError::Format(format!("proof: {e}")))?;
        Ok(StarkProved {
            commitment: to_bytes(&std::array::from_fn(|k| in_digest[k].as_canonical_u32())),
            salt: to_bytes(&salt),
            output: trace.output().to_vec(),
            proof,
        })
    }

    fn layer_trace(
        &self,
        pre: &[Vec<i64>],
        values: &[i64],
    ) -> Result<RowMajorMatrix<Val>, ZkError> {
        let layout = &self.layout;
        let n = 1 << layout.layer_bits;
        let mut v = Val::zero_vec(n * lm::WIDTH);
        let prev_base = |l: usize| if l == 0 { 0 } else { layout.base[l - 1] };
        let mut act_counts = vec![0u64; layout.table.len()];
        let mut rem_counts = [0u64; 1 << SHIFT];
        let lo = self.model.act_min();
        let mut acc: i128 = 0;
        for (r, &(l, j, t)) in layout.rows.iter().enumerate() {
            let row = &mut v[r * lm::WIDTH..(r + 1) * lm::WIDTH];
            let q = &self.model.layers[l].rows[j];
            if t == 0 {
                acc = 0;
            }
            row[lm::ACC] = fe_wide(acc);
            for (k, &(i, w)) in q.terms[t..].iter().take(LANES).enumerate() {
                let x = values[prev_base(l) + i as usize];
                row[lm::X + k] = fe(x);
                acc += i128::from(w) * i128::from(x);
            }
            if t + LANES >= q.terms.len() {
                let y = pre[l][j];
                let rem = acc + i128::from(q.bias) - (i128::from(y) << SHIFT);
                let rem = usize::try_from(rem)
                    .ok()
                    .filter(|&r| r < 1 << SHIFT)
                    .ok_or_else(|| ZkError::System(format!("layer {l}: remainder out of range")))?;
                row[lm::Y] = fe(y);
                row[lm::R] = Val::from_u64(rem as u64);
                row[lm::Z] = fe(values[layout.base[l] + j]);
                rem_counts[rem] += 1;
                act_counts[layout.table_start[l] + (y - lo) as usize] += 1;
            }
        }
        // Range checks of the inputs (tag 0) come from the hash AIR.
        for &x in &values[..self.model.input_len as usize] {
            act_counts[(x - lo) as usize] += 1;
        }
        for (r, &c) in act_counts.iter().enumerate() {
            v[r * lm::WIDTH + lm::M_ACT] = Val::from_u64(c);
        }
        for (r, &c) in rem_counts.iter().enumerate() {
            v[r * lm::WIDTH + lm::M_R] = Val::from_u64(c);
        }
        Ok(RowMajorMatrix::new(v, lm::WIDTH))
    }

    /// The hash AIR's trace and the two digests.
    fn hash_trace(
        &self,
        input: &[i64],
        output: &[i64],
        salt: &[u32; RATE],
    ) -> (RowMajorMatrix<Val>, [Val; RATE], [Val; RATE]) {
        let n = 1 << self.layout.hash_bits;
        let in_rows = input_sponge(input, salt);
        let out: Vec<Val> = output.iter().map(|&v| fe(v)).collect();
        let mut out_chunks = chunks(&out);
        let pad = n - in_rows.len() - out_chunks.len();
        // The output sponge continues through the padding rows, absorbing zeros.
        out_chunks.extend(std::iter::repeat_n([Val::ZERO; RATE], pad));
        let out_rows = sponge_rows(domain(2, output.len()), &out_chunks);
        let in_digest = digest(&in_rows);
        let out_digest = digest(&out_rows[..self.layout.out_rows]);
        let mut v = Vec::with_capacity(n * P2_COLS);
        for row in in_rows.iter().chain(&out_rows) {
            v.extend_from_slice(row);
        }
        (RowMajorMatrix::new(v, P2_COLS), in_digest, out_digest)
    }

    /// Checks a proof that the model maps the input committed as `input_commitment` to
    /// `output`.
    pub fn verify(
        &self,
        input_commitment: &[u8; 32],
        output: &[i64],
        proof: &[u8],
    ) -> Result<(), ZkError> {
        if output.len() != self.model.output_len() {
            return Err(ZkError::InvalidProof(format!(
                "{} output values, the model has {}",
                output.len(),
                self.model.output_len()
            )));
        }
        let in_digest = from_bytes(input_commitment, "input commitment")?.map(Val::from_u32);
        let public = vec![vec![], [&in_digest[..], &output_digest(output)].concat()];
        let batch: Proof = postcard::from_bytes(proof)
            .map_err(|e| ZkError::InvalidProof(format!("the proof does not decode: {e}")))?;
        // One encoding per proof: trailing bytes or a non-canonical encoding would make the same
        // proof a different file (and so a different result id on chain).
        if postcard::to_allocvec(&batch).ok().as_deref() != Some(proof) {
            return Err(ZkError::InvalidProof(
                "the proof does not verify (it is not in canonical encoding, or has bytes after \
                 its end)"
                    .into(),
            ));
        }
        let expected = [self.layout.layer_bits + 1, self.layout.hash_bits + 1];
        if batch.degree_bits != expected {
            return Err(ZkError::InvalidProof(
                "the proof is for other trace sizes (another model)".into(),
            ));
        }
        let config = config([0; 32], &self.commitment);
        guarded(
            || {
                verify_batch(&config, &self.airs, &batch, &public, self.common()).map_err(|e| {
                    ZkError::InvalidProof(format!("the proof does not verify ({e:?})"))
                })
            },
            || ZkError::InvalidProof("the proof does not verify (malformed)".into()),
        )
    }
}

impl std::fmt::Debug for StarkModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StarkModel")
            .field("model", &hex::encode(self.commitment))
            .field("layer_rows_log2", &self.layout.layer_bits)
            .field("hash_rows_log2", &self.layout.hash_bits)
            .finish()
    }
}

/// A wide integer as a field element.
fn fe_wide(v: i128) -> Val {
    let m = Val::from_u64((v.unsigned_abs() % u128::from(P)) as u64);
    if v < 0 { -m } else { m }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::model::{AffineRow, Calibration, FloatLayer, FloatModel, calibrate};
    use crate::test_support::testdata;

    /// A testdata model, quantised, and its sample input.
    fn testdata_model(stem: &str, calibration: &str, input: &str) -> (QuantModel, Vec<i64>) {
        let cal: Calibration = serde_json::from_slice(&testdata(calibration)).unwrap();
        let float = crate::onnx::import(&testdata(stem)).unwrap();
        let (model, _) = calibrate(&float, &cal, crate::model::DEFAULT_ACT_BITS).unwrap();
        let sample: serde_json::Value = serde_json::from_slice(&testdata(input)).unwrap();
        let x: Vec<f32> = serde_json::from_value(sample["input"].clone()).unwrap();
        let q = model.quantise_input(&x).unwrap();
        (model, q)
    }

    fn credit() -> (QuantModel, Vec<i64>) {
        testdata_model(
            "credit_mlp.onnx",
            "credit_calibration.json",
            "credit_input.json",
        )
    }

    #[test]
    fn poseidon2_matches_the_standard_permutation() {
        use p3_symmetric::Permutation;
        let input: [Val; WIDTH] = std::array::from_fn(|i| Val::from_u64(i as u64 * 7 + 3));
        let standard = p3_koala_bear::default_koalabear_poseidon2_16().permute(input);
        assert_eq!(p2_row(input)[P2_OUT..], standard[..]);
    }

    #[test]
    fn proves_the_testdata_models_and_rejects_other_outputs() {
        for (stem, cal, input) in [
            (
                "logistic_16.onnx",
                "logistic_16_calibration.json",
                "logistic_16_input.json",
            ),
            (
                "digits_cnn.onnx",
                "digits_calibration.json",
                "digits_input.json",
            ),
            (
                "mnist_mlp.onnx",
                "mnist_mlp_calibration.json",
                "mnist_mlp_input.json",
            ),
        ] {
            let (model, x) = testdata_model(stem, cal, input);
            let stark = StarkModel::new(model.clone()).unwrap();
            let proved = stark.prove(&x).unwrap();
            assert_eq!(proved.output, model.eval(&x).unwrap().output(), "{stem}");
            stark
                .verify(&proved.commitment, &proved.output, &proved.proof)
                .unwrap();
            let mut output = proved.output.clone();
            output[0] += 1;
            assert!(
                stark
                    .verify(&proved.commitment, &output, &proved.proof)
                    .is_err(),
                "{stem}"
            );
        }
    }

    #[test]
    fn the_commitment_opens_to_the_input_and_binds_it() {
        let (model, x) = credit();
        let stark = StarkModel::new(model.clone()).unwrap();
        let proved = stark.prove(&x).unwrap();
        assert_eq!(
            input_commitment(&x, &proved.salt).unwrap(),
            proved.commitment
        );
        let mut other = x.clone();
        other[3] += 1;
        assert_ne!(
            input_commitment(&other, &proved.salt).unwrap(),
            proved.commitment
        );
        // Two proofs of the same input hide it behind different salts.
        let again = stark.prove(&x).unwrap();
        assert_ne!(again.commitment, proved.commitment);
        // A commitment to another input does not verify with this proof.
        let mut commitment = proved.commitment;
        commitment[0] ^= 1;
        let err = stark
            .verify(&commitment, &proved.output, &proved.proof)
            .unwrap_err();
        assert!(matches!(err, ZkError::InvalidProof(_)), "{err}");
        // A non-canonical commitment is refused before any cryptography.
        let err = stark
            .verify(&[0xff; 32], &proved.output, &proved.proof)
            .unwrap_err();
        assert!(err.to_string().contains("canonical"), "{err}");
    }

    #[test]
    fn damaged_proofs_and_other_models_are_rejected_without_panics() {
        let (model, x) = credit();
        let stark = StarkModel::new(model.clone()).unwrap();
        let proved = stark.prove(&x).unwrap();
        let (c, out, proof) = (&proved.commitment, &proved.output, &proved.proof);
        for at in [
            0,
            1,
            17,
            proof.len() / 3,
            proof.len() / 2,
            proof.len() - 40,
            proof.len() - 1,
        ] {
            let mut bad = proof.clone();
            bad[at] ^= 0x10;
            assert!(stark.verify(c, out, &bad).is_err(), "flipped byte {at}");
        }
        for len in [0, 10, proof.len() / 2, proof.len() - 1] {
            assert!(
                stark.verify(c, out, &proof[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut longer = proof.clone();
        longer.push(0);
        let err = stark.verify(c, out, &longer).unwrap_err().to_string();
        assert!(err.contains("bytes after its end"), "{err}");
        // The same architecture with one weight changed: another model, another key.
        let mut other = model.clone();
        other.layers[0].rows[0].terms[0].1 += 1;
        let other = StarkModel::new(other.clone()).unwrap();
        assert!(other.verify(c, out, proof).is_err());
        // A model of another shape.
        let (logistic, lx) = testdata_model(
            "logistic_16.onnx",
            "logistic_16_calibration.json",
            "logistic_16_input.json",
        );
        let logistic = StarkModel::new(logistic.clone()).unwrap();
        let theirs = logistic.prove(&lx).unwrap();
        assert!(
            stark
                .verify(&theirs.commitment, out, &theirs.proof)
                .is_err()
        );
    }

    /// A model whose one layer sums `terms` inputs of about ±100 with weights ±1 that cancel,
    /// so calibration gives the weights many fractional bits.
    fn wide(terms: usize) -> Result<QuantModel, ZkError> {
        let float = FloatModel {
            input_shape: vec![terms],
            input_len: terms,
            output_shape: vec![1],
            layers: vec![FloatLayer {
                rows: vec![AffineRow {
                    bias: 0.0,
                    terms: (0..terms as u32)
                        .map(|i| (i, if i % 2 == 0 { 1.0 } else { -1.0 }))
                        .collect(),
                }],
                activation: Activation::None,
            }],
            softmax_output: false,
        };
        let cal = Calibration {
            inputs: vec![vec![100.0; terms], vec![-100.0; terms]],
            labels: None,
        };
        Ok(calibrate(&float, &cal, crate::model::DEFAULT_ACT_BITS)?.0)
    }

    #[test]
    fn models_whose_sums_could_wrap_the_field_are_refused() {
        let model = wide(4096).unwrap();
        let err = StarkModel::new(model.clone()).unwrap_err();
        assert!(
            err.to_string().contains("too large for the STARK field"),
            "{err}"
        );
        // A small one is fine.
        StarkModel::new(wide(4).unwrap()).unwrap();
    }

    #[test]
    fn a_dishonest_trace_does_not_verify() {
        let (model, x) = credit();
        let stark = StarkModel::new(model.clone()).unwrap();
        let trace = model.eval(&x).unwrap();
        // Claim another first output: change it in the trace the prover commits to.
        let mut post = trace.post.clone();
        let last = post.len() - 1;
        post[last][0] += 1;
        let mut values = trace.input.clone();
        for p in &post {
            values.extend_from_slice(p);
        }
        let layer = stark.layer_trace(&trace.pre, &values).unwrap();
        let salt = [1u32; RATE];
        let output = &post[last];
        let (hash, in_digest, out_digest) = stark.hash_trace(&x, output, &salt);
        let public = vec![vec![], [in_digest, out_digest].concat()];
        let traces = [&layer, &hash];
        let instances = StarkInstance::new_multiple(&stark.airs, &traces, &public);
        let config = config([7; 32], &stark.commitment);
        let proof = guarded(
            || {
                prove_batch(&config, &instances, &stark.data)
                    .map_err(|e| ZkError::System(format!("{e:?}")))
            },
            || ZkError::System("prover panicked".into()),
        );
        if let Ok(proof) = proof {
            let bytes = postcard::to_allocvec(&proof).unwrap();
            let commitment = to_bytes(&in_digest.map(|v| v.as_canonical_u32()));
            assert!(stark.verify(&commitment, output, &bytes).is_err());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]

        /// Random chains of layers (random activations, rows reading random inputs) prove
        /// exactly the reference evaluator's output on a random input in the calibrated range,
        /// and no other.
        #[test]
        fn random_models_prove_their_reference_output(
            float in crate::test_support::layered_model(1..12, 1..6, 1..4, false),
            samples in proptest::collection::vec(proptest::collection::vec(-2.0f32..2.0, 12), 4),
            pick in 0usize..4,
        ) {
            let n = float.input_len;
            let cal = Calibration {
                inputs: samples.iter().map(|s| s[..n].to_vec()).collect(),
                labels: None,
            };
            // Calibration refuses models whose values exceed the integer bits by design.
            let quant = match calibrate(&float, &cal, crate::model::DEFAULT_ACT_BITS) {
                Err(ZkError::Calibration(reason)) => {
                    return Err(proptest::test_runner::TestCaseError::reject(reason));
                }
                other => other.unwrap().0,
            };
            let input = quant.quantise_input(&cal.inputs[pick]).unwrap();
            let stark = StarkModel::new(quant.clone()).unwrap();
            let proved = stark.prove(&input).unwrap();
            let reference = quant.eval(&input).unwrap();
            proptest::prop_assert_eq!(&proved.output, reference.output());
            proptest::prop_assert!(
                stark.verify(&proved.commitment, &proved.output, &proved.proof).is_ok()
            );
            let mut output = proved.output.clone();
            let last = output.len() - 1;
            output[last] -= 1;
            proptest::prop_assert!(stark.verify(&proved.commitment, &output, &proved.proof).is_err());
        }

        /// The shipped MLP and CNN prove random inputs in their calibrated ranges.
        #[test]
        fn shipped_models_prove_random_inputs(
            tabular in proptest::collection::vec(-2.5f32..2.5, 16),
            image in proptest::collection::vec(0.0f32..1.0, 64),
        ) {
            for (model, x) in [
                (credit().0, tabular),
                (
                    testdata_model("digits_cnn.onnx", "digits_calibration.json", "digits_input.json").0,
                    image,
                ),
            ] {
                let input = model.quantise_input(&x).unwrap();
                let stark = StarkModel::new(model.clone()).unwrap();
                let proved = stark.prove(&input).unwrap();
                let reference = model.eval(&input).unwrap();
                proptest::prop_assert_eq!(&proved.output, reference.output());
                proptest::prop_assert!(
                    stark.verify(&proved.commitment, &proved.output, &proved.proof).is_ok()
                );
            }
        }
    }
}
