//! The halo2 circuit proving one quantised inference.
//!
//! Layout (PLONKish, over the Pallas base field):
//! - **dot rows** compute `acc = chain·acc_prev + bias + Σ_{i<8} x_i·w_i`; weights and biases
//!   are fixed columns, so they are part of the verifying key (the model is baked in); inputs
//!   `x_i` are copies (permutation argument) of earlier outputs.
//! - **activation rows** check `acc = 2^8·y + r`, look up `(2, r, r)` for `0 ≤ r < 2^8` and
//!   `(tag, y, w)` in the activation table, which range-checks `y` and gives `w` = ReLU(y) or a
//!   sigmoid of it; `z = w`, or `z = y` for a layer without activation. Range checks use the
//!   model's own ReLU or sigmoid table (an identity table only for a purely linear model), so
//!   the table holds one entry per activation value and function, and no more.
//! - **input rows** range-check every input the same way.
//! - **Poseidon** (P128Pow5T3) chains a random salt and the input, packed fifteen values per
//!   field element ([`PACK`] × [`PACK_BITS`] bits, with dot rows), into one field element: the
//!   input commitment, a public instance.
//!
//! Public instance: `[model_lo, model_hi, input_commitment, output_0, …]`. The model limbs are
//! hashed into the Fiat–Shamir transcript, so a proof is bound to the model commitment too.

use std::sync::Arc;

use halo2_gadgets::poseidon::{
    Hash as PoseidonHash, Pow5Chip, Pow5Config,
    primitives::{self as poseidon, ConstantLength, P128Pow5T3},
};
use halo2_proofs::{
    circuit::{AssignedCell, Layouter, SimpleFloorPlanner, Value},
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

use crate::model::{Activation, QuantModel, SHIFT};

/// Values multiplied per dot row, for most models.
pub(crate) const NARROW: usize = 8;
/// Values multiplied per dot row for models whose dot rows then fit a smaller circuit (a wide
/// dense layer): more columns, half the rows.
pub(crate) const WIDE: usize = 16;
/// The smallest circuit size used (2^MIN_K rows).
pub(crate) const MIN_K: u32 = 6;
const TAG_IDENTITY: u64 = 0;
const TAG_RELU: u64 = 1;
const TAG_REMAINDER: u64 = 2;
const TAG_FIRST_SIGMOID: u64 = 3;
/// Inputs packed into one field element of the input commitment.
pub(crate) const PACK: usize = 15;
/// Bits per packed input: activations are at most 16-bit signed, so the packing is injective.
pub(crate) const PACK_BITS: u32 = 16;
/// Rows Pow5Chip uses per hash (permutation, absorption, initial state), rounded up.
const POSEIDON_ROWS: usize = 48;
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

/// `Σ x_j · 2^(16 j)` over a group of at most [`PACK`] inputs.
fn pack(group: &[i64]) -> Fp {
    group.iter().enumerate().fold(Fp::zero(), |acc, (j, &x)| {
        acc + fe(x.into()) * pack_weight(j)
    })
}

fn pack_weight(j: usize) -> Fp {
    Fp::from(2).pow_vartime([u64::from(PACK_BITS) * j as u64])
}

/// Poseidon chain `h_0 = salt, h_{g+1} = H(h_g, pack(group_g))` over the input in groups of
/// [`PACK`]: the input commitment, computed natively.
pub(crate) fn input_commitment(input: &[i64], salt: Fp) -> Fp {
    input.chunks(PACK).fold(salt, |h, group| {
        poseidon::Hash::<_, P128Pow5T3, ConstantLength<2>, 3, 2>::init().hash([h, pack(group)])
    })
}

/// Rows the circuit needs (before rounding to a power of two) with the lane width it gets.
#[cfg(test)]
pub(crate) fn rows_needed(model: &QuantModel) -> usize {
    rows_with(model, lanes(model))
}

/// The circuit size (log2 of its rows) for `rows`.
pub(crate) fn k_for(rows: usize) -> u32 {
    rows.next_power_of_two().trailing_zeros().max(MIN_K)
}

/// Values per dot row for `model`: [`WIDE`] only where it makes the circuit smaller, since
/// wider rows cost more columns.
pub(crate) fn lanes(model: &QuantModel) -> usize {
    if k_for(rows_with(model, WIDE)) < k_for(rows_with(model, NARROW)) {
        WIDE
    } else {
        NARROW
    }
}

/// Rows the circuit needs with `lanes` values per dot row (before rounding to a power of two).
pub(crate) fn rows_with(model: &QuantModel, lanes: usize) -> usize {
    let table = table_rows(model);
    let n = model.input_len as usize;
    let main = n / lanes
        + 2
        + n
        + n.div_ceil(PACK) * PACK.div_ceil(lanes)
        + model
            .layers
            .iter()
            .flat_map(|l| &l.rows)
            .map(|r| r.terms.len().div_ceil(lanes) + 1)
            .sum::<usize>();
    let poseidon = n.div_ceil(PACK) * POSEIDON_ROWS;
    table.max(main).max(poseidon) + RESERVED_ROWS
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

fn table_rows(model: &QuantModel) -> usize {
    let kinds = usize::from(has_relu(model)) + sigmoids(model);
    kinds.max(1) * (1usize << model.act_bits) + (1usize << SHIFT) + usize::from(kinds > 0)
}

/// The table that range-checks values without an activation of their own: ReLU's, else the
/// first sigmoid's, else (a purely linear model) the identity.
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
}

/// The circuit for one model with `L` values per dot row; without a witness it describes the
/// model only (for keygen).
#[derive(Debug, Clone)]
pub(crate) struct InferenceCircuit<const L: usize> {
    pub(crate) model: Arc<QuantModel>,
    pub(crate) witness: Option<Witness>,
}

/// Columns and gates.
#[derive(Debug, Clone)]
pub(crate) struct InferenceConfig<const L: usize> {
    lanes: [Column<Advice>; L],
    acc: Column<Advice>,
    weights: [Column<Fixed>; L],
    bias: Column<Fixed>,
    act_tag: Column<Fixed>,
    /// 1 on activation rows whose output is `y` itself (no activation, or a range check).
    is_id: Column<Fixed>,
    q_dot: Selector,
    q_chain: Selector,
    q_act: Selector,
    table: [TableColumn; 3],
    instance: Column<Instance>,
    poseidon: Pow5Config<Fp, 3, 2>,
}

impl<const L: usize> Circuit<Fp> for InferenceCircuit<L> {
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
        let acc = meta.advice_column();
        for c in lanes.iter().chain([&acc]) {
            meta.enable_equality(*c);
        }
        let weights = [(); L].map(|_| meta.fixed_column());
        let bias = meta.fixed_column();
        let act_tag = meta.fixed_column();
        let is_id = meta.fixed_column();
        let q_dot = meta.selector();
        let q_chain = meta.selector();
        let q_act = meta.complex_selector();
        let table = [(); 3].map(|_| meta.lookup_table_column());
        let instance = meta.instance_column();
        meta.enable_equality(instance);

        // The first row of a dot product starts from the bias, later rows from the row above.
        let dot = |m: &mut halo2_proofs::plonk::VirtualCells<'_, Fp>| {
            lanes
                .iter()
                .zip(&weights)
                .fold(Expression::Constant(Fp::zero()), |s, (x, w)| {
                    s + m.query_advice(*x, Rotation::cur()) * m.query_fixed(*w)
                })
        };
        meta.create_gate("dot first", |m| {
            let q = m.query_selector(q_dot);
            let cur = m.query_advice(acc, Rotation::cur());
            let bias = m.query_fixed(bias);
            vec![q * (cur - bias - dot(m))]
        });
        meta.create_gate("dot next", |m| {
            let q = m.query_selector(q_chain);
            let cur = m.query_advice(acc, Rotation::cur());
            let prev = m.query_advice(acc, Rotation::prev());
            vec![q * (cur - prev - dot(m))]
        });
        let [acc_in, y, r, z, w] = [lanes[0], lanes[1], lanes[2], lanes[3], lanes[4]];
        meta.create_gate("rescale", |m| {
            let q = m.query_selector(q_act);
            let acc = m.query_advice(acc_in, Rotation::cur());
            let y = m.query_advice(y, Rotation::cur());
            let r = m.query_advice(r, Rotation::cur());
            vec![q * (acc - y * Expression::Constant(Fp::from(1u64 << SHIFT)) - r)]
        });
        meta.create_gate("activation output", |m| {
            let q = m.query_selector(q_act);
            let is_id = m.query_fixed(is_id);
            let y = m.query_advice(y, Rotation::cur());
            let z = m.query_advice(z, Rotation::cur());
            let w = m.query_advice(w, Rotation::cur());
            let one = Expression::Constant(Fp::one());
            vec![q * (z - is_id.clone() * y - (one - is_id) * w)]
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
            q_dot,
            q_chain,
            q_act,
            table,
            instance,
            poseidon,
        }
    }

    fn synthesize(
        &self,
        cfg: InferenceConfig<L>,
        mut layouter: impl Layouter<Fp>,
    ) -> Result<(), Error> {
        let model = &*self.model;
        self.load_table(&cfg, &mut layouter)?;
        let known = self.witness.is_some();
        let value = |v: i128| {
            if known {
                Value::known(fe(v))
            } else {
                Value::unknown()
            }
        };

        // Input values and the salt, eight per row.
        let input_vals: Vec<i64> = match &self.witness {
            Some(w) => w.input.clone(),
            None => vec![0; model.input_len as usize],
        };
        let (mut cells, salt) = layouter.assign_region(
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
                let salt = region.assign_advice(
                    || "salt",
                    cfg.lanes[n % L],
                    n / L,
                    || match &self.witness {
                        Some(w) => Value::known(w.salt),
                        None => Value::unknown(),
                    },
                )?;
                Ok((cells, salt))
            },
        )?;

        // Range-check every input, so a committed input is a real quantised value and not an
        // arbitrary field element chosen to steer the output.
        let range = range_tag(model);
        layouter.assign_region(
            || "input range",
            |mut region| {
                for (row, (x, &v)) in cells.iter().zip(&input_vals).enumerate() {
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

        // Input commitment: the inputs packed PACK to a field element with dot rows (weights
        // 2^(16 j)), then a Poseidon chain over the packed values.
        let mut h = salt;
        for (g, group) in cells.chunks(PACK).enumerate() {
            let vals = &input_vals[g * PACK..(g * PACK + group.len())];
            let packed = layouter.assign_region(
                || "pack",
                |mut region| {
                    let mut acc = None;
                    let mut running = Fp::zero();
                    for (k, chunk) in group.chunks(L).enumerate() {
                        if k == 0 {
                            cfg.q_dot.enable(&mut region, k)?;
                            region.assign_fixed(
                                || "bias",
                                cfg.bias,
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
                                        cfg.weights[lane],
                                        k,
                                        || Value::known(pack_weight(j)),
                                    )?;
                                    running += fe(vals[j].into()) * pack_weight(j);
                                }
                                None => {
                                    region.assign_advice(
                                        || "pad",
                                        cfg.lanes[lane],
                                        k,
                                        || value(0),
                                    )?;
                                    region.assign_fixed(
                                        || "pad",
                                        cfg.weights[lane],
                                        k,
                                        || Value::known(Fp::zero()),
                                    )?;
                                }
                            }
                        }
                        let v = if known {
                            Value::known(running)
                        } else {
                            Value::unknown()
                        };
                        acc = Some(region.assign_advice(|| "packed", cfg.acc, k, || v)?);
                    }
                    acc.ok_or(Error::Synthesis)
                },
            )?;
            let chip = Pow5Chip::construct(cfg.poseidon.clone());
            let hasher = PoseidonHash::<_, _, P128Pow5T3, ConstantLength<2>, 3, 2>::init(
                chip,
                layouter.namespace(|| format!("commit init {g}")),
            )?;
            h = hasher.hash(layouter.namespace(|| format!("commit {g}")), [h, packed])?;
        }
        layouter.constrain_instance(h.cell(), cfg.instance, 2)?;

        // Layers: one region per output value.
        let mut vals = input_vals;
        for (l, layer) in model.layers.iter().enumerate() {
            let identity = layer.activation == Activation::None;
            let tag = if identity { range } else { self.tag(l) };
            let mut next_cells = Vec::with_capacity(layer.rows.len());
            let mut next_vals = Vec::with_capacity(layer.rows.len());
            for row in &layer.rows {
                // Witness values computed row by row from the previous layer's values.
                let mut acc = i128::from(row.bias);
                for &(i, w) in &row.terms {
                    acc += i128::from(w) * i128::from(vals.get(i as usize).copied().unwrap_or(0));
                }
                let y = acc.div_euclid(1 << SHIFT);
                let rem = acc.rem_euclid(1 << SHIFT);
                let z = i64::try_from(y)
                    .ok()
                    .and_then(|y| model.activate(layer, y).ok())
                    .unwrap_or(0);
                // What the table gives for y: the activation, or the range table's output.
                let w = if identity {
                    i64::try_from(y).map_or(0, |y| self.range_out(y))
                } else {
                    z
                };
                let out = layouter.assign_region(
                    || "neuron",
                    |mut region| {
                        let mut acc_cell: Option<AssignedCell<Fp, Fp>> = None;
                        let mut running = i128::from(row.bias);
                        for (k, chunk) in row.terms.chunks(L).enumerate() {
                            if k == 0 {
                                cfg.q_dot.enable(&mut region, k)?;
                                region.assign_fixed(
                                    || "bias",
                                    cfg.bias,
                                    k,
                                    || Value::known(fe(row.bias.into())),
                                )?;
                            } else {
                                cfg.q_chain.enable(&mut region, k)?;
                            }
                            // Unused lanes multiply zero by zero.
                            for lane in chunk.len()..L {
                                region.assign_advice(|| "pad", cfg.lanes[lane], k, || value(0))?;
                                region.assign_fixed(
                                    || "pad",
                                    cfg.weights[lane],
                                    k,
                                    || Value::known(Fp::zero()),
                                )?;
                            }
                            for (lane, &(i, w)) in chunk.iter().enumerate() {
                                let src = cells.get(i as usize).ok_or(Error::Synthesis)?;
                                src.copy_advice(|| "x", &mut region, cfg.lanes[lane], k)?;
                                region.assign_fixed(
                                    || "w",
                                    cfg.weights[lane],
                                    k,
                                    || Value::known(fe(w.into())),
                                )?;
                                running += i128::from(w)
                                    * i128::from(vals.get(i as usize).copied().unwrap_or(0));
                            }
                            acc_cell = Some(region.assign_advice(
                                || "acc",
                                cfg.acc,
                                k,
                                || value(running),
                            )?);
                        }
                        let acc_cell = acc_cell.ok_or(Error::Synthesis)?;
                        let k = row.terms.len().div_ceil(L);
                        cfg.q_act.enable(&mut region, k)?;
                        region.assign_fixed(
                            || "tag",
                            cfg.act_tag,
                            k,
                            || Value::known(Fp::from(tag)),
                        )?;
                        region.assign_fixed(
                            || "is_id",
                            cfg.is_id,
                            k,
                            || Value::known(Fp::from(u64::from(identity))),
                        )?;
                        acc_cell.copy_advice(|| "acc", &mut region, cfg.lanes[0], k)?;
                        region.assign_advice(|| "y", cfg.lanes[1], k, || value(y))?;
                        region.assign_advice(|| "r", cfg.lanes[2], k, || value(rem))?;
                        region.assign_advice(|| "w", cfg.lanes[4], k, || value(w.into()))?;
                        region.assign_advice(|| "z", cfg.lanes[3], k, || value(z.into()))
                    },
                )?;
                next_cells.push(out);
                next_vals.push(z);
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

impl<const L: usize> InferenceCircuit<L> {
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
        let mut entries: Vec<(u64, i64, i64)> = Vec::with_capacity(table_rows(model));
        if range_tag(model) == TAG_IDENTITY {
            entries.extend((lo..=hi).map(|v| (TAG_IDENTITY, v, v)));
        } else {
            // Rows where the lookups are off look up (0, 0, 0): it must be in the table.
            entries.push((TAG_IDENTITY, 0, 0));
        }
        if has_relu(model) {
            entries.extend((lo..=hi).map(|v| (TAG_RELU, v, v.max(0))));
        }
        entries.extend((0..1i64 << SHIFT).map(|r| (TAG_REMAINDER, r, r)));
        for (l, layer) in model.layers.iter().enumerate() {
            if layer.activation == Activation::Sigmoid {
                let tag = self.tag(l);
                entries.extend((lo..=hi).zip(&layer.table).map(|(v, &s)| (tag, v, s)));
            }
        }
        layouter.assign_table(
            || "activations",
            |mut t| {
                for (row, &(tag, x, y)) in entries.iter().enumerate() {
                    t.assign_cell(|| "tag", cfg.table[0], row, || Value::known(Fp::from(tag)))?;
                    t.assign_cell(|| "in", cfg.table[1], row, || Value::known(fe(x.into())))?;
                    t.assign_cell(|| "out", cfg.table[2], row, || Value::known(fe(y.into())))?;
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
    use crate::model::{AffineRow, Calibration, FloatLayer, FloatModel, calibrate};

    fn activation() -> impl Strategy<Value = Activation> {
        prop_oneof![
            Just(Activation::None),
            Just(Activation::Relu),
            Just(Activation::Sigmoid)
        ]
    }

    /// A random chain of dense layers (some rows sparse), random activations.
    fn model() -> impl Strategy<Value = FloatModel> {
        (
            1usize..12,
            prop::collection::vec((1usize..6, activation()), 1..4),
        )
            .prop_flat_map(|(n_in, shape)| {
                let mut widths = vec![n_in];
                widths.extend(shape.iter().map(|s| s.0));
                let layers: Vec<_> = shape
                    .iter()
                    .enumerate()
                    .map(|(l, &(n_out, act))| {
                        let n_prev = widths[l];
                        prop::collection::vec(
                            (
                                -1.0f32..1.0,
                                prop::collection::vec((0..n_prev as u32, -1.5f32..1.5), 1..10),
                            ),
                            n_out,
                        )
                        .prop_map(move |rows| FloatLayer {
                            rows: rows
                                .into_iter()
                                .map(|(bias, terms)| AffineRow { bias, terms })
                                .collect(),
                            activation: act,
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

    fn check(model: &QuantModel, input: &[i64]) -> Result<(), TestCaseError> {
        let trace = model.eval(input).unwrap();
        let salt = Fp::from(7u64);
        let [lo, hi] = commitment_limbs(&model.commitment());
        let mut instance = vec![lo, hi, input_commitment(input, salt)];
        instance.extend(trace.output().iter().map(|&v| fe(v.into())));
        prop_assert_eq!(mock(model, input, salt, instance.clone()), Ok(()));
        // Any other output is rejected.
        let last = instance.len() - 1;
        instance[last] += Fp::one();
        prop_assert!(mock(model, input, salt, instance).is_err());
        Ok(())
    }

    /// Runs the mock prover on `model`'s circuit, with the lane width the model gets.
    fn mock(
        model: &QuantModel,
        input: &[i64],
        salt: Fp,
        instance: Vec<Fp>,
    ) -> Result<(), Vec<halo2_proofs::dev::VerifyFailure>> {
        fn run<const L: usize>(
            model: &QuantModel,
            input: &[i64],
            salt: Fp,
            instance: Vec<Fp>,
        ) -> Result<(), Vec<halo2_proofs::dev::VerifyFailure>> {
            let circuit = InferenceCircuit::<L> {
                model: Arc::new(model.clone()),
                witness: Some(Witness {
                    input: input.to_vec(),
                    salt,
                }),
            };
            MockProver::run(k_for(rows_needed(model)), &circuit, vec![instance])
                .unwrap()
                .verify()
        }
        match lanes(model) {
            WIDE => run::<WIDE>(model, input, salt, instance),
            _ => run::<NARROW>(model, input, salt, instance),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// The circuit accepts exactly the reference evaluator's output, for random models and
        /// random inputs within the calibrated range.
        #[test]
        fn circuit_output_equals_reference(
            float in model(),
            samples in prop::collection::vec(prop::collection::vec(-2.0f32..2.0, 12), 4),
            pick in 0usize..4,
        ) {
            let n = float.input_len;
            let cal = Calibration {
                inputs: samples.iter().map(|s| s[..n].to_vec()).collect(),
                labels: None,
            };
            // A random model may compute values beyond 6 integer bits: calibration refuses it
            // by design, and such a case proves nothing about the circuit.
            let (quant, _) = match calibrate(&float, &cal, 6) {
                Err(crate::ZkError::Calibration(reason)) if reason.contains("do not fit") => {
                    return Err(TestCaseError::reject(reason));
                }
                other => other.unwrap(),
            };
            let input = quant.quantise_input(&cal.inputs[pick]).unwrap();
            check(&quant, &input)?;
        }
    }

    /// An input outside the quantised range cannot be proved, even when every later value is
    /// in range: y = floor(x / 256) on one input.
    #[test]
    fn out_of_range_input_is_unprovable() {
        let model = QuantModel {
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
                activation: Activation::None,
                pre_scale: 0,
                table: Vec::new(),
            }],
            softmax_output: false,
        };
        let [lo, hi] = commitment_limbs(&model.commitment());
        let run = |x: i64| {
            let salt = Fp::from(3u64);
            let out = x.div_euclid(1 << SHIFT);
            let instance = vec![lo, hi, input_commitment(&[x], salt), fe(out.into())];
            mock(&model, &[x], salt, instance)
        };
        assert_eq!(run(model.act_max()), Ok(()));
        assert_eq!(run(model.act_min()), Ok(()));
        assert!(run(model.act_max() + 1).is_err());
        assert!(run(model.act_min() - 1).is_err());
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
            check(&mlp, &mlp.quantise_input(&credit).unwrap())?;
            let cnn = testdata_model("digits_cnn.onnx", "digits_calibration.json");
            check(&cnn, &cnn.quantise_input(&image).unwrap())?;
        }
    }
}
