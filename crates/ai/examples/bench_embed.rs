//! Embedding throughput: sentences per second of all-MiniLM-L6-v2 on candle, side by side with
//! sentence-transformers (PyTorch) on the same model files, sentences and thread count, one
//! request at a time and in batches of 32; also the lowest cosine between the two outputs.
//! The two engines alternate pass by pass (five rounds, medians reported), so that a change in
//! the machine's load falls on both. Not a test; run it in release mode after
//! `scripts/sbert-setup.sh` (without it, only our figures are printed):
//!
//! `cargo run --release -p hibana-ai --example bench_embed [SENTENCES]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Instant,
};

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

/// Rounds of the comparison; each runs one pass of every engine and case.
const ROUNDS: usize = 5;

/// Seconds of one pass over `texts`, `batch` at a time, and the vectors.
fn ours(model: &Embedder, texts: &[String], batch: usize) -> (f64, Vec<Vec<f32>>) {
    let mut vectors = Vec::new();
    let start = Instant::now();
    for chunk in texts.chunks(batch) {
        let (v, _) = model.embed(chunk).unwrap_or_else(|e| panic!("embed: {e}"));
        vectors.extend(v);
    }
    (start.elapsed().as_secs_f64(), vectors)
}

/// sentence-transformers in a Python process that runs a pass whenever asked.
struct Reference {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Reference {
    fn ask(&mut self, command: &str) -> serde_json::Value {
        writeln!(self.input, "{command}").unwrap();
        self.input.flush().unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("sentence-transformers answered {line:?}: {e}"))
    }

    fn seconds(&mut self, command: &str) -> f64 {
        self.ask(command)["seconds"].as_f64().unwrap()
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
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

    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let python = home.join(".cache/hibana/sbert-venv/bin/python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/bench_embed_sbert.py");
    let installed = Command::new(&python)
        .args(["-c", "import torch, sentence_transformers"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut reference = installed.then(|| {
        let input = std::env::temp_dir().join("hibana-bench-embed.json");
        std::fs::write(&input, serde_json::to_vec(&texts).unwrap()).unwrap();
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(&info.path)
            .arg(&input)
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
        let input = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        output.read_line(&mut ready).unwrap();
        assert!(
            ready.contains("ready"),
            "sentence-transformers did not start: {ready:?}"
        );
        Reference {
            child,
            input,
            output,
        }
    });

    let singles = &texts[..n.min(64)];
    let (mut mine, mut theirs) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let mut vectors = Vec::new();
    for _ in 0..ROUNDS {
        mine[0].push(singles.len() as f64 / ours(&model, singles, 1).0);
        if let Some(r) = reference.as_mut() {
            theirs[0].push(singles.len() as f64 / r.seconds("single"));
        }
        let (seconds, v) = ours(&model, &texts, 32);
        mine[1].push(n as f64 / seconds);
        vectors = v;
        if let Some(r) = reference.as_mut() {
            theirs[1].push(n as f64 / r.seconds("batched"));
        }
    }

    println!(
        "all-minilm-l6-v2, {n} sentences ({} to {} characters), {threads} threads, CPU, \
         {ROUNDS} alternating rounds: median (lowest–highest)\n",
        texts.iter().map(String::len).min().unwrap_or(0),
        texts.iter().map(String::len).max().unwrap_or(0)
    );
    println!("| | hibana (candle) | sentence-transformers | ratio of medians |");
    println!("|---|---|---|---|");
    let spread = |xs: &[f64]| {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{:.1} ({lo:.1}–{hi:.1})", median(xs.to_vec()))
    };
    for (k, label) in ["sentences/s, one per request", "sentences/s, batches of 32"]
        .iter()
        .enumerate()
    {
        if theirs[k].is_empty() {
            println!("| {label} | {} | not installed | |", spread(&mine[k]));
        } else {
            println!(
                "| {label} | {} | {} | {:.2}× |",
                spread(&mine[k]),
                spread(&theirs[k]),
                median(mine[k].clone()) / median(theirs[k].clone())
            );
        }
    }
    if let Some(mut r) = reference {
        let answer = r.ask("vectors");
        let _ = writeln!(r.input, "quit");
        let _ = r.child.wait();
        let theirs: Vec<Vec<f64>> = serde_json::from_value(answer["vectors"].clone()).unwrap();
        let lowest = vectors
            .iter()
            .zip(&theirs)
            .map(|(a, b)| cosine(a, b))
            .fold(f64::INFINITY, f64::min);
        println!("\nlowest cosine between the two embeddings of a sentence: {lowest:.6}");
        println!(
            "reference: sentence-transformers {}, torch {}",
            answer["sentence_transformers"].as_str().unwrap_or("?"),
            answer["torch"].as_str().unwrap_or("?")
        );
    } else {
        println!(
            "\nsentence-transformers is not installed: run scripts/sbert-setup.sh for the side-by-side figures"
        );
    }
}
