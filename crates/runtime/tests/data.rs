//! The data component through transactions: a bounty with honest contributors, a spammer and a
//! lazy reviewer who approves everything (the spam rejected and its stake lost, the lazy
//! reviewer slashed and, failing the gold items, unpaid; the honest parties paid; the dataset's
//! root proving every accepted item); every bad message refused with its reason and balances
//! untouched; and a property test that the escrow always holds exactly what the bounties owe
//! and that the supply is conserved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{FEE, World};
use hibana_runtime::{bank, data};
use hibana_types::records::data::{
    BountyStatus, BountyTerms, DATA_ESCROW, DatasetLeaf, GoldAnswer, ItemStatus, gold_commitment,
    review_commitment,
};
use hibana_types::{
    Address, Amount, CloseBounty, CommitReview, CreateBounty, FinalizeDataset, Hash, JoinReviewers,
    Message, RevealReview, SecretKey, SubmitContribution, merkle_proof, verify_merkle_proof,
};
use proptest::prelude::*;

const HIB: u128 = 1_000_000_000;

fn addr(k: &SecretKey) -> Address {
    k.public_key().address()
}

fn terms(deadline: u64, reviewers_per_item: u8, gold: Option<Hash>, window: u64) -> BountyTerms {
    BountyTerms {
        title: "sentiment labels".into(),
        schema: r#"{"type":"object","required":["text","label"]}"#.into(),
        reward_per_item: Amount(HIB),
        reviewer_reward: Amount(HIB / 10),
        reviewers_per_item,
        quorum_bps: 6_000,
        contribution_stake: Amount(HIB / 2),
        review_stake: Amount(2 * HIB),
        slash_bps: 2_500,
        deadline,
        max_items: 8,
        commit_blocks: window,
        reveal_blocks: window,
        gold_commitment: gold,
        gold_floor_bps: 6_000,
    }
}

fn create(t: BountyTerms) -> Message {
    Message::CreateBounty(CreateBounty { terms: t })
}

fn join(bounty: u64, stake: u128) -> Message {
    Message::JoinReviewers(JoinReviewers {
        bounty,
        stake: Amount(stake),
    })
}

fn item_hash(text: &str) -> Hash {
    Hash(*blake3::hash(text.as_bytes()).as_bytes())
}

fn submit(bounty: u64, text: &str) -> Message {
    Message::SubmitContribution(SubmitContribution {
        bounty,
        hash: item_hash(text),
        size: text.len() as u64,
    })
}

fn salt(reviewer: &SecretKey, item: u64) -> Hash {
    Hash(*blake3::hash(&[&addr(reviewer).0[..], &item.to_be_bytes()].concat()).as_bytes())
}

fn commit(reviewer: &SecretKey, item: u64, accept: bool) -> Message {
    Message::CommitReview(CommitReview {
        item,
        commitment: review_commitment(item, &addr(reviewer), accept, &salt(reviewer, item)),
    })
}

fn reveal(reviewer: &SecretKey, item: u64, accept: bool) -> Message {
    Message::RevealReview(RevealReview {
        item,
        accept,
        salt: salt(reviewer, item),
    })
}

fn finalize(bounty: u64, gold: Vec<GoldAnswer>, gold_salt: Hash) -> Message {
    Message::FinalizeDataset(FinalizeDataset {
        bounty,
        licence: "CC-BY-4.0".into(),
        gold,
        gold_salt,
    })
}

/// The id of the item a bounty holds with `text`'s hash.
fn item_id(w: &World, bounty: u64, text: &str) -> u64 {
    data::item_by_hash(&w.state, bounty, &item_hash(text))
        .unwrap()
        .unwrap()
}

fn escrow_is_exact(w: &World) {
    assert_eq!(
        data::escrow_balance(&w.state).unwrap(),
        data::query::escrow_owed(&w.state).unwrap(),
        "the escrow holds other than what the bounties owe"
    );
}

#[test]
fn spam_and_a_lazy_reviewer_lose_stake_honest_parties_are_paid_and_the_root_proves_the_data() {
    let [owner, gold_sender, honest, spammer, r1, r2, r3, lazy] =
        std::array::from_fn(|_| SecretKey::generate());
    let mut w = World::new(
        &[
            &owner,
            &gold_sender,
            &honest,
            &spammer,
            &r1,
            &r2,
            &r3,
            &lazy,
        ],
        Amount(100 * HIB),
    );
    let supply = bank::total_supply(&w.state).unwrap();
    let gold_text = r#"{"text":"buy cheap pills now!!!","label":"positive"}"#;
    let gold = vec![GoldAnswer {
        hash: item_hash(gold_text),
        accept: false,
    }];
    let gold_salt = Hash([9; 32]);
    w.ok(
        &owner,
        create(terms(40, 4, Some(gold_commitment(&gold, &gold_salt)), 40)),
    );
    let escrow = 8 * (HIB + 4 * HIB / 10);
    assert_eq!(w.balance(&DATA_ESCROW), Amount(escrow));
    for r in [&r1, &r2, &r3, &lazy] {
        w.ok(r, join(0, 2 * HIB));
    }
    let good = [
        r#"{"text":"I loved this film","label":"positive"}"#,
        r#"{"text":"The service was slow and rude","label":"negative"}"#,
    ];
    let spam = [
        r#"{"text":"I loved this film!","label":"positive"}"#,
        r#"not even json"#,
    ];
    for text in good {
        w.ok(&honest, submit(0, text));
    }
    for text in spam {
        w.ok(&spammer, submit(0, text));
    }
    w.ok(&gold_sender, submit(0, gold_text));
    // Every reviewer is assigned every item (4 reviewers, 4 per item).
    let truth: Vec<(u64, bool)> = good
        .iter()
        .map(|t| (item_id(&w, 0, t), true))
        .chain(spam.iter().map(|t| (item_id(&w, 0, t), false)))
        .chain([(item_id(&w, 0, gold_text), false)])
        .collect();
    for (item, right) in &truth {
        let slots = data::item(&w.state, *item).unwrap().unwrap().reviews;
        assert_eq!(slots.len(), 4);
        for r in [&r1, &r2, &r3] {
            w.ok(r, commit(r, *item, *right));
        }
        w.ok(&lazy, commit(&lazy, *item, true));
    }
    for (item, right) in &truth {
        for r in [&r1, &r2, &r3] {
            w.ok(r, reveal(r, *item, *right));
        }
        w.ok(&lazy, reveal(&lazy, *item, true));
        let settled = data::item(&w.state, *item).unwrap().unwrap();
        let want = if *right {
            ItemStatus::Accepted
        } else {
            ItemStatus::Rejected
        };
        assert_eq!(settled.status, want, "item {item}");
        escrow_is_exact(&w);
    }
    // The honest contributor: two rewards, stakes back; the spammer: both stakes lost.
    assert_eq!(w.balance(&addr(&honest)).0, 100 * HIB + 2 * HIB - 2 * FEE);
    assert_eq!(w.balance(&addr(&spammer)).0, 100 * HIB - HIB - 2 * FEE);
    // The lazy reviewer lost a quarter of its stake on each of the 3 items it got wrong.
    let reviewers = data::reviewers(&w.state, 0).unwrap();
    let lazy_record = reviewers.iter().find(|r| r.address == addr(&lazy)).unwrap();
    let mut stake = 2 * HIB;
    for _ in 0..3 {
        stake -= stake / 4;
    }
    assert_eq!(lazy_record.stake.0, stake);
    assert_eq!(lazy_record.agreed, 2);
    // Too early for anyone but the owner, and the owner must reveal the right gold answers.
    w.ok(&owner, Message::CloseBounty(CloseBounty { bounty: 0 }));
    w.fails(
        &honest,
        finalize(0, Vec::new(), Hash::ZERO),
        "only the owner",
    );
    w.fails(
        &owner,
        finalize(0, gold.clone(), Hash([8; 32])),
        "do not match",
    );
    let before: Vec<u128> = [&r1, &lazy, &owner]
        .iter()
        .map(|k| w.balance(&addr(k)).0)
        .collect();
    w.ok(&owner, finalize(0, gold.clone(), gold_salt));
    escrow_is_exact(&w);
    assert_eq!(w.balance(&DATA_ESCROW), Amount::ZERO);
    // An honest reviewer: 5 rewards earned and its whole stake back; the lazy one judged the
    // gold item wrong (0 of 1, under the 60% floor): stake back, earnings withheld.
    assert_eq!(w.balance(&addr(&r1)).0, before[0] + 5 * HIB / 10 + 2 * HIB);
    assert_eq!(w.balance(&addr(&lazy)).0, before[1] + stake);
    let b = data::bounty(&w.state, 0).unwrap().unwrap();
    assert_eq!(b.status, BountyStatus::Finalized);
    // The owner gets back the unspent budget and every forfeited stake.
    let paid_out = 2 * HIB + 3 * 5 * HIB / 10; // two item rewards, three honest reviewers
    let forfeited = 2 * (HIB / 2) + HIB / 2 + (2 * HIB - stake); // spam + gold item, lazy's slashes
    assert_eq!(
        w.balance(&addr(&owner)).0,
        before[2] + escrow - paid_out + forfeited - FEE
    );
    // The dataset: the two good items, in order, each proved against the root on chain.
    let (dataset, leaves) = data::query::dataset_with_leaves(&w.state, 0)
        .unwrap()
        .unwrap();
    assert_eq!(
        dataset.items,
        truth[..2].iter().map(|t| t.0).collect::<Vec<_>>()
    );
    assert!(dataset.gold_revealed);
    let digests: Vec<Hash> = leaves.iter().map(DatasetLeaf::digest).collect();
    for (i, leaf) in digests.iter().enumerate() {
        let proof = merkle_proof(&digests, i).unwrap();
        assert!(verify_merkle_proof(leaf, &proof, &dataset.root));
    }
    assert_eq!(leaves[0].contributor, addr(&honest));
    w.fails(&owner, finalize(0, gold, gold_salt), "already finalised");
    assert_eq!(bank::total_supply(&w.state).unwrap(), supply);
}

#[test]
fn silent_reviewers_are_slashed_and_an_unreviewed_item_returns_its_stake() {
    let [owner, contributor, r1, r2] = std::array::from_fn(|_| SecretKey::generate());
    let mut w = World::new(&[&owner, &contributor, &r1, &r2], Amount(100 * HIB));
    w.ok(&owner, create(terms(100, 2, None, 3)));
    w.ok(&r1, join(0, 2 * HIB));
    w.ok(&r2, join(0, 2 * HIB));
    w.ok(&contributor, submit(0, "a"));
    w.ok(&contributor, submit(0, "b"));
    let (a, b) = (item_id(&w, 0, "a"), item_id(&w, 0, "b"));
    // Item a: r1 commits and reveals, r2 commits and stays silent.
    w.ok(&r1, commit(&r1, a, true));
    w.ok(&r2, commit(&r2, a, false));
    w.ok(&r1, reveal(&r1, a, true));
    // Item b: nobody commits.
    w.idle(8);
    escrow_is_exact(&w);
    let item_a = data::item(&w.state, a).unwrap().unwrap();
    assert_eq!(item_a.status, ItemStatus::Accepted);
    assert_eq!(
        data::item(&w.state, b).unwrap().unwrap().status,
        ItemStatus::Unreviewed
    );
    let rs = data::reviewers(&w.state, 0).unwrap();
    let silent = rs.iter().find(|r| r.address == addr(&r2)).unwrap();
    // Silent on a (a quarter of 2 HIB), then on b (a quarter of the rest).
    assert_eq!(silent.missed, 2);
    assert_eq!(silent.stake.0, 2 * HIB - HIB / 2 - (2 * HIB - HIB / 2) / 4);
    // The contributor: one reward; both stakes back.
    assert_eq!(w.balance(&addr(&contributor)).0, 100 * HIB + HIB - 2 * FEE);
    assert!(data::assignments(&w.state, &addr(&r2)).unwrap().is_empty());
}

#[test]
fn bad_messages_are_refused_with_their_reason_and_move_nothing() {
    let [owner, contributor, r1, r2, stranger] = std::array::from_fn(|_| SecretKey::generate());
    let mut w = World::new(
        &[&owner, &contributor, &r1, &r2, &stranger],
        Amount(100 * HIB),
    );
    let mut t = terms(30, 1, None, 8);
    t.reviewers_per_item = 0;
    w.fails(&owner, create(t.clone()), "reviewers per item");
    t.reviewers_per_item = 1;
    t.quorum_bps = 5_000;
    w.fails(&owner, create(t.clone()), "more than half");
    t.quorum_bps = 6_000;
    t.review_stake = Amount::ZERO;
    w.fails(&owner, create(t.clone()), "reviewers must stake");
    t.review_stake = Amount(HIB);
    t.schema = "x".repeat(5_000);
    w.fails(&owner, create(t.clone()), "schema");
    t.schema = "{}".into();
    t.reward_per_item = Amount(1_000 * HIB);
    w.fails(&owner, create(t.clone()), "insufficient funds");
    t.reward_per_item = Amount(HIB);
    t.max_items = 2;
    w.ok(&owner, create(t));
    w.fails(&contributor, submit(0, "x"), "no staked reviewer");
    w.fails(&owner, join(0, 2 * HIB), "owner cannot review");
    w.fails(&r1, join(0, HIB / 2), "at least");
    w.ok(&r1, join(0, HIB));
    w.fails(
        &contributor,
        Message::SubmitContribution(SubmitContribution {
            bounty: 0,
            hash: item_hash("big"),
            size: 1 << 20,
        }),
        "bytes",
    );
    w.fails(&contributor, submit(7, "x"), "does not exist");
    w.ok(&contributor, submit(0, "x"));
    w.fails(&contributor, submit(0, "x"), "paid once");
    w.ok(&contributor, submit(0, "y"));
    w.fails(&contributor, submit(0, "z"), "maximum");
    let x = item_id(&w, 0, "x");
    w.fails(&stranger, commit(&stranger, x, true), "not assigned");
    w.fails(&r1, reveal(&r1, x, true), "did not commit");
    w.ok(&r1, commit(&r1, x, true));
    w.fails(&r1, commit(&r1, x, true), "already committed");
    w.fails(&r1, reveal(&r1, x, false), "do not match");
    w.fails(&owner, finalize(0, Vec::new(), Hash::ZERO), "under review");
    w.fails(
        &stranger,
        Message::CloseBounty(CloseBounty { bounty: 0 }),
        "only the owner",
    );
    w.ok(&r1, reveal(&r1, x, true));
    w.fails(&r1, reveal(&r1, x, true), "already settled");
    // y: r1 commits late.
    // y: its commit window (8 blocks) passed during the above; r1 commits late.
    let y = item_id(&w, 0, "y");
    w.fails(&r1, commit(&r1, y, true), "commit window ended");
    w.idle(10);
    w.fails(
        &owner,
        finalize(
            0,
            vec![GoldAnswer {
                hash: item_hash("x"),
                accept: true,
            }],
            Hash::ZERO,
        ),
        "no gold answers",
    );
    w.ok(&owner, finalize(0, Vec::new(), Hash::ZERO));
    escrow_is_exact(&w);
    w.fails(&r2, join(0, HIB), "no longer takes submissions");
}

#[derive(Debug, Clone)]
enum Action {
    Create {
        owner: usize,
        reviewers: u8,
        max: u8,
    },
    Join {
        who: usize,
        bounty: u8,
        stake: u8,
    },
    Submit {
        who: usize,
        bounty: u8,
        text: u8,
    },
    Commit {
        who: usize,
        item: u8,
        accept: bool,
    },
    Reveal {
        who: usize,
        item: u8,
        accept: bool,
    },
    Close {
        who: usize,
        bounty: u8,
    },
    Finalize {
        who: usize,
        bounty: u8,
    },
    Idle(u8),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0..5usize, 1..4u8, 1..6u8).prop_map(|(owner, reviewers, max)| Action::Create {
            owner,
            reviewers,
            max
        }),
        (0..5usize, any::<u8>(), 1..5u8).prop_map(|(who, bounty, stake)| Action::Join {
            who,
            bounty,
            stake
        }),
        (0..5usize, any::<u8>(), any::<u8>()).prop_map(|(who, bounty, text)| Action::Submit {
            who,
            bounty,
            text
        }),
        (0..5usize, any::<u8>(), any::<bool>()).prop_map(|(who, item, accept)| Action::Commit {
            who,
            item,
            accept
        }),
        (0..5usize, any::<u8>(), any::<bool>()).prop_map(|(who, item, accept)| Action::Reveal {
            who,
            item,
            accept
        }),
        (0..5usize, any::<u8>()).prop_map(|(who, bounty)| Action::Close { who, bounty }),
        (0..5usize, any::<u8>()).prop_map(|(who, bounty)| Action::Finalize { who, bounty }),
        (1..8u8).prop_map(Action::Idle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_escrow_holds_exactly_what_bounties_owe_and_supply_is_conserved(
        actions in prop::collection::vec(action(), 1..80),
    ) {
        let keys: Vec<SecretKey> = (0..5).map(|_| SecretKey::generate()).collect();
        let refs: Vec<&SecretKey> = keys.iter().collect();
        let mut w = World::new(&refs, Amount(100 * HIB));
        let supply = bank::total_supply(&w.state).unwrap();
        let liquid = |w: &World| -> u128 {
            keys.iter().map(|k| w.balance(&addr(k)).0).sum::<u128>()
                + w.balance(&DATA_ESCROW).0
                + w.balance(&w.validator.public_key().address()).0
        };
        let start = liquid(&w);
        let mut bounties = 0u64;
        let mut items = 0u64;
        for a in actions {
            let b = |x: u8| u64::from(x) % bounties.max(1);
            let i = |x: u8| u64::from(x) % items.max(1);
            let (who, message) = match a {
                Action::Create { owner, reviewers, max } => {
                    let mut t = terms(w.height + 30, reviewers, None, 3);
                    t.max_items = u32::from(max);
                    (owner, create(t))
                }
                Action::Join { who, bounty, stake } => (who, join(b(bounty), u128::from(stake) * HIB)),
                Action::Submit { who, bounty, text } => (who, submit(b(bounty), &text.to_string())),
                Action::Commit { who, item, accept } => (who, commit(&keys[who], i(item), accept)),
                Action::Reveal { who, item, accept } => (who, reveal(&keys[who], i(item), accept)),
                Action::Close { who, bounty } => (who, Message::CloseBounty(CloseBounty { bounty: b(bounty) })),
                Action::Finalize { who, bounty } => (who, finalize(b(bounty), Vec::new(), Hash::ZERO)),
                Action::Idle(n) => { w.idle(u64::from(n)); continue; }
            };
            let _ = w.block(vec![(&keys[who], message)]);
            bounties = (0..).take_while(|id| data::bounty(&w.state, *id).unwrap().is_some()).count() as u64;
            items = (0..).take_while(|id| data::item(&w.state, *id).unwrap().is_some()).count() as u64;
            prop_assert_eq!(data::escrow_balance(&w.state).unwrap(), data::query::escrow_owed(&w.state).unwrap());
            prop_assert_eq!(bank::total_supply(&w.state).unwrap(), supply);
            prop_assert_eq!(liquid(&w), start, "tokens appeared or vanished");
            for id in 0..bounties {
                let bounty = data::bounty(&w.state, id).unwrap().unwrap();
                // Never more paid than escrowed, never more items paid than accepted.
                prop_assert!(bounty.paid <= bounty.escrowed);
                prop_assert!(bounty.accepted + bounty.rejected + bounty.unreviewed <= bounty.submitted);
                prop_assert!(bounty.submitted <= bounty.terms.max_items);
            }
        }
    }
}
