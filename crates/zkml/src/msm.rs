//! ⟨s, G⟩ over the IPA generators with precomputed multiples: the one large multi-scalar
//! multiplication an IPA verifier does.
//!
//! halo2's verifier computes it with a generic Pippenger over projective points every time,
//! although the generators never change. Here each generator's multiples `2^(c·j)·G_i` are
//! computed once per circuit size, so all windows share one set of buckets (no doublings), and
//! the bucket additions are done in affine coordinates with one inversion per batch
//! (Montgomery's trick): 0.23 µs each here, against 0.85 µs for a projective addition.

use std::sync::Arc;

use halo2_proofs::{
    arithmetic::{CurveAffine, CurveExt},
    pasta::{
        Eq, EqAffine, Fp, Fq,
        arithmetic::VartimeBatchInvert,
        group::{
            Group,
            ff::{Field, PrimeField},
        },
    },
    poly::commitment::Params,
};

use crate::memo::Memo;

/// Window width in bits: 2^(C−1) buckets, and `WINDOWS` multiples per generator.
const C: usize = 10;
/// Signed digits need one bit above the scalar's 255.
const WINDOWS: usize = 256usize.div_ceil(C);
const BUCKETS: usize = 1 << (C - 1);
/// Additions inverted together.
const BATCH: usize = 256;
/// The second-level bucket count when many buckets are summed (a power of two).
const FOLD: usize = 32;
/// Largest circuit (log2 of the generator count) whose table is built: 2^k · 26 points of 64
/// bytes, 6.8 MB at k = 12. Larger circuits use halo2's own multiplication.
const MAX_TABLE_K: u32 = 12;

/// An affine point with its coordinates read once (never the identity).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Affine {
    x: Fq,
    y: Fq,
}

impl Affine {
    fn of(p: &EqAffine) -> Option<Self> {
        let c = Option::from(p.coordinates())?;
        let c: halo2_proofs::arithmetic::Coordinates<EqAffine> = c;
        Some(Affine {
            x: *c.x(),
            y: *c.y(),
        })
    }

    fn neg(self) -> Self {
        Affine {
            x: self.x,
            y: -self.y,
        }
    }
}

/// The multiples `2^(C·j)·G_i` of a generator vector, for every window `j`.
pub(crate) struct FixedBases {
    /// Row `i` holds generator `i`'s `WINDOWS` multiples.
    table: Vec<Affine>,
    n: usize,
}

impl std::fmt::Debug for FixedBases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FixedBases({} generators × {WINDOWS} multiples)", self.n)
    }
}

impl FixedBases {
    /// Precomputes the table for `generators` (none may be the identity).
    pub(crate) fn new(generators: &[EqAffine]) -> Option<Self> {
        use rayon::prelude::*;
        let mut projective = vec![Eq::identity(); generators.len() * WINDOWS];
        projective
            .par_chunks_mut(WINDOWS)
            .zip(generators)
            .for_each(|(row, g)| {
                let mut p = Eq::from(*g);
                for slot in row {
                    *slot = p;
                    for _ in 0..C {
                        p = p.double();
                    }
                }
            });
        let mut affine = vec![EqAffine::default(); projective.len()];
        let rows = 64 * WINDOWS;
        projective
            .par_chunks(rows)
            .zip(affine.par_chunks_mut(rows))
            .for_each(|(p, a)| Eq::batch_normalize_vartime(p, a));
        let table = affine.iter().map(Affine::of).collect::<Option<Vec<_>>>()?;
        Some(FixedBases {
            table,
            n: generators.len(),
        })
    }

    /// The tables for the IPA generators of one circuit size, built once per process. Built
    /// outside the memo's lock (the build runs on rayon, so a rayon worker that picks up another
    /// verification while it waits must not block on itself); if two threads build a size, the
    /// first one remembered is kept.
    pub(crate) fn cached(params: &Params<EqAffine>) -> Option<Arc<FixedBases>> {
        static TABLES: Memo<u32, Arc<FixedBases>> = Memo::new(MAX_TABLE_K as usize + 1);
        let k = params.k();
        if k > MAX_TABLE_K {
            return None;
        }
        if let Some(t) = TABLES.get(&k) {
            return Some(t);
        }
        Some(TABLES.put(k, Arc::new(FixedBases::new(&params.get_g())?)))
    }

    /// The number of generators.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// ⟨scalars, G⟩; `scalars` has one entry per generator.
    pub(crate) fn msm(&self, scalars: &[Fp]) -> Eq {
        assert_eq!(scalars.len(), self.n, "one scalar per generator");
        let threads = rayon::current_num_threads().max(1);
        let chunk = self.n.div_ceil(threads).max(1);
        let parts: Vec<Eq> = {
            use rayon::prelude::*;
            scalars
                .par_chunks(chunk)
                .enumerate()
                .map(|(c, s)| {
                    let rows = &self.table[c * chunk * WINDOWS..(c * chunk + s.len()) * WINDOWS];
                    bucket_sum(rows, s)
                })
                .collect()
        };
        parts.into_iter().fold(Eq::identity(), |a, b| a + b)
    }
}

/// The scalar's signed base-2^C digits, least significant first, each in (−2^(C−1), 2^(C−1)].
fn digits(scalar: &Fp) -> [i32; WINDOWS] {
    let repr = scalar.to_repr();
    let bytes: &[u8] = repr.as_ref();
    let bit =
        |i: usize| -> u32 { ((bytes.get(i / 8).copied().unwrap_or(0) >> (i % 8)) & 1).into() };
    let mut out = [0i32; WINDOWS];
    let mut carry = 0i32;
    for (j, d) in out.iter_mut().enumerate() {
        let mut v = 0u32;
        for b in (0..C).rev() {
            v = (v << 1) | bit(j * C + b);
        }
        let v = v as i32 + carry;
        if v > (BUCKETS as i32) {
            *d = v - (1 << C);
            carry = 1;
        } else {
            *d = v;
            carry = 0;
        }
    }
    debug_assert_eq!(carry, 0, "a 255-bit scalar fits {WINDOWS} signed digits");
    out
}

/// Σ_i s_i·G_i for one slice of generators' table rows: every multiple goes into the bucket of
/// its digit, then the buckets are summed by weight.
fn bucket_sum(rows: &[Affine], scalars: &[Fp]) -> Eq {
    let mut buckets = Buckets::new(BUCKETS + 1);
    for (row, s) in rows.chunks(WINDOWS).zip(scalars) {
        for (d, p) in digits(s).into_iter().zip(row) {
            if d > 0 {
                buckets.add(d as usize, *p);
            } else if d < 0 {
                buckets.add((-d) as usize, p.neg());
            }
        }
    }
    buckets.finish()
}

/// Affine buckets fed in batches: a batch holds at most one addition per bucket, so all the
/// batch's slopes share one inversion. Bucket `i` has weight `i` in [`Buckets::finish`].
struct Buckets {
    value: Vec<Option<Affine>>,
    /// The batch a bucket last joined (to keep one addition per bucket per batch).
    stamp: Vec<u32>,
    batch_id: u32,
    batch: Vec<(usize, Affine)>,
    /// Additions whose bucket was already in the batch, for the next one.
    waiting: Vec<(usize, Affine)>,
    denominators: Vec<Fq>,
}

impl Buckets {
    fn new(count: usize) -> Self {
        Buckets {
            value: vec![None; count],
            stamp: vec![0; count],
            batch_id: 1,
            batch: Vec::with_capacity(BATCH),
            waiting: Vec::new(),
            denominators: Vec::with_capacity(BATCH),
        }
    }

    fn add(&mut self, bucket: usize, p: Affine) {
        if self.stamp[bucket] == self.batch_id {
            self.waiting.push((bucket, p));
        } else {
            self.stamp[bucket] = self.batch_id;
            self.batch.push((bucket, p));
        }
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    /// Applies the batch, then starts the next one with the additions that waited.
    fn flush(&mut self) {
        self.apply();
        self.batch_id += 1;
        let waiting = std::mem::take(&mut self.waiting);
        for (bucket, p) in waiting {
            if self.stamp[bucket] == self.batch_id {
                self.waiting.push((bucket, p));
            } else {
                self.stamp[bucket] = self.batch_id;
                self.batch.push((bucket, p));
            }
        }
    }

    /// Adds every batched point to its bucket: λ = (y₂ − y₁)/(x₂ − x₁), or 3x²/2y when the points
    /// are equal; a point meeting its negation empties the bucket.
    fn apply(&mut self) {
        self.denominators.clear();
        for (bucket, p) in &self.batch {
            let d = match &self.value[*bucket] {
                None => Fq::ZERO,
                Some(q) => {
                    let d = p.x - q.x;
                    match bool::from(d.is_zero()) {
                        false => d,
                        true if q.y == p.y => p.y.double(),
                        true => Fq::ZERO,
                    }
                }
            };
            self.denominators.push(d);
        }
        self.denominators.iter_mut().batch_invert_vartime();
        for ((bucket, p), inv) in self.batch.drain(..).zip(&self.denominators) {
            let slot = &mut self.value[bucket];
            *slot = match *slot {
                None => Some(p),
                // A zero denominator is left zero by the inversion: p = −q.
                Some(_) if bool::from(inv.is_zero()) => None,
                Some(q) if q.x == p.x => {
                    let xx = p.x.square();
                    Some(chord((xx.double() + xx) * inv, p, p))
                }
                Some(q) => Some(chord((p.y - q.y) * inv, q, p)),
            };
        }
    }

    /// Σ_i i·bucket_i. Many buckets are first folded into two small sets, since i = 32h + l
    /// makes the sum 32·Σ_h h·(Σ_l B_{32h+l}) + Σ_l l·(Σ_h B_{32h+l}), and affine additions
    /// into them cost less than a running sum's projective ones; few are summed directly, as
    /// running sums from the top bucket down.
    fn finish(mut self) -> Eq {
        while !self.batch.is_empty() || !self.waiting.is_empty() {
            self.flush();
        }
        if self.value.len() > 2 * FOLD {
            let mut high = Buckets::new(self.value.len().div_ceil(FOLD));
            let mut low = Buckets::new(FOLD);
            for (i, p) in self.value.iter().enumerate() {
                if let Some(p) = p {
                    if i / FOLD > 0 {
                        high.add(i / FOLD, *p);
                    }
                    if i % FOLD > 0 {
                        low.add(i % FOLD, *p);
                    }
                }
            }
            let mut total = high.finish();
            for _ in 0..FOLD.trailing_zeros() {
                total = total.double();
            }
            return total + low.finish();
        }
        let mut running = Eq::identity();
        let mut total = Eq::identity();
        for b in self.value.iter().skip(1).rev() {
            if let Some(p) = b {
                // Bucket values are sums of curve points, so they are on the curve.
                running += Eq::new_jacobian(p.x, p.y, Fq::ONE).unwrap();
            }
            total += running;
        }
        total
    }
}

/// The third point on the line of slope λ through `p` and `q`, reflected: p + q.
fn chord(lambda: Fq, p: Affine, q: Affine) -> Affine {
    let x = lambda.square() - p.x - q.x;
    let y = lambda * (p.x - x) - p.y;
    Affine { x, y }
}

#[cfg(test)]
mod tests {
    use halo2_proofs::arithmetic::best_multiexp;
    use proptest::prelude::*;

    use super::*;

    fn generators(k: u32) -> Vec<EqAffine> {
        Params::<EqAffine>::new(k).get_g()
    }

    fn scalar(seed: u64) -> Fp {
        let mut wide = [0u8; 64];
        for (i, chunk) in wide.chunks_mut(32).enumerate() {
            chunk.copy_from_slice(
                blake3::hash(&[seed.to_le_bytes(), (i as u64).to_le_bytes()].concat()).as_bytes(),
            );
        }
        <Fp as halo2_proofs::pasta::group::ff::FromUniformBytes<64>>::from_uniform_bytes(&wide)
    }

    #[test]
    fn digits_recompose_the_scalar() {
        for s in [
            Fp::ZERO,
            Fp::ONE,
            -Fp::ONE,
            scalar(1),
            scalar(2),
            Fp::from(512),
            Fp::from(513),
        ] {
            let mut acc = Fp::ZERO;
            for d in digits(&s).iter().rev() {
                acc = acc * Fp::from(1 << C)
                    + if *d >= 0 {
                        Fp::from(*d as u64)
                    } else {
                        -Fp::from((-*d) as u64)
                    };
            }
            assert_eq!(acc, s);
        }
    }

    #[test]
    fn matches_halo2_on_edge_scalars() {
        let g = generators(6);
        let table = FixedBases::new(&g).unwrap();
        let mut s: Vec<Fp> = (0..g.len() as u64).map(scalar).collect();
        // Zeros, ±1, the largest scalar, and repeats that put equal points in one bucket.
        s[0] = Fp::ZERO;
        s[1] = Fp::ONE;
        s[2] = -Fp::ONE;
        s[3] = -Fp::ONE - Fp::ONE;
        for x in &mut s[4..20] {
            *x = Fp::from(7);
        }
        assert_eq!(table.msm(&s), best_multiexp(&s, &g));
        let zeros = vec![Fp::ZERO; g.len()];
        assert_eq!(table.msm(&zeros), Eq::identity());
    }

    #[test]
    fn equal_and_opposite_points_in_one_bucket() {
        // One generator's multiple added to itself, then its negation: the doubling and the
        // emptied bucket.
        let g = generators(2);
        let p = Affine::of(&g[0]).unwrap();
        let mut b = Buckets::new(BUCKETS + 1);
        b.add(1, p);
        b.flush();
        b.add(1, p);
        b.flush();
        assert_eq!(b.value[1], Affine::of(&(Eq::from(g[0]).double()).into()));
        b.add(2, p);
        b.flush();
        b.add(2, p.neg());
        assert_eq!(b.finish(), Eq::from(g[0]).double());
    }

    /// Verifications run on rayon (a block's transactions in parallel), and building a table
    /// runs on rayon too: a worker waiting for its part of a build picks up other verifications
    /// that need the same table, which must not wait on a lock the worker itself holds. With
    /// the lock held during the build this test deadlocked (timed out) in 3 of 10 runs; it
    /// builds three sizes that no other test of this process builds.
    #[test]
    fn tables_built_from_inside_rayon_do_not_deadlock() {
        for k in [8, 9, 11] {
            let params = Params::<EqAffine>::new(k);
            let sizes = crate::test_support::on_rayon_within(
                8,
                120,
                "building the tables from 12 rayon jobs",
                move || {
                    use rayon::prelude::*;
                    (0..12)
                        .into_par_iter()
                        .map(|_| FixedBases::cached(&params).map_or(0, |t| t.len()))
                        .collect::<Vec<usize>>()
                },
            );
            assert_eq!(sizes, vec![1 << k; 12], "k = {k}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn matches_halo2(seed in any::<u64>(), small in any::<bool>()) {
            let g = generators(8);
            let table = FixedBases::new(&g).unwrap();
            let s: Vec<Fp> = (0..g.len() as u64)
                .map(|i| if small { Fp::from((seed.wrapping_add(i)) % 2000) } else { scalar(seed ^ i) })
                .collect();
            prop_assert_eq!(table.msm(&s), best_multiexp(&s, &g));
        }
    }
}
