//! End-to-end: payment channels on a real `hibana devnet --no-ai` process through the CLI:
//! alice opens a channel to bob and signs vouchers off chain; bob redeems only the latest, which
//! pays for all before it; replays and bad vouchers are refused with their reason and nothing
//! moves; alice starts closing early, bob still redeems within the settle delay, and alice gets
//! the rest back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{amount, balance, chain_devnet, fails_with, ok_json, tx, wait_blocks};

fn voucher(h: &str, channel: &str, cumulative: &str, nonce: &str, from: &str) -> String {
    ok_json(&[
        "--json",
        "channel",
        "voucher",
        channel,
        "--cumulative",
        cumulative,
        "--nonce",
        nonce,
        "--from",
        from,
        "--home",
        h,
    ])["voucher"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn pay_through_a_channel_on_a_devnet_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let h = home.to_str().unwrap();
    let _devnet = chain_devnet(h);
    let (alice0, bob0) = (balance(h, "alice"), balance(h, "bob"));
    let mut alice_fees = tx(&[
        "--json",
        "channel",
        "open",
        "--to",
        "bob",
        "--deposit",
        "2HIB",
        "--expires-in",
        "1000",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    let view = ok_json(&[
        "--json", "channel", "status", "--payer", "alice", "--payee", "bob", "--home", h,
    ]);
    let channel = &view["channels"][0];
    assert_eq!(amount(&channel["deposit"]), 2_000_000_000);
    let id = channel["id"].as_u64().unwrap().to_string();
    assert_eq!(balance(h, "alice"), alice0 - 2_000_000_000 - alice_fees);

    // Three requests' worth of vouchers; bob redeems only the last.
    let _first = voucher(h, &id, "0.1HIB", "1", "alice");
    let second = voucher(h, &id, "0.25HIB", "2", "alice");
    let third = voucher(h, &id, "0.4HIB", "3", "alice");
    let mut bob_fees = tx(&[
        "--json", "channel", "redeem", &third, "--from", "bob", "--home", h,
    ]);
    assert_eq!(balance(h, "bob"), bob0 + 400_000_000 - bob_fees);
    // Replayed, older, forged or someone else's: refused with the reason, nothing moves.
    let before = (balance(h, "alice"), balance(h, "bob"));
    fails_with(
        &["channel", "redeem", &third, "--from", "bob", "--home", h],
        "nonce 3",
    );
    fails_with(
        &["channel", "redeem", &second, "--from", "bob", "--home", h],
        "nonce 2",
    );
    let by_carol = voucher(h, &id, "0.5HIB", "4", "carol");
    fails_with(
        &["channel", "redeem", &by_carol, "--from", "bob", "--home", h],
        "signed by",
    );
    let too_much = voucher(h, &id, "3HIB", "4", "alice");
    fails_with(
        &["channel", "redeem", &too_much, "--from", "bob", "--home", h],
        "more than its deposit",
    );
    let fourth = voucher(h, &id, "0.5HIB", "4", "alice");
    fails_with(
        &["channel", "redeem", &fourth, "--from", "carol", "--home", h],
        "only its payee redeems",
    );
    fails_with(
        &["channel", "redeem", "zz", "--from", "bob", "--home", h],
        "not hex",
    );
    // A refused transaction is never included: no fee either.
    assert_eq!((balance(h, "alice"), balance(h, "bob")), before);

    // Alice tops up, then starts closing early: bob still redeems within the settle delay.
    alice_fees += tx(&[
        "--json", "channel", "top-up", &id, "--amount", "1HIB", "--from", "alice", "--home", h,
    ]);
    alice_fees += tx(&[
        "--json", "channel", "close", &id, "--from", "alice", "--home", h,
    ]);
    let closing = ok_json(&["--json", "channel", "status", &id, "--home", h]);
    let until = closing["channels"][0]["settling_until"].as_u64().unwrap();
    fails_with(
        &["channel", "close", &id, "--from", "alice", "--home", h],
        "close it again after",
    );
    bob_fees += tx(&[
        "--json", "channel", "redeem", &fourth, "--from", "bob", "--home", h,
    ]);
    let now = support::height(h);
    wait_blocks(h, until.saturating_sub(now) + 1);
    alice_fees += tx(&[
        "--json", "channel", "close", &id, "--from", "alice", "--home", h,
    ]);
    let closed = ok_json(&["--json", "channel", "status", &id, "--home", h]);
    assert_eq!(closed["channels"][0]["status"], "closed");
    // Alice paid 0.5 HIB in all and her fees; bob got 0.5 HIB less his.
    assert_eq!(balance(h, "alice"), alice0 - 500_000_000 - alice_fees);
    assert_eq!(balance(h, "bob"), bob0 + 500_000_000 - bob_fees);
    fails_with(
        &["channel", "redeem", &fourth, "--from", "bob", "--home", h],
        "is closed",
    );
}
