//! End-to-end: a real `hibana devnet` process on an OS-chosen port, driven through the CLI and
//! JSON-RPC the way a user would, including `kill -9` in the middle of a stream of transfers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use hibana_rpc::{BlockId, RpcClient};
use hibana_types::{Address, Amount, Hash, Message, SecretKey, Transaction, Transfer, TxStatus};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hibana");

/// A devnet process that is killed when dropped.
struct Devnet {
    child: Child,
    rpc: String,
    info: Value,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_devnet(home: &Path) -> Devnet {
    start_devnet_with(home, 200, None)
}

/// A devnet with `block_ms` between blocks, its log (at info) appended to `log` if given.
fn start_devnet_with(home: &Path, block_ms: u64, log: Option<&Path>) -> Devnet {
    let (level, stderr) = match log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open the devnet log");
            ("info", Stdio::from(file))
        }
        None => ("warn", Stdio::inherit()),
    };
    let mut child = Command::new(BIN)
        .args(["--json", "devnet", "--home"])
        .arg(home)
        .args(["--rpc-addr", "127.0.0.1:0", "--block-time-ms"])
        .arg(block_ms.to_string())
        .arg("--no-ai")
        .env("HIBANA_LOG", level)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start hibana devnet");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read devnet banner");
    let info: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("banner {line:?}: {e}"));
    let rpc = info["rpc"].as_str().expect("rpc url").to_string();
    Devnet { child, rpc, info }
}

fn account(info: &Value, name: &str) -> Address {
    let accounts = info["accounts"].as_array().expect("accounts");
    let entry = accounts
        .iter()
        .find(|a| a["name"] == name)
        .expect("demo account");
    entry["address"]
        .as_str()
        .expect("address")
        .parse()
        .expect("valid address")
}

fn hibana(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("HIBANA_RPC")
        .output()
        .expect("run hibana")
}

fn ok_json(args: &[&str]) -> Value {
    let out = hibana(args);
    assert!(
        out.status.success(),
        "hibana {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn fails_with(args: &[&str], needle: &str) {
    let out = hibana(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "hibana {args:?} should fail");
    assert!(
        stderr.contains(needle),
        "hibana {args:?}: expected {needle:?} in {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked"),
        "hibana {args:?} panicked: {stderr}"
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn devnet_wallet_transfer_and_queries_through_cli_and_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let home_s = home.to_str().unwrap();
    let net = start_devnet(&home);
    let rpc = net.rpc.as_str();
    let alice = account(&net.info, "alice");

    // A new encrypted wallet.
    let keyring = dir.path().join("keyring");
    let keyring_s = keyring.to_str().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let pass_s = pass.to_str().unwrap();
    let created = ok_json(&[
        "--json",
        "wallet",
        "new",
        "dave",
        "--keyring-dir",
        keyring_s,
        "--password-file",
        pass_s,
    ]);
    let dave: Address = created["address"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        created["mnemonic"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        24
    );
    let listed = ok_json(&["--json", "wallet", "list", "--keyring-dir", keyring_s]);
    assert_eq!(listed[0]["name"], "dave");
    fails_with(
        &[
            "wallet",
            "new",
            "dave",
            "--keyring-dir",
            keyring_s,
            "--password-file",
            pass_s,
        ],
        "already exists",
    );

    // alice → dave through the CLI, waiting for the receipt.
    let receipt = ok_json(&[
        "--json",
        "tx",
        "transfer",
        "--home",
        home_s,
        "--from",
        "alice",
        "--to",
        &dave.to_string(),
        "--amount",
        "2.5HIB",
    ]);
    assert_eq!(receipt["outcome"]["status"], "success");
    let tx_hash = receipt["tx_hash"].as_str().unwrap().to_string();

    // The CLI and the RPC agree, and the RPC answer verifies against the block's state root.
    let view = ok_json(&[
        "--json",
        "--rpc",
        rpc,
        "query",
        "account",
        &dave.to_string(),
    ]);
    assert_eq!(view["balance"], "2500000000");
    let client = RpcClient::new(rpc).unwrap();
    let runtime = rt();
    let verified = runtime.block_on(client.account_verified(&dave)).unwrap();
    assert_eq!(verified.balance, Amount(2_500_000_000));
    let tx_view = ok_json(&["--json", "--rpc", rpc, "query", "tx", &tx_hash]);
    assert_eq!(
        tx_view["tx"]["tx"]["signer"].as_str().map(str::len),
        Some(64)
    );
    let block = ok_json(&[
        "--json",
        "--rpc",
        rpc,
        "query",
        "block",
        &receipt["height"].to_string(),
    ]);
    assert_eq!(block["block"]["txs"].as_array().unwrap().len(), 1);
    let status = ok_json(&["--json", "--rpc", rpc, "status"]);
    assert_eq!(status["chain_id"], "hibana-devnet");
    assert_eq!(status["validators"].as_array().unwrap().len(), 1);

    // Committed headers arrive over the WebSocket subscription, in order.
    let mut heads = runtime
        .block_on(hibana_rpc::HeadSubscription::connect(rpc))
        .unwrap();
    let first = runtime.block_on(heads.next()).unwrap().unwrap();
    let second = runtime.block_on(heads.next()).unwrap().unwrap();
    assert_eq!(second.height, first.height + 1);
    assert_eq!(second.parent_hash, first.hash());

    // dave pays back from the encrypted keyring; a wrong passphrase is refused.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "nope\n").unwrap();
    fails_with(
        &[
            "--rpc",
            rpc,
            "tx",
            "transfer",
            "--keyring-dir",
            keyring_s,
            "--password-file",
            wrong.to_str().unwrap(),
            "--from",
            "dave",
            "--to",
            &alice.to_string(),
            "--amount",
            "1HIB",
        ],
        "wrong passphrase",
    );
    let back = ok_json(&[
        "--json",
        "--rpc",
        rpc,
        "tx",
        "transfer",
        "--keyring-dir",
        keyring_s,
        "--password-file",
        pass_s,
        "--from",
        "dave",
        "--to",
        &alice.to_string(),
        "--amount",
        "1HIB",
    ]);
    assert_eq!(back["outcome"]["status"], "success");
    let dave_after = runtime.block_on(client.account_verified(&dave)).unwrap();
    assert_eq!(dave_after.balance, Amount(1_500_000_000 - 1_000));
    assert_eq!(dave_after.nonce, 1);

    // Staking from the dev keyring moves balance into stake.
    let staked = ok_json(&[
        "--json", "tx", "stake", "--home", home_s, "--from", "bob", "--amount", "10HIB",
    ]);
    assert_eq!(staked["outcome"]["status"], "success");
    let bob = ok_json(&["--json", "query", "account", "bob", "--home", home_s]);
    assert_eq!(bob["stake"], "10000000000");

    // Unjail is for a jailed validator: an account that is none is refused with the reason.
    fails_with(
        &["tx", "unjail", "--home", home_s, "--from", "bob"],
        "is not a validator",
    );

    // Bad input: clear errors, nothing changes.
    let before = runtime.block_on(client.account_verified(&alice)).unwrap();
    fails_with(
        &[
            "tx",
            "transfer",
            "--home",
            home_s,
            "--from",
            "alice",
            "--to",
            "bob",
            "--amount",
            "1.0000000001HIB",
        ],
        "more than 9 decimal places",
    );
    fails_with(
        &[
            "tx", "transfer", "--home", home_s, "--from", "alice", "--to", "bob", "--amount",
            "5ETH",
        ],
        "unknown unit",
    );
    fails_with(
        &[
            "tx",
            "transfer",
            "--home",
            home_s,
            "--from",
            "alice",
            "--to",
            "hib1notanaddress",
            "--amount",
            "1HIB",
        ],
        "invalid address",
    );
    fails_with(
        &[
            "tx", "transfer", "--home", home_s, "--from", "mallory", "--to", "bob", "--amount",
            "1HIB",
        ],
        "no development key named",
    );
    fails_with(
        &[
            "tx",
            "transfer",
            "--home",
            home_s,
            "--from",
            "alice",
            "--to",
            "bob",
            "--amount",
            "999999999HIB",
        ],
        "insufficient funds",
    );
    fails_with(&["--rpc", rpc, "query", "tx", "zz"], "invalid hash");
    fails_with(
        &["--rpc", "http://127.0.0.1:1", "status"],
        "cannot reach the node",
    );
    let after = runtime.block_on(client.account_verified(&alice)).unwrap();
    assert_eq!(before.balance, after.balance);
    assert_eq!(before.nonce, after.nonce);

    // Raw JSON-RPC misuse gets JSON-RPC errors; the node keeps serving.
    let http = |body: &str| http_request(rpc, "POST", body);
    assert!(http("{not json").contains("-32700"));
    assert!(http(r#"{"jsonrpc":"2.0","id":1,"method":"chain_nope"}"#).contains("-32601"));
    assert!(
        http(r#"{"jsonrpc":"2.0","id":1,"method":"tx_submit","params":["00ff"]}"#)
            .contains("does not decode")
    );
    let forged = Transaction {
        chain_id: "another-chain".into(),
        signer: SecretKey::generate().public_key(),
        nonce: 0,
        fee: Amount(1_000),
        messages: vec![Message::Transfer(Transfer {
            to: alice,
            amount: Amount(1),
        })],
    }
    .sign(&SecretKey::generate());
    let err = runtime
        .block_on(client.submit(&forged))
        .unwrap_err()
        .to_string();
    assert!(err.contains("wrong chain id"), "{err}");
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tx_submit","params":["{}"]}}"#,
        "0".repeat(2 << 20)
    );
    assert!(!http(&huge).contains("\"result\""));
    // A subnet is named by a number as well as by a string.
    for params in ["[0]", r#"["0"]"#] {
        let answer = http(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"subnet_get","params":{params}}}"#
        ));
        assert!(answer.contains("\"result\""), "{params}: {answer}");
    }
    // Read-only commands find the node from the devnet's home.
    let status = ok_json(&["--json", "status", "--home", home_s]);
    assert_eq!(status["chain_id"], "hibana-devnet");
    let block = ok_json(&["--json", "query", "block", "1", "--home", home_s]);
    assert!(block.get("hash").is_some(), "{block}");
    // So do the model network's: every command that talks to a node takes --home.
    let created = ok_json(&[
        "--json", "subnet", "create", "--name", "homely", "--task", "chat", "--from", "alice",
        "--home", home_s,
    ]);
    assert_eq!(created["outcome"]["status"], "success", "{created}");
    let subnets = ok_json(&["--json", "subnet", "list", "--home", home_s]);
    assert!(
        subnets
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "homely"),
        "{subnets}"
    );
    let shown = ok_json(&["--json", "subnet", "show", "homely", "--home", home_s]);
    assert_eq!(shown["subnet"]["task"], "chat", "{shown}");
    // No neuron has registered, so no validator has set weights.
    for args in [
        &["neuron", "list", "--subnet", "homely"][..],
        &["weights", "show", "--subnet", "homely"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--json", "--home", home_s]);
        assert_eq!(ok_json(&args), serde_json::json!([]), "{args:?}");
    }
    let emissions = ok_json(&["--json", "subnet", "emissions", "homely", "--home", home_s]);
    assert!(emissions.is_array(), "{emissions}");
    // Output into a pipe whose reader is gone (`hibana status | head -1`) ends quietly.
    let mut piped = Command::new(BIN)
        .args(["status", "--home", home_s])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(piped.stdout.take());
    let out = piped.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    let metrics = http_request(rpc, "GET /metrics", "");
    assert!(metrics.contains("hibana_height"), "{metrics}");
    assert!(metrics.contains("hibana_txs_rejected_total"), "{metrics}");
    assert_eq!(
        runtime.block_on(client.status()).unwrap().chain_id,
        "hibana-devnet"
    );
}

#[test]
fn ctrl_c_stops_cleanly_and_the_devnet_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let mut net = start_devnet(&home);
    let client = RpcClient::new(&net.rpc).unwrap();
    let runtime = rt();
    let deadline = Instant::now() + Duration::from_secs(20);
    while runtime
        .block_on(client.status())
        .map(|s| s.height)
        .unwrap_or(0)
        < 3
    {
        assert!(Instant::now() < deadline, "no blocks");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = net.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = net.child.wait().unwrap();
    assert!(status.success(), "devnet exited with {status}");
    let height = hibana_store::Store::open(&home.join("data/chain.redb"))
        .unwrap()
        .height()
        .unwrap()
        .unwrap();
    let alice_before = account(&net.info, "alice");
    drop(net);
    let again = start_devnet(&home);
    assert_eq!(again.info["created"], false);
    assert_eq!(account(&again.info, "alice"), alice_before);
    let client = RpcClient::new(&again.rpc).unwrap();
    assert!(runtime.block_on(client.status()).unwrap().height >= height);
}

#[test]
fn kill_9_during_a_stream_of_transfers_loses_no_committed_block_or_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let net = start_devnet(&home);
    let runtime = rt();
    let client = RpcClient::new(&net.rpc).unwrap();
    let alice = hibana_node_test_key(&home, "alice");
    let bob = account(&net.info, "bob");
    let chain_id = net.info["chain_id"].as_str().unwrap().to_string();

    // Stream transfers of distinct amounts until the node is killed.
    let mut submitted: Vec<(Hash, u128)> = Vec::new();
    let mut committed_seen: BTreeMap<Hash, u64> = BTreeMap::new();
    let start = Instant::now();
    let mut nonce = 0u64;
    let mut killed_at = None;
    let mut child = net;
    while start.elapsed() < Duration::from_secs(30) {
        let amount = 1_000 + u128::from(nonce);
        let tx = Transaction {
            chain_id: chain_id.clone(),
            signer: alice.public_key(),
            nonce,
            fee: Amount(1_000),
            messages: vec![Message::Transfer(Transfer {
                to: bob,
                amount: Amount(amount),
            })],
        }
        .sign(&alice);
        match runtime.block_on(client.submit(&tx)) {
            Ok(hash) => {
                submitted.push((hash, amount));
                nonce += 1;
            }
            Err(e) => panic!("submit failed before the kill: {e}"),
        }
        if nonce.is_multiple_of(10) {
            for (hash, _) in &submitted {
                if let Ok(TxStatus::Committed { receipt }) =
                    runtime.block_on(client.tx_status(hash))
                {
                    committed_seen.insert(*hash, receipt.height);
                }
            }
        }
        if committed_seen.len() >= 40 {
            child.child.kill().unwrap();
            child.child.wait().unwrap();
            killed_at = Some(committed_seen.values().max().copied().unwrap_or(0));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let last_seen = killed_at.expect("the stream committed 40 transfers within 30 s");
    // Blocks and roots as seen before the crash.
    let store_path = home.join("data/chain.redb");
    drop(child);
    let restarted = start_devnet(&home);
    let client = RpcClient::new(&restarted.rpc).unwrap();
    let status = runtime.block_on(client.status()).unwrap();
    assert!(
        status.height >= last_seen,
        "height {} went below the last committed {last_seen}",
        status.height
    );
    for (hash, height) in &committed_seen {
        let view = runtime
            .block_on(client.tx(hash))
            .unwrap()
            .unwrap_or_else(|| panic!("committed tx {hash} lost"));
        assert_eq!(view.receipt.height, *height);
        assert!(view.receipt.is_success());
    }
    // Every block links to its parent, and the state root of each height is what its header says.
    let mut parent = Hash::ZERO;
    for h in 1..=status.height.min(last_seen + 2) {
        let block = runtime
            .block_on(client.block(Some(BlockId::Height(h))))
            .unwrap()
            .unwrap();
        assert_eq!(
            block.block.header.parent_hash, parent,
            "block {h} does not link"
        );
        parent = block.hash;
    }
    // Balances match exactly the transfers that were committed.
    let mut sent: u128 = 0;
    let mut fees: u128 = 0;
    for (hash, amount) in &submitted {
        if let Ok(Some(view)) = runtime.block_on(client.tx(hash)) {
            assert!(view.receipt.is_success());
            sent += amount;
            fees += view.receipt.fee.0;
        }
    }
    let bob_view = runtime.block_on(client.account_verified(&bob)).unwrap();
    assert_eq!(bob_view.balance.0, 1_000_000_000_000_000 + sent);
    let alice_view = runtime
        .block_on(client.account_verified(&alice.public_key().address()))
        .unwrap();
    assert_eq!(alice_view.balance.0, 1_000_000_000_000_000 - sent - fees);
    assert!(store_path.exists());
}

/// A validator killed at any moment, even between deciding a block and committing it, comes
/// back with the block it voted for: it never signs a second, conflicting vote for a height
/// (which peers would punish as an equivocation), and the chain goes on.
#[test]
fn kill_9_at_any_moment_never_makes_the_validator_vote_twice() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let log = dir.path().join("devnet.log");
    let runtime = rt();
    let height = |rpc: &str| {
        let client = RpcClient::new(rpc).unwrap();
        runtime.block_on(client.status()).map(|s| s.height).ok()
    };
    // Waits until the chain is 3 blocks past `last`.
    let wait_past = |rpc: &str, last: u64, when: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while height(rpc).unwrap_or(0) <= last + 3 {
            assert!(
                Instant::now() < deadline,
                "{when}: no new blocks after the restart\n{}",
                tail(&log)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // Kill times spread over the 20 ms block cycle (a fixed sequence, so runs compare).
    let mut phase = 7u64;
    let mut last = 0;
    for cycle in 0..15 {
        let mut net = start_devnet_with(&home, 20, Some(&log));
        wait_past(&net.rpc, last, &format!("cycle {cycle}"));
        phase = (phase * 37 + 11) % 97;
        std::thread::sleep(Duration::from_millis(phase * 3));
        last = height(&net.rpc).unwrap_or(last);
        net.child.kill().unwrap();
        net.child.wait().unwrap();
    }
    let net = start_devnet_with(&home, 20, Some(&log));
    wait_past(&net.rpc, last, "at the end");
    let text = std::fs::read_to_string(&log).unwrap();
    for bad in [
        "signed two conflicting votes",
        "decided a block this node does not have",
    ] {
        assert!(!text.contains(bad), "the log says {bad:?}\n{}", tail(&log));
    }
}

/// The last lines of a log, for a failure message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Sends one HTTP/1.1 request (`POST` to `/`, or `GET /path`) and returns the whole response.
fn http_request(url: &str, method: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let line = if method == "POST" {
        "POST /".to_string()
    } else {
        method.to_string()
    };
    let head = format!(
        "{line} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before reading an oversized body.
    let _ = stream.write_all(body.as_bytes());
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// Reads a devnet's development key the way the CLI does (the dev keyring is plaintext JSON).
fn hibana_node_test_key(home: &Path, name: &str) -> SecretKey {
    let out = hibana(&[
        "--json",
        "wallet",
        "show",
        name,
        "--home",
        home.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let path: PathBuf = home.join("dev-keyring").join(format!("{name}.json"));
    let dev: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let phrase = dev["mnemonic"].as_str().unwrap();
    derive(phrase)
}

/// SLIP-0010 derivation as the wallet does it, checked against the address the CLI shows.
fn derive(phrase: &str) -> SecretKey {
    let mnemonic = bip39::Mnemonic::parse(phrase).unwrap();
    let seed = mnemonic.to_seed("");
    let root = ed25519_dalek_bip32::ExtendedSigningKey::from_seed(&seed).unwrap();
    let path: ed25519_dalek_bip32::DerivationPath = "m/44'/7468'/0'/0'/0'".parse().unwrap();
    SecretKey::from_bytes(root.derive(&path).unwrap().signing_key.to_bytes())
}

#[test]
fn init_and_node_run_a_chain_from_a_genesis_file_and_bad_homes_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("node");
    let home_s = home.to_str().unwrap();
    let funded = SecretKey::generate().public_key().address();
    let out = ok_json(&[
        "--json",
        "init",
        "--home",
        home_s,
        "--chain-id",
        "e2e-chain",
        "--account",
        &format!("{funded}=42.5HIB"),
    ]);
    assert_eq!(out["chain_id"], "e2e-chain");
    fails_with(&["init", "--home", home_s], "already initialised");
    fails_with(
        &[
            "init",
            "--home",
            dir.path().join("x").to_str().unwrap(),
            "--account",
            "nobody=1HIB",
        ],
        "invalid address",
    );

    let mut child = Command::new(BIN)
        .args([
            "node",
            "--home",
            home_s,
            "--rpc-addr",
            "127.0.0.1:0",
            "--block-time-ms",
            "100",
        ])
        .env("HIBANA_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    let client = RpcClient::new(&url).unwrap();
    let runtime = rt();
    assert_eq!(
        runtime.block_on(client.status()).unwrap().chain_id,
        "e2e-chain"
    );
    let view = runtime.block_on(client.account_verified(&funded)).unwrap();
    assert_eq!(view.balance, Amount(42_500_000_000));
    // A second node on the same home is refused while the first runs.
    fails_with(
        &["node", "--home", home_s, "--rpc-addr", "127.0.0.1:0"],
        "Is another node running on this home?",
    );
    let _ = child.kill();
    let _ = child.wait();

    fails_with(
        &[
            "node",
            "--home",
            dir.path().join("missing").to_str().unwrap(),
        ],
        "has no genesis.json",
    );
    std::fs::write(home.join("genesis.json"), "{ corrupt").unwrap();
    fails_with(&["node", "--home", home_s], "genesis file");
    let devnet_home = dir.path().join("devnet");
    std::fs::create_dir_all(&devnet_home).unwrap();
    std::fs::write(devnet_home.join("genesis.json"), "not json").unwrap();
    fails_with(
        &[
            "devnet",
            "--home",
            devnet_home.to_str().unwrap(),
            "--rpc-addr",
            "127.0.0.1:0",
        ],
        "--reset",
    );
    let not_home = dir.path().join("precious");
    std::fs::create_dir_all(&not_home).unwrap();
    std::fs::write(not_home.join("thesis.txt"), "do not delete").unwrap();
    fails_with(
        &["devnet", "--home", not_home.to_str().unwrap(), "--reset"],
        "not a Hibana home",
    );
    assert!(not_home.join("thesis.txt").exists());
}

/// `query account --home` checks the header its proof rests on against the block's commit, and
/// keeps the validator set it verified in `<home>/light.json`; a node of another chain (its own
/// validators, the same chain id) cannot pass its state off as this chain's.
#[test]
fn query_account_checks_the_commit_and_refuses_a_node_with_other_validators() {
    let dir = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
    let (a, b) = (start_devnet(&home_a), start_devnet(&home_b));
    let alice = account(&a.info, "alice").to_string();
    let home_a_s = home_a.to_str().unwrap();
    // Let a few blocks pass on both.
    std::thread::sleep(std::time::Duration::from_millis(1500));

    let first = hibana(&["query", "account", &alice, "--home", home_a_s]);
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{first:?}");
    assert!(said.contains("first use"), "{said}");
    let trusted: Value =
        serde_json::from_slice(&std::fs::read(home_a.join("light.json")).unwrap()).unwrap();
    assert_eq!(
        trusted["validators"].as_array().unwrap().len(),
        1,
        "{trusted}"
    );
    let again = hibana(&["query", "account", &alice, "--home", home_a_s]);
    assert!(again.status.success(), "{again:?}");
    assert!(!String::from_utf8_lossy(&again.stdout).contains("first use"));

    // A client that trusts chain A's validators asks node B: refused, nothing saved.
    let client_home = dir.path().join("client");
    std::fs::create_dir_all(&client_home).unwrap();
    std::fs::copy(home_a.join("light.json"), client_home.join("light.json")).unwrap();
    let before = std::fs::read(client_home.join("light.json")).unwrap();
    fails_with(
        &[
            "--rpc",
            &b.rpc,
            "query",
            "account",
            &alice,
            "--home",
            client_home.to_str().unwrap(),
        ],
        "validators the client trusts",
    );
    assert_eq!(
        std::fs::read(client_home.join("light.json")).unwrap(),
        before
    );
    // Node B is believed by a client with no trusted set yet, for its own run only.
    let fresh = ok_json(&["--json", "--rpc", &b.rpc, "query", "account", &alice]);
    assert!(fresh["balance"].is_string(), "{fresh}");
    drop(b);
}
