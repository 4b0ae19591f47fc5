//! End-to-end: a wrong answer challenged on a real `hibana devnet --no-ai` process, through the
//! CLI the way the README's walk-through does. carol registers as a market provider and as a
//! miner of a subnet whose validator is bob; carol signs a receipt over a request and a wrong
//! response with her own key; alice challenges it with `hibana challenge submit`, bob re-checks
//! it with `hibana challenge show` and votes `--wrong`, and every balance and carol's bond are
//! checked to the base unit through the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{path::Path, str::FromStr, time::Duration};

use hibana_types::{Amount, Hash, ReceiptBody, SecretKey};
use serde_json::Value;
use support::{amount, balance, chain_devnet, fails_with, ok_json};

const CHALLENGE_ESCROW: &str = "hib1dp5kyctwvyhhvetjd9n8jtm9wd3hymmhxvd3cf";
const HIB: u128 = 1_000_000_000;

/// Runs a transaction that must commit; returns its receipt.
fn tx(args: &[&str]) -> Value {
    let receipt = ok_json(args);
    assert_eq!(
        receipt["outcome"]["status"], "success",
        "{args:?}: {receipt}"
    );
    receipt
}

fn fee(receipt: &Value) -> u128 {
    amount(&receipt["fee"])
}

/// The attribute `key` of the first event of `kind` in a receipt.
fn event(receipt: &Value, kind: &str, key: &str) -> String {
    let e = receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {receipt}"));
    e["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a[0] == key)
        .map(|a| a[1].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {key} in {e}"))
}

/// A devnet account's secret key, derived from the mnemonic of its development key file the way
/// `hibana` derives it (BIP39 seed, SLIP-0010 path m/44'/7468'/0'/0'/0').
fn dev_secret(home: &Path, name: &str) -> SecretKey {
    let file: Value = serde_json::from_slice(
        &std::fs::read(home.join("dev-keyring").join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    let mnemonic = bip39::Mnemonic::parse(file["mnemonic"].as_str().unwrap()).unwrap();
    let root = ed25519_dalek_bip32::ExtendedSigningKey::from_seed(&mnemonic.to_seed("")).unwrap();
    let path = ed25519_dalek_bip32::DerivationPath::from_str("m/44'/7468'/0'/0'/0'").unwrap();
    let key = SecretKey::from_bytes(root.derive(&path).unwrap().signing_key.to_bytes());
    assert_eq!(
        key.public_key().address().to_string(),
        file["address"].as_str().unwrap(),
        "the derivation differs from hibana's"
    );
    key
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn a_wrong_answer_is_challenged_voted_on_and_slashed_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let h = home.to_str().unwrap();
    let _devnet = chain_devnet(h);
    let model = Hash::digest(b"smollm2-135m-instruct");

    // carol: a market provider, and a miner of subnet "judges", whose validator is bob.
    tx(&[
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
        "--bond",
        "10HIB",
        "--from",
        "carol",
        "--home",
        h,
    ]);
    tx(&[
        "--json", "subnet", "create", "--name", "judges", "--task", "chat", "--tempo", "2",
        "--from", "alice", "--home", h,
    ]);
    let subnet = ok_json(&["--json", "subnet", "show", "judges", "--home", h]);
    let subnet_id = subnet["subnet"]["id"].as_u64().unwrap().to_string();
    tx(&[
        "--json",
        "neuron",
        "register",
        "--subnet",
        "judges",
        "--role",
        "miner",
        "--endpoint",
        "http://127.0.0.1:9000",
        "--model",
        &model.to_string(),
        "--from",
        "carol",
        "--home",
        h,
    ]);
    tx(&[
        "--json", "tx", "stake", "--amount", "1000HIB", "--from", "bob", "--home", h,
    ]);
    tx(&[
        "--json",
        "neuron",
        "register",
        "--subnet",
        "judges",
        "--role",
        "validator",
        "--endpoint",
        "http://127.0.0.1:9",
        "--from",
        "bob",
        "--home",
        h,
    ]);
    // The next epoch (every 2 blocks) gives bob his permit.
    let mut permitted = false;
    for _ in 0..100 {
        let view = ok_json(&["--json", "subnet", "show", "judges", "--home", h]);
        permitted = view["neurons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["role"] == "validator" && n["permit"] == true);
        if permitted {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(permitted, "bob never got a validator permit");

    // carol answers "2+2?" with "5" and signs for it, at 0.1 HIB.
    let carol = dev_secret(&home, "carol");
    let request = br#"{"model":"judges","messages":[{"role":"user","content":"What is 2+2?"}]}"#;
    let response = br#"{"choices":[{"message":{"role":"assistant","content":"5"}}]}"#;
    let receipt = ReceiptBody {
        provider: carol.public_key(),
        model_hash: model,
        request_hash: Hash::digest(request),
        response_hash: Hash::digest(response),
        prompt_tokens: 14,
        completion_tokens: 1,
        price: Amount(HIB / 10),
        timestamp_ms: now_ms(),
    }
    .sign(&carol)
    .to_hex();
    let files = dir.path();
    std::fs::write(files.join("request.json"), request).unwrap();
    std::fs::write(files.join("response.json"), response).unwrap();
    std::fs::write(files.join("other.json"), b"4").unwrap();
    let path = |name: &str| files.join(name).to_str().unwrap().to_string();

    let alice0 = balance(h, "alice");
    let bob0 = balance(h, "bob");
    let carol0 = balance(h, "carol");
    let bond0 =
        amount(&ok_json(&["--json", "market", "provider", "show", "carol", "--home", h])["bond"]);
    assert_eq!(bond0, 10 * HIB);

    // Bytes the receipt does not cover are refused, and cost nothing.
    fails_with(
        &[
            "challenge",
            "submit",
            "--subnet",
            &subnet_id,
            "--receipt",
            &receipt,
            "--request",
            &path("request.json"),
            "--response",
            &path("other.json"),
            "--deposit",
            "2HIB",
            "--from",
            "alice",
            "--home",
            h,
        ],
        "the response does not match the receipt",
    );
    assert_eq!(balance(h, "alice"), alice0);

    let submit = [
        "--json",
        "challenge",
        "submit",
        "--subnet",
        &subnet_id,
        "--receipt",
        &receipt,
        "--request",
        &path("request.json"),
        "--response",
        &path("response.json"),
        "--deposit",
        "2HIB",
        "--from",
        "alice",
        "--home",
        h,
    ];
    let opened = tx(&submit);
    let alice_fees = fee(&opened);
    let id = event(&opened, "verify.challenge_opened", "challenge");
    assert_eq!(
        event(&opened, "verify.challenge_opened", "held"),
        HIB.to_string()
    );
    assert_eq!(balance(h, "alice"), alice0 - 2 * HIB - alice_fees);
    assert_eq!(balance(h, CHALLENGE_ESCROW), 3 * HIB);
    fails_with(&submit[1..], "challenged already");

    // bob fetches what to re-check, byte for byte.
    let open = ok_json(&[
        "--json",
        "challenge",
        "list",
        "--status",
        "open",
        "--home",
        h,
    ]);
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert_eq!(open[0]["id"].to_string(), id);
    let shown = ok_json(&[
        "--json",
        "challenge",
        "show",
        &id,
        "--request-out",
        &path("fetched-request.json"),
        "--home",
        h,
    ]);
    assert_eq!(shown["response"], hex::encode(response));
    assert_eq!(
        std::fs::read(files.join("fetched-request.json")).unwrap(),
        request
    );
    assert_eq!(shown["electorate"].as_array().unwrap().len(), 1);
    assert_eq!(shown["electorate"][0]["stake"], (1_000 * HIB).to_string());

    // Only the subnet's validators vote.
    fails_with(
        &[
            "challenge",
            "vote",
            &id,
            "--wrong",
            "--from",
            "carol",
            "--home",
            h,
        ],
        "is a miner of subnet",
    );
    fails_with(
        &[
            "challenge",
            "vote",
            &id,
            "--right",
            "--from",
            "alice",
            "--home",
            h,
        ],
        "is not a neuron of subnet",
    );
    let voted = tx(&[
        "--json",
        "challenge",
        "vote",
        &id,
        "--wrong",
        "--from",
        "bob",
        "--home",
        h,
    ]);
    assert_eq!(
        event(&voted, "verify.challenge_resolved", "outcome"),
        "upheld"
    );
    fails_with(
        &[
            "challenge",
            "vote",
            &id,
            "--right",
            "--from",
            "bob",
            "--home",
            h,
        ],
        "resolved already (upheld)",
    );

    // Slash 1 HIB (a tenth of the bond): alice gets the price (0.1) back with half the rest
    // (0.45) and her deposit; bob, the only "wrong" voter, 20% of the rest (0.18); 0.27 burned.
    let settled = ok_json(&["--json", "challenge", "show", &id, "--home", h]);
    assert_eq!(settled["challenge"]["status"], "upheld");
    let s = &settled["challenge"]["settlement"];
    assert_eq!(amount(&s["slashed"]), HIB);
    assert_eq!(amount(&s["burned"]), 270_000_000);
    let bond =
        amount(&ok_json(&["--json", "market", "provider", "show", "carol", "--home", h])["bond"]);
    assert_eq!(bond, bond0 - HIB);
    assert_eq!(
        balance(h, "alice"),
        alice0 - alice_fees + 100_000_000 + 450_000_000
    );
    assert_eq!(balance(h, "bob"), bob0 - fee(&voted) + 180_000_000);
    assert_eq!(balance(h, "carol"), carol0);
    assert_eq!(balance(h, CHALLENGE_ESCROW), 0);
    let upheld = ok_json(&[
        "--json",
        "challenge",
        "list",
        "--status",
        "upheld",
        "--provider",
        "carol",
        "--home",
        h,
    ]);
    assert_eq!(upheld.as_array().unwrap().len(), 1);
    let none = ok_json(&[
        "--json",
        "challenge",
        "list",
        "--status",
        "open",
        "--home",
        h,
    ]);
    assert!(none.as_array().unwrap().is_empty());
}
