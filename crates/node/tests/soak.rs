//! Crash soak (not in the default run; about 5 minutes):
//!
//! `cargo test -p hibana-node --test soak -- --ignored --nocapture`
//!
//! A 4-validator network of `hibana node` processes on loopback runs under a steady load of
//! transfers while a random validator is killed with SIGKILL and restarted, 50 times
//! (`HIBANA_SOAK_KILLS` changes the count, `HIBANA_SOAK_SEED` replays a run). At the end every
//! transfer a node reported committed is in the chain of all four at the height reported, the
//! four hold the same block and state root at every height (no fork), and no validator signed
//! two conflicting votes: none was caught equivocating (no evidence kept, none jailed or
//! slashed), although each restart replays the engine's write-ahead log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use hibana_rpc::RpcClient;
use hibana_types::{Amount, Hash, Message, SecretKey, Transaction, Transfer, TxStatus};
use rand::{Rng, SeedableRng, rngs::StdRng};

mod support;

use support::{
    BIN,
    nodes::{NodeProcess, assert_same_chain, height, init_network, rt, wait_for_height},
};

/// Transfers sent before waiting for them.
const BATCH: u64 = 8;

/// What the load saw: transfers a node reported committed, with their height.
#[derive(Default)]
struct Ledger {
    confirmed: Vec<(Hash, u64)>,
    resyncs: u64,
}

#[test]
#[ignore = "a soak of several minutes; run it with --ignored"]
fn fifty_kill_9s_of_random_validators_lose_nothing_fork_nothing_and_sign_nothing_twice() {
    let kills: usize = std::env::var("HIBANA_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("HIBANA_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("soak: {kills} kills, HIBANA_SOAK_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    init_network(&out, 4);
    let rt = rt();
    let mut nodes: Vec<NodeProcess> = (0..4)
        .map(|k| NodeProcess::start(&out.join(format!("node{k}"))))
        .collect();
    wait_for_height(
        &rt,
        &nodes.iter().collect::<Vec<_>>(),
        3,
        Duration::from_secs(60),
    );
    let status = rt.block_on(nodes[0].client().status()).unwrap();
    let validators = status.validators.clone();
    assert_eq!(validators.len(), 4);

    // The load: a funded account sends batches of transfers to random live nodes.
    let sender = SecretKey::generate();
    let funded = Command::new(BIN)
        .args(["--json", "tx", "transfer", "--home"])
        .arg(out.join("node1"))
        .args(["--from", "alice", "--to"])
        .arg(sender.public_key().address().to_string())
        .args(["--amount", "1000HIB"])
        .output()
        .unwrap();
    assert!(
        funded.status.success(),
        "{}{}",
        String::from_utf8_lossy(&funded.stdout),
        String::from_utf8_lossy(&funded.stderr)
    );
    let urls = Arc::new(Mutex::new(
        nodes.iter().map(|n| n.rpc.clone()).collect::<Vec<_>>(),
    ));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (urls, ledger, stop) = (urls.clone(), ledger.clone(), stop.clone());
        let (chain_id, fee) = (status.chain_id.clone(), status.min_fee);
        std::thread::spawn(move || send_load(&chain_id, fee, &sender, &urls, &ledger, &stop, seed))
    };

    // The faults: one validator at a time is killed, stays down a moment, and restarts; the
    // next kill waits until the network, the restarted node included, has finalised two more
    // blocks, so three of four (a quorum) are up and connected at every kill.
    let started = Instant::now();
    for round in 0..kills {
        let k = rng.gen_range(0..4);
        nodes[k].kill();
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..1500)));
        nodes[k] = NodeProcess::start(&nodes[k].home.clone());
        urls.lock().unwrap()[k] = nodes[k].rpc.clone();
        let others = (0..4)
            .filter(|&o| o != k)
            .map(|o| height(&rt, &nodes[o]))
            .max()
            .unwrap();
        let all: Vec<&NodeProcess> = nodes.iter().collect();
        wait_for_height(&rt, &all, others + 2, Duration::from_secs(120));
        eprintln!(
            "soak: kill {} of {kills}: node{k} back at height {} after {:.0?}; {} transfers confirmed",
            round + 1,
            height(&rt, &nodes[k]),
            started.elapsed(),
            ledger.lock().unwrap().confirmed.len()
        );
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    // Every node reaches the same height, holding the same blocks and state roots.
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    let top = nodes.iter().map(|n| height(&rt, n)).max().unwrap() + 2;
    wait_for_height(&rt, &all, top, Duration::from_secs(120));
    assert_same_chain(&rt, &all, top);

    // No committed transfer was lost: each is committed on every node at the height reported.
    let ledger = ledger.lock().unwrap();
    assert!(
        ledger.confirmed.len() >= kills,
        "the load barely ran: {} transfers confirmed",
        ledger.confirmed.len()
    );
    for node in &nodes {
        let client = node.client();
        for (hash, at) in &ledger.confirmed {
            match rt.block_on(client.tx_status(hash)).unwrap() {
                TxStatus::Committed { receipt } => assert_eq!(
                    receipt.height,
                    *at,
                    "{hash} moved on {}",
                    node.home.display()
                ),
                other => panic!("{hash} lost on {}: {other:?}", node.home.display()),
            }
        }
    }

    // Nobody signed twice: no node kept equivocation evidence, and the set is unchanged.
    for node in &nodes {
        let evidence = node.home.join("data").join("evidence");
        let kept = std::fs::read_dir(&evidence).map(|d| d.count()).unwrap_or(0);
        assert_eq!(
            kept,
            0,
            "{} kept evidence of a double sign",
            evidence.display()
        );
    }
    let now = rt.block_on(nodes[0].client().status()).unwrap().validators;
    assert_eq!(now, validators, "a validator was jailed or slashed");
    eprintln!(
        "soak: {kills} kills in {:.0?}; {} transfers confirmed ({} nonce resyncs), all on every \
         node; {top} blocks identical on all four; no evidence of a double sign",
        started.elapsed(),
        ledger.confirmed.len(),
        ledger.resyncs
    );
}

/// Sends transfers from `sender`, paying `fee` each, until `stop`, in batches to random live nodes, and records
/// those a node reports committed.
fn send_load(
    chain_id: &str,
    fee: Amount,
    sender: &SecretKey,
    urls: &Mutex<Vec<String>>,
    ledger: &Mutex<Ledger>,
    stop: &AtomicBool,
    seed: u64,
) {
    let rt = rt();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let pick = |rng: &mut StdRng| {
        let urls = urls.lock().unwrap();
        RpcClient::new(&urls[rng.gen_range(0..urls.len())]).unwrap()
    };
    let recipient = SecretKey::generate().public_key().address();
    let mut nonce = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let batch: Vec<_> = (nonce..nonce + BATCH)
            .map(|n| {
                Transaction {
                    chain_id: chain_id.to_string(),
                    signer: sender.public_key(),
                    nonce: n,
                    fee,
                    messages: vec![Message::Transfer(Transfer {
                        to: recipient,
                        amount: Amount(1 + u128::from(n)),
                    })],
                }
                .sign(sender)
            })
            .collect();
        // Every live node gets each transfer (a node killed with it in its mempool before
        // gossiping it loses it); the down one refuses, which is fine.
        let live: Vec<String> = urls.lock().unwrap().clone();
        for tx in &batch {
            for url in &live {
                let _ = rt.block_on(RpcClient::new(url).unwrap().submit(tx));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut committed = 0;
        for tx in &batch {
            let hash = tx.hash();
            while Instant::now() < deadline {
                if let Ok(TxStatus::Committed { receipt }) =
                    rt.block_on(pick(&mut rng).tx_status(&hash))
                {
                    ledger
                        .lock()
                        .unwrap()
                        .confirmed
                        .push((hash, receipt.height));
                    committed += 1;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if committed == BATCH {
            nonce += BATCH;
        } else {
            // Some were dropped by a node that died with them in its mempool: carry on from the
            // account's nonce (the ones committed are already recorded).
            ledger.lock().unwrap().resyncs += 1;
            let address = sender.public_key().address();
            for _ in 0..50 {
                if let Ok(view) = rt.block_on(pick(&mut rng).account_verified(&address)) {
                    nonce = view.nonce;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
