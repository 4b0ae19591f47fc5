//! The subnets component through transactions: creation, registration, commit-reveal, epochs
//! and the errors users get for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::{
    BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState, bank, begin_block,
    deliver_tx, end_block,
    subnets::{self, epoch::ONE},
};
use hibana_types::records::subnets::SUBNET_DEPOSITS;
use hibana_types::{
    Amount, Bond, CommitWeights, CreateSubnet, Hash, Message, NeuronRole, RegisterNeuron,
    RevealWeights, SecretKey, SubnetParams, Transaction, TxOutcome,
};

const CHAIN: &str = "subnets-test";

struct World {
    state: MemState,
    validator: SecretKey,
    height: u64,
}

impl World {
    fn new(accounts: &[&SecretKey]) -> World {
        let validator = SecretKey::generate();
        let genesis = Genesis {
            market: Default::default(),
            chain_id: CHAIN.into(),
            genesis_time_ms: 0,
            params: Default::default(),
            accounts: accounts
                .iter()
                .map(|k| GenesisAccount {
                    address: k.public_key().address(),
                    balance: Amount::from_hib(10_000).unwrap(),
                })
                .collect(),
            validators: vec![GenesisValidator {
                public_key: validator.public_key(),
                stake: Amount::from_hib(1).unwrap(),
            }],
        };
        let mut state = MemState::default();
        hibana_runtime::init_genesis(&mut state, &genesis).unwrap();
        World {
            state,
            validator,
            height: 0,
        }
    }

    /// Runs one block with these (signer, message) transactions; returns each outcome.
    fn block(&mut self, txs: Vec<(&SecretKey, Message)>) -> Vec<TxOutcome> {
        self.height += 1;
        let ctx = BlockContext {
            chain_id: CHAIN.into(),
            height: self.height,
            time_ms: self.height,
            proposer: self.validator.public_key().address(),
        };
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
                .map_or_else(
                    |e| TxOutcome::Failed(format!("rejected: {e}")),
                    |r| r.outcome,
                );
            outcomes.push(outcome);
        }
        end_block(&mut self.state, &ctx).unwrap();
        outcomes
    }

    fn ok(&mut self, txs: Vec<(&SecretKey, Message)>) {
        for o in self.block(txs) {
            assert_eq!(o, TxOutcome::Success);
        }
    }

    fn fails(&mut self, key: &SecretKey, message: Message, needle: &str) {
        match &self.block(vec![(key, message)])[0] {
            TxOutcome::Failed(reason) => {
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
            }
            TxOutcome::Success => panic!("expected a failure mentioning {needle:?}"),
        }
    }

    fn idle_until(&mut self, height: u64) {
        while self.height < height {
            self.block(Vec::new());
        }
    }
}

fn register(subnet: u32, role: NeuronRole, port: u16) -> Message {
    Message::RegisterNeuron(RegisterNeuron {
        subnet,
        role,
        endpoint: format!("http://127.0.0.1:{port}"),
        model: Hash::digest(b"model"),
    })
}

fn reveal(weights: Vec<(u16, u32)>, salt: u8) -> RevealWeights {
    RevealWeights {
        subnet: 0,
        weights,
        salt: Hash([salt; 32]),
    }
}

fn commit(r: &RevealWeights, key: &SecretKey) -> Message {
    Message::CommitWeights(CommitWeights {
        subnet: r.subnet,
        commitment: r.commitment(&key.public_key().address()),
    })
}

fn params() -> SubnetParams {
    SubnetParams {
        tempo: 10,
        commit_reveal_interval: 3,
        max_neurons: 4,
        max_validators: 2,
        immunity_period: 5,
        ..SubnetParams::default()
    }
}

#[test]
fn epochs_pay_miners_validators_and_the_owner_exactly() {
    let [owner, v0, v1, m0, m1] = std::array::from_fn(|_| SecretKey::generate());
    let mut w = World::new(&[&owner, &v0, &v1, &m0, &m1]);
    let chain_validator = w.validator.public_key().address();
    let supply_before = bank::total_supply(&w.state).unwrap();
    let owner_before = bank::account(&w.state, &owner.public_key().address())
        .unwrap()
        .balance;
    w.ok(vec![(
        &owner,
        Message::CreateSubnet(CreateSubnet {
            name: "chat".into(),
            task: "chat".into(),
            params: params(),
        }),
    )]);
    // The deposit is locked in the subnets' account, where the supply still finds it.
    let locked = bank::account(&w.state, &SUBNET_DEPOSITS).unwrap().balance;
    assert_eq!(locked, subnets::SUBNET_DEPOSIT);
    let owner_after = bank::account(&w.state, &owner.public_key().address())
        .unwrap()
        .balance;
    assert!(owner_before.0 - owner_after.0 >= locked.0);
    let bond = |amount| {
        Message::Bond(Bond {
            validator: chain_validator,
            amount: Amount::from_hib(amount).unwrap(),
        })
    };
    w.ok(vec![
        (&v0, register(0, NeuronRole::Validator, 1)),
        (&v1, register(0, NeuronRole::Validator, 2)),
        (&m0, register(0, NeuronRole::Miner, 3)),
        (&m1, register(0, NeuronRole::Miner, 4)),
        (&v0, bond(300)),
        (&v1, bond(100)),
    ]);
    // Both validators prefer miner 2 (uid 2) 3:1.
    let r0 = reveal(vec![(2, 750_000), (3, 250_000)], 1);
    let r1 = reveal(vec![(2, 750_000), (3, 250_000)], 2);
    w.ok(vec![(&v0, commit(&r0, &v0)), (&v1, commit(&r1, &v1))]);
    let committed = w.height;
    w.fails(&v0, Message::RevealWeights(r0.clone()), "too early");
    w.idle_until(committed + 2);
    w.ok(vec![
        (&v0, Message::RevealWeights(r0.clone())),
        (&v1, Message::RevealWeights(r1)),
    ]);
    // A second reveal of the same commitment finds nothing to match.
    w.fails(&v0, Message::RevealWeights(r0), "no commitment matches");
    let balance = |w: &World, k: &SecretKey| {
        bank::account(&w.state, &k.public_key().address())
            .unwrap()
            .balance
    };
    let before: Vec<Amount> = [&owner, &v0, &v1, &m0, &m1]
        .iter()
        .map(|k| balance(&w, k))
        .collect();
    w.idle_until(11); // created at 1, tempo 10: the first epoch runs at height 11
    let subnet = subnets::subnet(&w.state, 0).unwrap().unwrap();
    assert_eq!(subnet.epochs, 1);
    let summary = subnets::epoch_summary(&w.state, 0, 1).unwrap().unwrap();
    let emission = subnets::epoch_emission(&subnet.params);
    assert_eq!(summary.minted, emission);
    let gained: Vec<u128> = [&owner, &v0, &v1, &m0, &m1]
        .iter()
        .zip(&before)
        .map(|(k, b)| balance(&w, k).0 - b.0)
        .collect();
    assert_eq!(gained.iter().sum::<u128>(), emission.0);
    assert_eq!(gained[0], emission.0 * 18 / 100);
    // Miners split their half 3:1, validators theirs by stake 3:1.
    assert!(gained[3] > 2 * gained[4] && gained[4] > 0);
    assert!(gained[1] > 2 * gained[2] && gained[2] > 0);
    let neurons = subnets::neurons(&w.state, 0).unwrap();
    assert!(neurons[2].incentive > ONE / 10 * 7);
    assert!(neurons[0].permit && neurons[0].active && neurons[0].validator_trust > ONE / 10 * 9);
    // Supply grew by exactly the fees burned and emission minted.
    let burned = 4 * params().registration_fee.0;
    assert_eq!(
        bank::total_supply(&w.state).unwrap().0,
        supply_before.0 - burned + emission.0
    );
}

#[test]
fn bad_input_gets_a_clear_failure() {
    let [owner, v0, m0, m1, m2, m3] = std::array::from_fn(|_| SecretKey::generate());
    let mut w = World::new(&[&owner, &v0, &m0, &m1, &m2, &m3]);
    let params = || SubnetParams {
        immunity_period: 40,
        ..params()
    };
    let create = |name: &str, task: &str, params: SubnetParams| {
        Message::CreateSubnet(CreateSubnet {
            name: name.into(),
            task: task.into(),
            params,
        })
    };
    w.fails(
        &owner,
        create("Chat!", "chat", params()),
        "must be 1 to 32 characters",
    );
    w.fails(&owner, create("x", "poetry", params()), "unknown task");
    let zero_tempo = SubnetParams {
        tempo: 0,
        ..params()
    };
    w.fails(&owner, create("x", "chat", zero_tempo), "tempo");
    w.ok(vec![(&owner, create("chat", "chat", params()))]);
    w.fails(&owner, create("chat", "chat", params()), "exists already");
    let greedy = SubnetParams {
        emission_share_ppm: 1_000_000,
        ..params()
    };
    w.fails(&owner, create("more", "chat", greedy), "left to share out");

    w.fails(
        &v0,
        register(7, NeuronRole::Validator, 1),
        "subnet 7 does not exist",
    );
    let bad_endpoint = Message::RegisterNeuron(RegisterNeuron {
        subnet: 0,
        role: NeuronRole::Miner,
        endpoint: "ftp://x".into(),
        model: Hash::ZERO,
    });
    w.fails(&m0, bad_endpoint, "http:// or https://");
    w.ok(vec![
        (&v0, register(0, NeuronRole::Validator, 1)),
        (&m0, register(0, NeuronRole::Miner, 2)),
    ]);
    w.fails(&m0, register(0, NeuronRole::Miner, 2), "already registered");

    // Weights: format errors are caught before any state is read.
    let cases: Vec<(Vec<(u16, u32)>, &str)> = vec![
        (vec![], "empty"),
        (vec![(1, 500_000), (1, 500_000)], "strictly increasing"),
        (vec![(1, 999_999)], "sum to 1000000"),
        (vec![(1, 1_000_000), (2, 0)], "zero"),
    ];
    for (weights, needle) in cases {
        w.fails(&v0, Message::RevealWeights(reveal(weights, 0)), needle);
    }
    w.fails(
        &v0,
        Message::RevealWeights(reveal(vec![(9, 1_000_000)], 0)),
        "uid 9 is not a neuron",
    );
    w.fails(
        &v0,
        Message::RevealWeights(reveal(vec![(0, 1_000_000)], 0)),
        "weights go to miners",
    );
    w.fails(
        &v0,
        Message::RevealWeights(reveal(vec![(1, 1_000_000)], 0)),
        "no commitment matches",
    );
    let r = reveal(vec![(1, 1_000_000)], 5);
    w.fails(&m0, commit(&r, &m0), "only validators set weights");
    w.ok(vec![(&v0, commit(&r, &v0))]);
    let committed = w.height;
    // Someone else's reveal of the same weights does not match: commitments bind the signer.
    let other = reveal(vec![(1, 1_000_000)], 6);
    w.fails(&v0, Message::RevealWeights(other), "no commitment matches");
    w.idle_until(committed + 6);
    w.fails(&v0, Message::RevealWeights(r), "too late");

    // Fill the subnet (max 4) with neurons still immune: a fifth cannot join.
    w.ok(vec![
        (&m1, register(0, NeuronRole::Miner, 3)),
        (&m2, register(0, NeuronRole::Miner, 4)),
    ]);
    w.fails(&m3, register(0, NeuronRole::Miner, 5), "immunity period");
    // Once immunity is over, the lowest-paid neuron (ties: lowest uid) is replaced.
    w.idle_until(w.height + 41);
    w.ok(vec![(&m3, register(0, NeuronRole::Miner, 5))]);
    let neurons = subnets::neurons(&w.state, 0).unwrap();
    assert_eq!(neurons.len(), 4);
    assert_eq!(neurons[0].account, m3.public_key().address());
    assert_eq!(
        subnets::uid_of(&w.state, 0, &v0.public_key().address()).unwrap(),
        None
    );
}
