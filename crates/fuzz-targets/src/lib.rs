//! The bodies of Hibana's fuzz targets: one function per surface where untrusted bytes are
//! decoded, each calling the entry point those bytes really reach.
//!
//! The same functions run in two places: the cargo-fuzz binaries in `fuzz/` (nightly, libFuzzer,
//! sanitizers) call them with generated inputs, and `cargo test -p hibana-fuzz-targets` (stable,
//! part of the workspace tests) replays every seed in `fuzz/corpus/<target>/` and a few thousand
//! deterministic mutations of them. A target returns normally for any input; a panic, a hang or
//! runaway memory is the bug a fuzzer reports.
//!
//! | target | bytes | entry point |
//! |---|---|---|
//! | [`tx`] | a signed transaction (RPC `tx_submit`, gossip) | `decode`, `check_stateless` |
//! | [`block`] | a block (sync) | `decode`, hashes, `check_stateless` of its transactions |
//! | [`consensus`] | a consensus, liveness, sync or WAL message; proposal streams | [`hibana_consensus::bft::BorshCodec`], stream reassembly |
//! | [`rpc`] | a JSON-RPC request body | the node's RPC methods over a real chain |
//! | [`zkm`] | a `.zkm` model file | `ZkModel::from_bytes` |
//! | [`proof`] | a proof file | `InferenceProof::from_bytes`, `Verifier::verify` |
//! | [`onnx`] | an ONNX model | `onnx::import`, evaluation |
//! | [`gguf`] | a GGUF model's header | [`hibana_ai::gguf::read_header`] (the catalog's check) |
//! | [`solidity`] | a Solidity source file | [`hibana_audit::analyse_bytes`] |
//! | [`training`] | a training dataset upload, or a checkpoint from the blob store | [`hibana_train::Dataset::from_jsonl`], [`hibana_train::parse_checkpoint`], one training step |
//!
//! ```
//! hibana_fuzz_targets::tx(&[0xff; 8]); // not a transaction: refused, no panic
//! ```
#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hibana_consensus::{
    Chain,
    bft::{BorshCodec, HibanaContext, Part},
};
use hibana_runtime::{Genesis, GenesisAccount, GenesisValidator, Params, check_stateless};
use hibana_types::{Amount, Block, SecretKey, SignedTransaction, decode, encode};
use hibana_zkml::{InferenceProof, Verifier, ZkModel};
use malachitebft_app_channel::app::{
    consensus::LivenessMsg,
    types::{
        ProposedValue, SignedConsensusMsg,
        codec::Codec,
        core::CommitCertificate,
        streaming::StreamMessage,
        sync::{Request, Response, Status},
    },
};

/// A fuzz target's body: returns for any input.
pub type Target = fn(&[u8]);

/// Every target, by the name of its cargo-fuzz binary and corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("tx", tx),
    ("block", block),
    ("consensus", consensus),
    ("rpc", rpc),
    ("zkm", zkm),
    ("proof", proof),
    ("onnx", onnx),
    ("gguf", gguf),
    ("solidity", solidity),
    ("training", training),
];

/// The chain id the seeds and the RPC target's chain use.
pub const CHAIN_ID: &str = "fuzz";

/// The key the targets re-sign decoded transactions with: an attacker signs whatever it likes
/// with its own key, so the checks after the signature are reachable by anyone.
pub fn attacker_key() -> SecretKey {
    SecretKey::from_bytes([7; 32])
}

/// Checks a decoded transaction as a mempool does (stateless part), then signed by
/// [`attacker_key`] so the message checks after the signature run too.
fn check_tx(tx: &SignedTransaction) {
    let params = Params::default();
    let _ = check_stateless(tx, &tx.tx.chain_id, &params);
    let mut resigned = tx.tx.clone();
    let key = attacker_key();
    resigned.signer = key.public_key();
    let resigned = resigned.sign(&key);
    let _ = check_stateless(&resigned, &resigned.tx.chain_id, &params);
}

/// A signed transaction as a peer or an RPC client sends it: decode, then the stateless checks
/// (format, signature, each message's checks, proofs included). Decoding is canonical: what
/// decodes encodes back to the same bytes, so one transaction has one hash.
pub fn tx(data: &[u8]) {
    if let Ok(tx) = decode::<SignedTransaction>(data) {
        assert_eq!(encode(&tx), data, "a transaction has two encodings");
        let _ = tx.hash();
        check_tx(&tx);
    }
}

/// Transactions of a fuzzed block that are checked (the decode covers all of them).
const BLOCK_TXS_CHECKED: usize = 8;

/// A block as sync delivers it: decode (canonical), header hash, transaction root, and the
/// stateless checks of its transactions.
pub fn block(data: &[u8]) {
    if let Ok(block) = decode::<Block>(data) {
        assert_eq!(encode(&block), data, "a block has two encodings");
        let _ = block.hash();
        let _ = block.compute_tx_root();
        for tx in block.txs.iter().take(BLOCK_TXS_CHECKED) {
            check_tx(tx);
        }
    }
}

/// Messages a fuzzed proposal-stream input may hold.
const MAX_STREAM_MESSAGES: usize = 64;

/// What the node's codec decodes from peers and its WAL, chosen by the first byte: consensus
/// messages, liveness messages, proposal parts and their stream messages, sync status, requests
/// and responses, commit certificates (stored and served to syncing peers), and WAL values.
/// Kind 9 decodes a list of `(peer, stream message)` pairs and puts their proposal streams
/// together as a validator does.
pub fn consensus(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let bytes = Bytes::copy_from_slice(rest);
    let codec = BorshCodec;
    match kind % 10 {
        0 => drop(Codec::<SignedConsensusMsg<HibanaContext>>::decode(
            &codec, bytes,
        )),
        1 => drop(Codec::<LivenessMsg<HibanaContext>>::decode(&codec, bytes)),
        2 => drop(Codec::<Part>::decode(&codec, bytes)),
        3 => drop(Codec::<StreamMessage<Part>>::decode(&codec, bytes)),
        4 => drop(Codec::<Status<HibanaContext>>::decode(&codec, bytes)),
        5 => drop(Codec::<Request<HibanaContext>>::decode(&codec, bytes)),
        6 => drop(Codec::<Response<HibanaContext>>::decode(&codec, bytes)),
        7 => drop(Codec::<CommitCertificate<HibanaContext>>::decode(
            &codec, bytes,
        )),
        8 => drop(Codec::<ProposedValue<HibanaContext>>::decode(&codec, bytes)),
        _ => {
            if let Ok(messages) = borsh::from_slice::<Vec<(u8, StreamMessage<Part>)>>(rest) {
                let max_txs = Params::default().max_block_txs as usize;
                let messages = messages.into_iter().take(MAX_STREAM_MESSAGES);
                let _ = hibana_consensus::bft::reassemble_proposal_streams(max_txs, messages);
            }
        }
    }
}

/// Requests of one fuzzed JSON-RPC batch that are answered.
const MAX_BATCH: usize = 16;

/// A chain for the RPC target: genesis with one validator and one funded account (the
/// attacker's), in a temporary folder kept for the life of the process.
fn rpc_chain() -> &'static (tempfile::TempDir, Arc<Chain>) {
    static CHAIN: OnceLock<(tempfile::TempDir, Arc<Chain>)> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder for the fuzzed chain");
        let store = Arc::new(
            hibana_store::Store::open(&dir.path().join("chain.redb")).expect("open the store"),
        );
        store
            .init_genesis(&Genesis {
                market: Default::default(),
                chain_id: CHAIN_ID.into(),
                genesis_time_ms: 1,
                params: Params::default(),
                accounts: vec![GenesisAccount {
                    address: attacker_key().public_key().address(),
                    balance: Amount(1 << 60),
                }],
                validators: vec![GenesisValidator {
                    public_key: SecretKey::from_bytes([1; 32]).public_key(),
                    stake: Amount(1 << 40),
                }],
            })
            .expect("genesis");
        let chain = Chain::new(store, 1000).expect("the chain");
        (dir, Arc::new(chain))
    })
}

/// A JSON-RPC request body as the node's server receives it: each request (or each of a
/// batch's first few) goes through jsonrpsee's request parsing, parameter deserialisation and
/// the node's method over a real chain (`tx_submit` reaches the mempool's admission).
pub fn rpc(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let requests: Vec<String> =
        match serde_json::from_str::<Vec<&serde_json::value::RawValue>>(body) {
            Ok(batch) => batch
                .into_iter()
                .take(MAX_BATCH)
                .map(|r| r.get().to_string())
                .collect(),
            Err(_) => vec![body.to_string()],
        };
    let module = {
        static MODULE: OnceLock<jsonrpsee::RpcModule<()>> = OnceLock::new();
        MODULE.get_or_init(|| {
            hibana_rpc_server::rpc_module(rpc_chain().1.clone()).expect("the RPC methods")
        })
    };
    // A runtime per input: subscriptions spawn tasks that would otherwise outlive the input.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        for request in &requests {
            let _ = module.raw_json_request(request, 1).await;
        }
    });
}

/// Re-seals `data` (a version and a body) as a `.zkm` or proof file with a valid checksum, so
/// mutations reach the body decoder instead of stopping at the checksum.
fn reseal(magic: &[u8; 4], data: &[u8]) -> Option<Vec<u8>> {
    let (version, body) = data.split_at_checked(2)?;
    let mut out = magic.to_vec();
    out.extend_from_slice(version);
    out.extend_from_slice(body);
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    Some(out)
}

/// The input as a file, and the input re-sealed after its 6-byte header with a valid checksum
/// (so both the file checks and the body decoder are fuzzed).
fn as_file_and_body(magic: &[u8; 4], data: &[u8]) -> Vec<Vec<u8>> {
    let mut inputs = vec![data.to_vec()];
    if data.len() >= 38 && data.starts_with(magic) {
        if let Some(sealed) = reseal(magic, &data[4..data.len() - 32]) {
            inputs.push(sealed);
        }
    } else if let Some(sealed) = reseal(magic, data) {
        inputs.push(sealed);
    }
    inputs
}

/// A `.zkm` model file as a `RegisterZkModel` or `SubmitZkInference` carries it: the format
/// checks, the body decode and the model's validation.
pub fn zkm(data: &[u8]) {
    for file in as_file_and_body(b"HZKM", data) {
        if let Ok(zkm) = ZkModel::from_bytes(&file) {
            let _ = zkm.commitment();
            let _ = zkm.layout_description();
        }
    }
}

/// The `.zkm` the proof target verifies against: a small STARK model (logistic regression over
/// 16 inputs) compiled once.
pub fn proof_model() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let onnx = include_bytes!("../../zkml/testdata/logistic_16.onnx");
        let calibration = serde_json::from_slice(include_bytes!(
            "../../zkml/testdata/logistic_16_calibration.json"
        ))
        .expect("the calibration");
        ZkModel::compile(onnx, &calibration)
            .expect("the model compiles")
            .verifier()
            .expect("its verifier")
    })
}

/// A proof file as a `SubmitZkInference` carries it: decode, then verification against a real
/// model (the fuzzed proof's model commitment is set to that model's, so verification runs past
/// the commitment check).
pub fn proof(data: &[u8]) {
    let verifier = proof_model();
    for file in as_file_and_body(b"HZKP", data) {
        if let Ok(mut proof) = InferenceProof::from_bytes(&file) {
            let _ = verifier.verify(&proof);
            proof.model = verifier.zkm().commitment();
            let _ = verifier.verify(&proof);
        }
    }
}

/// Largest imported model input the ONNX target evaluates (larger ones are only imported).
const MAX_EVAL_INPUT: usize = 4096;

/// An ONNX model as `hibana zk compile` reads it: import, then an evaluation on a zero input.
pub fn onnx(data: &[u8]) {
    if let Ok(model) = hibana_zkml::onnx::import(data)
        && model.input_len <= MAX_EVAL_INPUT
    {
        let _ = model.eval(&vec![0.0; model.input_len]);
    }
}

/// A GGUF file's header as the model catalog reads it before llama.cpp may open the file.
pub fn gguf(data: &[u8]) {
    let _ = hibana_ai::gguf::read_header(&mut &data[..]);
}

/// A dataset a client uploads to a provider (JSON lines, as the provider reads it), and the same
/// bytes as a checkpoint a provider fetches from the node's blob store; whatever decodes is
/// trained one step on, as a provider and a dispute would.
pub fn training(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(set) = hibana_train::Dataset::from_jsonl(text)
    {
        let spec = hibana_train::TrainingSpec {
            dataset_root: set.root(),
            rows: set.len() as u64,
            features: set.features() as u32,
            hidden: vec![3],
            classes: set.classes().clamp(2, 16),
            learning_rate: 1 << 15,
            batch: 4,
            steps: 2,
            seed: 1,
            checkpoint_every: 1,
        };
        if set.check_spec(&spec).is_ok()
            && let Ok(mut t) = hibana_train::Trainer::new(&spec)
        {
            let _ = t.next_step(&set);
            let rows: Vec<_> = hibana_train::batch_indices(&spec, 2)
                .iter()
                .filter_map(|&i| set.proven_row(i))
                .collect();
            let _ = hibana_train::check_rows(&spec, 2, &rows);
        }
    }
    if let Ok((step, params)) = hibana_train::parse_checkpoint(data) {
        let _ = hibana_train::state_hash(step, &params);
    }
}

/// A Solidity source file as `hibana audit` and the audit role analyse it (bytes that are not
/// UTF-8 included).
pub fn solidity(data: &[u8]) {
    let _ = hibana_audit::analyse_bytes("fuzz.sol", data);
}
