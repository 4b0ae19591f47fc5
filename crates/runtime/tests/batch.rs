//! Batch inference jobs on leases through transactions: a batch is submitted by the lease's
//! client and committed by its provider; a line challenged with its receipt and both Merkle
//! proofs opens a challenge the chain's validators judge; upheld, it slashes the provider,
//! refutes the batch and closes the lease; rejected, the challenger's deposit is lost and the
//! batch stands. Bad input is refused with its reason and moves no balance, and the supply
//! only falls by what a resolution burns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::market::{self, BatchStatus, LeaseStatus};
use hibana_runtime::{bank, verify};
use hibana_types::records::market::{
    BATCH_INPUT_LEAF_DOMAIN, BATCH_RESULT_LEAF_DOMAIN, DISPUTE_SLASH, DISPUTE_WINDOW_BLOCKS,
    LINE_ANSWER_BLOCKS, LINE_POST_FEE, LINE_RECHECK_BLOCKS, LINE_REQUEST_DEPOSIT,
    LINES_PER_POST_TX, batch_leaf,
};
use hibana_types::records::verify::{CHAIN_JUDGED, ChallengeStatus, receipt_id};
use hibana_types::{
    Address, Amount, CommitBatch, DisputeBatchLine, Hash, InferenceReceipt, Message, PostBatchLine,
    ReceiptBody, RequestBatchLine, SecretKey, SubmitBatch, Transfer, VoteChallenge, count_proof,
    count_root, merkle_proof, merkle_root,
};
use proptest::prelude::*;

mod common;

use common::World;

const HIB: u128 = 1_000_000_000;

fn addr(k: &SecretKey) -> Address {
    k.public_key().address()
}

/// A batch of `n` requests answered by `p`: requests, responses, receipts and both roots.
struct Answered {
    requests: Vec<Vec<u8>>,
    responses: Vec<Vec<u8>>,
    receipts: Vec<InferenceReceipt>,
    /// Each line's result leaf and its count (1: answered), as the provider commits them.
    leaves: Vec<(Hash, u32)>,
    /// The answered lines the provider commits.
    answered: u32,
}

impl Answered {
    fn new(p: &SecretKey, n: u32) -> Answered {
        let requests: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("{{\"prompt\":\"line {i}\"}}").into_bytes())
            .collect();
        let responses: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("{{\"text\":\"answer {i}\"}}").into_bytes())
            .collect();
        let receipts = requests
            .iter()
            .zip(&responses)
            .map(|(q, a)| {
                ReceiptBody {
                    provider: p.public_key(),
                    model_hash: Hash([5; 32]),
                    request_hash: Hash::digest(q),
                    response_hash: Hash::digest(a),
                    prompt_tokens: 3,
                    completion_tokens: 2,
                    price: Amount(500),
                    timestamp_ms: 1,
                }
                .sign(p)
            })
            .collect::<Vec<_>>();
        let leaves = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    batch_leaf(BATCH_RESULT_LEAF_DOMAIN, i as u32, &receipt_id(r)),
                    1,
                )
            })
            .collect();
        Answered {
            requests,
            responses,
            receipts,
            leaves,
            answered: n,
        }
    }

    fn input_leaves(&self) -> Vec<Hash> {
        self.requests
            .iter()
            .enumerate()
            .map(|(i, q)| batch_leaf(BATCH_INPUT_LEAF_DOMAIN, i as u32, &Hash::digest(q)))
            .collect()
    }

    fn results_root(&self) -> Hash {
        count_root(&self.leaves).unwrap().0
    }

    fn submit(&self) -> Message {
        self.submit_priced(Amount::ZERO)
    }

    fn submit_priced(&self, price_per_line: Amount) -> Message {
        Message::SubmitBatch(SubmitBatch {
            lease: 0,
            input_root: merkle_root(&self.input_leaves()),
            lines: self.requests.len() as u32,
            input_bytes: 1_000,
            price_per_line,
        })
    }

    fn commit(&self) -> Message {
        Message::CommitBatch(CommitBatch {
            batch: 0,
            results_root: self.results_root(),
            answered: self.answered,
        })
    }

    fn dispute(&self, line: u32) -> DisputeBatchLine {
        let i = line as usize;
        DisputeBatchLine {
            batch: 0,
            line,
            receipt: self.receipts[i].clone(),
            request: self.requests[i].clone(),
            response: self.responses[i].clone(),
            input_proof: merkle_proof(&self.input_leaves(), i).unwrap(),
            result_proof: count_proof(&self.leaves, i).unwrap(),
            deposit: Amount(HIB),
        }
    }
}

impl Answered {
    /// Makes `line` a refusal without a signature (an error body), its leaf counting `count`.
    fn refuse_unsigned(&mut self, line: usize, count: u32) {
        let error = b"{\"error\":{\"message\":\"the model is busy\"}}".to_vec();
        self.leaves[line] = (
            batch_leaf(BATCH_RESULT_LEAF_DOMAIN, line as u32, &Hash::digest(&error)),
            count,
        );
        self.responses[line] = error;
    }

    fn post(&self, line: u32) -> PostBatchLine {
        let d = self.dispute(line);
        PostBatchLine {
            batch: 0,
            line,
            request: d.request,
            response: d.response,
            receipt: Some(d.receipt),
            input_proof: d.input_proof,
            result_proof: d.result_proof,
        }
    }
}

fn request(line: u32) -> Message {
    Message::RequestBatchLine(RequestBatchLine { batch: 0, line })
}

struct Cast {
    w: World,
    client: SecretKey,
    provider: SecretKey,
    bob: SecretKey,
    batch: Answered,
}

/// A lease, a batch of 5 lines submitted and committed, and a validator that can pay its votes.
fn cast() -> Cast {
    let (client, provider, bob) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let mut w = World::new(&[&client, &provider, &bob], Amount(1_000 * HIB));
    let validator = addr(&w.validator);
    w.ok(
        &bob,
        Message::Transfer(Transfer {
            to: validator,
            amount: Amount(HIB),
        }),
    );
    w.lease(&client, &provider, 0);
    let batch = Answered::new(&provider, 5);
    w.ok(&client, batch.submit());
    Cast {
        w,
        client,
        provider,
        bob,
        batch,
    }
}

#[test]
fn an_upheld_line_slashes_the_provider_refutes_the_batch_and_closes_the_lease() {
    let Cast {
        mut w,
        client,
        provider,
        batch,
        ..
    } = cast();
    let supply = bank::total_supply(&w.state).unwrap();
    // Only the provider commits, and only once.
    w.fails(&client, batch.commit(), "answered by");
    w.ok(&provider, batch.commit());
    w.fails(&provider, batch.commit(), "committed already");
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    assert_eq!(b.status, BatchStatus::Done);
    assert_eq!(b.answered, 5);

    let bond = market::provider(&w.state, &addr(&provider))
        .unwrap()
        .unwrap()
        .bond;
    w.ok(&client, Message::DisputeBatchLine(batch.dispute(3)));
    let c = verify::challenge(&w.state, 0).unwrap().unwrap();
    assert_eq!(c.subnet, CHAIN_JUDGED);
    assert_eq!(c.status, ChallengeStatus::Open);
    assert_eq!(c.electorate_size, 1, "the chain's one validator judges");
    // The same line cannot be challenged twice, and the provider cannot challenge itself.
    w.fails(
        &client,
        Message::DisputeBatchLine(batch.dispute(3)),
        "challenged already",
    );
    w.fails(
        &provider,
        Message::DisputeBatchLine(batch.dispute(2)),
        "its own answer",
    );

    let validator = SecretKey::from_bytes(w.validator.to_bytes());
    w.ok(
        &validator,
        Message::VoteChallenge(VoteChallenge { id: 0, wrong: true }),
    );
    let c = verify::challenge(&w.state, 0).unwrap().unwrap();
    assert_eq!(c.status, ChallengeStatus::Upheld);
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    assert_eq!(b.status, BatchStatus::Refuted);
    assert_eq!(b.refuted_line, Some(3));
    assert_eq!(
        market::lease(&w.state, 0).unwrap().unwrap().status,
        LeaseStatus::Closed
    );
    let after = market::provider(&w.state, &addr(&provider))
        .unwrap()
        .unwrap()
        .bond;
    let slashed = c.settlement.as_ref().unwrap().slashed;
    assert!(slashed.0 > 0);
    assert_eq!(after.0, bond.0 - slashed.0);
    // Tokens only left the supply by the resolution's burn (fees stay with the proposer).
    let burned = c.settlement.as_ref().unwrap().burned;
    assert_eq!(bank::total_supply(&w.state).unwrap().0, supply.0 - burned.0);
    // A refuted batch takes no further challenge.
    w.fails(
        &client,
        Message::DisputeBatchLine(batch.dispute(1)),
        "refuted already",
    );
}

#[test]
fn a_rejected_line_costs_the_deposit_and_the_batch_stands() {
    let Cast {
        mut w,
        provider,
        bob,
        batch,
        ..
    } = cast();
    w.ok(&provider, batch.commit());
    let before = w.balance(&addr(&bob));
    w.ok(&bob, Message::DisputeBatchLine(batch.dispute(0)));
    let validator = SecretKey::from_bytes(w.validator.to_bytes());
    w.ok(
        &validator,
        Message::VoteChallenge(VoteChallenge {
            id: 0,
            wrong: false,
        }),
    );
    let c = verify::challenge(&w.state, 0).unwrap().unwrap();
    assert_eq!(c.status, ChallengeStatus::Rejected);
    assert_eq!(w.balance(&addr(&bob)).0, before.0 - HIB - common::FEE);
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    assert_eq!(b.status, BatchStatus::Done);
    assert_eq!(
        market::lease(&w.state, 0).unwrap().unwrap().status,
        LeaseStatus::Active
    );
}

#[test]
fn bad_batches_and_disputes_are_refused_with_their_reason_and_balances_untouched() {
    let Cast {
        mut w,
        client,
        provider,
        bob,
        batch,
    } = cast();
    // Submitting: someone else's lease, no lines, too many bytes, a lease that does not exist.
    w.fails(&bob, batch.submit(), "only its client");
    let mut empty = SubmitBatch {
        lease: 0,
        input_root: Hash::ZERO,
        lines: 0,
        input_bytes: 10,
        price_per_line: Amount::ZERO,
    };
    w.fails(
        &client,
        Message::SubmitBatch(empty.clone()),
        "1 to 10000 lines",
    );
    empty.lines = 1;
    empty.input_bytes = u64::MAX;
    w.fails(&client, Message::SubmitBatch(empty.clone()), "bytes");
    empty.input_bytes = 1;
    empty.lease = 9;
    w.fails(
        &client,
        Message::SubmitBatch(empty),
        "lease 9 does not exist",
    );
    // Disputing before the commit.
    w.fails(
        &client,
        Message::DisputeBatchLine(batch.dispute(0)),
        "not committed yet",
    );
    w.ok(&provider, batch.commit());
    // A response that is not the one signed.
    let mut d = batch.dispute(0);
    d.response = b"{\"text\":\"other\"}".to_vec();
    w.fails(
        &client,
        Message::DisputeBatchLine(d),
        "does not match the receipt",
    );
    // A receipt of another line under this line's number.
    let mut d = batch.dispute(1);
    d.line = 2;
    w.fails(&client, Message::DisputeBatchLine(d), "not line 2");
    // A receipt that is not among the committed results (re-signed by the provider).
    let mut d = batch.dispute(1);
    let mut body = d.receipt.body.clone();
    body.timestamp_ms = 99;
    d.receipt = body.sign(&provider);
    w.fails(&client, Message::DisputeBatchLine(d), "results root");
    // A receipt of another key.
    let mut d = batch.dispute(1);
    let mut body = d.receipt.body.clone();
    body.provider = bob.public_key();
    d.receipt = body.sign(&bob);
    w.fails(&client, Message::DisputeBatchLine(d), "is answered by");
    // A deposit below the minimum, a line out of range, an over-long proof.
    let mut d = batch.dispute(1);
    d.deposit = Amount(1);
    w.fails(&client, Message::DisputeBatchLine(d), "minimum");
    let mut d = batch.dispute(1);
    d.line = 5;
    w.fails(&client, Message::DisputeBatchLine(d), "lines 0 to 4");
    let mut d = batch.dispute(1);
    d.input_proof = vec![d.input_proof[0]; 33];
    w.fails(&client, Message::DisputeBatchLine(d), "at most 32");
    // After the window.
    w.idle(DISPUTE_WINDOW_BLOCKS + 1);
    w.fails(
        &client,
        Message::DisputeBatchLine(batch.dispute(1)),
        "could be challenged until",
    );
}

/// A client, a provider and a lease 0 between them (200 blocks), and a batch of 5 answers.
fn priced() -> (World, SecretKey, SecretKey, Answered) {
    let (client, provider) = (SecretKey::generate(), SecretKey::generate());
    let mut w = World::new(&[&client, &provider], Amount(1_000 * HIB));
    w.lease(&client, &provider, 0);
    let batch = Answered::new(&provider, 5);
    (w, client, provider, batch)
}

#[test]
fn a_priced_batch_pays_its_answered_lines_once_unchallengeable_and_refunds_the_rest() {
    let (mut w, client, provider, batch) = priced();
    let price = Amount(7 * HIB / 100);
    let supply = bank::total_supply(&w.state).unwrap();
    let c0 = w.balance(&addr(&client));
    let escrow0 = w.balance(&market::MARKET_ESCROW);
    w.ok(&client, batch.submit_priced(price));
    assert_eq!(
        w.balance(&addr(&client)).0,
        c0.0 - 5 * price.0 - common::FEE
    );
    assert_eq!(w.balance(&market::MARKET_ESCROW).0, escrow0.0 + 5 * price.0);
    // Three of five lines answered: the pay waits for the dispute window and the votes after.
    let mut batch = batch;
    for line in [3, 4] {
        batch.leaves[line].1 = 0;
    }
    batch.answered = 3;
    w.ok(&provider, batch.commit());
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    assert_eq!(b.escrow(), Amount(5 * price.0));
    w.idle(b.pay_at() - w.height - 1);
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Done
    );
    // The lease ended long before: in the settling block only the batch's escrow moves.
    let before = (w.balance(&addr(&client)), w.balance(&addr(&provider)));
    w.idle(1);
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    assert_eq!(b.status, BatchStatus::Settled);
    assert_eq!(w.balance(&addr(&client)).0, before.0.0 + 2 * price.0);
    assert_eq!(w.balance(&addr(&provider)).0, before.1.0 + 3 * price.0);
    // Nothing was minted or lost.
    assert_eq!(bank::total_supply(&w.state).unwrap(), supply);
    // A settled batch can no longer be challenged.
    w.fails(
        &client,
        Message::DisputeBatchLine(batch.dispute(1)),
        "batch 0",
    );
}

#[test]
fn a_priced_batch_never_committed_is_refunded_when_its_lease_ends() {
    let (mut w, client, provider, batch) = priced();
    let price = Amount(HIB);
    // More than the client holds, and more than a u128 holds.
    w.fails(
        &client,
        batch.submit_priced(Amount(400 * HIB)),
        "insufficient",
    );
    w.fails(&client, batch.submit_priced(Amount(u128::MAX)), "overflows");
    w.ok(&client, batch.submit_priced(price));
    let c1 = w.balance(&addr(&client));
    let ends = market::lease(&w.state, 0).unwrap().unwrap().ends_at;
    w.idle(ends - w.height);
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    assert_eq!(b.status, BatchStatus::Expired);
    assert!(w.balance(&addr(&client)).0 >= c1.0 + 5 * price.0);
    w.fails(&provider, batch.commit(), "expired");
}

#[test]
fn a_refuted_priced_batch_refunds_its_escrow_to_the_client() {
    let (mut w, client, provider, batch) = priced();
    let bob = SecretKey::generate();
    w.ok(
        &client,
        Message::Transfer(Transfer {
            to: addr(&bob),
            amount: Amount(10 * HIB),
        }),
    );
    w.ok(
        &client,
        Message::Transfer(Transfer {
            to: addr(&w.validator),
            amount: Amount(HIB),
        }),
    );
    let price = Amount(HIB / 10);
    w.ok(&client, batch.submit_priced(price));
    w.ok(&provider, batch.commit());
    w.ok(&bob, Message::DisputeBatchLine(batch.dispute(3)));
    let lease_escrow = market::lease(&w.state, 0).unwrap().unwrap().escrow;
    let before = w.balance(&addr(&client));
    let validator = SecretKey::from_bytes(w.validator.to_bytes());
    w.ok(
        &validator,
        Message::VoteChallenge(VoteChallenge { id: 0, wrong: true }),
    );
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Refuted
    );
    // The client gets the lease's escrow and the batch's back; the provider none of the pay.
    assert_eq!(
        w.balance(&addr(&client)).0,
        before.0 + lease_escrow.0 + 5 * price.0
    );
    // Nothing is paid later either.
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    w.idle(b.pay_at() + 1 - w.height);
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Refuted
    );
}

#[test]
fn a_provider_cannot_leave_with_its_bond_while_its_batch_can_be_challenged() {
    let (mut w, client, provider, batch) = priced();
    let price = Amount(HIB / 100);
    w.ok(&client, batch.submit_priced(price));
    // The client takes the results and closes the lease before the commit lands: a priced
    // batch may still be committed (and paid) until the lease's term ends.
    w.ok(
        &client,
        Message::CloseLease(hibana_types::CloseLease { lease: 0 }),
    );
    w.ok(&provider, batch.commit());
    let leave = || Message::DeregisterProvider(hibana_types::DeregisterProvider {});
    w.fails(&provider, leave(), "batch 0, which can be disputed until");
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    w.idle(b.pay_at() + 1 - w.height);
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Settled
    );
    w.ok(&provider, leave());
}

#[test]
fn a_requested_line_posted_on_chain_pays_the_poster_and_can_then_be_challenged() {
    let Cast {
        mut w,
        client,
        provider,
        bob,
        batch,
    } = cast();
    let supply = bank::total_supply(&w.state).unwrap();
    // Nothing to request before the commit.
    w.fails(&bob, request(2), "still running");
    w.ok(&provider, batch.commit());
    // Not the provider itself, not a line past the batch.
    w.fails(&provider, request(2), "its own batch");
    w.fails(&bob, request(5), "lines 0 to 4");
    let b0 = w.balance(&addr(&bob));
    w.ok(&bob, request(2));
    assert_eq!(
        w.balance(&addr(&bob)).0,
        b0.0 - LINE_REQUEST_DEPOSIT.0 - common::FEE
    );
    w.fails(&client, request(2), "requested already");
    let owed = market::owed_lines(&w.state, &addr(&provider), w.height + 1).unwrap();
    assert_eq!(owed.len(), 1);
    assert_eq!((owed[0].line, owed[0].requester), (2, addr(&bob)));
    // Hostile posts: a line nobody asked for, another line's request, a result that is not the
    // committed one, a response the receipt does not cover, a receipt of another key.
    w.fails(
        &provider,
        Message::PostBatchLine(batch.post(1)),
        "not requested",
    );
    let mut p = batch.post(2);
    p.request = batch.requests[1].clone();
    p.receipt = Some(batch.receipts[1].clone());
    p.response = batch.responses[1].clone();
    w.fails(&provider, Message::PostBatchLine(p), "input root");
    let mut p = batch.post(2);
    let mut body = batch.receipts[2].body.clone();
    body.timestamp_ms = 77;
    p.receipt = Some(body.sign(&provider));
    w.fails(&provider, Message::PostBatchLine(p), "results root");
    let mut p = batch.post(2);
    p.response = b"{}".to_vec();
    w.fails(
        &provider,
        Message::PostBatchLine(p),
        "does not match the receipt",
    );
    let mut p = batch.post(2);
    p.receipt = None;
    w.fails(&provider, Message::PostBatchLine(p), "results root");
    let mut p = batch.post(2);
    let mut body = batch.receipts[2].body.clone();
    body.provider = bob.public_key();
    p.receipt = Some(body.sign(&bob));
    w.fails(&bob, Message::PostBatchLine(p), "signed by");
    // The provider posts it and takes the posting fee; bob gets the rest of his deposit back.
    let (p0, b1) = (w.balance(&addr(&provider)), w.balance(&addr(&bob)));
    w.ok(&provider, Message::PostBatchLine(batch.post(2)));
    assert_eq!(
        w.balance(&addr(&provider)).0,
        p0.0 + LINE_POST_FEE.0 - common::FEE
    );
    assert_eq!(
        w.balance(&addr(&bob)).0,
        b1.0 + LINE_REQUEST_DEPOSIT.0 - LINE_POST_FEE.0
    );
    // A second post of the same line does nothing (and pays nothing).
    let p1 = w.balance(&addr(&provider));
    w.ok(&provider, Message::PostBatchLine(batch.post(2)));
    assert_eq!(w.balance(&addr(&provider)).0, p1.0 - common::FEE);
    assert!(
        market::owed_lines(&w.state, &addr(&provider), w.height + 1)
            .unwrap()
            .is_empty()
    );
    // The list leaves the bytes out; the line itself has them.
    let listed = market::line_requests(&w.state, 0).unwrap();
    assert!(listed[0].posted.as_ref().unwrap().response.is_empty());
    let line = market::line_request(&w.state, 0, 2)
        .unwrap()
        .unwrap()
        .posted
        .expect("posted");
    assert_eq!(line.response, batch.responses[2]);
    // Its deadline passes without effect, and what was posted is what a challenge carries.
    w.idle(LINE_ANSWER_BLOCKS + 1);
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Done
    );
    w.ok(
        &bob,
        Message::DisputeBatchLine(DisputeBatchLine {
            batch: 0,
            line: 2,
            receipt: line.receipt.unwrap(),
            request: line.request,
            response: line.response,
            input_proof: line.input_proof,
            result_proof: line.result_proof,
            deposit: Amount(HIB),
        }),
    );
    assert_eq!(bank::total_supply(&w.state).unwrap(), supply);
}

#[test]
fn a_withheld_line_refutes_the_batch_slashes_the_provider_and_pays_the_requester() {
    let Cast {
        mut w,
        client,
        provider,
        bob,
        batch,
    } = cast();
    w.ok(&provider, batch.commit());
    w.ok(&bob, request(1));
    let before = Before::take(&w, &client, &provider, &bob);
    // The deadline's block ends with the line still withheld: the requester gets its deposit
    // back besides its share of the slash.
    w.idle(LINE_ANSWER_BLOCKS);
    before.check_proven_fault(&w, 1, (0, LINE_REQUEST_DEPOSIT.0 as i128));
    // Too late to post, and a refuted batch takes no request.
    w.fails(
        &provider,
        Message::PostBatchLine(batch.post(1)),
        "not requested",
    );
    w.fails(&bob, request(3), "refuted");
}

/// Balances before a batch is refuted for a fault proven on chain: the client's, the
/// provider's bond, the prover's, and the supply.
struct Before {
    client: (Address, Amount),
    provider: (Address, Amount),
    prover: (Address, Amount),
    supply: Amount,
}

impl Before {
    fn take(w: &World, client: &SecretKey, provider: &SecretKey, prover: &SecretKey) -> Before {
        let bond = market::provider(&w.state, &addr(provider))
            .unwrap()
            .unwrap()
            .bond;
        Before {
            client: (addr(client), w.balance(&addr(client))),
            provider: (addr(provider), bond),
            prover: (addr(prover), w.balance(&addr(prover))),
            supply: bank::total_supply(&w.state).unwrap(),
        }
    }

    /// Checks batch 0 refuted at `line` for a proven fault: its lease closed, its provider
    /// slashed 10 HIB, the client paid back what the lease paid (besides what was left of its
    /// 200,000 escrow) less `other.0`, the prover half the slash's rest and `other.1` (its
    /// deposit back, or its fee), no request left, and the other half of the rest burned.
    fn check_proven_fault(&self, w: &World, line: u32, other: (u128, i128)) {
        let b = market::batch(&w.state, 0).unwrap().unwrap();
        assert_eq!(b.status, BatchStatus::Refuted);
        assert_eq!(b.refuted_line, Some(line));
        let lease = market::lease(&w.state, 0).unwrap().unwrap();
        assert_eq!(lease.status, LeaseStatus::Closed);
        let bond = market::provider(&w.state, &self.provider.0)
            .unwrap()
            .unwrap()
            .bond;
        assert_eq!(bond.0, self.provider.1.0 - DISPUTE_SLASH.0);
        let to_client = lease.paid.0.min(DISPUTE_SLASH.0 / 2);
        let rest = DISPUTE_SLASH.0 - to_client;
        assert_eq!(
            w.balance(&self.client.0).0,
            self.client.1.0 + to_client + (200_000 - lease.paid.0) - other.0
        );
        let prover = i128::try_from(self.prover.1.0 + rest / 2).unwrap() + other.1;
        assert_eq!(i128::try_from(w.balance(&self.prover.0).0).unwrap(), prover);
        assert!(market::line_requests(&w.state, 0).unwrap().is_empty());
        assert!(
            market::owed_lines(&w.state, &self.provider.0, w.height + 1)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            bank::total_supply(&w.state).unwrap().0,
            self.supply.0 - (rest - rest / 2)
        );
    }
}

#[test]
fn a_refusal_counted_as_answered_is_proven_by_posting_it_and_refutes_the_batch() {
    let Cast {
        mut w,
        client,
        provider,
        bob,
        mut batch,
    } = cast();
    // Line 4 was refused without a signature, but the provider counts it as answered (and
    // commits 5 answered lines, which the root's total agrees with).
    batch.refuse_unsigned(4, 1);
    w.ok(&provider, batch.commit());
    w.ok(&bob, request(4));
    let before = Before::take(&w, &client, &provider, &bob);
    let mut post = batch.post(4);
    post.receipt = None;
    // Posted by the client, holding the line: the proofs hold only with the line counted, so
    // the count is false. As for a withheld line, the requester gets its deposit back and
    // half the slash's rest; the poster no fee.
    w.ok(&client, Message::PostBatchLine(post));
    before.check_proven_fault(&w, 4, (common::FEE, LINE_REQUEST_DEPOSIT.0 as i128));
}

#[test]
fn a_total_other_than_committed_is_proven_by_any_line_and_refutes_at_once() {
    let Cast {
        mut w,
        client,
        provider,
        bob,
        mut batch,
    } = cast();
    // The root counts line 4 as the refusal it is, but the provider commits 5 answered lines.
    batch.refuse_unsigned(4, 0);
    w.ok(&provider, batch.commit());
    let before = Before::take(&w, &client, &provider, &bob);
    // A challenge of a right answer whose proof shows the total: no vote, no deposit.
    w.ok(&bob, Message::DisputeBatchLine(batch.dispute(0)));
    assert!(verify::challenge(&w.state, 0).unwrap().is_none());
    before.check_proven_fault(&w, 0, (0, -(common::FEE as i128)));
    // Refuted once: the same proof again is refused.
    w.fails(
        &bob,
        Message::DisputeBatchLine(batch.dispute(1)),
        "refuted already",
    );
}

#[test]
fn an_answer_the_root_counts_as_refused_is_a_false_count_too() {
    let Cast {
        mut w,
        client,
        provider,
        bob,
        mut batch,
    } = cast();
    // The root's total (4) is the committed one, but line 2, sold for tokens, is counted 0.
    batch.leaves[2].1 = 0;
    batch.answered = 4;
    w.ok(&provider, batch.commit());
    let before = Before::take(&w, &client, &provider, &bob);
    w.ok(&bob, Message::DisputeBatchLine(batch.dispute(2)));
    // Refuted at once, not opened for a vote.
    assert!(verify::challenge(&w.state, 0).unwrap().is_none());
    before.check_proven_fault(&w, 2, (0, -(common::FEE as i128)));
}

#[test]
fn a_provider_that_proves_its_own_false_count_as_its_own_client_still_loses_a_quarter() {
    use hibana_types::WithdrawLease;
    use hibana_types::records::market::BID_DEPOSIT;
    // One party holds the provider, its client and the prover: it leases itself at 1 HIB a
    // block, so the lease has paid more than the slash when the false count is proven.
    let (client, provider, prover) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let mut w = World::new(&[&client, &provider, &prover], Amount(1_000 * HIB));
    w.lease_at(&client, &provider, 0, (Amount(HIB), Amount(40 * HIB), 40));
    w.idle(12);
    w.ok(
        &provider,
        Message::WithdrawLease(WithdrawLease { lease: 0 }),
    );
    let mut batch = Answered::new(&provider, 5);
    batch.refuse_unsigned(4, 0);
    w.ok(&client, batch.submit());
    w.ok(&provider, batch.commit());
    let party = |w: &World| -> u128 {
        [&client, &provider, &prover]
            .iter()
            .map(|k| w.balance(&addr(k)).0)
            .sum::<u128>()
            + market::provider(&w.state, &addr(&provider))
                .unwrap()
                .unwrap()
                .bond
                .0
    };
    let (supply, held) = (bank::total_supply(&w.state).unwrap(), party(&w));
    let escrow = market::lease(&w.state, 0).unwrap().unwrap().escrow;
    w.ok(&prover, Message::DisputeBatchLine(batch.dispute(0)));
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Refuted
    );
    assert!(market::lease(&w.state, 0).unwrap().unwrap().paid.0 > DISPUTE_SLASH.0);
    // Refund 5 HIB (half the slash), 2.5 HIB to the prover, 2.5 HIB burned: the party is poorer
    // by that and the fee, besides the lease's unspent escrow coming back to the client and
    // the bid deposit to the provider.
    assert_eq!(
        bank::total_supply(&w.state).unwrap().0,
        supply.0 - DISPUTE_SLASH.0 / 4
    );
    assert_eq!(
        party(&w),
        held + escrow.0 + BID_DEPOSIT.0 - DISPUTE_SLASH.0 / 4 - common::FEE
    );
}

#[test]
fn an_honest_count_is_not_refuted_by_a_post_and_forged_counts_do_not_prove() {
    let Cast {
        mut w,
        provider,
        bob,
        batch,
        ..
    } = cast();
    w.ok(&provider, batch.commit());
    w.ok(&bob, request(2));
    // The line's proof with its sibling's count changed proves nothing.
    let mut forged = batch.post(2);
    forged.result_proof[0].count ^= 1;
    w.fails(&bob, Message::PostBatchLine(forged), "not line 2's");
    let mut forged = batch.post(2);
    forged.result_proof[0].left ^= true;
    w.fails(&bob, Message::PostBatchLine(forged), "not line 2's");
    w.ok(&bob, Message::PostBatchLine(batch.post(2)));
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Done
    );
}

#[test]
fn a_request_on_a_batch_refuted_meanwhile_returns_its_deposit_and_late_requests_are_refused() {
    let Cast {
        mut w,
        client,
        provider,
        bob,
        batch,
    } = cast();
    w.ok(&provider, batch.commit());
    w.ok(&bob, request(0));
    // The client's challenge of line 3 is upheld before line 0's deadline.
    w.ok(&client, Message::DisputeBatchLine(batch.dispute(3)));
    let validator = SecretKey::from_bytes(w.validator.to_bytes());
    let b0 = w.balance(&addr(&bob));
    w.ok(
        &validator,
        Message::VoteChallenge(VoteChallenge { id: 0, wrong: true }),
    );
    // The refutation ends the open request at once: bob's deposit is back, nothing is owed.
    assert_eq!(w.balance(&addr(&bob)).0, b0.0 + LINE_REQUEST_DEPOSIT.0);
    assert!(market::line_requests(&w.state, 0).unwrap().is_empty());
    assert!(
        market::owed_lines(&w.state, &addr(&provider), w.height + 1)
            .unwrap()
            .is_empty()
    );
    let bond = market::provider(&w.state, &addr(&provider))
        .unwrap()
        .unwrap()
        .bond;
    w.idle(LINE_ANSWER_BLOCKS);
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    assert_eq!(b.refuted_line, Some(3), "refuted once, by the challenge");
    assert_eq!(w.balance(&addr(&bob)).0, b0.0 + LINE_REQUEST_DEPOSIT.0);
    let after = market::provider(&w.state, &addr(&provider))
        .unwrap()
        .unwrap()
        .bond;
    assert_eq!(after, bond, "no second slash");

    // Another batch: a line requested at the end of the dispute window stretches the window
    // (and the pay) to its deadline plus the re-check time; later requests are refused.
    let (mut w, client, provider, batch) = priced();
    let bob = SecretKey::generate();
    w.ok(
        &client,
        Message::Transfer(Transfer {
            to: addr(&bob),
            amount: Amount(10 * HIB),
        }),
    );
    w.ok(&client, batch.submit());
    w.ok(&provider, batch.commit());
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    let (until, pay_at) = (b.request_until(), b.pay_at());
    w.idle(until - w.height - 1);
    w.ok(&bob, request(0));
    let r = market::line_request(&w.state, 0, 0).unwrap().unwrap();
    let b = market::batch(&w.state, 0).unwrap().unwrap();
    assert_eq!(b.dispute_until(), r.due + LINE_RECHECK_BLOCKS);
    assert!(b.pay_at() > pay_at);
    w.fails(&bob, request(1), "could be requested until");
    w.ok(&provider, Message::PostBatchLine(batch.post(0)));
    // Not paid at the old height; paid at the new one.
    w.idle(pay_at - w.height + 1);
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Done
    );
    let new_pay_at = b.pay_at();
    w.idle(new_pay_at - w.height + 1);
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Settled
    );
}

#[test]
fn a_flood_of_requests_is_spread_over_deadlines_a_provider_can_meet() {
    let (mut w, client, provider, _) = priced();
    let batch = Answered::new(&provider, 40);
    w.ok(&client, batch.submit());
    w.ok(&provider, batch.commit());
    // 40 requests in one block: every line owed moves the next deadline a block later.
    let requests: Vec<(&SecretKey, Message)> = (0..40).map(|i| (&client, request(i))).collect();
    let outcomes = w.block(requests);
    assert!(
        outcomes
            .iter()
            .all(|o| *o == hibana_types::TxOutcome::Success)
    );
    let owed = market::owed_lines(&w.state, &addr(&provider), w.height + 1).unwrap();
    assert_eq!(owed.len(), 40);
    let first = owed[0].due;
    for (i, r) in owed.iter().enumerate() {
        assert_eq!(r.due, first + i as u64);
    }
    // One transaction of 3 posts a block meets every deadline, with room to spare.
    let per_tx = LINES_PER_POST_TX as usize;
    for chunk in owed.chunks(per_tx) {
        let posts: Vec<(&SecretKey, Message)> = chunk
            .iter()
            .map(|r| (&provider, Message::PostBatchLine(batch.post(r.line))))
            .collect();
        assert!(w.height < chunk[0].due);
        let outcomes = w.block(posts);
        assert!(
            outcomes
                .iter()
                .all(|o| *o == hibana_types::TxOutcome::Success)
        );
    }
    assert!(
        market::owed_lines(&w.state, &addr(&provider), w.height + 1)
            .unwrap()
            .is_empty()
    );
    w.idle(LINE_ANSWER_BLOCKS + 20);
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Done
    );
}

#[test]
fn a_refused_line_is_posted_without_a_receipt() {
    let (mut w, client, provider, mut batch) = priced();
    // Line 4 was refused: its result leaf is the error body's hash.
    let error = b"{\"error\":{\"message\":\"the prompt is empty\"}}".to_vec();
    batch.responses[4] = error.clone();
    batch.leaves[4] = (
        batch_leaf(BATCH_RESULT_LEAF_DOMAIN, 4, &Hash::digest(&error)),
        0,
    );
    batch.answered = 4;
    w.ok(&client, batch.submit());
    w.ok(&provider, batch.commit());
    w.ok(&client, request(4));
    let post = PostBatchLine {
        batch: 0,
        line: 4,
        request: batch.requests[4].clone(),
        response: error,
        receipt: None,
        input_proof: merkle_proof(&batch.input_leaves(), 4).unwrap(),
        result_proof: count_proof(&batch.leaves, 4).unwrap(),
    };
    w.ok(&provider, Message::PostBatchLine(post));
    let posted = market::line_request(&w.state, 0, 4).unwrap().unwrap();
    assert!(posted.posted.unwrap().receipt.is_none());
    // Posted lines leave state when the batch settles.
    let pay_at = market::batch(&w.state, 0).unwrap().unwrap().pay_at();
    w.idle(pay_at - w.height);
    assert_eq!(
        market::batch(&w.state, 0).unwrap().unwrap().status,
        BatchStatus::Settled
    );
    assert!(market::line_requests(&w.state, 0).unwrap().is_empty());
}

/// A step of the line-request property test.
#[derive(Debug, Clone)]
enum LineAction {
    /// The client (`false`) or bob (`true`) requests a line.
    Request { bob: bool, line: u32 },
    /// The provider posts a line: as committed, or (`forged`) with another response.
    Post { line: u32, forged: bool },
    /// Empty blocks.
    Idle(u64),
}

fn line_action() -> impl Strategy<Value = LineAction> {
    prop_oneof![
        3 => (any::<bool>(), 0u32..6).prop_map(|(bob, line)| LineAction::Request { bob, line }),
        3 => (0u32..5, prop::bool::weighted(0.2)).prop_map(|(line, forged)| LineAction::Post { line, forged }),
        2 => (1u64..30).prop_map(LineAction::Idle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Over random requests, posts (some forged) and waits, by a provider whose count is
    /// honest or (`lie`) counts an answer as refused: supply is conserved, the market's escrow
    /// always covers the batch's escrow and the open requests' deposits, a forged post is
    /// refused, a post of a lying provider's line refutes the batch at once, the provider is
    /// slashed exactly when the batch is refuted and only for a line it was asked for and did
    /// not post validly, and a batch that settles leaves no request behind.
    #[test]
    fn line_requests_conserve_supply_and_slash_only_withheld_lines(
        actions in prop::collection::vec(line_action(), 1..30),
        lie in any::<bool>(),
    ) {
        let (mut w, client, provider, mut batch) = priced();
        if lie {
            batch.leaves[4].1 = 0;
        }
        let bob = SecretKey::generate();
        w.ok(&client, Message::Transfer(Transfer { to: addr(&bob), amount: Amount(10 * HIB) }));
        w.ok(&client, batch.submit_priced(Amount(HIB / 100)));
        w.ok(&provider, batch.commit());
        let supply = bank::total_supply(&w.state).unwrap();
        let bond = market::provider(&w.state, &addr(&provider)).unwrap().unwrap().bond;
        let mut posted = std::collections::BTreeSet::new();
        let mut requested = std::collections::BTreeSet::new();
        for a in actions {
            match a {
                LineAction::Request { bob: by_bob, line } => {
                    let who = if by_bob { &bob } else { &client };
                    if w.block(vec![(who, request(line))])[0] == hibana_types::TxOutcome::Success {
                        requested.insert(line);
                    }
                }
                LineAction::Post { line, forged } => {
                    let mut p = batch.post(line);
                    if forged {
                        p.response = b"{\"text\":\"made up\"}".to_vec();
                    }
                    let ok = w.block(vec![(&provider, Message::PostBatchLine(p))])[0]
                        == hibana_types::TxOutcome::Success;
                    prop_assert!(!(ok && forged), "a forged line was accepted");
                    let refuted = market::batch(&w.state, 0).unwrap().unwrap().status
                        == BatchStatus::Refuted;
                    if ok {
                        prop_assert!(requested.contains(&line), "an unrequested line was posted");
                        // (An honest batch may be refuted in the same block by a withheld line.)
                        prop_assert!(refuted || !lie, "a post did not refute a lying batch");
                        if !lie {
                            posted.insert(line);
                        }
                    }
                }
                LineAction::Idle(n) => w.idle(n),
            }
            prop_assert_eq!(bank::total_supply(&w.state).unwrap().0 + burned(&w), supply.0);
            let b = market::batch(&w.state, 0).unwrap().unwrap();
            let open: u128 = market::line_requests(&w.state, 0)
                .unwrap()
                .iter()
                .filter(|r| r.posted.is_none())
                .map(|r| r.deposit.0)
                .sum();
            let held = if b.status == BatchStatus::Done { b.escrow().0 } else { 0 };
            let after = market::provider(&w.state, &addr(&provider)).unwrap().unwrap().bond;
            prop_assert!(w.balance(&market::MARKET_ESCROW).0 >= held + open + after.0);
            match b.status {
                BatchStatus::Refuted => {
                    let line = b.refuted_line.unwrap();
                    prop_assert!(requested.contains(&line) && !posted.contains(&line));
                    prop_assert_eq!(after.0, bond.0 - DISPUTE_SLASH.0);
                }
                _ => prop_assert_eq!(after, bond),
            }
        }
        // Run the batch to its end: settled, unless a withheld line refuted it.
        let pay_at = market::batch(&w.state, 0).unwrap().unwrap().pay_at();
        w.idle(pay_at.saturating_sub(w.height) + 1);
        let b = market::batch(&w.state, 0).unwrap().unwrap();
        let withheld = requested.difference(&posted).count();
        prop_assert_eq!(b.status == BatchStatus::Refuted, withheld > 0);
        if b.status == BatchStatus::Settled {
            prop_assert!(market::line_requests(&w.state, 0).unwrap().is_empty());
        }
        prop_assert_eq!(bank::total_supply(&w.state).unwrap().0 + burned(&w), supply.0);
    }
}

/// What a refuted batch's slash burned: half of what is left once the client is paid back
/// what its lease paid, up to half the slash (nothing while the batch stands).
fn burned(w: &World) -> u128 {
    if market::batch(&w.state, 0).unwrap().unwrap().status != BatchStatus::Refuted {
        return 0;
    }
    let paid = market::lease(&w.state, 0).unwrap().unwrap().paid;
    let rest = DISPUTE_SLASH.0 - paid.0.min(DISPUTE_SLASH.0 / 2);
    rest - rest / 2
}
