//! A provider that returns wrong answers is slashed, an honest one never is: 100 seeded runs
//! in-process, with the real runtime (transactions, blocks, epochs, challenges, votes, slashing)
//! and real re-checking by teacher forcing on SmolLM2-135M-Instruct, which starting processes
//! 100 times would make too slow. (`challenge.rs` and `model_network.rs` drive the same parts
//! through real processes.)
//!
//! Each run: a provider registered in the compute market and as a miner of a chat subnet, three
//! validators with a permit, and a gateway. Every tempo the gateway forwards 200 client requests
//! and re-checks 5% of them, and each validator sends its 10 scoring requests and re-checks all
//! of them. A cheating provider answers 5% of requests with another request's answer (fluent,
//! plausible, wrong); whoever finds a wrong answer challenges it on chain, the validators
//! re-check the challenged answer themselves and vote, and the chain settles. The target: the
//! cheater slashed within 3 tempos in at least 99 of 100 runs; the honest provider in none.
//!
//! Each distinct exchange is re-checked once for real and its verdict reused (the check is a
//! pure function of the bytes); every honest exchange must be judged right.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use hibana_ai::{
    catalog,
    text::{ChatMessage, GenerateParams, LoadOptions, TextModel},
};
use hibana_roles::recheck::{self, Judge, Judgement};
use hibana_runtime::{
    BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState, bank, begin_block,
    deliver_tx, end_block,
    market::MIN_PROVIDER_BOND,
    verify::{self, ChallengeStatus, MIN_CHALLENGE_DEPOSIT},
};
use hibana_types::records::market::ProviderAttributes;
use hibana_types::{
    Address, Amount, Bond, ChallengeReceipt, CreateSubnet, Hash, InferenceReceipt, Message,
    NeuronRole, ReceiptBody, RegisterNeuron, RegisterProvider, SecretKey, SubnetParams,
    Transaction, TxOutcome, VoteChallenge,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

const CHAIN: &str = "slashing-sim";
const HIB: u128 = 1_000_000_000;
const T0: u64 = 1_700_000_000_000;
/// Blocks per tempo.
const TEMPO: u64 = 10;
const RUNS: u64 = 100;
const WRONG_SHARE: f64 = 0.05;
const GATEWAY_REQUESTS_PER_TEMPO: usize = 200;
const GATEWAY_RECHECK_SHARE: f64 = 0.05;
const VALIDATOR_REQUESTS_PER_TEMPO: usize = 10;

struct World {
    state: MemState,
    proposer: Address,
    height: u64,
}

impl World {
    fn ctx(&self) -> BlockContext {
        BlockContext {
            chain_id: CHAIN.into(),
            height: self.height,
            time_ms: T0 + self.height * 1_000,
            proposer: self.proposer,
        }
    }

    fn block(&mut self, txs: Vec<(&SecretKey, Message)>) -> Vec<TxOutcome> {
        self.height += 1;
        let ctx = self.ctx();
        begin_block(&mut self.state, &ctx).unwrap();
        let mut outcomes = Vec::new();
        for (i, (key, message)) in txs.into_iter().enumerate() {
            let nonce = bank::account(&self.state, &key.public_key().address())
                .unwrap()
                .nonce;
            let tx = Transaction {
                chain_id: CHAIN.into(),
                signer: key.public_key(),
                nonce,
                fee: Amount(1_000),
                messages: vec![message],
            }
            .sign(key);
            let outcome = hibana_runtime::check_stateless(&tx, CHAIN, &Default::default())
                .map_err(|e| e.to_string())
                .and_then(|tx| {
                    deliver_tx(&mut self.state, &ctx, &tx, i as u32)
                        .unwrap()
                        .map_err(|e| e.to_string())
                })
                .map_or_else(TxOutcome::Failed, |r| r.outcome);
            outcomes.push(outcome);
        }
        end_block(&mut self.state, &ctx).unwrap();
        outcomes
    }

    fn ok(&mut self, key: &SecretKey, message: Message) {
        assert_eq!(self.block(vec![(key, message)]), vec![TxOutcome::Success]);
    }
}

/// One request and the answers a provider may give it.
struct Exchange {
    request: Vec<u8>,
    honest: Vec<u8>,
    wrong: Vec<u8>,
}

fn chat_request(prompt: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": "chat",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 16,
        "temperature": 0,
    }))
    .unwrap()
}

fn chat_answer(text: &str, finish: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": finish,
                     "message": {"role": "assistant", "content": text}}],
    }))
    .unwrap()
}

/// The honest greedy answers of SmolLM2 to a set of prompts, and for each a wrong answer: the
/// honest answer to another prompt.
fn exchanges(model: &TextModel) -> Vec<Exchange> {
    let prompts = [
        "What is 7 times 8?",
        "Name the capital of France.",
        "Write one word that rhymes with cat.",
        "What colour is the sky on a clear day?",
        "How many legs does a spider have?",
        "Give a synonym for happy.",
        "What is the boiling point of water in Celsius?",
        "Translate 'thank you' into Spanish.",
        "Who wrote Romeo and Juliet?",
        "What is the largest planet in the solar system?",
        "Say hello in one short sentence.",
        "List three fruits.",
    ];
    let params = GenerateParams {
        max_tokens: 16,
        temperature: 0.0,
        ..Default::default()
    };
    let answers: Vec<(String, String)> = prompts
        .iter()
        .map(|p| {
            let prompt = model
                .apply_chat_template(&[ChatMessage::new("user", *p)])
                .unwrap();
            let g = model.generate(&prompt, &params, &mut |_| true).unwrap();
            let finish = match g.finish_reason {
                hibana_ai::text::FinishReason::Stop => "stop",
                hibana_ai::text::FinishReason::Length => "length",
            };
            (g.text, finish.to_string())
        })
        .collect();
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (text, finish) = &answers[i];
            let (other, other_finish) = &answers[(i + 1) % answers.len()];
            assert_ne!(text, other, "two prompts got the same answer");
            Exchange {
                request: chat_request(p),
                honest: chat_answer(text, finish),
                wrong: chat_answer(other, other_finish),
            }
        })
        .collect()
}

/// Runs one seeded world for 3 tempos; returns the height at which the provider was slashed.
fn run(
    seed: u64,
    cheats: bool,
    exchanges: &[Exchange],
    verdicts: &HashMap<(usize, bool), bool>,
) -> Option<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let provider = SecretKey::generate();
    let gateway = SecretKey::generate();
    let validators: Vec<SecretKey> = (0..3).map(|_| SecretKey::generate()).collect();
    let consensus = SecretKey::generate();
    let mut accounts = vec![
        GenesisAccount {
            address: provider.public_key().address(),
            balance: Amount(1_000 * HIB),
        },
        GenesisAccount {
            address: gateway.public_key().address(),
            balance: Amount(1_000 * HIB),
        },
    ];
    for v in &validators {
        accounts.push(GenesisAccount {
            address: v.public_key().address(),
            balance: Amount(1_000 * HIB),
        });
    }
    let genesis = Genesis {
        market: Default::default(),
        chain_id: CHAIN.into(),
        genesis_time_ms: T0,
        params: Default::default(),
        accounts,
        validators: vec![GenesisValidator {
            public_key: consensus.public_key(),
            stake: Amount(HIB),
        }],
    };
    let mut state = MemState::default();
    hibana_runtime::init_genesis(&mut state, &genesis).unwrap();
    let mut w = World {
        state,
        proposer: consensus.public_key().address(),
        height: 0,
    };
    let model_hash = Hash::digest(b"smollm2-135m-instruct");
    w.ok(
        &gateway,
        Message::CreateSubnet(CreateSubnet {
            name: "chat".into(),
            task: "chat".into(),
            params: SubnetParams {
                tempo: TEMPO,
                emission_share_ppm: 1_000,
                ..Default::default()
            },
        }),
    );
    w.ok(
        &provider,
        Message::RegisterProvider(RegisterProvider {
            attributes: ProviderAttributes {
                cores: 8,
                memory_mib: 16_384,
                gpu_model: String::new(),
                gpu_count: 0,
                region: "local".into(),
                models: vec![model_hash],
            },
            price_per_block: Amount(1_000),
            price_per_token: Amount(1_000),
            endpoint: "http://127.0.0.1:9000".into(),
            bond: MIN_PROVIDER_BOND,
        }),
    );
    w.ok(
        &provider,
        Message::RegisterNeuron(RegisterNeuron {
            subnet: 0,
            role: NeuronRole::Miner,
            endpoint: "http://127.0.0.1:9000".into(),
            model: model_hash,
        }),
    );
    for (v, stake) in validators.iter().zip([500u128, 300, 200]) {
        w.ok(
            v,
            Message::Bond(Bond {
                validator: consensus.public_key().address(),
                amount: Amount(stake * HIB),
            }),
        );
        w.ok(
            v,
            Message::RegisterNeuron(RegisterNeuron {
                subnet: 0,
                role: NeuronRole::Validator,
                endpoint: "http://127.0.0.1:9".into(),
                model: model_hash,
            }),
        );
    }
    // The first epoch gives the validators their permits.
    while !w.height.is_multiple_of(TEMPO) {
        w.block(Vec::new());
    }
    w.block(Vec::new());
    let start = w.height;
    let end = start + 3 * TEMPO;
    let bond_before = hibana_runtime::market::provider(&w.state, &provider.public_key().address())
        .unwrap()
        .unwrap()
        .bond;
    // Each block of a tempo carries an equal share of its traffic.
    let per_block = |n: usize| n.div_ceil(TEMPO as usize);
    let mut next_challenge = 0u64;
    while w.height < end {
        // The answers of this block: (checker, exchange index, wrong?) for those re-checked.
        let mut found: Vec<(&SecretKey, usize, bool)> = Vec::new();
        for _ in 0..per_block(GATEWAY_REQUESTS_PER_TEMPO) {
            let i = rng.gen_range(0..exchanges.len());
            let wrong = cheats && rng.gen_bool(WRONG_SHARE);
            if rng.gen_bool(GATEWAY_RECHECK_SHARE) && !verdicts[&(i, wrong)] {
                found.push((&gateway, i, wrong));
            }
        }
        for v in &validators {
            for _ in 0..per_block(VALIDATOR_REQUESTS_PER_TEMPO) {
                let i = rng.gen_range(0..exchanges.len());
                let wrong = cheats && rng.gen_bool(WRONG_SHARE);
                if !verdicts[&(i, wrong)] {
                    found.push((v, i, wrong));
                }
            }
        }
        // Whoever found a wrong answer challenges it with the provider's signed receipt.
        let mut txs = Vec::new();
        for (checker, i, wrong) in found {
            let e = &exchanges[i];
            let response = if wrong { &e.wrong } else { &e.honest };
            let receipt: InferenceReceipt = ReceiptBody {
                provider: provider.public_key(),
                model_hash,
                request_hash: Hash::digest(&e.request),
                response_hash: Hash::digest(response),
                prompt_tokens: 30,
                completion_tokens: 16,
                price: Amount(46_000),
                // Distinct per answer, as a provider's clock makes them.
                timestamp_ms: T0 + w.height * 1_000 + rng.gen_range(0..1_000),
            }
            .sign(&provider);
            txs.push((
                checker,
                Message::ChallengeReceipt(ChallengeReceipt {
                    subnet: 0,
                    receipt,
                    request: e.request.clone(),
                    response: response.clone(),
                    deposit: MIN_CHALLENGE_DEPOSIT,
                }),
            ));
        }
        w.block(txs);
        // The validators re-check every open challenge themselves and vote.
        let mut votes = Vec::new();
        while let Some(c) = verify::challenge(&w.state, next_challenge).unwrap() {
            if c.status == ChallengeStatus::Open {
                let content = verify::challenge_content(&w.state, c.id).unwrap().unwrap();
                let i = exchanges
                    .iter()
                    .position(|e| e.request == content.request)
                    .unwrap();
                let wrong = content.response == exchanges[i].wrong;
                let judged_right = verdicts[&(i, wrong)];
                for v in &validators {
                    votes.push((
                        v,
                        Message::VoteChallenge(VoteChallenge {
                            id: c.id,
                            wrong: !judged_right,
                        }),
                    ));
                }
            }
            next_challenge += 1;
        }
        if !votes.is_empty() {
            w.block(votes);
        }
        let upheld = (0..next_challenge).any(|id| {
            verify::challenge(&w.state, id)
                .unwrap()
                .is_some_and(|c| c.status == ChallengeStatus::Upheld)
        });
        if upheld {
            let bond = hibana_runtime::market::provider(&w.state, &provider.public_key().address())
                .unwrap()
                .unwrap()
                .bond;
            assert!(bond < bond_before, "upheld without a slash");
            return Some(w.height - start);
        }
    }
    None
}

#[test]
fn a_provider_wrong_on_5_percent_of_answers_is_slashed_within_3_tempos_and_an_honest_one_never() {
    let info = catalog::find(&catalog::models_dir(), "smollm2-135m-instruct")
        .expect("the chat model is installed (scripts/setup.sh)");
    let started = std::time::Instant::now();
    let model = TextModel::load(&info, LoadOptions::default()).unwrap();
    let exchanges = exchanges(&model);
    eprintln!("generated in {:?}", started.elapsed());
    // Every exchange re-checked once, for real.
    let mut verdicts = HashMap::new();
    for (i, e) in exchanges.iter().enumerate() {
        let honest = recheck::judge(Judge::Text(&model), &e.request, &e.honest);
        assert_eq!(
            honest,
            Judgement::Right,
            "an honest answer was judged wrong: {:?}",
            String::from_utf8_lossy(&e.honest)
        );
        let wrong = recheck::judge(Judge::Text(&model), &e.request, &e.wrong);
        assert!(
            wrong.is_wrong(),
            "a wrong answer passed: {:?} → {wrong:?}",
            String::from_utf8_lossy(&e.wrong)
        );
        verdicts.insert((i, false), true);
        verdicts.insert((i, true), false);
    }
    eprintln!("re-checked in {:?}", started.elapsed());
    let mut caught = Vec::new();
    for seed in 0..RUNS {
        assert_eq!(
            run(seed, false, &exchanges, &verdicts),
            None,
            "seed {seed}: an honest provider was slashed"
        );
        if let Some(blocks) = run(seed, true, &exchanges, &verdicts) {
            caught.push(blocks);
        }
    }
    caught.sort_unstable();
    eprintln!(
        "cheater slashed in {}/{RUNS} runs; blocks to the slash: median {:?}, worst {:?} (a tempo is {TEMPO} blocks)",
        caught.len(),
        caught.get(caught.len() / 2),
        caught.last()
    );
    assert!(
        caught.len() >= 99,
        "slashed in only {}/{RUNS} runs",
        caught.len()
    );
}
