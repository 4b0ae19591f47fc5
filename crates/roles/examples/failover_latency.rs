//! Latency of requests through the gateway when one of three providers dies half-way, against
//! the same run with none killed. Not a test. Run:
//!
//! `cargo run -p hibana-roles --example failover_latency [REQUESTS] [CLIENTS]` (default 200
//! requests from 6 concurrent clients; dependencies are optimised in the dev profile too)
//!
//! Three providers serve SmolLM2-135M-Instruct in this process (each its own copy, 2 sequences
//! at once) behind one gateway. Each client sends chat requests (8 tokens, greedy) one after
//! another. In the second run, once half of the requests are answered, the first provider's
//! server stops: its listener closes and its connections are dropped, as when its process dies.
//! Prints p50, p99 and max of the client-side latency, and the failures (there must be none).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use hibana_ai::catalog;
use hibana_roles::{
    gateway::{self, Gateway, GatewayConfig},
    keys::KeyFile,
    provider::{self, Provider, ProviderConfig},
};
use hibana_types::{Amount, SecretKey};
use serde_json::json;

const MODEL: &str = "smollm2-135m-instruct";

struct Run {
    latencies: Vec<Duration>,
    failures: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(requests: usize, clients: usize, kill_half_way: bool) -> Run {
    let dir = catalog::models_dir();
    let mut urls = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..3 {
        let config = ProviderConfig {
            models: vec![MODEL.into()],
            models_dir: dir.clone(),
            price_per_token: Amount::from_base(1),
            capacity: 2,
        };
        let p = Arc::new(Provider::load(&config, SecretKey::generate()).expect("load provider"));
        let (addr, task) = provider::serve(p, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        urls.push(format!("http://{addr}"));
        servers.push(task);
    }
    let home = tempfile::tempdir().unwrap();
    let keys = KeyFile::new(home.path().join("keys.json"));
    let (secret, _) = keys
        .create(
            "bench",
            SecretKey::generate().public_key().address(),
            u32::MAX,
        )
        .unwrap();
    let gw = Arc::new(
        Gateway::new(GatewayConfig {
            providers: urls,
            keys,
            request_timeout: Duration::from_secs(120),
            health_interval: Duration::from_millis(500),
            chain_rpc: None,
            miner_endpoints: Default::default(),
            max_in_flight: gateway::DEFAULT_MAX_IN_FLIGHT,
            operator: None,
            provider_deposit: Default::default(),
            sampling: None,
        })
        .unwrap(),
    );
    let (addr, _gw) = gateway::serve(gw, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{addr}");
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let killer = servers.remove(0);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, done, base, secret) = (next.clone(), done.clone(), base.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut out = Vec::new();
            let mut failures = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let body = json!({
                    "model": MODEL,
                    "temperature": 0,
                    "max_tokens": 8,
                    "messages": [{"role": "user", "content": format!("Request {i}: name a colour.")}],
                });
                let start = Instant::now();
                let ok = client
                    .post(format!("{base}/v1/chat/completions"))
                    .bearer_auth(&secret)
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    out.push(start.elapsed());
                } else {
                    failures += 1;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (out, failures)
        }));
    }
    if kill_half_way {
        while done.load(Ordering::Relaxed) < requests / 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        killer.abort();
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        latencies.extend(l);
        failures += f;
    }
    latencies.sort();
    Run {
        latencies,
        failures,
    }
}

#[tokio::main]
async fn main() {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let clients: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(6);
    let none = run(requests, clients, false).await;
    let killed = run(requests, clients, true).await;
    println!(
        "{requests} chat requests (8 tokens) from {clients} clients through the gateway, 3 providers"
    );
    println!("| run | answered | failed | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for (name, r) in [
        ("none killed", &none),
        ("one of three killed half-way", &killed),
    ] {
        println!(
            "| {name} | {} | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
            r.latencies.len(),
            r.failures,
            percentile(&r.latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&r.latencies, 0.99).as_secs_f64() * 1e3,
            r.latencies.last().unwrap().as_secs_f64() * 1e3,
        );
    }
    let ratio = percentile(&killed.latencies, 0.99).as_secs_f64()
        / percentile(&none.latencies, 0.99).as_secs_f64();
    println!("p99 killed / none: {ratio:.2}× (target ≤ 1.5×)");
}
