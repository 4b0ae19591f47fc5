//! End-to-end: Solidity audits on the network. `hibana audit --remote` audits through the
//! devnet's gateway and pays with the API key; `--explain` adds explanations written by the chat
//! model; an `audit` subnet's validators score three miners (the devnet's provider, one that
//! flags noise, one that finds nothing) with generated challenges and pay the real auditor most.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;

mod support;

use support::{
    Devnet, fails_with, fake_miner, funded_keyring, hibana, http, miner_score, ok_json,
    register_neuron, run_validators, scored_round, staked_validators, start_devnet, uid_at,
    wait_for_scored_epoch,
};

const VULNERABLE: &str = "pragma solidity ^0.4.24;

contract Bank {
    mapping(address => uint256) balances;

    function deposit() public payable {
        balances[msg.sender] += msg.value;
    }

    function withdraw() public {
        uint256 amount = balances[msg.sender];
        require(msg.sender.call.value(amount)());
        balances[msg.sender] = 0;
    }
}
";

/// (rule, line) of every finding in a `--format json` document.
fn findings(doc: &Value) -> Vec<(String, u64)> {
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["findings"].as_array().unwrap().iter())
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_network_audits_explains_and_pays_the_better_auditor() {
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
    let contract = dir.path().join("bank.sol");
    std::fs::write(&contract, VULNERABLE).unwrap();
    let c = contract.to_str().unwrap();

    // --remote: the same findings as a local audit, paid by the devnet's demo key.
    let local = hibana(&["audit", "--format", "json", c]);
    let local: Value = serde_json::from_slice(&local.stdout).unwrap();
    assert!(!findings(&local).is_empty(), "{local}");
    let remote = hibana(&["audit", "--remote", "--home", h, "--format", "json", c]);
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(remote.status.success(), "{stderr}");
    let remote_doc: Value = serde_json::from_slice(&remote.stdout).unwrap();
    assert_eq!(findings(&remote_doc), findings(&local));
    assert!(stderr.contains("audited by provider"), "{stderr}");
    let (_, _, usage) = http(&gateway, "GET", "/v1/usage", Some(&api_key), b"");
    let usage: Value = serde_json::from_str(&usage).unwrap();
    assert!(usage["usage"]["requests"].as_u64().unwrap() >= 1, "{usage}");
    assert!(
        usage["usage"]["prompt_tokens"].as_u64().unwrap() > 50,
        "{usage}"
    );
    // --fail-on applies to remote findings as to local ones.
    let gated = hibana(&["audit", "--remote", "--home", h, "--fail-on", "high", c]);
    assert_eq!(gated.status.code(), Some(1));
    let text = String::from_utf8_lossy(&gated.stdout);
    assert!(text.contains("reentrancy"), "{text}");

    // --explain: every finding gets a generated explanation, labelled with the model.
    let explained = hibana(&["audit", "--explain", "--home", h, "--format", "json", c]);
    assert!(
        explained.status.success(),
        "{}",
        String::from_utf8_lossy(&explained.stderr)
    );
    let explain_log = String::from_utf8_lossy(&explained.stderr).to_string();
    let explained: Value = serde_json::from_slice(&explained.stdout).unwrap();
    assert_eq!(findings(&explained), findings(&local));
    for f in explained["files"][0]["findings"].as_array().unwrap() {
        let x = &f["explanation"];
        assert_eq!(x["generated"], true, "{f}\n{explain_log}");
        assert!(x["model"].as_str().unwrap().contains("smollm2"), "{f}");
        assert!(x["text"].as_str().unwrap().len() > 20, "{f}");
    }

    // Bad input: a wrong key, a binary file (never sent), an unreachable gateway, empty source.
    fails_with(
        &[
            "audit",
            "--remote",
            "--gateway",
            &gateway,
            "--api-key",
            "sk-wrong",
            c,
        ],
        "401",
    );
    let binary = dir.path().join("blob.sol");
    std::fs::write(&binary, [0u8, 159, 146, 150]).unwrap();
    let out = hibana(&["audit", "--remote", "--home", h, binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("binary"));
    fails_with(
        &[
            "audit",
            "--remote",
            "--gateway",
            "http://127.0.0.1:9",
            "--api-key",
            "k",
            c,
        ],
        "cannot reach the gateway",
    );
    let (status, _, body) = http(
        &gateway,
        "POST",
        "/v1/audit",
        Some(&api_key),
        br#"{"model":"audit","source":"   "}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("source is empty"), "{body}");
    let (status, _, _) = http(&gateway, "POST", "/v1/audit", None, b"{}");
    assert_eq!(status, 401);

    // The audit subnet: the real auditor, a noisy one and a silent one.
    let created = ok_json(&[
        "--json",
        "--rpc",
        &rpc,
        "subnet",
        "create",
        "--name",
        "solidity",
        "--task",
        "audit",
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
    let (_noisy, noisy_url) = fake_miner("noisy-auditor", &provider);
    let (_silent, silent_url) = fake_miner("silent-auditor", &provider);
    let (kr, pw) = funded_keyring(dir.path(), &rpc, h, &["noisy", "silent"]);
    let real = register_neuron(
        &rpc,
        "solidity",
        "miner",
        &provider,
        &["--from", "alice", "--home", h],
    );
    assert_eq!(real["outcome"]["status"], "success", "{real}");
    for (name, url) in [("noisy", &noisy_url), ("silent", &silent_url)] {
        register_neuron(
            &rpc,
            "solidity",
            "miner",
            url,
            &["--from", name, "--keyring-dir", &kr, "--password-file", &pw],
        );
    }
    staked_validators(&rpc, h, "solidity", &["bob", "carol"]);
    let validators = run_validators(dir.path(), &rpc, h, "solidity", &["bob", "carol"], "6");
    let view = wait_for_scored_epoch(&rpc, "solidity", &validators, Duration::from_secs(600));
    let (good, noisy, silent) = (
        uid_at(&view, &provider),
        uid_at(&view, &noisy_url),
        uid_at(&view, &silent_url),
    );
    let incentive = |uid: usize| view["neurons"][uid]["incentive"].as_u64().unwrap();
    eprintln!(
        "incentive: real {} noisy {} silent {}",
        incentive(good),
        incentive(noisy),
        incentive(silent)
    );
    assert!(incentive(good) > incentive(noisy), "{view}");
    assert!(incentive(good) > incentive(silent), "{view}");
    // The histories show why: the real auditor's F1 on the planted flaws is near perfect.
    for (_, history) in &validators {
        let scored = scored_round(history, 3);
        let correctness = |uid: usize| miner_score(&scored, uid, "correctness");
        assert!(correctness(good) >= 0.95, "{scored}");
        assert!(correctness(noisy) < 0.3, "{scored}");
        assert_eq!(correctness(silent), 0.0, "{scored}");
    }
    drop(validators);

    // Through the subnet, the gateway only serves answers with a valid receipt: the fakes have
    // none, so the audit still comes from the real auditor.
    let subnet = hibana(&[
        "audit",
        "--remote",
        "--home",
        h,
        "--audit-model",
        "solidity",
        "--format",
        "json",
        c,
    ]);
    assert!(
        subnet.status.success(),
        "{}",
        String::from_utf8_lossy(&subnet.stderr)
    );
    let subnet: Value = serde_json::from_slice(&subnet.stdout).unwrap();
    assert_eq!(findings(&subnet), findings(&local));
}
