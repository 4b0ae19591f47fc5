//! End-to-end: the model network on a devnet. Three miners serve the `chat` subnet (the devnet's
//! real provider, one that answers garbage, one that is slow), two validators score them with
//! `hibana validator run` and set weights by commit-reveal, epochs pay the useful ones, and the
//! gateway sends most `"model": "chat"` requests to the miner with the highest incentive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

use support::{
    Devnet, fails_with, fake_miner, funded_keyring, gateway_key, http, miner_score, ok_json,
    register_neuron, run_validators, scored_round, staked_validators, start_devnet, uid_at,
    wait_for_scored_epoch,
};

#[test]
fn validators_pay_the_useful_miner_and_the_gateway_prefers_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let h = home.to_str().unwrap();
    let Devnet {
        process: _devnet,
        rpc,
        gateway,
        api_key,
        provider,
    } = start_devnet(h, &[]);
    let (_garbage, garbage_url) = fake_miner("garbage", &provider);
    let (_slow, slow_url) = fake_miner("slow", &provider);

    // Keys for the two misbehaving miners, funded by alice.
    let (kr, pw) = funded_keyring(dir.path(), &rpc, h, &["garbage", "slow"]);

    // The subnet, and bad input for it.
    fails_with(
        &[
            "--rpc", &rpc, "subnet", "create", "--name", "Chat", "--task", "chat", "--from",
            "alice", "--home", h,
        ],
        "must be 1 to 32 characters",
    );
    fails_with(
        &[
            "--rpc", &rpc, "subnet", "create", "--name", "chat", "--task", "chat", "--kappa",
            "1.5", "--from", "alice", "--home", h,
        ],
        "between 0 and 1",
    );
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
        "--immunity-period",
        "10000",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    assert_eq!(created["outcome"]["status"], "success", "{created}");
    // Read-only commands find the node from the devnet's home, as `tx` does.
    let listed = ok_json(&["--json", "subnet", "list", "--home", h]);
    assert_eq!(listed[0]["name"], "chat", "{listed}");
    fails_with(
        &["--rpc", &rpc, "subnet", "show", "nope"],
        "no subnet with id or name",
    );

    // Miners: the devnet's provider (alice), the garbage one and the slow one.
    register_neuron(
        &rpc,
        "chat",
        "miner",
        &provider,
        &["--from", "alice", "--home", h],
    );
    for (name, url) in [("garbage", &garbage_url), ("slow", &slow_url)] {
        register_neuron(
            &rpc,
            "chat",
            "miner",
            url,
            &["--from", name, "--keyring-dir", &kr, "--password-file", &pw],
        );
    }
    // Registering twice is refused with a reason.
    fails_with(
        &[
            "--json",
            "--rpc",
            &rpc,
            "neuron",
            "register",
            "--subnet",
            "chat",
            "--role",
            "miner",
            "--endpoint",
            &provider,
            "--from",
            "alice",
            "--home",
            h,
        ],
        "already registered",
    );

    // Validators bob and carol, with stake, score the miners round after round.
    staked_validators(&rpc, h, "chat", &["bob", "carol"]);
    let validators = run_validators(dir.path(), &rpc, h, "chat", &["bob", "carol"], "3");
    // Wait until both validators have revealed weights from at least two rounds, then for an
    // epoch after that: its incentive reflects their measurements.
    let view = wait_for_scored_epoch(&rpc, "chat", &validators, Duration::from_secs(900));
    let (good, bad, slow) = (
        uid_at(&view, &provider),
        uid_at(&view, &garbage_url),
        uid_at(&view, &slow_url),
    );
    // The epoch's event is stored with its block.
    let at = view["subnet"]["last_epoch_height"]
        .as_u64()
        .unwrap()
        .to_string();
    let events = ok_json(&["--json", "--rpc", &rpc, "query", "events", &at]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "subnets.epoch"),
        "{events}"
    );
    let incentive = |uid: usize| view["neurons"][uid]["incentive"].as_u64().unwrap();
    eprintln!(
        "incentive: good {} slow {} garbage {}",
        incentive(good),
        incentive(slow),
        incentive(bad)
    );
    assert!(incentive(good) > incentive(slow), "{view}");
    assert!(incentive(good) > incentive(bad), "{view}");
    assert!(incentive(slow) > incentive(bad), "{view}");
    // Both validators hold permits and have been paid dividends.
    for n in view["neurons"].as_array().unwrap() {
        if n["role"] == "validator" {
            assert!(n["permit"].as_bool().unwrap(), "{n}");
            assert_ne!(n["total_emission"], "0", "{n}");
        }
    }
    let paid = ok_json(&["--json", "--rpc", &rpc, "subnet", "emissions", "chat"]);
    assert!(
        paid.as_array().unwrap().iter().any(|e| e["minted"] != "0"),
        "{paid}"
    );

    // Each validator kept a history of its scores, the good miner scored above the others.
    for (_, history) in &validators {
        let scored = scored_round(history, 3);
        let score = |uid: usize| miner_score(&scored, uid, "score");
        assert!(
            score(good) > score(bad) && score(good) > score(slow),
            "{scored}"
        );
    }
    drop(validators);

    // The gateway routes `"model": "chat"` by incentive: the good miner serves most requests.
    let body = br#"{"model":"chat","max_tokens":4,"temperature":0,"messages":[{"role":"user","content":"Say hi."}]}"#;
    let start_wait = Instant::now();
    loop {
        let (status, _, table) = http(&gateway, "GET", "/v1/router", Some(&api_key), b"");
        assert_eq!(status, 200, "{table}");
        let table: Value = serde_json::from_str(&table).unwrap();
        let knows = table["providers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["subnets"].as_array().is_some_and(|s| !s.is_empty()))
            .count();
        if knows == 3 {
            break;
        }
        assert!(start_wait.elapsed() < Duration::from_secs(30), "{table}");
        std::thread::sleep(Duration::from_millis(500));
    }
    for _ in 0..30 {
        let (status, _, answer) = http(
            &gateway,
            "POST",
            "/v1/chat/completions",
            Some(&api_key),
            body,
        );
        assert_eq!(status, 200, "{answer}");
    }
    let (_, _, table) = http(&gateway, "GET", "/v1/router", Some(&api_key), b"");
    let table: Value = serde_json::from_str(&table).unwrap();
    let served = |url: &str| {
        table["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["url"] == url)
            .unwrap()["served"]
            .as_u64()
            .unwrap()
    };
    let (g, s, b) = (served(&provider), served(&slow_url), served(&garbage_url));
    eprintln!("served: good {g} slow {s} garbage {b}");
    assert_eq!(g + s + b, 30, "{table}");
    assert!(g > s && g > b, "{table}");
    assert_eq!(b, 0, "answers without a valid receipt are never served");

    refuses_loopback_miners_outside_a_devnet(dir.path(), &rpc, h);
}

/// Anyone can register an endpoint, so outside a devnet a validator and a gateway do not call
/// miners at loopback or private addresses (a blind SSRF otherwise): the validator scores them
/// 0 with the reason, and the gateway does not route to them.
fn refuses_loopback_miners_outside_a_devnet(dir: &std::path::Path, rpc: &str, h: &str) {
    let history = dir.join("strict.jsonl");
    let out = support::hibana(&[
        "--rpc",
        rpc,
        "validator",
        "run",
        "--subnet",
        "chat",
        "--from",
        "bob",
        "--home",
        h,
        "--challenges",
        "1",
        "--rounds",
        "1",
        "--history",
        history.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let round: Value = serde_json::from_str(
        std::fs::read_to_string(&history)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(round["skipped"], "no miner earned a score", "{round}");
    let scores = round["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 3, "{round}");
    for s in scores {
        assert_eq!(s["score"], 0.0, "{s}");
        assert!(
            s["errors"][0]
                .as_str()
                .unwrap()
                .contains("only public addresses"),
            "{s}"
        );
    }

    let gw_home = dir.join("strict-gateway");
    let key = gateway_key(&gw_home, "strict");
    let (_gw, info) = support::start(&[
        "--json",
        "gateway",
        "--home",
        gw_home.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
        "--chain",
        rpc,
    ]);
    let gw = info["gateway"].as_str().unwrap();
    // Give the gateway time for several chain refreshes before looking.
    std::thread::sleep(Duration::from_secs(3));
    let (status, _, table) = http(gw, "GET", "/v1/router", Some(&key), b"");
    assert_eq!(status, 200, "{table}");
    let table: Value = serde_json::from_str(&table).unwrap();
    assert_eq!(table["providers"].as_array().unwrap().len(), 0, "{table}");
    let (status, _, answer) = http(
        gw,
        "POST",
        "/v1/chat/completions",
        Some(&key),
        br#"{"model":"chat","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_ne!(status, 200, "{answer}");
}
