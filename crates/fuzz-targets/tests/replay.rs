//! Every fuzz target on stable: the seeds in `fuzz/corpus/<target>/` (crashes found by fuzzing
//! are kept there too), then deterministic mutations of them. `cargo +nightly fuzz run` explores
//! far more; this keeps each target exercised by the ordinary `cargo test`.
//!
//! `HIBANA_FUZZ_MUTATIONS` sets the mutations per target (default 5000). The seeds are
//! written by `cargo test -p hibana-fuzz-targets --test replay -- --ignored write_seeds`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use hibana_consensus::bft::{
    BlockHash, BorshCodec, ConsensusSignature, Ed25519Signer, Height, HibanaContext, Part,
    ProposalInit, ValidatorAddress,
};
use hibana_fuzz_targets::{CHAIN_ID, TARGETS, attacker_key, proof_model};
use hibana_types::{
    Amount, Block, BlockHeader, Bond, Hash, Message, RegisterZkModel, SecretKey, SignedTransaction,
    SubmitZkInference, Transaction, Transfer, encode,
};
use hibana_zkml::InferenceProof;
use malachitebft_app_channel::app::{
    streaming::{StreamContent, StreamId, StreamMessage},
    types::{
        SignedConsensusMsg,
        codec::Codec,
        core::{CommitCertificate, Context as _, NilOrVal, Round},
    },
};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// The corpus files of `target`, crashes found by fuzzing (`crash-*`) included if `crashes`.
fn corpus_files(target: &str, crashes: bool) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus(target))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            crashes
                || !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("crash-")
        })
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Every corpus file of `target`.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    corpus_files(target, true)
}

/// The corpus files of `target` written from real values.
fn valid_seeds(target: &str) -> Vec<Vec<u8>> {
    corpus_files(target, false)
}

/// xorshift64*: a fixed sequence, so a failure here fails the same way every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four byte-level edits of a seed: bit flips, random and boundary bytes, large length
/// prefixes, insertions, deletions, truncation, duplication and splices with another seed.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(b.len());
        match rng.below(9) {
            0 if !b.is_empty() => b[at] ^= 1 << rng.below(8),
            1 if !b.is_empty() => b[at] = rng.next() as u8,
            2 if !b.is_empty() => b[at] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5)],
            3 => {
                let v = [u32::MAX, 1 << 31, 1 << 24, 65_536][rng.below(4)].to_le_bytes();
                let end = (at + 4).min(b.len());
                b[at..end].copy_from_slice(&v[..end - at]);
            }
            4 => b.insert(at.min(b.len()), rng.next() as u8),
            5 if !b.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            6 => b.truncate(at),
            7 if !b.is_empty() => {
                let end = (at + 1 + rng.below(32)).min(b.len());
                let chunk = b[at..end].to_vec();
                b.splice(at..at, chunk);
            }
            _ => {
                let from = rng.below(other.len());
                b.truncate(at);
                b.extend_from_slice(&other[from..]);
            }
        }
    }
    b
}

#[test]
fn every_target_survives_its_seeds_and_their_mutations() {
    let per_target: usize = std::env::var("HIBANA_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    for &(name, target) in TARGETS {
        let start = Instant::now();
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seed");
        for seed in &seeds {
            target(seed);
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        for i in 0..per_target {
            let seed = &seeds[i % seeds.len()];
            let other = &seeds[rng.below(seeds.len())];
            target(&mutate(&mut rng, seed, other));
        }
        eprintln!(
            "{name}: {} seeds and {per_target} mutations in {:.2?}",
            seeds.len(),
            start.elapsed()
        );
    }
}

/// The seeds reach past the decoders: they are the real thing, not just bytes.
#[test]
fn seeds_are_valid_inputs() {
    for seed in valid_seeds("tx") {
        let tx: SignedTransaction = hibana_types::decode(&seed).unwrap();
        tx.verify_signature().unwrap();
    }
    for seed in valid_seeds("block") {
        hibana_types::decode::<Block>(&seed).unwrap();
    }
    for seed in valid_seeds("zkm") {
        hibana_zkml::ZkModel::from_bytes(&seed).unwrap();
    }
    for seed in valid_seeds("proof")
        .iter()
        .filter(|s| s.starts_with(b"HZKP"))
    {
        proof_model().verify_file(seed).unwrap();
    }
    for seed in valid_seeds("gguf") {
        hibana_ai::gguf::read_header(&mut seed.as_slice()).unwrap();
    }
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../zkml/testdata")
            .join(name),
    )
    .unwrap()
}

fn signed(key: &SecretKey, nonce: u64, messages: Vec<Message>) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN_ID.into(),
        signer: key.public_key(),
        nonce,
        fee: Amount(1_000),
        messages,
    }
    .sign(key)
}

fn gguf_string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

fn gguf_header(pairs: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&12u64.to_le_bytes());
    out.extend_from_slice(&(pairs.len() as u64).to_le_bytes());
    for (key, kind, value) in pairs {
        out.extend(gguf_string(key));
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Writes the seed corpus from real values (run by hand when a format changes).
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seeds() {
    let key = attacker_key();
    let other = SecretKey::from_bytes([9; 32]);

    // A real STARK model, and real proofs with a private and a public input.
    let verifier = proof_model();
    let zkm = verifier.zkm().to_bytes().unwrap();
    let input: serde_json::Value =
        serde_json::from_slice(&testdata("logistic_16_input.json")).unwrap();
    let input: Vec<f32> = serde_json::from_value(input["input"].clone()).unwrap();
    let prover = verifier.zkm().prover().unwrap();
    // One proof only: a STARK proof is ~150 KB, and a private input differs from a public one
    // in a few bytes the fuzzer finds.
    let public = prover.prove(&input, true).unwrap().to_bytes().unwrap();
    write("zkm", "logistic_16_stark.zkm", &zkm);
    write("zkm", "credit_v2_halo2.zkm", &testdata("credit_v2.zkm"));
    write("proof", "logistic_16_public.proof", &public);
    assert!(InferenceProof::from_bytes(&public).is_ok());

    // Transactions: a transfer, a bond, a model registration and a proof submission.
    let transfer = signed(
        &key,
        0,
        vec![Message::Transfer(Transfer {
            to: other.public_key().address(),
            amount: Amount(5),
        })],
    );
    let txs = [
        ("transfer", transfer.clone()),
        (
            "bond",
            signed(
                &key,
                1,
                vec![Message::Bond(Bond {
                    validator: other.public_key().address(),
                    amount: Amount(1_000_000),
                })],
            ),
        ),
        (
            "register_zk_model",
            signed(
                &key,
                2,
                vec![Message::RegisterZkModel(RegisterZkModel {
                    zkm: zkm.clone(),
                })],
            ),
        ),
        (
            "submit_zk_inference",
            signed(
                &key,
                3,
                vec![Message::SubmitZkInference(SubmitZkInference {
                    zkm: zkm.clone(),
                    proof: public.clone(),
                })],
            ),
        ),
    ];
    for (name, tx) in &txs {
        write("tx", &format!("{name}.bin"), &encode(tx));
    }

    // A block of two transfers, and an empty one.
    let header = BlockHeader {
        chain_id: CHAIN_ID.into(),
        height: 2,
        parent_hash: Hash::digest(b"parent"),
        time_ms: 1_700_000_000_000,
        proposer: other.public_key().address(),
        tx_root: Hash::digest(b"txs"),
        state_root: Hash::digest(b"state"),
        app_hash: Hash::digest(b"app"),
    };
    let mut block = Block {
        header: header.clone(),
        txs: vec![transfer.clone(), txs[1].1.clone()],
    };
    block.header.tx_root = block.compute_tx_root();
    write("block", "two_transfers.bin", &encode(&block));
    let empty = Block {
        header: header.clone(),
        txs: vec![],
    };
    write("block", "empty.bin", &encode(&empty));

    // Consensus: a signed vote, stream messages, a commit certificate, a sync request, and a
    // complete proposal stream (kind byte first, as `hibana_fuzz_targets::consensus` reads it).
    let codec = BorshCodec;
    let signer = Ed25519Signer::new(other.clone(), CHAIN_ID);
    let vote = HibanaContext.new_precommit(
        Height(2),
        Round::new(0),
        NilOrVal::Val(BlockHash(block.hash())),
        ValidatorAddress(other.public_key().address()),
    );
    let signed_vote =
        malachitebft_app_channel::app::types::core::SigningProvider::sign_vote(&signer, vote);
    let with_kind = |kind: u8, bytes: &[u8]| [&[kind][..], bytes].concat();
    let msg = SignedConsensusMsg::Vote(signed_vote.clone());
    let bytes = Codec::<SignedConsensusMsg<HibanaContext>>::encode(&codec, &msg).unwrap();
    write("consensus", "0_vote.bin", &with_kind(0, &bytes));
    let init = ProposalInit {
        height: Height(2),
        round: Round::new(0),
        valid_round: Round::Nil,
        proposer: ValidatorAddress(other.public_key().address()),
        header: block.header.clone(),
        chunks: 1,
        signature: ConsensusSignature([0; 64]),
    };
    let parts = [
        Part::Init(Box::new(init)),
        Part::BlockTxs(block.txs.clone()),
    ];
    let id = StreamId::new(bytes::Bytes::from_static(b"stream"));
    let mut stream: Vec<(u8, StreamMessage<Part>)> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                1,
                StreamMessage::new(id.clone(), i as u64, StreamContent::Data(p.clone())),
            )
        })
        .collect();
    stream.push((1, StreamMessage::new(id.clone(), 2, StreamContent::Fin)));
    let part = Codec::<Part>::encode(&codec, &Part::Txs(vec![transfer.clone()])).unwrap();
    write("consensus", "2_txs_part.bin", &with_kind(2, &part));
    for (i, (_, msg)) in stream.iter().enumerate() {
        let bytes = Codec::<StreamMessage<Part>>::encode(&codec, msg).unwrap();
        write(
            "consensus",
            &format!("3_stream_{i}.bin"),
            &with_kind(3, &bytes),
        );
    }
    let certificate = CommitCertificate::<HibanaContext>::new(
        Height(2),
        Round::new(0),
        BlockHash(block.hash()),
        vec![signed_vote],
    );
    let bytes = Codec::<CommitCertificate<HibanaContext>>::encode(&codec, &certificate).unwrap();
    write("consensus", "7_certificate.bin", &with_kind(7, &bytes));
    write(
        "consensus",
        "9_complete_stream.bin",
        &with_kind(9, &borsh::to_vec(&stream).unwrap()),
    );

    // JSON-RPC bodies: reads, a submission, an invalid one, a batch.
    let tx_hex = hex_encode(&encode(&transfer));
    let address = key.public_key().address();
    let bodies = [
        (
            "status",
            r#"{"jsonrpc":"2.0","id":1,"method":"chain_status","params":[]}"#.to_string(),
        ),
        (
            "block",
            r#"{"jsonrpc":"2.0","id":2,"method":"chain_getBlock","params":[null]}"#.into(),
        ),
        (
            "account",
            format!(
                r#"{{"jsonrpc":"2.0","id":3,"method":"state_getAccount","params":["{address}"]}}"#
            ),
        ),
        (
            "submit",
            format!(r#"{{"jsonrpc":"2.0","id":4,"method":"tx_submit","params":["{tx_hex}"]}}"#),
        ),
        (
            "batch",
            format!(
                r#"[{{"jsonrpc":"2.0","id":5,"method":"tx_status","params":["{}"]}},{{"jsonrpc":"2.0","id":6,"method":"subnet_list","params":[]}},{{"jsonrpc":"2.0","id":7,"method":"chain_getAccountTxs","params":["{address}",5]}}]"#,
                transfer.hash()
            ),
        ),
        (
            "zk",
            r#"{"jsonrpc":"2.0","id":8,"method":"zk_getModel","params":["00"]}"#.into(),
        ),
    ];
    for (name, body) in &bodies {
        write("rpc", &format!("{name}.json"), body.as_bytes());
    }

    // ONNX models the zkml tests use (the small ones).
    for name in ["logistic_16.onnx", "credit_mlp.onnx", "digits_cnn.onnx"] {
        write("onnx", name, &testdata(name));
    }

    // GGUF headers in the shape of the catalog's models (scalars, a vocabulary, nesting).
    let mut tokens = 8u32.to_le_bytes().to_vec();
    tokens.extend_from_slice(&3u64.to_le_bytes());
    for t in ["<s>", "</s>", "hello"] {
        tokens.extend(gguf_string(t));
    }
    let mut scores = 6u32.to_le_bytes().to_vec();
    scores.extend_from_slice(&2u64.to_le_bytes());
    scores.extend_from_slice(&0.5f32.to_le_bytes());
    scores.extend_from_slice(&(-1.0f32).to_le_bytes());
    let mut nested = 9u32.to_le_bytes().to_vec();
    nested.extend_from_slice(&1u64.to_le_bytes());
    nested.extend_from_slice(&4u32.to_le_bytes());
    nested.extend_from_slice(&1u64.to_le_bytes());
    nested.extend_from_slice(&7u32.to_le_bytes());
    write(
        "gguf",
        "llama_like.gguf",
        &gguf_header(&[
            ("general.architecture", 8, gguf_string("llama")),
            ("general.name", 8, gguf_string("tiny")),
            ("llama.context_length", 4, 2048u32.to_le_bytes().to_vec()),
            ("llama.rope.freq_base", 6, 10_000f32.to_le_bytes().to_vec()),
            ("general.file_type", 10, 3u64.to_le_bytes().to_vec()),
            ("tokenizer.ggml.add_bos_token", 7, vec![1]),
            ("tokenizer.ggml.tokens", 9, tokens),
            ("tokenizer.ggml.scores", 9, scores),
            ("x.nested", 9, nested),
            ("x.i8", 1, vec![0xff]),
            ("x.u16", 2, 7u16.to_le_bytes().to_vec()),
            ("x.i16", 3, (-7i16).to_le_bytes().to_vec()),
            ("x.i32", 5, (-7i32).to_le_bytes().to_vec()),
            ("x.i64", 11, (-7i64).to_le_bytes().to_vec()),
            ("x.f64", 12, 0.25f64.to_le_bytes().to_vec()),
            ("x.u8", 0, vec![3]),
        ]),
    );
    write("gguf", "empty_v3.gguf", &gguf_header(&[]));

    // Solidity from the audit corpus: small contracts covering the parser's constructs.
    let audit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/corpus");
    for file in [
        "access-control/txorigin_05_fixed.sol",
        "denial-of-service/king_04.sol",
        "bad-randomness/coinflip_07.sol",
        "access-control/withdraw_07.sol",
        "unchecked-calls/proxy_04_fixed.sol",
        "other/locked_08.sol",
        "access-control/assembly_slot_08.sol",
    ] {
        let name = file.replace('/', "_");
        write("solidity", &name, &std::fs::read(audit.join(file)).unwrap());
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
