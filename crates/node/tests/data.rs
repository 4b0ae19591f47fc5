//! End-to-end: the data network on a real `hibana devnet --no-ai` process, driven through the
//! CLI the way its users drive it. alice opens a bounty for sentiment labels with a gold item;
//! three honest reviewers run the scripted reviewer (`data review --auto`, with the MiniLM
//! checks), a lazy one approves everything by hand; an honest contributor submits good items,
//! a spammer a near-duplicate and schema junk. The spam is rejected and its stake lost, the
//! lazy reviewer loses stake and (failing the gold item) its earnings, the honest parties are
//! paid; the node restarts and keeps every uploaded item; the dataset is exported to JSONL and
//! Parquet and every item verified against the root on chain, and a tampered file is caught.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};

use serde_json::Value;
use support::{BIN, amount, fails_with, funded_keyring, ok_json, start_command, tx};

const HIB: u128 = 1_000_000_000;

const SCHEMA: &str = r#"{"type":"object","required":["text","label"],"additionalProperties":false,"properties":{"text":{"type":"string","minLength":1,"maxLength":500},"label":{"enum":["positive","negative"]}}}"#;

fn devnet(home: &str) -> (support::Proc, String) {
    let (proc, info) = start_command(Command::new(BIN).args([
        "--json",
        "devnet",
        "--home",
        home,
        "--rpc-addr",
        "127.0.0.1:0",
        "--block-time-ms",
        "200",
        "--no-ai",
    ]));
    (proc, info["rpc"].as_str().unwrap().to_string())
}

/// The arguments that sign with a keyring key.
/// `hibana [--json] data submit 0 FILE --rpc RPC EXTRA…` signed by `who`.
fn submit<'a>(
    rpc: &'a str,
    file: &'a std::path::Path,
    who: &'a str,
    keyring: &'a (String, String),
    json: bool,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = if json { vec!["--json"] } else { Vec::new() };
    args.extend(["data", "submit", "0", file.to_str().unwrap(), "--rpc", rpc]);
    args.extend_from_slice(extra);
    args.extend(signer(who, keyring));
    args
}

fn signer<'a>(name: &'a str, keyring: &'a (String, String)) -> Vec<&'a str> {
    vec![
        "--from",
        name,
        "--keyring-dir",
        &keyring.0,
        "--password-file",
        &keyring.1,
    ]
}

fn balance(rpc: &str, keyring: &(String, String), name: &str) -> u128 {
    let v = ok_json(&[
        "--json",
        "--rpc",
        rpc,
        "query",
        "account",
        name,
        "--keyring-dir",
        &keyring.0,
    ]);
    v["balance"].as_str().unwrap().parse().unwrap()
}

fn show(rpc: &str) -> Value {
    ok_json(&["--json", "--rpc", rpc, "data", "bounty", "show", "0"])
}

/// Item ids of the bounty, by contributor address.
fn items_of(view: &Value, contributor: &str) -> Vec<u64> {
    view["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["contributor"] == contributor)
        .map(|i| i["id"].as_u64().unwrap())
        .collect()
}

fn address(rpc: &str, keyring: &(String, String), name: &str) -> String {
    ok_json(&[
        "--json",
        "--rpc",
        rpc,
        "query",
        "account",
        name,
        "--keyring-dir",
        &keyring.0,
    ])["address"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_bounty_pays_honest_work_and_costs_spam_and_laziness_and_its_dataset_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let h = home.to_str().unwrap();
    let (devnet_proc, rpc) = devnet(h);
    let names = ["r1", "r2", "r3", "lazy", "dana", "sam", "gil"];
    let keys = funded_keyring(dir.path(), &rpc, h, &names);
    let r = rpc.as_str();

    // alice's bounty, with a spam item as its gold (known answer: reject).
    let gold = dir.path().join("gold.jsonl");
    let gold_item = r#"{"text":"Buy now!!! cheap pills at www.example.com","label":"positive"}"#;
    std::fs::write(
        &gold,
        format!("{{\"item\": {gold_item}, \"accept\": false}}\n"),
    )
    .unwrap();
    let created = ok_json(&[
        "--json",
        "--rpc",
        r,
        "data",
        "bounty",
        "create",
        "--title",
        "sentiment labels",
        "--schema",
        SCHEMA,
        "--reward",
        "1HIB",
        "--reviewer-reward",
        "0.1HIB",
        "--reviewers",
        "4",
        "--contribution-stake",
        "0.5HIB",
        "--review-stake",
        "2HIB",
        "--deadline-in",
        "600",
        "--max-items",
        "20",
        "--commit-blocks",
        "150",
        "--reveal-blocks",
        "150",
        "--gold",
        gold.to_str().unwrap(),
        "--from",
        "alice",
        "--home",
        h,
    ]);
    assert_eq!(created["outcome"]["status"], "success", "{created}");
    for name in ["r1", "r2", "r3", "lazy"] {
        let mut args = vec![
            "--json", "--rpc", r, "data", "stake", "0", "--amount", "2HIB",
        ];
        args.extend(signer(name, &keys));
        tx(&args);
    }
    let before: Vec<u128> = names.iter().map(|n| balance(r, &keys, n)).collect();

    // dana: three honest items. sam: a near-duplicate of one, junk, a label outside the set.
    let good = dir.path().join("good.jsonl");
    std::fs::write(
        &good,
        concat!(
            r#"{"text":"I loved this film, the acting was superb","label":"positive"}"#,
            "\n",
            r#"{"text":"The hotel room was dirty and the staff were rude","label":"negative"}"#,
            "\n",
            r#"{"label":"positive","text":"This phone's battery lasts two full days"}"#,
            "\n",
        ),
    )
    .unwrap();
    let submitted = ok_json(&submit(r, &good, "dana", &keys, true, &[]));
    assert_eq!(
        submitted["submitted"].as_array().unwrap().len(),
        3,
        "{submitted}"
    );
    let spam = dir.path().join("spam.jsonl");
    std::fs::write(
        &spam,
        concat!(
            r#"{"text":"I loved this film, the acting was really superb!","label":"positive"}"#,
            "\n",
            "not even json\n",
            r#"{"text":"meh","label":"great"}"#,
            "\n",
        ),
    )
    .unwrap();
    // Checked before anything moves: the CLI refuses the file as it is.
    let sam0 = balance(r, &keys, "sam");
    fails_with(
        &submit(r, &spam, "sam", &keys, false, &[]),
        "line 2 does not fit bounty 0's schema",
    );
    assert_eq!(balance(r, &keys, "sam"), sam0);
    ok_json(&submit(r, &spam, "sam", &keys, true, &["--skip-checks"]));
    // gil, alice's second account, submits the gold item.
    let gold_file = dir.path().join("gold-item.jsonl");
    std::fs::write(&gold_file, format!("{gold_item}\n")).unwrap();
    ok_json(&submit(r, &gold_file, "gil", &keys, true, &[]));
    // Over the blob store's limit: refused by the node.
    let big = dir.path().join("big.jsonl");
    std::fs::write(
        &big,
        format!(
            "{{\"text\":\"{}\",\"label\":\"positive\"}}\n",
            "a".repeat(70_000)
        ),
    )
    .unwrap();
    fails_with(
        &submit(r, &big, "dana", &keys, false, &["--skip-checks"]),
        "items are at most 65536",
    );

    let view = show(r);
    let dana = address(r, &keys, "dana");
    let sam = address(r, &keys, "sam");
    let gil = address(r, &keys, "gil");
    let (good_ids, spam_ids, gold_ids) = (
        items_of(&view, &dana),
        items_of(&view, &sam),
        items_of(&view, &gil),
    );
    assert_eq!((good_ids.len(), spam_ids.len(), gold_ids.len()), (3, 3, 1));

    // The lazy reviewer approves everything without looking.
    for id in good_ids.iter().chain(&spam_ids).chain(&gold_ids) {
        let id = id.to_string();
        let mut args = vec![
            "--json", "--rpc", r, "data", "review", "--item", &id, "--accept",
        ];
        args.extend(signer("lazy", &keys));
        tx(&args);
    }
    // The honest reviewers run the scripted reviewer; the lazy one reveals; all at once.
    let mut running = Vec::new();
    for (name, flag) in [
        ("r1", "--auto"),
        ("r2", "--auto"),
        ("r3", "--auto"),
        ("lazy", "--reveal"),
    ] {
        let mut args = vec![
            "--json", "--rpc", r, "data", "review", flag, "--wait", "240",
        ];
        args.extend(signer(name, &keys));
        running.push((
            name,
            Command::new(BIN)
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ));
    }
    let mut decisions = Vec::new();
    for (name, child) in running {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{name}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if name == "r1" {
            decisions = serde_json::from_str::<Vec<Value>>(&text).unwrap();
        }
    }
    let view = show(r);
    let status = |id: u64| {
        view["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for id in &good_ids {
        assert_eq!(status(*id), "accepted", "item {id}: {decisions:?}");
    }
    for id in spam_ids.iter().chain(&gold_ids) {
        assert_eq!(status(*id), "rejected", "item {id}: {decisions:?}");
    }
    // The scripted reviewer's reasons: the near-duplicate by embedding, the junk by schema.
    let reasons = |id: u64| {
        decisions
            .iter()
            .find(|d| d["item"] == id && d["action"] == "commit")
            .map(|d| d["reasons"].to_string())
            .unwrap_or_default()
    };
    assert!(
        reasons(spam_ids[0]).contains("near-duplicate"),
        "{decisions:?}"
    );
    assert!(reasons(spam_ids[1]).contains("schema"), "{decisions:?}");
    assert!(reasons(spam_ids[2]).contains("schema"), "{decisions:?}");
    assert!(reasons(gold_ids[0]).contains("heuristic"), "{decisions:?}");

    // After the deadline is cut short: no more submissions; then finalising reveals the gold.
    tx(&[
        "--json", "--rpc", r, "data", "bounty", "close", "0", "--from", "alice", "--home", h,
    ]);
    fails_with(
        &submit(r, &good, "dana", &keys, false, &[]),
        "closed to submissions",
    );
    tx(&[
        "--json", "--rpc", r, "data", "bounty", "finalize", "0", "--from", "alice", "--home", h,
    ]);
    fails_with(
        &[
            "data", "bounty", "finalize", "0", "--rpc", r, "--from", "alice", "--home", h,
        ],
        "already finalised",
    );
    let after: Vec<u128> = names.iter().map(|n| balance(r, &keys, n)).collect();
    let view = show(r);
    let reviewer = |name: &str| {
        let a = address(r, &keys, name);
        view["reviewers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["address"] == a.as_str())
            .unwrap()
            .clone()
    };
    // dana: three rewards (stakes back); sam: three stakes lost; both paid their fees.
    let dana_fees = 3 * 1_000_000; // at most the devnet's minimum fee per transaction
    assert!(after[4] + dana_fees >= before[4] + 3 * HIB && after[4] <= before[4] + 3 * HIB);
    assert!(after[5] <= before[5] - 3 * HIB / 2 && after[5] + dana_fees >= before[5] - 3 * HIB / 2);
    // Honest reviewers: seven rewards and the whole stake back.
    for (i, name) in ["r1", "r2", "r3"].iter().enumerate() {
        assert_eq!(amount(&reviewer(name)["slashed"]), 0, "{name}");
        assert!(
            after[i] > before[i] + 2 * HIB + 6 * HIB / 10,
            "{name}: {} -> {}",
            before[i],
            after[i]
        );
    }
    // The lazy reviewer: a quarter of its stake lost on each of the four items it got wrong,
    // and its two earned rewards withheld for failing the gold item.
    let lazy = reviewer("lazy");
    assert_eq!(lazy["gold_seen"], 1);
    assert_eq!(lazy["gold_right"], 0);
    let mut stake = 2 * HIB;
    for _ in 0..4 {
        stake -= stake / 4;
    }
    assert_eq!(amount(&lazy["slashed"]), 2 * HIB - stake);
    assert!(after[3] <= before[3] + stake && after[3] + 20_000_000 >= before[3] + stake);
    assert_eq!(view["dataset"]["items"].as_array().unwrap().len(), 3);

    // A restart (killed, not stopped) keeps every uploaded item: the export fetches them all.
    drop(devnet_proc);
    let (_devnet, rpc) = devnet(h);
    let r = rpc.as_str();
    let jsonl = dir.path().join("dataset.jsonl");
    let parquet = dir.path().join("dataset.parquet");
    for (format, out) in [("jsonl", &jsonl), ("parquet", &parquet)] {
        let exported = ok_json(&[
            "--json",
            "--rpc",
            r,
            "data",
            "export",
            "0",
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(exported["rows"], 3, "{exported}");
        let verified = ok_json(&[
            "--json",
            "--rpc",
            r,
            "data",
            "verify",
            "0",
            out.to_str().unwrap(),
        ]);
        assert_eq!(verified["verified"], 3, "{verified}");
    }
    // DuckDB reads the Parquet file as any other, where it is installed.
    let duck = Command::new("python3")
        .args([
            "-c",
            "import sys, duckdb; print(duckdb.sql(f\"select count(*), min(length(proof)) > 2 from '{sys.argv[1]}'\").fetchall()[0])",
            parquet.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&duck.stderr).contains("No module named 'duckdb'") {
        eprintln!("duckdb is not installed: the Parquet file was checked by hibana alone");
    } else {
        assert_eq!(
            String::from_utf8_lossy(&duck.stdout).trim(),
            "(3, True)",
            "{duck:?}"
        );
    }
    // One changed byte in one item: caught, with the item named.
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, text.replacen("superb", "superB", 1)).unwrap();
    fails_with(
        &[
            "data",
            "verify",
            "0",
            tampered.to_str().unwrap(),
            "--rpc",
            r,
        ],
        "does not match its hash",
    );
}
