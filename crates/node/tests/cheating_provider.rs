//! End-to-end with real processes: a provider that cheats on some answers is caught and slashed
//! with no one asking. The devnet's provider (registered in the compute market by the devnet)
//! mines the `chat` subnet behind a proxy that its operator controls: the proxy replaces every
//! fourth answer with a fluent wrong one and signs a fresh receipt for it with the provider's
//! key, as a cheating operator would. Two validators (`hibana validator run`) score the miner,
//! re-check their answers by teacher forcing, challenge the wrong ones on chain, re-check the
//! challenge themselves and vote; the chain slashes the provider's bond. (The rate at which a
//! 5%-cheater is caught is measured over 100 seeded in-process runs in `slashing.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use hibana_types::{Hash, InferenceReceipt, SecretKey};
use serde_json::Value;
use support::{
    Devnet, http, ok_json, register_neuron, run_validators, staked_validators, start_devnet,
};

/// The provider's signing key, from the devnet's provider home.
fn provider_key(home: &str) -> SecretKey {
    let file: Value = serde_json::from_slice(
        &std::fs::read(format!("{home}/provider/provider_key.json")).unwrap(),
    )
    .unwrap();
    let bytes: [u8; 32] = hex::decode(file["secret_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    SecretKey::from_bytes(bytes)
}

/// Reads one HTTP/1.1 request: method, path, body.
fn read_request(stream: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut first = head.lines().next()?.split_whitespace();
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some((method, path, data[head_end..head_end + length].to_vec()))
}

/// Serves a proxy to `upstream` that replaces every fourth chat answer with a wrong one under a
/// receipt re-signed by `key`; returns its URL and the count of answers it corrupted.
fn cheating_proxy(upstream: String, key: SecretKey) -> (String, &'static AtomicUsize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let corrupted: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let answers: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (upstream, key) = (upstream.clone(), key.clone());
            std::thread::spawn(move || {
                let Some((method, path, body)) = read_request(&mut stream) else {
                    return;
                };
                let (status, headers, mut text) = http(&upstream, &method, &path, None, &body);
                let mut receipt = headers
                    .iter()
                    .find(|(k, _)| k == "x-hibana-receipt")
                    .map(|(_, v)| v.clone());
                if path == "/v1/chat/completions"
                    && status == 200
                    && answers.fetch_add(1, Ordering::Relaxed).is_multiple_of(4)
                    && let Some(hex) = &receipt
                {
                    let mut answer: Value = serde_json::from_str(&text).unwrap();
                    answer["choices"][0]["message"]["content"] =
                        Value::from("I am not sure, but I think the answer is probably 42.");
                    text = serde_json::to_string(&answer).unwrap();
                    let mut body = InferenceReceipt::from_hex(hex).unwrap().body;
                    body.response_hash = Hash::digest(text.as_bytes());
                    receipt = Some(body.sign(&key).to_hex());
                    corrupted.fetch_add(1, Ordering::Relaxed);
                }
                let receipt_header = receipt
                    .map(|r| format!("x-hibana-receipt: {r}\r\n"))
                    .unwrap_or_default();
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{receipt_header}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            });
        }
    });
    (url, corrupted)
}

#[test]
fn validators_catch_and_slash_a_provider_that_cheats_on_some_answers() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let h = home.to_str().unwrap();
    let Devnet {
        process: _devnet,
        rpc,
        provider,
        ..
    } = start_devnet(h, &[]);
    let key = provider_key(h);
    let account = key.public_key().address().to_string();
    let (proxy, corrupted) = cheating_proxy(provider, key);
    let bond = |rpc: &str| -> u128 {
        ok_json(&[
            "--json", "--rpc", rpc, "market", "provider", "show", &account,
        ])["bond"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let bond_before = bond(&rpc);

    let created = ok_json(&[
        "--json",
        "--rpc",
        &rpc,
        "subnet",
        "create",
        "--name",
        "chat",
        "--task",
        "chat",
        "--tempo",
        "20",
        "--reveal-interval",
        "4",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    assert_eq!(created["outcome"]["status"], "success", "{created}");
    // The provider's own account mines the subnet, at the proxy.
    register_neuron(
        &rpc,
        "chat",
        "miner",
        &proxy,
        &["--from", "provider", "--home", h],
    );
    staked_validators(&rpc, h, "chat", &["bob", "carol"]);
    // Validators vote once an epoch has given them a permit.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = ok_json(&["--json", "--rpc", &rpc, "subnet", "show", "chat"]);
        let permits = view["neurons"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["role"] == "validator" && n["permit"] == true)
            .count();
        if permits == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no permits: {view}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let _validators = run_validators(dir.path(), &rpc, h, "chat", &["bob", "carol"], "6");

    let deadline = Instant::now() + Duration::from_secs(600);
    let upheld = loop {
        let list = ok_json(&[
            "--json",
            "--rpc",
            &rpc,
            "challenge",
            "list",
            "--provider",
            &account,
        ]);
        if let Some(c) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["status"] == "upheld")
        {
            break c.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no challenge upheld after {} corrupted answers: {list}",
            corrupted.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!(corrupted.load(Ordering::Relaxed) > 0);
    // The challenged answer is one the proxy corrupted, and the bond paid for it.
    let shown = ok_json(&[
        "--json",
        "--rpc",
        &rpc,
        "challenge",
        "show",
        upheld["id"].to_string().as_str(),
    ]);
    let response = hex::decode(shown["response"].as_str().unwrap()).unwrap();
    assert!(
        String::from_utf8_lossy(&response).contains("probably 42"),
        "{shown}"
    );
    assert!(bond(&rpc) < bond_before, "the bond was not slashed");
    // No honest answer was ever challenged successfully.
    let list = ok_json(&[
        "--json",
        "--rpc",
        &rpc,
        "challenge",
        "list",
        "--provider",
        &account,
    ]);
    for c in list.as_array().unwrap() {
        let shown = ok_json(&[
            "--json",
            "--rpc",
            &rpc,
            "challenge",
            "show",
            c["id"].to_string().as_str(),
        ]);
        let response = hex::decode(shown["response"].as_str().unwrap()).unwrap();
        if !String::from_utf8_lossy(&response).contains("probably 42") {
            assert_ne!(
                c["status"], "upheld",
                "an honest answer was slashed: {shown}"
            );
        }
    }
}
