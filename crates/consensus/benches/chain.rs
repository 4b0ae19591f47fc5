//! Signed transfers per second through check + execute + commit, on one block of 10,000
//! transfers from distinct senders, as a validator that did not build the block sees it
//! (signatures verified in parallel batches while the block executes and its state root is
//! computed, then the block written durably). Run: `cargo bench -p hibana-consensus --bench chain`.
//! `verify` is the wall time of the checks with execution and Merkle running beside them, so
//! the phases add up to more than the total.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Instant};

use hibana_consensus::{BlockApplication, Chain};
use hibana_runtime::{Genesis, GenesisAccount, GenesisValidator, Params};
use hibana_store::Store;
use hibana_types::{Address, Amount, Message, SecretKey, Transaction, Transfer};

const TXS: usize = 10_000;

fn chain(dir: &std::path::Path, genesis: &Genesis) -> Chain {
    let store = Arc::new(Store::open(&dir.join("chain.redb")).expect("open store"));
    store.init_genesis(genesis).expect("genesis");
    Chain::new(store, TXS * 2).expect("chain")
}

fn main() {
    let validator = SecretKey::generate();
    let senders: Vec<SecretKey> = (0..TXS).map(|_| SecretKey::generate()).collect();
    let genesis = Genesis {
        market: Default::default(),
        chain_id: "bench".into(),
        genesis_time_ms: 0,
        params: Params {
            max_block_txs: TXS as u32,
            ..Params::default()
        },
        accounts: senders
            .iter()
            .map(|k| GenesisAccount {
                address: k.public_key().address(),
                balance: Amount::from_hib(10).unwrap(),
            })
            .collect(),
        validators: vec![GenesisValidator {
            public_key: validator.public_key(),
            stake: Amount::from_hib(1).unwrap(),
        }],
    };
    let txs: Vec<_> = senders
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Transaction {
                chain_id: "bench".into(),
                signer: k.public_key(),
                nonce: 0,
                fee: Amount(1_000),
                messages: vec![Message::Transfer(Transfer {
                    to: Address(
                        (i as u64 * 7919).to_le_bytes().repeat(3)[..20]
                            .try_into()
                            .unwrap(),
                    ),
                    amount: Amount(1_000),
                })],
            }
            .sign(k)
        })
        .collect();

    // The proposer builds the block from its mempool.
    let proposer_dir = tempfile::tempdir().unwrap();
    let proposer = chain(proposer_dir.path(), &genesis);
    for tx in txs {
        proposer.submit(tx).expect("admit");
    }
    let block = proposer
        .propose(1, 1, validator.public_key().address())
        .expect("propose");
    assert_eq!(block.txs.len(), TXS);

    println!("hibana chain benchmark: one block of {TXS} signed transfers, distinct senders");
    println!("threads: {}", rayon::current_num_threads());
    println!();
    println!(
        "{:>5} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9} | {:>12}",
        "run", "verify s", "execute s", "merkle s", "write s", "total s", "transfers/s"
    );
    let mut best: f64 = 0.0;
    for run in 1..=3 {
        // A validator that sees the block for the first time checks and executes everything.
        let dir = tempfile::tempdir().unwrap();
        let validator_chain = chain(dir.path(), &genesis);
        let start = Instant::now();
        validator_chain.validate(&block).expect("validate");
        validator_chain.commit(&block).expect("commit");
        let total = start.elapsed().as_secs_f64();
        let t = validator_chain.last_phase_times();
        let tps = TXS as f64 / total;
        best = best.max(tps);
        println!(
            "{run:>5} | {:>9.3} | {:>9.3} | {:>9.3} | {:>9.3} | {:>9.3} | {:>12.0}",
            t.verify, t.execute, t.merkle, t.write, total, tps
        );
    }
    println!();
    println!("best: {best:.0} transfers/s (target: 50,000 on 2 cores)");
}
