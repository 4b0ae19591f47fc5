//! Embedding throughput: sentences per second of all-MiniLM-L6-v2 on candle, side by side with
//! sentence-transformers (PyTorch) on the same model files, sentences and thread count, one
//! request at a time and in batches of 32; also the lowest cosine between the two outputs.
//! Not a test; run it in release mode after `scripts/sbert-setup.sh` (without it, only our
//! figures are printed):
//!
//! `cargo run --release -p hibana-ai --example bench_embed [SENTENCES]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, process::Command, time::Instant};

use hibana_ai::{catalog, embed::Embedder};

const SUBJECTS: [&str; 8] = [
    "The validator",
    "A provider on the network",
    "The payment channel",
    "Our light client",
    "The model owner",
    "A miner in the subnet",
    "The staking component",
    "An auditor",
];
const VERBS: [&str; 8] = [
    "re-executes",
    "signs a receipt for",
    "pays for",
    "checks the proof of",
    "slashes the stake behind",
    "streams the tokens of",
    "scores the answer to",
    "stores the hash of",
];
const OBJECTS: [&str; 8] = [
    "every inference request it receives",
    "the block that was finalised a moment ago",
    "a short question about the weather",
    "the output of the language model, token by token, before the deadline",
    "a contract that moves ether after an external call",
    "the embedding of a long paragraph about payment channels and vouchers",
    "the transfer",
    "a dataset of labelled images that contributors uploaded last week",
];

/// `n` different sentences of varied length, the same on every run.
fn sentences(n: usize) -> Vec<String> {
    (0..n)
        .map(|k| {
            format!(
                "{} {} {}.",
                SUBJECTS[k % 8],
                VERBS[(k / 8) % 8],
                OBJECTS[(k / 64 + k) % 8]
            )
        })
        .collect()
}

/// Sentences per second of one pass over `texts`, `batch` at a time (median of three passes).
fn ours(model: &Embedder, texts: &[String], batch: usize) -> (f64, Vec<Vec<f32>>) {
    let mut times = Vec::new();
    let mut vectors = Vec::new();
    for _ in 0..3 {
        vectors.clear();
        let start = Instant::now();
        for chunk in texts.chunks(batch) {
            let (v, _) = model.embed(chunk).unwrap_or_else(|e| panic!("embed: {e}"));
            vectors.extend(v);
        }
        times.push(start.elapsed());
    }
    times.sort();
    (texts.len() as f64 / times[1].as_secs_f64(), vectors)
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| y.powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(1e-12)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let dir = catalog::models_dir();
    let info = catalog::find(&dir, "all-minilm-l6-v2").unwrap_or_else(|e| panic!("{e}"));
    let model = Embedder::load(&info).unwrap_or_else(|e| panic!("{e}"));
    let texts = sentences(n);
    // Warm-up.
    let _ = model.embed(&texts[..8.min(n)]);
    let (single, _) = ours(&model, &texts[..n.min(64)], 1);
    let (batched, vectors) = ours(&model, &texts, 32);

    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let python = home.join(".cache/hibana/sbert-venv/bin/python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/bench_embed_sbert.py");
    let installed = Command::new(&python)
        .args(["-c", "import torch, sentence_transformers"])
        .output()
        .is_ok_and(|o| o.status.success());
    let reference = if installed {
        let input = std::env::temp_dir().join("hibana-bench-embed.json");
        std::fs::write(&input, serde_json::to_vec(&texts).unwrap()).unwrap();
        let out = Command::new(&python)
            .arg(&script)
            .arg(&info.path)
            .arg(&input)
            .arg(threads.to_string())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
        if !out.status.success() {
            panic!(
                "sentence-transformers failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Some(v)
    } else {
        None
    };

    println!(
        "all-minilm-l6-v2, {n} sentences ({} to {} characters), {threads} threads, CPU\n",
        texts.iter().map(String::len).min().unwrap_or(0),
        texts.iter().map(String::len).max().unwrap_or(0)
    );
    println!("| | hibana (candle) | sentence-transformers | ratio |");
    println!("|---|---|---|---|");
    let row = |label: &str, mine: f64, key: &str| match &reference {
        Some(r) => {
            let theirs = r[key].as_f64().unwrap_or(f64::NAN);
            println!(
                "| {label} | {mine:.1} | {theirs:.1} | {:.2}× |",
                mine / theirs
            );
        }
        None => println!("| {label} | {mine:.1} | not installed | |"),
    };
    row("sentences/s, one per request", single, "single");
    row("sentences/s, batches of 32", batched, "batched");
    if let Some(r) = &reference {
        let theirs: Vec<Vec<f64>> = serde_json::from_value(r["vectors"].clone()).unwrap();
        let lowest = vectors
            .iter()
            .zip(&theirs)
            .map(|(a, b)| cosine(a, b))
            .fold(f64::INFINITY, f64::min);
        println!("\nlowest cosine between the two embeddings of a sentence: {lowest:.6}");
        println!(
            "reference: sentence-transformers {}, torch {}",
            r["sentence_transformers"].as_str().unwrap_or("?"),
            r["torch"].as_str().unwrap_or("?")
        );
    } else {
        println!(
            "\nsentence-transformers is not installed: run scripts/sbert-setup.sh for the side-by-side figures"
        );
    }
}
