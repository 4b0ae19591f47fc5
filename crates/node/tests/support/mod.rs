//! Helpers shared by the end-to-end tests: child processes, CLI calls, raw HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use serde_json::Value;

pub(crate) mod nodes;

/// The `hibana` binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_hibana");

/// A child process, killed when dropped.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and returns it with the JSON line it prints when ready.
pub(crate) fn start_command(cmd: &mut Command) -> (Proc, Value) {
    let mut child = cmd
        .env("HIBANA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{cmd:?} printed {line:?}: {e}"));
    (Proc(child), info)
}

/// Starts `hibana ARGS` and returns it with the JSON line it prints when ready.
pub(crate) fn start(args: &[&str]) -> (Proc, Value) {
    start_command(Command::new(BIN).args(args))
}

/// Runs `hibana ARGS` to completion, ignoring the caller's node and home settings.
pub(crate) fn hibana(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("HIBANA_RPC")
        .env_remove("HIBANA_HOME")
        .output()
        .expect("run hibana")
}

/// Creates the API key `name` in the gateway home `home`, billed to a fresh account; returns its
/// secret.
pub(crate) fn gateway_key(home: &std::path::Path, name: &str) -> String {
    let account = hibana_types::SecretKey::generate()
        .public_key()
        .address()
        .to_string();
    let created = ok_json(&[
        "--json",
        "gateway",
        "--home",
        home.to_str().unwrap(),
        "keys",
        "create",
        name,
        "--account",
        &account,
    ]);
    created["key"].as_str().unwrap().to_string()
}

/// Runs `hibana ARGS`, which must succeed and print JSON.
pub(crate) fn ok_json(args: &[&str]) -> Value {
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

/// Runs `hibana ARGS`, which must fail, without panicking, saying `needle`.
pub(crate) fn fails_with(args: &[&str], needle: &str) {
    let out = hibana(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "hibana {args:?} should fail: {text}");
    assert!(
        text.contains(needle),
        "hibana {args:?}: expected {needle:?} in {text:?}"
    );
    assert!(
        !text.contains("panicked"),
        "hibana {args:?} panicked: {text}"
    );
}

/// One HTTP/1.1 request; returns the status, the headers (lowercased names) and the body.
pub(crate) fn http(
    url: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// A POST request (see [`http`]).
pub(crate) fn post(
    url: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    http(url, "POST", path, key, body)
}

/// Starts `tests/support/fake_miner.py MODE UPSTREAM`; returns it and its URL.
pub(crate) fn fake_miner(mode: &str, upstream: &str) -> (Proc, String) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_miner.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(mode).arg(upstream);
    let (p, info) = start_command(&mut cmd);
    (p, info["url"].as_str().unwrap().to_string())
}

/// A keyring in `dir` with a passphrase-protected key per name, each funded with 50 HIB by the
/// devnet's alice; returns the `--keyring-dir` and `--password-file` arguments.
pub(crate) fn funded_keyring(
    dir: &std::path::Path,
    rpc: &str,
    home: &str,
    names: &[&str],
) -> (String, String) {
    let keyring = dir.join("keyring").to_str().unwrap().to_string();
    let pass = dir.join("pass");
    std::fs::write(&pass, "miner passphrase\n").unwrap();
    let pw = pass.to_str().unwrap().to_string();
    for name in names {
        let created = ok_json(&[
            "--json",
            "wallet",
            "new",
            name,
            "--keyring-dir",
            &keyring,
            "--password-file",
            &pw,
        ]);
        let address = created["address"].as_str().unwrap().to_string();
        ok_json(&[
            "--json", "--rpc", rpc, "tx", "transfer", "--home", home, "--from", "alice", "--to",
            &address, "--amount", "50HIB",
        ]);
    }
    (keyring, pw)
}

/// Registers a neuron of `subnet`; `signer` names the key (`--from NAME --home H`, or a keyring).
pub(crate) fn register_neuron(
    rpc: &str,
    subnet: &str,
    role: &str,
    endpoint: &str,
    signer: &[&str],
) -> Value {
    let mut args = vec![
        "--json",
        "--rpc",
        rpc,
        "neuron",
        "register",
        "--subnet",
        subnet,
        "--role",
        role,
        "--endpoint",
        endpoint,
    ];
    args.extend_from_slice(signer);
    ok_json(&args)
}

/// Stakes 1000 HIB for each devnet account named and registers it as a validator of `subnet`.
pub(crate) fn staked_validators(rpc: &str, home: &str, subnet: &str, names: &[&str]) {
    for name in names {
        ok_json(&[
            "--json", "--rpc", rpc, "tx", "stake", "--amount", "1000HIB", "--from", name, "--home",
            home,
        ]);
        register_neuron(
            rpc,
            subnet,
            "validator",
            "http://127.0.0.1:9",
            &["--from", name, "--home", home],
        );
    }
}

/// Starts `hibana validator run` for each name; returns the processes and their history files.
pub(crate) fn run_validators(
    dir: &std::path::Path,
    rpc: &str,
    home: &str,
    subnet: &str,
    names: &[&str],
    challenges: &str,
) -> Vec<(Proc, std::path::PathBuf)> {
    names
        .iter()
        .map(|name| {
            let history = dir.join(format!("{name}.jsonl"));
            let child = Command::new(BIN)
                .args([
                    "--rpc",
                    rpc,
                    "validator",
                    "run",
                    "--subnet",
                    subnet,
                    "--from",
                    name,
                    "--home",
                    home,
                    "--challenges",
                    challenges,
                    "--timeout-secs",
                    "20",
                    "--history",
                    history.to_str().unwrap(),
                    // The devnet's miners are all on loopback.
                    "--allow-private-endpoints",
                ])
                .env("HIBANA_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            (Proc(child), history)
        })
        .collect()
}

/// Rounds in a validator's history that revealed weights.
pub(crate) fn revealed_rounds(history: &std::path::Path) -> usize {
    std::fs::read_to_string(history)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["reveal_tx"].is_string() && r["skipped"].is_null())
        .count()
}

/// Waits until every validator revealed weights in two rounds, then for the next epoch of
/// `subnet`; returns the subnet's view after it.
pub(crate) fn wait_for_scored_epoch(
    rpc: &str,
    subnet: &str,
    validators: &[(Proc, std::path::PathBuf)],
    limit: Duration,
) -> Value {
    let deadline = std::time::Instant::now() + limit;
    let epochs = || {
        ok_json(&["--json", "--rpc", rpc, "subnet", "show", subnet])["subnet"]["epochs"]
            .as_u64()
            .unwrap()
    };
    while validators.iter().any(|(_, h)| revealed_rounds(h) < 2) {
        assert!(
            std::time::Instant::now() < deadline,
            "validators did not reveal weights in time"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let after = epochs() + 1;
    while epochs() < after {
        assert!(std::time::Instant::now() < deadline, "no epoch ran in time");
        std::thread::sleep(Duration::from_secs(1));
    }
    ok_json(&["--json", "--rpc", rpc, "subnet", "show", subnet])
}

/// The uid of the neuron serving at `endpoint` in a `subnet show` view.
pub(crate) fn uid_at(view: &Value, endpoint: &str) -> usize {
    view["neurons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["endpoint"] == endpoint)
        .unwrap_or_else(|| panic!("no neuron at {endpoint}: {view}"))["uid"]
        .as_u64()
        .unwrap() as usize
}

/// A running `hibana devnet` and the addresses it printed.
pub(crate) struct Devnet {
    /// The process (stopped when dropped).
    pub(crate) process: Proc,
    /// JSON-RPC URL.
    pub(crate) rpc: String,
    /// Gateway URL.
    pub(crate) gateway: String,
    /// The demo API key.
    pub(crate) api_key: String,
    /// The provider's URL.
    pub(crate) provider: String,
}

/// The command line of `hibana devnet` with its AI side in `home` on free ports with
/// `block_ms` blocks.
pub(crate) fn devnet_command(home: &str, block_ms: u64) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--json",
        "devnet",
        "--home",
        home,
        "--rpc-addr",
        "127.0.0.1:0",
        "--gateway-addr",
        "127.0.0.1:0",
        "--block-time-ms",
        &block_ms.to_string(),
    ]);
    cmd
}

/// Starts `hibana devnet` in `home` on free ports with 250 ms blocks and without the demo
/// subnets (a test builds the network it checks), plus `extra` flags.
pub(crate) fn start_devnet(home: &str, extra: &[&str]) -> Devnet {
    let mut cmd = devnet_command(home, 250);
    cmd.arg("--no-demo").args(extra);
    let (process, info) = start_command(&mut cmd);
    let field = |k: &str| info[k].as_str().unwrap_or_default().to_string();
    Devnet {
        rpc: field("rpc"),
        gateway: field("gateway"),
        api_key: field("api_key"),
        provider: field("provider"),
        process,
    }
}

/// The first round in a validator's history that scored `miners` miners.
pub(crate) fn scored_round(history: &std::path::Path, miners: usize) -> Value {
    std::fs::read_to_string(history)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["scores"].as_array().is_some_and(|s| s.len() == miners))
        .expect("a scored round")
}

/// A field (`score`, `correctness`, …) of one miner's score in a round.
pub(crate) fn miner_score(round: &Value, uid: usize, field: &str) -> f64 {
    round["scores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["uid"] == uid)
        .unwrap()[field]
        .as_f64()
        .unwrap()
}

/// A file of the zkml crate's test data (models, calibration and inputs).
pub(crate) fn zk_testdata(name: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../zkml/testdata")
        .join(name)
        .display()
        .to_string()
}

/// `hibana zk compile` of the test model `onnx`, calibrated on `calibration` (both test data
/// names), to `zkm` for the default proof system; returns the compile summary.
pub(crate) fn zk_compile(onnx: &str, calibration: &str, zkm: &str) -> Value {
    ok_json(&[
        "--json",
        "zk",
        "compile",
        &zk_testdata(onnx),
        "--calibration",
        &zk_testdata(calibration),
        "-o",
        zkm,
    ])
}

/// The balance of an account (address or key name) in base units.
pub(crate) fn balance(home: &str, name: &str) -> u128 {
    let v = ok_json(&["--json", "query", "account", name, "--home", home]);
    v["balance"].as_str().unwrap().parse().unwrap()
}

/// An amount as JSON shows it (a string of base units).
pub(crate) fn amount(v: &Value) -> u128 {
    v.as_str().unwrap().parse().unwrap()
}

/// Runs a transaction command that must commit; returns its fee.
pub(crate) fn tx(args: &[&str]) -> u128 {
    let receipt = ok_json(args);
    assert_eq!(
        receipt["outcome"]["status"], "success",
        "{args:?}: {receipt}"
    );
    amount(&receipt["fee"])
}

/// The devnet's height.
pub(crate) fn height(home: &str) -> u64 {
    ok_json(&["--json", "status", "--home", home])["height"]
        .as_u64()
        .unwrap()
}

/// Waits until `n` more blocks are committed.
pub(crate) fn wait_blocks(home: &str, n: u64) {
    let target = height(home) + n;
    for _ in 0..200 {
        if height(home) >= target {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the devnet did not reach height {target}");
}

/// Starts `hibana devnet --no-ai` (the chain alone) in `home` on a free port with 200 ms blocks.
pub(crate) fn chain_devnet(home: &str) -> Proc {
    start_command(&mut chain_devnet_command(home, 200)).0
}

/// The command line of `hibana devnet --no-ai` in `home` on a free port with `block_ms`
/// blocks, to add environment to before starting it with [`start_command`].
pub(crate) fn chain_devnet_command(home: &str, block_ms: u64) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--json",
        "devnet",
        "--home",
        home,
        "--rpc-addr",
        "127.0.0.1:0",
        "--block-time-ms",
        &block_ms.to_string(),
        "--no-ai",
    ]);
    cmd
}
