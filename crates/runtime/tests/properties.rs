//! Property tests of the state machine's invariants over random transaction sequences.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::{
    BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState, Params, Rejection, bank,
    check_stateless, deliver_tx, staking,
};
use hibana_types::{
    Address, Amount, Bond, Message, SecretKey, SignedTransaction, Transaction, Transfer, Unbond,
};
use proptest::prelude::*;

const CHAIN: &str = "prop-chain";

struct World {
    keys: Vec<SecretKey>,
    validator: SecretKey,
    state: MemState,
    params: Params,
}

fn world(balances: &[u64]) -> World {
    let keys: Vec<SecretKey> = balances.iter().map(|_| SecretKey::generate()).collect();
    let validator = SecretKey::generate();
    let params = Params {
        unbonding_period: 3,
        ..Params::default()
    };
    let genesis = Genesis {
        market: Default::default(),
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        params: params.clone(),
        accounts: keys
            .iter()
            .zip(balances)
            .map(|(k, b)| GenesisAccount {
                address: k.public_key().address(),
                balance: Amount(u128::from(*b)),
            })
            .collect(),
        validators: vec![GenesisValidator {
            public_key: validator.public_key(),
            stake: Amount(1_000_000),
        }],
    };
    let mut state = MemState::default();
    hibana_runtime::init_genesis(&mut state, &genesis).unwrap();
    World {
        keys,
        validator,
        state,
        params,
    }
}

fn ctx(w: &World, height: u64) -> BlockContext {
    BlockContext {
        chain_id: CHAIN.into(),
        height,
        time_ms: height,
        proposer: w.validator.public_key().address(),
    }
}

/// Every token is in exactly one place: a balance, a bond or an unbonding entry.
fn accounted_supply(w: &World, height: u64) -> u128 {
    let mut total: u128 = 0;
    for k in w.keys.iter().chain(std::iter::once(&w.validator)) {
        total += bank::account(&w.state, &k.public_key().address())
            .unwrap()
            .balance
            .0;
    }
    total + staking::total_staked(&w.state, height).unwrap()
}

#[derive(Debug, Clone)]
enum Action {
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
        fee: u64,
    },
    Bond {
        from: usize,
        amount: u64,
    },
    Unbond {
        from: usize,
        amount: u64,
    },
    SelfBond {
        from: usize,
        amount: u64,
    },
}

fn action(n: usize) -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..n, 0..n, 0u64..2_000_000, 0u64..5_000).prop_map(|(from, to, amount, fee)| Action::Transfer { from, to, amount, fee }),
        1 => (0..n, 0u64..500_000).prop_map(|(from, amount)| Action::Bond { from, amount }),
        1 => (0..n, 0u64..500_000).prop_map(|(from, amount)| Action::Unbond { from, amount }),
        1 => (0..n, 0u64..500_000).prop_map(|(from, amount)| Action::SelfBond { from, amount }),
    ]
}

fn make_tx(w: &World, a: &Action) -> SignedTransaction {
    let (from, message, fee) = match *a {
        Action::Transfer {
            from,
            to,
            amount,
            fee,
        } => (
            from,
            Message::Transfer(Transfer {
                to: w.keys[to].public_key().address(),
                amount: Amount(u128::from(amount)),
            }),
            fee,
        ),
        Action::Bond { from, amount } => (
            from,
            Message::Bond(Bond {
                validator: w.validator.public_key().address(),
                amount: Amount(u128::from(amount)),
            }),
            1_000,
        ),
        Action::Unbond { from, amount } => (
            from,
            Message::Unbond(Unbond {
                validator: w.validator.public_key().address(),
                amount: Amount(u128::from(amount)),
            }),
            1_000,
        ),
        Action::SelfBond { from, amount } => (
            from,
            Message::Bond(Bond {
                validator: w.keys[from].public_key().address(),
                amount: Amount(u128::from(amount)),
            }),
            1_000,
        ),
    };
    let key = &w.keys[from];
    let nonce = bank::account(&w.state, &key.public_key().address())
        .unwrap()
        .nonce;
    Transaction {
        chain_id: CHAIN.into(),
        signer: key.public_key(),
        nonce,
        fee: Amount(u128::from(fee)),
        messages: vec![message],
    }
    .sign(key)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn supply_is_conserved_and_rejections_change_nothing(
        balances in prop::collection::vec(0u64..5_000_000, 2..5),
        actions in prop::collection::vec(action(4), 1..40),
    ) {
        let mut w = world(&balances);
        let supply = bank::total_supply(&w.state).unwrap().0;
        prop_assert_eq!(accounted_supply(&w, 1), supply);
        for (i, a) in actions.iter().enumerate() {
            let height = i as u64 + 1;
            let a = match a.clone() {
                Action::Transfer { from, to, amount, fee } => Action::Transfer { from: from % w.keys.len(), to: to % w.keys.len(), amount, fee },
                Action::Bond { from, amount } => Action::Bond { from: from % w.keys.len(), amount },
                Action::Unbond { from, amount } => Action::Unbond { from: from % w.keys.len(), amount },
                Action::SelfBond { from, amount } => Action::SelfBond { from: from % w.keys.len(), amount },
            };
            let c = ctx(&w, height);
            hibana_runtime::begin_block(&mut w.state, &c).unwrap();
            let tx = make_tx(&w, &a);
            let stateless = check_stateless(&tx, CHAIN, &w.params);
            let before = w.state.clone();
            let outcome = match &stateless {
                Ok(checked) => deliver_tx(&mut w.state, &c, checked, 0).unwrap(),
                Err(r) => Err(r.clone()),
            };
            match outcome {
                Err(_) => prop_assert_eq!(&w.state, &before, "a rejected transaction changed state"),
                Ok(receipt) => {
                    let sender = tx.sender();
                    let acct = bank::account(&w.state, &sender).unwrap();
                    prop_assert_eq!(acct.nonce, bank::account(&before, &sender).unwrap().nonce + 1);
                    // Replaying the same transaction is rejected and changes nothing.
                    let snapshot = w.state.clone();
                    let Ok(checked) = &stateless else { unreachable!() };
                    let replay = deliver_tx(&mut w.state, &c, checked, 1).unwrap();
                    let is_nonce_rejection = matches!(replay, Err(Rejection::WrongNonce { .. }));
                    prop_assert!(is_nonce_rejection);
                    prop_assert_eq!(&w.state, &snapshot);
                    let _ = receipt;
                }
            }
            prop_assert_eq!(bank::total_supply(&w.state).unwrap().0, supply, "total supply changed");
            prop_assert_eq!(accounted_supply(&w, height + 1), supply, "tokens appeared or vanished");
        }
    }

    #[test]
    fn foreign_chain_bad_signature_and_future_nonce_are_rejected(balance in 10_000u64..1_000_000, amount in 1u64..1000) {
        let w = world(&[balance, 0]);
        let to = w.keys[1].public_key().address();
        let key = &w.keys[0];
        let base = Transaction {
            chain_id: CHAIN.into(),
            signer: key.public_key(),
            nonce: 0,
            fee: Amount(1_000),
            messages: vec![Message::Transfer(Transfer { to, amount: Amount(u128::from(amount)) })],
        };
        let mut other_chain = base.clone();
        other_chain.chain_id = "other".into();
        let is_wrong_chain = matches!(check_stateless(&other_chain.sign(key), CHAIN, &w.params), Err(Rejection::WrongChain { .. }));
        prop_assert!(is_wrong_chain);
        let mut forged = base.clone().sign(key);
        forged.tx.messages = vec![Message::Transfer(Transfer { to, amount: Amount(u128::from(amount) + 1) })];
        let is_bad_sig = matches!(check_stateless(&forged, CHAIN, &w.params), Err(Rejection::BadSignature(_)));
        prop_assert!(is_bad_sig);
        let wrong_key = base.clone().sign(&w.keys[1]);
        let is_bad_sig = matches!(check_stateless(&wrong_key, CHAIN, &w.params), Err(Rejection::BadSignature(_)));
        prop_assert!(is_bad_sig);
        let mut future = base.clone();
        future.nonce = 5;
        let mut state = w.state.clone();
        let future = check_stateless(&future.sign(key), CHAIN, &w.params).unwrap();
        let r = deliver_tx(&mut state, &ctx(&w, 1), &future, 0).unwrap();
        let is_wrong_nonce = matches!(r, Err(Rejection::WrongNonce { expected: 0, found: 5, .. }));
        prop_assert!(is_wrong_nonce);
        prop_assert_eq!(&state, &w.state);
    }
}

#[test]
fn batch_verification_agrees_with_single_verification() {
    let w = world(&[1_000_000, 0]);
    let mut txs = Vec::new();
    for nonce in 0..300u64 {
        let key = &w.keys[0];
        let mut tx = Transaction {
            chain_id: CHAIN.into(),
            signer: key.public_key(),
            nonce,
            fee: Amount(1_000),
            messages: vec![Message::Transfer(Transfer {
                to: Address([9; 20]),
                amount: Amount(1),
            })],
        }
        .sign(key);
        if nonce % 37 == 5 {
            tx.signature.0[3] ^= 1;
        }
        txs.push(tx);
    }
    let batch = hibana_runtime::check_stateless_batch(txs.clone(), CHAIN, &w.params);
    for (tx, result) in txs.iter().zip(&batch) {
        assert_eq!(
            result.is_ok(),
            check_stateless(tx, CHAIN, &w.params).is_ok()
        );
    }
    assert_eq!(batch.iter().filter(|r| r.is_err()).count(), 8);
}

#[test]
fn slashing_burns_bonded_and_unbonding_stake() {
    let mut w = world(&[10_000_000]);
    let v = w.validator.public_key().address();
    let c = ctx(&w, 1);
    let key = &w.keys[0];
    let bond = Transaction {
        chain_id: CHAIN.into(),
        signer: key.public_key(),
        nonce: 0,
        fee: Amount(1_000),
        messages: vec![Message::Bond(Bond {
            validator: v,
            amount: Amount(1_000_000),
        })],
    }
    .sign(key);
    let bond = check_stateless(&bond, CHAIN, &w.params).unwrap();
    assert!(
        deliver_tx(&mut w.state, &c, &bond, 0)
            .unwrap()
            .unwrap()
            .is_success()
    );
    let unbond = Transaction {
        chain_id: CHAIN.into(),
        signer: key.public_key(),
        nonce: 1,
        fee: Amount(1_000),
        messages: vec![Message::Unbond(Unbond {
            validator: v,
            amount: Amount(400_000),
        })],
    }
    .sign(key);
    let unbond = check_stateless(&unbond, CHAIN, &w.params).unwrap();
    assert!(
        deliver_tx(&mut w.state, &c, &unbond, 1)
            .unwrap()
            .unwrap()
            .is_success()
    );
    let supply = bank::total_supply(&w.state).unwrap().0;
    let mut events = Vec::new();
    // 10%: bonded 1,000,000 (validator) + 600,000 (delegator) and 400,000 unbonding.
    let burned = staking::slash(&mut w.state, &v, 100_000, "test", 1, &mut events).unwrap();
    assert_eq!(burned, Amount(200_000));
    assert_eq!(bank::total_supply(&w.state).unwrap().0, supply - 200_000);
    assert_eq!(accounted_supply(&w, 2), supply - 200_000);
    let (_, stake) = staking::stake_of(&w.state, &key.public_key().address()).unwrap();
    assert_eq!(stake, Amount(540_000));
    staking::jail(&mut w.state, &v, 1, &mut events).unwrap();
    assert!(staking::validator_set(&w.state).unwrap().is_empty());
}
