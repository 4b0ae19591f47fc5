//! End-to-end: the compute market on a real `hibana devnet --no-ai` process, driven through the
//! CLI the way the README's walk-through does: a provider registers, a client orders, the
//! provider bids, the client accepts, blocks pass, the provider withdraws, the client closes,
//! and every balance is checked through `hibana query account`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{amount, balance, chain_devnet, fails_with, ok_json, tx, wait_blocks};

#[test]
fn lease_a_provider_on_a_devnet_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let h = home.to_str().unwrap();
    let _devnet = chain_devnet(h);

    let carol0 = balance(h, "carol");
    let mut carol_fees = tx(&[
        "--json",
        "market",
        "provider",
        "register",
        "--cores",
        "8",
        "--memory-mib",
        "16384",
        "--region",
        "eu-west",
        "--price",
        "0.001HIB",
        "--endpoint",
        "http://127.0.0.1:9000",
        "--from",
        "carol",
        "--home",
        h,
    ]);
    let bond = 10_000_000_000u128;
    assert_eq!(balance(h, "carol"), carol0 - bond - carol_fees);
    let providers = ok_json(&["--json", "market", "provider", "list", "--home", h]);
    assert_eq!(providers.as_array().unwrap().len(), 1);
    let shown = ok_json(&["--json", "market", "provider", "show", "carol", "--home", h]);
    assert_eq!(shown["attributes"]["region"], "eu-west");

    let alice0 = balance(h, "alice");
    let mut alice_fees = tx(&[
        "--json",
        "market",
        "order",
        "create",
        "--min-cores",
        "4",
        "--region",
        "eu-west",
        "--duration",
        "1000",
        "--max-price",
        "0.002HIB",
        "--deposit",
        "1HIB",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    let orders = ok_json(&["--json", "market", "order", "list", "--home", h]);
    assert_eq!(orders[0]["id"], 0);

    // Bad bids are refused with their reason, and cost nothing.
    fails_with(
        &[
            "market", "bid", "0", "--price", "0.001HIB", "--from", "bob", "--home", h,
        ],
        "not a registered provider",
    );
    fails_with(
        &[
            "market", "bid", "0", "--price", "0.003HIB", "--from", "carol", "--home", h,
        ],
        "above order 0's maximum",
    );
    carol_fees += tx(&[
        "--json", "market", "bid", "0", "--price", "0.001HIB", "--from", "carol", "--home", h,
    ]);
    let order = ok_json(&["--json", "market", "order", "show", "0", "--home", h]);
    assert_eq!(order["bids"][0]["price_per_block"], "1000000");

    alice_fees += tx(&[
        "--json",
        "market",
        "accept",
        "0",
        "--provider",
        "carol",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    fails_with(
        &[
            "market",
            "accept",
            "0",
            "--provider",
            "carol",
            "--from",
            "alice",
            "--home",
            h,
        ],
        "matched already",
    );
    let leases = ok_json(&["--json", "lease", "list", "--account", "alice", "--home", h]);
    assert_eq!(leases[0]["lease"]["provider"], shown["address"]);

    wait_blocks(h, 5);
    fails_with(
        &["lease", "withdraw", "0", "--from", "alice", "--home", h],
        "only its provider withdraws",
    );
    carol_fees += tx(&[
        "--json", "lease", "withdraw", "0", "--from", "carol", "--home", h,
    ]);
    let lease = ok_json(&["--json", "lease", "show", "0", "--home", h]);
    let paid = amount(&lease["lease"]["paid"]);
    let blocks = lease["lease"]["settled_at"].as_u64().unwrap()
        - lease["lease"]["started_at"].as_u64().unwrap();
    assert!(blocks >= 5, "{lease}");
    assert_eq!(paid, 1_000_000 * u128::from(blocks));
    // The bid deposit (1 HIB) is still locked with the lease.
    let bid_deposit = 1_000_000_000u128;
    assert_eq!(
        balance(h, "carol"),
        carol0 - bond - bid_deposit + paid - carol_fees
    );

    // The client tops the lease up; the provider cannot.
    fails_with(
        &[
            "lease", "top-up", "0", "0.5HIB", "--from", "carol", "--home", h,
        ],
        "only its client tops it up",
    );
    alice_fees += tx(&[
        "--json", "lease", "top-up", "0", "0.5HIB", "--from", "alice", "--home", h,
    ]);
    let lease = ok_json(&["--json", "lease", "show", "0", "--home", h]);
    assert_eq!(
        amount(&lease["lease"]["paid"]) + amount(&lease["lease"]["escrow"]),
        1_500_000_000,
        "{lease}"
    );
    let shown = support::hibana(&["lease", "show", "0", "--home", h]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success() && text.contains("runs out at height"),
        "{text}"
    );

    wait_blocks(h, 2);
    alice_fees += tx(&[
        "--json", "lease", "close", "0", "--from", "alice", "--home", h,
    ]);
    let lease = ok_json(&["--json", "lease", "show", "0", "--home", h]);
    assert_eq!(lease["lease"]["status"], "closed");
    let total = amount(&lease["lease"]["paid"]);
    assert!(total > paid);
    assert_eq!(balance(h, "alice"), alice0 - total - alice_fees);
    assert_eq!(balance(h, "carol"), carol0 - bond + total - carol_fees);
    fails_with(
        &["lease", "close", "0", "--from", "carol", "--home", h],
        "closed already",
    );
    let none = ok_json(&["--json", "lease", "list", "--account", "alice", "--home", h]);
    assert_eq!(none.as_array().unwrap().len(), 0);
}
