//! Store behaviour: roots per block, proofs, indexes and persistence across reopening.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use hibana_runtime::{
    BlockContext, Genesis, GenesisAccount, GenesisValidator, StateDelta, StateRead, bank,
    deliver_tx,
};
use hibana_store::{Store, StoreError};
use hibana_types::{
    Amount, Block, BlockHeader, Hash, Message, SecretKey, Transaction, Transfer, verify_state_proof,
};

fn genesis(alice: &SecretKey, validator: &SecretKey) -> Genesis {
    Genesis {
        market: Default::default(),
        chain_id: "store-test".into(),
        genesis_time_ms: 0,
        params: Default::default(),
        accounts: vec![GenesisAccount {
            address: alice.public_key().address(),
            balance: Amount(10_000_000),
        }],
        validators: vec![GenesisValidator {
            public_key: validator.public_key(),
            stake: Amount(1_000_000),
        }],
    }
}

/// Fresh keys for alice, the validator and bob.
fn three_keys() -> (SecretKey, SecretKey, SecretKey) {
    (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    )
}

/// Executes one transfer block on the store and commits it.
fn commit_transfer(
    store: &Store,
    alice: &SecretKey,
    validator: &SecretKey,
    to: &SecretKey,
    nonce: u64,
) -> Block {
    let snapshot = store.snapshot().unwrap();
    let height = snapshot.height() + 1;
    let parent = store.block(height - 1).unwrap();
    let ctx = BlockContext {
        chain_id: "store-test".into(),
        height,
        time_ms: height,
        proposer: validator.public_key().address(),
    };
    let tx = Transaction {
        chain_id: "store-test".into(),
        signer: alice.public_key(),
        nonce,
        fee: Amount(1_000),
        messages: vec![Message::Transfer(Transfer {
            to: to.public_key().address(),
            amount: Amount(5),
        })],
    }
    .sign(alice);
    let tx = hibana_runtime::check_stateless(&tx, "store-test", &Default::default()).unwrap();
    let mut delta = StateDelta::new(&snapshot);
    let receipt = deliver_tx(&mut delta, &ctx, &tx, 0).unwrap().unwrap();
    let writes = delta.into_writes();
    let app_hash = store.state_root(height - 1).unwrap();
    let prepared = store.prepare(height, writes).unwrap();
    let mut block = Block {
        header: BlockHeader {
            chain_id: "store-test".into(),
            height,
            parent_hash: parent.map(|b| b.hash()).unwrap_or(Hash::ZERO),
            time_ms: height,
            proposer: ctx.proposer,
            tx_root: Hash::ZERO,
            state_root: prepared.root,
            app_hash,
        },
        txs: vec![tx.into_tx()],
    };
    block.header.tx_root = block.compute_tx_root();
    store.commit(&block, &[receipt], prepared).unwrap();
    block
}

#[test]
fn blocks_commit_with_verifiable_state_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let (alice, validator, bob) = three_keys();
    let store = Store::open(&path).unwrap();
    assert!(matches!(store.snapshot(), Err(StoreError::NotInitialised)));
    let genesis_root = store.init_genesis(&genesis(&alice, &validator)).unwrap();
    assert!(matches!(
        store.init_genesis(&genesis(&alice, &validator)),
        Err(StoreError::AlreadyInitialised(0))
    ));
    let b1 = commit_transfer(&store, &alice, &validator, &bob, 0);
    let b2 = commit_transfer(&store, &alice, &validator, &bob, 1);
    assert_eq!(b1.header.app_hash, genesis_root);
    assert_eq!(b2.header.app_hash, b1.header.state_root);
    assert_ne!(b1.header.state_root, b2.header.state_root);

    // Inclusion proof of bob's account, and non-inclusion of a fresh one, at each height.
    let key = bank::account_key(&bob.public_key().address());
    let (value, proof) = store.get_with_proof(&key, 1).unwrap();
    let value = value.unwrap();
    verify_state_proof(b1.header.state_root, &key, Some(&value), &proof).unwrap();
    assert!(verify_state_proof(b2.header.state_root, &key, Some(&value), &proof).is_err());
    let mut forged = value.clone();
    forged[0] ^= 1;
    assert!(verify_state_proof(b1.header.state_root, &key, Some(&forged), &proof).is_err());
    let nobody = bank::account_key(&SecretKey::generate().public_key().address());
    let (none, absent) = store.get_with_proof(&nobody, 2).unwrap();
    assert!(none.is_none());
    verify_state_proof(b2.header.state_root, &nobody, None, &absent).unwrap();
    assert!(verify_state_proof(b2.header.state_root, &nobody, Some(b"x"), &absent).is_err());

    // Indexes.
    let tx_hash = b2.txs[0].hash();
    let record = store.tx(&tx_hash).unwrap().unwrap();
    assert_eq!(record.receipt.height, 2);
    assert_eq!(
        store.account_txs(&bob.public_key().address(), 10).unwrap(),
        vec![tx_hash, b1.txs[0].hash()]
    );
    assert_eq!(store.block_by_hash(&b1.hash()).unwrap(), Some(b1.clone()));

    // A block out of order is refused and changes nothing.
    let stale = store.prepare(2, BTreeMap::new()).unwrap();
    assert!(matches!(
        store.commit(&b2, &[], stale),
        Err(StoreError::WrongHeight {
            expected: 3,
            found: 2
        })
    ));

    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.height().unwrap(), Some(2));
    assert_eq!(store.state_root(2).unwrap(), b2.header.state_root);
    let snapshot = store.snapshot().unwrap();
    assert_eq!(
        bank::account(&snapshot, &bob.public_key().address())
            .unwrap()
            .balance,
        Amount(10)
    );
    assert_eq!(
        bank::account(&snapshot, &alice.public_key().address())
            .unwrap()
            .nonce,
        2
    );
    assert_eq!(store.genesis().unwrap().chain_id, "store-test");
    // The flat state and the tree agree.
    let (tree_value, _) = store.get_with_proof(&key, 2).unwrap();
    assert_eq!(tree_value, snapshot.get(&key).unwrap());
}

/// The batch and per-key tree updates reach the same roots for the same writes.
#[test]
fn batch_and_incremental_tree_updates_agree() {
    use proptest::prelude::*;
    let mut runner =
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config::with_cases(16));
    let strategy = prop::collection::vec(
        prop::collection::btree_map(
            prop::collection::vec(0u8..8, 1..4),
            prop::option::weighted(0.8, prop::collection::vec(any::<u8>(), 0..8)),
            1..30,
        ),
        1..5,
    );
    runner
        .run(&strategy, |blocks| {
            let dir = tempfile::tempdir().unwrap();
            let (alice, validator) = (SecretKey::generate(), SecretKey::generate());
            let store = Store::open(&dir.path().join("a.redb")).unwrap();
            store.init_genesis(&genesis(&alice, &validator)).unwrap();
            // A reference tree fed one key at a time via deletions mixed in, so it takes the per-key path.
            let reference = Store::open(&dir.path().join("b.redb")).unwrap();
            reference
                .init_genesis(&genesis(&alice, &validator))
                .unwrap();
            for (i, writes) in blocks.into_iter().enumerate() {
                let height = i as u64 + 1;
                let mut with_deletion = writes.clone();
                let absent = b"never-written".to_vec();
                with_deletion.insert(absent, None);
                let a = store.prepare(height, writes).unwrap();
                let b = reference.prepare(height, with_deletion).unwrap();
                prop_assert_eq!(a.root, b.root);
                let block = |root| Block {
                    header: BlockHeader {
                        chain_id: "store-test".into(),
                        height,
                        parent_hash: Hash::ZERO,
                        time_ms: height,
                        proposer: validator.public_key().address(),
                        tx_root: Hash::ZERO,
                        state_root: root,
                        app_hash: Hash::ZERO,
                    },
                    txs: vec![],
                };
                store.commit(&block(a.root), &[], a).unwrap();
                reference.commit(&block(b.root), &[], b).unwrap();
            }
            Ok(())
        })
        .unwrap();
}

/// Proposals for heights not yet committed survive reopening, own ones by round, and a commit
/// drops those at its height and below.
#[test]
fn proposals_are_kept_across_reopening_until_their_height_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let (alice, validator, bob) = three_keys();
    let proposal = |height: u64, time_ms: u64| Block {
        header: BlockHeader {
            chain_id: "store-test".into(),
            height,
            parent_hash: Hash::ZERO,
            time_ms,
            proposer: validator.public_key().address(),
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            app_hash: Hash::ZERO,
        },
        txs: Vec::new(),
    };
    let (own, other, later) = (proposal(1, 1), proposal(1, 2), proposal(2, 3));
    {
        let store = Store::open(&path).unwrap();
        store.init_genesis(&genesis(&alice, &validator)).unwrap();
        store.keep_proposal(&own, Some(0)).unwrap();
        store.keep_proposal(&other, None).unwrap();
        store.keep_proposal(&later, Some(3)).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let kept = store.kept_proposals(0).unwrap();
    let mut hashes: Vec<Hash> = kept.blocks.iter().map(Block::hash).collect();
    hashes.sort_by_key(|h| h.0);
    let mut want = vec![own.hash(), other.hash(), later.hash()];
    want.sort_by_key(|h| h.0);
    assert_eq!(hashes, want);
    assert_eq!(kept.own, vec![(1, 0, own.hash()), (2, 3, later.hash())]);
    let above_1 = store.kept_proposals(1).unwrap();
    assert_eq!(above_1.blocks, vec![later.clone()]);
    assert_eq!(above_1.own, vec![(2, 3, later.hash())]);
    // Committing height 1 settles its proposals; height 2's stay.
    commit_transfer(&store, &alice, &validator, &bob, 0);
    let kept = store.kept_proposals(0).unwrap();
    assert_eq!(kept.blocks, vec![later.clone()]);
    assert_eq!(kept.own, vec![(2, 3, later.hash())]);
}
