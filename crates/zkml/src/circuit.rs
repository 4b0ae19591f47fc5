//! The halo2 circuit proving one quantised inference.
//!
//! Layout (PLONKish, over the Pallas base field):
//! - **dot rows** compute, for each of the `B` neurons of a block,
//!   `acc_o = chain·acc_o,prev + bias_o + Σ_{i<L} x_i·w_o,i`; weights and biases are fixed
//!   columns, so they are part of the verifying key (the model is baked in); inputs `x_i` are
//!   copies (permutation argument) of earlier outputs, shared by the block's neurons (dense
//!   layers read the same inputs for every output).
//! - **activation rows** check `acc = 2^8·y + r` and give `z`, the activation of `y`.
//!   - The legacy layout (`.zkm` versions 1 and 2) looks up `(2, r, r)` for `0 ≤ r < 2^8` and
//!     `(tag, y, w)` in the activation table, which range-checks `y` and gives `w` = ReLU(y) or
//!     a sigmoid of it; `z = w`, or `z = y` for a layer without activation.
//!   - The compact layout splits `y = u − 2^(b−1)·s` (sign bit `s`) and looks up
//!     `(tag, u, f(u), f(u − 2^(b−1)))` in a table of `2^(b−1)` rows per sigmoid layer (one
//!     block of zeros without a sigmoid), half the rows of a `b`-bit activation table: `u` is
//!     range-checked, a sigmoid row takes `f` of its sign's half, and ReLU is `(1 − s)·u`. The
//!     remainder is range-checked as `2^(b−1−8)·r` against the same input column.
//! - **input rows** range-check every input the same way; block layouts do it in columns of
//!   their own, beside the dot rows.
//! - **Poseidon** (P128Pow5T3) chains a random salt and the input, packed several values per
//!   field element (with dot rows), into one field element: the input commitment, a public
//!   instance. The legacy layout hashes one packed element per permutation; the compact one
//!   absorbs 32 per hash, two per permutation.
//!
//! Public instance: `[model_lo, model_hi, input_commitment, output_0, …]`. The model limbs are
//! hashed into the Fiat–Shamir transcript, so a proof is bound to the model commitment too.

use std::{ops::Range, sync::Arc};

use halo2_gadgets::poseidon::{
    Hash as PoseidonHash, PaddedWord, Pow5Chip, Pow5Config, Sponge,
    primitives::{self as poseidon, ConstantLength, P128Pow5T3},
};
use halo2_proofs::{
    circuit::{AssignedCell, Layouter, Region, SimpleFloorPlanner, Value},
    pasta::{
        Fp,
        group::ff::{Field, PrimeField},
    },
    plonk::{
        Advice, Circuit, Column, ConstraintSystem, Error, Expression, Fixed, Instance, Selector,
        TableColumn,
    },
    poly::Rotation,
};

use crate::model::{Activation, QuantLayer, QuantModel, SHIFT};

/// How a circuit lays out a model. It decides the verifying key, so a `.zkm` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Values multiplied per dot row.
    pub(crate) lanes: usize,
    /// Neurons sharing one dot row (and its inputs).
    pub(crate) block: usize,
    /// Sign-split range checks against a half-size table, inputs range-checked where they are
    /// assigned, and input packing by the activation width (`.zkm` version 3 on).
    pub(crate) compact: bool,
}

/// Version 1 and 2 layouts: 8 values per dot row.
pub(crate) const LEGACY_NARROW: Layout = Layout {
    lanes: 8,
    block: 1,
    compact: false,
};
/// Version 2 layout for wide dense layers: 16 values per dot row.
pub(crate) const LEGACY_WIDE: Layout = Layout {
    lanes: 16,
    block: 1,
    compact: false,
};
/// Layouts a new compilation chooses from, cheapest first (fewest columns).
pub(crate) const COMPACT: [Layout; 3] = [
    Layout {
        lanes: 8,
        block: 1,
        compact: true,
    },
    Layout {
        lanes: 16,
        block: 1,
        compact: true,
    },
    Layout {
        lanes: 16,
        block: 8,
        compact: true,
    },
];

impl Layout {
    /// Whether this build has a circuit for the layout and it can express `model`.
    pub(crate) fn supports(self, model: &QuantModel) -> bool {
        let known = [LEGACY_NARROW, LEGACY_WIDE].contains(&self) || COMPACT.contains(&self);
        // The compact remainder check needs the range table to cover [0, 2^SHIFT).
        known && (!self.compact || model.act_bits > SHIFT)
    }
}

/// The smallest circuit size used (2^MIN_K rows).
pub(crate) const MIN_K: u32 = 6;
const TAG_IDENTITY: u64 = 0;
/// Compact layout: the tag of the table's zero block (`(0, u, 0, 0)` for every `u` in
/// `[0, 2^(b−1))` without a sigmoid, else the single row `(0, 0, 0, 0)` that rows with the lookup
/// off read).
const TAG_RANGE: u64 = 0;
const TAG_RELU: u64 = 1;
const TAG_REMAINDER: u64 = 2;
const TAG_FIRST_SIGMOID: u64 = 3;
/// Legacy packing: inputs per field element of the input commitment, and bits per input
/// (activations are at most 16-bit signed, so the packing is injective), one packed element
/// per hash.
const LEGACY_PACK: Packing = Packing {
    per_element: 15,
    bits: 16,
    per_hash: 1,
};
/// Bits of a packed field element: signed values in radix 2^b stay below p/2.
const PACKED_BITS: u32 = 253;
/// Compact layout: packed elements absorbed per hash (with the chain value before them).
const SPONGE_PACKED: usize = 32;
/// Rows Pow5Chip uses per legacy hash (permutation, absorption, initial state), rounded up.
const POSEIDON_ROWS: usize = 48;
/// Rows Pow5Chip uses per permutation with its absorption, rounded up.
const PERMUTATION_ROWS: usize = 40;
/// Unusable rows at the end of the domain (blinding factors) plus margin.
const RESERVED_ROWS: usize = 16;
/// Instance rows before the outputs.
pub(crate) const INSTANCE_HEADER: usize = 3;

/// Converts a signed integer to a field element (negatives wrap to p - |v|).
pub(crate) fn fe(v: i128) -> Fp {
    let m = Fp::from_u128(v.unsigned_abs());
    if v < 0 { -m } else { m }
}

/// The model commitment as two 128-bit field elements.
pub(crate) fn commitment_limbs(c: &[u8; 32]) -> [Fp; 2] {
    let mut lo = [0u8; 16];
    let mut hi = [0u8; 16];
    lo.copy_from_slice(&c[..16]);
    hi.copy_from_slice(&c[16..]);
    [
        Fp::from_u128(u128::from_le_bytes(lo)),
        Fp::from_u128(u128::from_le_bytes(hi)),
    ]
}

/// How the input commitment packs and hashes the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packing {
    /// Inputs per packed field element.
    pub(crate) per_element: usize,
    /// Bits per input in a packed element.
    pub(crate) bits: u32,
    /// Packed elements per Poseidon hash: 1, or [`SPONGE_PACKED`] (zero-filled).
    pub(crate) per_hash: usize,
}

/// The input packing of `model` in `layout`.
pub(crate) fn packing(model: &QuantModel, layout: Layout) -> Packing {
    if layout.compact {
        // Inputs are range-checked to act_bits signed bits: radix 2^act_bits is injective.
        Packing {
            per_element: (PACKED_BITS / model.act_bits) as usize,
            bits: model.act_bits,
            per_hash: SPONGE_PACKED,
        }
    } else {
        LEGACY_PACK
    }
}

/// `Σ x_j · 2^(bits·j)` over a group of inputs.
fn pack(group: &[i64], bits: u32) -> Fp {
    group.iter().enumerate().fold(Fp::zero(), |acc, (j, &x)| {
        acc + fe(x.into()) * pack_weight(j, bits)
    })
}

fn pack_weight(j: usize, bits: u32) -> Fp {
    Fp::from(2).pow_vartime([u64::from(bits) * j as u64])
}

/// The input commitment, computed natively: the input packed `per_element` values to a field
/// element, then the Poseidon chain `h_0 = salt, h_{g+1} = H(h_g, p_g…)` over groups of
/// `per_hash` packed elements (the last group zero-filled).
pub(crate) fn input_commitment(input: &[i64], salt: Fp, packing: Packing) -> Fp {
    let packed: Vec<Fp> = input
        .chunks(packing.per_element)
        .map(|g| pack(g, packing.bits))
        .collect();
    packed.chunks(packing.per_hash).fold(salt, |h, group| {
        if packing.per_hash == 1 {
            poseidon::Hash::<_, P128Pow5T3, ConstantLength<2>, 3, 2>::init().hash([h, group[0]])
        } else {
            let mut message = [Fp::zero(); SPONGE_PACKED + 1];
            message[0] = h;
            message[1..=group.len()].copy_from_slice(group);
            poseidon::Hash::<_, P128Pow5T3, ConstantLength<{ SPONGE_PACKED + 1 }>, 3, 2>::init()
                .hash(message)
        }
    })
}

/// Rows of the Poseidon chain over `packed` elements.
fn poseidon_rows(packed: usize, packing: Packing) -> usize {
    if packing.per_hash == 1 {
        packed * POSEIDON_ROWS
    } else {
        // The chain value and the group, then ConstantLength's padding, two per permutation.
        let permutations = (packing.per_hash + 2).div_ceil(2);
        packed.div_ceil(packing.per_hash) * (permutations * PERMUTATION_ROWS + 8)
    }
}

/// The circuit size (log2 of its rows) for `rows`.
pub(crate) fn k_for(rows: usize) -> u32 {
    rows.next_power_of_two().trailing_zeros().max(MIN_K)
}

/// The layout a new compilation of `model` gets: the compact layout that needs the fewest
/// rows (rounded to a power of two), the one with fewer columns on a tie.
pub(crate) fn choose_layout(model: &QuantModel) -> Layout {
    let candidates: &[Layout] = if COMPACT[0].supports(model) {
        &COMPACT
    } else {
        &[LEGACY_NARROW, LEGACY_WIDE]
    };
    candidates
        .iter()
        .copied()
        .min_by_key(|&l| k_for(rows_with(model, l)))
        .unwrap_or(LEGACY_NARROW)
}

/// Runs `$f::<L, B, C>(args…)` with the const parameters of `$layout`, one of the layouts
/// [`Layout::supports`] knows (anything else runs as [`LEGACY_NARROW`]).
macro_rules! with_layout {
    ($layout:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $layout {
            l if l == $crate::circuit::LEGACY_WIDE => $f::<16, 1, false>($($arg),*),
            l if l == $crate::circuit::COMPACT[0] => $f::<8, 1, true>($($arg),*),
            l if l == $crate::circuit::COMPACT[1] => $f::<16, 1, true>($($arg),*),
            l if l == $crate::circuit::COMPACT[2] => $f::<16, 8, true>($($arg),*),
            _ => $f::<8, 1, false>($($arg),*),
        }
    };
}
pub(crate) use with_layout;

/// Consecutive neurons of `layer` that read the same inputs in the same order, at most
/// `block` per group: they share dot rows.
pub(crate) fn groups(layer: &QuantLayer, block: usize) -> Vec<Range<usize>> {
    let inputs = |r: usize| layer.rows[r].terms.iter().map(|t| t.0);
    let mut out = Vec::new();
    let mut start = 0;
    while start < layer.rows.len() {
        let mut end = start + 1;
        while end < layer.rows.len() && end - start < block && inputs(end).eq(inputs(start)) {
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// Rows the circuit needs in `layout` (before rounding to a power of two).
pub(crate) fn rows_with(model: &QuantModel, layout: Layout) -> usize {
    let lanes = layout.lanes;
    let n = model.input_len as usize;
    let packing = packing(model, layout);
    let count = packing.per_element;
    // Block layouts range-check inputs in columns of their own, beside the dot rows.
    let (inputs, beside) = match (layout.compact, layout.block > 1) {
        (false, _) => (n / lanes + 2 + n, 0),
        (true, false) => (n.max(1), 0),
        (true, true) => (0, n + 1),
    };
    let neurons: usize = model
        .layers
        .iter()
        .map(|l| {
            groups(l, layout.block)
                .into_iter()
                .map(|g| l.rows[g.start].terms.len().div_ceil(lanes) + g.len())
                .sum::<usize>()
        })
        .sum();
    let main = inputs + n.div_ceil(count) * count.div_ceil(lanes) + neurons;
    let poseidon = poseidon_rows(n.div_ceil(count), packing);
    table_rows(model, layout)
        .max(main)
        .max(beside)
        .max(poseidon)
        + RESERVED_ROWS
}

fn has_relu(model: &QuantModel) -> bool {
    model
        .layers
        .iter()
        .any(|l| l.activation == Activation::Relu)
}

fn sigmoids(model: &QuantModel) -> usize {
    model
        .layers
        .iter()
        .filter(|l| l.activation == Activation::Sigmoid)
        .count()
}

fn table_rows(model: &QuantModel, layout: Layout) -> usize {
    let range = 1usize << model.act_bits;
    if layout.compact {
        match sigmoids(model) {
            0 => range / 2,
            n => n * range / 2 + 1,
        }
    } else {
        let kinds = usize::from(has_relu(model)) + sigmoids(model);
        kinds.max(1) * range + (1usize << SHIFT) + usize::from(kinds > 0)
    }
}

/// The legacy table that range-checks values without an activation of their own: ReLU's,
/// else the first sigmoid's, else (a purely linear model) the identity.
fn range_tag(model: &QuantModel) -> u64 {
    if has_relu(model) {
        TAG_RELU
    } else if sigmoids(model) > 0 {
        TAG_FIRST_SIGMOID
    } else {
        TAG_IDENTITY
    }
}

/// Private values of one proof.
#[derive(Debug, Clone)]
pub(crate) struct Witness {
    /// Quantised input.
    pub(crate) input: Vec<i64>,
    /// Blinding salt of the input commitment.
    pub(crate) salt: Fp,
    /// Tests: a dishonest change to the first output neuron's activation row.
    #[cfg(test)]
    pub(crate) tamper: Option<Tamper>,
}

/// A dishonest prover's change to an activation row (tests of soundness).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tamper {
    /// `y + 1` and `r − 2^8`: the rescale gate still holds, the remainder is out of range.
    Rescale,
    /// The sign bit flipped and `u` moved to keep `y = u − 2^(b−1)·s`.
    Sign,
    /// `u + 1` (still in range), breaking `y = u − 2^(b−1)·s`.
    Split,
    /// A sigmoid row's output taken from the table's other half (the sign bit's wrong side).
    Branch,
}

/// The circuit for one model in the layout `(L, B, C)` (lanes, block, compact); without a
/// witness it describes the model only (for keygen).
#[derive(Debug, Clone)]
pub(crate) struct InferenceCircuit<const L: usize, const B: usize, const C: bool> {
    pub(crate) model: Arc<QuantModel>,
    pub(crate) witness: Option<Witness>,
}

/// Columns and gates.
#[derive(Debug, Clone)]
pub(crate) struct InferenceConfig<const L: usize> {
    lanes: [Column<Advice>; L],
    /// One accumulator per neuron of a block.
    acc: Vec<Column<Advice>>,
    /// One row of weights per neuron of a block.
    weights: Vec<[Column<Fixed>; L]>,
    bias: Vec<Column<Fixed>>,
    act_tag: Column<Fixed>,
    /// 1 on activation rows whose output is `y` itself (no activation, or a range check).
    is_id: Column<Fixed>,
    /// Compact layout: 1 on ReLU rows.
    is_relu: Option<Column<Fixed>>,
    /// Compact layout: 2^(act_bits − 1) on activation rows.
    span: Option<Column<Fixed>>,
    q_dot: Selector,
    q_chain: Selector,
    q_act: Selector,
    table: [TableColumn; 3],
    /// Compact layout: the table's activation of `u − 2^(b−1)` (negative `y`).
    table_low: Option<TableColumn>,
    instance: Column<Instance>,
    poseidon: Pow5Config<Fp, 3, 2>,
    /// Block layouts: the input rows' own columns.
    inputs: Option<InputColumns>,
}

/// Columns that range-check inputs beside the dot rows (block layouts): `x = u − 2^(b−1)·s`
/// with `u` in the range table.
#[derive(Debug, Clone, Copy)]
struct InputColumns {
    x: Column<Advice>,
    u: Column<Advice>,
    s: Column<Advice>,
    span: Column<Fixed>,
    q: Selector,
}
/// The input cells and the salt cell.
type InputCells = (Vec<AssignedCell<Fp, Fp>>, AssignedCell<Fp, Fp>);

/// Where an activation row's accumulator comes from.
enum AccSource<'a> {
    /// A copy of a dot row's accumulator.
    Copy(&'a AssignedCell<Fp, Fp>),
    /// An input: `2^8 · x`, assigned in place (unconstrained: an input row's output is `y`).
    Input,
}

/// The values of one activation row.
#[derive(Debug, Clone, Copy)]
struct ActValues {
    acc: i128,
    y: i128,
    rem: i128,
    /// Compact layout: `y + 2^(b−1)·s`.
    u: i128,
    /// Compact layout: the sign bit of `y`.
    s: i128,
    /// The lookup's output column (compact layout: the table block's value for `u`).
    w: i64,
    /// Compact layout: the table block's value for `u − 2^(b−1)`.
    w_low: i64,
    z: i64,
}

impl<const L: usize, const B: usize, const C: bool> Circuit<Fp> for InferenceCircuit<L, B, C> {
    type Config = InferenceConfig<L>;
    type FloorPlanner = SimpleFloorPlanner;

    fn without_witnesses(&self) -> Self {
        InferenceCircuit {
            model: self.model.clone(),
            witness: None,
        }
    }

    fn configure(meta: &mut ConstraintSystem<Fp>) -> InferenceConfig<L> {
        let lanes = [(); L].map(|_| meta.advice_column());
        let acc0 = meta.advice_column();
        for c in lanes.iter().chain([&acc0]) {
            meta.enable_equality(*c);
        }
        let weights0 = [(); L].map(|_| meta.fixed_column());
        let bias0 = meta.fixed_column();
        let act_tag = meta.fixed_column();
        let is_id = meta.fixed_column();
        let q_dot = meta.selector();
        let q_chain = meta.selector();
        let q_act = meta.complex_selector();
        let table = [(); 3].map(|_| meta.lookup_table_column());
        let instance = meta.instance_column();
        meta.enable_equality(instance);
        // Columns of the newer layouts come after the legacy ones, and the legacy gates and
        // queries keep their order: a legacy layout keeps its verifying key.
        let mut acc = vec![acc0];
        let mut weights = vec![weights0];
        let mut bias = vec![bias0];
        for _ in 1..B {
            let a = meta.advice_column();
            meta.enable_equality(a);
            acc.push(a);
            weights.push([(); L].map(|_| meta.fixed_column()));
            bias.push(meta.fixed_column());
        }
        let (is_relu, span, table_low) = if C {
            (
                Some(meta.fixed_column()),
                Some(meta.fixed_column()),
                Some(meta.lookup_table_column()),
            )
        } else {
            (None, None, None)
        };
        let inputs = (C && B > 1).then(|| {
            let [x, u, s] = [(); 3].map(|_| meta.advice_column());
            meta.enable_equality(x);
            InputColumns {
                x,
                u,
                s,
                span: meta.fixed_column(),
                q: meta.complex_selector(),
            }
        });

        // The first row of a dot product starts from the bias, later rows from the row above.
        let dot = |m: &mut halo2_proofs::plonk::VirtualCells<'_, Fp>, o: usize| {
            lanes
                .iter()
                .zip(&weights[o])
                .fold(Expression::Constant(Fp::zero()), |s, (x, w)| {
                    s + m.query_advice(*x, Rotation::cur()) * m.query_fixed(*w)
                })
        };
        meta.create_gate("dot first", |m| {
            let q = m.query_selector(q_dot);
            (0..B)
                .map(|o| {
                    let cur = m.query_advice(acc[o], Rotation::cur());
                    let bias = m.query_fixed(bias[o]);
                    q.clone() * (cur - bias - dot(m, o))
                })
                .collect::<Vec<_>>()
        });
        meta.create_gate("dot next", |m| {
            let q = m.query_selector(q_chain);
            (0..B)
                .map(|o| {
                    let cur = m.query_advice(acc[o], Rotation::cur());
                    let prev = m.query_advice(acc[o], Rotation::prev());
                    q.clone() * (cur - prev - dot(m, o))
                })
                .collect::<Vec<_>>()
        });
        let [acc_in, y, r, z, w] = [lanes[0], lanes[1], lanes[2], lanes[3], lanes[4]];
        meta.create_gate("rescale", |m| {
            let q = m.query_selector(q_act);
            let acc = m.query_advice(acc_in, Rotation::cur());
            let y = m.query_advice(y, Rotation::cur());
            let r = m.query_advice(r, Rotation::cur());
            vec![q * (acc - y * Expression::Constant(Fp::from(1u64 << SHIFT)) - r)]
        });
        let one = || Expression::Constant(Fp::one());
        if let Some(c) = inputs {
            meta.create_gate("input split", |m| {
                let q = m.query_selector(c.q);
                let span = m.query_fixed(c.span);
                let x = m.query_advice(c.x, Rotation::cur());
                let u = m.query_advice(c.u, Rotation::cur());
                let s = m.query_advice(c.s, Rotation::cur());
                vec![
                    q.clone() * (x - u + span * s.clone()),
                    q * s.clone() * (one() - s),
                ]
            });
            // Every block of the compact table lists [0, 2^(b−1)) in its input column.
            meta.lookup(|m| {
                let q = m.query_selector(c.q);
                let u = m.query_advice(c.u, Rotation::cur());
                vec![(q * u, table[1])]
            });
        }
        if let (Some(is_relu), Some(span), Some(table_low)) = (is_relu, span, table_low) {
            let [u, s, w_low] = [lanes[5], lanes[6], lanes[7]];
            meta.create_gate("sign split", |m| {
                let q = m.query_selector(q_act);
                let span = m.query_fixed(span);
                let y = m.query_advice(y, Rotation::cur());
                let u = m.query_advice(u, Rotation::cur());
                let s = m.query_advice(s, Rotation::cur());
                vec![
                    q.clone() * (y - u + span * s.clone()),
                    q * s.clone() * (one() - s),
                ]
            });
            meta.create_gate("activation output", |m| {
                let q = m.query_selector(q_act);
                let is_id = m.query_fixed(is_id);
                let is_relu = m.query_fixed(is_relu);
                let y = m.query_advice(y, Rotation::cur());
                let z = m.query_advice(z, Rotation::cur());
                let w = m.query_advice(w, Rotation::cur());
                let w_low = m.query_advice(w_low, Rotation::cur());
                let u = m.query_advice(u, Rotation::cur());
                let s = m.query_advice(s, Rotation::cur());
                let relu = is_relu.clone() * (one() - s.clone()) * u;
                let sigmoid = (one() - s.clone()) * w + s * w_low;
                vec![q * (z - is_id.clone() * y - relu - (one() - is_id - is_relu) * sigmoid)]
            });
            // (tag, u, f(u), f(u − 2^(b−1))): u is in range, and a sigmoid row reads its
            // activation for y ≥ 0 and for y < 0; other rows read the filler block's values.
            meta.lookup(|m| {
                let q = m.query_selector(q_act);
                let tag = m.query_fixed(act_tag);
                let u = m.query_advice(u, Rotation::cur());
                let w = m.query_advice(w, Rotation::cur());
                let w_low = m.query_advice(w_low, Rotation::cur());
                vec![
                    (q.clone() * tag, table[0]),
                    (q.clone() * u, table[1]),
                    (q.clone() * w, table[2]),
                    (q * w_low, table_low),
                ]
            });
            // t = 2^(b−1−8)·r is in [0, 2^(b−1)). On a neuron row acc is a copy of a small
            // integer A and y an integer in range, so 2^(b−1−8)·(A − 2^8·y) = t holds over the
            // integers: r = A − 2^8·y is in [0, 2^8), and y = floor(A / 2^8). (On an input row
            // acc and r are free, and harmless: z = y, range-checked by u and s.)
            let inv = Fp::from(1u64 << SHIFT).invert().unwrap_or(Fp::zero());
            meta.lookup(|m| {
                let q = m.query_selector(q_act);
                let span = m.query_fixed(span);
                let r = m.query_advice(r, Rotation::cur());
                vec![(q * span * r * Expression::Constant(inv), table[1])]
            });
        } else {
            meta.create_gate("activation output", |m| {
                let q = m.query_selector(q_act);
                let is_id = m.query_fixed(is_id);
                let y = m.query_advice(y, Rotation::cur());
                let z = m.query_advice(z, Rotation::cur());
                let w = m.query_advice(w, Rotation::cur());
                vec![q * (z - is_id.clone() * y - (one() - is_id) * w)]
            });
            meta.lookup(|m| {
                let q = m.query_selector(q_act);
                let tag = m.query_fixed(act_tag);
                let y = m.query_advice(y, Rotation::cur());
                let w = m.query_advice(w, Rotation::cur());
                vec![
                    (q.clone() * tag, table[0]),
                    (q.clone() * y, table[1]),
                    (q * w, table[2]),
                ]
            });
            meta.lookup(|m| {
                let q = m.query_selector(q_act);
                let r = m.query_advice(r, Rotation::cur());
                vec![
                    (
                        q.clone() * Expression::Constant(Fp::from(TAG_REMAINDER)),
                        table[0],
                    ),
                    (q.clone() * r.clone(), table[1]),
                    (q * r, table[2]),
                ]
            });
        }

        let state = [(); 3].map(|_| meta.advice_column());
        let partial_sbox = meta.advice_column();
        let rc_a = [(); 3].map(|_| meta.fixed_column());
        let rc_b = [(); 3].map(|_| meta.fixed_column());
        meta.enable_constant(rc_b[0]);
        let poseidon = Pow5Chip::configure::<P128Pow5T3>(meta, state, partial_sbox, rc_a, rc_b);
        InferenceConfig {
            lanes,
            acc,
            weights,
            bias,
            act_tag,
            is_id,
            is_relu,
            span,
            q_dot,
            q_chain,
            q_act,
            table,
            table_low,
            instance,
            poseidon,
            inputs,
        }
    }

    fn synthesize(
        &self,
        cfg: InferenceConfig<L>,
        mut layouter: impl Layouter<Fp>,
    ) -> Result<(), Error> {
        let model = &*self.model;
        self.load_table(&cfg, &mut layouter)?;
        let value = |v: i128| self.value(v);
        let input_vals: Vec<i64> = match &self.witness {
            Some(w) => w.input.clone(),
            None => vec![0; model.input_len as usize],
        };
        let salt = match &self.witness {
            Some(w) => Value::known(w.salt),
            None => Value::unknown(),
        };
        let (mut cells, salt) = if C {
            self.compact_inputs(&cfg, &mut layouter, &input_vals, salt)?
        } else {
            self.legacy_inputs(&cfg, &mut layouter, &input_vals, salt)?
        };

        // Input commitment: the inputs packed to field elements with dot rows (weights
        // 2^(bits·j)), then a Poseidon chain over the packed values.
        let packing = packing(model, self.layout());
        let count = packing.per_element;
        let mut h = salt;
        if packing.per_hash == 1 {
            for (g, group) in cells.chunks(count).enumerate() {
                let vals = &input_vals[g * count..(g * count + group.len())];
                let packed = self.pack_region(&cfg, &mut layouter, group, vals, packing.bits)?;
                let chip = Pow5Chip::construct(cfg.poseidon.clone());
                let hasher = PoseidonHash::<_, _, P128Pow5T3, ConstantLength<2>, 3, 2>::init(
                    chip,
                    layouter.namespace(|| format!("commit init {g}")),
                )?;
                h = hasher.hash(layouter.namespace(|| format!("commit {g}")), [h, packed])?;
            }
        } else {
            let mut packed = Vec::with_capacity(cells.len().div_ceil(count));
            for (g, group) in cells.chunks(count).enumerate() {
                let vals = &input_vals[g * count..(g * count + group.len())];
                packed.push(self.pack_region(&cfg, &mut layouter, group, vals, packing.bits)?);
            }
            for (g, group) in packed.chunks(packing.per_hash).enumerate() {
                h = Self::sponge_hash(&cfg, &mut layouter, g, h, group)?;
            }
        }
        layouter.constrain_instance(h.cell(), cfg.instance, 2)?;

        // Layers: one region per block of neurons sharing their inputs.
        let mut vals = input_vals;
        for (l, layer) in model.layers.iter().enumerate() {
            let mut next_cells = Vec::with_capacity(layer.rows.len());
            let mut next_vals = Vec::with_capacity(layer.rows.len());
            for group in groups(layer, B) {
                let rows = &layer.rows[group.clone()];
                // Witness values computed row by row from the previous layer's values.
                let acts: Vec<ActValues> = rows
                    .iter()
                    .map(|row| {
                        let acc = row.terms.iter().fold(i128::from(row.bias), |a, &(i, w)| {
                            a + i128::from(w)
                                * i128::from(vals.get(i as usize).copied().unwrap_or(0))
                        });
                        self.act_values(Some(l), acc)
                    })
                    .collect();
                #[cfg(test)]
                let acts = self.tampered(l, group.start, acts);
                let outs = layouter.assign_region(
                    || "neuron",
                    |mut region| {
                        let mut acc_cells: Vec<Option<AssignedCell<Fp, Fp>>> =
                            vec![None; rows.len()];
                        let mut running: Vec<i128> =
                            rows.iter().map(|r| i128::from(r.bias)).collect();
                        for (k, chunk) in rows[0].terms.chunks(L).enumerate() {
                            if k == 0 {
                                cfg.q_dot.enable(&mut region, k)?;
                                for (o, row) in rows.iter().enumerate() {
                                    region.assign_fixed(
                                        || "bias",
                                        cfg.bias[o],
                                        k,
                                        || Value::known(fe(row.bias.into())),
                                    )?;
                                }
                            } else {
                                cfg.q_chain.enable(&mut region, k)?;
                            }
                            // Unused lanes multiply zero by zero.
                            for lane in chunk.len()..L {
                                region.assign_advice(|| "pad", cfg.lanes[lane], k, || value(0))?;
                                for o in 0..rows.len() {
                                    region.assign_fixed(
                                        || "pad",
                                        cfg.weights[o][lane],
                                        k,
                                        || Value::known(Fp::zero()),
                                    )?;
                                }
                            }
                            for (lane, &(i, _)) in chunk.iter().enumerate() {
                                let src = cells.get(i as usize).ok_or(Error::Synthesis)?;
                                src.copy_advice(|| "x", &mut region, cfg.lanes[lane], k)?;
                                let x = i128::from(vals.get(i as usize).copied().unwrap_or(0));
                                for (o, row) in rows.iter().enumerate() {
                                    let (_, w) = row.terms[k * L + lane];
                                    region.assign_fixed(
                                        || "w",
                                        cfg.weights[o][lane],
                                        k,
                                        || Value::known(fe(w.into())),
                                    )?;
                                    running[o] += i128::from(w) * x;
                                }
                            }
                            for (o, cell) in acc_cells.iter_mut().enumerate() {
                                *cell = Some(region.assign_advice(
                                    || "acc",
                                    cfg.acc[o],
                                    k,
                                    || value(running[o]),
                                )?);
                            }
                            Self::idle_outputs(&mut region, &cfg, k, rows.len())?;
                        }
                        let first = rows[0].terms.len().div_ceil(L);
                        let mut outs = Vec::with_capacity(rows.len());
                        for (o, (cell, act)) in acc_cells.iter().zip(&acts).enumerate() {
                            let cell = cell.as_ref().ok_or(Error::Synthesis)?;
                            outs.push(self.activation_row(
                                &mut region,
                                &cfg,
                                first + o,
                                l,
                                AccSource::Copy(cell),
                                act,
                            )?);
                        }
                        Ok(outs)
                    },
                )?;
                next_cells.extend(outs);
                next_vals.extend(acts.iter().map(|a| a.z));
            }
            cells = next_cells;
            vals = next_vals;
        }
        for (i, out) in cells.iter().enumerate() {
            layouter.constrain_instance(out.cell(), cfg.instance, INSTANCE_HEADER + i)?;
        }
        Ok(())
    }
}

impl<const L: usize, const B: usize, const C: bool> InferenceCircuit<L, B, C> {
    /// The layout of this circuit type.
    pub(crate) fn layout(&self) -> Layout {
        Layout {
            lanes: L,
            block: B,
            compact: C,
        }
    }

    /// A witness value: known when proving, unknown for keygen.
    fn value(&self, v: i128) -> Value<Fp> {
        self.known(fe(v))
    }

    /// A witness field element: known when proving, unknown for keygen.
    fn known(&self, v: Fp) -> Value<Fp> {
        if self.witness.is_some() {
            Value::known(v)
        } else {
            Value::unknown()
        }
    }

    /// Zero accumulators and weights for the block's unused neurons on dot row `row`.
    fn idle_outputs(
        region: &mut Region<'_, Fp>,
        cfg: &InferenceConfig<L>,
        row: usize,
        used: usize,
    ) -> Result<(), Error> {
        for o in used..B {
            region.assign_advice(|| "idle", cfg.acc[o], row, || Value::known(Fp::zero()))?;
            region.assign_fixed(|| "idle", cfg.bias[o], row, || Value::known(Fp::zero()))?;
            for w in &cfg.weights[o] {
                region.assign_fixed(|| "idle", *w, row, || Value::known(Fp::zero()))?;
            }
        }
        Ok(())
    }

    /// Packs `group` (cells of the values `vals`) into one field element `Σ x_j·2^(bits·j)`
    /// with dot rows.
    fn pack_region(
        &self,
        cfg: &InferenceConfig<L>,
        layouter: &mut impl Layouter<Fp>,
        group: &[AssignedCell<Fp, Fp>],
        vals: &[i64],
        bits: u32,
    ) -> Result<AssignedCell<Fp, Fp>, Error> {
        layouter.assign_region(
            || "pack",
            |mut region| {
                let mut acc = None;
                let mut running = Fp::zero();
                for (k, chunk) in group.chunks(L).enumerate() {
                    if k == 0 {
                        cfg.q_dot.enable(&mut region, k)?;
                        region.assign_fixed(
                            || "bias",
                            cfg.bias[0],
                            k,
                            || Value::known(Fp::zero()),
                        )?;
                    } else {
                        cfg.q_chain.enable(&mut region, k)?;
                    }
                    for lane in 0..L {
                        let j = k * L + lane;
                        match chunk.get(lane) {
                            Some(x) => {
                                x.copy_advice(|| "x", &mut region, cfg.lanes[lane], k)?;
                                region.assign_fixed(
                                    || "w",
                                    cfg.weights[0][lane],
                                    k,
                                    || Value::known(pack_weight(j, bits)),
                                )?;
                                running += fe(vals[j].into()) * pack_weight(j, bits);
                            }
                            None => {
                                region.assign_advice(
                                    || "pad",
                                    cfg.lanes[lane],
                                    k,
                                    || self.value(0),
                                )?;
                                region.assign_fixed(
                                    || "pad",
                                    cfg.weights[0][lane],
                                    k,
                                    || Value::known(Fp::zero()),
                                )?;
                            }
                        }
                    }
                    let v = self.known(running);
                    acc = Some(region.assign_advice(|| "packed", cfg.acc[0], k, || v)?);
                    Self::idle_outputs(&mut region, cfg, k, 1)?;
                }
                acc.ok_or(Error::Synthesis)
            },
        )
    }

    /// `H(h, group…)` with Poseidon over [`SPONGE_PACKED`] + 1 elements, the group zero-filled
    /// (fixed zeros, so the prover cannot change them).
    fn sponge_hash(
        cfg: &InferenceConfig<L>,
        layouter: &mut impl Layouter<Fp>,
        g: usize,
        h: AssignedCell<Fp, Fp>,
        group: &[AssignedCell<Fp, Fp>],
    ) -> Result<AssignedCell<Fp, Fp>, Error> {
        const LEN: usize = SPONGE_PACKED + 1;
        let chip = Pow5Chip::construct(cfg.poseidon.clone());
        let mut sponge = Sponge::<_, _, P128Pow5T3, _, ConstantLength<LEN>, 3, 2>::new(
            chip,
            layouter.namespace(|| format!("commit init {g}")),
        )?;
        let message = std::iter::once(PaddedWord::Message(h))
            .chain(group.iter().cloned().map(PaddedWord::Message))
            .chain(std::iter::repeat_n(
                PaddedWord::Padding(Fp::zero()),
                SPONGE_PACKED - group.len(),
            ))
            .chain(
                <ConstantLength<LEN> as poseidon::Domain<Fp, 2>>::padding(LEN)
                    .map(PaddedWord::Padding),
            );
        for (i, word) in message.enumerate() {
            sponge.absorb(layouter.namespace(|| format!("absorb {g}.{i}")), word)?;
        }
        sponge
            .finish_absorbing(layouter.namespace(|| format!("finish {g}")))?
            .squeeze(layouter.namespace(|| format!("squeeze {g}")))
    }

    /// What an activation row of layer `layer` (`None`: an input) holds for accumulator `acc`.
    fn act_values(&self, layer: Option<usize>, acc: i128) -> ActValues {
        let model = &*self.model;
        let y = acc.div_euclid(1 << SHIFT);
        let rem = acc.rem_euclid(1 << SHIFT);
        let z = match layer {
            Some(l) => i64::try_from(y)
                .ok()
                .and_then(|y| model.activate(&model.layers[l], y).ok())
                .unwrap_or(0),
            None => i64::try_from(y).unwrap_or(0),
        };
        let activation = layer.map_or(Activation::None, |l| model.layers[l].activation);
        let u = self.unsigned(y);
        let (w, w_low) = if C {
            self.block_values(self.table_block(layer), u)
        } else if activation == Activation::None {
            (i64::try_from(y).map_or(0, |y| self.range_out(y)), 0)
        } else {
            (z, 0)
        };
        ActValues {
            acc,
            y,
            rem,
            u,
            s: i128::from(y < 0),
            w,
            w_low,
            z,
        }
    }

    /// Compact layout: the sigmoid layer whose table block an activation row of `layer`
    /// (`None`: an input) looks up: its own for a sigmoid layer, else the first sigmoid
    /// layer's (any block range-checks `u`), else none (the table is `[0, 2^(b−1))` alone).
    fn table_block(&self, layer: Option<usize>) -> Option<usize> {
        let layers = &self.model.layers;
        match layer {
            Some(l) if layers[l].activation == Activation::Sigmoid => Some(l),
            _ => layers
                .iter()
                .position(|l| l.activation == Activation::Sigmoid),
        }
    }

    /// Compact layout: a table block's values for `u`: the activation of `y = u` and of
    /// `y = u − 2^(b−1)` (zeros without a sigmoid, or for `u` out of range).
    fn block_values(&self, block: Option<usize>, u: i128) -> (i64, i64) {
        let span = 1usize << (self.model.act_bits - 1);
        let table = block.map_or(&[][..], |l| &self.model.layers[l].table[..]);
        usize::try_from(u)
            .ok()
            .filter(|&u| u < span)
            .and_then(|u| Some((*table.get(span + u)?, *table.get(u)?)))
            .unwrap_or((0, 0))
    }

    /// Compact layout: the lookup tag of a table block.
    fn block_tag(&self, block: Option<usize>) -> u64 {
        block.map_or(TAG_RANGE, |l| self.tag(l))
    }

    /// Applies the witness's [`Tamper`] to the first neuron of the output layer.
    #[cfg(test)]
    fn tampered(&self, layer: usize, first: usize, mut acts: Vec<ActValues>) -> Vec<ActValues> {
        let tamper = self.witness.as_ref().and_then(|w| w.tamper);
        if layer + 1 != self.model.layers.len() || first != 0 {
            return acts;
        }
        let span = 1i128 << (self.model.act_bits - 1);
        let a = &mut acts[0];
        match tamper {
            Some(Tamper::Rescale) => {
                let mut honest = self.act_values(Some(layer), a.acc + (1 << SHIFT));
                honest.acc = a.acc;
                honest.rem -= 1 << SHIFT;
                *a = honest;
            }
            Some(Tamper::Branch) => {
                a.z = if a.s == 1 { a.w } else { a.w_low };
            }
            Some(t @ (Tamper::Sign | Tamper::Split)) => {
                if t == Tamper::Sign {
                    a.s = 1 - a.s;
                    a.u = a.y + span * a.s;
                } else {
                    a.u += 1;
                }
                if self.model.layers[layer].activation == Activation::Relu {
                    a.z = i64::try_from((1 - a.s) * a.u).unwrap_or(0);
                }
                if C {
                    (a.w, a.w_low) = self.block_values(self.table_block(Some(layer)), a.u);
                }
            }
            None => {}
        }
        acts
    }

    /// `u = y + 2^(b−1)·s` with `s = 1` for negative `y`.
    fn unsigned(&self, y: i128) -> i128 {
        if y < 0 {
            y + (1i128 << (self.model.act_bits - 1))
        } else {
            y
        }
    }

    /// Assigns an activation row at `row` for layer `layer` (or an input, for
    /// [`AccSource::Input`]) and returns its output cell `z`.
    fn activation_row(
        &self,
        region: &mut Region<'_, Fp>,
        cfg: &InferenceConfig<L>,
        row: usize,
        layer: usize,
        acc: AccSource<'_>,
        act: &ActValues,
    ) -> Result<AssignedCell<Fp, Fp>, Error> {
        let value = |v: i128| self.value(v);
        let model = &*self.model;
        let activation = match acc {
            AccSource::Input => Activation::None,
            AccSource::Copy(_) => model.layers[layer].activation,
        };
        let identity = activation == Activation::None;
        let tag = if C {
            let layer = match acc {
                AccSource::Input => None,
                AccSource::Copy(_) => Some(layer),
            };
            self.block_tag(self.table_block(layer))
        } else if identity {
            range_tag(model)
        } else {
            self.tag(layer)
        };
        cfg.q_act.enable(region, row)?;
        region.assign_fixed(|| "tag", cfg.act_tag, row, || Value::known(Fp::from(tag)))?;
        region.assign_fixed(
            || "is_id",
            cfg.is_id,
            row,
            || Value::known(Fp::from(u64::from(identity))),
        )?;
        if let (Some(is_relu), Some(span)) = (cfg.is_relu, cfg.span) {
            let relu = activation == Activation::Relu;
            region.assign_fixed(
                || "is_relu",
                is_relu,
                row,
                || Value::known(Fp::from(u64::from(relu))),
            )?;
            region.assign_fixed(
                || "span",
                span,
                row,
                || Value::known(Fp::from(1u64 << (model.act_bits - 1))),
            )?;
            region.assign_advice(|| "u", cfg.lanes[5], row, || value(act.u))?;
            region.assign_advice(|| "s", cfg.lanes[6], row, || value(act.s))?;
            region.assign_advice(|| "w_low", cfg.lanes[7], row, || value(act.w_low.into()))?;
        }
        match acc {
            AccSource::Copy(cell) => {
                cell.copy_advice(|| "acc", region, cfg.lanes[0], row)?;
            }
            AccSource::Input => {
                region.assign_advice(|| "acc", cfg.lanes[0], row, || value(act.acc))?;
            }
        }
        region.assign_advice(|| "y", cfg.lanes[1], row, || value(act.y))?;
        region.assign_advice(|| "r", cfg.lanes[2], row, || value(act.rem))?;
        region.assign_advice(|| "w", cfg.lanes[4], row, || value(act.w.into()))?;
        region.assign_advice(|| "z", cfg.lanes[3], row, || value(act.z.into()))
    }

    /// Compact layout: every input on a range-checked row of its own (its `z` cell is the
    /// input), the salt beside the first; block layouts use the input columns, with the salt
    /// after the inputs.
    fn compact_inputs(
        &self,
        cfg: &InferenceConfig<L>,
        layouter: &mut impl Layouter<Fp>,
        input: &[i64],
        salt: Value<Fp>,
    ) -> Result<InputCells, Error> {
        if let Some(c) = cfg.inputs {
            let value = |v: i128| self.value(v);
            let span = 1i128 << (self.model.act_bits - 1);
            return layouter.assign_region(
                || "inputs",
                |mut region| {
                    let mut cells = Vec::with_capacity(input.len());
                    for (row, &v) in input.iter().enumerate() {
                        let v = i128::from(v);
                        let s = i128::from(v < 0);
                        c.q.enable(&mut region, row)?;
                        region.assign_fixed(|| "span", c.span, row, || Value::known(fe(span)))?;
                        region.assign_advice(|| "u", c.u, row, || value(v + span * s))?;
                        region.assign_advice(|| "s", c.s, row, || value(s))?;
                        cells.push(region.assign_advice(|| "x", c.x, row, || value(v))?);
                    }
                    let salt = region.assign_advice(|| "salt", c.x, input.len(), || salt)?;
                    Ok((cells, salt))
                },
            );
        }
        layouter.assign_region(
            || "inputs",
            |mut region| {
                let salt = region.assign_advice(|| "salt", cfg.acc[0], 0, || salt)?;
                let cells = input
                    .iter()
                    .enumerate()
                    .map(|(row, &v)| {
                        let act = self.act_values(None, i128::from(v) << SHIFT);
                        self.activation_row(&mut region, cfg, row, 0, AccSource::Input, &act)
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                Ok((cells, salt))
            },
        )
    }

    /// Legacy layout: the inputs and the salt `L` per row, then a range-check row per input.
    fn legacy_inputs(
        &self,
        cfg: &InferenceConfig<L>,
        layouter: &mut impl Layouter<Fp>,
        input_vals: &[i64],
        salt: Value<Fp>,
    ) -> Result<InputCells, Error> {
        let value = |v: i128| self.value(v);
        let (cells, salt) = layouter.assign_region(
            || "input",
            |mut region| {
                let mut cells = Vec::with_capacity(input_vals.len());
                for (i, &v) in input_vals.iter().enumerate() {
                    cells.push(region.assign_advice(
                        || "x",
                        cfg.lanes[i % L],
                        i / L,
                        || value(v.into()),
                    )?);
                }
                let n = input_vals.len();
                let salt = region.assign_advice(|| "salt", cfg.lanes[n % L], n / L, || salt)?;
                Ok((cells, salt))
            },
        )?;

        // Range-check every input, so a committed input is a real quantised value and not an
        // arbitrary field element chosen to steer the output.
        let range = range_tag(&self.model);
        layouter.assign_region(
            || "input range",
            |mut region| {
                for (row, (x, &v)) in cells.iter().zip(input_vals).enumerate() {
                    cfg.q_act.enable(&mut region, row)?;
                    region.assign_fixed(
                        || "tag",
                        cfg.act_tag,
                        row,
                        || Value::known(Fp::from(range)),
                    )?;
                    region.assign_fixed(|| "is_id", cfg.is_id, row, || Value::known(Fp::one()))?;
                    region.assign_advice(
                        || "acc",
                        cfg.lanes[0],
                        row,
                        || value(i128::from(v) << SHIFT),
                    )?;
                    x.copy_advice(|| "y", &mut region, cfg.lanes[1], row)?;
                    region.assign_advice(|| "r", cfg.lanes[2], row, || value(0))?;
                    region.assign_advice(|| "z", cfg.lanes[3], row, || value(v.into()))?;
                    let w = self.range_out(v);
                    region.assign_advice(|| "w", cfg.lanes[4], row, || value(w.into()))?;
                }
                Ok(())
            },
        )?;
        Ok((cells, salt))
    }

    /// Lookup tag of layer `l`'s activation.
    fn tag(&self, l: usize) -> u64 {
        let layers = &self.model.layers;
        match layers[l].activation {
            Activation::None => TAG_IDENTITY,
            Activation::Relu => TAG_RELU,
            Activation::Sigmoid => {
                TAG_FIRST_SIGMOID
                    + layers[..l]
                        .iter()
                        .filter(|x| x.activation == Activation::Sigmoid)
                        .count() as u64
            }
        }
    }

    /// The range table's output for `v`.
    fn range_out(&self, v: i64) -> i64 {
        let model = &*self.model;
        if has_relu(model) {
            v.max(0)
        } else if let Some(layer) = model
            .layers
            .iter()
            .find(|l| l.activation == Activation::Sigmoid)
        {
            model.activate(layer, v).unwrap_or(0)
        } else {
            v
        }
    }

    fn load_table(
        &self,
        cfg: &InferenceConfig<L>,
        layouter: &mut impl Layouter<Fp>,
    ) -> Result<(), Error> {
        let model = &*self.model;
        let (lo, hi) = (model.act_min(), model.act_max());
        // (tag, in, out, out for negative y; the last only in the compact layout).
        let mut entries: Vec<(u64, i64, i64, i64)> =
            Vec::with_capacity(table_rows(model, self.layout()));
        if C {
            // One block per sigmoid layer: (tag, u, σ(u), σ(u − 2^(b−1))) for u in
            // [0, 2^(b−1)); without a sigmoid, one block of zeros.
            let sigmoids: Vec<usize> = (0..model.layers.len())
                .filter(|&l| model.layers[l].activation == Activation::Sigmoid)
                .collect();
            if sigmoids.is_empty() {
                entries.extend((0..=hi).map(|u| (TAG_RANGE, u, 0, 0)));
            } else {
                // Rows where the lookups are off look up (0, 0, 0, 0).
                entries.push((TAG_RANGE, 0, 0, 0));
            }
            for l in sigmoids {
                let tag = self.tag(l);
                entries.extend((0..=hi).map(|u| {
                    let (w, w_low) = self.block_values(Some(l), u.into());
                    (tag, u, w, w_low)
                }));
            }
        } else {
            if range_tag(model) == TAG_IDENTITY {
                entries.extend((lo..=hi).map(|v| (TAG_IDENTITY, v, v, 0)));
            } else {
                // Rows where the lookups are off look up (0, 0, 0): it must be in the table.
                entries.push((TAG_IDENTITY, 0, 0, 0));
            }
            if has_relu(model) {
                entries.extend((lo..=hi).map(|v| (TAG_RELU, v, v.max(0), 0)));
            }
            entries.extend((0..1i64 << SHIFT).map(|r| (TAG_REMAINDER, r, r, 0)));
            for (l, layer) in model.layers.iter().enumerate() {
                if layer.activation == Activation::Sigmoid {
                    let tag = self.tag(l);
                    entries.extend((lo..=hi).zip(&layer.table).map(|(v, &s)| (tag, v, s, 0)));
                }
            }
        }
        layouter.assign_table(
            || "activations",
            |mut t| {
                for (row, &(tag, x, y, y_low)) in entries.iter().enumerate() {
                    t.assign_cell(|| "tag", cfg.table[0], row, || Value::known(Fp::from(tag)))?;
                    t.assign_cell(|| "in", cfg.table[1], row, || Value::known(fe(x.into())))?;
                    t.assign_cell(|| "out", cfg.table[2], row, || Value::known(fe(y.into())))?;
                    if let Some(low) = cfg.table_low {
                        t.assign_cell(|| "low", low, row, || Value::known(fe(y_low.into())))?;
                    }
                }
                Ok(())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use halo2_proofs::dev::MockProver;
    use proptest::prelude::*;

    use super::*;
    use crate::model::{Calibration, FloatModel, calibrate};
    use crate::test_support::layered_model;

    /// A random chain of layers whose rows read up to 9 random inputs, random activations.
    fn model() -> impl Strategy<Value = FloatModel> {
        layered_model(1..12, 1..6, 1..4, false)
    }

    /// A chain of dense layers (every output reads every input, in order, so neurons share
    /// dot rows in the block layout), up to 12 outputs per layer (blocks full and partial).
    fn dense_model() -> impl Strategy<Value = FloatModel> {
        layered_model(1..20, 1..13, 1..3, true)
    }

    /// Every layout this build knows.
    const ALL: [Layout; 5] = [
        LEGACY_NARROW,
        LEGACY_WIDE,
        COMPACT[0],
        COMPACT[1],
        COMPACT[2],
    ];

    /// The mock prover accepts the reference output of `model` on `input` in every layout that
    /// supports the model, and rejects any other output.
    fn check(model: &QuantModel, input: &[i64]) -> Result<(), TestCaseError> {
        check_in(model, input, &ALL)
    }

    fn check_in(
        model: &QuantModel,
        input: &[i64],
        layouts: &[Layout],
    ) -> Result<(), TestCaseError> {
        let trace = model.eval(input).unwrap();
        let salt = Fp::from(7u64);
        let [lo, hi] = commitment_limbs(&model.commitment());
        for &layout in layouts.iter().filter(|l| l.supports(model)) {
            let commitment = input_commitment(input, salt, packing(model, layout));
            let mut instance = vec![lo, hi, commitment];
            instance.extend(trace.output().iter().map(|&v| fe(v.into())));
            prop_assert_eq!(
                mock(model, input, salt, instance.clone(), layout),
                Ok(()),
                "{:?}",
                layout
            );
            // Any other output is rejected.
            let last = instance.len() - 1;
            instance[last] += Fp::one();
            prop_assert!(mock(model, input, salt, instance, layout).is_err());
        }
        Ok(())
    }

    /// Runs the mock prover on `model`'s circuit in `layout`.
    fn mock(
        model: &QuantModel,
        input: &[i64],
        salt: Fp,
        instance: Vec<Fp>,
        layout: Layout,
    ) -> Result<(), Vec<halo2_proofs::dev::VerifyFailure>> {
        mock_tampered(model, input, salt, instance, layout, None)
    }

    /// [`mock`] with a dishonest change to the witness.
    fn mock_tampered(
        model: &QuantModel,
        input: &[i64],
        salt: Fp,
        instance: Vec<Fp>,
        layout: Layout,
        tamper: Option<Tamper>,
    ) -> Result<(), Vec<halo2_proofs::dev::VerifyFailure>> {
        fn run<const L: usize, const B: usize, const C: bool>(
            model: &QuantModel,
            input: &[i64],
            salt: Fp,
            instance: Vec<Fp>,
            tamper: Option<Tamper>,
        ) -> Result<(), Vec<halo2_proofs::dev::VerifyFailure>> {
            let circuit = InferenceCircuit::<L, B, C> {
                model: Arc::new(model.clone()),
                witness: Some(Witness {
                    input: input.to_vec(),
                    salt,
                    tamper,
                }),
            };
            let k = k_for(rows_with(model, circuit.layout()));
            MockProver::run(k, &circuit, vec![instance])
                .unwrap()
                .verify()
        }
        with_layout!(layout, run(model, input, salt, instance, tamper))
    }

    fn layout_of<const L: usize, const B: usize, const C: bool>() -> Layout {
        InferenceCircuit::<L, B, C> {
            model: Arc::new(testdata_model("credit_mlp.onnx", "credit_calibration.json")),
            witness: None,
        }
        .layout()
    }

    #[test]
    fn every_layout_runs_the_circuit_made_for_it() {
        for layout in ALL {
            assert_eq!(with_layout!(layout, layout_of()), layout);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// The circuit accepts exactly the reference evaluator's output, for random models and
        /// random inputs within the calibrated range.
        #[test]
        fn circuit_output_equals_reference(
            float in model(),
            samples in prop::collection::vec(prop::collection::vec(-2.0f32..2.0, 12), 4),
            pick in 0usize..4,
        ) {
            quantise_and_check(&float, &samples, pick, 6)?;
        }

        /// Dense layers, whose neurons share dot rows in blocks, prove exactly the reference
        /// output in every layout.
        #[test]
        fn dense_blocks_output_equals_reference(
            float in dense_model(),
            samples in prop::collection::vec(prop::collection::vec(-1.0f32..1.0, 20), 4),
            pick in 0usize..4,
        ) {
            let quant = quantise_and_check(&float, &samples, pick, 10)?;
            prop_assert!(quant.layers.iter().all(|l| groups(l, 8).len() == l.rows.len().div_ceil(8)));
        }
    }

    /// Quantises `float` (`act_bits` wide) on `samples`, then [`check`]s sample `pick`; returns
    /// the quantised model.
    fn quantise_and_check(
        float: &FloatModel,
        samples: &[Vec<f32>],
        pick: usize,
        act_bits: u32,
    ) -> Result<QuantModel, TestCaseError> {
        let n = float.input_len;
        let cal = Calibration {
            inputs: samples.iter().map(|s| s[..n].to_vec()).collect(),
            labels: None,
        };
        // A random model may compute values beyond the integer bits, in floating point ("do not
        // fit") or once quantised ("outside the provable range" on a sample): calibration
        // refuses it by design, and such a case proves nothing about the circuit.
        let (quant, _) = match calibrate(float, &cal, act_bits) {
            Err(crate::ZkError::Calibration(reason)) => {
                return Err(TestCaseError::reject(reason));
            }
            other => other.unwrap(),
        };
        let input = quant.quantise_input(&cal.inputs[pick]).unwrap();
        check(&quant, &input)?;
        Ok(quant)
    }

    /// An input outside the quantised range cannot be proved, even when every later value is
    /// in range: y = floor(x / 256) on one input.
    #[test]
    fn out_of_range_input_is_unprovable() {
        let model = single(Activation::None);
        let [lo, hi] = commitment_limbs(&model.commitment());
        let run = |x: i64, layout: Layout| {
            let salt = Fp::from(3u64);
            let out = x.div_euclid(1 << SHIFT);
            let commitment = input_commitment(&[x], salt, packing(&model, layout));
            let instance = vec![lo, hi, commitment, fe(out.into())];
            mock(&model, &[x], salt, instance, layout)
        };
        for layout in ALL {
            assert_eq!(run(model.act_max(), layout), Ok(()), "{layout:?}");
            assert_eq!(run(model.act_min(), layout), Ok(()), "{layout:?}");
            assert!(run(model.act_max() + 1, layout).is_err(), "{layout:?}");
            assert!(run(model.act_min() - 1, layout).is_err(), "{layout:?}");
        }
    }

    /// A one-weight model: `y = floor(x / 2^8)`, then `activation`.
    fn single(activation: Activation) -> QuantModel {
        QuantModel {
            input_shape: vec![1],
            input_len: 1,
            output_shape: vec![1],
            input_scale: 0,
            act_bits: 10,
            layers: vec![crate::model::QuantLayer {
                rows: vec![crate::model::QuantRow {
                    bias: 0,
                    terms: vec![(0, 1)],
                }],
                activation,
                pre_scale: 0,
                table: Vec::new(),
            }],
            softmax_output: false,
        }
    }

    /// A dishonest witness is refused even when it claims the output it computes: a
    /// pre-activation one too high (its remainder then out of range), and in the compact
    /// layout a flipped sign bit (its `u` then out of range) or a `u` that is not `y`'s.
    #[test]
    fn dishonest_activation_rows_are_unprovable() {
        for activation in [Activation::None, Activation::Relu] {
            let model = single(activation);
            dishonest_rows_of(&model, activation);
        }
    }

    /// A sigmoid row's output is its own half of the table, and an off-by-one `y` is refused.
    #[test]
    fn dishonest_sigmoid_rows_are_unprovable() {
        let mut model = single(Activation::Sigmoid);
        // Any table will do: a different value for every y.
        model.layers[0].table = (0..1024).map(|i| 2 * i + 1).collect();
        let table = model.layers[0].table.clone();
        let z = |y: i64| table[usize::try_from(y + 512).unwrap()];
        let [lo, hi] = commitment_limbs(&model.commitment());
        let salt = Fp::from(5u64);
        for x in [300i64, -300, 0, -512] {
            let y = x.div_euclid(1 << SHIFT);
            for layout in ALL {
                let run = |out: i64, tamper| {
                    let commitment = input_commitment(&[x], salt, packing(&model, layout));
                    let instance = vec![lo, hi, commitment, fe(out.into())];
                    mock_tampered(&model, &[x], salt, instance, layout, tamper)
                };
                let case = format!("x={x} {layout:?}");
                assert_eq!(run(z(y), None), Ok(()), "{case}");
                assert!(run(z(y + 1), Some(Tamper::Rescale)).is_err(), "{case}");
                if layout.compact {
                    let other = if y < 0 { z(y + 512) } else { z(y - 512) };
                    assert!(run(other, Some(Tamper::Branch)).is_err(), "{case}");
                }
            }
        }
    }

    /// The tamper checks of [`dishonest_activation_rows_are_unprovable`] on `model`.
    fn dishonest_rows_of(model: &QuantModel, activation: Activation) {
        let [lo, hi] = commitment_limbs(&model.commitment());
        let salt = Fp::from(5u64);
        let act = |y: i64| {
            if activation == Activation::Relu {
                y.max(0)
            } else {
                y
            }
        };
        let span = 1i64 << (model.act_bits - 1);
        for x in [300i64, -300, 0] {
            let y = x.div_euclid(1 << SHIFT);
            for layout in ALL {
                let run = |out: i64, tamper| {
                    let commitment = input_commitment(&[x], salt, packing(model, layout));
                    let instance = vec![lo, hi, commitment, fe(out.into())];
                    mock_tampered(model, &[x], salt, instance, layout, tamper)
                };
                let case = format!("{activation:?} x={x} {layout:?}");
                assert_eq!(run(act(y), None), Ok(()), "{case}");
                assert!(run(act(y + 1), Some(Tamper::Rescale)).is_err(), "{case}");
                if layout.compact {
                    let s = i64::from(y >= 0);
                    let u = y + span * s;
                    let z = match activation {
                        Activation::Relu => (1 - s) * u,
                        _ => y,
                    };
                    assert!(run(z, Some(Tamper::Sign)).is_err(), "{case}");
                    let u = y + span * i64::from(y < 0) + 1;
                    let z = match activation {
                        Activation::Relu if y >= 0 => u,
                        Activation::Relu => 0,
                        _ => y,
                    };
                    assert!(run(z, Some(Tamper::Split)).is_err(), "{case}");
                }
            }
        }
    }

    /// An input of more than 32 packed elements is committed by a chain of two sponge hashes,
    /// the second zero-filled; the circuit computes the same commitment as the native code.
    #[test]
    fn a_long_input_is_committed_by_a_chain_of_sponge_hashes() {
        let n = 850u32;
        let mut model = single(Activation::Relu);
        model.input_shape = vec![n];
        model.input_len = n;
        model.layers[0].rows[0].terms = (0..n).map(|i| (i, i64::from(i % 97 == 0))).collect();
        let packing = packing(&model, COMPACT[0]);
        assert_eq!((n as usize).div_ceil(packing.per_element), 34);
        let input: Vec<i64> = (0..i64::from(n)).map(|i| (i * 37) % 1000 - 500).collect();
        check_in(&model, &input, &COMPACT).unwrap();
        // The commitment depends on inputs in the second hash.
        let mut other = input.clone();
        other[849] += 1;
        let salt = Fp::from(9u64);
        assert_ne!(
            input_commitment(&input, salt, packing),
            input_commitment(&other, salt, packing)
        );
    }

    fn testdata_model(model: &str, calibration: &str) -> QuantModel {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let onnx = std::fs::read(dir.join(model)).unwrap();
        let cal = serde_json::from_slice(&std::fs::read(dir.join(calibration)).unwrap()).unwrap();
        (*crate::ZkModel::compile(&onnx, &cal).unwrap().model).clone()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4))]

        /// Completeness of the shipped models (dense MLP; conv, pooling and dense CNN) on random
        /// inputs in the calibrated range.
        #[test]
        fn shipped_models_prove_random_inputs(
            credit in prop::collection::vec(-2.5f32..2.5, 16),
            image in prop::collection::vec(0.0f32..1.0, 64),
        ) {
            let mlp = testdata_model("credit_mlp.onnx", "credit_calibration.json");
            let layouts = [LEGACY_NARROW, choose_layout(&mlp)];
            check_in(&mlp, &mlp.quantise_input(&credit).unwrap(), &layouts)?;
            let cnn = testdata_model("digits_cnn.onnx", "digits_calibration.json");
            let layouts = [LEGACY_NARROW, choose_layout(&cnn)];
            check_in(&cnn, &cnn.quantise_input(&image).unwrap(), &layouts)?;
        }
    }
}
