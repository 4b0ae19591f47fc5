//! Side-by-side benchmark of the provider against llama.cpp's own `llama-server` on the same
//! GGUF, prompt and settings, plus the gateway's overhead per request. Not a test. Run:
//!
//! `cargo run -p hibana-roles --example bench_provider [MAX_TOKENS] [ROUNDS]` (dependencies,
//! llama.cpp included, are optimised in the dev profile too)
//!
//! `llama-server` is taken from `$HIBANA_LLAMA_SERVER`, else built once by
//! `scripts/build-llama-server.sh`. Both servers get the same threads, 8 parallel sequences and
//! the same per-sequence context, and are measured in alternating rounds (fresh prompts each
//! round) by the same client over HTTP with streaming:
//! prompt tokens/s from the time to the first token, decode tokens/s from the tokens after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use hibana_ai::catalog;
use hibana_roles::{
    gateway::{self, Gateway, GatewayConfig},
    keys::KeyFile,
    provider::{self, Provider, ProviderConfig},
};
use hibana_types::{Amount, SecretKey};
use serde_json::{Value, json};

const MODEL: &str = "smollm2-135m-instruct";
const PARALLEL: usize = 8;
const N_CTX: u32 = 2048;
const QUESTION: &str = "Explain, step by step and in detail, how a payment channel lets a client \
pay a provider for each request without a transaction per request, what a voucher contains, and \
how the provider finally redeems it on chain.";

/// One streamed answer as the client saw it.
struct Stream {
    first_token: Duration,
    total: Duration,
    tokens: u32,
}

async fn stream_once(
    client: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    max_tokens: u32,
    salt: usize,
) -> Stream {
    // A different first word per stream keeps llama-server's prompt cache from skipping work.
    let body = json!({
        "model": MODEL,
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": true,
        "messages": [{"role": "user", "content": format!("Request {salt}. {QUESTION}")}],
    });
    let mut request = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let start = Instant::now();
    let response = request.send().await.expect("request");
    assert!(
        response.status().is_success(),
        "{base}: {}",
        response.status()
    );
    let mut chunks = response.bytes_stream();
    let mut first = None;
    let mut tokens = 0;
    let mut buffer = String::new();
    while let Some(chunk) = chunks.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data).expect("json chunk");
            let has_text = v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty());
            if has_text {
                tokens += 1;
                first.get_or_insert_with(|| start.elapsed());
            }
        }
    }
    let total = start.elapsed();
    Stream {
        first_token: first.unwrap_or(total),
        total,
        tokens,
    }
}

struct Figures {
    prompt_tps: f64,
    decode_tps: f64,
    concurrent_tps: f64,
}

/// Reads one figure of a round.
type Field = fn(&Figures) -> f64;

async fn measure(
    client: &reqwest::Client,
    base: &str,
    prompt_tokens: u32,
    max_tokens: u32,
    round: usize,
) -> Figures {
    let salt = round * 10_000;
    // Warm up once, then three single streams.
    stream_once(client, base, None, 8, salt + 1000).await;
    let mut prompt = Vec::new();
    let mut decode = Vec::new();
    for i in 0..3 {
        let s = stream_once(client, base, None, max_tokens, salt + i).await;
        prompt.push(f64::from(prompt_tokens) / s.first_token.as_secs_f64());
        let after_first = (s.total - s.first_token).as_secs_f64();
        decode.push(f64::from(s.tokens.saturating_sub(1)) / after_first);
    }
    let start = Instant::now();
    let streams = futures_util::future::join_all(
        (0..PARALLEL).map(|i| stream_once(client, base, None, max_tokens, salt + 100 + i)),
    )
    .await;
    let wall = start.elapsed().as_secs_f64();
    let total_tokens: u32 = streams.iter().map(|s| s.tokens).sum();
    Figures {
        prompt_tps: median(&mut prompt),
        decode_tps: median(&mut decode),
        concurrent_tps: f64::from(total_tokens) / wall,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn llama_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("HIBANA_LLAMA_SERVER") {
        return PathBuf::from(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-llama-server.sh");
    eprintln!(
        "building llama-server with {} (once; several minutes)…",
        script.display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run build script");
    assert!(out.status.success(), "build-llama-server.sh failed");
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("binary path")
            .trim(),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_llama_server(gguf: &Path, threads: usize) -> (Server, String) {
    let port = free_port();
    let child = Command::new(llama_server_binary())
        .args(["-m"])
        .arg(gguf)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-t", &threads.to_string(), "-tb", &threads.to_string()])
        .args([
            "-c",
            &(N_CTX as usize * PARALLEL).to_string(),
            "-np",
            &PARALLEL.to_string(),
        ])
        .args(["-b", "512", "-ub", "512", "--no-webui"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start llama-server");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let healthy = client.get(format!("{base}/health")).send().await;
        if healthy.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "llama-server did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (Server(child), base)
}

#[tokio::main]
async fn main() {
    let max_tokens: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5)
        .max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = catalog::models_dir();
    let info = catalog::find(&dir, MODEL).unwrap_or_else(|e| panic!("{e}"));
    let config = ProviderConfig {
        models: vec![MODEL.into(), "all-minilm-l6-v2".into()],
        models_dir: dir.clone(),
        price_per_token: Amount::from_base(1),
        capacity: PARALLEL,
    };
    let provider = Arc::new(Provider::load(&config, SecretKey::generate()).expect("load provider"));
    let (addr, _task) = provider::serve(provider, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ours = format!("http://{addr}");
    // A new connection per request: llama-server (cpp-httplib) closes idle keep-alive
    // connections on its own timer, and a request sent on one as it closes fails with
    // `IncompleteMessage`. Connecting on loopback costs microseconds against streams of seconds.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    // Prompt length as both servers count it (the same GGUF tokenizer and chat template).
    let probe: Value = client
        .post(format!("{ours}/v1/chat/completions"))
        .json(&json!({"model": MODEL, "max_tokens": 1, "temperature": 0,
            "messages": [{"role": "user", "content": format!("Request 0. {QUESTION}")}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let prompt_tokens = probe["usage"]["prompt_tokens"].as_u64().unwrap() as u32;

    println!(
        "model {MODEL} ({}), greedy, {prompt_tokens} prompt tokens, max_tokens {max_tokens}, {threads} threads, {PARALLEL} parallel sequences, {rounds} rounds",
        info.path.display()
    );
    // Both servers run for the whole comparison and are measured in alternating rounds, so a
    // change in the machine's load during the run falls on both.
    let (server, theirs) = start_llama_server(&info.path, threads).await;
    let mut hibana = Vec::new();
    let mut llama = Vec::new();
    for round in 1..=rounds {
        let ours_now = measure(&client, &ours, prompt_tokens, max_tokens, round).await;
        let theirs_now = measure(&client, &theirs, prompt_tokens, max_tokens, round).await;
        eprintln!(
            "round {round}: decode 1 stream {:.1} vs {:.1}, 8 streams {:.1} vs {:.1} tokens/s",
            ours_now.decode_tps,
            theirs_now.decode_tps,
            ours_now.concurrent_tps,
            theirs_now.concurrent_tps
        );
        hibana.push(ours_now);
        llama.push(theirs_now);
    }
    drop(server);
    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>8} {:>14}",
        "median of rounds", "hibana provider", "llama-server", "ratio", "ratio per round"
    );
    let rows: [(&str, Field); 3] = [
        ("prompt tokens/s (1 stream)", |f| f.prompt_tps),
        ("decode tokens/s (1 stream)", |f| f.decode_tps),
        ("decode tokens/s (8 streams, total)", |f| f.concurrent_tps),
    ];
    for (name, field) in rows {
        let a = median(&mut hibana.iter().map(field).collect::<Vec<_>>());
        let b = median(&mut llama.iter().map(field).collect::<Vec<_>>());
        let mut ratios: Vec<f64> = hibana
            .iter()
            .zip(&llama)
            .map(|(x, y)| field(x) / field(y))
            .collect();
        ratios.sort_by(f64::total_cmp);
        let spread = format!("{:.2}–{:.2}", ratios[0], ratios[ratios.len() - 1]);
        println!(
            "{name:<34} {a:>14.1} {b:>14.1} {:>7.2}x {spread:>14}",
            a / b
        );
    }

    // Gateway overhead: the same small embedding request, directly and through the gateway.
    let home = tempfile::tempdir().unwrap();
    let keys = KeyFile::new(home.path().join("keys.json"));
    let account = SecretKey::generate().public_key().address();
    let (secret, _) = keys.create("bench", account, u32::MAX).unwrap();
    let gw = Arc::new(
        Gateway::new(GatewayConfig {
            providers: vec![ours.clone()],
            keys,
            request_timeout: Duration::from_secs(60),
            health_interval: Duration::from_secs(5),
            chain_rpc: None,
            miner_endpoints: Default::default(),
            max_in_flight: gateway::DEFAULT_MAX_IN_FLIGHT,
            operator: None,
            provider_deposit: Default::default(),
            sampling: None,
        })
        .unwrap(),
    );
    let (gw_addr, _gw_task) = gateway::serve(gw, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let via_gateway = format!("http://{gw_addr}");
    let body = json!({"model": "all-minilm-l6-v2", "input": "a cat sat on the mat"});
    let time = |base: String, key: Option<String>| {
        let client = client.clone();
        let body = body.clone();
        async move {
            let mut request = client.post(format!("{base}/v1/embeddings")).json(&body);
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let start = Instant::now();
            let response = request.send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
            start.elapsed().as_secs_f64() * 1000.0
        }
    };
    let mut direct = Vec::new();
    let mut through = Vec::new();
    for _ in 0..20 {
        time(ours.clone(), None).await;
        time(via_gateway.clone(), Some(secret.clone())).await;
    }
    for _ in 0..300 {
        direct.push(time(ours.clone(), None).await);
        through.push(time(via_gateway.clone(), Some(secret.clone())).await);
    }
    let (d50, d99) = (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
    let (g50, g99) = (
        percentile(&mut through, 0.5),
        percentile(&mut through, 0.99),
    );
    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>14}",
        "embedding request (ms)", "direct", "via gateway", "overhead"
    );
    println!("{:<34} {d50:>14.2} {g50:>14.2} {:>14.2}", "p50", g50 - d50);
    println!("{:<34} {d99:>14.2} {g99:>14.2} {:>14.2}", "p99", g99 - d99);
}
