//! End to end: ZK inference from request to chain. A real `hibana devnet --zk-only` process
//! (chain, provider serving the demo credit model, gateway); a proof requested through the
//! gateway over HTTP with an API key; `hibana zk register` and `hibana zk submit` as real
//! processes; the verified result read back by RPC. Tampered proofs and bad requests fail with
//! their reasons.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use hibana_rpc::RpcClient;
use hibana_types::{Hash, InferenceReceipt};
use hibana_zkml::InferenceProof;
use serde_json::{Value, json};

mod support;

use support::{
    Proc, fails_with, gateway_key, hibana, ok_json, post, start, start_command, zk_compile,
};

fn start_devnet(home: &Path) -> (Proc, Value) {
    start_command(
        Command::new(support::BIN)
            .args(["--json", "devnet", "--home"])
            .arg(home)
            .args([
                "--rpc-addr",
                "127.0.0.1:0",
                "--gateway-addr",
                "127.0.0.1:0",
                "--block-time-ms",
                "200",
                "--zk-only",
            ]),
    )
}

fn testdata(name: &str) -> String {
    support::zk_testdata(name)
}

fn credit_input() -> Vec<f64> {
    let v: Value =
        serde_json::from_slice(&std::fs::read(testdata("credit_input.json")).unwrap()).unwrap();
    v["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Asks the gateway for a proof; checks the provider's receipt covers exactly this exchange.
fn infer(gw: &str, key: &str, request: &Value) -> (Value, Duration) {
    let body = serde_json::to_vec(request).unwrap();
    let start = Instant::now();
    let (status, headers, text) = post(gw, "/v1/zk/infer", Some(key), &body);
    let took = start.elapsed();
    assert_eq!(status, 200, "{text}");
    let receipt = headers
        .iter()
        .find(|(k, _)| k == "x-hibana-receipt")
        .map(|(_, v)| InferenceReceipt::from_hex(v).unwrap())
        .expect("a receipt header");
    assert_eq!(receipt.body.request_hash, Hash::digest(&body));
    assert_eq!(receipt.body.response_hash, Hash::digest(text.as_bytes()));
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        receipt.body.model_hash.0.to_vec(),
        hex::decode(answer["model_commitment"].as_str().unwrap()).unwrap()
    );
    assert_eq!(receipt.body.price.0, 1000);
    (answer, took)
}

#[test]
fn a_proof_from_the_gateway_is_verified_on_chain_and_read_back_by_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let home_s = home.to_str().unwrap();
    let (_devnet, info) = start_devnet(&home);
    let rpc = info["rpc"].as_str().unwrap();
    let gw = info["gateway"].as_str().expect("the devnet runs a gateway");
    let key = info["api_key"].as_str().unwrap();
    let zkm = info["zk_model"]
        .as_str()
        .expect("the devnet serves a ZK model");
    let alice = info["accounts"][0]["address"].as_str().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = RpcClient::new(rpc).unwrap();

    // A private-input proof through the gateway, named by model name.
    let input = credit_input();
    let (private, took) = infer(
        gw,
        key,
        &json!({"model": "credit-mlp", "input": input, "private": true}),
    );
    eprintln!(
        "private proof through the gateway: {:.0} ms round trip, {:.0} ms proving, {} proof bytes",
        took.as_secs_f64() * 1000.0,
        private["prove_ms"].as_f64().unwrap(),
        private["proof_bytes"]
    );
    assert_eq!(private["private"], true);
    assert_eq!(private["public_input"], Value::Null);
    assert_eq!(private["class"], 3, "the test input's label is 3");
    assert_eq!(private["output"].as_array().unwrap().len(), 4);
    let commitment = private["model_commitment"].as_str().unwrap().to_string();
    let proof_bytes = hex::decode(private["proof"].as_str().unwrap()).unwrap();
    let proof_path = dir.path().join("private.proof");
    std::fs::write(&proof_path, &proof_bytes).unwrap();
    let proof_s = proof_path.to_str().unwrap();

    // Submitting before the model is registered: refused, saying what to do.
    fails_with(
        &[
            "zk", "submit", zkm, proof_s, "--home", home_s, "--from", "alice",
        ],
        "is not registered",
    );

    // An account that cannot pay the registration fee (10 base units per .zkm byte) is refused
    // with the amounts, before anything is stored.
    let keyring = dir.path().join("keyring");
    let keyring_s = keyring.to_str().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "zk test passphrase\n").unwrap();
    let pass_s = pass.to_str().unwrap();
    let dave = ok_json(&[
        "--json",
        "wallet",
        "new",
        "dave",
        "--keyring-dir",
        keyring_s,
        "--password-file",
        pass_s,
    ]);
    let funded = ok_json(&[
        "--json",
        "tx",
        "transfer",
        "--home",
        home_s,
        "--from",
        "alice",
        "--to",
        dave["address"].as_str().unwrap(),
        "--amount",
        "100000",
    ]);
    assert_eq!(funded["outcome"]["status"], "success");
    fails_with(
        &[
            "--rpc",
            rpc,
            "zk",
            "register",
            zkm,
            "--keyring-dir",
            keyring_s,
            "--password-file",
            pass_s,
            "--from",
            "dave",
        ],
        "the chain refused the model registration: ",
    );
    let out = hibana(&[
        "--rpc",
        rpc,
        "zk",
        "register",
        zkm,
        "--keyring-dir",
        keyring_s,
        "--password-file",
        pass_s,
        "--from",
        "dave",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("insufficient funds"), "{stderr}");
    assert!(
        runtime
            .block_on(client.zk_model(&hex::decode(&commitment).unwrap().try_into().unwrap()))
            .unwrap()
            .is_none()
    );

    // Register, then read the model by RPC (through the CLI, by commitment and by file).
    let registered = ok_json(&[
        "--json", "zk", "register", zkm, "--home", home_s, "--from", "alice",
    ]);
    assert_eq!(registered["outcome"]["status"], "success", "{registered}");
    assert_eq!(registered["model_commitment"], commitment.as_str());
    let events: Vec<&str> = registered["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"verify.model_registered"), "{events:?}");
    let model = ok_json(&["--json", "--rpc", rpc, "zk", "show-model", &commitment]);
    assert_eq!(model["owner"], alice);
    assert_eq!(model["input_shape"], json!([16]));
    assert_eq!(model["output_shape"], json!([4]));
    let by_file = ok_json(&["--json", "--rpc", rpc, "zk", "show-model", zkm]);
    assert_eq!(by_file["commitment"], commitment.as_str());
    fails_with(
        &["zk", "register", zkm, "--home", home_s, "--from", "alice"],
        "already registered",
    );

    // Submit the proof: verified on chain, stored under the id the provider announced.
    let submitted = ok_json(&[
        "--json", "zk", "submit", zkm, proof_s, "--home", home_s, "--from", "bob",
    ]);
    assert_eq!(submitted["outcome"]["status"], "success", "{submitted}");
    let id = submitted["result_id"].as_str().unwrap().to_string();
    assert_eq!(id, private["result_id"].as_str().unwrap());
    let event = submitted["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "verify.inference")
        .expect("a verify.inference event")
        .clone();
    assert!(event.to_string().contains(&id));

    // Read the verified result by RPC: the output is the one the provider returned.
    let id_bytes: [u8; 32] = hex::decode(&id).unwrap().try_into().unwrap();
    let result = runtime
        .block_on(client.zk_inference(&id_bytes))
        .unwrap()
        .expect("the result is on chain");
    let output: Vec<i64> = serde_json::from_value(private["output"].clone()).unwrap();
    assert_eq!(result.output, output);
    assert_eq!(result.class, 3);
    assert_eq!(result.model, commitment);
    assert_eq!(
        result.input_commitment,
        private["input_commitment"].as_str().unwrap()
    );
    assert_eq!(result.public_input, None);
    assert_eq!(
        json!(result.output_values),
        private["output_values"],
        "the chain and the provider dequantise alike"
    );
    let shown = ok_json(&["--json", "--rpc", rpc, "zk", "result", &id]);
    assert_eq!(shown["output"], private["output"]);
    assert_eq!(shown["submitter"].as_str().unwrap().len(), alice.len());

    // The same proof again: refused.
    fails_with(
        &[
            "zk", "submit", zkm, proof_s, "--home", home_s, "--from", "bob",
        ],
        "already submitted",
    );

    // A proof whose output was changed (re-sealed, so only the cryptography can notice):
    // the chain refuses it and says why.
    let mut tampered = InferenceProof::from_bytes(&proof_bytes).unwrap();
    tampered.output[0] += 1;
    let tampered_path = dir.path().join("tampered.proof");
    std::fs::write(&tampered_path, tampered.to_bytes().unwrap()).unwrap();
    fails_with(
        &[
            "zk",
            "submit",
            zkm,
            tampered_path.to_str().unwrap(),
            "--home",
            home_s,
            "--from",
            "bob",
        ],
        "the chain refused the proof: ",
    );
    let out = hibana(&[
        "zk",
        "submit",
        zkm,
        tampered_path.to_str().unwrap(),
        "--home",
        home_s,
        "--from",
        "bob",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not verify"), "{stderr}");
    let tampered_id = Hash::digest(&tampered.to_bytes().unwrap()).0;
    assert!(
        runtime
            .block_on(client.zk_inference(&tampered_id))
            .unwrap()
            .is_none()
    );

    // A public-input proof, named by commitment: the chain stores the revealed input.
    let (public, _) = infer(
        gw,
        key,
        &json!({"model": commitment, "input": input, "private": false}),
    );
    assert_eq!(
        public["output"], private["output"],
        "same input, same output"
    );
    assert_ne!(
        public["input_commitment"], private["input_commitment"],
        "fresh salt"
    );
    let public_path = dir.path().join("public.proof");
    std::fs::write(
        &public_path,
        hex::decode(public["proof"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let submitted = ok_json(&[
        "--json",
        "zk",
        "submit",
        zkm,
        public_path.to_str().unwrap(),
        "--home",
        home_s,
        "--from",
        "carol",
    ]);
    let public_id: [u8; 32] = hex::decode(submitted["result_id"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let result = runtime
        .block_on(client.zk_inference(&public_id))
        .unwrap()
        .unwrap();
    assert_eq!(json!(result.public_input), public["public_input"]);
    assert_eq!(result.public_input.as_ref().map(Vec::len), Some(16));

    // Bad requests: clear 4xx from the gateway, before any proving.
    let bad: Vec<(Value, u16, &str)> = vec![
        (
            json!({"model": "credit-mlp", "input": [1.0, 2.0, 3.0]}),
            400,
            "expects 16",
        ),
        (
            json!({"model": "credit-mlp", "input": [1.0e6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}),
            400,
            "outside the range",
        ),
        (
            json!({"model": "no-such-model", "input": input}),
            404,
            "model_not_found",
        ),
        (json!({"model": "credit-mlp"}), 400, "input"),
        (
            json!({"model": "credit-mlp", "input": ["a"]}),
            400,
            "invalid type",
        ),
    ];
    for (request, status, needle) in bad {
        let (got, _, text) = post(
            gw,
            "/v1/zk/infer",
            Some(key),
            request.to_string().as_bytes(),
        );
        assert_eq!(got, status, "{request}: {text}");
        assert!(
            text.contains(needle),
            "{request}: expected {needle:?} in {text}"
        );
        assert!(text.contains("\"error\""), "{text}");
    }
    let (got, _, _) = post(gw, "/v1/zk/infer", None, b"{}");
    assert_eq!(got, 401, "the gateway requires an API key");
    let (got, _, text) = post(gw, "/v1/zk/infer", Some(key), b"{not json");
    assert_eq!(got, 400, "{text}");

    // The larger test model (the digits CNN, 8×8 input) compiled and proved locally: its
    // .zkm and proof fit in one transaction under the default max_tx_bytes.
    let digits_zkm = dir.path().join("digits-cnn.zkm");
    let digits_zkm_s = digits_zkm.to_str().unwrap();
    zk_compile("digits_cnn.onnx", "digits_calibration.json", digits_zkm_s);
    let digits_proof = dir.path().join("digits.proof");
    let proved = ok_json(&[
        "--json",
        "zk",
        "prove",
        digits_zkm_s,
        "--input",
        &testdata("digits_input.json"),
        "-o",
        digits_proof.to_str().unwrap(),
    ]);
    let tx_payload = std::fs::metadata(&digits_zkm).unwrap().len()
        + std::fs::metadata(&digits_proof).unwrap().len();
    eprintln!("digits-cnn SubmitZkInference payload: {tx_payload} bytes (.zkm + proof)");
    let registered = ok_json(&[
        "--json",
        "zk",
        "register",
        digits_zkm_s,
        "--home",
        home_s,
        "--from",
        "carol",
    ]);
    assert_eq!(registered["outcome"]["status"], "success", "{registered}");
    let submitted = ok_json(&[
        "--json",
        "zk",
        "submit",
        digits_zkm_s,
        digits_proof.to_str().unwrap(),
        "--home",
        home_s,
        "--from",
        "carol",
    ]);
    assert_eq!(submitted["outcome"]["status"], "success", "{submitted}");
    let shown = ok_json(&[
        "--json",
        "zk",
        "result",
        submitted["result_id"].as_str().unwrap(),
        "--home",
        home_s,
    ]);
    let label: Value =
        serde_json::from_slice(&std::fs::read(testdata("digits_input.json")).unwrap()).unwrap();
    assert_eq!(shown["class"], label["label"]);
    assert_eq!(shown["output"], proved["output"]);

    // A ZK model is not a chat model.
    let (got, _, text) = post(
        gw,
        "/v1/chat/completions",
        Some(key),
        br#"{"model":"credit-mlp","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(got, 400, "{text}");
    assert!(text.contains("/v1/zk/infer"), "{text}");
}

#[test]
fn the_gateway_fails_over_when_a_zk_provider_dies() {
    let dir = tempfile::tempdir().unwrap();
    let zkm = dir.path().join("credit-mlp.zkm");
    let zkm_s = zkm.to_str().unwrap();
    zk_compile("credit_mlp.onnx", "credit_calibration.json", zkm_s);
    let serve = |name: &str| {
        start(&[
            "--json",
            "provider",
            "serve",
            "--home",
            dir.path().join(name).to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--zk-model",
            zkm_s,
        ])
    };
    let (mut p1, i1) = serve("p1");
    let (_p2, i2) = serve("p2");
    let gw_home = dir.path().join("gw");
    let key = gateway_key(&gw_home, "zk");
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
        "60",
    ]);
    let gw = gi["gateway"].as_str().unwrap();
    let request = json!({"model": "credit-mlp", "input": credit_input()});
    let mut providers = std::collections::BTreeSet::new();
    for i in 0..4 {
        if i == 2 {
            p1.0.kill().unwrap();
            p1.0.wait().unwrap();
        }
        let body = serde_json::to_vec(&request).unwrap();
        let (status, headers, text) = post(gw, "/v1/zk/infer", Some(&key), &body);
        assert_eq!(status, 200, "request {i}: {text}");
        let receipt = headers
            .iter()
            .find(|(k, _)| k == "x-hibana-receipt")
            .map(|(_, v)| InferenceReceipt::from_hex(v).unwrap())
            .expect("a receipt");
        providers.insert(receipt.body.provider.to_string());
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["class"], 3);
    }
    assert!(
        providers.contains(i2["public_key"].as_str().unwrap()),
        "the surviving provider answered: {providers:?}"
    );
}
