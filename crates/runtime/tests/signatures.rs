#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A block's batched signature checks (ed25519-zebra on curve25519-dalek) reach the same verdict
//! on every transaction as the one-by-one check the mempool runs (ed25519-consensus): on valid
//! and damaged signatures, invalid keys, and the ZIP-215 edge cases (small-order keys and
//! commitments, non-canonical point encodings, non-canonical scalars), alone and mixed in
//! batches. A split here would let one validator accept a block that another rejects.

use curve25519_dalek::constants::EIGHT_TORSION;
use hibana_runtime::{Params, Rejection, check_stateless, check_stateless_batch};
use hibana_types::{
    Address, Amount, Message, PublicKey, SecretKey, Signature, SignedTransaction, Transaction,
    Transfer,
};
use proptest::prelude::*;

const CHAIN: &str = "sig-test";

/// The group order ℓ, little-endian: `S = ℓ` is a non-canonical encoding of zero.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn tx(signer: PublicKey, nonce: u64) -> Transaction {
    Transaction {
        chain_id: CHAIN.into(),
        signer,
        nonce,
        fee: Amount(1_000),
        messages: vec![Message::Transfer(Transfer {
            to: Address([7; 20]),
            amount: Amount(1),
        })],
    }
}

/// The encodings of the eight small-order points: canonical ones, and the non-canonical ones
/// ZIP-215 accepts (a y coordinate of p or p + 1, and a sign bit set on x = 0).
fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut all: Vec<[u8; 32]> = EIGHT_TORSION.iter().map(|p| p.compress().0).collect();
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut p_plus_one = p;
    p_plus_one[0] = 0xee;
    for y in [p, p_plus_one] {
        let mut negative = y;
        negative[31] |= 0x80;
        all.extend([y, negative]);
    }
    for canonical in EIGHT_TORSION.iter().map(|p| p.compress().0) {
        // x = 0 (y = ±1): the sign bit set is "negative zero".
        if canonical[1..31].iter().all(|&b| b == 0 || b == 0xff) && canonical[31] & 0x80 == 0 {
            let mut negative = canonical;
            negative[31] |= 0x80;
            all.push(negative);
        }
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// One verdict per transaction, single and batched, as (accepted, bad-signature rejection).
fn verdicts(txs: &[SignedTransaction]) -> (Vec<bool>, Vec<bool>) {
    let params = Params::default();
    let single: Vec<bool> = txs
        .iter()
        .map(|t| match check_stateless(t, CHAIN, &params) {
            Ok(_) => true,
            Err(Rejection::BadSignature(_)) => false,
            Err(other) => panic!("unexpected rejection: {other}"),
        })
        .collect();
    let batch: Vec<bool> = check_stateless_batch(txs.to_vec(), CHAIN, &params)
        .into_iter()
        .map(|r| match r {
            Ok(_) => true,
            Err(Rejection::BadSignature(_)) => false,
            Err(other) => panic!("unexpected rejection: {other}"),
        })
        .collect();
    (single, batch)
}

#[test]
fn small_order_keys_and_commitments_get_the_same_verdicts() {
    let encodings = small_order_encodings();
    assert!(
        encodings.len() >= 14,
        "{} small-order encodings",
        encodings.len()
    );
    let mut txs = Vec::new();
    for (i, a) in encodings.iter().enumerate() {
        for r in &encodings {
            for s in [[0u8; 32], ELL] {
                let mut signature = [0u8; 64];
                signature[..32].copy_from_slice(r);
                signature[32..].copy_from_slice(&s);
                txs.push(SignedTransaction {
                    tx: tx(PublicKey(*a), i as u64),
                    signature: Signature(signature),
                });
            }
        }
    }
    // One valid signature among them, so a batch is not all edge cases.
    let key = SecretKey::generate();
    txs.push(tx(key.public_key(), 0).sign(&key));
    let (single, batch) = verdicts(&txs);
    assert_eq!(single, batch);
    // ZIP-215: S = 0 with small-order A and R is valid under the cofactored equation, and
    // S = ℓ is refused as a non-canonical scalar.
    let accepted = single.iter().filter(|&&v| v).count();
    assert_eq!(accepted, encodings.len() * encodings.len() + 1);
    // Each one alone in its own batch, too: a batch that fails falls back to single checks, so
    // what must never happen is a batch accepting what the single check refuses.
    for t in &txs {
        let (single, batch) = verdicts(std::slice::from_ref(t));
        assert_eq!(single, batch);
    }
}

#[test]
fn a_checked_transaction_keeps_the_hash_and_size_of_its_encoding() {
    // The checks derive the encoding from the signed bytes instead of encoding twice.
    let params = Params::default();
    for seed in 0..8u64 {
        let tx = make(seed, &Damage::None);
        let encoded = hibana_types::encode(&tx);
        let single = check_stateless(&tx, CHAIN, &params).unwrap();
        assert_eq!((single.hash(), single.size()), (tx.hash(), encoded.len()));
        let batch = check_stateless_batch(vec![tx.clone()], CHAIN, &params)
            .pop()
            .unwrap()
            .unwrap();
        assert_eq!((batch.hash(), batch.size()), (tx.hash(), encoded.len()));
    }
}

/// How a generated transaction's signature is damaged, if at all.
#[derive(Debug, Clone)]
enum Damage {
    None,
    /// A bit of the signature flipped.
    Signature(usize),
    /// A bit of the signer's key flipped (often not a point at all).
    Key(usize),
    /// A random 32-byte key with the genuine signature.
    RandomKey([u8; 32]),
    /// Signed by another key.
    OtherSigner,
    /// The nonce changed after signing.
    Message,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => Just(Damage::None),
        1 => (0usize..512).prop_map(Damage::Signature),
        1 => (0usize..256).prop_map(Damage::Key),
        1 => any::<[u8; 32]>().prop_map(Damage::RandomKey),
        1 => Just(Damage::OtherSigner),
        1 => Just(Damage::Message),
    ]
}

fn make(seed: u64, damage: &Damage) -> SignedTransaction {
    let key = SecretKey::from_bytes(*blake3::hash(&seed.to_le_bytes()).as_bytes());
    let mut signed = tx(key.public_key(), seed).sign(&key);
    match damage {
        Damage::None => {}
        Damage::Signature(bit) => signed.signature.0[bit / 8] ^= 1 << (bit % 8),
        Damage::Key(bit) => signed.tx.signer.0[bit / 8] ^= 1 << (bit % 8),
        Damage::RandomKey(k) => signed.tx.signer = PublicKey(*k),
        Damage::OtherSigner => {
            let other = SecretKey::from_bytes([9; 32]);
            signed.signature = tx(key.public_key(), seed).sign(&other).signature;
        }
        Damage::Message => signed.tx.nonce += 1,
    }
    signed
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batches_agree_with_single_checks(
        cases in prop::collection::vec((any::<u64>(), damage()), 1..300)
    ) {
        let txs: Vec<SignedTransaction> = cases.iter().map(|(s, d)| make(*s, d)).collect();
        let (single, batch) = verdicts(&txs);
        prop_assert_eq!(&single, &batch);
        for ((_, d), ok) in cases.iter().zip(&single) {
            if matches!(d, Damage::None) {
                prop_assert!(*ok, "a genuine signature was refused");
            }
        }
    }
}
