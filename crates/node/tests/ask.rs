//! End-to-end: `hibana ask` against a real `hibana devnet` with scripted traffic, the way a
//! user asks: plain-language questions answered by SQL that SmolLM2 writes under a grammar of
//! the live schema, shown with its rows. The team's question set (`tests/ask/questions.jsonl`,
//! each question with the SQL whose rows are the right answer) is run with `hibana ask --eval`
//! and must stay above an accuracy floor; a question the tables cannot answer gets no number.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{hibana, ok_json, start_command};

/// Execution accuracy the default route must keep on the team's question set and the first
/// held-out set (measured 92.2% and 95.8%: see the README's `hibana ask` section).
const ACCURACY_FLOOR: f64 = 0.80;

fn sql(home: &str, query: &str) -> Vec<Value> {
    ok_json(&["sql", "--format", "json", "--home", home, query])
        .as_array()
        .unwrap()
        .clone()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn questions_in_plain_language_are_answered_with_their_sql_above_the_accuracy_floor() {
    let dir = tempfile::tempdir().unwrap();
    let home_path = dir.path().join("devnet");
    let home = home_path.to_str().unwrap();
    let (devnet, info) = start_command(
        support::chain_devnet_command(home, 100)
            .env("HIBANA_KEYRING_DIR", dir.path().join("keyring")),
    );
    let rpc = info["rpc"].as_str().unwrap().to_string();

    // A fifth person, known to the tables only by a label a user set.
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let dave = ok_json(&[
        "--json",
        "wallet",
        "new",
        "dave",
        "--keyring-dir",
        dir.path().join("other-keyring").to_str().unwrap(),
        "--password-file",
        pass.to_str().unwrap(),
    ])["address"]
        .as_str()
        .unwrap()
        .to_string();
    ok_json(&[
        "--json",
        "analytics",
        "label",
        &dave,
        "dave",
        "--home",
        home,
    ]);

    // Scripted traffic.
    let transfers = [
        ("alice", "bob", "5HIB"),
        ("alice", "bob", "2.5HIB"),
        ("alice", "carol", "10HIB"),
        ("bob", "carol", "1HIB"),
        ("carol", "alice", "0.5HIB"),
        ("bob", "alice", "3HIB"),
        ("carol", "bob", "7HIB"),
        ("alice", "carol", "4HIB"),
        ("alice", dave.as_str(), "12HIB"),
        ("carol", dave.as_str(), "1.25HIB"),
    ];
    for (from, to, amount) in transfers {
        ok_json(&[
            "--json", "tx", "transfer", "--home", home, "--from", from, "--to", to, "--amount",
            amount,
        ]);
    }
    for (who, amount) in [("bob", "20HIB"), ("carol", "15HIB")] {
        ok_json(&[
            "--json", "tx", "stake", "--home", home, "--from", who, "--amount", amount,
        ]);
    }
    ok_json(&[
        "--json", "tx", "unstake", "--home", home, "--from", "bob", "--amount", "5HIB",
    ]);
    let head = ok_json(&["--json", "--rpc", &rpc, "status"])["height"]
        .as_u64()
        .unwrap();
    wait_for("the tables to catch up", || {
        sql(home, "SELECT max(height) AS h FROM blocks")[0]["h"]
            .as_u64()
            .is_some_and(|h| h >= head)
            && sql(home, "SELECT name FROM labels WHERE name = 'dave'").len() == 1
            && sql(
                home,
                "SELECT count(*) AS n FROM stakes WHERE kind = 'unbond'",
            )[0]["n"]
                == 1
    });

    // One question as a user asks it: the answer, the SQL and the rows.
    let answer = ok_json(&[
        "--json",
        "ask",
        "How much HIB did alice send to carol?",
        "--home",
        home,
    ]);
    assert_eq!(answer["answered"], true, "{answer:#}");
    let sql_text = answer["sql"].as_str().unwrap();
    assert!(sql_text.starts_with("SELECT "), "{sql_text}");
    let value = answer["rows"][0]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    let value: f64 = match value {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    };
    assert!((value - 14.0).abs() < 1e-9, "{answer:#}");
    let text = hibana(&["ask", "How many transfers are recorded?", "--home", home]);
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(text.status.success(), "{shown}");
    assert!(shown.contains("SQL: SELECT "), "{shown}");

    // A question the tables cannot answer: said so, no number.
    let out = hibana(&[
        "--json",
        "ask",
        "What will the weather be like in Paris tomorrow?",
        "--home",
        home,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let refused: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(refused["answered"], false);
    assert!(refused["rows"].as_array().unwrap().is_empty());

    // Bad input: clear errors.
    support::fails_with(&["ask", "   ", "--home", home], "the question is empty");

    // The team's question set, on the retrieval baseline and the default route, over tables
    // that no longer move (the devnet stopped; `--home` falls back to its tables folder), so
    // that the gold SQL and the answer read the same rows.
    drop(devnet);
    let questions = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ask/questions.jsonl");
    let report = ok_json(&[
        "--json",
        "ask",
        "--eval",
        questions,
        "--routes",
        "retrieval,greedy",
        "--home",
        home,
    ]);
    for route in report.as_array().unwrap() {
        eprintln!(
            "{}: {}/{} correct, p50 {} ms, p90 {} ms",
            route["route"], route["correct"], route["questions"], route["p50_ms"], route["p90_ms"]
        );
        for miss in route["misses"].as_array().unwrap() {
            eprintln!("  missed {}: {}", miss["q"], miss["sql"]);
        }
    }
    let greedy = &report[1];
    assert_eq!(greedy["route"], "greedy");
    assert!(greedy["questions"].as_u64().unwrap() >= 60);
    let accuracy = greedy["accuracy"].as_f64().unwrap();
    assert!(
        accuracy >= ACCURACY_FLOOR,
        "ask's execution accuracy {accuracy:.3} fell under {ACCURACY_FLOOR}"
    );

    // Questions written after the ranking rules, which they never shaped: the same floor.
    let heldout = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ask/heldout.jsonl");
    let report = ok_json(&[
        "--json", "ask", "--eval", heldout, "--routes", "greedy", "--home", home,
    ]);
    let route = &report[0];
    eprintln!(
        "held out: {}/{} correct, p50 {} ms",
        route["correct"], route["questions"], route["p50_ms"]
    );
    let accuracy = route["accuracy"].as_f64().unwrap();
    assert!(
        accuracy >= ACCURACY_FLOOR,
        "ask's execution accuracy on the held-out questions {accuracy:.3} fell under {ACCURACY_FLOOR}"
    );
}
