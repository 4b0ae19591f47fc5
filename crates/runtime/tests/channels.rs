//! The channels component through transactions: opening, topping up, redeeming vouchers in
//! batches, closing at expiry and early with a settle delay; every bad voucher refused with its
//! reason and balances untouched; and a property test that a channel never pays more than its
//! deposit and that random sequences conserve the supply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{CHAIN, FEE, World};
use hibana_runtime::{
    bank,
    channels::{self, CHANNEL_ESCROW, ChannelStatus, SETTLE_DELAY_BLOCKS, Voucher},
};
use hibana_types::records::channels::{
    MAX_OPEN_CHANNELS_PER_PAIR, MIN_CHANNEL_DEPOSIT, SignedVoucher,
};
use hibana_types::{
    Address, Amount, CloseChannel, Message, OpenChannel, RedeemVouchers, SecretKey, TopUpChannel,
    TxOutcome,
};
use proptest::prelude::*;

fn addr(k: &SecretKey) -> Address {
    k.public_key().address()
}

fn open(payee: &SecretKey, deposit: u128, expires_at: u64) -> Message {
    Message::OpenChannel(OpenChannel {
        payee: addr(payee),
        signer: None,
        deposit: Amount(deposit),
        expires_at,
    })
}

fn voucher(key: &SecretKey, channel: u64, cumulative: u128, nonce: u64) -> SignedVoucher {
    Voucher {
        chain_id: CHAIN.into(),
        channel,
        cumulative: Amount(cumulative),
        nonce,
    }
    .sign(key)
}

fn redeem(vouchers: Vec<SignedVoucher>) -> Message {
    Message::RedeemVouchers(RedeemVouchers { vouchers })
}

fn close(channel: u64) -> Message {
    Message::CloseChannel(CloseChannel { channel })
}

const HIB: u128 = 1_000_000_000;

#[test]
fn a_payee_redeems_the_latest_voucher_once_and_the_payer_gets_the_rest_at_expiry() {
    let (payer, payee) = (SecretKey::generate(), SecretKey::generate());
    let mut w = World::new(&[&payer, &payee], Amount(100 * HIB));
    w.ok(&payer, open(&payee, 10 * HIB, 50));
    let c = channels::channel(&w.state, 0).unwrap().unwrap();
    assert_eq!(
        (c.payer, c.payee, c.signer),
        (addr(&payer), addr(&payee), payer.public_key())
    );
    assert_eq!(w.balance(&CHANNEL_ESCROW), Amount(10 * HIB));
    assert_eq!(w.balance(&addr(&payer)).0, 90 * HIB - FEE);
    // Three requests' vouchers; only the last is redeemed, and it pays for all three.
    let _first = voucher(&payer, 0, 100, 1);
    let _second = voucher(&payer, 0, 250, 2);
    let third = voucher(&payer, 0, 400, 3);
    w.ok(&payee, redeem(vec![third.clone()]));
    assert_eq!(w.balance(&addr(&payee)).0, 100 * HIB + 400 - FEE);
    // Replaying it, or an older one, pays nothing.
    w.fails(&payee, redeem(vec![third]), "nonce 3");
    w.fails(&payee, redeem(vec![voucher(&payer, 0, 250, 2)]), "nonce 2");
    // A newer voucher pays the difference.
    w.ok(&payee, redeem(vec![voucher(&payer, 0, 1_000, 4)]));
    assert_eq!(
        w.balance(&addr(&payee)).0,
        100 * HIB + 1_000 - 3 * FEE - FEE
    );
    let c = channels::channel(&w.state, 0).unwrap().unwrap();
    assert_eq!((c.redeemed, c.nonce), (Amount(1_000), 4));
    // The payer closes after the expiry and gets the rest at once.
    w.idle(50);
    let before = w.balance(&addr(&payer));
    w.ok(&payer, close(0));
    assert_eq!(
        w.balance(&addr(&payer)).0,
        before.0 + 10 * HIB - 1_000 - FEE
    );
    assert_eq!(w.balance(&CHANNEL_ESCROW), Amount::ZERO);
    let c = channels::channel(&w.state, 0).unwrap().unwrap();
    assert_eq!(c.status, ChannelStatus::Closed);
    assert!(
        channels::payer_channel_ids(&w.state, &addr(&payer))
            .unwrap()
            .is_empty()
    );
    w.fails(
        &payee,
        redeem(vec![voucher(&payer, 0, 2_000, 5)]),
        "is closed",
    );
}

#[test]
fn one_redemption_pays_many_channels_and_one_bad_voucher_fails_it_all() {
    let (a, b, gateway) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let mut w = World::new(&[&a, &b, &gateway], Amount(100 * HIB));
    w.ok(&a, open(&gateway, HIB, 1_000));
    w.ok(&b, open(&gateway, HIB, 1_000));
    // b's voucher promises more than its deposit: nothing is paid, a's neither.
    w.fails(
        &gateway,
        redeem(vec![voucher(&a, 0, 5, 1), voucher(&b, 1, HIB + 1, 1)]),
        "more than its deposit",
    );
    w.fails(
        &gateway,
        redeem(vec![voucher(&a, 0, 5, 1), voucher(&a, 0, 6, 2)]),
        "two vouchers for one channel",
    );
    let before = w.balance(&addr(&gateway));
    w.ok(
        &gateway,
        redeem(vec![voucher(&a, 0, 5, 1), voucher(&b, 1, 7, 1)]),
    );
    assert_eq!(w.balance(&addr(&gateway)).0, before.0 + 12 - FEE);
}

#[test]
fn bad_vouchers_are_refused_with_their_reason_and_balances_untouched() {
    let (payer, payee, stranger) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let mut w = World::new(&[&payer, &payee, &stranger], Amount(100 * HIB));
    w.ok(&payer, open(&payee, HIB, 1_000));
    // Signed by another key than the channel's.
    w.fails(
        &payee,
        redeem(vec![voucher(&stranger, 0, 5, 1)]),
        "signed by",
    );
    // A forged signature.
    let mut forged = voucher(&payer, 0, 5, 1);
    forged.voucher.cumulative = Amount(500);
    w.fails(&payee, redeem(vec![forged]), "bad signature");
    // For another chain.
    let mut other = Voucher {
        chain_id: "other".into(),
        channel: 0,
        cumulative: Amount(5),
        nonce: 1,
    };
    other.nonce = 1;
    w.fails(
        &payee,
        redeem(vec![other.sign(&payer)]),
        "for chain \"other\"",
    );
    // For another channel than the redeemer's.
    w.fails(
        &stranger,
        redeem(vec![voucher(&payer, 0, 5, 1)]),
        "only its payee redeems",
    );
    w.fails(
        &payee,
        redeem(vec![voucher(&payer, 7, 5, 1)]),
        "channel 7 does not exist",
    );
    // More than the deposit.
    w.fails(
        &payee,
        redeem(vec![voucher(&payer, 0, HIB + 1, 1)]),
        "more than its deposit",
    );
    // A zero or equal amount.
    w.ok(&payee, redeem(vec![voucher(&payer, 0, 5, 1)]));
    w.fails(
        &payee,
        redeem(vec![voucher(&payer, 0, 5, 2)]),
        "only a higher amount pays",
    );
    w.fails(&payee, redeem(Vec::new()), "1 to 64 vouchers");
    // Bad opens and top-ups.
    w.fails(&payer, open(&payer, HIB, 1_000), "its own payer");
    w.fails(
        &payer,
        open(&payee, MIN_CHANNEL_DEPOSIT.0 - 1, 1_000),
        "below the minimum",
    );
    w.fails(&payer, open(&payee, HIB, 1), "expiry height 1");
    w.fails(
        &payer,
        open(&payee, 1_000 * HIB, 1_000),
        "insufficient funds",
    );
    w.fails(
        &payer,
        Message::OpenChannel(OpenChannel {
            payee: CHANNEL_ESCROW,
            signer: None,
            deposit: Amount(HIB),
            expires_at: 1_000,
        }),
        "module account",
    );
    let top_up = |amount, expires_at| {
        Message::TopUpChannel(TopUpChannel {
            channel: 0,
            amount: Amount(amount),
            expires_at,
        })
    };
    w.fails(&stranger, top_up(5, None), "only the payer");
    w.fails(&payer, top_up(0, None), "adds tokens, moves the expiry");
    w.fails(&payer, top_up(0, Some(500)), "only moves later");
    w.ok(&payer, top_up(HIB, Some(2_000)));
    let c = channels::channel(&w.state, 0).unwrap().unwrap();
    assert_eq!((c.deposit, c.expires_at), (Amount(2 * HIB), 2_000));
    w.fails(&stranger, close(0), "only the payer");
    // The pair limit.
    for _ in 1..MAX_OPEN_CHANNELS_PER_PAIR {
        w.ok(&payer, open(&payee, MIN_CHANNEL_DEPOSIT.0, 1_000));
    }
    w.fails(
        &payer,
        open(&payee, MIN_CHANNEL_DEPOSIT.0, 1_000),
        "top one up instead",
    );
}

#[test]
fn closing_early_leaves_the_payee_a_settle_delay_to_redeem() {
    let (payer, payee) = (SecretKey::generate(), SecretKey::generate());
    let mut w = World::new(&[&payer, &payee], Amount(100 * HIB));
    w.ok(&payer, open(&payee, HIB, 10_000));
    w.ok(&payer, close(0));
    let c = channels::channel(&w.state, 0).unwrap().unwrap();
    let until = c.settling_until.unwrap();
    assert_eq!(until, w.height + SETTLE_DELAY_BLOCKS);
    assert_eq!(c.status, ChannelStatus::Open);
    w.fails(&payer, close(0), "close it again after");
    w.fails(
        &payer,
        Message::TopUpChannel(TopUpChannel {
            channel: 0,
            amount: Amount(1),
            expires_at: None,
        }),
        "is closing",
    );
    // The payee still redeems inside the delay.
    w.ok(&payee, redeem(vec![voucher(&payer, 0, 300, 1)]));
    while w.height < until {
        w.idle(1);
    }
    w.fails(
        &payee,
        redeem(vec![voucher(&payer, 0, 600, 2)]),
        "stopped taking vouchers",
    );
    let before = w.balance(&addr(&payer));
    w.ok(&payer, close(0));
    assert_eq!(w.balance(&addr(&payer)).0, before.0 + HIB - 300 - FEE);
    assert_eq!(w.balance(&CHANNEL_ESCROW), Amount::ZERO);
}

#[test]
fn a_payee_closes_at_once_and_a_delegated_signer_signs_for_the_payer() {
    let (payer, payee, api_key) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let mut w = World::new(&[&payer, &payee], Amount(100 * HIB));
    w.ok(
        &payer,
        Message::OpenChannel(OpenChannel {
            payee: addr(&payee),
            signer: Some(api_key.public_key()),
            deposit: Amount(HIB),
            expires_at: 10_000,
        }),
    );
    w.fails(&payee, redeem(vec![voucher(&payer, 0, 10, 1)]), "signed by");
    w.ok(&payee, redeem(vec![voucher(&api_key, 0, 10, 1)]));
    let before = w.balance(&addr(&payer));
    w.ok(&payee, close(0));
    assert_eq!(w.balance(&addr(&payer)).0, before.0 + HIB - 10);
}

#[derive(Debug, Clone)]
enum Action {
    Open {
        payer: usize,
        payee: usize,
        deposit: u32,
        ttl: u8,
    },
    TopUp {
        channel: u8,
        amount: u32,
    },
    /// A voucher from the channel's signer (or another key) for some amount, redeemed by the
    /// payee (or someone else).
    Redeem {
        channel: u8,
        amount: u64,
        nonce: u8,
        honest_signer: bool,
        by_payee: bool,
    },
    Close {
        channel: u8,
        by_payer: bool,
    },
    Idle(u8),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0..4usize, 0..4usize, 1_000_000u32..50_000_000, 1u8..40).prop_map(
            |(payer, payee, deposit, ttl)| Action::Open {
                payer,
                payee,
                deposit,
                ttl
            }
        ),
        (any::<u8>(), 0u32..10_000_000)
            .prop_map(|(channel, amount)| Action::TopUp { channel, amount }),
        (
            any::<u8>(),
            0u64..80_000_000,
            any::<u8>(),
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.9)
        )
            .prop_map(
                |(channel, amount, nonce, honest_signer, by_payee)| Action::Redeem {
                    channel,
                    amount,
                    nonce,
                    honest_signer,
                    by_payee
                }
            ),
        (any::<u8>(), any::<bool>())
            .prop_map(|(channel, by_payer)| Action::Close { channel, by_payer }),
        (1u8..30).prop_map(Action::Idle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn channels_conserve_supply_and_never_pay_more_than_deposited(
        actions in prop::collection::vec(action(), 1..60),
    ) {
        let keys: Vec<SecretKey> = (0..4).map(|_| SecretKey::generate()).collect();
        let refs: Vec<&SecretKey> = keys.iter().collect();
        let mut w = World::new(&refs, Amount(10 * HIB));
        let supply = bank::total_supply(&w.state).unwrap();
        let liquid = |w: &World| -> u128 {
            keys.iter().map(|k| w.balance(&addr(k)).0).sum::<u128>()
                + w.balance(&CHANNEL_ESCROW).0
                + w.balance(&w.validator.public_key().address()).0
        };
        let start = liquid(&w);
        let index = |a: Address| keys.iter().position(|k| addr(k) == a).unwrap_or(0);
        for a in actions {
            let channels = (0..).take_while(|i| channels::channel(&w.state, *i).unwrap().is_some()).count() as u64;
            let pick = |c: u8| u64::from(c) % channels.max(1);
            let tx = match a {
                Action::Open { payer, payee, deposit, ttl } => Some((payer, open(&keys[payee], u128::from(deposit), w.height + 1 + u64::from(ttl)))),
                Action::TopUp { channel, amount } => {
                    let id = pick(channel);
                    let payer = channels::channel(&w.state, id).unwrap().map_or(0, |c| index(c.payer));
                    Some((payer, Message::TopUpChannel(TopUpChannel { channel: id, amount: Amount(u128::from(amount)), expires_at: None })))
                }
                Action::Redeem { channel, amount, nonce, honest_signer, by_payee } => {
                    let id = pick(channel);
                    channels::channel(&w.state, id).unwrap().map(|c| {
                        let signer = if honest_signer { index(c.payer) } else { (index(c.payer) + 1) % 4 };
                        let who = if by_payee { index(c.payee) } else { index(c.payer) };
                        (who, redeem(vec![voucher(&keys[signer], id, u128::from(amount), c.nonce + u64::from(nonce % 3))]))
                    })
                }
                Action::Close { channel, by_payer } => {
                    let id = pick(channel);
                    channels::channel(&w.state, id).unwrap().map(|c| (if by_payer { index(c.payer) } else { index(c.payee) }, close(id)))
                }
                Action::Idle(n) => { w.idle(u64::from(n)); None }
            };
            if let Some((who, message)) = tx {
                let _ = w.block(vec![(&keys[who], message)]);
            }
            // Every channel: paid out no more than deposited; the escrow holds exactly what
            // the open channels have left.
            let mut held = 0u128;
            for id in 0..channels + 1 {
                if let Some(c) = channels::channel(&w.state, id).unwrap() {
                    prop_assert!(c.redeemed <= c.deposit, "channel {id} paid {} of {}", c.redeemed, c.deposit);
                    if c.status == ChannelStatus::Open {
                        held += c.remaining().0;
                    }
                }
            }
            prop_assert_eq!(w.balance(&CHANNEL_ESCROW).0, held);
            prop_assert_eq!(bank::total_supply(&w.state).unwrap(), supply);
            prop_assert_eq!(liquid(&w), start, "tokens appeared or vanished");
        }
    }
}

#[test]
fn failures_in_a_block_do_not_stop_the_chain() {
    let (payer, payee) = (SecretKey::generate(), SecretKey::generate());
    let mut w = World::new(&[&payer, &payee], Amount(100 * HIB));
    let outcomes = w.block(vec![
        (&payer, open(&payee, HIB, 100)),
        (&payee, redeem(vec![voucher(&payer, 0, 1, 1)])),
    ]);
    assert_eq!(outcomes, vec![TxOutcome::Success, TxOutcome::Success]);
}
