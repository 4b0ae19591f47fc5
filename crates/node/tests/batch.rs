//! End to end with real processes and real models: a client leases the AI devnet's provider
//! and submits a batch of OpenAI requests (chat, completion, embeddings, and one the provider
//! must refuse); the provider answers every line with a signed receipt and commits the results
//! root; `batch fetch` checks every receipt and the root against the chain and writes OpenAI's
//! batch output, and `batch verify` re-checks the lines on the client's own models. Then a
//! cheating provider (this test, signing with the devnet provider's key) commits a batch whose
//! first answer is made up: `batch verify` finds that line, `batch dispute` challenges it, the
//! devnet's validator re-checks and votes, and the chain slashes the provider, refutes the
//! batch and closes the lease. Lines requested on chain are posted by the honest provider; a
//! provider that withholds them loses the batch and part of its bond, found by the devnet's
//! validator and by `batch spot-check --request`; one that commits more answered lines than its
//! results root counts is refuted at once by `batch dispute`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{amount, fails_with, hibana, ok_json, start_devnet, tx};

fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

fn input() -> String {
    let chat = |id: &str, q: &str| {
        json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": "smollm2-135m-instruct", "temperature": 0,
                        "messages": [{"role": "user", "content": q}], "max_tokens": 8}})
    };
    [
        chat("capital", "What is the capital of France?"),
        json!({"custom_id": "complete", "url": "/v1/completions",
               "body": {"model": "gemma3-270m", "prompt": "One, two, three,", "max_tokens": 4, "temperature": 0}}),
        json!({"custom_id": "embed", "url": "/v1/embeddings",
               "body": {"model": "all-minilm-l6-v2", "input": "a batch of requests"}}),
        json!({"custom_id": "unknown-model", "url": "/v1/chat/completions",
               "body": {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n")
}

#[test]
fn a_batch_is_answered_fetched_verified_and_a_made_up_line_is_slashed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let h = home.to_str().unwrap();
    let devnet = start_devnet(h, &[]);
    let rpc = devnet.rpc.clone();
    let file = dir.path().join("batch.jsonl");
    std::fs::write(&file, input()).unwrap();
    let f = file.to_str().unwrap();

    // Bad input first: a file that is not a batch.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"custom_id\": \"a\", \"url\": \"/v1/files\", \"body\": {}}\n",
    )
    .unwrap();
    fails_with(
        &[
            "batch",
            "submit",
            "--lease",
            "0",
            "--input",
            bad.to_str().unwrap(),
            "--from",
            "alice",
            "--home",
            h,
        ],
        "line 1: url \"/v1/files\" is not one of",
    );

    // Alice leases the devnet's provider, which bids by itself.
    let providers = ok_json(&["--json", "market", "provider", "list", "--home", h]);
    let provider = providers[0]["address"].as_str().unwrap().to_string();
    tx(&[
        "--json",
        "market",
        "order",
        "create",
        "--min-cores",
        "1",
        "--duration",
        "5000",
        "--max-price",
        "0.002HIB",
        "--deposit",
        "10HIB",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    eventually("the provider's bid", || {
        let order = ok_json(&["--json", "market", "order", "show", "0", "--home", h]);
        (!order["bids"].as_array().unwrap().is_empty()).then_some(())
    });
    tx(&[
        "--json",
        "market",
        "accept",
        "0",
        "--provider",
        &provider,
        "--from",
        "alice",
        "--home",
        h,
    ]);

    // Batch 0: submitted (with 0.01 HIB a line held in escrow), uploaded, answered and
    // committed.
    let submitted = ok_json(&[
        "--json",
        "batch",
        "submit",
        "--lease",
        "0",
        "--input",
        f,
        "--price-per-line",
        "0.01HIB",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    assert_eq!(submitted["batch"], 0, "{submitted}");
    assert_eq!(submitted["lines"], 4);
    assert_eq!(amount(&submitted["escrow"]), 40_000_000, "{submitted}");
    let status = ok_json(&[
        "--json",
        "batch",
        "status",
        "0",
        "--wait",
        "--timeout",
        "300",
        "--home",
        h,
    ]);
    assert_eq!(status["batch"]["status"], "done", "{status}");
    assert_eq!(amount(&status["batch"]["price_per_line"]), 10_000_000);
    assert_eq!(
        status["batch"]["answered"], 3,
        "the unknown model is refused: {status}"
    );

    let out = dir.path().join("out.jsonl");
    let raw = dir.path().join("raw.jsonl");
    let fetched = ok_json(&[
        "--json",
        "batch",
        "fetch",
        "0",
        "--input",
        f,
        "--out",
        out.to_str().unwrap(),
        "--results-out",
        raw.to_str().unwrap(),
        "--home",
        h,
    ]);
    assert_eq!(fetched["receipts_checked"], 3, "{fetched}");
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["custom_id"], "capital");
    assert_eq!(lines[0]["response"]["status_code"], 200);
    let answer = lines[0]["response"]["body"]["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(!answer.is_empty());
    assert_eq!(lines[1]["response"]["body"]["object"], "text_completion");
    assert_eq!(
        lines[2]["response"]["body"]["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .len(),
        384
    );
    assert_eq!(lines[3]["response"]["status_code"], 404);
    assert!(lines[3]["receipt"].is_null() && !lines[3]["error"].is_null());

    // The client re-checks every answered line on its own models: all right.
    let verified = ok_json(&[
        "--json", "batch", "verify", "0", "--input", f, "--sample", "10", "--home", h,
    ]);
    // The three answers (the unknown model's refusal is not signed: the provider does not sign
    // a refusal of a model it does not load, which a judge could not tell from one it declares).
    assert_eq!(
        verified["checked"].as_array().unwrap().len(),
        3,
        "{verified}"
    );
    assert!(
        verified["wrong_lines"].as_array().unwrap().is_empty(),
        "{verified}"
    );

    // The devnet's validator spot-checks the committed batch by itself, line by line from the
    // provider, on its own models: nothing to challenge.
    let checks = home.join("spot_checks.jsonl");
    let check0 = eventually("the validator's spot-check of batch 0", || {
        spot_check(&checks, 0)
    });
    let verdicts: Vec<&str> = check0["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts.len(), 4, "{check0}");
    assert_eq!(verdicts[3], "refused", "{check0}");
    assert!(
        verdicts.contains(&"right") && !verdicts.contains(&"wrong"),
        "{check0}"
    );
    assert!(check0["challenged"].is_null(), "{check0}");
    // Any account can run the same check from the command line.
    let mine = ok_json(&[
        "--json",
        "batch",
        "spot-check",
        "0",
        "--lines",
        "4",
        "--from",
        "bob",
        "--home",
        h,
    ]);
    assert_eq!(mine["lines"].as_array().unwrap().len(), 4, "{mine}");
    assert!(
        mine["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["verdict"] != "wrong"),
        "{mine}"
    );
    assert!(mine["challenged"].is_null(), "{mine}");

    // Bob asks on chain for line 1 of batch 0; the provider posts it with its proofs by itself,
    // and anyone can read it from the chain.
    fails_with(
        &[
            "batch",
            "request-line",
            "0",
            "--line",
            "4",
            "--from",
            "bob",
            "--home",
            h,
        ],
        "lines 0 to 3",
    );
    tx(&[
        "--json",
        "batch",
        "request-line",
        "0",
        "--line",
        "1",
        "--from",
        "bob",
        "--home",
        h,
    ]);
    fails_with(
        &[
            "batch",
            "request-line",
            "0",
            "--line",
            "1",
            "--from",
            "carol",
            "--home",
            h,
        ],
        "requested already",
    );
    eventually("the provider's posting of line 1", || {
        let lines = ok_json(&["--json", "batch", "lines", "0", "--home", h]);
        let line = lines.as_array()?.iter().find(|r| r["line"] == 1)?.clone();
        (!line["posted"].is_null()).then_some(line)
    });
    let posted = ok_json(&["--json", "batch", "lines", "0", "--line", "1", "--home", h]);
    assert_eq!(posted["posted"]["by"], provider.as_str(), "{posted}");
    assert!(!posted["posted"]["receipt"].is_null(), "{posted}");
    let response: Vec<u8> = serde_json::from_value(posted["posted"]["response"].clone()).unwrap();
    let expected: Value = serde_json::from_slice(&response).unwrap();
    assert_eq!(expected["object"], "text_completion", "{posted}");

    // Batch 1: the same requests, never uploaded; this test answers it as a cheating provider,
    // with the honest results but a made-up first answer, signed with the provider's key.
    let second = submit_unuploaded(h, "0", f);
    assert_eq!(second["batch"], 1);
    let key = provider_key(h);
    let requests = hibana_roles::batch::parse_input(&input()).unwrap();
    let mut results =
        hibana_roles::batch::parse_results(&std::fs::read_to_string(&raw).unwrap()).unwrap();
    let mut forged: Value = serde_json::from_str(&results[0].response).unwrap();
    forged["choices"][0]["message"]["content"] =
        json!("Bananas are the capital of the moon, said the river.");
    let forged = forged.to_string();
    let honest = results[0].receipt().unwrap().unwrap();
    let receipt = hibana_types::ReceiptBody {
        response_hash: hibana_types::Hash::digest(forged.as_bytes()),
        request_hash: hibana_types::Hash::digest(&requests[0].body),
        ..honest.body
    }
    .sign(&key);
    results[0].response = forged;
    results[0].receipt = Some(receipt.to_hex());
    let client = hibana_rpc::RpcClient::new(&rpc).unwrap();
    commit_as_provider(&client, &key, 1, &results, 3, "the cheating commit");
    let forged_file = dir.path().join("forged.jsonl");
    std::fs::write(
        &forged_file,
        results
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let ff = forged_file.to_str().unwrap();

    // The provider never served batch 1's lines, so the validator's spot-check found none. (It
    // is awaited before the dispute below: a batch refuted first is not checked at all.)
    let check1 = eventually("the validator's spot-check of batch 1", || {
        spot_check(&checks, 1)
    });
    assert!(
        check1["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["verdict"] == "unavailable"),
        "{check1}"
    );

    // The receipts and root check out, but re-checking finds line 0 wrong.
    let out = hibana(&[
        "--json",
        "batch",
        "verify",
        "1",
        "--input",
        f,
        "--results",
        ff,
        "--sample",
        "10",
        "--home",
        h,
    ]);
    assert!(!out.status.success());
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["wrong_lines"], json!([0]), "{verdict}");

    // Bad disputes: a line past the batch, a results file that is not the committed one.
    fails_with(
        &[
            "batch",
            "dispute",
            "1",
            "--line",
            "9",
            "--input",
            f,
            "--results",
            ff,
            "--from",
            "alice",
            "--home",
            h,
        ],
        "nothing to dispute",
    );
    fails_with(
        &[
            "batch",
            "dispute",
            "1",
            "--line",
            "0",
            "--input",
            f,
            "--results",
            raw.to_str().unwrap(),
            "--from",
            "alice",
            "--home",
            h,
        ],
        "not to the committed",
    );

    let bond_before = amount(
        &ok_json(&[
            "--json", "market", "provider", "show", &provider, "--home", h,
        ])["bond"],
    );
    let disputed = ok_json(&[
        "--json",
        "batch",
        "dispute",
        "1",
        "--line",
        "0",
        "--input",
        f,
        "--results",
        ff,
        "--from",
        "alice",
        "--home",
        h,
    ]);
    assert_eq!(disputed["outcome"]["status"], "success", "{disputed}");
    let challenge = disputed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "verify.challenge_opened")
        .and_then(|e| {
            e["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|kv| kv[0] == "challenge")
                .map(|kv| kv[1].as_str().unwrap().to_string())
        })
        .expect("a challenge opened");

    // The devnet's validator re-checks the line on its models and votes: upheld.
    let resolved = eventually("the validator's vote", || {
        let c = ok_json(&["--json", "challenge", "show", &challenge, "--home", h]);
        (c["challenge"]["status"] != "open").then_some(c)
    });
    assert_eq!(resolved["challenge"]["status"], "upheld", "{resolved}");
    let b = ok_json(&["--json", "batch", "status", "1", "--home", h]);
    assert_eq!(b["batch"]["status"], "refuted", "{b}");
    assert_eq!(b["batch"]["refuted_line"], 0);
    let lease = ok_json(&["--json", "lease", "show", "0", "--home", h]);
    assert_eq!(lease["lease"]["status"], "closed", "{lease}");
    let bond_after = amount(
        &ok_json(&[
            "--json", "market", "provider", "show", &provider, "--home", h,
        ])["bond"],
    );
    assert!(bond_after < bond_before, "{bond_before} → {bond_after}");

    // Batch 2, on a new lease: the cheating provider serves its made-up lines too, and the
    // devnet's validator catches one by itself, challenges it, and the chain refutes the batch.
    let lease = lease_provider(h, &provider);
    let third = submit_unuploaded(h, &lease, f);
    assert_eq!(third["batch"], 2);
    // A new made-up answer (a receipt already challenged cannot be challenged again).
    let mut forged: Value = serde_json::from_str(&results[0].response).unwrap();
    forged["choices"][0]["message"]["content"] =
        json!("The capital of France is a purple teapot, said the mountain.");
    let forged = forged.to_string();
    let receipt = hibana_types::ReceiptBody {
        response_hash: hibana_types::Hash::digest(forged.as_bytes()),
        ..honest.body
    }
    .sign(&key);
    results[0].response = forged;
    results[0].receipt = Some(receipt.to_hex());
    serve_as_provider(&home, 2, &results);
    commit_as_provider(&client, &key, 2, &results, 3, "the second cheating commit");
    let check2 = eventually("the validator's spot-check of batch 2", || {
        spot_check(&checks, 2)
    });
    assert_eq!(check2["challenged"][0], 0, "{check2}");
    let refuted = wait_refuted(h, 2);
    assert_eq!(refuted["batch"]["refuted_line"], 0, "{refuted}");

    // Batch 3, on another lease: the provider serves its lines, but refused line 1 (a valid
    // completion of 4 tokens) with a signed refusal. The validator judges the refusal against
    // the models the provider declared, finds it had no reason, challenges it, and the chain
    // refutes the batch.
    let lease = lease_provider(h, &provider);
    let refusing = submit_unuploaded(h, &lease, f);
    assert_eq!(refusing["batch"], 3);
    let mut results =
        hibana_roles::batch::parse_results(&std::fs::read_to_string(&raw).unwrap()).unwrap();
    let error =
        json!({"error": {"message": "the model is busy", "type": "server_error"}}).to_string();
    // Signed, as the provider signs its refusals, for the model the line names.
    let refusal = hibana_types::ReceiptBody {
        response_hash: hibana_types::Hash::digest(error.as_bytes()),
        prompt_tokens: 0,
        completion_tokens: 0,
        price: hibana_types::Amount::ZERO,
        ..results[1].receipt().unwrap().unwrap().body
    }
    .sign(&key);
    results[1].status = 503;
    results[1].response = error;
    results[1].receipt = None;
    results[1].refusal = Some(refusal.to_hex());
    serve_as_provider(&home, 3, &results);
    commit_as_provider(&client, &key, 3, &results, 2, "the wrongly refusing commit");
    let check3r = eventually("the validator's spot-check of batch 3", || {
        spot_check(&checks, 3)
    });
    assert_eq!(check3r["challenged"][0], 1, "{check3r}");
    assert_eq!(check3r["challenged"][1], "Success", "{check3r}");
    let verdicts: Vec<&str> = check3r["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts[..2], ["right", "wrong"], "{check3r}");
    let refuted = wait_refuted(h, 3);
    assert_eq!(refuted["batch"]["refuted_line"], 1, "{refuted}");

    // Batch 4, on another lease: committed, but its provider serves none of its lines and
    // cannot post them either. The validator logs them unavailable, asks for them on chain once
    // the grace is over, and when the deadline passes the chain refutes the batch and slashes
    // the provider.
    let lease = lease_provider(h, &provider);
    let withholding = submit_unuploaded(h, &lease, f);
    assert_eq!(withholding["batch"], 4);
    commit_as_provider(&client, &key, 4, &results, 3, "the withholding commit");
    let bond_before = amount(
        &ok_json(&[
            "--json", "market", "provider", "show", &provider, "--home", h,
        ])["bond"],
    );
    let check3 = eventually("the validator's spot-check of batch 4", || {
        spot_check(&checks, 4)
    });
    assert!(
        check3["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["verdict"] == "unavailable"),
        "{check3}"
    );
    let withheld = wait_refuted(h, 4);
    let line = withheld["batch"]["refuted_line"].as_u64().unwrap();
    let bond_after = amount(
        &ok_json(&[
            "--json", "market", "provider", "show", &provider, "--home", h,
        ])["bond"],
    );
    assert!(bond_after < bond_before, "{bond_before} → {bond_after}");
    let on_chain = eventually("the validator's log of the withheld line", || {
        std::fs::read_to_string(&checks)
            .ok()?
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|c| c["batch"] == 4 && c["on_chain"] == true)
    });
    assert!(
        on_chain["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["line"] == line && l["verdict"] == "withheld"),
        "{on_chain}"
    );

    // Batch 5, the same withholding, checked from the command line with `--request`: bob asks
    // for the unserved line on chain at once and waits for the chain's verdict.
    let lease = lease_provider(h, &provider);
    let withholding_again = submit_unuploaded(h, &lease, f);
    assert_eq!(withholding_again["batch"], 5);
    commit_as_provider(
        &client,
        &key,
        5,
        &results,
        3,
        "the second withholding commit",
    );
    let out = hibana(&[
        "--json",
        "batch",
        "spot-check",
        "5",
        "--lines",
        "1",
        "--request",
        "--from",
        "bob",
        "--home",
        h,
    ]);
    assert!(!out.status.success(), "a withheld line fails the check");
    let checked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checked[0]["lines"][0]["verdict"], "requested", "{checked}");
    assert_eq!(checked[1]["on_chain"], true, "{checked}");
    assert_eq!(checked[1]["lines"][0]["verdict"], "withheld", "{checked}");
    let b = ok_json(&["--json", "batch", "status", "5", "--home", h]);
    assert_eq!(b["batch"]["status"], "refuted", "{b}");
    assert_eq!(b["batch"]["refuted_line"], checked[0]["lines"][0]["line"]);

    // Batch 6: the provider serves batch 3's results (two lines answered) but commits three
    // answered lines, to be paid for one more. Its own results prove the count false: alice's
    // `batch dispute` posts a line on chain whose proof shows the root's total, and the chain
    // refutes the batch and slashes the provider at once, with no vote.
    let lease = lease_provider(h, &provider);
    let overcounting = submit_unuploaded(h, &lease, f);
    assert_eq!(overcounting["batch"], 6);
    serve_as_provider(&home, 6, &results);
    commit_as_provider(&client, &key, 6, &results, 3, "the overcounting commit");
    let bond_before = amount(
        &ok_json(&[
            "--json", "market", "provider", "show", &provider, "--home", h,
        ])["bond"],
    );
    let proven = ok_json(&[
        "--json", "batch", "dispute", "6", "--line", "0", "--input", f, "--from", "alice",
        "--home", h,
    ]);
    assert_eq!(
        event_attribute(&proven, "market.batch_miscounted", "why"),
        "the results root counts 2 answered lines, the provider committed 3"
    );
    let b = ok_json(&["--json", "batch", "status", "6", "--home", h]);
    assert_eq!(b["batch"]["status"], "refuted", "{b}");
    let bond_after = amount(
        &ok_json(&[
            "--json", "market", "provider", "show", &provider, "--home", h,
        ])["bond"],
    );
    // (Earlier slashes may have emptied the bond: the slash is what was left, up to 10 HIB.)
    let slashed: u128 = event_attribute(&proven, "market.batch_miscounted", "slashed")
        .parse()
        .unwrap();
    assert_eq!(bond_before - bond_after, slashed, "{proven}");
    let slash = hibana_types::records::market::DISPUTE_SLASH.0;
    assert_eq!(slashed, bond_before.min(slash), "{proven}");
    // Line 0 is signed, so the proof went as a dispute: no challenge opened, no deposit held.
    let kinds: Vec<&str> = proven["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"market.batch_disputed"), "{kinds:?}");
    assert!(kinds.contains(&"market.batch_refuted"), "{kinds:?}");
    // `batch verify` names the false count and the command that proves it.
    fails_with(
        &["batch", "verify", "6", "--input", f, "--home", h],
        "batch dispute 6 --line 0",
    );

    drop(devnet);
}

/// Alice submits the test's batch file on `lease` without uploading it to the provider.
fn submit_unuploaded(h: &str, lease: &str, f: &str) -> Value {
    ok_json(&[
        "--json",
        "batch",
        "submit",
        "--lease",
        lease,
        "--input",
        f,
        "--no-upload",
        "--from",
        "alice",
        "--home",
        h,
    ])
}

/// Batch `id`'s status once the chain has refuted it.
fn wait_refuted(h: &str, id: u64) -> Value {
    let id = id.to_string();
    eventually(&format!("batch {id}'s refutation"), || {
        let b = ok_json(&["--json", "batch", "status", &id, "--home", h]);
        (b["batch"]["status"] == "refuted").then_some(b)
    })
}

/// Alice orders a lease, waits for the provider's bid and accepts it; returns the lease id.
fn lease_provider(h: &str, provider: &str) -> String {
    let created = ok_json(&[
        "--json",
        "market",
        "order",
        "create",
        "--min-cores",
        "1",
        "--duration",
        "2000",
        "--max-price",
        "0.002HIB",
        "--deposit",
        "5HIB",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    let order = event_attribute(&created, "market.order_created", "order");
    eventually("the provider's bid on the new order", || {
        let shown = ok_json(&["--json", "market", "order", "show", &order, "--home", h]);
        (!shown["bids"].as_array()?.is_empty()).then_some(())
    });
    let accepted = ok_json(&[
        "--json",
        "market",
        "accept",
        &order,
        "--provider",
        provider,
        "--from",
        "alice",
        "--home",
        h,
    ]);
    assert_eq!(accepted["outcome"]["status"], "success", "{accepted}");
    event_attribute(&accepted, "market.lease_created", "lease")
}

/// The value of attribute `key` of the first `kind` event of a transaction's output.
fn event_attribute(out: &Value, kind: &str, key: &str) -> String {
    out["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind)
        .and_then(|e| {
            e["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|kv| kv[0] == key)
                .map(|kv| kv[1].as_str().unwrap().to_string())
        })
        .unwrap_or_else(|| panic!("no {kind} event with {key}: {out}"))
}

/// Puts batch `id`'s input and `results` where the devnet's provider serves lines from, as a
/// cheating provider holding made-up results would.
fn serve_as_provider(home: &std::path::Path, id: u64, results: &[hibana_roles::batch::LineResult]) {
    let served = home.join(format!("provider/jobs/batches/{id}"));
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("input.jsonl"), input()).unwrap();
    std::fs::write(
        served.join("results.jsonl"),
        results
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect::<String>(),
    )
    .unwrap();
}

/// Commits `results` as batch `id`'s (`answered` lines answered) with the provider's key,
/// retrying while the provider's own heartbeats take its nonces.
fn commit_as_provider(
    client: &hibana_rpc::RpcClient,
    key: &hibana_types::SecretKey,
    id: u64,
    results: &[hibana_roles::batch::LineResult],
    answered: u32,
    what: &str,
) {
    let commit = hibana_types::Message::CommitBatch(hibana_types::CommitBatch {
        batch: id,
        results_root: hibana_roles::batch::results_root(results).unwrap(),
        answered,
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    eventually(what, || {
        runtime
            .block_on(client.send(key, vec![commit.clone()], None))
            .ok()
            .filter(|r| r.is_success())
    });
}

/// The devnet validator's logged spot-check of `batch`, once it is there.
fn spot_check(log: &std::path::Path, batch: u64) -> Option<Value> {
    std::fs::read_to_string(log)
        .ok()?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|c| c["batch"] == batch)
}

/// The devnet provider's signing key, from its home.
fn provider_key(home: &str) -> hibana_types::SecretKey {
    let file: Value = serde_json::from_slice(
        &std::fs::read(format!("{home}/provider/provider_key.json")).unwrap(),
    )
    .unwrap();
    let bytes: [u8; 32] = hex::decode(file["secret_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    hibana_types::SecretKey::from_bytes(bytes)
}
