//! The gateway under load: a real provider serving a real model and a real gateway on loopback,
//! then many concurrent clients, each with its own connection, making a few requests at once
//! (honouring `Retry-After` with jitter after a 429, as OpenAI's SDKs do). The reference in the
//! same run is the same clients sent straight to the provider, which queues whatever comes.
//! Not a test. Run:
//!
//! `cargo run -p hibana-roles --example gateway_load -- [--clients 500] [--requests 4]
//! [--secs 120] [--max-in-flight 256] [--capacity 8] [--chat]`
//!
//! Embeddings with all-minilm-l6-v2; `--chat` adds chat with SmolLM2 (`max_tokens` 8). Prints
//! one table per workload and exits non-zero if any request got something other than 200 or a
//! 429 with `Retry-After` in OpenAI's error shape, or if the gateway's usage differs from the sum
//! of the usage the clients saw. Memory is the whole process's (provider, gateway and clients).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use hibana_ai::catalog;
use hibana_roles::{
    gateway::{self, Gateway, GatewayConfig, IN_FLIGHT_PER_PROVIDER_SLOT},
    keys::KeyFile,
    provider::{self, Provider, ProviderConfig},
};
use hibana_types::{Amount, SecretKey};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::Barrier;

const EMBED_MODEL: &str = "all-minilm-l6-v2";
const CHAT_MODEL: &str = "smollm2-135m-instruct";

/// What the run does, from the command line.
struct Options {
    clients: usize,
    requests: usize,
    secs: u64,
    max_in_flight: usize,
    capacity: usize,
    chat: bool,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            clients: 500,
            requests: 4,
            secs: 120,
            max_in_flight: gateway::DEFAULT_MAX_IN_FLIGHT,
            capacity: 8,
            chat: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || -> usize {
                args.next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{flag} takes a number"))
            };
            match flag.as_str() {
                "--clients" => o.clients = value(),
                "--requests" => o.requests = value(),
                "--secs" => o.secs = value() as u64,
                "--max-in-flight" => o.max_in_flight = value(),
                "--capacity" => o.capacity = value(),
                "--chat" => o.chat = true,
                other => panic!("unknown flag {other}; see the file's header"),
            }
        }
        o
    }
}

/// A kind of request the clients make.
struct Workload {
    name: &'static str,
    path: &'static str,
    body: fn(usize, usize) -> Value,
}

/// One request as its client saw it.
#[derive(Default)]
struct Outcome {
    status: u16,
    latency: Duration,
    /// A 429 carried `Retry-After` and an OpenAI error body.
    well_formed_429: bool,
    prompt_tokens: u64,
    completion_tokens: u64,
    error: Option<String>,
    /// The client's first request, which also opened its connection.
    first: bool,
}

/// Sends one request and reads the whole answer.
async fn send(client: &reqwest::Client, url: &str, key: Option<&str>, body: &Value) -> Outcome {
    let mut request = client.post(url).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let start = Instant::now();
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                latency: start.elapsed(),
                error: Some(e.to_string()),
                ..Outcome::default()
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = response.bytes().await;
    let latency = start.elapsed();
    let json: Option<Value> = body.ok().and_then(|b| serde_json::from_slice(&b).ok());
    let mut out = Outcome {
        status,
        latency,
        ..Outcome::default()
    };
    match (status, json) {
        (200, Some(v)) => {
            out.prompt_tokens = v["usage"]["prompt_tokens"].as_u64().unwrap_or(0);
            out.completion_tokens = v["usage"]["completion_tokens"].as_u64().unwrap_or(0);
        }
        (429, Some(v)) => {
            out.well_formed_429 = retry_after.is_some_and(|s| s >= 1)
                && v["error"]["message"].is_string()
                && v["error"]["type"].is_string();
        }
        (_, v) => out.error = Some(format!("HTTP {status}: {v:?}")),
    }
    out
}

/// Runs `clients` concurrent clients, each making up to `requests` requests before `deadline`.
async fn run_clients(
    o: &Options,
    base: &str,
    key: Option<&str>,
    w: &Workload,
) -> (Vec<Outcome>, Duration) {
    let barrier = Arc::new(Barrier::new(o.clients));
    let url = format!("{base}{}", w.path);
    let deadline = Instant::now() + Duration::from_secs(o.secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..o.clients)
        .map(|i| {
            let barrier = barrier.clone();
            let url = url.clone();
            let key = key.map(str::to_string);
            let requests = o.requests;
            let body = w.body;
            tokio::spawn(async move {
                // Each client its own connection, as separate users would have.
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build()
                    .unwrap();
                barrier.wait().await;
                let mut outcomes = Vec::new();
                for j in 0..requests {
                    if Instant::now() > deadline {
                        break;
                    }
                    let mut out = send(&client, &url, key.as_deref(), &body(i, j)).await;
                    out.first = j == 0;
                    let refused = out.status == 429;
                    outcomes.push(out);
                    if refused {
                        // Retry-After is 1 s; jitter spreads the retries as SDKs do.
                        let jitter = rand::thread_rng().gen_range(0..500);
                        tokio::time::sleep(Duration::from_millis(1000 + jitter)).await;
                    }
                }
                outcomes
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, start.elapsed())
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// `p50 / p99 / max` of the latencies of `outcomes` with `status` (only of requests on a
/// connection already open if `reused`), in ms.
fn latencies(outcomes: &[Outcome], status: u16, reused: bool) -> String {
    let ms: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.status == status && !(reused && o.first))
        .map(|o| o.latency.as_secs_f64() * 1e3)
        .collect();
    if ms.is_empty() {
        return "–".into();
    }
    format!(
        "{:.1} / {:.1} / {:.1}",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        percentile(&ms, 1.0)
    )
}

/// A memory figure of this process from /proc/self/status, in MiB.
fn memory_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Counts of one run.
struct Counts {
    requests: usize,
    ok: usize,
    refused: usize,
    refused_bad: usize,
    other: usize,
    prompt: u64,
    completion: u64,
}

fn count(outcomes: &[Outcome]) -> Counts {
    let ok: Vec<_> = outcomes.iter().filter(|o| o.status == 200).collect();
    let refused: Vec<_> = outcomes.iter().filter(|o| o.status == 429).collect();
    Counts {
        requests: outcomes.len(),
        ok: ok.len(),
        refused: refused.len(),
        refused_bad: refused.iter().filter(|o| !o.well_formed_429).count(),
        other: outcomes
            .iter()
            .filter(|o| o.status != 200 && o.status != 429)
            .count(),
        prompt: ok.iter().map(|o| o.prompt_tokens).sum(),
        completion: ok.iter().map(|o| o.completion_tokens).sum(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let o = Options::parse();
    let dir = catalog::models_dir();
    let mut models = vec![EMBED_MODEL.to_string()];
    if o.chat {
        models.push(CHAT_MODEL.into());
    }
    let config = ProviderConfig {
        models,
        models_dir: dir,
        price_per_token: Amount::from_base(1),
        capacity: o.capacity,
    };
    let provider = Arc::new(Provider::load(&config, SecretKey::generate()).expect("load provider"));
    let (addr, _task) = provider::serve(provider, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let direct = format!("http://{addr}");

    let home = tempfile::tempdir().unwrap();
    let keys = KeyFile::new(home.path().join("keys.json"));
    let account = SecretKey::generate().public_key().address();
    let (secret, _) = keys.create("load", account, u32::MAX).unwrap();
    let gw = Arc::new(
        Gateway::new(GatewayConfig {
            providers: vec![direct.clone()],
            keys,
            request_timeout: Duration::from_secs(120),
            health_interval: Duration::from_secs(5),
            chain_rpc: None,
            miner_endpoints: Default::default(),
            max_in_flight: o.max_in_flight,
            operator: None,
            provider_deposit: Default::default(),
            sampling: None,
        })
        .unwrap(),
    );
    let (gw_addr, _gw_task) = gateway::serve(gw, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let via = format!("http://{gw_addr}");

    let mut workloads = vec![Workload {
        name: "embeddings (all-minilm-l6-v2, 1 sentence)",
        path: "/v1/embeddings",
        body: |i, j| {
            json!({"model": EMBED_MODEL,
                "input": format!("client {i} request {j}: a cat sat on the mat")})
        },
    }];
    if o.chat {
        workloads.push(Workload {
            name: "chat (smollm2-135m-instruct, max_tokens 8)",
            path: "/v1/chat/completions",
            body: |i, j| {
                json!({"model": CHAT_MODEL, "max_tokens": 8, "temperature": 0,
                    "messages": [{"role": "user", "content": format!("Client {i}, request {j}: say hello.")}]})
            },
        });
    }
    // Warm up both paths (model pages, connection pools) so the first burst measures load.
    let warm = reqwest::Client::new();
    for w in &workloads {
        for (base, key) in [(&direct, None), (&via, Some(secret.as_str()))] {
            let out = send(&warm, &format!("{base}{}", w.path), key, &(w.body)(0, 0)).await;
            assert_eq!(out.status, 200, "warm-up: {:?}", out.error);
        }
    }
    let http = reqwest::Client::new();
    let gateway_usage = || async {
        let v: Value = http
            .get(format!("{via}/v1/usage"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            v["usage"]["requests"].as_u64().unwrap(),
            v["usage"]["prompt_tokens"].as_u64().unwrap(),
            v["usage"]["completion_tokens"].as_u64().unwrap(),
        )
    };

    println!(
        "{} clients × up to {} requests each (own connection each, all started together, \
         a 429 waits its Retry-After + 0–0.5 s), stop issuing after {} s; provider capacity {}, \
         gateway max_in_flight {} and {} per provider; {} cores",
        o.clients,
        o.requests,
        o.secs,
        o.capacity,
        o.max_in_flight,
        o.capacity * IN_FLIGHT_PER_PROVIDER_SLOT,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let rss_idle = memory_mib("VmRSS:");
    let mut failed = false;
    for w in &workloads {
        let before = gateway_usage().await;
        let (through, wall_g) = run_clients(&o, &via, Some(&secret), w).await;
        let after = gateway_usage().await;
        let hwm_gateway = memory_mib("VmHWM:");
        let (straight, wall_d) = run_clients(&o, &direct, None, w).await;
        let (g, d) = (count(&through), count(&straight));
        let used = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
        let accounted = used == (g.ok as u64, g.prompt, g.completion);
        println!();
        println!("{}", w.name);
        println!(
            "{:<44} {:>22} {:>22}",
            "", "via gateway", "direct to provider"
        );
        let row = |name: &str, a: String, b: String| println!("{name:<44} {a:>22} {b:>22}");
        row("requests", g.requests.to_string(), d.requests.to_string());
        row("answered 200", g.ok.to_string(), d.ok.to_string());
        row(
            "429 (all with Retry-After + error JSON)",
            format!(
                "{} ({})",
                g.refused,
                if g.refused_bad == 0 { "all" } else { "NOT all" }
            ),
            format!("{}", d.refused),
        );
        row("other errors", g.other.to_string(), d.other.to_string());
        row(
            "answered latency p50 / p99 / max, ms",
            latencies(&through, 200, false),
            latencies(&straight, 200, false),
        );
        row(
            "refused latency p50 / p99 / max, ms",
            latencies(&through, 429, false),
            latencies(&straight, 429, false),
        );
        row(
            "  of them on an open connection",
            latencies(&through, 429, true),
            latencies(&straight, 429, true),
        );
        row(
            "wall time, s / answered per s",
            format!(
                "{:.1} / {:.0}",
                wall_g.as_secs_f64(),
                g.ok as f64 / wall_g.as_secs_f64()
            ),
            format!(
                "{:.1} / {:.0}",
                wall_d.as_secs_f64(),
                d.ok as f64 / wall_d.as_secs_f64()
            ),
        );
        row(
            "usage: gateway requests / clients answered",
            format!("{} / {}", used.0, g.ok),
            "–".into(),
        );
        row(
            "usage: gateway prompt tokens / clients saw",
            format!("{} / {}", used.1, g.prompt),
            "–".into(),
        );
        row(
            "usage: gateway completion tokens / clients saw",
            format!("{} / {}", used.2, g.completion),
            "–".into(),
        );
        row(
            "peak RSS (VmHWM), MiB; idle before load",
            format!("{hwm_gateway:.0}; {rss_idle:.0}"),
            format!("{:.0}", memory_mib("VmHWM:")),
        );
        for out in through
            .iter()
            .chain(&straight)
            .filter_map(|o| o.error.as_ref())
            .take(5)
        {
            println!("  error: {out}");
        }
        if g.other > 0 || g.refused_bad > 0 || !accounted {
            failed = true;
        }
    }
    println!();
    if failed {
        println!("FAILED: a request got neither 200 nor a well-formed 429, or usage differs");
        ExitCode::FAILURE
    } else {
        println!(
            "OK: every request got 200 or 429 with Retry-After; usage equals what clients saw"
        );
        ExitCode::SUCCESS
    }
}
