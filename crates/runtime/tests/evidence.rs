//! Equivocation evidence: checked, then the validator is slashed and jailed once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::{
    BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState, deliver_tx,
    staking::{self, EQUIVOCATION_SLASH_PPM, PPM},
};
use hibana_types::{
    Amount, ConsensusVote, Equivocation, Hash, Message, SecretKey, SignedVote, SubmitEvidence,
    Transaction, TxOutcome, Unjail, VoteKind, VoteRound, VoteValue, consensus_sign_bytes,
};

const CHAIN: &str = "evidence-test";

fn signed(key: &SecretKey, chain: &str, height: u64, value: VoteValue) -> SignedVote {
    let vote = ConsensusVote {
        kind: VoteKind::Precommit,
        height,
        round: VoteRound::Some(0),
        value,
        validator: key.public_key().address(),
    };
    let signature = key.sign(&consensus_sign_bytes(chain, "vote", &vote));
    SignedVote { vote, signature }
}

fn evidence(key: &SecretKey, chain: &str, height: u64) -> Equivocation {
    Equivocation {
        public_key: key.public_key(),
        first: signed(key, chain, height, VoteValue::Block(Hash::digest(b"one"))),
        second: signed(key, chain, height, VoteValue::Block(Hash::digest(b"two"))),
    }
}

#[test]
fn equivocation_is_slashed_and_jailed_once_and_bad_evidence_is_refused() {
    let reporter = SecretKey::generate();
    let honest = SecretKey::generate();
    let cheater = SecretKey::generate();
    let stake = Amount::from_hib(1_000).unwrap();
    let genesis = Genesis {
        market: Default::default(),
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        params: Default::default(),
        accounts: vec![GenesisAccount {
            address: reporter.public_key().address(),
            balance: Amount::from_hib(10).unwrap(),
        }],
        validators: vec![
            GenesisValidator {
                public_key: honest.public_key(),
                stake,
            },
            GenesisValidator {
                public_key: cheater.public_key(),
                stake,
            },
        ],
    };
    let mut state = MemState::default();
    hibana_runtime::init_genesis(&mut state, &genesis).unwrap();
    let mut nonce = 0;
    let mut submit = |state: &mut MemState, e: Equivocation| {
        let ctx = BlockContext {
            chain_id: CHAIN.into(),
            height: 10,
            time_ms: 10,
            proposer: honest.public_key().address(),
        };
        let tx = Transaction {
            chain_id: CHAIN.into(),
            signer: reporter.public_key(),
            nonce,
            fee: Amount(1_000),
            messages: vec![Message::SubmitEvidence(SubmitEvidence { equivocation: e })],
        }
        .sign(&reporter);
        let tx = match hibana_runtime::check_stateless(&tx, CHAIN, &Default::default()) {
            Ok(checked) => checked,
            Err(e) => return TxOutcome::Failed(e.to_string()),
        };
        let receipt = deliver_tx(state, &ctx, &tx, 0).unwrap().unwrap();
        nonce += 1;
        receipt.outcome
    };
    let failed = |o: TxOutcome, needle: &str| match o {
        TxOutcome::Failed(reason) => assert!(reason.contains(needle), "{reason}"),
        TxOutcome::Success => panic!("expected a failure with {needle:?}"),
    };

    // Bad evidence: same value, another chain's signatures, a forged signature, the wrong key,
    // different heights, a future height.
    let mut same = evidence(&cheater, CHAIN, 8);
    same.second = same.first.clone();
    failed(submit(&mut state, same), "same value");
    failed(
        submit(&mut state, evidence(&cheater, "other-chain", 8)),
        "signature does not verify",
    );
    let mut forged = evidence(&cheater, CHAIN, 8);
    forged.second = signed(&honest, CHAIN, 8, VoteValue::Nil);
    forged.second.vote.validator = cheater.public_key().address();
    failed(submit(&mut state, forged), "signature does not verify");
    let mut wrong_key = evidence(&cheater, CHAIN, 8);
    wrong_key.public_key = honest.public_key();
    failed(submit(&mut state, wrong_key), "not the key of validator");
    let mut heights = evidence(&cheater, CHAIN, 8);
    heights.second = signed(&cheater, CHAIN, 9, VoteValue::Nil);
    failed(submit(&mut state, heights), "same height, round and step");
    failed(
        submit(&mut state, evidence(&cheater, CHAIN, 11)),
        "beyond the current height",
    );
    let before = staking::validator(&state, &cheater.public_key().address())
        .unwrap()
        .unwrap();
    assert!(!before.jailed);

    // Good evidence: slashed by the equivocation fraction and jailed, out of the set.
    assert_eq!(
        submit(&mut state, evidence(&cheater, CHAIN, 8)),
        TxOutcome::Success
    );
    let after = staking::validator(&state, &cheater.public_key().address())
        .unwrap()
        .unwrap();
    assert!(after.jailed);
    assert_eq!(
        after.tokens.0,
        stake.0 - stake.0 * u128::from(EQUIVOCATION_SLASH_PPM) / u128::from(PPM)
    );
    let set = staking::validator_set(&state).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].address, honest.public_key().address());
    // The set a light client proves is recorded at the end of the block, not before.
    assert_eq!(
        staking::recorded_validator_set(&state)
            .unwrap()
            .unwrap()
            .len(),
        2
    );
    let end = BlockContext {
        chain_id: CHAIN.into(),
        height: 10,
        time_ms: 10,
        proposer: honest.public_key().address(),
    };
    hibana_runtime::end_block(&mut state, &end).unwrap();
    assert_eq!(staking::recorded_validator_set(&state).unwrap(), Some(set));
    // The same equivocation cannot be punished twice, nor can another conflicting pair of the
    // same validator (a double-signing setup signs many): one slash per validator.
    failed(
        submit(&mut state, evidence(&cheater, CHAIN, 8)),
        "already punished",
    );
    failed(
        submit(&mut state, evidence(&cheater, CHAIN, 9)),
        "already punished for equivocation at height 10",
    );
    let last = staking::validator(&state, &cheater.public_key().address())
        .unwrap()
        .unwrap();
    assert_eq!(last.tokens, after.tokens);

    // Jailed: it may not rejoin before the jail period (the unbonding period) is over, then it
    // may, once, and is back in the set.
    let unjail = |state: &mut MemState, height: u64, nonce: u64| {
        let ctx = BlockContext {
            chain_id: CHAIN.into(),
            height,
            time_ms: height,
            proposer: honest.public_key().address(),
        };
        let tx = Transaction {
            chain_id: CHAIN.into(),
            signer: cheater.public_key(),
            nonce,
            fee: Amount(1_000),
            messages: vec![Message::Unjail(Unjail {})],
        }
        .sign(&cheater);
        let tx = hibana_runtime::check_stateless(&tx, CHAIN, &Default::default()).unwrap();
        deliver_tx(state, &ctx, &tx, 0).unwrap().unwrap().outcome
    };
    // The cheater's account pays fees from a small balance.
    hibana_runtime::bank::credit(&mut state, &cheater.public_key().address(), Amount(10_000))
        .unwrap();
    let period = hibana_runtime::Params::default().unbonding_period;
    failed(
        unjail(&mut state, 10 + period - 1, 0),
        "jailed until height",
    );
    assert_eq!(unjail(&mut state, 10 + period, 1), TxOutcome::Success);
    assert!(
        !staking::validator(&state, &cheater.public_key().address())
            .unwrap()
            .unwrap()
            .jailed
    );
    assert_eq!(staking::validator_set(&state).unwrap().len(), 2);
    failed(unjail(&mut state, 10 + period + 1, 2), "is not jailed");
}
