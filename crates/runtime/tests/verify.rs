#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The verify component: registering a ZK model and submitting proved inferences, through the
//! same entry points a block uses (check_stateless, deliver_tx).

use std::{path::Path, sync::OnceLock};

use hibana_runtime::{
    BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState, Rejection, verify,
};
use hibana_types::{
    Amount, Message, Receipt, RegisterZkModel, SecretKey, SignedTransaction, SubmitZkInference,
    Transaction,
};
use hibana_zkml::{Calibration, InferenceProof, Prover, ZkModel};

const CHAIN: &str = "zk-test";

/// The credit MLP compiled for `system`.
fn credit(system: hibana_zkml::ProofSystem) -> ZkModel {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../zkml/testdata");
    let onnx = std::fs::read(dir.join("credit_mlp.onnx")).unwrap();
    let cal: Calibration =
        serde_json::from_slice(&std::fs::read(dir.join("credit_calibration.json")).unwrap())
            .unwrap();
    ZkModel::compile_for(&onnx, &cal, system).unwrap()
}

/// The credit MLP for the default system, its `.zkm` and its prover.
fn prover() -> &'static (Vec<u8>, Prover) {
    static P: OnceLock<(Vec<u8>, Prover)> = OnceLock::new();
    P.get_or_init(|| {
        let zkm = credit(hibana_zkml::ProofSystem::default());
        (zkm.to_bytes().unwrap(), zkm.prover().unwrap())
    })
}

fn input(shift: f32) -> Vec<f32> {
    (0..16).map(|i| (i as f32 * 0.37 + shift).sin()).collect()
}

struct Chain {
    state: MemState,
    alice: SecretKey,
    proposer: SecretKey,
    nonce: u64,
    height: u64,
}

impl Chain {
    fn new() -> Self {
        let alice = SecretKey::generate();
        let proposer = SecretKey::generate();
        let genesis = Genesis {
            market: Default::default(),
            chain_id: CHAIN.into(),
            genesis_time_ms: 0,
            params: Default::default(),
            accounts: vec![GenesisAccount {
                address: alice.public_key().address(),
                balance: Amount::from_hib(10).unwrap(),
            }],
            validators: vec![GenesisValidator {
                public_key: proposer.public_key(),
                stake: Amount::from_hib(1).unwrap(),
            }],
        };
        let mut state = MemState::default();
        hibana_runtime::init_genesis(&mut state, &genesis).unwrap();
        Chain {
            state,
            alice,
            proposer,
            nonce: 0,
            height: 0,
        }
    }

    fn tx(&self, message: Message) -> SignedTransaction {
        Transaction {
            chain_id: CHAIN.into(),
            signer: self.alice.public_key(),
            nonce: self.nonce,
            fee: Amount(1_000),
            messages: vec![message],
        }
        .sign(&self.alice)
    }

    /// Runs a transaction the way a block does: stateless checks, then delivery.
    fn run(&mut self, message: Message) -> Result<Receipt, Rejection> {
        let tx = self.tx(message);
        let tx = hibana_runtime::check_stateless(&tx, CHAIN, &Default::default())?;
        self.height += 1;
        let ctx = BlockContext {
            chain_id: CHAIN.into(),
            height: self.height,
            time_ms: self.height,
            proposer: self.proposer.public_key().address(),
        };
        let receipt = hibana_runtime::deliver_tx(&mut self.state, &ctx, &tx, 0).unwrap()?;
        // An included transaction uses its nonce, even when a message failed.
        self.nonce += 1;
        Ok(receipt)
    }

    fn balance(&self, key: &SecretKey) -> Amount {
        hibana_runtime::query_account(&self.state, &key.public_key().address())
            .unwrap()
            .balance
    }
}

fn register(chain: &mut Chain) -> Receipt {
    let (zkm, _) = prover();
    chain
        .run(Message::RegisterZkModel(RegisterZkModel {
            zkm: zkm.clone(),
        }))
        .unwrap()
}

fn submission(proof: &InferenceProof) -> Message {
    Message::SubmitZkInference(SubmitZkInference {
        zkm: prover().0.clone(),
        proof: proof.to_bytes().unwrap(),
    })
}

#[test]
fn register_then_submit_stores_the_verified_result_and_charges_by_circuit_size() {
    let mut chain = Chain::new();
    let (zkm_bytes, prover) = prover();
    let zkm = prover.verifier().zkm();
    let receipt = register(&mut chain);
    assert!(receipt.is_success(), "{:?}", receipt.outcome);
    let registered = receipt
        .events
        .iter()
        .find(|e| e.kind == "verify.model_registered")
        .unwrap();
    assert_eq!(
        registered.attribute("model"),
        Some(hex::encode(zkm.commitment()).as_str())
    );
    let record = verify::model(&chain.state, &zkm.commitment())
        .unwrap()
        .unwrap();
    assert_eq!(record.owner, chain.alice.public_key().address());
    assert_eq!(record.k, zkm.k);
    assert_eq!(record.input_shape, vec![16]);
    assert_eq!(
        verify::model_zkm(&chain.state, &zkm.commitment()).unwrap(),
        Some(zkm_bytes.clone())
    );

    let proof = prover.prove(&input(0.0), false).unwrap();
    let (alice_before, proposer_before) =
        (chain.balance(&chain.alice), chain.balance(&chain.proposer));
    let receipt = chain.run(submission(&proof)).unwrap();
    assert!(receipt.is_success(), "{:?}", receipt.outcome);
    let fee = verify::verification_fee(zkm.system, zkm.k);
    let expected = match zkm.system {
        hibana_zkml::ProofSystem::Halo2 => 10_000 + 10 * (1 << zkm.k),
        hibana_zkml::ProofSystem::Stark => 10_000 + 640 * u128::from(zkm.k),
    };
    assert_eq!(fee, Amount(expected));
    assert_eq!(
        chain.balance(&chain.alice).0,
        alice_before.0 - fee.0 - 1_000,
        "the transaction fee plus the verification fee"
    );
    assert_eq!(
        chain.balance(&chain.proposer).0,
        proposer_before.0 + fee.0 + 1_000
    );

    let event = receipt
        .events
        .iter()
        .find(|e| e.kind == "verify.inference")
        .unwrap();
    let id: [u8; 32] = hex::decode(event.attribute("id").unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let stored = verify::inference(&chain.state, &id).unwrap().unwrap();
    assert_eq!(stored.output, proof.output);
    assert_eq!(stored.model, zkm.commitment());
    assert_eq!(
        stored.input_commitment,
        proof.input_commitment(zkm).unwrap()
    );
    assert_eq!(stored.public_input, None);
    let values = zkm.model.dequantise_output(&proof.output);
    assert_eq!(stored.class as usize, zkm.model.classify(&values));
}

#[test]
fn invalid_proofs_are_rejected_statelessly() {
    let mut chain = Chain::new();
    let (_, prover) = prover();
    register(&mut chain);
    let proof = prover.prove(&input(1.0), true).unwrap();

    let mut wrong_output = proof.clone();
    wrong_output.output[1] -= 3;
    let err = chain.run(submission(&wrong_output)).unwrap_err();
    assert!(
        matches!(&err, Rejection::Malformed(m) if m.contains("proof rejected")),
        "{err}"
    );

    let mut flipped = proof.clone();
    flipped.proof[100] ^= 4;
    assert!(chain.run(submission(&flipped)).is_err());

    // The genuine proof with a byte after its end would be the same result under another id.
    let mut longer = proof.clone();
    longer.proof.push(0);
    let err = chain.run(submission(&longer)).unwrap_err();
    assert!(
        matches!(&err, Rejection::Malformed(m) if m.contains("does not verify")),
        "{err}"
    );

    let mut corrupted = proof.to_bytes().unwrap();
    corrupted[20] ^= 1;
    let err = chain
        .run(Message::SubmitZkInference(SubmitZkInference {
            zkm: prover_zkm(),
            proof: corrupted,
        }))
        .unwrap_err();
    assert!(err.to_string().contains("corrupted"), "{err}");

    // The genuine proof still goes through.
    assert!(chain.run(submission(&proof)).unwrap().is_success());
}

fn prover_zkm() -> Vec<u8> {
    prover().0.clone()
}

#[test]
fn unregistered_models_and_replays_fail() {
    let mut chain = Chain::new();
    let (_, prover) = prover();
    let proof = prover.prove(&input(2.0), false).unwrap();
    let receipt = chain.run(submission(&proof)).unwrap();
    assert!(!receipt.is_success());
    assert!(format!("{:?}", receipt.outcome).contains("not registered"));

    register(&mut chain);
    assert!(chain.run(submission(&proof)).unwrap().is_success());
    let replay = chain.run(submission(&proof)).unwrap();
    assert!(format!("{:?}", replay.outcome).contains("already submitted"));
    // Registering the same model twice fails too.
    assert!(!register(&mut chain).is_success());
}

/// A proof checked against another compilation of the registered model (here the legacy layout,
/// from a `.zkm` made before the compact one) is valid on its own, but the chain takes only the
/// registered `.zkm`: its layout decides what the input commitment means.
#[test]
fn a_submission_must_carry_the_registered_zkm() {
    let mut chain = Chain::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../zkml/testdata");
    let legacy_zkm = std::fs::read(dir.join("credit_v2.zkm")).unwrap();
    let legacy_proof = std::fs::read(dir.join("credit_v2_private.proof")).unwrap();
    let legacy = ZkModel::from_bytes(&legacy_zkm).unwrap();
    assert_eq!(
        legacy.commitment(),
        prover().1.verifier().zkm().commitment()
    );
    assert_ne!(legacy_zkm, prover().0);
    register(&mut chain);
    let message = Message::SubmitZkInference(SubmitZkInference {
        zkm: legacy_zkm,
        proof: legacy_proof,
    });
    let tx = chain.tx(message.clone());
    hibana_runtime::check_stateless(&tx, CHAIN, &Default::default()).unwrap();
    let receipt = chain.run(message).unwrap();
    assert!(!receipt.is_success());
    assert!(
        format!("{:?}", receipt.outcome).contains("differs from the one registered"),
        "{:?}",
        receipt.outcome
    );
}

/// A verdict is for the exact bytes: after the genuine proof passed, a changed output or flipped
/// proof bytes are checked and refused, and the genuine proof gets the same result again.
#[test]
fn verdicts_are_for_the_exact_bytes() {
    let (zkm, prover) = prover();
    let proof = prover.prove(&input(3.0), false).unwrap();
    let message = |proof: &InferenceProof| SubmitZkInference {
        zkm: zkm.clone(),
        proof: proof.to_bytes().unwrap(),
    };
    let first = verify::verify_submission(&message(&proof))
        .unwrap()
        .verified;
    let mut changed = proof.clone();
    changed.output[0] += 1;
    assert!(verify::verify_submission(&message(&changed)).is_err());
    let mut flipped = proof.clone();
    flipped.proof[64] ^= 1;
    assert!(verify::verify_submission(&message(&flipped)).is_err());
    assert_eq!(
        verify::verify_submission(&message(&proof))
            .unwrap()
            .verified,
        first
    );
}

/// A model compiled for halo2 (as every model registered before the STARK was) registers,
/// verifies and pays the per-row fee; the fee a model view shows follows its stored `.zkm`.
#[test]
fn halo2_models_still_register_verify_and_pay_by_rows() {
    let zkm = credit(hibana_zkml::ProofSystem::Halo2);
    let zkm_bytes = zkm.to_bytes().unwrap();
    let mut chain = Chain::new();
    let receipt = chain
        .run(Message::RegisterZkModel(RegisterZkModel {
            zkm: zkm_bytes.clone(),
        }))
        .unwrap();
    assert!(receipt.is_success(), "{:?}", receipt.outcome);
    let registered = receipt
        .events
        .iter()
        .find(|e| e.kind == "verify.model_registered")
        .unwrap();
    assert_eq!(registered.attribute("system"), Some("halo2"));
    let proof = zkm.prover().unwrap().prove(&input(0.3), true).unwrap();
    let before = chain.balance(&chain.alice);
    let receipt = chain
        .run(Message::SubmitZkInference(SubmitZkInference {
            zkm: zkm_bytes.clone(),
            proof: proof.to_bytes().unwrap(),
        }))
        .unwrap();
    assert!(receipt.is_success(), "{:?}", receipt.outcome);
    let fee = 10_000 + 10 * (1u128 << zkm.k);
    assert_eq!(chain.balance(&chain.alice).0, before.0 - fee - 1_000);
    assert_eq!(
        verify::registered_verification_fee(Some(&zkm_bytes), zkm.k),
        Amount(fee)
    );
    // The STARK model's view shows the STARK fee; without a readable .zkm, halo2's.
    let (stark_bytes, stark) = prover();
    let k = stark.verifier().zkm().k;
    assert_eq!(
        verify::registered_verification_fee(Some(stark_bytes), k),
        Amount(10_000 + 640 * u128::from(k))
    );
    assert_eq!(
        verify::registered_verification_fee(None, k),
        verify::verification_fee(hibana_zkml::ProofSystem::Halo2, k)
    );
}
