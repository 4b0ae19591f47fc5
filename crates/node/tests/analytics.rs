//! End-to-end: the analytics indexer inside a real `hibana devnet`, and `hibana analytics serve`
//! against it, queried with `hibana sql` the way a user would. Scripted traffic (transfers,
//! bond, unbond), then the SQL totals must equal the chain's own: the sum of every balance and
//! stake equals the genesis supply, and each account's genesis balance plus its transfers, fees,
//! bonds and returned stake equals the balance the node reports. Restarts re-index nothing
//! twice; writes, file access and queries past their limits are refused with clear errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{Proc, fails_with, hibana, ok_json, start_command};

fn start_devnet(home: &str) -> (Proc, Value) {
    start_with_keyring(&[
        "--json",
        "devnet",
        "--home",
        home,
        "--rpc-addr",
        "127.0.0.1:0",
        "--block-time-ms",
        "100",
        "--no-ai",
    ])
}

/// Starts `hibana ARGS` with an empty encrypted keyring beside `--home`/`--data`, so that the
/// labels come from this test's keys only.
fn start_with_keyring(args: &[&str]) -> (Proc, Value) {
    let folder = args
        .windows(2)
        .find(|w| w[0] == "--home" || w[0] == "--data")
        .map(|w| std::path::Path::new(w[1]))
        .unwrap();
    start_command(std::process::Command::new(support::BIN).args(args).env(
        "HIBANA_KEYRING_DIR",
        folder.parent().unwrap().join("keyring"),
    ))
}

/// Rows of `hibana sql --format json` with the tables of `source` (`--home H`, `--data D`…).
fn sql(source: &[&str], query: &str) -> Vec<Value> {
    let mut args = vec!["sql", "--format", "json"];
    args.extend_from_slice(source);
    args.push(query);
    ok_json(&args).as_array().unwrap().clone()
}

/// One number from a query whose single row has a column `v`, cast to text in SQL so that
/// 128-bit amounts come back exact.
fn number(source: &[&str], query: &str) -> u128 {
    let rows = sql(source, query);
    assert_eq!(rows.len(), 1, "{query}: {rows:?}");
    match &rows[0]["v"] {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("{query}: {s:?}")),
        Value::Number(n) => u128::from(n.as_u64().unwrap()),
        Value::Null => 0,
        other => panic!("{query}: {other:?}"),
    }
}

/// Waits until the tables hold every height up to the node's current height.
fn caught_up(source: &[&str], rpc: &str) -> u64 {
    let head = ok_json(&["--json", "--rpc", rpc, "status"])["height"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let indexed = number(
            source,
            "SELECT CAST(max(height) AS VARCHAR) AS v FROM blocks",
        );
        if indexed >= u128::from(head) {
            return head;
        }
        assert!(Instant::now() < deadline, "indexed {indexed} < head {head}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn balance(home: &str, name: &str) -> (u128, u128) {
    let view = ok_json(&["--json", "query", "account", name, "--home", home]);
    (
        view["balance"].as_str().unwrap().parse().unwrap(),
        view["stake"].as_str().unwrap().parse().unwrap(),
    )
}

/// Sum of a per-address amount, by address, from a query with columns `a` and `v`.
fn by_address(source: &[&str], query: &str) -> BTreeMap<String, u128> {
    sql(source, query)
        .iter()
        .map(|r| {
            (
                r["a"].as_str().unwrap().to_string(),
                r["v"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// Row counts of the block-derived tables up to `height`.
fn counts(source: &[&str], height: u64) -> Vec<(String, u128, u128)> {
    ["blocks", "transactions", "transfers", "fees", "stakes", "events"]
        .iter()
        .map(|t| {
            let rows = sql(
                source,
                &format!(
                    "SELECT CAST(count(*) AS VARCHAR) AS n, CAST(count(DISTINCT height) AS VARCHAR) AS h FROM {t} WHERE height <= {height}"
                ),
            );
            (
                t.to_string(),
                rows[0]["n"].as_str().unwrap().parse().unwrap(),
                rows[0]["h"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn sql_totals_equal_the_chain_and_reindexing_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home_path = dir.path().join("devnet");
    let home = home_path.to_str().unwrap();
    let (devnet, info) = start_devnet(home);
    let rpc = info["rpc"].as_str().unwrap().to_string();
    assert!(
        info["analytics"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let at_home: &[&str] = &["--home", home];

    // Scripted traffic: transfers around the three demo accounts, a bond and an unbond.
    let transfers = [
        ("alice", "bob", "1.5HIB"),
        ("bob", "carol", "0.25HIB"),
        ("carol", "alice", "2HIB"),
        ("alice", "carol", "3.000000007HIB"),
        ("bob", "alice", "0.1HIB"),
        ("alice", "bob", "123456789"),
    ];
    for (from, to, amount) in transfers {
        ok_json(&[
            "--json", "tx", "transfer", "--home", home, "--from", from, "--to", to, "--amount",
            amount,
        ]);
    }
    ok_json(&[
        "--json", "tx", "stake", "--home", home, "--from", "bob", "--amount", "10HIB",
    ]);
    ok_json(&[
        "--json", "tx", "unstake", "--home", home, "--from", "bob", "--amount", "4HIB",
    ]);

    // The unbonded stake comes back after the unbonding period, in a block event.
    wait_for("the unbonded stake to return", || {
        caught_up(at_home, &rpc);
        number(
            at_home,
            "SELECT CAST(count(*) AS VARCHAR) AS v FROM stakes WHERE kind = 'unbonded'",
        ) == 1
    });
    let height = caught_up(at_home, &rpc);
    assert_eq!(
        number(
            at_home,
            "SELECT CAST(count(*) AS VARCHAR) AS v FROM transfers"
        ),
        transfers.len() as u128
    );
    assert_eq!(
        number(
            at_home,
            "SELECT CAST(sum(amount) AS VARCHAR) AS v FROM stakes WHERE kind = 'bond'"
        ),
        10_000_000_000
    );
    // Amounts in base units and in HIB side by side.
    let rows = sql(
        at_home,
        "SELECT CAST(amount AS VARCHAR) AS a, CAST(amount_hib AS VARCHAR) AS h FROM transfers ORDER BY height, tx_hash LIMIT 1",
    );
    assert_eq!(rows[0]["a"], "1500000000");
    assert_eq!(rows[0]["h"], "1.500000000");

    // Supply: genesis balances and stakes, with no mint and no burn on a devnet without AI,
    // equal the sum over every account the indexer saw, once the accounts table caught up.
    let genesis: Value =
        serde_json::from_slice(&std::fs::read(home_path.join("genesis.json")).unwrap()).unwrap();
    let amount = |v: &Value| -> u128 {
        match v {
            Value::String(s) => s.parse().unwrap(),
            other => u128::from(other.as_u64().unwrap()),
        }
    };
    let supply: u128 = genesis["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| amount(&a["balance"]))
        .chain(
            genesis["validators"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| amount(&v["stake"])),
        )
        .sum();
    wait_for("accounts to match the supply", || {
        number(
            at_home,
            "SELECT CAST(sum(balance) + sum(stake) AS VARCHAR) AS v FROM accounts",
        ) == supply
    });

    // Each demo account: genesis + transfers in − transfers out − fees − bonds + returned
    // stake, all summed in SQL, equals the node's balance; so does the accounts table.
    let source = at_home;
    let received = by_address(
        source,
        r#"SELECT "to" AS a, CAST(sum(amount) AS VARCHAR) AS v FROM transfers GROUP BY "to""#,
    );
    let sent = by_address(
        source,
        r#"SELECT "from" AS a, CAST(sum(amount) AS VARCHAR) AS v FROM transfers GROUP BY "from""#,
    );
    let fees = by_address(
        source,
        "SELECT payer AS a, CAST(sum(amount) AS VARCHAR) AS v FROM fees GROUP BY payer",
    );
    let fees_earned = by_address(
        source,
        "SELECT proposer AS a, CAST(sum(amount) AS VARCHAR) AS v FROM fees GROUP BY proposer",
    );
    let bonded = by_address(
        source,
        "SELECT delegator AS a, CAST(sum(amount) AS VARCHAR) AS v FROM stakes WHERE kind = 'bond' GROUP BY delegator",
    );
    let returned = by_address(
        source,
        "SELECT delegator AS a, CAST(sum(amount) AS VARCHAR) AS v FROM stakes WHERE kind = 'unbonded' GROUP BY delegator",
    );
    let names: BTreeMap<String, String> = sql(
        source,
        "SELECT name, address FROM labels WHERE source = 'keyring'",
    )
    .iter()
    .map(|r| {
        (
            r["name"].as_str().unwrap().into(),
            r["address"].as_str().unwrap().into(),
        )
    })
    .collect();
    assert_eq!(names.keys().collect::<Vec<_>>(), ["alice", "bob", "carol"]);
    for (name, address) in &names {
        let start: u128 = genesis["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["address"] == address.as_str())
            .map(|a| amount(&a["balance"]))
            .unwrap();
        let get = |m: &BTreeMap<String, u128>| m.get(address).copied().unwrap_or(0);
        let derived =
            start + get(&received) + get(&returned) - get(&sent) - get(&fees) - get(&bonded);
        let (chain_balance, _) = balance(home, name);
        assert_eq!(derived, chain_balance, "{name}: tables and chain disagree");
        let indexed = number(
            source,
            &format!(
                "SELECT CAST(balance AS VARCHAR) AS v FROM accounts WHERE address = '{address}'"
            ),
        );
        assert_eq!(indexed, chain_balance, "{name}: accounts table");
    }
    // The validator started with stake only: its balance is the fees it earned.
    let validator = ok_json(&["--json", "--rpc", &rpc, "status"])["validators"][0]["address"]
        .as_str()
        .unwrap()
        .to_string();
    let (validator_balance, _) = balance(home, &validator);
    assert_eq!(
        fees_earned.get(&validator).copied().unwrap_or(0),
        validator_balance
    );
    assert!(validator_balance > 0);

    // Labels: a name set by a user appears in `labels`.
    let bob = &names["bob"];
    ok_json(&[
        "--json",
        "analytics",
        "label",
        bob,
        "Bob's exchange",
        "--home",
        home,
    ]);
    wait_for("the new label", || {
        !sql(
            at_home,
            "SELECT name FROM labels WHERE source = 'user' AND name = 'Bob''s exchange'",
        )
        .is_empty()
    });

    // An account's full history: bob received 2 transfers, sent 2, paid 4 fees, bonded,
    // unbonded and got his stake back.
    let csv = dir.path().join("bob.csv");
    ok_json_or_text(&[
        "analytics",
        "export",
        "bob",
        "--home",
        home,
        "--format",
        "csv",
        "--out",
        csv.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("height,time,tx_hash"), "{}", lines[0]);
    let kinds: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(5).unwrap())
        .collect();
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(count("bank.transfer"), 4, "{text}");
    assert_eq!(count("bank.fee"), 4, "{text}");
    assert_eq!(count("staking.bond"), 1, "{text}");
    assert_eq!(count("staking.unbond"), 1, "{text}");
    assert_eq!(count("staking.unbonded"), 1, "{text}");
    let parquet = dir.path().join("bob.parquet");
    ok_json_or_text(&[
        "analytics",
        "export",
        bob,
        "--home",
        home,
        "--format",
        "parquet",
        "--out",
        parquet.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&parquet).unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));

    // Refused with clear errors: writes, file access, more statements, past the row limit.
    let tables_dir = home_path.join("analytics/tables/transfers");
    for (query, needle) in [
        ("DROP TABLE transfers", "refused"),
        ("INSERT INTO labels VALUES ('a', 'b', 'c')", "refused"),
        ("DELETE FROM transfers", "refused"),
        (
            format!("COPY transfers TO '{}/x.csv'", dir.path().display()).as_str(),
            "refused",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}'",
                tables_dir.display()
            )
            .as_str(),
            "refused",
        ),
        (
            format!("SELECT * FROM '{}'", tables_dir.display()).as_str(),
            "transfers",
        ),
        ("SELECT 1; SELECT 2", "refused"),
        ("SELECT nonsense FROM transfers", "invalid query"),
    ] {
        fails_with(&["sql", "--home", home, query], needle);
    }
    assert!(!dir.path().join("x.csv").exists());
    fails_with(
        &[
            "sql",
            "--home",
            home,
            "--max-rows",
            "3",
            "SELECT * FROM blocks",
        ],
        "more than 3 rows",
    );

    // `hibana analytics serve` indexes the same chain from scratch into its own folder, with a
    // short time limit, and agrees with the devnet's tables on every height.
    let data = dir.path().join("served");
    let data_s = data.to_str().unwrap();
    let (served, served_info) = start_with_keyring(&[
        "--json",
        "--rpc",
        &rpc,
        "analytics",
        "serve",
        "--data",
        data_s,
        "--addr",
        "127.0.0.1:0",
        "--timeout-ms",
        "300",
    ]);
    let url = served_info["analytics"].as_str().unwrap().to_string();
    let over_http: &[&str] = &["--analytics", &url];
    caught_up(over_http, &rpc);
    let before = counts(at_home, height);
    assert_eq!(counts(over_http, height), before);
    for (table, rows, heights) in &before {
        if table == "blocks" {
            assert_eq!((*rows, *heights), (u128::from(height), u128::from(height)));
        }
    }
    let started = Instant::now();
    fails_with(
        &[
            "sql",
            "--analytics",
            &url,
            // Billions of rows at any height this test reaches: far past 300 ms.
            "SELECT count(*) FROM blocks a, blocks b, blocks c, blocks d, blocks e, blocks f, blocks g WHERE a.height + b.height + c.height + d.height + e.height + f.height + g.height > 0",
        ],
        "time limit",
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // Restarts: the served indexer killed and started again on its folder, and the devnet
    // killed (-9) and resumed. No height is indexed twice, nothing is lost.
    drop(served);
    let (served, served_info) = start_with_keyring(&[
        "--json",
        "--rpc",
        &rpc,
        "analytics",
        "serve",
        "--data",
        data_s,
        "--addr",
        "127.0.0.1:0",
    ]);
    let over_http: &[&str] = &["--analytics", served_info["analytics"].as_str().unwrap()];
    caught_up(over_http, &rpc);
    assert_eq!(counts(over_http, height), before);
    drop(served);
    // Its folder is readable without any server.
    assert_eq!(counts(&["--data", data_s], height), before);

    drop(devnet);
    let (_devnet, info) = start_devnet(home);
    let rpc = info["rpc"].as_str().unwrap().to_string();
    let head = caught_up(at_home, &rpc);
    assert!(head > height);
    assert_eq!(counts(at_home, height), before);
    let all = counts(at_home, head);
    let blocks = all.iter().find(|(t, ..)| t == "blocks").unwrap();
    assert_eq!(
        (blocks.1, blocks.2),
        (u128::from(head), u128::from(head)),
        "one row per height"
    );
}

/// Runs `hibana ARGS`, which must succeed (its output is not JSON).
fn ok_json_or_text(args: &[&str]) {
    let out = hibana(args);
    assert!(
        out.status.success(),
        "hibana {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
