//! End-to-end: the OpenAI-compatible gateway in front of real providers running real models,
//! driven by the official `openai` Python package (installed into a throwaway virtual
//! environment), plus failover when a provider dies and OpenAI-style errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_hibana");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `hibana ARGS` and returns it with the JSON line it prints when ready.
fn start(args: &[&str]) -> (Proc, Value) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("HIBANA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start hibana");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{args:?} printed {line:?}: {e}"));
    (Proc(child), info)
}

/// A virtual environment with the official `openai` package, made once per machine.
fn openai_python() -> PathBuf {
    let venv = std::env::temp_dir().join("hibana-openai-venv");
    let python = venv.join("bin/python");
    let ok = |p: &Path| {
        Command::new(p)
            .args(["-c", "import openai"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !ok(&python) {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(
            status.success(),
            "cannot create a virtual environment (python3-venv missing? run scripts/setup.sh --tests)"
        );
        let status = Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "openai>=1.40,<3",
            ])
            .status()
            .expect("pip install openai");
        assert!(status.success(), "pip install openai failed");
    }
    python
}

fn run_python(script: &str, env: &[(&str, &str)]) -> Value {
    let mut cmd = Command::new(openai_python());
    cmd.arg("-c").arg(script);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed {:?}: {e}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn http(url: &str, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> (u16, String) {
    http_auth(url, method, path, key.map(|k| format!("Bearer {k}")), body)
}

/// [`http`] with the whole `Authorization` header value.
fn http_auth(
    url: &str,
    method: &str,
    path: &str,
    authorization: Option<String>,
    body: &[u8],
) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
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
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

const SCRIPT: &str = r#"
import json, os, openai
from openai import OpenAI
c = OpenAI(base_url=os.environ["GW"] + "/v1", api_key=os.environ["KEY"], max_retries=0)
out = {}
out["models"] = sorted(m.id for m in c.models.list().data)
r = c.chat.completions.create(model="smollm2-135m-instruct", temperature=0, max_tokens=24,
    messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}])
out["chat"] = r.choices[0].message.content
out["chat_usage"] = [r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens]
out["chat_finish"] = r.choices[0].finish_reason
r2 = c.chat.completions.create(model="smollm2-135m-instruct", temperature=0, max_tokens=24,
    messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}])
out["chat_again"] = r2.choices[0].message.content
raw = c.chat.completions.with_raw_response.create(model="smollm2-135m-instruct", temperature=0, max_tokens=4,
    messages=[{"role": "user", "content": "Hi"}])
out["receipt"] = raw.headers.get("x-hibana-receipt")
pieces = []
for chunk in c.chat.completions.create(model="smollm2-135m-instruct", temperature=0, max_tokens=24, stream=True,
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}]):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
out["stream"] = "".join(pieces)
out["stream_chunks"] = len(pieces)
comp = c.completions.create(model="gemma3-270m", prompt="The capital of France is", max_tokens=8, temperature=0)
out["completion"] = comp.choices[0].text
out["completion_finish"] = comp.choices[0].finish_reason
e = c.embeddings.create(model="all-minilm-l6-v2", input=["a cat sat on the mat", "a kitten rested on the rug", "stock markets fell sharply"])
vecs = [d.embedding for d in e.data]
dot = lambda a, b: sum(x * y for x, y in zip(a, b))
out["dims"] = len(vecs[0])
out["norm"] = dot(vecs[0], vecs[0])
out["similar"] = dot(vecs[0], vecs[1])
out["dissimilar"] = dot(vecs[0], vecs[2])
try:
    OpenAI(base_url=os.environ["GW"] + "/v1", api_key="hib-wrong", max_retries=0).models.list()
    out["bad_key"] = "accepted"
except openai.AuthenticationError as err:
    out["bad_key"] = err.status_code
try:
    c.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    out["bad_model"] = "accepted"
except openai.NotFoundError as err:
    out["bad_model"] = err.code
print(json.dumps(out))
"#;

#[test]
fn openai_sdk_talks_to_the_devnet_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let (_devnet, info) = support::start_command(
        support::devnet_command(home.to_str().unwrap(), 200).arg("--no-demo"),
    );
    let gw = info["gateway"]
        .as_str()
        .expect("devnet prints the gateway URL");
    let key = info["api_key"]
        .as_str()
        .expect("devnet prints a demo API key");
    let out = run_python(SCRIPT, &[("GW", gw), ("KEY", key)]);
    assert_eq!(
        out["models"],
        // The devnet's provider also serves the demo ZK model (at /v1/zk/infer) and the
        // Solidity auditor (at /v1/audit).
        serde_json::json!([
            "all-minilm-l6-v2",
            "credit-mlp",
            "gemma3-270m",
            "hibana-audit",
            "smollm2-135m-instruct"
        ])
    );
    let chat = out["chat"].as_str().unwrap();
    assert!(chat.contains("Paris"), "chat answered {chat:?}");
    assert_eq!(
        out["chat"], out["chat_again"],
        "greedy decoding is deterministic"
    );
    assert_eq!(
        out["stream"], out["chat"],
        "streaming yields the same greedy text"
    );
    assert!(out["stream_chunks"].as_u64().unwrap() > 1);
    let usage = out["chat_usage"].as_array().unwrap();
    assert!(usage[0].as_u64().unwrap() > 5 && usage[1].as_u64().unwrap() > 0);
    assert_eq!(
        usage[2].as_u64().unwrap(),
        usage[0].as_u64().unwrap() + usage[1].as_u64().unwrap()
    );
    // The repeated chat read its prompt from the provider's prefix cache, all but one token.
    let provider = info["provider"]
        .as_str()
        .expect("devnet prints the provider URL");
    let (got, text) = http(provider, "GET", "/health", None, b"");
    assert_eq!(got, 200, "{text}");
    let health: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let smollm2 = health["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "smollm2-135m-instruct")
        .expect("the provider serves smollm2");
    assert!(
        smollm2["reused_prompt_tokens"].as_u64().unwrap() >= usage[0].as_u64().unwrap() - 1,
        "{health}"
    );
    assert!(
        out["receipt"]
            .as_str()
            .is_some_and(|r| hibana_types::InferenceReceipt::from_hex(r).is_ok())
    );
    assert!(!out["completion"].as_str().unwrap().is_empty());
    assert_eq!(out["dims"], 384);
    assert!((out["norm"].as_f64().unwrap() - 1.0).abs() < 1e-3);
    assert!(out["similar"].as_f64().unwrap() > out["dissimilar"].as_f64().unwrap() + 0.2);
    assert_eq!(out["bad_key"], 401);
    assert_eq!(out["bad_model"], "model_not_found");

    // Bad input gets OpenAI-style errors, and the gateway keeps serving.
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("/v1/chat/completions", b"{not json".to_vec(), 400, "invalid_request_error"),
        ("/v1/chat/completions", vec![0xff, 0xfe, b'{', b'}'], 400, "UTF-8"),
        ("/v1/chat/completions", br#"{"model":"smollm2-135m-instruct","messages":[]}"#.to_vec(), 400, "messages"),
        ("/v1/chat/completions", br#"{"messages":[{"role":"user","content":"x"}]}"#.to_vec(), 400, "model"),
        (
            "/v1/chat/completions",
            br#"{"model":"smollm2-135m-instruct","max_tokens":100000,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
            400,
            "context_length_exceeded",
        ),
        ("/v1/completions", br#"{"model":"gemma3-270m","prompt":""}"#.to_vec(), 400, "prompt"),
        ("/v1/embeddings", br#"{"model":"all-minilm-l6-v2","input":[]}"#.to_vec(), 400, "input"),
        ("/v1/embeddings", br#"{"model":"smollm2-135m-instruct","input":"x"}"#.to_vec(), 400, "not an embedding model"),
    ];
    for (path, body, status, needle) in cases {
        let (got, text) = http(gw, "POST", path, Some(key), &body);
        assert_eq!(
            got,
            status,
            "{path} {:?}: {text}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            text.contains(needle),
            "{path}: expected {needle:?} in {text}"
        );
        assert!(text.contains("\"error\""), "{text}");
    }
    // A prompt over the context is refused, and blamed on the field it came from.
    let words = "word ".repeat(40_000);
    let over_context = [
        (
            "/v1/chat/completions",
            format!(
                r#"{{"model":"smollm2-135m-instruct","messages":[{{"role":"user","content":"{words}"}}]}}"#
            ),
            "messages",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"gemma3-270m","prompt":"{words}"}}"#),
            "prompt",
        ),
    ];
    for (path, body, param) in over_context {
        let (got, text) = http(gw, "POST", path, Some(key), body.as_bytes());
        assert_eq!(got, 400, "{text}");
        assert!(text.contains("context_length_exceeded"), "{text}");
        assert!(text.contains(&format!("\"param\":\"{param}\"")), "{text}");
    }
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (got, _) = http(gw, "POST", "/v1/chat/completions", Some(key), &huge);
    assert_eq!(got, 413);
    let (got, _) = http(gw, "GET", "/v1/models", None, b"");
    assert_eq!(got, 401);

    // `stream` on an endpoint that does not stream is ignored, not a broken stream (502).
    let (got, text) = http(
        gw,
        "POST",
        "/v1/embeddings",
        Some(key),
        br#"{"model":"all-minilm-l6-v2","input":"a","stream":true}"#,
    );
    assert_eq!(got, 200, "{text}");
    assert!(text.contains("\"embedding\""), "{text}");

    // A contract whose expression is a 200,000-link chain is an audit error, not a crash.
    let chain = format!(
        r#"{{"model":"audit","path":"a.sol","source":"contract A {{ function k() public {{ x{}; }} }}"}}"#,
        ".a".repeat(200_000)
    );
    let (got, text) = http(gw, "POST", "/v1/audit", Some(key), chain.as_bytes());
    assert_eq!(got, 200, "{}", &text[..text.len().min(500)]);
    assert!(
        text.contains("deeper than 1000"),
        "{}",
        &text[..text.len().min(500)]
    );

    // An embeddings request holding more tokens than a minute of CPU is refused up front.
    let long_input = format!("\"{}\"", "many words here ".repeat(100));
    let inputs = vec![long_input; 300].join(",");
    let body = format!(r#"{{"model":"all-minilm-l6-v2","input":[{inputs}]}}"#);
    let (got, text) = http(gw, "POST", "/v1/embeddings", Some(key), body.as_bytes());
    assert_eq!(got, 400, "{}", &text[..text.len().min(400)]);
    assert!(
        text.contains("split them"),
        "{}",
        &text[..text.len().min(400)]
    );

    // A client that hangs up on a generation it did not stream frees the provider: the
    // generation stops at the next token and the load count comes back down.
    let active = || {
        let (_, text) = http(provider, "GET", "/health", None, b"");
        let health: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        health["active"].as_u64().unwrap()
    };
    // The gateway's own count of requests in flight per provider (`/v1/router`).
    let in_flight = || {
        let (_, text) = http(gw, "GET", "/v1/router", Some(key), b"");
        let table: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        table["providers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["in_flight"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(active(), 0);
    let body =
        br#"{"model":"gemma3-270m","prompt":"Once upon a time","max_tokens":1000,"temperature":0}"#;
    // Directly, then through the gateway.
    for (url, auth) in [
        (provider, String::new()),
        (gw, format!("Authorization: Bearer {key}\r\n")),
    ] {
        let addr = url.trim_start_matches("http://");
        let mut hung_up = std::net::TcpStream::connect(addr).unwrap();
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        hung_up.write_all(head.as_bytes()).unwrap();
        hung_up.write_all(body).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(active(), 1, "{url}: the generation is running");
        drop(hung_up);
        let deadline = Instant::now() + Duration::from_secs(5);
        while active() != 0 || in_flight() != 0 {
            assert!(
                Instant::now() < deadline,
                "{url}: a request its client left still counts after 5 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // The auth scheme is case-insensitive; wrong methods and unknown paths get JSON errors.
    let (got, text) = http_auth(gw, "GET", "/v1/models", Some(format!("bearer {key}")), b"");
    assert_eq!(got, 200, "{text}");
    for url in [gw, provider] {
        let (got, text) = http(url, "GET", "/v1/chat/completions", Some(key), b"");
        assert_eq!(got, 405, "{text}");
        assert!(text.contains("\"error\""), "{text}");
        let (got, text) = http(url, "POST", "/v1/nope", Some(key), b"{}");
        assert_eq!(got, 404, "{text}");
        assert!(text.contains("\"error\""), "{text}");
    }
    // Usage per key is kept.
    let (got, text) = http(gw, "GET", "/v1/usage", Some(key), b"");
    assert_eq!(got, 200);
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert!(body["usage"]["requests"].as_u64().unwrap() >= 6, "{body}");

    // Every paid answer moved alice's HIB: through her channel to the gateway's operator, and
    // from the operator through its channel to the provider. Once both are redeemed, the
    // key's usage, both channels and the provider's registered price agree to the base unit.
    let home_s = home.to_str().unwrap();
    let gw_home = format!("{home_s}/gateway");
    let cli = |args: &[&str]| -> Value {
        let out = Command::new(BIN).arg("--json").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let keys = cli(&["gateway", "--home", &gw_home, "keys", "list"]);
    let demo = keys[0]["name"].as_str().unwrap().to_string();
    let operator = info["operator"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (spent, usage) = loop {
        let usage = cli(&["gateway", "--home", &gw_home, "usage", &demo]);
        let spent = usage["usage"]["spent"].as_str().unwrap().to_string();
        let paid = cli(&["channel", "status", "--payer", "alice", "--home", home_s]);
        let passed_on = cli(&["channel", "status", "--payer", operator, "--home", home_s]);
        let (a, p) = (&paid["channels"][0], &passed_on["channels"][0]);
        if spent != "0" && a["redeemed"] == spent.as_str() && p["redeemed"] == spent.as_str() {
            assert_eq!(a["payee"].as_str(), Some(operator));
            assert_eq!(p["payee"], info["provider_account"]);
            break (spent, usage);
        }
        assert!(
            Instant::now() < deadline,
            "channels never caught up with usage {spent}: {a} / {p}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let registered = cli(&[
        "market",
        "provider",
        "show",
        info["provider_account"].as_str().unwrap(),
        "--home",
        home_s,
    ]);
    let price: u128 = registered["price_per_token"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let tokens = usage["usage"]["prompt_tokens"].as_u64().unwrap()
        + usage["usage"]["completion_tokens"].as_u64().unwrap();
    // Chat, completions and embeddings are priced per token; proofs and audits are counted in
    // the usage but not charged.
    let spent: u128 = spent.parse().unwrap();
    assert!(price > 0);
    assert_eq!(spent % price, 0, "{usage}");
    assert!(spent > 0 && spent <= price * u128::from(tokens), "{usage}");
    // A key whose account opened no channel to the gateway gets 402, not a free answer.
    let unpaid = cli(&[
        "gateway",
        "--home",
        &gw_home,
        "keys",
        "create",
        "unpaid",
        "--account",
        info["accounts"][1]["address"].as_str().unwrap(),
    ]);
    let (got, text) = http(
        gw,
        "POST",
        "/v1/embeddings",
        unpaid["key"].as_str(),
        br#"{"model":"all-minilm-l6-v2","input":"free?"}"#,
    );
    assert_eq!(got, 402, "{text}");
    assert!(
        text.contains("insufficient_quota") && text.contains("hibana channel open"),
        "{text}"
    );

    // A key over its rate limit gets 429; a revoked key 401.
    let created = Command::new(BIN)
        .args([
            "--json",
            "gateway",
            "--home",
            &gw_home,
            "keys",
            "create",
            "tight",
            "--account",
            info["accounts"][0]["address"].as_str().unwrap(),
            "--rate-limit",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let tight: Value = serde_json::from_slice(&created.stdout).unwrap();
    let tight_key = tight["key"].as_str().unwrap();
    let answers: Vec<(u16, String)> = (0..3)
        .map(|_| http(gw, "GET", "/v1/models", Some(tight_key), b""))
        .collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, vec![200, 200, 429]);
    // The 429 says when to come back.
    let retry: u64 = answers[2]
        .1
        .to_lowercase()
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {}", answers[2].1));
    assert!((1..=60).contains(&retry), "{retry}");
    let revoked = Command::new(BIN)
        .args(["gateway", "--home", &gw_home, "keys", "revoke", "tight"])
        .output()
        .unwrap();
    assert!(revoked.status.success());
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(http(gw, "GET", "/v1/models", Some(tight_key), b"").0, 401);

    // A request naming a kind of model (`chat`) or a subnet is served by a model of another
    // name, yet its receipt covers the exact bytes the client sent: the client can check it.
    let body = br#"{ "model": "chat", "temperature": 0, "max_tokens": 4,
        "messages": [ { "role": "user", "content": "Say hi." } ] }"#;
    assert_receipt_covers(gw, key, body);
    let rpc = info["rpc"].as_str().expect("devnet prints its RPC URL");
    let alice = ["--from", "alice", "--home", home_s];
    let mut create = vec![
        "--json", "--rpc", rpc, "subnet", "create", "--name", "talk", "--task", "chat",
    ];
    create.extend(alice);
    assert_eq!(support::ok_json(&create)["outcome"]["status"], "success");
    support::register_neuron(rpc, "talk", "miner", provider, &alice);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = http(gw, "GET", "/v1/router", Some(key), b"");
        if text.contains("\"talk\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never saw the subnet: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let body = br#"{"max_tokens":4,"temperature":0,"model":"talk","messages":[{"content":"Say hi.","role":"user"}]}"#;
    assert_receipt_covers(gw, key, body);
    // Streamed, the receipt comes as the stream's last comment, and covers the bytes sent too.
    let body = br#"{"model":"talk","stream":true,"max_tokens":4,"temperature":0,"messages":[{"role":"user","content":"Say hi."}]}"#;
    let (got, text) = http(gw, "POST", "/v1/chat/completions", Some(key), body);
    assert_eq!(got, 200, "{text}");
    let receipt = text
        .lines()
        .find_map(|l| l.strip_prefix(": x-hibana-receipt "))
        .unwrap_or_else(|| panic!("no receipt in the stream: {text}"));
    let receipt = hibana_types::InferenceReceipt::from_hex(receipt.trim()).unwrap();
    assert_eq!(
        receipt.body.request_hash,
        hibana_types::Hash::digest(body),
        "the stream's receipt covers other bytes than those sent"
    );
}

/// Sends `body` to the gateway's chat endpoint and checks the answer's receipt against the
/// exact bytes sent and received, as a client would.
fn assert_receipt_covers(gw: &str, key: &str, body: &[u8]) {
    let (got, text) = http(gw, "POST", "/v1/chat/completions", Some(key), body);
    assert_eq!(got, 200, "{text}");
    let (head, answer) = text.split_once("\r\n\r\n").unwrap();
    let receipt = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("x-hibana-receipt"))
        .map(|(_, v)| v.trim())
        .unwrap_or_else(|| panic!("no receipt in {text}"));
    let receipt = hibana_types::InferenceReceipt::from_hex(receipt).unwrap();
    assert_eq!(
        receipt.body.request_hash,
        hibana_types::Hash::digest(body),
        "the receipt covers other bytes than those sent: {text}"
    );
    receipt
        .verify(
            &receipt.body.provider,
            &hibana_types::Hash::digest(body),
            &hibana_types::Hash::digest(answer.as_bytes()),
        )
        .unwrap();
}

#[test]
fn a_provider_killed_during_a_request_loop_never_costs_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let p1_home = dir.path().join("p1");
    let p2_home = dir.path().join("p2");
    let gw_home = dir.path().join("gw");
    let serve = |home: &Path| {
        start(&[
            "--json",
            "provider",
            "serve",
            "--home",
            home.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--models",
            "smollm2-135m-instruct",
            "--capacity",
            "2",
        ])
    };
    let (mut p1, i1) = serve(&p1_home);
    let (p2, i2) = serve(&p2_home);
    let key = support::gateway_key(&gw_home, "loop");
    let (_gw, gi) = start(&[
        "--json",
        "gateway",
        "--home",
        gw_home.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
        "--provider",
        i1["provider"].as_str().unwrap(),
        "--provider",
        i2["provider"].as_str().unwrap(),
        "--timeout-secs",
        "20",
    ]);
    let gw = gi["gateway"].as_str().unwrap().to_string();
    let body = br#"{"model":"smollm2-135m-instruct","temperature":0,"max_tokens":8,"messages":[{"role":"user","content":"Say hello."}]}"#;
    let mut answers = Vec::new();
    for i in 0..16 {
        if i == 5 {
            p1.0.kill().unwrap();
            p1.0.wait().unwrap();
        }
        let (status, text) = http(&gw, "POST", "/v1/chat/completions", Some(&key), body);
        assert_eq!(status, 200, "request {i}: {text}");
        assert!(
            text.to_ascii_lowercase().contains("x-hibana-receipt"),
            "{text}"
        );
        let json: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        answers.push(
            json["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "greedy answers differ across providers: {answers:?}"
    );

    // The last provider stops answering (its health checks time out) and comes back while a
    // request waits: a provider marked unhealthy is still tried when no healthy one is left.
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &p2.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    signal("-STOP");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, table) = http(&gw, "GET", "/v1/router", Some(&key), b"");
        let table: Value = serde_json::from_str(table.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let healthy = table["providers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["healthy"] == true)
            .count();
        if healthy == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{table}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let waiting = {
        let gw = gw.clone();
        let key = key.clone();
        std::thread::spawn(move || http(&gw, "POST", "/v1/chat/completions", Some(&key), body))
    };
    std::thread::sleep(Duration::from_millis(500));
    signal("-CONT");
    let (status, text) = waiting.join().unwrap();
    assert_eq!(status, 200, "after the provider came back: {text}");
}

#[test]
fn a_gateway_at_its_bound_answers_429_with_retry_after_and_bills_only_answers() {
    let dir = tempfile::tempdir().unwrap();
    let gw_home = dir.path().join("gw");
    let (_provider, pi) = start(&[
        "--json",
        "provider",
        "serve",
        "--home",
        dir.path().join("p").to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
        "--models",
        "all-minilm-l6-v2",
    ]);
    let key = support::gateway_key(&gw_home, "burst");
    let (_gw, gi) = start(&[
        "--json",
        "gateway",
        "--home",
        gw_home.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
        "--provider",
        pi["provider"].as_str().unwrap(),
        "--max-in-flight",
        "2",
    ]);
    let gw = gi["gateway"].as_str().unwrap().to_string();

    // 50 clients at once, 3 requests each, against a gateway that serves 2 at a time.
    let clients = 50;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (gw, key, barrier) = (gw.clone(), key.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..3)
                    .map(|j| {
                        let body = format!(
                            r#"{{"model":"all-minilm-l6-v2","input":"client {i} asks {j} things"}}"#
                        );
                        http(&gw, "POST", "/v1/embeddings", Some(&key), body.as_bytes())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let (mut answered, mut refused, mut prompt_tokens) = (0u64, 0u64, 0u64);
    for (status, text) in threads.into_iter().flat_map(|t| t.join().unwrap()) {
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
        match status {
            200 => {
                answered += 1;
                prompt_tokens += json["usage"]["prompt_tokens"].as_u64().unwrap();
            }
            429 => {
                refused += 1;
                assert!(
                    head.to_ascii_lowercase().contains("\r\nretry-after: 1\r\n"),
                    "{text}"
                );
                assert_eq!(json["error"]["code"], "server_overloaded", "{text}");
            }
            _ => panic!("neither 200 nor 429: {text}"),
        }
    }
    assert_eq!(answered + refused, 150);
    // The first request always finds a free slot; 50 clients at once cannot all fit in 2.
    assert!(
        answered > 0 && refused > 0,
        "{answered} answered, {refused} refused"
    );
    // Usage counts every answer once and no refusal.
    let (status, text) = http(&gw, "GET", "/v1/usage", Some(&key), b"");
    assert_eq!(status, 200, "{text}");
    let usage: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(usage["usage"]["requests"], answered, "{usage}");
    assert_eq!(usage["usage"]["prompt_tokens"], prompt_tokens, "{usage}");
    // Every slot came back: two requests at once are both answered.
    let again: Vec<_> = (0..2)
        .map(|_| {
            let (gw, key) = (gw.clone(), key.clone());
            std::thread::spawn(move || {
                let body = br#"{"model":"all-minilm-l6-v2","input":"after the burst"}"#;
                http(&gw, "POST", "/v1/embeddings", Some(&key), body).0
            })
        })
        .collect();
    for t in again {
        assert_eq!(t.join().unwrap(), 200);
    }
}
