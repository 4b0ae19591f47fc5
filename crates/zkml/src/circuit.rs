//! The halo2 circuit proving one quantised inference.
//!
//! Layout (PLONKish, over the Pallas base field):
//! - **dot rows** compute `acc = chain·acc_prev + bias + Σ_{i<8} x_i·w_i`; weights and biases
//!   are fixed columns, so they are part of the verifying key (the model is baked in); inputs
//!   `x_i` are copies (permutation argument) of earlier outputs.
//! - **activation rows** check `acc = 2^8·y + r`, look up `(0|1|2, r, r)` for `0 ≤ r < 2^8` and
//!   `(tag, y, z)` in the activation table, which both range-checks `y` and applies the
//!   identity, ReLU or a sigmoid table.
//! - **Poseidon** (P128Pow5T3) chains the input with a random salt into one field element:
//!   the input commitment, a public instance.
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
    pasta::{Fp, group::ff::PrimeField},
    plonk::{
        Advice, Circuit, Column, ConstraintSystem, Error, Expression, Fixed, Instance, Selector,
        TableColumn,
    },
    poly::Rotation,
};

use crate::model::{Activation, QuantModel, SHIFT};

/// Values multiplied per dot row.
pub(crate) const LANES: usize = 8;
const TAG_IDENTITY: u64 = 0;
const TAG_RELU: u64 = 1;
const TAG_REMAINDER: u64 = 2;
const TAG_FIRST_SIGMOID: u64 = 3;
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

/// Poseidon chain `h_0 = salt, h_{i+1} = H(h_i, x_i)`: the input commitment, computed natively.
pub(crate) fn input_commitment(input: &[i64], salt: Fp) -> Fp {
    input.iter().fold(salt, |h, &x| {
        poseidon::Hash::<_, P128Pow5T3, ConstantLength<2>, 3, 2>::init().hash([h, fe(x.into())])
    })
}

/// Rows the circuit needs (before rounding to a power of two).
pub(crate) fn rows_needed(model: &QuantModel) -> usize {
    let table = table_rows(model);
    let main = model.input_len as usize / LANES
        + 2
        + model
            .layers
            .iter()
            .flat_map(|l| &l.rows)
            .map(|r| r.terms.len().div_ceil(LANES) + 1)
            .sum::<usize>();
    let poseidon = (model.input_len as usize) * POSEIDON_ROWS;
    table.max(main).max(poseidon) + RESERVED_ROWS
}

fn has_relu(model: &QuantModel) -> bool {
    model
        .layers
        .iter()
        .any(|l| l.activation == Activation::Relu)
}

fn table_rows(model: &QuantModel) -> usize {
    let kinds = 1
        + usize::from(has_relu(model))
        + model
            .layers
            .iter()
            .filter(|l| l.activation == Activation::Sigmoid)
            .count();
    kinds * (1usize << model.act_bits) + (1usize << SHIFT)
}

/// Private values of one proof.
#[derive(Debug, Clone)]
pub(crate) struct Witness {
    /// Quantised input.
    pub(crate) input: Vec<i64>,
    /// Blinding salt of the input commitment.
    pub(crate) salt: Fp,
}

/// The circuit for one model; without a witness it describes the model only (for keygen).
#[derive(Debug, Clone)]
pub(crate) struct InferenceCircuit {
    pub(crate) model: Arc<QuantModel>,
    pub(crate) witness: Option<Witness>,
}

/// Columns and gates.
#[derive(Debug, Clone)]
pub(crate) struct InferenceConfig {
    lanes: [Column<Advice>; LANES],
    acc: Column<Advice>,
    weights: [Column<Fixed>; LANES],
    bias: Column<Fixed>,
    chain: Column<Fixed>,
    act_tag: Column<Fixed>,
    q_dot: Selector,
    q_act: Selector,
    table: [TableColumn; 3],
    instance: Column<Instance>,
    poseidon: Pow5Config<Fp, 3, 2>,
}

impl Circuit<Fp> for InferenceCircuit {
    type Config = InferenceConfig;
    type FloorPlanner = SimpleFloorPlanner;

    fn without_witnesses(&self) -> Self {
        InferenceCircuit {
            model: self.model.clone(),
            witness: None,
        }
    }

    fn configure(meta: &mut ConstraintSystem<Fp>) -> InferenceConfig {
        let lanes = [(); LANES].map(|_| meta.advice_column());
        let acc = meta.advice_column();
        for c in lanes.iter().chain([&acc]) {
            meta.enable_equality(*c);
        }
        let weights = [(); LANES].map(|_| meta.fixed_column());
        let bias = meta.fixed_column();
        let chain = meta.fixed_column();
        let act_tag = meta.fixed_column();
        let q_dot = meta.selector();
        let q_act = meta.complex_selector();
        let table = [(); 3].map(|_| meta.lookup_table_column());
        let instance = meta.instance_column();
        meta.enable_equality(instance);

        meta.create_gate("dot", |m| {
            let q = m.query_selector(q_dot);
            let cur = m.query_advice(acc, Rotation::cur());
            let prev = m.query_advice(acc, Rotation::prev());
            let chain = m.query_fixed(chain);
            let mut sum = chain * prev + m.query_fixed(bias);
            for (x, w) in lanes.iter().zip(&weights) {
                sum = sum + m.query_advice(*x, Rotation::cur()) * m.query_fixed(*w);
            }
            vec![q * (cur - sum)]
        });
        let [acc_in, y, r, z] = [lanes[0], lanes[1], lanes[2], lanes[3]];
        meta.create_gate("rescale", |m| {
            let q = m.query_selector(q_act);
            let acc = m.query_advice(acc_in, Rotation::cur());
            let y = m.query_advice(y, Rotation::cur());
            let r = m.query_advice(r, Rotation::cur());
            vec![q * (acc - y * Expression::Constant(Fp::from(1u64 << SHIFT)) - r)]
        });
        meta.lookup(|m| {
            let q = m.query_selector(q_act);
            let tag = m.query_fixed(act_tag);
            let y = m.query_advice(y, Rotation::cur());
            let z = m.query_advice(z, Rotation::cur());
            vec![
                (q.clone() * tag, table[0]),
                (q.clone() * y, table[1]),
                (q * z, table[2]),
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
            chain,
            act_tag,
            q_dot,
            q_act,
            table,
            instance,
            poseidon,
        }
    }

    fn synthesize(
        &self,
        cfg: InferenceConfig,
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
                        cfg.lanes[i % LANES],
                        i / LANES,
                        || value(v.into()),
                    )?);
                }
                let n = input_vals.len();
                let salt = region.assign_advice(
                    || "salt",
                    cfg.lanes[n % LANES],
                    n / LANES,
                    || match &self.witness {
                        Some(w) => Value::known(w.salt),
                        None => Value::unknown(),
                    },
                )?;
                Ok((cells, salt))
            },
        )?;

        // Input commitment: Poseidon chain over the input cells.
        let mut h = salt;
        for (i, x) in cells.iter().enumerate() {
            let chip = Pow5Chip::construct(cfg.poseidon.clone());
            let hasher = PoseidonHash::<_, _, P128Pow5T3, ConstantLength<2>, 3, 2>::init(
                chip,
                layouter.namespace(|| format!("commit init {i}")),
            )?;
            h = hasher.hash(layouter.namespace(|| format!("commit {i}")), [h, x.clone()])?;
        }
        layouter.constrain_instance(h.cell(), cfg.instance, 2)?;

        // Layers: one region per output value.
        let mut vals = input_vals;
        for (l, layer) in model.layers.iter().enumerate() {
            let tag = self.tag(l);
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
                let out = layouter.assign_region(
                    || "neuron",
                    |mut region| {
                        let mut acc_cell: Option<AssignedCell<Fp, Fp>> = None;
                        let mut running = i128::from(row.bias);
                        for (k, chunk) in row.terms.chunks(LANES).enumerate() {
                            cfg.q_dot.enable(&mut region, k)?;
                            region.assign_fixed(
                                || "chain",
                                cfg.chain,
                                k,
                                || Value::known(Fp::from(u64::from(k > 0))),
                            )?;
                            let b = if k == 0 {
                                fe(row.bias.into())
                            } else {
                                Fp::zero()
                            };
                            region.assign_fixed(|| "bias", cfg.bias, k, || Value::known(b))?;
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
                        let k = row.terms.len().div_ceil(LANES);
                        cfg.q_act.enable(&mut region, k)?;
                        region.assign_fixed(
                            || "tag",
                            cfg.act_tag,
                            k,
                            || Value::known(Fp::from(tag)),
                        )?;
                        acc_cell.copy_advice(|| "acc", &mut region, cfg.lanes[0], k)?;
                        region.assign_advice(|| "y", cfg.lanes[1], k, || value(y))?;
                        region.assign_advice(|| "r", cfg.lanes[2], k, || value(rem))?;
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

impl InferenceCircuit {
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

    fn load_table(
        &self,
        cfg: &InferenceConfig,
        layouter: &mut impl Layouter<Fp>,
    ) -> Result<(), Error> {
        let model = &*self.model;
        let (lo, hi) = (model.act_min(), model.act_max());
        let mut entries: Vec<(u64, i64, i64)> = Vec::with_capacity(table_rows(model));
        entries.extend((lo..=hi).map(|v| (TAG_IDENTITY, v, v)));
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
