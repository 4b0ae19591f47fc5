//! Benchmark (not a test): the indexer's row derivation and Parquet writing in blocks and
//! transactions per second, and query latency over generated transfers against DuckDB (PyPI
//! `duckdb`, run by `python3` on the same Parquet files, same queries, same run).
//!
//! ```sh
//! pip install duckdb
//! cargo bench -p hibana-analytics                      # 1,000,000 transfers
//! HIBANA_BENCH_TRANSFERS=100000 cargo bench -p hibana-analytics
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    process::Command,
    time::{Duration, Instant},
};

use hibana_analytics::{
    Cursor, SqlEngine, SqlLimits, TableStore,
    derive::{BlockData, Rows, block_rows},
    tables::cell,
};
use hibana_types::{
    Amount, Block, BlockHeader, Event, Hash, Message, Receipt, SecretKey, Transaction, Transfer,
    TxOutcome,
};

const QUERIES: &[(&str, &str)] = &[
    ("count", "SELECT count(*) FROM transfers"),
    ("total", "SELECT sum(amount) FROM transfers"),
    (
        "top senders",
        r#"SELECT "from", sum(amount_hib) AS total FROM transfers GROUP BY "from" ORDER BY total DESC LIMIT 10"#,
    ),
    (
        "daily volume",
        "SELECT date_trunc('day', time) AS day, count(*) AS n, sum(amount_hib) AS hib FROM transfers GROUP BY 1 ORDER BY 1",
    ),
    (
        "height range",
        "SELECT count(*), sum(amount) FROM transfers WHERE height BETWEEN 40000 AND 41000",
    ),
    (
        "one account",
        r#"SELECT count(*), sum(amount_hib) FROM transfers WHERE "to" = 'ACCOUNT'"#,
    ),
];

fn main() {
    let n: u64 = std::env::var("HIBANA_BENCH_TRANSFERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Indexer: derive rows from real signed blocks and write them, 500 blocks a part.
    let keys: Vec<SecretKey> = (0..100).map(|_| SecretKey::generate()).collect();
    let addresses: Vec<String> = keys
        .iter()
        .map(|k| k.public_key().address().to_string())
        .collect();
    let (blocks, txs_per_block) = (2_000u64, 10usize);
    let index_dir = dir.path().join("indexed");
    let store = TableStore::open(&index_dir).unwrap();
    let started = Instant::now();
    let mut rows = Rows::new();
    for h in 1..=blocks {
        let data = block(h, &keys, txs_per_block);
        block_rows(&data, &mut rows);
        if h % 500 == 0 {
            let cursor = Cursor {
                height: h,
                block_hash: Some(data.hash.to_string()),
                chain_id: None,
            };
            store.append(h - 499, h, &rows, &cursor).unwrap();
            rows.clear();
        }
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "indexer (derive + Parquet, RPC excluded): {blocks} blocks, {} txs in {took:.2} s: {:.0} blocks/s, {:.0} txs/s",
        blocks * txs_per_block as u64,
        blocks as f64 / took,
        (blocks * txs_per_block as u64) as f64 / took
    );

    // Queries: n generated transfers in parts of 100,000 rows.
    let data_dir = dir.path().join("transfers");
    let store = TableStore::open(&data_dir).unwrap();
    let started = Instant::now();
    let per_part = 100_000u64;
    let mut written = 0;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    while written < n {
        let count = per_part.min(n - written);
        let mut rows = Rows::new();
        let list = rows.entry("transfers").or_default();
        for i in written..written + count {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let height = i / 10 + 1;
            list.push(vec![
                cell::u64(height),
                cell::time(1_767_225_600_000 + height * 2_000),
                cell::str(format!("{:064x}", i)),
                cell::u64(0),
                cell::str(&addresses[(seed % 100) as usize]),
                cell::str(&addresses[((seed >> 8) % 100) as usize]),
                cell::amount(u128::from(seed % 1_000_000_000_000)),
            ]);
        }
        let to = (written + count - 1) / 10 + 1;
        let from = written / 10 + 1;
        let cursor = Cursor {
            height: to,
            block_hash: None,
            chain_id: None,
        };
        store.append(from, to, &rows, &cursor).unwrap();
        written += count;
    }
    println!(
        "generated {n} transfers in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let engine = SqlEngine::new(
        TableStore::reader(&data_dir),
        SqlLimits {
            timeout: Duration::from_secs(300),
            ..SqlLimits::default()
        },
    );
    let account = &addresses[7];
    let queries: Vec<(&str, String)> = QUERIES
        .iter()
        .map(|(name, q)| (*name, q.replace("ACCOUNT", account)))
        .collect();
    let mut ours = Vec::new();
    for (_, q) in &queries {
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            rt.block_on(engine.query(q)).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        ours.push(median(times));
    }
    let duck = duckdb(&data_dir.join("tables/transfers"), &queries);
    println!();
    println!(
        "query latency over {n} transfers (median of 5, ms; same Parquet files, same queries)"
    );
    println!("| query | DataFusion (hibana) | DuckDB | DataFusion / DuckDB |");
    println!("|---|---:|---:|---:|");
    for (i, (name, _)) in queries.iter().enumerate() {
        match duck.as_ref().and_then(|d| d.get(i)) {
            Some(d) => println!("| {name} | {:.1} | {d:.1} | {:.2} |", ours[i], ours[i] / d),
            None => println!("| {name} | {:.1} | n/a | n/a |", ours[i]),
        }
    }
    if duck.is_none() {
        println!("(DuckDB not measured: `pip install duckdb` for python3)");
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median latency of each query in DuckDB, in ms; `None` if python3 or duckdb is missing.
fn duckdb(folder: &std::path::Path, queries: &[(&str, String)]) -> Option<Vec<f64>> {
    let script = r#"
import json, sys, time, duckdb
folder, queries = sys.argv[1], json.loads(sys.argv[2])
con = duckdb.connect()
con.execute("SET threads TO 2")
con.execute(f"CREATE VIEW transfers AS SELECT * FROM read_parquet('{folder}/*.parquet')")
out = []
for q in queries:
    times = []
    for _ in range(5):
        t = time.perf_counter()
        con.execute(q).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    out.append(times[len(times) // 2])
print(json.dumps(out))
"#;
    let list: Vec<String> = queries
        .iter()
        .map(|(_, q)| q.replace("date_trunc('day', time)", "date_trunc('day', \"time\")"))
        .collect();
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(folder)
        .arg(serde_json::to_string(&list).unwrap())
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!("duckdb: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// A block of `txs` signed transfers with their receipts.
fn block(height: u64, keys: &[SecretKey], txs: usize) -> BlockData {
    let mut list = Vec::new();
    for i in 0..txs {
        let from = &keys[(height as usize * 7 + i) % keys.len()];
        let to = keys[(height as usize * 13 + i * 3 + 1) % keys.len()]
            .public_key()
            .address();
        let tx = Transaction {
            chain_id: "bench".into(),
            signer: from.public_key(),
            nonce: height,
            fee: Amount(1_000),
            messages: vec![Message::Transfer(Transfer {
                to,
                amount: Amount(u128::from(height) * 1_000 + i as u128),
            })],
        }
        .sign(from);
        let sender = from.public_key().address().to_string();
        let receipt = Receipt {
            tx_hash: tx.hash(),
            height,
            index: i as u32,
            outcome: TxOutcome::Success,
            fee: Amount(1_000),
            events: vec![
                Event::new(
                    "bank.fee",
                    [("payer", sender.clone()), ("amount", "1000".into())],
                ),
                Event::new(
                    "bank.transfer",
                    [
                        ("from", sender),
                        ("to", to.to_string()),
                        (
                            "amount",
                            (u128::from(height) * 1_000 + i as u128).to_string(),
                        ),
                    ],
                ),
            ],
        };
        list.push((tx.hash(), tx, receipt));
    }
    let block = Block {
        header: BlockHeader {
            chain_id: "bench".into(),
            height,
            parent_hash: Hash::ZERO,
            time_ms: 1_767_225_600_000 + height * 1_000,
            proposer: keys[0].public_key().address(),
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            app_hash: Hash::ZERO,
        },
        txs: list.iter().map(|(_, t, _)| t.clone()).collect(),
    };
    BlockData {
        hash: block.hash(),
        block,
        txs: list,
        block_events: vec![],
    }
}
