//! The block pipeline: admission, proposal, validation of honest and tampered blocks, commit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hibana_consensus::{
    BlockApplication, Chain, ChainError, MempoolError, TxStatus, produce_block,
};
use hibana_runtime::{Genesis, GenesisAccount, GenesisValidator, Rejection, bank};
use hibana_store::Store;
use hibana_types::{Amount, Hash, Message, SecretKey, SignedTransaction, Transaction, Transfer};

struct Net {
    _dir: tempfile::TempDir,
    chain: Chain,
    validator: SecretKey,
    alice: SecretKey,
}

fn net() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("chain.redb")).unwrap());
    let (validator, alice) = (SecretKey::generate(), SecretKey::generate());
    store
        .init_genesis(&Genesis {
            market: Default::default(),
            chain_id: "c".into(),
            genesis_time_ms: 1,
            params: Default::default(),
            accounts: vec![GenesisAccount {
                address: alice.public_key().address(),
                balance: Amount::from_hib(100).unwrap(),
            }],
            validators: vec![GenesisValidator {
                public_key: validator.public_key(),
                stake: Amount::from_hib(1).unwrap(),
            }],
        })
        .unwrap();
    let chain = Chain::new(store, 1000).unwrap();
    Net {
        _dir: dir,
        chain,
        validator,
        alice,
    }
}

fn transfer(from: &SecretKey, nonce: u64, amount: u128) -> SignedTransaction {
    Transaction {
        chain_id: "c".into(),
        signer: from.public_key(),
        nonce,
        fee: Amount(1_000),
        messages: vec![Message::Transfer(Transfer {
            to: hibana_types::Address([3; 20]),
            amount: Amount(amount),
        })],
    }
    .sign(from)
}

#[test]
fn transfers_flow_from_mempool_to_committed_receipts() {
    let n = net();
    let proposer = n.validator.public_key().address();
    let first = n.chain.submit(transfer(&n.alice, 0, 10)).unwrap();
    let second = n.chain.submit(transfer(&n.alice, 1, 20)).unwrap();
    // A transfer larger than the balance is refused with the reason, before it costs a fee.
    let too_much = transfer(&n.alice, 0, u128::MAX / 2);
    let err = n.chain.submit(too_much.clone()).unwrap_err();
    assert!(err.to_string().contains("insufficient funds"), "{err}");
    assert!(matches!(
        n.chain.tx_status(&too_much.hash()).unwrap(),
        TxStatus::Rejected { .. }
    ));
    // One that only fails after earlier pending transactions is included and fails.
    let third = n
        .chain
        .submit(transfer(&n.alice, 2, 100_000_000_000 - 3_000 - 30 + 1))
        .unwrap();
    assert_eq!(n.chain.tx_status(&first).unwrap(), TxStatus::Pending);
    assert_eq!(produce_block(&n.chain, proposer).unwrap(), 1);
    for h in [first, second] {
        let TxStatus::Committed { receipt } = n.chain.tx_status(&h).unwrap() else {
            panic!("not committed")
        };
        assert!(receipt.is_success());
    }
    let TxStatus::Committed { receipt } = n.chain.tx_status(&third).unwrap() else {
        panic!("not committed")
    };
    assert!(!receipt.is_success());
    let snapshot = n.chain.store().snapshot().unwrap();
    let alice = bank::account(&snapshot, &n.alice.public_key().address()).unwrap();
    assert_eq!(alice.nonce, 3);
    assert_eq!(alice.balance, Amount(100_000_000_000 - 30 - 3_000));
    assert_eq!(
        bank::account(&snapshot, &proposer).unwrap().balance,
        Amount(3_000)
    );
    // A committed transaction whose gossip arrives late is a duplicate for the peer that
    // passed it on (no check, nothing charged), while a client resubmitting it learns that its
    // nonce is used; another transaction with a used nonce is refused from gossip too.
    let committed = transfer(&n.alice, 0, 10);
    assert_eq!(committed.hash(), first);
    assert!(matches!(
        n.chain.submit_gossiped(committed.clone()),
        Err(MempoolError::Duplicate(h)) if h == first
    ));
    assert!(matches!(
        n.chain.submit(committed),
        Err(MempoolError::Rejected(Rejection::WrongNonce { .. }))
    ));
    assert!(matches!(
        n.chain.submit_gossiped(transfer(&n.alice, 1, 21)),
        Err(MempoolError::Rejected(Rejection::WrongNonce { .. }))
    ));
    // The replay is refused, with a reason that tx_status reports.
    let replay = transfer(&n.alice, 0, 11);
    let err = n.chain.submit(replay.clone()).unwrap_err();
    assert!(
        matches!(err, MempoolError::Rejected(Rejection::WrongNonce { .. })),
        "{err}"
    );
    assert!(matches!(
        n.chain.tx_status(&replay.hash()).unwrap(),
        TxStatus::Rejected { .. }
    ));
    assert_eq!(
        n.chain.tx_status(&Hash([9; 32])).unwrap(),
        TxStatus::Unknown
    );
}

#[test]
fn tampered_blocks_are_invalid_and_change_nothing() {
    let n = net();
    let proposer = n.validator.public_key().address();
    n.chain.submit(transfer(&n.alice, 0, 10)).unwrap();
    let block = n.chain.propose(1, 5, proposer).unwrap();
    let root_before = n.chain.store().state_root(0).unwrap();

    let mut wrong_root = block.clone();
    wrong_root.header.state_root = Hash([1; 32]);
    assert!(matches!(
        n.chain.validate(&wrong_root),
        Err(ChainError::InvalidBlock { .. })
    ));

    let mut forged = block.clone();
    forged.txs[0].tx.messages = vec![Message::Transfer(Transfer {
        to: hibana_types::Address([3; 20]),
        amount: Amount(11),
    })];
    forged.header.tx_root = forged.compute_tx_root();
    let err = n.chain.validate(&forged).unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");

    let mut wrong_parent = block.clone();
    wrong_parent.header.parent_hash = Hash([2; 32]);
    assert!(n.chain.validate(&wrong_parent).is_err());

    let mut wrong_txs = block.clone();
    wrong_txs.txs.clear();
    assert!(n.chain.validate(&wrong_txs).is_err());

    assert_eq!(n.chain.height().unwrap(), 0);
    assert_eq!(n.chain.store().state_root(0).unwrap(), root_before);
    // The honest block still validates and commits.
    n.chain.validate(&block).unwrap();
    assert_eq!(n.chain.commit(&block).unwrap(), block.header.state_root);
    assert_eq!(n.chain.height().unwrap(), 1);
}

#[test]
fn a_block_from_another_node_is_fully_re_executed() {
    let a = net();
    let proposer = a.validator.public_key().address();
    a.chain.submit(transfer(&a.alice, 0, 10)).unwrap();
    let block = a.chain.propose(1, 5, proposer).unwrap();
    // A second chain with the same genesis sees the block for the first time.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("chain.redb")).unwrap());
    store
        .init_genesis(&a.chain.store().genesis().unwrap())
        .unwrap();
    let b = Chain::new(store, 10).unwrap();
    b.validate(&block).unwrap();
    assert_eq!(b.commit(&block).unwrap(), block.header.state_root);
}

#[test]
fn a_staking_change_in_block_h_takes_effect_at_height_h_plus_1() {
    use hibana_consensus::bft::{Height, validator_set_at};
    let n = net();
    let proposer = n.validator.public_key().address();
    let bond = Transaction {
        chain_id: "c".into(),
        signer: n.alice.public_key(),
        nonce: 0,
        fee: Amount(1_000),
        messages: vec![Message::Bond(hibana_types::Bond {
            validator: n.alice.public_key().address(),
            amount: Amount::from_hib(10).unwrap(),
        })],
    }
    .sign(&n.alice);
    n.chain.submit(bond).unwrap();
    assert_eq!(produce_block(&n.chain, proposer).unwrap(), 1);
    assert_eq!(produce_block(&n.chain, proposer).unwrap(), 2);
    let count = |h| {
        validator_set_at(&n.chain, Height(h))
            .unwrap()
            .validators()
            .len()
    };
    // Height 1 (decided on the genesis state) has one validator; from 2 on alice is one too,
    // and the historical answer for height 1 does not change after later blocks.
    assert_eq!(count(1), 1);
    assert_eq!(count(2), 2);
    assert_eq!(count(3), 2);
    let alice = validator_set_at(&n.chain, Height(2)).unwrap();
    let power: Vec<u64> = alice.validators().iter().map(|v| v.voting_power).collect();
    assert_eq!(power, vec![10, 1]);
}

/// A proposer cannot push the chain's clock: a proposal more than `MAX_FUTURE_BLOCK_MS` ahead of
/// a validator's clock is refused when voting, one within it is accepted.
#[test]
fn a_block_from_the_future_is_refused_when_voting() {
    let n = net();
    let now = hibana_consensus::now_ms();
    let proposer = n.validator.public_key().address();
    let far = n.chain.propose(1, now + 60_000, proposer).unwrap();
    let err = n.chain.check_timely(&far.header, now).unwrap_err();
    assert!(
        matches!(&err, ChainError::InvalidBlock { reason, .. } if reason.contains("ahead of this validator's clock")),
        "{err}"
    );
    let near = n
        .chain
        .propose(1, now + hibana_consensus::MAX_FUTURE_BLOCK_MS / 2, proposer)
        .unwrap();
    n.chain.check_timely(&near.header, now).unwrap();
    // A slower clock later catches up with it.
    n.chain.check_timely(&far.header, now + 60_000).unwrap();
}

/// Cheap checks come first (a transaction that cannot pay its fee is refused before its proof
/// is looked at), and an account whose proofs keep failing has its next ones refused unchecked
/// for the rest of the window, while its other transactions still go through.
#[test]
fn failing_proofs_use_up_a_budget_per_account() {
    use hibana_consensus::COSTLY_FAILURES_PER_WINDOW;
    let n = net();
    let bad_proof = |from: &SecretKey, nonce: u64, fee: u128| {
        Transaction {
            chain_id: "c".into(),
            signer: from.public_key(),
            nonce,
            fee: Amount(fee),
            messages: vec![Message::SubmitZkInference(
                hibana_types::SubmitZkInference {
                    zkm: vec![7; 64],
                    proof: vec![9; 64],
                },
            )],
        }
        .sign(from)
    };
    // No balance for the fee: refused for that, before the proof is checked.
    let poor = SecretKey::generate();
    let err = n.chain.submit(bad_proof(&poor, 0, 1_000)).unwrap_err();
    assert!(
        matches!(err, MempoolError::Rejected(Rejection::CannotPayFee { .. })),
        "{err}"
    );
    // Failing proofs count against the sender until its budget is spent.
    for i in 0..COSTLY_FAILURES_PER_WINDOW {
        let err = n
            .chain
            .submit(bad_proof(&n.alice, 0, 1_000 + u128::from(i)))
            .unwrap_err();
        assert!(
            matches!(err, MempoolError::Rejected(Rejection::Malformed(_))),
            "{err}"
        );
    }
    let err = n.chain.submit(bad_proof(&n.alice, 0, 5_000)).unwrap_err();
    assert!(
        matches!(
            err,
            MempoolError::Rejected(Rejection::Throttled { until: 100, .. })
        ),
        "{err}"
    );
    // A transfer of the same account is still admitted (and committed), and another account's
    // proofs are still checked.
    let fund = Transaction {
        chain_id: "c".into(),
        signer: n.alice.public_key(),
        nonce: 0,
        fee: Amount(1_000),
        messages: vec![Message::Transfer(Transfer {
            to: n.validator.public_key().address(),
            amount: Amount::from_hib(1).unwrap(),
        })],
    }
    .sign(&n.alice);
    n.chain.submit(fund).unwrap();
    produce_block(&n.chain, n.validator.public_key().address()).unwrap();
    let err = n
        .chain
        .submit(bad_proof(&n.validator, 0, 1_000))
        .unwrap_err();
    assert!(
        matches!(err, MempoolError::Rejected(Rejection::Malformed(_))),
        "{err}"
    );
}
