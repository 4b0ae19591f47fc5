//! End-to-end: a training job on the compute market, with real processes. A devnet (`--no-ai`)
//! and a provider started with `provider serve --market`: the provider registers once funded
//! and bids by itself; alice accepts, submits a job and uploads its dataset; the provider is
//! killed (`kill -9`) after its first checkpoints, its lease stops paying once its liveness runs
//! out (and `job status` says so), and `job submit --reorder` moves the job to a
//! second provider, which goes on from the last committed checkpoint; that one is killed and
//! restarted too, and resumes from its own. Alice verifies every step by re-training, fetches
//! the model (checked against the chain's hash) and compiles it into a ZK circuit. Then a
//! provider that cheats at one step (this test plays it, signing with the provider's key) is
//! caught by `job verify`, and `job dispute` has the chain re-run that step: the provider is
//! slashed and its lease closed.
//!
//! A second test trains one job on two providers at once (data parallel, averaged every 20
//! local steps; one trains on one thread, the other on two). After two rounds the second is
//! killed and `job submit --reorder --replace` hands its worker to a third provider, which goes
//! on from the last averaged round. The averages land on chain, `job verify` re-checks every
//! hash, and the averaged model is as accurate as one provider's alone, within 5 points.
//! A third test plays a worker that withholds its parameters: the honest provider re-trains its
//! part, goes on when it matches, and disputes the step when it does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{
    BIN, Proc, amount, chain_devnet_command, fails_with, hibana, ok_json, start_command, tx,
};

fn dataset() -> String {
    format!(
        "{}/../../examples/jobs/circles.jsonl",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn provider(home: &str, rpc: &str) -> (Proc, Value) {
    start_command(&mut provider_command(home, rpc))
}

fn provider_command(home: &str, rpc: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "--json",
        "provider",
        "serve",
        "--models",
        "none",
        "--home",
        home,
        "--addr",
        "127.0.0.1:0",
        "--chain",
        rpc,
        "--market",
    ]);
    cmd
}

/// Polls `f` every 200 ms for up to a minute until it returns something.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

fn job(h: &str, id: &str) -> Value {
    ok_json(&["--json", "job", "status", id, "--home", h])["job"].clone()
}

#[test]
fn train_on_a_leased_provider_resume_verify_fetch_prove_and_dispute_a_cheat() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let h = home.to_str().unwrap();
    // Providers stay live 20 blocks (4 s) after a heartbeat.
    let (_devnet, _) =
        start_command(chain_devnet_command(h, 200).args(["--liveness-blocks", "20"]));
    let rpc = std::fs::read_to_string(home.join("rpc.url")).unwrap();
    let rpc = rpc.trim();
    let phome = dir.path().join("provider");
    let p = phome.to_str().unwrap();
    let data = dataset();

    // The provider waits for its bond, then registers by itself.
    let (running, info) = provider(p, rpc);
    let address = info["address"].as_str().unwrap().to_string();
    tx(&[
        "--json", "tx", "transfer", "--to", &address, "--amount", "20HIB", "--from", "alice",
        "--home", h,
    ]);
    eventually("the provider's registration", || {
        let list = ok_json(&["--json", "market", "provider", "list", "--home", h]);
        (list.as_array().unwrap().len() == 1).then_some(())
    });
    // The devnet's validator audits the provider and attests what it found.
    tx(&[
        "--json",
        "tx",
        "transfer",
        "--to",
        "validator",
        "--amount",
        "1HIB",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    tx(&[
        "--json",
        "market",
        "provider",
        "attest",
        &address,
        "--cores",
        "1",
        "--memory-mib",
        "512",
        "--region",
        "local",
        "--from",
        "validator",
        "--home",
        h,
    ]);
    fails_with(
        &[
            "market",
            "provider",
            "attest",
            &address,
            "--cores",
            "1",
            "--memory-mib",
            "512",
            "--region",
            "local",
            "--from",
            "bob",
            "--home",
            h,
        ],
        "only validators attest",
    );
    let shown = ok_json(&[
        "--json", "market", "provider", "show", &address, "--home", h,
    ]);
    assert_eq!(
        shown["attestations"][0]["attributes"]["cores"], 1,
        "{shown}"
    );
    // The chain accepts the cheapest bid of an attested provider of reputation 500 or more, 25
    // blocks after the order.
    let created = ok_json(&[
        "--json",
        "market",
        "order",
        "create",
        "--min-cores",
        "1",
        "--duration",
        "5000",
        "--max-price",
        "0.002HIB",
        "--deposit",
        "5HIB",
        "--auto-accept-in",
        "25",
        "--min-reputation",
        "500",
        "--attested-only",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    assert_eq!(
        created["auto_accept_receipt"]["outcome"]["status"], "success",
        "{created}"
    );
    // It bids on the order by itself, at its price.
    let bid = eventually("the provider's bid", || {
        let order = ok_json(&["--json", "market", "order", "show", "0", "--home", h]);
        order["bids"].as_array().unwrap().first().cloned()
    });
    assert_eq!(bid["provider"], address.as_str());
    assert_eq!(amount(&bid["price_per_block"]), 1_000_000);
    let lease = eventually("the auto-accepted lease", || {
        let out = hibana(&["--json", "lease", "show", "0", "--home", h]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
    });
    assert_eq!(lease["lease"]["provider"], address.as_str());

    // Bad jobs are refused before anything is sent.
    fails_with(
        &[
            "job", "submit", "--lease", "0", "--data", &data, "--hidden", "500", "--from", "alice",
            "--home", h,
        ],
        "hidden layer",
    );
    let submitted = ok_json(&[
        "--json",
        "job",
        "submit",
        "--lease",
        "0",
        "--data",
        &data,
        "--hidden",
        "16",
        "--steps",
        "400",
        "--checkpoint-every",
        "20",
        "--from",
        "alice",
        "--home",
        h,
    ]);
    assert_eq!(submitted["job"], 0);
    assert_eq!(submitted["rows"], 800);
    // The provider refuses a file that is not the job's dataset, and one over its limit.
    let url = info["provider"].as_str().unwrap();
    let text = std::fs::read_to_string(&data).unwrap();
    let part: String = text.lines().take(100).map(|l| format!("{l}\n")).collect();
    let (status, _, body) = support::http(url, "PUT", "/v1/jobs/0/data", None, part.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("names dataset"), "{body}");
    let huge = vec![b' '; 65 << 20];
    let (status, _, _) = support::http(url, "PUT", "/v1/jobs/0/data", None, &huge);
    assert_eq!(status, 413);
    let (status, _, body) = support::http(url, "PUT", "/v1/jobs/9/data", None, text.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("does not exist"), "{body}");

    // Provider A is killed (kill -9) after its first checkpoints; alice goes on with provider B,
    // which starts from the last committed checkpoint (A stored it on the node).
    let at_kill = eventually("a first checkpoint", || {
        let c = job(h, "0")["committed_steps"].as_u64().unwrap();
        (c >= 20).then_some(c)
    });
    drop(running);
    // Its lease stops paying once its liveness runs out, and alice is told.
    let paid_until = eventually("the lease to stall", || {
        let status = ok_json(&["--json", "job", "status", "0", "--home", h]);
        status["lease_paid_until"].as_u64()
    });
    let lease_at =
        |what| ok_json(&["--json", "lease", "show", "0", "--home", h])["lease"][what].clone();
    assert!(lease_at("status") == "active");
    let owed = || amount(&ok_json(&["--json", "lease", "show", "0", "--home", h])["withdrawable"]);
    let before = owed();
    support::wait_blocks(h, 3);
    assert_eq!(owed(), before, "a stalled lease owes nothing more");
    let started = lease_at("started_at").as_u64().unwrap();
    let settled = lease_at("settled_at").as_u64().unwrap();
    assert!(paid_until > started);
    assert_eq!(
        before + amount(&lease_at("paid")),
        1_000_000 * u128::from(paid_until - started),
        "paid for exactly the blocks up to its liveness (settled at {settled})"
    );
    let bhome = dir.path().join("provider-b");
    let b = bhome.to_str().unwrap();
    let (running_b, info_b) = provider(b, rpc);
    let address_b = info_b["address"].as_str().unwrap().to_string();
    tx(&[
        "--json", "tx", "transfer", "--to", &address_b, "--amount", "20HIB", "--from", "alice",
        "--home", h,
    ]);
    eventually("provider B's registration", || {
        let list = ok_json(&["--json", "market", "provider", "list", "--home", h]);
        (list.as_array().unwrap().len() == 2).then_some(())
    });
    let moved = ok_json(&[
        "--json",
        "job",
        "submit",
        "--reorder",
        "0",
        "--data",
        &data,
        "--from",
        "alice",
        "--home",
        h,
    ]);
    assert_eq!(moved["provider"], address_b.as_str(), "{moved}");
    let from_step = moved["from_step"].as_u64().unwrap();
    assert!(from_step >= at_kill && from_step < 400, "{moved}");
    assert_eq!(
        ok_json(&["--json", "lease", "show", "0", "--home", h])["lease"]["status"],
        "closed"
    );
    // B is killed too once it has committed a checkpoint of its own, and resumes from it.
    eventually("B's first checkpoint", || {
        let c = job(h, "0")["committed_steps"].as_u64().unwrap();
        (c >= from_step + 20).then_some(())
    });
    drop(running_b);
    let (running_b, _) = provider(b, rpc);
    let done = ok_json(&[
        "--json",
        "job",
        "status",
        "0",
        "--wait",
        "--timeout",
        "300",
        "--home",
        h,
    ]);
    assert_eq!(done["job"]["status"], "done", "{done}");
    assert_eq!(done["job"]["committed_steps"], 400);
    assert_eq!(done["job"]["provider"], address_b.as_str());

    let verified = ok_json(&["--json", "job", "verify", "0", "--data", &data, "--home", h]);
    assert_eq!(verified["matches"], true, "{verified}");
    assert_eq!(verified["steps_checked"], 400);

    let out = dir.path().join("model");
    let o = out.to_str().unwrap();
    let fetched = ok_json(&[
        "--json", "job", "fetch", "0", "--out", o, "--data", &data, "--home", h,
    ]);
    assert_eq!(fetched["hash"], done["job"]["last_hash"]);
    let accuracy = fetched["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.9, "accuracy {accuracy}");
    let zkm = out.join("model.zkm");
    let compiled = ok_json(&[
        "--json",
        "zk",
        "compile",
        &format!("{o}/model.onnx"),
        "--calibration",
        &format!("{o}/calibration.json"),
        "-o",
        zkm.to_str().unwrap(),
    ]);
    assert_eq!(compiled["input_shape"], serde_json::json!([4]));

    // A cheating provider: job 1, on B's lease, is trained by this test with B's key, wrong
    // from step 7 on.
    drop(running_b);
    fails_with(
        &[
            "job",
            "submit",
            "--lease",
            "1",
            "--data",
            &data,
            "--hidden",
            "8",
            "--steps",
            "30",
            "--checkpoint-every",
            "10",
            "--from",
            "alice",
            "--home",
            h,
        ],
        "hibana job upload 1",
    );
    let spec: hibana_train::TrainingSpec =
        serde_json::from_value(job(h, "1")["spec"].clone()).unwrap();
    let text = std::fs::read_to_string(&data).unwrap();
    let rows = hibana_train::Dataset::from_jsonl(&text).unwrap();
    let mut trainer = hibana_train::Trainer::new(&spec).unwrap();
    let mut hashes = Vec::new();
    for step in 1..=30u64 {
        trainer.next_step(&rows).unwrap();
        let mut params = trainer.params().to_vec();
        if step == 7 {
            params[3] += 1;
            let hash = hibana_train::state_hash(step, &params);
            trainer = hibana_train::Trainer::resume(&spec, step, params.clone(), &hash).unwrap();
        }
        hashes.push(hibana_train::state_hash(step, &params));
    }
    let key_file: Value =
        serde_json::from_slice(&std::fs::read(bhome.join("provider_key.json")).unwrap()).unwrap();
    let secret: [u8; 32] = hex::decode(key_file["secret_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = hibana_types::SecretKey::from_bytes(secret);
    let client = hibana_rpc::RpcClient::new(rpc).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        for (i, chunk) in hashes.chunks(10).enumerate() {
            let receipt = client
                .send(
                    &key,
                    vec![hibana_types::Message::CommitSteps(
                        hibana_types::CommitSteps {
                            job: 1,
                            after: 10 * i as u64,
                            hashes: chunk.to_vec(),
                        },
                    )],
                    None,
                )
                .await
                .unwrap();
            assert!(receipt.is_success(), "{receipt:?}");
        }
    });
    assert_eq!(job(h, "1")["status"], "done");

    let out = hibana(&["--json", "job", "verify", "1", "--data", &data, "--home", h]);
    assert!(!out.status.success());
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["first_wrong_step"], 7, "{verdict}");

    let bond_before = amount(
        &ok_json(&[
            "--json", "market", "provider", "show", &address_b, "--home", h,
        ])["bond"],
    );
    let receipt = ok_json(&[
        "--json", "job", "dispute", "1", "--data", &data, "--from", "bob", "--home", h,
    ]);
    assert_eq!(receipt["outcome"]["status"], "success", "{receipt}");
    let refuted = receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "market.job_refuted")
        .unwrap_or_else(|| panic!("no refutation in {receipt}"));
    assert!(refuted.to_string().contains("\"7\""), "{refuted}");
    let j = job(h, "1");
    assert_eq!(j["status"], "refuted");
    assert_eq!(j["refuted_step"], 7);
    let bond_after = amount(
        &ok_json(&[
            "--json", "market", "provider", "show", &address_b, "--home", h,
        ])["bond"],
    );
    assert_eq!(
        bond_before - bond_after,
        10_000_000_000,
        "the slash is 10 HIB"
    );
    let lease = ok_json(&["--json", "lease", "show", "1", "--home", h]);
    assert_eq!(lease["lease"]["status"], "closed");
    fails_with(
        &[
            "job", "dispute", "0", "--data", &data, "--from", "bob", "--home", h,
        ],
        "nothing to dispute",
    );
    let _ = BIN;
}

#[test]
fn two_providers_train_one_job_data_parallel_as_well_as_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let h = home.to_str().unwrap();
    let (_devnet, _) = start_command(&mut chain_devnet_command(h, 200));
    let rpc = std::fs::read_to_string(home.join("rpc.url")).unwrap();
    let rpc = rpc.trim();
    let data = dataset();
    // A trains on one thread, B on two: their steps and averages agree bit for bit regardless.
    let (mut running, addresses) = two_leased_providers(dir.path(), h, rpc, ["1", "2"]);
    let submit = |with: &str, steps: &str| {
        vec![
            "--json".to_string(),
            "job".into(),
            "submit".into(),
            "--lease".into(),
            "0".into(),
            "--with".into(),
            with.into(),
            "--data".into(),
            data.clone(),
            "--hidden".into(),
            "16".into(),
            "--steps".into(),
            steps.into(),
            "--checkpoint-every".into(),
            "20".into(),
            "--from".into(),
            "alice".into(),
            "--home".into(),
            h.into(),
        ]
    };
    let run = |with: &str, steps: &str| {
        let v = submit(with, steps);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        let out = hibana(&refs);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out, text)
    };
    // Bad input: the same lease twice, steps that are not whole rounds.
    let (out, text) = run("0", "400");
    assert!(
        !out.status.success() && text.contains("named twice"),
        "{text}"
    );
    let (out, text) = run("1", "410");
    assert!(
        !out.status.success() && text.contains("whole rounds"),
        "{text}"
    );
    let (out, text) = run("1", "400");
    assert!(out.status.success(), "{text}");
    let submitted: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(submitted["workers"], 2, "{submitted}");
    let id = submitted["job"].as_u64().unwrap().to_string();

    // B is killed (kill -9) after two rounds; a third provider, C, takes over its worker with
    // `job submit --reorder --replace`, from the last averaged round, while A waits for it.
    eventually("two averaged rounds", || {
        let c = job(h, &id)["committed_steps"].as_u64().unwrap();
        (c >= 80).then_some(())
    });
    running.truncate(1);
    let chome = dir.path().join("c");
    let (running_c, info_c) = provider(chome.to_str().unwrap(), rpc);
    let address_c = info_c["address"].as_str().unwrap().to_string();
    tx(&[
        "--json", "tx", "transfer", "--to", &address_c, "--amount", "20HIB", "--from", "alice",
        "--home", h,
    ]);
    fails_with(
        &[
            "job",
            "submit",
            "--reorder",
            &id,
            "--data",
            &data,
            "--from",
            "alice",
            "--home",
            h,
        ],
        "--replace",
    );
    let moved = ok_json(&[
        "--json",
        "job",
        "submit",
        "--reorder",
        &id,
        "--replace",
        "1",
        "--data",
        &data,
        "--from",
        "alice",
        "--home",
        h,
    ]);
    assert_eq!(moved["provider"], address_c.as_str(), "{moved}");
    let from_step = moved["from_step"].as_u64().unwrap();
    assert!((80..400).contains(&from_step), "{moved}");
    // `job status` shows each worker's place in the round: C is worker 1 now, on the new lease.
    let status = ok_json(&["--json", "job", "status", &id, "--home", h]);
    let workers = status["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{status}");
    assert_eq!(workers[1]["provider"], address_c.as_str(), "{status}");
    assert_eq!(workers[1]["lease"], moved["lease"], "{status}");
    assert_eq!(workers[1]["lease_active"], true, "{status}");

    let done = ok_json(&[
        "--json",
        "job",
        "status",
        &id,
        "--wait",
        "--timeout",
        "300",
        "--home",
        h,
    ]);
    assert_eq!(done["job"]["status"], "done", "{done}");
    assert_eq!(done["job"]["committed_steps"], 400);
    assert_eq!(done["job"]["provider"], addresses[0].as_str());
    assert_eq!(done["job"]["with"][0]["provider"], address_c.as_str());
    // Every worker step (400) and every round's average (10) re-checked, bit for bit.
    let verified = ok_json(&["--json", "job", "verify", &id, "--data", &data, "--home", h]);
    assert_eq!(verified["matches"], true, "{verified}");
    assert_eq!(verified["hashes_checked"], 410, "{verified}");

    let out = dir.path().join("model");
    let fetched = ok_json(&[
        "--json",
        "job",
        "fetch",
        &id,
        "--out",
        out.to_str().unwrap(),
        "--data",
        &data,
        "--home",
        h,
    ]);
    assert_eq!(fetched["hash"], done["job"]["last_hash"]);
    let two = fetched["accuracy"].as_f64().unwrap();
    // One provider alone, the same job: the reference accuracy.
    let spec: hibana_train::TrainingSpec =
        serde_json::from_value(done["job"]["spec"].clone()).unwrap();
    let rows = hibana_train::Dataset::from_jsonl(&std::fs::read_to_string(&data).unwrap()).unwrap();
    let mut alone = hibana_train::Trainer::new(&spec).unwrap();
    for _ in 0..spec.steps {
        alone.next_step(&rows).unwrap();
    }
    let one =
        hibana_train::correct(&spec, alone.params(), &rows).unwrap() as f64 / rows.len() as f64;
    assert!(
        two >= one - 0.05 && two >= 0.85,
        "two providers {two:.3}, one alone {one:.3}"
    );
    eprintln!("data parallel: two providers {two:.3}, one alone {one:.3}");
    drop(running);
    drop(running_c);
}

/// Two providers (`a` and `b` under `dir`, training on `threads` threads each), funded and
/// registered, and alice's leases 0 (with a) and 1 (with b): the processes and addresses.
fn two_leased_providers(
    dir: &std::path::Path,
    h: &str,
    rpc: &str,
    threads: [&str; 2],
) -> (Vec<Proc>, Vec<String>) {
    let mut running = Vec::new();
    let mut addresses = Vec::new();
    for (name, threads) in ["a", "b"].into_iter().zip(threads) {
        let phome = dir.join(name);
        let (proc, info) = start_command(
            provider_command(phome.to_str().unwrap(), rpc).env("RAYON_NUM_THREADS", threads),
        );
        let address = info["address"].as_str().unwrap().to_string();
        tx(&[
            "--json", "tx", "transfer", "--to", &address, "--amount", "20HIB", "--from", "alice",
            "--home", h,
        ]);
        running.push(proc);
        addresses.push(address);
    }
    eventually("both providers' registrations", || {
        let list = ok_json(&["--json", "market", "provider", "list", "--home", h]);
        (list.as_array().unwrap().len() == 2).then_some(())
    });
    // Two orders; both providers bid on each; alice takes a for lease 0 and b for lease 1.
    for (order, address) in addresses.iter().enumerate() {
        ok_json(&[
            "--json",
            "market",
            "order",
            "create",
            "--min-cores",
            "1",
            "--duration",
            "5000",
            "--max-price",
            "0.002HIB",
            "--deposit",
            "5HIB",
            "--from",
            "alice",
            "--home",
            h,
        ]);
        let id = order.to_string();
        eventually("both bids", || {
            let o = ok_json(&["--json", "market", "order", "show", &id, "--home", h]);
            (o["bids"].as_array().unwrap().len() == 2).then_some(())
        });
        tx(&[
            "--json",
            "market",
            "accept",
            &id,
            "--provider",
            address,
            "--from",
            "alice",
            "--home",
            h,
        ]);
    }
    (running, addresses)
}

/// The key a provider process keeps in its home.
fn provider_key(home: &std::path::Path) -> hibana_types::SecretKey {
    let file: Value =
        serde_json::from_slice(&std::fs::read(home.join("provider_key.json")).unwrap()).unwrap();
    let secret: [u8; 32] = hex::decode(file["secret_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    hibana_types::SecretKey::from_bytes(secret)
}

#[test]
fn a_worker_that_withholds_its_part_is_retrained_and_its_wrong_step_disputed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("devnet");
    let h = home.to_str().unwrap();
    let (_devnet, _) = start_command(&mut chain_devnet_command(h, 200));
    let rpc = std::fs::read_to_string(home.join("rpc.url")).unwrap();
    let rpc = rpc.trim();
    let data = dataset();
    let (mut running, addresses) = two_leased_providers(dir.path(), h, rpc, ["2", "2"]);
    // From here this test is provider B: its process stops, and the test signs with its key.
    running.truncate(1);
    let b = provider_key(&dir.path().join("b"));
    fails_with(
        &[
            "job",
            "submit",
            "--lease",
            "0",
            "--with",
            "1",
            "--data",
            &data,
            "--hidden",
            "8",
            "--steps",
            "40",
            "--checkpoint-every",
            "10",
            "--from",
            "alice",
            "--home",
            h,
        ],
        "hibana job upload 0",
    );
    let spec: hibana_train::TrainingSpec =
        serde_json::from_value(job(h, "0")["spec"].clone()).unwrap();
    let rows = hibana_train::Dataset::from_jsonl(&std::fs::read_to_string(&data).unwrap()).unwrap();
    let plan = hibana_train::diloco::Plan {
        workers: 2,
        local_steps: 10,
    };
    let client = hibana_rpc::RpcClient::new(rpc).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let commit = |after: u64, hashes: Vec<hibana_types::Hash>| {
        let receipt = runtime
            .block_on(client.send(
                &b,
                vec![hibana_types::Message::CommitSteps(
                    hibana_types::CommitSteps {
                        job: 0,
                        after,
                        hashes,
                    },
                )],
                None,
            ))
            .unwrap();
        assert!(receipt.is_success(), "{receipt:?}");
    };

    // Round 0, honest but withheld: A cannot fetch B's part, re-trains it, finds it right and
    // commits the average.
    let start = hibana_train::init_params(&spec);
    let (b0, hashes) =
        hibana_train::diloco::worker_round_hashes(&spec, &rows, &plan, &start, 0, 1).unwrap();
    commit(0, hashes);
    let round0 = eventually("round 0's average", || {
        let j = job(h, "0");
        (j["committed_steps"] == 20).then_some(j)
    });
    let a0 = hibana_train::diloco::worker_round(&spec, &rows, &plan, &start, 0, 0).unwrap();
    let avg0 = hibana_train::diloco::average(&[a0, b0]).unwrap();
    assert_eq!(
        round0["last_hash"],
        serde_json::to_value(hibana_train::state_hash(20, &avg0)).unwrap()
    );

    // Round 1: B skews its local step 3 (global step 28) and withholds again; A re-trains the
    // part, and disputes that step.
    let mut params = avg0;
    let mut hashes = Vec::new();
    for local in 0..10 {
        let step = hibana_train::diloco::global_step(&plan, 1, local, 1);
        let batch: Vec<&hibana_train::Row> = hibana_train::batch_indices(&spec, step)
            .iter()
            .map(|&i| &rows.rows()[i as usize])
            .collect();
        params = hibana_train::step(&spec, &params, &batch).unwrap();
        if local == 3 {
            params[0] += 1;
        }
        hashes.push(hibana_train::state_hash(step, &params));
    }
    commit(20, hashes);
    let refuted = eventually("A's dispute", || {
        let j = job(h, "0");
        (j["status"] == "refuted").then_some(j)
    });
    assert_eq!(refuted["refuted_step"], 28, "{refuted}");
    let shown = ok_json(&[
        "--json",
        "market",
        "provider",
        "show",
        &addresses[1],
        "--home",
        h,
    ]);
    assert_eq!(amount(&shown["bond"]), 0, "B's 10 HIB bond is slashed");
    drop(running);
}
