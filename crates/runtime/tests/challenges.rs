//! Challenges against signed inference receipts, through transactions: every refusal with its
//! reason and balances untouched, the upheld, rejected and no-quorum outcomes to the base unit,
//! a provider that leaves the market while challenged, the mempool's dry run, and a property
//! test that random challenge and vote sequences conserve the supply (every token burned is
//! accounted for) and that the escrows hold exactly what they owe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::{
    BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState, bank, begin_block,
    deliver_tx, end_block,
    market::{self, MARKET_ESCROW, MIN_PROVIDER_BOND},
    verify::{
        self, CHALLENGE_ESCROW, CHALLENGE_FUTURE_SLACK_MS, CHALLENGE_VOTING_BLOCKS,
        CHALLENGE_WINDOW_MS, ChallengeFilter, ChallengeStatus, MAX_CHALLENGE_REQUEST_BYTES,
        MIN_CHALLENGE_DEPOSIT,
    },
};
use hibana_types::records::market::ProviderAttributes;
use hibana_types::records::subnets::SUBNET_DEPOSITS;
use hibana_types::{
    Address, Amount, Bond, ChallengeReceipt, CreateSubnet, DeregisterProvider, Hash,
    InferenceReceipt, Message, NeuronRole, ReceiptBody, RegisterNeuron, RegisterProvider,
    SecretKey, SubnetParams, Transaction, TxOutcome, VoteChallenge,
};
use proptest::prelude::*;

const CHAIN: &str = "challenge-test";
const FEE: u128 = 1_000;
const HIB: u128 = 1_000_000_000;
/// The block time of height 0; each block is one second later.
const T0: u64 = 1_700_000_000_000;
const REQUEST: &[u8] = br#"{"model":"chat","messages":[{"role":"user","content":"2+2?"}]}"#;
const RESPONSE: &[u8] = br#"{"choices":[{"message":{"content":"5"}}]}"#;

struct World {
    state: MemState,
    validator: SecretKey,
    accounts: Vec<Address>,
    height: u64,
}

impl World {
    fn new(keys: &[&SecretKey], balance: Amount) -> World {
        let validator = SecretKey::generate();
        let genesis = Genesis {
            market: Default::default(),
            chain_id: CHAIN.into(),
            genesis_time_ms: T0,
            params: Default::default(),
            accounts: keys
                .iter()
                .map(|k| GenesisAccount {
                    address: addr(k),
                    balance,
                })
                .collect(),
            validators: vec![GenesisValidator {
                public_key: validator.public_key(),
                stake: Amount(HIB),
            }],
        };
        let mut state = MemState::default();
        hibana_runtime::init_genesis(&mut state, &genesis).unwrap();
        let mut accounts: Vec<Address> = keys.iter().map(|k| addr(k)).collect();
        accounts.push(validator.public_key().address());
        World {
            state,
            validator,
            accounts,
            height: 0,
        }
    }

    fn now(&self) -> u64 {
        T0 + self.height * 1_000
    }

    fn ctx(&self) -> BlockContext {
        BlockContext {
            chain_id: CHAIN.into(),
            height: self.height,
            time_ms: self.now(),
            proposer: self.validator.public_key().address(),
        }
    }

    fn tx(&self, key: &SecretKey, message: Message) -> hibana_types::SignedTransaction {
        let nonce = bank::account(&self.state, &addr(key)).unwrap().nonce;
        Transaction {
            chain_id: CHAIN.into(),
            signer: key.public_key(),
            nonce,
            fee: Amount(FEE),
            messages: vec![message],
        }
        .sign(key)
    }

    /// Runs one block with these (signer, message) transactions; returns each outcome.
    fn block(&mut self, txs: Vec<(&SecretKey, Message)>) -> Vec<TxOutcome> {
        self.height += 1;
        let ctx = self.ctx();
        begin_block(&mut self.state, &ctx).unwrap();
        let mut outcomes = Vec::new();
        for (i, (key, message)) in txs.into_iter().enumerate() {
            let tx = self.tx(key, message);
            let outcome = hibana_runtime::check_stateless(&tx, CHAIN, &Default::default())
                .map_err(|e| e.to_string())
                .and_then(|tx| {
                    deliver_tx(&mut self.state, &ctx, &tx, i as u32)
                        .unwrap()
                        .map_err(|e| e.to_string())
                })
                .map_or_else(
                    |e| TxOutcome::Failed(format!("rejected: {e}")),
                    |r| r.outcome,
                );
            outcomes.push(outcome);
        }
        end_block(&mut self.state, &ctx).unwrap();
        outcomes
    }

    fn ok(&mut self, key: &SecretKey, message: Message) {
        let outcome = self.block(vec![(key, message)]).remove(0);
        assert_eq!(outcome, TxOutcome::Success);
    }

    /// The message fails mentioning `needle`; no balance but the signer's moves (by the fee, if
    /// the transaction was included), and no bond or challenge changes.
    fn fails(&mut self, key: &SecretKey, message: Message, needle: &str) {
        let before = self.balances();
        let bonds = self.bonds();
        let challenges = verify::challenge_count(&self.state).unwrap();
        let supply = bank::total_supply(&self.state).unwrap();
        match &self.block(vec![(key, message)])[0] {
            TxOutcome::Failed(reason) => {
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
            }
            TxOutcome::Success => panic!("expected a failure mentioning {needle:?}"),
        }
        assert_eq!(self.bonds(), bonds, "a bond moved");
        assert_eq!(verify::challenge_count(&self.state).unwrap(), challenges);
        assert_eq!(bank::total_supply(&self.state).unwrap(), supply);
        let signer = addr(key);
        let proposer = self.validator.public_key().address();
        for (address, balance) in before {
            let now = self.balance(&address);
            if address == signer {
                assert!(
                    now == balance || now.0 + FEE == balance.0,
                    "the signer lost more than the fee"
                );
            } else if address != proposer {
                assert_eq!(now, balance, "a balance moved: {address}");
            }
        }
    }

    fn balance(&self, address: &Address) -> Amount {
        bank::account(&self.state, address).unwrap().balance
    }

    /// Every account's balance, the module accounts' included.
    fn balances(&self) -> Vec<(Address, Amount)> {
        self.accounts
            .iter()
            .chain([&MARKET_ESCROW, &CHALLENGE_ESCROW, &SUBNET_DEPOSITS])
            .map(|a| (*a, self.balance(a)))
            .collect()
    }

    fn bonds(&self) -> Vec<(Address, Amount)> {
        market::query::providers(&self.state)
            .unwrap()
            .into_iter()
            .map(|p| (p.address, p.bond))
            .collect()
    }

    fn bond(&self, provider: &SecretKey) -> Amount {
        market::provider(&self.state, &addr(provider))
            .unwrap()
            .unwrap()
            .bond
    }

    fn idle(&mut self, blocks: u64) {
        for _ in 0..blocks {
            self.block(Vec::new());
        }
    }

    fn challenge(&self, id: u64) -> verify::Challenge {
        verify::challenge(&self.state, id).unwrap().unwrap()
    }
}

fn addr(k: &SecretKey) -> Address {
    k.public_key().address()
}

fn gpu_box() -> ProviderAttributes {
    ProviderAttributes {
        cores: 8,
        memory_mib: 16_384,
        gpu_model: String::new(),
        gpu_count: 0,
        region: "eu-west".into(),
        models: vec![Hash::digest(b"smollm2")],
    }
}

fn register_provider() -> Message {
    Message::RegisterProvider(RegisterProvider {
        attributes: gpu_box(),
        price_per_block: Amount(1_000),
        price_per_token: Amount(1),
        endpoint: "http://127.0.0.1:9000".into(),
        bond: MIN_PROVIDER_BOND,
    })
}

fn neuron(subnet: u32, role: NeuronRole) -> Message {
    Message::RegisterNeuron(RegisterNeuron {
        subnet,
        role,
        endpoint: "http://127.0.0.1:9".into(),
        model: Hash::ZERO,
    })
}

fn subnet(name: &str, tempo: u64) -> Message {
    Message::CreateSubnet(CreateSubnet {
        name: name.into(),
        task: "chat".into(),
        params: SubnetParams {
            tempo,
            emission_share_ppm: 1_000,
            ..Default::default()
        },
    })
}

/// A receipt signed by `key` over `request` and `response`, of `price`, signed at `at_ms`.
fn receipt(
    key: &SecretKey,
    request: &[u8],
    response: &[u8],
    price: u128,
    at_ms: u64,
) -> InferenceReceipt {
    ReceiptBody {
        provider: key.public_key(),
        model_hash: Hash::digest(b"smollm2"),
        request_hash: Hash::digest(request),
        response_hash: Hash::digest(response),
        prompt_tokens: 12,
        completion_tokens: 3,
        price: Amount(price),
        timestamp_ms: at_ms,
    }
    .sign(key)
}

fn challenge(subnet: u32, receipt: InferenceReceipt, deposit: u128) -> Message {
    Message::ChallengeReceipt(ChallengeReceipt {
        subnet,
        receipt,
        request: REQUEST.to_vec(),
        response: RESPONSE.to_vec(),
        deposit: Amount(deposit),
    })
}

fn vote(id: u64, wrong: bool) -> Message {
    Message::VoteChallenge(VoteChallenge { id, wrong })
}

/// The cast: a provider serving as a miner of subnet 0, a challenger, three validators of
/// subnet 0 with 600, 300 and 100 HIB of stake and a permit, and an outsider.
struct Cast {
    provider: SecretKey,
    challenger: SecretKey,
    v: [SecretKey; 3],
    outsider: SecretKey,
}

const STAKES: [u128; 3] = [600, 300, 100];

fn cast() -> (World, Cast) {
    let c = Cast {
        provider: SecretKey::generate(),
        challenger: SecretKey::generate(),
        v: [
            SecretKey::generate(),
            SecretKey::generate(),
            SecretKey::generate(),
        ],
        outsider: SecretKey::generate(),
    };
    let keys = [
        &c.provider,
        &c.challenger,
        &c.v[0],
        &c.v[1],
        &c.v[2],
        &c.outsider,
    ];
    let mut w = World::new(&keys, Amount(10_000 * HIB));
    w.ok(&c.challenger, subnet("chat", 2));
    w.ok(&c.provider, register_provider());
    w.ok(&c.provider, neuron(0, NeuronRole::Miner));
    let genesis_validator = w.validator.public_key().address();
    for (key, stake) in c.v.iter().zip(STAKES) {
        w.ok(
            key,
            Message::Bond(Bond {
                validator: genesis_validator,
                amount: Amount(stake * HIB),
            }),
        );
        w.ok(key, neuron(0, NeuronRole::Validator));
    }
    // An epoch gives the validators their permits and records their stake.
    w.idle(2);
    let neurons = hibana_runtime::subnets::neurons(&w.state, 0).unwrap();
    assert!(
        neurons
            .iter()
            .filter(|n| n.role == NeuronRole::Validator)
            .all(|n| n.permit),
        "{neurons:?}"
    );
    (w, c)
}

#[test]
fn a_challenge_opens_holding_the_deposit_and_a_tenth_of_the_bond() {
    let (mut w, c) = cast();
    let before = w.balance(&addr(&c.challenger));
    let r = receipt(&c.provider, REQUEST, RESPONSE, HIB / 10, w.now());
    let message = challenge(0, r.clone(), 2 * HIB);
    assert!(
        w.tx(&c.challenger, message.clone())
            .accounts()
            .contains(&addr(&c.provider)),
        "a challenge is listed under its provider's history"
    );
    w.ok(&c.challenger, message);
    assert_eq!(w.balance(&addr(&c.challenger)).0, before.0 - 2 * HIB - FEE);
    assert_eq!(w.bond(&c.provider).0, MIN_PROVIDER_BOND.0 - HIB);
    assert_eq!(w.balance(&CHALLENGE_ESCROW).0, 3 * HIB);
    assert_eq!(w.balance(&MARKET_ESCROW).0, MIN_PROVIDER_BOND.0 - HIB);
    let ch = w.challenge(0);
    assert_eq!(ch.status, ChallengeStatus::Open);
    assert_eq!((ch.deposit.0, ch.held.0), (2 * HIB, HIB));
    assert_eq!(ch.deadline, w.height + CHALLENGE_VOTING_BLOCKS);
    assert_eq!(ch.electorate_stake.0, 1_000 * HIB);
    assert_eq!(ch.electorate_size, 3);
    assert_eq!(ch.provider, addr(&c.provider));
    assert_eq!(ch.receipt_id, verify::receipt_id(&r));
    let content = verify::challenge_content(&w.state, 0).unwrap().unwrap();
    assert_eq!(
        (content.request.as_slice(), content.response.as_slice()),
        (REQUEST, RESPONSE)
    );
    assert_eq!(
        verify::challenges_due(&w.state, ch.deadline).unwrap(),
        vec![0]
    );
    let listed = verify::query::challenges(
        &w.state,
        &ChallengeFilter {
            provider: Some(addr(&c.provider)),
            status: Some(ChallengeStatus::Open),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(listed.len(), 1);
    let none = verify::query::challenges(
        &w.state,
        &ChallengeFilter {
            subnet: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(none.is_empty());
}

#[test]
fn bad_challenges_are_refused_with_their_reason_and_balances_untouched() {
    let (mut w, c) = cast();
    let now = w.now() + 1_000; // the next block's time
    let good = |price| receipt(&c.provider, REQUEST, RESPONSE, price, now);

    // Stateless: refused before any fee.
    let mut forged = good(HIB);
    forged.body.price = Amount(1);
    w.fails(
        &c.challenger,
        challenge(0, forged, 2 * HIB),
        "signature does not verify",
    );
    let stranger = SecretKey::generate();
    let mut resigned = good(HIB);
    resigned.signature = stranger.sign(b"anything");
    w.fails(
        &c.challenger,
        challenge(0, resigned, 2 * HIB),
        "signature does not verify",
    );
    w.fails(
        &c.challenger,
        challenge(0, receipt(&c.provider, b"other", RESPONSE, 1, now), 2 * HIB),
        "the request does not match the receipt",
    );
    w.fails(
        &c.challenger,
        challenge(0, receipt(&c.provider, REQUEST, b"4", 1, now), 2 * HIB),
        "the response does not match the receipt",
    );
    w.fails(
        &c.challenger,
        challenge(0, good(1), MIN_CHALLENGE_DEPOSIT.0 - 1),
        "below the minimum challenge deposit",
    );
    // A batch line's signed refusal (no tokens, no price) is challenged as a batch line only.
    let mut free = good(0).body;
    free.prompt_tokens = 0;
    free.completion_tokens = 0;
    w.fails(
        &c.challenger,
        challenge(0, free.sign(&c.provider), 2 * HIB),
        "DisputeBatchLine",
    );
    let big = vec![b'x'; MAX_CHALLENGE_REQUEST_BYTES + 1];
    w.fails(
        &c.challenger,
        Message::ChallengeReceipt(ChallengeReceipt {
            subnet: 0,
            receipt: receipt(&c.provider, &big, RESPONSE, 1, now),
            request: big.clone(),
            response: RESPONSE.to_vec(),
            deposit: Amount(2 * HIB),
        }),
        "a challenge carries at most 65536",
    );

    // Stateful: included, the fee paid, nothing else moved.
    w.fails(
        &c.challenger,
        challenge(0, receipt(&stranger, REQUEST, RESPONSE, 1, now), 2 * HIB),
        "is not a registered market provider",
    );
    w.fails(
        &c.challenger,
        challenge(9, good(1), 2 * HIB),
        "subnet 9 does not exist",
    );
    let now = w.now() + 1_000;
    let expired = receipt(
        &c.provider,
        REQUEST,
        RESPONSE,
        1,
        now - CHALLENGE_WINDOW_MS - 1,
    );
    w.fails(
        &c.challenger,
        challenge(0, expired, 2 * HIB),
        "the receipt expired",
    );
    let now = w.now() + 1_000;
    let ahead = receipt(
        &c.provider,
        REQUEST,
        RESPONSE,
        1,
        now + CHALLENGE_FUTURE_SLACK_MS + 1,
    );
    w.fails(
        &c.challenger,
        challenge(0, ahead, 2 * HIB),
        "from the future",
    );
    w.fails(
        &c.challenger,
        challenge(0, good(1), 100_000 * HIB),
        "insufficient funds",
    );
    // A subnet the provider does not serve, whose sole validator is the challenger: refused.
    w.ok(&c.outsider, subnet("mine", 2));
    w.ok(
        &c.challenger,
        Message::Bond(Bond {
            validator: w.validator.public_key().address(),
            amount: Amount(HIB),
        }),
    );
    w.ok(&c.challenger, neuron(1, NeuronRole::Validator));
    w.idle(2);
    let now = w.now() + 1_000;
    w.fails(
        &c.challenger,
        challenge(1, receipt(&c.provider, REQUEST, RESPONSE, 1, now), 2 * HIB),
        "is not a miner of subnet 1",
    );
    // A subnet the provider serves but where no validator holds a permit.
    w.ok(&c.outsider, subnet("empty", 1_000));
    w.ok(&c.provider, neuron(2, NeuronRole::Miner));
    let now = w.now() + 1_000;
    w.fails(
        &c.challenger,
        challenge(2, receipt(&c.provider, REQUEST, RESPONSE, 1, now), 2 * HIB),
        "no validator with a permit",
    );
    // The same receipt twice.
    let now = w.now() + 1_000;
    let once = receipt(&c.provider, REQUEST, RESPONSE, 1, now);
    w.ok(&c.challenger, challenge(0, once.clone(), 2 * HIB));
    w.fails(
        &c.outsider,
        challenge(0, once, 2 * HIB),
        "challenged already (challenge 0)",
    );
}

#[test]
fn bad_votes_are_refused_with_their_reason_and_balances_untouched() {
    let (mut w, c) = cast();
    let r = receipt(&c.provider, REQUEST, RESPONSE, 1, w.now());
    w.ok(&c.challenger, challenge(0, r, 2 * HIB));
    w.fails(&c.v[0], vote(7, true), "challenge 7 does not exist");
    w.fails(
        &c.outsider,
        vote(0, true),
        "is not a neuron of subnet 0: only its validators vote",
    );
    w.fails(&c.provider, vote(0, false), "is a miner of subnet 0");
    // A validator registered after the challenge opened: no permit before the next epoch, and
    // not in the electorate after it.
    let late = &c.outsider;
    // Subnet 0's epochs end the odd blocks: register in an even one.
    if (w.height + 2) % 2 == 1 {
        w.idle(1);
    }
    w.ok(
        late,
        Message::Bond(Bond {
            validator: w.validator.public_key().address(),
            amount: Amount(5_000 * HIB),
        }),
    );
    w.ok(late, neuron(0, NeuronRole::Validator));
    w.fails(late, vote(0, true), "holds no validator permit in subnet 0");
    w.idle(2);
    w.fails(late, vote(0, true), "is not in challenge 0's electorate");
    w.ok(&c.v[1], vote(0, true));
    w.fails(&c.v[1], vote(0, false), "has voted on challenge 0 already");
    let ch = w.challenge(0);
    assert_eq!((ch.votes, ch.wrong_stake.0), (1, 300 * HIB));
    // After the deadline the challenge is closed.
    w.idle(ch.deadline - w.height);
    w.fails(
        &c.v[0],
        vote(0, true),
        "challenge 0 is resolved already (no_quorum)",
    );
}

#[test]
fn an_upheld_challenge_slashes_the_bond_and_pays_to_the_base_unit() {
    let (mut w, c) = cast();
    let supply = bank::total_supply(&w.state).unwrap().0;
    let start: Vec<u128> = [&c.challenger, &c.v[0], &c.v[1], &c.v[2], &c.provider]
        .iter()
        .map(|k| w.balance(&addr(k)).0)
        .collect();
    let r = receipt(&c.provider, REQUEST, RESPONSE, HIB / 10, w.now());
    w.ok(&c.challenger, challenge(0, r, 2 * HIB));
    w.ok(&c.v[1], vote(0, true)); // 300 of 1000: not yet
    w.ok(&c.v[2], vote(0, false)); // 100 right
    assert_eq!(w.challenge(0).status, ChallengeStatus::Open);
    w.ok(&c.v[0], vote(0, true)); // 900 wrong > 500: upheld
    let ch = w.challenge(0);
    assert_eq!(ch.status, ChallengeStatus::Upheld);
    // Slash 1 HIB: refund 0.1, reward 0.45, voters 0.18 (600:300), burned 0.27.
    let s = ch.settlement.clone().unwrap();
    assert_eq!(s.slashed.0, HIB);
    assert_eq!(s.refund.0, 100_000_000);
    assert_eq!(s.challenger_reward.0, 450_000_000);
    // The shares come in the electorate's order, by account.
    let mut shares = vec![
        (addr(&c.v[0]), Amount(120_000_000)),
        (addr(&c.v[1]), Amount(60_000_000)),
    ];
    shares.sort();
    assert_eq!(s.voters, shares);
    assert_eq!(s.burned.0, 270_000_000);
    assert_eq!(
        w.balance(&addr(&c.challenger)).0,
        start[0] - FEE + 100_000_000 + 450_000_000
    );
    assert_eq!(w.balance(&addr(&c.v[0])).0, start[1] - FEE + 120_000_000);
    assert_eq!(w.balance(&addr(&c.v[1])).0, start[2] - FEE + 60_000_000);
    assert_eq!(w.balance(&addr(&c.v[2])).0, start[3] - FEE);
    assert_eq!(w.balance(&addr(&c.provider)).0, start[4]);
    assert_eq!(w.bond(&c.provider).0, MIN_PROVIDER_BOND.0 - HIB);
    assert_eq!(w.balance(&MARKET_ESCROW).0, MIN_PROVIDER_BOND.0 - HIB);
    assert_eq!(w.balance(&CHALLENGE_ESCROW).0, 0);
    assert_eq!(
        bank::total_supply(&w.state).unwrap().0,
        supply - 270_000_000
    );
    w.fails(&c.v[2], vote(0, true), "resolved already (upheld)");
    // The end of the deadline block leaves a decided challenge alone.
    w.idle(ch.deadline - w.height);
    assert_eq!(w.challenge(0), ch);
}

#[test]
fn a_rejected_challenge_costs_the_deposit_shared_by_the_right_voters() {
    let (mut w, c) = cast();
    let supply = bank::total_supply(&w.state).unwrap().0;
    let challenger0 = w.balance(&addr(&c.challenger)).0;
    let v0 = w.balance(&addr(&c.v[0])).0;
    let v2 = w.balance(&addr(&c.v[2])).0;
    let r = receipt(&c.provider, REQUEST, RESPONSE, HIB / 10, w.now());
    w.ok(&c.challenger, challenge(0, r, 2 * HIB));
    w.ok(&c.v[2], vote(0, false)); // 100 right
    w.ok(&c.v[1], vote(0, true)); // 300 wrong
    w.ok(&c.v[0], vote(0, false)); // 700 right >= 500: rejected
    let ch = w.challenge(0);
    assert_eq!(ch.status, ChallengeStatus::Rejected);
    // Half the 2 HIB deposit, shared 600:100; the other half and a unit of dust burned.
    let s = ch.settlement.unwrap();
    assert_eq!(s.bond_returned.0, HIB);
    assert_eq!(s.burned.0, 1_000_000_001);
    assert_eq!(w.balance(&addr(&c.v[0])).0, v0 - FEE + 857_142_857);
    assert_eq!(w.balance(&addr(&c.v[2])).0, v2 - FEE + 142_857_142);
    assert_eq!(
        w.balance(&addr(&c.challenger)).0,
        challenger0 - FEE - 2 * HIB
    );
    assert_eq!(w.bond(&c.provider), MIN_PROVIDER_BOND);
    assert_eq!(w.balance(&MARKET_ESCROW), MIN_PROVIDER_BOND);
    assert_eq!(w.balance(&CHALLENGE_ESCROW).0, 0);
    assert_eq!(
        bank::total_supply(&w.state).unwrap().0,
        supply - 1_000_000_001
    );
}

#[test]
fn an_undecided_challenge_closes_with_no_quorum_at_the_end_of_its_deadline_block() {
    let (mut w, c) = cast();
    let supply = bank::total_supply(&w.state).unwrap();
    let challenger0 = w.balance(&addr(&c.challenger)).0;
    let r = receipt(&c.provider, REQUEST, RESPONSE, HIB / 10, w.now());
    w.ok(&c.challenger, challenge(0, r, 2 * HIB));
    w.ok(&c.v[1], vote(0, true)); // 300 of 1000
    let deadline = w.challenge(0).deadline;
    w.idle(deadline - w.height - 1);
    // A vote in the deadline block still counts; the challenge closes at that block's end.
    assert_eq!(w.height + 1, deadline);
    w.ok(&c.v[2], vote(0, false));
    let ch = w.challenge(0);
    assert_eq!(ch.status, ChallengeStatus::NoQuorum);
    assert_eq!(ch.votes, 2);
    let s = ch.settlement.unwrap();
    assert_eq!(
        (s.height, s.deposit_returned.0, s.bond_returned.0),
        (deadline, 2 * HIB, HIB)
    );
    assert!(s.voters.is_empty());
    assert_eq!(s.burned, Amount::ZERO);
    assert_eq!(w.balance(&addr(&c.challenger)).0, challenger0 - FEE);
    assert_eq!(w.bond(&c.provider), MIN_PROVIDER_BOND);
    assert_eq!(w.balance(&CHALLENGE_ESCROW).0, 0);
    assert_eq!(bank::total_supply(&w.state).unwrap(), supply);
    assert!(
        verify::challenges_due(&w.state, deadline)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_provider_cannot_escape_a_challenge_by_leaving_the_market() {
    let (mut w, c) = cast();
    let provider0 = w.balance(&addr(&c.provider)).0;
    let first = receipt(&c.provider, REQUEST, RESPONSE, HIB / 10, w.now());
    w.ok(&c.challenger, challenge(0, first, 2 * HIB));
    let second = receipt(&c.provider, REQUEST, RESPONSE, HIB / 5, w.now());
    w.ok(&c.challenger, challenge(0, second, 2 * HIB));
    assert_eq!(w.bond(&c.provider).0, MIN_PROVIDER_BOND.0 - 2 * HIB);
    // It leaves with what is not held.
    w.ok(
        &c.provider,
        Message::DeregisterProvider(DeregisterProvider {}),
    );
    assert_eq!(
        w.balance(&addr(&c.provider)).0,
        provider0 - FEE + MIN_PROVIDER_BOND.0 - 2 * HIB
    );
    assert_eq!(w.balance(&MARKET_ESCROW).0, 0);
    // Upheld: the held slash is paid out all the same.
    w.ok(&c.v[0], vote(0, true));
    assert_eq!(w.challenge(0).status, ChallengeStatus::Upheld);
    // Rejected: the held part goes to its balance, since it has no bond any more.
    w.ok(&c.v[0], vote(1, false));
    assert_eq!(w.challenge(1).status, ChallengeStatus::Rejected);
    assert_eq!(
        w.balance(&addr(&c.provider)).0,
        provider0 - FEE + MIN_PROVIDER_BOND.0 - HIB
    );
    assert_eq!(w.balance(&CHALLENGE_ESCROW).0, 0);
}

#[test]
fn the_mempool_admits_a_fresh_challenge_by_the_latest_block_time() {
    let (w, c) = cast();
    let r = receipt(&c.provider, REQUEST, RESPONSE, 1, w.now());
    let tx = w.tx(&c.challenger, challenge(0, r, 2 * HIB));
    let admitted =
        hibana_runtime::admit(&w.state, &tx, CHAIN, &Default::default(), w.height + 1).unwrap();
    assert!(admitted.is_ok(), "{admitted:?}");
    assert_eq!(hibana_runtime::block_time(&w.state).unwrap(), w.now());
    // And refuses, with the reason, one whose receipt is too old, rather than charge a fee.
    let old = receipt(
        &c.provider,
        REQUEST,
        RESPONSE,
        1,
        w.now() - CHALLENGE_WINDOW_MS - 1,
    );
    let tx = w.tx(&c.challenger, challenge(0, old, 2 * HIB));
    let refused =
        hibana_runtime::admit(&w.state, &tx, CHAIN, &Default::default(), w.height + 1).unwrap();
    assert!(
        matches!(&refused, Err(hibana_runtime::Rejection::WouldFail(why)) if why.contains("expired")),
        "{refused:?}"
    );
}

#[derive(Debug, Clone)]
enum Action {
    Challenge {
        challenger: usize,
        deposit: u64,
        price: u64,
        age_s: u64,
    },
    Vote {
        voter: usize,
        challenge: u64,
        wrong: bool,
    },
    Leave,
    Rejoin,
    Idle(u64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0usize..6, 0u64..5_000_000_000, 0u64..3_000_000_000, 0u64..100_000).prop_map(
            |(challenger, deposit, price, age_s)| Action::Challenge { challenger, deposit, price, age_s }
        ),
        6 => (0usize..6, 0u64..8, any::<bool>()).prop_map(|(voter, challenge, wrong)| Action::Vote { voter, challenge, wrong }),
        1 => Just(Action::Leave),
        1 => Just(Action::Rejoin),
        1 => prop_oneof![1u64..5, 550u64..650].prop_map(Action::Idle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn challenges_conserve_supply_and_the_escrows_hold_what_they_owe(
        actions in prop::collection::vec(action(), 1..40),
    ) {
        let (mut w, c) = cast();
        let keys = [&c.provider, &c.challenger, &c.v[0], &c.v[1], &c.v[2], &c.outsider];
        let supply0 = bank::total_supply(&w.state).unwrap().0;
        for a in actions {
            match a {
                Action::Challenge { challenger, deposit, price, age_s } => {
                    let at = (w.now() + 1_000).saturating_sub(age_s * 1_000);
                    let r = receipt(&c.provider, REQUEST, RESPONSE, u128::from(price), at);
                    w.block(vec![(keys[challenger], challenge(0, r, u128::from(deposit)))]);
                }
                Action::Vote { voter, challenge, wrong } => {
                    let n = verify::challenge_count(&w.state).unwrap().max(1);
                    w.block(vec![(keys[voter], vote(challenge % n, wrong))]);
                }
                Action::Leave => {
                    w.block(vec![(&c.provider, Message::DeregisterProvider(DeregisterProvider {}))]);
                }
                Action::Rejoin => {
                    w.block(vec![(&c.provider, register_provider())]);
                }
                Action::Idle(n) => w.idle(n),
            }
            // Every token is in some account or staked; the supply fell by what was burned.
            let supply = bank::total_supply(&w.state).unwrap().0;
            let held: u128 = w.balances().iter().map(|(_, b)| b.0).sum::<u128>()
                + hibana_runtime::staking::total_staked(&w.state, w.height + 1).unwrap();
            prop_assert_eq!(held, supply, "tokens appeared or vanished");
            let mut burned = 0u128;
            let mut owed = 0u128;
            for id in 0..verify::challenge_count(&w.state).unwrap() {
                let ch = w.challenge(id);
                match &ch.settlement {
                    Some(s) => {
                        prop_assert!(ch.status != ChallengeStatus::Open);
                        prop_assert_eq!(
                            verify::resolution::paid_out(s),
                            Some(ch.held.0 + ch.deposit.0),
                            "a settlement paid out other than it held"
                        );
                        burned += s.burned.0;
                    }
                    None => {
                        prop_assert_eq!(ch.status, ChallengeStatus::Open);
                        prop_assert!(w.height <= ch.deadline, "an open challenge outlived its deadline");
                        owed += ch.held.0 + ch.deposit.0;
                    }
                }
            }
            prop_assert_eq!(supply0 - supply, burned, "the supply fell by other than the burns");
            prop_assert_eq!(w.balance(&CHALLENGE_ESCROW).0, owed, "the challenge escrow holds other than the open challenges");
            let bonds: u128 = w.bonds().iter().map(|(_, b)| b.0).sum();
            prop_assert_eq!(w.balance(&MARKET_ESCROW).0, bonds, "the market escrow holds other than the bonds");
        }
    }
}
