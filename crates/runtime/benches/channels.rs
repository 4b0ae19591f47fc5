//! Payment channels: what a voucher costs to check off chain, and what redeeming costs on
//! chain, against a plain transfer measured in the same run. Run with
//! `cargo bench -p hibana-runtime --bench channels`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use hibana_runtime::{
    BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState, check_stateless, deliver_tx,
};
use hibana_types::records::channels::{SignedVoucher, Voucher};
use hibana_types::{
    Amount, Message, OpenChannel, RedeemVouchers, SecretKey, SignedTransaction, Transaction,
    Transfer,
};

const CHAIN: &str = "bench";
const HIB: u128 = 1_000_000_000;

fn tx(key: &SecretKey, nonce: u64, message: Message) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN.into(),
        signer: key.public_key(),
        nonce,
        fee: Amount(1_000),
        messages: vec![message],
    }
    .sign(key)
}

fn ctx(height: u64) -> BlockContext {
    BlockContext {
        chain_id: CHAIN.into(),
        height,
        time_ms: height,
        proposer: hibana_types::Address([9; 20]),
    }
}

/// A chain where each of `payers` opened a channel to `payee` (channel i is payer i's).
fn chain(payers: &[SecretKey], payee: &SecretKey) -> MemState {
    let mut accounts: Vec<GenesisAccount> = payers
        .iter()
        .map(|k| GenesisAccount {
            address: k.public_key().address(),
            balance: Amount(100 * HIB),
        })
        .collect();
    accounts.push(GenesisAccount {
        address: payee.public_key().address(),
        balance: Amount(100 * HIB),
    });
    let genesis = Genesis {
        market: Default::default(),
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        params: Default::default(),
        accounts,
        validators: vec![GenesisValidator {
            public_key: SecretKey::generate().public_key(),
            stake: Amount(HIB),
        }],
    };
    let mut state = MemState::default();
    hibana_runtime::init_genesis(&mut state, &genesis).unwrap();
    for (i, k) in payers.iter().enumerate() {
        let open = tx(
            k,
            0,
            Message::OpenChannel(OpenChannel {
                payee: payee.public_key().address(),
                signer: None,
                deposit: Amount(10 * HIB),
                expires_at: 1_000_000,
            }),
        );
        let checked = check_stateless(&open, CHAIN, &Default::default()).unwrap();
        let r = deliver_tx(&mut state, &ctx(1), &checked, i as u32)
            .unwrap()
            .unwrap();
        assert!(r.is_success());
    }
    state
}

fn voucher(key: &SecretKey, channel: u64, nonce: u64) -> SignedVoucher {
    Voucher {
        chain_id: CHAIN.into(),
        channel,
        cumulative: Amount(u128::from(nonce) * 1_000),
        nonce,
    }
    .sign(key)
}

/// Mean microseconds per run of `f` over `n` runs.
fn micros(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let key = SecretKey::generate();
    let n = 20_000;
    let vouchers: Vec<SignedVoucher> = (0..n).map(|i| voucher(&key, 0, i as u64 + 1)).collect();
    let sign = micros(n, |i| {
        std::hint::black_box(voucher(&key, 0, i as u64 + 1));
    });
    let verify = micros(n, |i| vouchers[i].verify().unwrap());
    let transfer = tx(
        &key,
        0,
        Message::Transfer(Transfer {
            to: hibana_types::Address([1; 20]),
            amount: Amount(1),
        }),
    );
    let tx_verify = micros(n, |_| {
        std::hint::black_box(check_stateless(&transfer, CHAIN, &Default::default()).unwrap());
    });
    println!("Off chain, one core ({n} each):");
    println!("| work | µs each | per second |");
    println!("|---|---|---|");
    for (what, us) in [
        ("sign a voucher (the gateway, twice per answer)", sign),
        (
            "check a voucher's signature (a provider, per voucher it is handed)",
            verify,
        ),
        (
            "reference: check a transfer's signature (the mempool)",
            tx_verify,
        ),
    ] {
        println!("| {what} | {us:.1} | {:.0} |", 1e6 / us);
    }

    // On chain: a redemption of k vouchers (k channels), stateless check + execution, against
    // a transfer; each a fresh transaction on a state holding 64 open channels.
    let payers: Vec<SecretKey> = (0..64).map(|_| SecretKey::generate()).collect();
    let payee = SecretKey::generate();
    let rounds = 200;
    println!();
    println!("On chain, check + execute on a state with 64 channels ({rounds} transactions each):");
    println!("| transaction | µs per tx | µs per voucher | vs a transfer |");
    println!("|---|---|---|---|");
    let mut state = chain(&payers, &payee);
    let sender = &payers[0];
    let mut nonce = 1;
    let reference = micros(rounds, |_| {
        let t = tx(
            sender,
            nonce,
            Message::Transfer(Transfer {
                to: payee.public_key().address(),
                amount: Amount(1),
            }),
        );
        nonce += 1;
        let checked = check_stateless(&t, CHAIN, &Default::default()).unwrap();
        let r = deliver_tx(&mut state, &ctx(2), &checked, 0)
            .unwrap()
            .unwrap();
        assert!(r.is_success());
    });
    println!("| transfer (reference) | {reference:.0} | – | 1.0× |");
    for k in [1usize, 8, 64] {
        let mut state = chain(&payers, &payee);
        let mut payee_nonce = 0;
        let mut voucher_nonce = 0;
        let us = micros(rounds, |_| {
            voucher_nonce += 1;
            let vouchers = (0..k)
                .map(|c| voucher(&payers[c], c as u64, voucher_nonce))
                .collect();
            let t = tx(
                &payee,
                payee_nonce,
                Message::RedeemVouchers(RedeemVouchers { vouchers }),
            );
            payee_nonce += 1;
            let checked = check_stateless(&t, CHAIN, &Default::default()).unwrap();
            let r = deliver_tx(&mut state, &ctx(2), &checked, 0)
                .unwrap()
                .unwrap();
            assert!(r.is_success(), "{:?}", r.outcome);
        });
        println!(
            "| redeem {k} voucher(s) | {us:.0} | {:.1} | {:.1}× |",
            us / k as f64,
            us / reference
        );
    }
}
