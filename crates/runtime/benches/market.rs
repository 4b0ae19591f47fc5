//! Market messages through the state machine: stateless check plus execution of each message
//! kind on an in-memory state, as transactions per second of one core, against a transfer in
//! the same run. The training messages use a job of an MLP 16-64-32-2 (3,234 parameters), batch
//! 64, 50 steps per checkpoint; the batch messages a batch of 10,000 lines. Run with `cargo bench -p hibana-runtime --bench market`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use hibana_runtime::{
    BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState, check_stateless, deliver_tx,
};
use hibana_train::{Dataset, Trainer, TrainingSpec, batch_indices, synthetic::xor_rows};
use hibana_types::records::market::{
    BATCH_INPUT_LEAF_DOMAIN, BATCH_RESULT_LEAF_DOMAIN, MIN_PROVIDER_BOND, ProviderAttributes,
    Resources, batch_leaf,
};
use hibana_types::records::verify::receipt_id;
use hibana_types::{
    AcceptBid, Address, Amount, CommitSteps, CreateOrder, DisputeStep, Heartbeat, Message,
    PlaceBid, RegisterProvider, SecretKey, SubmitJob, Transaction, Transfer,
};

const CHAIN: &str = "bench";
const HIB: u128 = 1_000_000_000;

struct Bench {
    state: MemState,
    height: u64,
    nonces: std::collections::BTreeMap<Address, u64>,
}

impl Bench {
    fn new(keys: &[&SecretKey]) -> Bench {
        let genesis = Genesis {
            market: Default::default(),
            chain_id: CHAIN.into(),
            genesis_time_ms: 0,
            params: Default::default(),
            accounts: keys
                .iter()
                .map(|k| GenesisAccount {
                    address: k.public_key().address(),
                    balance: Amount(100_000 * HIB),
                })
                .collect(),
            validators: vec![GenesisValidator {
                public_key: SecretKey::generate().public_key(),
                stake: Amount(HIB),
            }],
        };
        let mut state = MemState::default();
        hibana_runtime::init_genesis(&mut state, &genesis).unwrap();
        Bench {
            state,
            height: 1,
            nonces: Default::default(),
        }
    }

    /// Checks and executes one transaction of `key` carrying `message`; it must succeed.
    fn run(&mut self, key: &SecretKey, message: Message) {
        let address = key.public_key().address();
        let nonce = self.nonces.entry(address).or_insert(0);
        let tx = Transaction {
            chain_id: CHAIN.into(),
            signer: key.public_key(),
            nonce: *nonce,
            fee: Amount(1_000),
            messages: vec![message],
        }
        .sign(key);
        *nonce += 1;
        let checked = check_stateless(&tx, CHAIN, &Default::default()).unwrap();
        let ctx = BlockContext {
            chain_id: CHAIN.into(),
            height: self.height,
            time_ms: self.height,
            proposer: Address([9; 20]),
        };
        let r = deliver_tx(&mut self.state, &ctx, &checked, 0)
            .unwrap()
            .unwrap();
        assert!(r.is_success(), "{:?}", r.outcome);
    }

    /// Runs `n` transactions made by `make(i)` and returns transactions per second.
    fn rate(&mut self, n: usize, mut make: impl FnMut(usize) -> (SecretKey, Message)) -> f64 {
        let txs: Vec<(SecretKey, Message)> = (0..n).map(&mut make).collect();
        let start = Instant::now();
        for (k, m) in txs {
            self.run(&k, m);
        }
        n as f64 / start.elapsed().as_secs_f64()
    }
}

fn register() -> Message {
    Message::RegisterProvider(RegisterProvider {
        attributes: ProviderAttributes {
            cores: 8,
            memory_mib: 8_192,
            gpu_model: String::new(),
            gpu_count: 0,
            region: "eu".into(),
            models: vec![],
        },
        price_per_block: Amount(1_000),
        price_per_token: Amount(1),
        endpoint: "http://127.0.0.1:9".into(),
        bond: MIN_PROVIDER_BOND,
    })
}

fn order() -> Message {
    Message::CreateOrder(CreateOrder {
        resources: Resources {
            min_cores: 1,
            ..Default::default()
        },
        duration_blocks: 100_000,
        max_price_per_block: Amount(1_000),
        deposit: Amount(100_000_000),
        expires_at: 50_000,
    })
}

fn main() {
    let client = SecretKey::generate();
    let provider = SecretKey::generate();
    let challenger = SecretKey::generate();
    let mut b = Bench::new(&[&client, &provider, &challenger]);
    let to = Address([1; 20]);
    let transfer = b.rate(2_000, |_| {
        (
            client.clone(),
            Message::Transfer(Transfer {
                to,
                amount: Amount(1),
            }),
        )
    });
    b.run(&provider, register());
    let heartbeat = b.rate(2_000, |_| {
        (provider.clone(), Message::Heartbeat(Heartbeat {}))
    });
    let create = b.rate(2_000, |_| (client.clone(), order()));
    let bid = b.rate(60, |i| {
        (
            provider.clone(),
            Message::PlaceBid(PlaceBid {
                order: i as u64,
                price_per_block: Amount(1_000),
            }),
        )
    });
    let accept = b.rate(60, |i| {
        (
            client.clone(),
            Message::AcceptBid(AcceptBid {
                order: i as u64,
                provider: provider.public_key().address(),
            }),
        )
    });

    // A training job on lease 0 with 200 checkpoints of 50 steps.
    let data = Dataset::from_rows(xor_rows(2_000, 14, 1)).unwrap();
    let spec = TrainingSpec {
        dataset_root: data.root(),
        rows: data.len() as u64,
        features: 16,
        hidden: vec![64, 32],
        classes: 2,
        learning_rate: 1 << 14,
        batch: 64,
        steps: 10_000,
        seed: 5,
        checkpoint_every: 50,
    };
    b.run(
        &client,
        Message::SubmitJob(SubmitJob {
            lease: 0,
            spec: spec.clone(),
            with: vec![],
        }),
    );
    let mut t = Trainer::new(&spec).unwrap();
    let mut states = vec![t.params().to_vec()];
    let hashes: Vec<_> = (0..2_000)
        .map(|_| {
            let h = t.next_step(&data).unwrap();
            states.push(t.params().to_vec());
            h
        })
        .collect();
    let commit = b.rate(40, |i| {
        (
            provider.clone(),
            Message::CommitSteps(CommitSteps {
                job: 0,
                after: (i * 50) as u64,
                hashes: hashes[i * 50..(i + 1) * 50].to_vec(),
            }),
        )
    });
    let dispute = b.rate(40, |i| {
        let step = 1 + (i as u64 * 37) % 2_000;
        (
            challenger.clone(),
            Message::DisputeStep(DisputeStep {
                job: 0,
                step,
                params: states[step as usize - 1].clone(),
                rows: batch_indices(&spec, step)
                    .iter()
                    .map(|&r| data.proven_row(r).unwrap())
                    .collect(),
            }),
        )
    });

    // A data-parallel job of the same model on 4 leases with 4 more providers; one round
    // committed and averaged, then its average disputed (each dispute re-averages 4 × 3,234
    // parameters and loses, so the job stays as it is).
    let workers: Vec<SecretKey> = (0..4).map(|_| SecretKey::generate()).collect();
    for w in &workers {
        b.run(
            &client,
            Message::Transfer(Transfer {
                to: w.public_key().address(),
                amount: Amount(100 * HIB),
            }),
        );
        b.run(w, register());
    }
    for (i, w) in workers.iter().enumerate() {
        let order_id = 2_000 + i as u64;
        b.run(&client, order());
        b.run(
            w,
            Message::PlaceBid(PlaceBid {
                order: order_id,
                price_per_block: Amount(1_000),
            }),
        );
        b.run(
            &client,
            Message::AcceptBid(AcceptBid {
                order: order_id,
                provider: w.public_key().address(),
            }),
        );
    }
    let parallel = TrainingSpec {
        steps: 400,
        checkpoint_every: 50,
        ..spec.clone()
    };
    b.run(
        &client,
        Message::SubmitJob(SubmitJob {
            lease: 60,
            spec: parallel.clone(),
            with: vec![61, 62, 63],
        }),
    );
    let plan = hibana_train::diloco::Plan {
        workers: 4,
        local_steps: 50,
    };
    let start = hibana_train::init_params(&parallel);
    let mut parts = Vec::new();
    for (k, w) in workers.iter().enumerate() {
        let (part, hashes) =
            hibana_train::diloco::worker_round_hashes(&parallel, &data, &plan, &start, 0, k as u32)
                .unwrap();
        b.run(
            w,
            Message::CommitSteps(CommitSteps {
                job: 1,
                after: 0,
                hashes,
            }),
        );
        parts.push(part);
    }
    let average = hibana_train::diloco::average(&parts).unwrap();
    b.run(
        &workers[0],
        Message::CommitAverage(hibana_types::CommitAverage {
            job: 1,
            round: 0,
            hash: hibana_train::state_hash(200, &average),
        }),
    );
    let dispute_average = b.rate(40, |_| {
        (
            challenger.clone(),
            Message::DisputeAverage(hibana_types::DisputeAverage {
                job: 1,
                round: 0,
                parts: parts.clone(),
            }),
        )
    });

    // A batch of 10,000 lines on lease 1, committed; 1,000 of its lines requested on chain,
    // then posted by the provider (each post checks a receipt signature and two Merkle proofs
    // of 14 steps).
    let lines = 10_000usize;
    let requests: Vec<Vec<u8>> = (0..lines)
        .map(|i| {
            format!("{{\"model\":\"m\",\"prompt\":\"line {i}\",\"max_tokens\":8}}").into_bytes()
        })
        .collect();
    let responses: Vec<Vec<u8>> = (0..lines)
        .map(|i| {
            format!("{{\"choices\":[{{\"text\":\"answer {i}\",\"finish_reason\":\"stop\"}}]}}")
                .into_bytes()
        })
        .collect();
    let receipts: Vec<hibana_types::InferenceReceipt> = requests
        .iter()
        .zip(&responses)
        .map(|(q, a)| {
            hibana_types::ReceiptBody {
                provider: provider.public_key(),
                model_hash: hibana_types::Hash([5; 32]),
                request_hash: hibana_types::Hash::digest(q),
                response_hash: hibana_types::Hash::digest(a),
                prompt_tokens: 4,
                completion_tokens: 8,
                price: Amount(12),
                timestamp_ms: 1,
            }
            .sign(&provider)
        })
        .collect();
    let input_leaves: Vec<hibana_types::Hash> = requests
        .iter()
        .enumerate()
        .map(|(i, q)| {
            batch_leaf(
                BATCH_INPUT_LEAF_DOMAIN,
                i as u32,
                &hibana_types::Hash::digest(q),
            )
        })
        .collect();
    let result_leaves: Vec<(hibana_types::Hash, u32)> = receipts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                batch_leaf(BATCH_RESULT_LEAF_DOMAIN, i as u32, &receipt_id(r)),
                1,
            )
        })
        .collect();
    b.run(
        &client,
        Message::SubmitBatch(hibana_types::SubmitBatch {
            lease: 1,
            input_root: hibana_types::merkle_root(&input_leaves),
            lines: lines as u32,
            input_bytes: 1_000_000,
            price_per_line: Amount(1),
        }),
    );
    b.run(
        &provider,
        Message::CommitBatch(hibana_types::CommitBatch {
            batch: 0,
            results_root: hibana_types::count_root(&result_leaves).unwrap().0,
            answered: lines as u32,
        }),
    );
    let request_line = b.rate(1_000, |i| {
        (
            challenger.clone(),
            Message::RequestBatchLine(hibana_types::RequestBatchLine {
                batch: 0,
                line: i as u32,
            }),
        )
    });
    let post_line = b.rate(1_000, |i| {
        (
            provider.clone(),
            Message::PostBatchLine(hibana_types::PostBatchLine {
                batch: 0,
                line: i as u32,
                request: requests[i].clone(),
                response: responses[i].clone(),
                receipt: Some(receipts[i].clone()),
                input_proof: hibana_types::merkle_proof(&input_leaves, i).unwrap(),
                result_proof: hibana_types::count_proof(&result_leaves, i).unwrap(),
            }),
        )
    });

    println!("Market messages, stateless check + execution on an in-memory state, one core:");
    println!("| message | per second | vs a transfer |");
    println!("|---|---|---|");
    for (what, rate) in [
        ("transfer (reference)", transfer),
        ("Heartbeat", heartbeat),
        ("CreateOrder", create),
        ("PlaceBid", bid),
        ("AcceptBid (order becomes a lease)", accept),
        ("CommitSteps (one checkpoint of 50 step hashes)", commit),
        (
            "DisputeStep (64 proved rows, one step of 3,234 parameters re-run)",
            dispute,
        ),
        (
            "DisputeAverage (4 workers' 3,234 parameters hashed and re-averaged)",
            dispute_average,
        ),
        ("RequestBatchLine (a batch of 10,000 lines)", request_line),
        (
            "PostBatchLine (a receipt signature, a 14-step Merkle proof and a 14-step sum tree proof)",
            post_line,
        ),
    ] {
        println!("| {what} | {rate:.0} | {:.2}× |", rate / transfer);
    }
}
