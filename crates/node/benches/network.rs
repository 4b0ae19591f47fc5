//! Time to finality and sustained transfers per second of a real network of `hibana node`
//! processes on loopback, with 1 and with 4 validators, side by side. Each run funds its own
//! senders at genesis, then for a fixed window keeps every sender's transfers flowing (each
//! sender sends to the node it is assigned, round-robin, with at most 16 not yet committed) and
//! watches committed blocks on node 0: finality of a transfer is the time from its submission to
//! the moment node 0 reports its block. Senders learn of commits from that watcher, so the only
//! load on the nodes besides the transfers is one block read per height.
//! Run: `cargo bench -p hibana-node --bench network` (options: `-- --secs 20 --senders 48
//! --block-time-ms 250 --validators 4 --saturating --rate 600 --verbose`; `--rate R` offers both
//! networks the same R transfers a second instead of the light load and saturation, so that
//! their CPU per transfer compares at equal load).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hibana_rpc::{BlockId, HeadSubscription, RpcClient};
use hibana_types::{Address, Amount, Hash, Message, SecretKey, Transaction, Transfer};

const BIN: &str = env!("CARGO_BIN_EXE_hibana");

/// A node process, killed when dropped.
struct Node(Child, String);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(home: &Path, block_time_ms: u64, log: Option<&Path>) -> Node {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("create the node log")),
        None => Stdio::null(),
    };
    let mut child = Command::new(BIN)
        .args(["node", "--home"])
        .arg(home)
        .args([
            "--rpc-addr",
            "127.0.0.1:0",
            "--block-time-ms",
            &block_time_ms.to_string(),
        ])
        .env(
            "HIBANA_LOG",
            if log.is_some() {
                "warn,hibana_consensus=debug"
            } else {
                "error"
            },
        )
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start hibana node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let rpc = line.trim().rsplit(' ').next().unwrap().to_string();
    Node(child, rpc)
}

struct Options {
    secs: u64,
    senders: usize,
    block_time_ms: u64,
    /// Print every block node 0 commits (proposer, transfers, gap, every mempool's size) and
    /// keep the nodes' debug logs in `<tmp>/hibana-bench-logs`.
    verbose: bool,
}

/// A metric's value in a node's Prometheus text.
fn metric(text: &str, name: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("?")
        .to_string()
}

struct Outcome {
    validators: usize,
    rate: Option<f64>,
    submitted: usize,
    committed: usize,
    refused: usize,
    tps: f64,
    p50: Duration,
    p99: Duration,
    blocks: u64,
    /// CPU seconds all node processes used from the start of the load to the count.
    nodes_cpu: f64,
    /// CPU seconds the load generator (this process) used meanwhile.
    load_cpu: f64,
    elapsed: f64,
}

/// CPU seconds (user + system) a process has used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |k: usize| {
        fields
            .get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, so 11 and 12 after the state; 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

/// A node's Prometheus metrics text.
fn metrics(rpc: &str) -> String {
    use std::io::{Read, Write};
    let addr = rpc.trim_start_matches("http://");
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

async fn run(validators: usize, rate: Option<f64>, opts: &Options) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let senders: Vec<SecretKey> = (0..opts.senders).map(|_| SecretKey::generate()).collect();
    let mut init = Command::new(BIN);
    init.args([
        "--json",
        "init",
        "--validators",
        &validators.to_string(),
        "--out",
    ])
    .arg(&out);
    for k in &senders {
        init.arg("--account")
            .arg(format!("{}=1000HIB", k.public_key().address()));
    }
    let status = init.stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "hibana init failed");
    let nodes: Vec<Node> = (0..validators)
        .map(|k| {
            let log = opts.verbose.then(|| {
                let dir = std::env::temp_dir().join("hibana-bench-logs");
                std::fs::create_dir_all(&dir).unwrap();
                dir.join(format!("v{validators}-node{k}.log"))
            });
            start(
                &out.join(format!("node{k}")),
                opts.block_time_ms,
                log.as_deref(),
            )
        })
        .collect();
    let clients: Vec<RpcClient> = nodes
        .iter()
        .map(|n| RpcClient::new(&n.1).unwrap())
        .collect();
    // Wait for the first blocks.
    loop {
        if clients[0].status().await.map(|s| s.height).unwrap_or(0) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = clients[0].status().await.unwrap();
    let submitted_at: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::default();
    // Each sender's next nonce as committed on node 0, updated by the watcher for every block,
    // so senders learn of commits without polling the nodes.
    let committed_nonce: Arc<Mutex<HashMap<Address, u64>>> = Arc::default();
    let new_block = Arc::new(tokio::sync::Notify::new());
    let finality: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let start_height = status.height;

    // The watcher: every committed block on node 0, matched against submission times.
    let watcher = {
        let submitted_at = submitted_at.clone();
        let finality = finality.clone();
        let committed_nonce = committed_nonce.clone();
        let new_block = new_block.clone();
        let url = nodes[0].1.clone();
        let client = clients[0].clone();
        let urls: Vec<String> = nodes.iter().map(|n| n.1.clone()).collect();
        let verbose = opts.verbose;
        tokio::spawn(async move {
            let mut heads = HeadSubscription::connect(&url).await.unwrap();
            let mut last_ms = 0u64;
            // Every height from the first block seen on, including any whose head the
            // subscription skipped while this reader lagged.
            let mut next_height = 0u64;
            while let Some(Ok(head)) = heads.next().await {
                let seen = Instant::now();
                if next_height == 0 {
                    next_height = head.height;
                }
                while next_height <= head.height {
                    let Ok(Some(view)) = client.block(Some(BlockId::Height(next_height))).await
                    else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    next_height += 1;
                    let header = &view.block.header;
                    if verbose {
                        let pools: Vec<String> = urls
                            .iter()
                            .map(|u| metric(&metrics(u), "hibana_mempool_size"))
                            .collect();
                        eprintln!(
                            "  height {} by {} txs {} +{} ms mempools {}",
                            header.height,
                            &header.proposer.to_string()[..10],
                            view.block.txs.len(),
                            header.time_ms.saturating_sub(last_ms),
                            pools.join(" ")
                        );
                        last_ms = header.time_ms;
                    }
                    let mut sub = submitted_at.lock().unwrap();
                    let mut fin = finality.lock().unwrap();
                    let mut nonces = committed_nonce.lock().unwrap();
                    for tx in &view.block.txs {
                        if let Some(t) = sub.remove(&tx.hash()) {
                            fin.push(seen.duration_since(t));
                        }
                        let next = nonces.entry(tx.sender()).or_default();
                        *next = (*next).max(tx.tx.nonce + 1);
                    }
                }
                new_block.notify_waiters();
            }
        })
    };

    // Load: each sender keeps up to 16 transfers in flight to its node.
    let window = Duration::from_secs(opts.secs);
    let node_cpu = || nodes.iter().map(|n| cpu_seconds(n.0.id())).sum::<f64>();
    let cpu_before = (node_cpu(), cpu_seconds(std::process::id()));
    let began = Instant::now();
    let refused = Arc::new(Mutex::new(0usize));
    let senders_n = senders.len();
    let mut tasks = Vec::new();
    for (i, key) in senders.into_iter().enumerate() {
        let client = clients[i % clients.len()].clone();
        let committed_nonce = committed_nonce.clone();
        let new_block = new_block.clone();
        let submitted_at = submitted_at.clone();
        let refused = refused.clone();
        let chain_id = status.chain_id.clone();
        let fee = status.min_fee;
        tasks.push(tokio::spawn(async move {
            let me = key.public_key().address();
            let sink = hibana_types::Address([0x5a; 20]);
            let mut nonce = 0u64;
            let mut sent = 0usize;
            // With a rate, each sender sends one transfer per `gap`, at offsets spread out.
            let gap = rate.map(|r| Duration::from_secs_f64(senders_n as f64 / r));
            let mut next_at =
                began + gap.map_or(Duration::ZERO, |g| g.mul_f64(i as f64 / senders_n as f64));
            while began.elapsed() < window {
                if let Some(g) = gap {
                    tokio::time::sleep_until(next_at.into()).await;
                    next_at += g;
                }
                // At most 16 transfers in flight: wait for a block to commit some.
                let block = new_block.notified();
                tokio::pin!(block);
                block.as_mut().enable();
                let committed = committed_nonce
                    .lock()
                    .unwrap()
                    .get(&me)
                    .copied()
                    .unwrap_or(0);
                if nonce >= committed + 16 {
                    let _ = tokio::time::timeout(Duration::from_secs(1), block).await;
                    continue;
                }
                let tx = Transaction {
                    chain_id: chain_id.clone(),
                    signer: key.public_key(),
                    nonce,
                    fee,
                    messages: vec![Message::Transfer(Transfer {
                        to: sink,
                        amount: Amount(1),
                    })],
                }
                .sign(&key);
                let hash = tx.hash();
                submitted_at.lock().unwrap().insert(hash, Instant::now());
                match client.submit(&tx).await {
                    Ok(_) => {
                        nonce += 1;
                        sent += 1;
                    }
                    Err(e) => {
                        submitted_at.lock().unwrap().remove(&hash);
                        {
                            let mut refused = refused.lock().unwrap();
                            if *refused == 0 {
                                eprintln!("  first refusal ({validators} validators): {e}");
                            }
                            *refused += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            sent
        }));
    }
    let mut submitted = 0;
    for t in tasks {
        submitted += t.await.unwrap();
    }
    // Let what is in flight land, then count.
    tokio::time::sleep(Duration::from_millis(
        opts.block_time_ms * 4 * validators as u64 + 2000,
    ))
    .await;
    watcher.abort();
    let (nodes_cpu, load_cpu) = (
        node_cpu() - cpu_before.0,
        cpu_seconds(std::process::id()) - cpu_before.1,
    );
    let end_height = clients[0].status().await.unwrap().height;
    let mut fin = finality.lock().unwrap().clone();
    fin.sort();
    let committed = fin.len();
    let elapsed = began.elapsed().as_secs_f64();
    if validators > 1 {
        for n in &nodes {
            let m = metrics(&n.1);
            let pick = |name: &str| metric(&m, name);
            eprintln!(
                "  {}: gossip received {} dropped {}, rejected {}",
                n.1,
                pick("hibana_gossip_txs_received_total"),
                pick("hibana_gossip_txs_dropped_total"),
                pick("hibana_txs_rejected_total")
            );
        }
    }
    drop(nodes);
    let refused = *refused.lock().unwrap();
    Outcome {
        validators,
        rate,
        submitted,
        committed,
        refused,
        tps: committed as f64 / elapsed,
        p50: percentile(&fin, 0.5),
        p99: percentile(&fin, 0.99),
        blocks: end_height - start_height,
        nodes_cpu,
        load_cpu,
        elapsed,
    }
}

fn main() {
    let mut opts = Options {
        secs: 20,
        senders: 48,
        block_time_ms: 250,
        verbose: false,
    };
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|k| args.get(k + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    if let Some(v) = value("--secs") {
        opts.secs = v;
    }
    if let Some(v) = value("--senders") {
        opts.senders = v as usize;
    }
    if let Some(v) = value("--block-time-ms") {
        opts.block_time_ms = v;
    }
    opts.verbose = args.iter().any(|a| a == "--verbose");
    // `--validators N` measures only N validators (and 1 for the comparison).
    let sizes: Vec<usize> = match value("--validators") {
        Some(n) if n > 1 => vec![1, n as usize],
        _ => vec![1, 4],
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Finality under a light load (20 transfers/s), then throughput at saturation.
    let only_saturating = args.iter().any(|a| a == "--saturating");
    let rate = value("--rate").filter(|r| *r > 0).map(|r| r as f64);
    let loads: Vec<Option<f64>> = match (rate, only_saturating) {
        (Some(r), _) => vec![Some(r)],
        (None, true) => vec![None],
        (None, false) => vec![Some(20.0), None],
    };
    let runs: Vec<(usize, Option<f64>)> = loads
        .iter()
        .flat_map(|&rate| sizes.iter().map(move |&n| (n, rate)))
        .collect();
    let results: Vec<Outcome> = runs
        .iter()
        .map(|&(n, rate)| rt.block_on(run(n, rate, &opts)))
        .collect();
    println!(
        "\n{}-second load, {} senders, {} ms block time, processes on loopback ({} cores)\n",
        opts.secs,
        opts.senders,
        opts.block_time_ms,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| validators | load | submitted | committed | refused | blocks | transfers/s | finality p50 | finality p99 | vs 1 validator | node CPU ms/transfer | per validator | per validator vs 1 | cores busy (nodes + load) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    // The CPU one validator spends per committed transfer: all nodes' CPU over their number.
    let per_validator =
        |r: &Outcome| 1e3 * r.nodes_cpu / r.committed.max(1) as f64 / r.validators as f64;
    for r in &results {
        let base = results
            .iter()
            .find(|b| b.validators == 1 && b.rate == r.rate)
            .map_or(1e-9, |b| b.tps.max(1e-9));
        let single = results
            .iter()
            .find(|b| b.validators == 1 && b.rate == r.rate)
            .map_or(f64::NAN, per_validator);
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.0} ms | {:.0} ms | {:.0}% | {:.2} | {:.3} | {:.2}× | {:.2} + {:.2} |",
            r.validators,
            r.rate
                .map_or("saturating".to_string(), |x| format!("{x:.0} tx/s")),
            r.submitted,
            r.committed,
            r.refused,
            r.blocks,
            r.tps,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            100.0 * r.tps / base,
            1e3 * r.nodes_cpu / r.committed.max(1) as f64,
            per_validator(r),
            per_validator(r) / single,
            r.nodes_cpu / r.elapsed,
            r.load_cpu / r.elapsed
        );
    }
    println!(
        "\nTargets: finality p50 ≤ 1000 ms with 4 validators at saturation (issue 7); CPU per \
         transfer per validator ≤ 1.2× the single validator's (issue 21)."
    );
    println!(
        "Every validator checks and executes every transfer, so with all of them on one machine \
         the CPU per transfer grows with their number: when the cores are busy, transfers/s \
         falls by the same factor."
    );
}
