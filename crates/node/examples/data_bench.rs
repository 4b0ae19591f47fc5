//! The data network's benchmark (not a test): items per second through each stage a
//! contribution meets off chain (blob store upload with fsync, schema check, near-duplicate
//! check by MiniLM embedding against the items before it), the near-duplicate threshold's
//! recall and false-positive rate on a generated paraphrase set, and Parquet export rows per
//! second; DuckDB (PyPI) reads the exported file when installed.
//!
//! `cargo run --release -p hibana-node --example data_bench [ITEMS] [PAIRS]`

use std::time::Instant;

use hibana_roles::data::{
    DUPLICATE_COSINE, ItemChecker, ItemSchema, canonical_item, cosine, paraphrase_pairs, parquet,
};

const SCHEMA: &str = r#"{"type":"object","required":["text","label"],"additionalProperties":false,"properties":{"text":{"type":"string","minLength":1,"maxLength":500},"label":{"enum":["positive","negative"]}}}"#;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let items: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let pairs: usize = args.next().map_or(Ok(400), |a| a.parse())?;
    let info = hibana_ai::catalog::find(&hibana_ai::catalog::models_dir(), "all-minilm-l6-v2")?;
    let embedder = hibana_ai::embed::Embedder::load(&info)?;

    // 1. The threshold on the paraphrase set.
    let set = paraphrase_pairs(pairs, 11);
    let mut scored = Vec::with_capacity(set.len());
    for (a, b, same) in &set {
        let (v, _) = embedder.embed(&[a.clone(), b.clone()])?;
        scored.push((cosine(&v[0], &v[1]), *same));
    }
    let positives = scored.iter().filter(|s| s.1).count().max(1) as f64;
    let negatives = scored.iter().filter(|s| !s.1).count().max(1) as f64;
    println!(
        "Near-duplicate threshold on {} generated pairs (half paraphrases)",
        set.len()
    );
    println!("| cosine ≥ | recall | false positives |");
    println!("|---|---|---|");
    for t in [0.70f32, 0.75, DUPLICATE_COSINE, 0.83, 0.86, 0.90, 0.95] {
        let tp = scored.iter().filter(|s| s.1 && s.0 >= t).count() as f64;
        let fp = scored.iter().filter(|s| !s.1 && s.0 >= t).count() as f64;
        let mark = if t == DUPLICATE_COSINE {
            " (DUPLICATE_COSINE)"
        } else {
            ""
        };
        println!(
            "| {t:.2}{mark} | {:.1}% | {:.1}% |",
            100.0 * tp / positives,
            100.0 * fp / negatives
        );
    }

    // 2. Items per second through each stage.
    let texts: Vec<Vec<u8>> = paraphrase_pairs(items, 5)
        .into_iter()
        .enumerate()
        .map(|(i, (a, _, _))| {
            let label = if i % 2 == 0 { "positive" } else { "negative" };
            canonical_item(
                serde_json::json!({"text": format!("{a} (#{i})"), "label": label})
                    .to_string()
                    .as_bytes(),
            )
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let store = hibana_rpc_server::BlobStore::open(dir.path())?;
    let t = Instant::now();
    for bytes in &texts {
        store.put(bytes)?;
    }
    let upload = texts.len() as f64 / t.elapsed().as_secs_f64();
    let schema = ItemSchema::parse(SCHEMA).map_err(anyhow::Error::msg)?;
    let t = Instant::now();
    for bytes in &texts {
        schema.check(bytes).map_err(anyhow::Error::msg)?;
    }
    let check = texts.len() as f64 / t.elapsed().as_secs_f64();
    let mut checker = ItemChecker::new(
        &embedder,
        ItemSchema::parse(SCHEMA).map_err(anyhow::Error::msg)?,
    )
    .map_err(anyhow::Error::msg)?;
    let t = Instant::now();
    let mut duplicates = 0;
    for (i, bytes) in texts.iter().enumerate() {
        let hints = checker
            .check(i as u64, bytes, |_| true)
            .map_err(anyhow::Error::msg)?;
        duplicates += usize::from(hints.duplicate_of.is_some());
    }
    let dedup = texts.len() as f64 / t.elapsed().as_secs_f64();
    println!();
    println!(
        "Items per second, {} items of ~80 bytes, one core's worth of calls",
        texts.len()
    );
    println!("| stage | items/s |");
    println!("|---|---|");
    println!("| upload to the blob store (fsync per item) | {upload:.0} |");
    println!("| JSON Schema check | {check:.0} |");
    println!(
        "| all checks incl. near-duplicate search (one MiniLM embedding, compared with every earlier item) | {dedup:.1} |"
    );
    println!("(near-duplicates flagged among them: {duplicates})");

    // 3. Parquet export rows per second.
    let rows = 100_000usize;
    let columns = parquet::Columns {
        dataset: vec![0; rows],
        item: (0..rows as u64).collect(),
        contributor: vec!["hib1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq".into(); rows],
        hash: (0..rows)
            .map(|i| blake3::hash(&i.to_le_bytes()).to_hex().to_string())
            .collect(),
        content: (0..rows)
            .map(|i| String::from_utf8_lossy(&texts[i % texts.len()]).into_owned())
            .collect(),
        proof: vec![
            format!(
                "[{}]",
                vec!["{\"sibling\":\"00\",\"left\":true}"; 17].join(",")
            );
            rows
        ],
        root: vec!["00".repeat(32); rows],
    };
    let path = dir.path().join("export.parquet");
    let t = Instant::now();
    parquet::write(&path, &columns)?;
    let write = rows as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = parquet::read(&path)?;
    let read = rows as f64 / t.elapsed().as_secs_f64();
    assert_eq!(back.item.len(), rows);
    println!();
    println!("Parquet export of {rows} rows: write {write:.0} rows/s, read back {read:.0} rows/s");
    let duck = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, duckdb; print(duckdb.sql(f\"select count(*) from '{sys.argv[1]}'\").fetchall()[0][0])",
            path.to_str().unwrap_or_default(),
        ])
        .output();
    match duck {
        Ok(out) if out.status.success() => println!(
            "DuckDB reads the file: {} rows",
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        _ => println!("DuckDB is not installed here (pip install duckdb)"),
    }
    Ok(())
}
