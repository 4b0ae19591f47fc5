//! End-to-end: a 4-validator network of real `hibana node` processes on loopback, running the
//! Malachite BFT engine. They finalise the same blocks, a transfer sent to one node is final on
//! all, the network survives one crashed validator (which catches up after a restart), and it
//! stops finalising with two of four down until one comes back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod support;

use hibana_rpc::{BlockId, RpcClient};
use hibana_types::{Hash, TxStatus};
use serde_json::Value;

use support::{
    BIN,
    nodes::{
        NodeProcess, assert_same_chain, height, hibana_json, init_network, log_tail, metric, rt,
        sample, start_network, wait_for_height,
    },
};

#[test]
fn four_validators_finalise_agree_survive_a_crash_and_halt_without_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let info = init_network(&out, 4);
    assert_eq!(info["nodes"].as_array().unwrap().len(), 4);
    // Small proposal parts, so that blocks of a few transfers already travel in many parts.
    for k in 0..4 {
        set_p2p(&out.join(format!("node{k}")), "proposal_part_bytes", "1024");
    }
    let rt = rt();
    let mut nodes: Vec<NodeProcess> = (0..4)
        .map(|k| NodeProcess::start(&out.join(format!("node{k}"))))
        .collect();

    // 1. All four finalise blocks and agree on every block and state root.
    let start = Instant::now();
    wait_for_height(
        &rt,
        &nodes.iter().collect::<Vec<_>>(),
        5,
        Duration::from_secs(60),
    );
    let first_five = start.elapsed();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    assert_same_chain(&rt, &all, 5);
    let validators = rt.block_on(nodes[0].client().status()).unwrap().validators;
    assert_eq!(validators.len(), 4);
    // Metrics: each node sees its three peers and records time to finality.
    assert_eq!(
        metric(&nodes[0], "malachitebft_core_consensus_connected_peers"),
        3.0
    );
    assert!(metric(&nodes[0], "hibana_finality_seconds_count") >= 5.0);
    assert!(metric(&nodes[0], "hibana_height") >= 5.0);

    // 2. A transfer sent to node 1 is final on all four with the same receipt.
    let node1 = out.join("node1");
    let sent = Command::new(BIN)
        .args(["--json", "tx", "transfer", "--home"])
        .arg(&node1)
        .args([
            "--from",
            "alice",
            "--to",
            "bob",
            "--amount",
            "2.5HIB",
            "--no-wait",
        ])
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "transfer failed: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let hash: Hash = serde_json::from_slice::<Value>(&sent.stdout).unwrap()["hash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let sent_at = Instant::now();
    let deadline = sent_at + Duration::from_secs(60);
    let mut heights = Vec::new();
    for node in &nodes {
        loop {
            if let Ok(TxStatus::Committed { receipt }) = rt.block_on(node.client().tx_status(&hash))
            {
                assert!(receipt.is_success());
                heights.push(receipt.height);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "transfer not final on {}",
                node.home.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(heights.windows(2).all(|w| w[0] == w[1]), "{heights:?}");
    let transfer_final = sent_at.elapsed();

    // A burst of transfers from a new account, sent to node 2: blocks of many transactions,
    // streamed in 1 KiB parts, are final everywhere in the same order.
    let burst = hibana_types::SecretKey::generate();
    let funded = Command::new(BIN)
        .args(["--json", "tx", "transfer", "--home"])
        .arg(&node1)
        .args(["--from", "alice", "--to"])
        .arg(burst.public_key().address().to_string())
        .args(["--amount", "100HIB"])
        .output()
        .unwrap();
    assert!(
        funded.status.success(),
        "{}",
        String::from_utf8_lossy(&funded.stderr)
    );
    let status = rt.block_on(nodes[2].client().status()).unwrap();
    let hashes: Vec<Hash> = (0..60)
        .map(|nonce| {
            let tx = hibana_types::Transaction {
                chain_id: status.chain_id.clone(),
                signer: burst.public_key(),
                nonce,
                fee: hibana_types::Amount::from_hib(1).unwrap(),
                messages: vec![hibana_types::Message::Transfer(hibana_types::Transfer {
                    to: validators[0].address,
                    amount: hibana_types::Amount(1),
                })],
            }
            .sign(&burst);
            rt.block_on(nodes[2].client().submit(&tx)).unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut included = Vec::new();
    for hash in &hashes {
        for node in &nodes {
            loop {
                if let Ok(TxStatus::Committed { receipt }) =
                    rt.block_on(node.client().tx_status(hash))
                {
                    included.push(receipt.height);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "burst not final on {}",
                    node.home.display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let last = *included.iter().max().unwrap();
    assert_same_chain(&rt, &nodes.iter().collect::<Vec<_>>(), last);
    let biggest = (1..=last)
        .map(|h| {
            rt.block_on(nodes[0].client().block(Some(BlockId::Height(h))))
                .unwrap()
                .map_or(0, |b| b.block.txs.len())
        })
        .max()
        .unwrap();
    assert!(
        biggest >= 10,
        "the largest block holds {biggest} transactions"
    );

    let mean_finality = metric(&nodes[0], "hibana_finality_seconds_sum")
        / metric(&nodes[0], "hibana_finality_seconds_count");

    // 3. Node 3 crashes: the other three keep finalising, and count its missed votes.
    let missed_by = |node: &NodeProcess, k: usize| {
        let address = info["nodes"][k]["validator"].as_str().unwrap();
        sample(
            node,
            &format!("hibana_missed_votes_total{{validator=\"{address}\"}}"),
        )
        .unwrap_or(0.0)
    };
    let missed_before = missed_by(&nodes[0], 3);
    nodes[3].kill();
    let at_crash = height(&rt, &nodes[0]);
    let live: Vec<&NodeProcess> = nodes[..3].iter().collect();
    wait_for_height(&rt, &live, at_crash + 5, Duration::from_secs(60));
    let missed = missed_by(&nodes[0], 3) - missed_before;
    assert!(missed >= 4.0, "node 3 missed {missed} votes while down");
    let address0 = info["nodes"][0]["validator"].as_str().unwrap();
    assert!(
        metric(
            &nodes[0],
            &format!("hibana_signed_votes_total{{validator=\"{address0}\"}}")
        ) >= 5.0
    );

    // 4. It restarts (from its WAL and store) and catches up through sync.
    nodes[3].restart();
    let target = height(&rt, &nodes[0]);
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    wait_for_height(&rt, &all, target + 2, Duration::from_secs(60));
    assert_same_chain(&rt, &all, target + 2);

    // 5. Two of four stopped: no quorum, no block is finalised...
    nodes[2].kill();
    nodes[3].kill();
    std::thread::sleep(Duration::from_secs(2));
    let stalled = height(&rt, &nodes[0]).max(height(&rt, &nodes[1]));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        height(&rt, &nodes[0]),
        stalled,
        "node 0 finalised without a quorum"
    );
    assert_eq!(
        height(&rt, &nodes[1]),
        stalled,
        "node 1 finalised without a quorum"
    );

    // ...until one comes back.
    nodes[3].restart();
    let live: Vec<&NodeProcess> = [&nodes[0], &nodes[1], &nodes[3]].into_iter().collect();
    wait_for_height(&rt, &live, stalled + 3, Duration::from_secs(90));
    assert_same_chain(&rt, &live, stalled + 3);
    eprintln!(
        "4 validators: first 5 blocks in {first_five:?}; transfer final on all 4 in \
         {transfer_final:?}; mean proposal-to-commit {mean_finality:.3} s"
    );
}

#[test]
fn testnet_runs_validators_as_children_and_stops_them_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("testnet");
    let log = dir.path().join("testnet.log");
    let mut child = Command::new(BIN)
        .args([
            "--json",
            "testnet",
            "--validators",
            "2",
            "--block-time-ms",
            "200",
            "--out",
        ])
        .arg(&out)
        .env("HIBANA_LOG", "warn")
        .stdout(Stdio::piped())
        // The validators' logs (they inherit it), shown if the testnet makes no blocks.
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let urls: Vec<String> = info["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["rpc"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls.len(), 2);
    let rt = rt();
    let deadline = Instant::now() + Duration::from_secs(60);
    for url in &urls {
        let client = RpcClient::new(url).unwrap();
        while rt.block_on(client.status()).map(|s| s.height).unwrap_or(0) < 3 {
            if Instant::now() >= deadline {
                let tail = log_tail(&log, 6000);
                panic!("{url} made no blocks; the testnet's log ends:\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    // The validators are gone with it.
    for url in &urls {
        let client = RpcClient::new(url).unwrap();
        assert!(rt.block_on(client.status()).is_err(), "{url} still serves");
    }
}

/// Two conflicting precommits signed with `home`'s validator key, as the engine would sign them.
fn forge_equivocation(home: &Path, chain_id: &str, height: u64) -> Value {
    let file: Value =
        serde_json::from_slice(&std::fs::read(home.join("validator_key.json")).unwrap()).unwrap();
    let secret: [u8; 32] = hex::decode(file["secret_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = hibana_types::SecretKey::from_bytes(secret);
    let vote = |value: &[u8]| {
        let vote = hibana_types::ConsensusVote {
            kind: hibana_types::VoteKind::Precommit,
            height,
            round: hibana_types::VoteRound::Some(0),
            value: hibana_types::VoteValue::Block(Hash::digest(value)),
            validator: key.public_key().address(),
        };
        let signature = key.sign(&hibana_types::consensus_sign_bytes(chain_id, "vote", &vote));
        hibana_types::SignedVote { vote, signature }
    };
    serde_json::to_value(hibana_types::Equivocation {
        public_key: key.public_key(),
        first: vote(b"block one"),
        second: vote(b"block two"),
    })
    .unwrap()
}

#[test]
fn an_equivocating_validator_is_slashed_jailed_and_the_rest_finalise() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let (_, nodes) = start_network(&out, 4);
    let rt = rt();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    wait_for_height(&rt, &all, 3, Duration::from_secs(60));
    let status = rt.block_on(nodes[0].client().status()).unwrap();
    assert_eq!(status.validators.len(), 4);
    let cheater = status
        .validators
        .iter()
        .find(|v| {
            let file: Value = serde_json::from_slice(
                &std::fs::read(out.join("node3/validator_key.json")).unwrap(),
            )
            .unwrap();
            v.public_key.to_string() == file["public_key"].as_str().unwrap()
        })
        .expect("node 3 is a validator")
        .clone();

    let evidence = forge_equivocation(&out.join("node3"), &status.chain_id, status.height);
    let file = dir.path().join("evidence.json");
    std::fs::write(&file, serde_json::to_vec(&evidence).unwrap()).unwrap();
    let submit = || {
        Command::new(BIN)
            .args(["--json", "tx", "evidence", "--file"])
            .arg(&file)
            .arg("--home")
            .arg(out.join("node0"))
            .args(["--from", "alice"])
            .output()
            .unwrap()
    };
    let sent = submit();
    assert!(
        sent.status.success(),
        "evidence refused: {}{}",
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr)
    );
    let receipt: Value = serde_json::from_slice(&sent.stdout).unwrap();
    let events = receipt["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["kind"] == "staking.equivocation"),
        "{receipt}"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "staking.jail"),
        "{receipt}"
    );
    let punished_at = receipt["height"].as_u64().unwrap();

    // The same evidence again is refused, with the reason.
    let again = submit();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already punished"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // Evidence with a broken signature is refused too.
    let mut forged = evidence.clone();
    forged["second"]["vote"]["round"] = serde_json::json!({"some": 1});
    std::fs::write(&file, serde_json::to_vec(&forged).unwrap()).unwrap();
    let bad = submit();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not for the same height, round and step"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // Every node sees the validator slashed and out of the set, and the other three keep
    // finalising the same blocks without it.
    let honest: Vec<&NodeProcess> = nodes[..3].iter().collect();
    wait_for_height(&rt, &honest, punished_at + 5, Duration::from_secs(60));
    for node in &honest {
        let s = rt.block_on(node.client().status()).unwrap();
        assert_eq!(s.validators.len(), 3, "{}", node.home.display());
        assert!(s.validators.iter().all(|v| v.address != cheater.address));
    }
    assert_same_chain(&rt, &honest, punished_at + 5);
    let account = rt
        .block_on(nodes[0].client().account_verified(&cheater.address))
        .unwrap();
    let slashed = cheater.power.0 - cheater.power.0 / 20;
    assert_eq!(account.stake.0, slashed, "5% of the self-bond is burned");
}

/// Sets `key = value` in the `[p2p]` section of a node home's `config.toml`.
fn set_p2p(home: &Path, key: &str, value: &str) {
    let path = home.join("config.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let (head, p2p) = config.split_once("[p2p]\n").expect("a [p2p] section");
    let mut lines: Vec<String> = p2p
        .lines()
        .filter(|l| !l.starts_with(&format!("{key} =")))
        .map(str::to_string)
        .collect();
    lines.insert(0, format!("{key} = {value}"));
    std::fs::write(&path, format!("{head}[p2p]\n{}\n", lines.join("\n"))).unwrap();
}

#[test]
fn a_validator_joins_by_staking_and_its_votes_then_count() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let (net, mut nodes) = start_network(&out, 3);
    let rt = rt();
    wait_for_height(
        &rt,
        &nodes.iter().collect::<Vec<_>>(),
        3,
        Duration::from_secs(60),
    );

    // A fourth node joins with the network's genesis and follows the chain through sync.
    let joiner_home = dir.path().join("joiner");
    let peers: Vec<&str> = net["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["p2p"].as_str().unwrap())
        .collect();
    let genesis = out.join("node0/genesis.json");
    let mut args = vec![
        "--json",
        "init",
        "--home",
        joiner_home.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ];
    for p in &peers {
        args.extend(["--peer", p]);
    }
    let joined = hibana_json(&args);
    let joiner_address = joined["node"]["validator"].as_str().unwrap().to_string();
    nodes.push(NodeProcess::start(&joiner_home));
    let now = height(&rt, &nodes[0]);
    wait_for_height(&rt, &[&nodes[3]], now, Duration::from_secs(60));
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    assert_same_chain(&rt, &all, now);
    let set = rt.block_on(nodes[0].client().status()).unwrap().validators;
    assert_eq!(set.len(), 3, "a follower is not a validator yet");

    // Funded by alice, it bonds stake to itself. Both transactions go to the follower's own
    // RPC: it never proposes, so they are final only because it gossips them to the
    // validators' mempools. Three equal validators need all three for a quorum; with the
    // joiner's stake, any two of them and the joiner have one.
    let node0 = out.join("node0");
    let rpc3 = nodes[3].rpc.clone();
    hibana_json(&[
        "--json",
        "--rpc",
        &rpc3,
        "tx",
        "transfer",
        "--home",
        node0.to_str().unwrap(),
        "--from",
        "alice",
        "--to",
        &joiner_address,
        "--amount",
        "600000HIB",
    ]);
    let staked = hibana_json(&[
        "--json",
        "--rpc",
        &rpc3,
        "tx",
        "stake",
        "--amount",
        "500000HIB",
        "--validator",
        "self",
        "--from",
        "validator",
        "--home",
        joiner_home.to_str().unwrap(),
    ]);
    assert_eq!(staked["outcome"]["status"], "success", "{staked}");
    let bonded_at = staked["height"].as_u64().unwrap();
    // The change in block h takes effect at h + 1.
    wait_for_height(&rt, &all, bonded_at + 2, Duration::from_secs(60));
    let set = rt.block_on(nodes[0].client().status()).unwrap().validators;
    assert_eq!(set.len(), 4, "{set:?}");

    // Proof that it votes: with one original validator down, blocks need the joiner's
    // precommits, and they keep coming.
    nodes[2].kill();
    let at = height(&rt, &nodes[0]);
    let live: Vec<&NodeProcess> = [&nodes[0], &nodes[1], &nodes[3]].into_iter().collect();
    wait_for_height(&rt, &live, at + 4, Duration::from_secs(60));
    assert_same_chain(&rt, &live, at + 4);
    assert!(
        metric(
            &nodes[0],
            &format!("hibana_signed_votes_total{{validator=\"{joiner_address}\"}}")
        ) >= 3.0
    );
}

/// node3's operator starts a second node with the same validator key (a fail-over gone wrong):
/// the two sign different blocks and votes at the heights where node3 proposes. The honest
/// validators notice the conflicting votes among those they receive, submit the evidence
/// themselves, and the chain slashes and jails node3; the rest go on finalising one chain.
#[test]
fn a_double_signing_validator_is_caught_by_its_peers_slashed_and_jailed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let net = init_network(&out, 4);
    let rt = rt();

    // The twin: a home for the same genesis and peers, with its own network identity (the key
    // `init` made for it) and node3's validator key.
    let twin = dir.path().join("twin");
    let mut args = vec![
        "--json".to_string(),
        "init".into(),
        "--home".into(),
        twin.to_str().unwrap().into(),
        "--genesis".into(),
        out.join("node0/genesis.json").to_str().unwrap().into(),
    ];
    for node in net["nodes"].as_array().unwrap() {
        args.extend(["--peer".into(), node["p2p"].as_str().unwrap().to_string()]);
    }
    hibana_json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::rename(twin.join("validator_key.json"), twin.join("node_key.json")).unwrap();
    std::fs::copy(
        out.join("node3/validator_key.json"),
        twin.join("validator_key.json"),
    )
    .unwrap();
    set_p2p(&twin, "node_key_file", "\"node_key.json\"");

    let mut nodes: Vec<NodeProcess> = (0..4)
        .map(|k| NodeProcess::start(&out.join(format!("node{k}"))))
        .collect();
    nodes.push(NodeProcess::start(&twin));
    let status = rt.block_on(nodes[0].client().status()).unwrap();
    let key: Value =
        serde_json::from_slice(&std::fs::read(out.join("node3/validator_key.json")).unwrap())
            .unwrap();
    let cheater = status
        .validators
        .iter()
        .find(|v| v.public_key.to_string() == key["public_key"].as_str().unwrap())
        .expect("node 3 is a validator")
        .clone();

    // Nobody submits anything by hand: wait until the validator set shrinks to three.
    let start = Instant::now();
    loop {
        let s = rt.block_on(nodes[0].client().status()).unwrap();
        if s.validators.len() == 3 {
            assert!(s.validators.iter().all(|v| v.address != cheater.address));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no punishment after {:?}; equivocations detected: {:?}",
            start.elapsed(),
            nodes[..3]
                .iter()
                .map(|n| sample(n, "hibana_equivocations_detected_total"))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let account = rt
        .block_on(nodes[0].client().account_verified(&cheater.address))
        .unwrap();
    assert_eq!(
        account.stake.0,
        cheater.power.0 - cheater.power.0 / 20,
        "5% of the self-bond is burned, once"
    );
    // An honest node found it, kept the evidence in a file `hibana tx evidence` accepts, and
    // submitted it.
    let found: Vec<usize> = (0..3)
        .filter(|&k| metric(&nodes[k], "hibana_evidence_submitted_total") >= 1.0)
        .collect();
    assert!(!found.is_empty(), "no honest node submitted evidence");
    // The two nodes signing with node3's key see each other's votes as an equivocation, but do
    // not report their own key.
    for node in &nodes[3..] {
        assert_eq!(metric(node, "hibana_evidence_submitted_total"), 0.0);
    }
    let files: Vec<PathBuf> =
        std::fs::read_dir(out.join(format!("node{}/data/evidence", found[0])))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    assert!(!files.is_empty());
    let evidence: hibana_types::Equivocation =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    evidence.check(&status.chain_id).unwrap();
    assert_eq!(evidence.first.vote.validator, cheater.address);

    // The three honest validators keep finalising the same blocks.
    let honest: Vec<&NodeProcess> = nodes[..3].iter().collect();
    let now = height(&rt, &nodes[0]);
    wait_for_height(&rt, &honest, now + 3, Duration::from_secs(60));
    assert_same_chain(&rt, &honest, now + 3);
}

/// A peer that is not a validator floods node 0 over libp2p with junk on every consensus
/// channel: random bytes of every size up to 256 KiB as fast as it can for 6 s, then messages
/// over the 4 MiB limit. Node 0 drops and counts what it cannot decode, and the validators keep
/// finalising the same blocks and stay up.
#[test]
fn a_flooding_peer_with_junk_messages_is_dropped_counted_and_survived() {
    use malachitebft_network::{Bytes, Channel};

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let (net, mut nodes) = start_network(&out, 4);
    let rt = rt();
    let refs: Vec<&NodeProcess> = nodes.iter().collect();
    wait_for_height(&rt, &refs, 2, Duration::from_secs(60));
    let before = metric(&nodes[0], "hibana_p2p_malformed_messages_total");

    let target = net["nodes"][0]["p2p"].as_str().unwrap().parse().unwrap();
    let flooder = stranger(&rt, target);
    // Junk from a fixed xorshift stream: sizes from 0 bytes to 6 MiB.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let start_height = height(&rt, &nodes[0]);
    let junk = |size: usize, next: &mut dyn FnMut() -> u64| -> Bytes {
        let bytes: Vec<u8> = (0..size.div_ceil(8))
            .flat_map(|_| next().to_le_bytes())
            .take(size)
            .collect();
        Bytes::from(bytes)
    };
    let channels = [
        Channel::Consensus,
        Channel::ProposalParts,
        Channel::Liveness,
    ];
    // Phase 1: junk within the size limit, as fast as the peer can send it.
    let flood_until = Instant::now() + Duration::from_secs(6);
    let mut sent = 0u64;
    while Instant::now() < flood_until {
        let size = match next() % 100 {
            0..=4 => 0,
            5..=79 => (next() % 512) as usize,
            _ => (next() % (256 << 10)) as usize,
        };
        let data = junk(size, &mut next);
        let channel = channels[(next() % 3) as usize];
        rt.block_on(flooder.publish(channel, data)).unwrap();
        sent += 1;
        if sent.is_multiple_of(64) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // A loaded machine may still be decoding the flood: wait for the count, a while at most.
    let counted_by = Instant::now() + Duration::from_secs(15);
    let mut dropped = metric(&nodes[0], "hibana_p2p_malformed_messages_total") - before;
    while dropped < 0.9 * sent as f64 && Instant::now() < counted_by {
        std::thread::sleep(Duration::from_millis(250));
        dropped = metric(&nodes[0], "hibana_p2p_malformed_messages_total") - before;
    }
    assert!(
        dropped >= 0.9 * sent as f64,
        "node 0 counted {dropped} malformed messages of {sent} junk ones sent"
    );
    // Phase 2: well-formed gossip of transactions that fail here (signed by another key than
    // their signer's), a full batch at a time: the first batch spends the peer's budget, and
    // every later one is refused or cut short unchecked.
    let throttled_before =
        sample(&nodes[0], "hibana_gossip_batches_throttled_total").unwrap_or(0.0);
    let chain_id = rt.block_on(nodes[0].client().status()).unwrap().chain_id;
    let forger = hibana_types::SecretKey::generate();
    let batches = 12u64;
    for number in 1..=batches {
        let txs = (0..1024u64)
            .map(|nonce| {
                hibana_types::Transaction {
                    chain_id: chain_id.clone(),
                    signer: hibana_types::SecretKey::generate().public_key(),
                    nonce,
                    fee: hibana_types::Amount::from_hib(1).unwrap(),
                    messages: vec![hibana_types::Message::Transfer(hibana_types::Transfer {
                        to: forger.public_key().address(),
                        amount: hibana_types::Amount(1),
                    })],
                }
                .sign(&forger)
            })
            .collect();
        for data in
            hibana_consensus::bft::encode_gossip(&forger.public_key().address(), number, txs)
                .unwrap()
        {
            rt.block_on(flooder.publish(Channel::ProposalParts, data))
                .unwrap();
        }
    }
    let counted_by = Instant::now() + Duration::from_secs(15);
    let throttled = loop {
        let now = sample(&nodes[0], "hibana_gossip_batches_throttled_total").unwrap_or(0.0)
            - throttled_before;
        if now >= (batches - 1) as f64 || Instant::now() > counted_by {
            break now;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        throttled >= (batches - 1) as f64,
        "only {throttled} of {} over-budget gossip batches were refused",
        batches - 1
    );

    // Phase 3: messages over the 4 MiB limit.
    for _ in 0..5 {
        let size = (5 << 20) + (next() % (1 << 20)) as usize;
        let data = junk(size, &mut next);
        let channel = channels[(next() % 3) as usize];
        rt.block_on(flooder.publish(channel, data)).unwrap();
    }
    // Blocks kept coming during the flood and keep coming after it.
    let during = height(&rt, &nodes[0]);
    assert!(
        during >= start_height + 3,
        "only {} blocks during the flood ({sent} junk messages)",
        during - start_height
    );
    wait_for_height(&rt, &refs, during + 3, Duration::from_secs(60));
    for node in nodes.iter_mut() {
        let alive = node.child.as_mut().unwrap().try_wait().unwrap().is_none();
        assert!(alive, "{} exited during the flood", node.home.display());
    }
    let refs: Vec<&NodeProcess> = nodes.iter().collect();
    assert_same_chain(&rt, &refs, during + 3);
    rt.block_on(flooder.shutdown()).unwrap();
    eprintln!(
        "flood: {sent} junk messages, node 0 dropped {dropped} as malformed; {throttled} \
         gossip batches past the peer's budget refused unchecked"
    );
}

/// A zero-knowledge result travels as one large transaction (a STARK proof of about 150 KB and
/// its model's `.zkm`): sent to one validator's RPC, it is gossiped, finalised, and every
/// validator serves the verified result.
#[test]
fn a_stark_proof_transaction_is_gossiped_finalised_and_served_by_every_validator() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let (_, nodes) = start_network(&out, 3);
    let rt = rt();
    wait_for_height(
        &rt,
        &nodes.iter().collect::<Vec<_>>(),
        2,
        Duration::from_secs(60),
    );
    let zkm = dir.path().join("credit.zkm").display().to_string();
    let proof = dir.path().join("credit.proof").display().to_string();
    support::zk_compile("credit_mlp.onnx", "credit_calibration.json", &zkm);
    let proved = hibana_json(&[
        "--json",
        "zk",
        "prove",
        &zkm,
        "--input",
        &support::zk_testdata("credit_input.json"),
        "-o",
        &proof,
    ]);
    assert!(
        proved["proof_bytes"].as_u64().unwrap() > 100_000,
        "{proved}"
    );
    let node0 = out.join("node0").display().to_string();
    let registered = hibana_json(&[
        "--json",
        "--rpc",
        &nodes[1].rpc,
        "zk",
        "register",
        &zkm,
        "--home",
        &node0,
        "--from",
        "alice",
    ]);
    assert_eq!(registered["outcome"]["status"], "success", "{registered}");
    let submitted = hibana_json(&[
        "--json",
        "--rpc",
        &nodes[2].rpc,
        "zk",
        "submit",
        &zkm,
        &proof,
        "--home",
        &node0,
        "--from",
        "alice",
    ]);
    assert_eq!(submitted["outcome"]["status"], "success", "{submitted}");
    let id = submitted["result_id"].as_str().unwrap().to_string();
    let now = height(&rt, &nodes[2]);
    wait_for_height(
        &rt,
        &nodes.iter().collect::<Vec<_>>(),
        now,
        Duration::from_secs(60),
    );
    for node in &nodes {
        let shown = hibana_json(&["--json", "--rpc", &node.rpc, "zk", "result", &id]);
        assert_eq!(shown["output"], proved["output"], "{}", node.rpc);
    }
}

/// A validator whose clock runs an hour ahead proposes blocks from the future: the others
/// refuse them (a block may be at most a few seconds ahead of a validator's clock), so none of
/// its proposals is ever decided, and the chain goes on finalising in the rounds of the others.
#[test]
fn a_proposer_an_hour_ahead_never_gets_a_block_in_and_the_others_finalise() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let net = init_network(&out, 4);
    let skewed = net["nodes"][3]["validator"].as_str().unwrap().to_string();
    let rt = rt();
    let nodes: Vec<NodeProcess> = (0..4)
        .map(|k| {
            let home = out.join(format!("node{k}"));
            if k == 3 {
                NodeProcess::start_skewed(&home, "+1h")
            } else {
                NodeProcess::start(&home)
            }
        })
        .collect();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    // Every validator gets proposer turns in 16 heights (round-robin weighted by equal stake).
    wait_for_height(&rt, &all, 16, Duration::from_secs(120));
    let top = (0..4).map(|k| height(&rt, &nodes[k])).min().unwrap();
    assert_same_chain(&rt, &all, top);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let client = nodes[0].client();
    let mut proposers = std::collections::BTreeMap::new();
    for h in 1..=top {
        let block = rt
            .block_on(client.block(Some(BlockId::Height(h))))
            .unwrap()
            .unwrap()
            .block;
        assert_ne!(
            block.header.proposer.to_string(),
            skewed,
            "block {h} came from the validator an hour ahead"
        );
        assert!(
            block.header.time_ms <= now_ms + 5_000,
            "block {h} is from the future: {}",
            block.header.time_ms
        );
        *proposers
            .entry(block.header.proposer.to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(proposers.len(), 3, "{proposers:?}");
    // It did propose: the others refused its blocks for their time.
    let refusals: usize = (0..3)
        .map(|k| {
            std::fs::read_to_string(out.join(format!("node{k}")).join("test-node.log"))
                .unwrap_or_default()
                .matches("ahead of this validator's clock")
                .count()
        })
        .sum();
    assert!(refusals > 0, "no honest node saw a block from the future");
    eprintln!(
        "future proposer: {top} blocks, proposers {proposers:?}, {refusals} refusals of its blocks"
    );
}

/// A libp2p peer that is no validator, connected to the node at `target` (the engine's own
/// networking, as a stranger on the internet would run it); ready once the pubsub has
/// exchanged subscriptions.
fn stranger(
    rt: &tokio::runtime::Runtime,
    target: malachitebft_network::Multiaddr,
) -> malachitebft_network::handle::CtrlHandle {
    use malachitebft_network::{
        Config, DiscoveryConfig, GossipSubConfig, Keypair, PubSubProtocol, TransportProtocol,
    };
    let handle = rt.block_on(async move {
        let config = Config {
            listen_addr: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            persistent_peers: vec![target],
            discovery: DiscoveryConfig {
                enabled: false,
                ..DiscoveryConfig::default()
            },
            idle_connection_timeout: Duration::from_secs(60),
            transport: TransportProtocol::Tcp,
            gossipsub: GossipSubConfig::default(),
            pubsub_protocol: PubSubProtocol::Broadcast,
            rpc_max_size: 10 << 20,
            // Room to send messages larger than the validators accept.
            pubsub_max_size: 16 << 20,
            enable_sync: false,
        };
        malachitebft_network::spawn(
            Keypair::generate_ed25519(),
            config,
            malachitebft_metrics::SharedRegistry::global().clone(),
        )
        .await
        .unwrap()
    });
    let (mut events, flooder) = handle.split();
    let (connected_tx, connected) = std::sync::mpsc::channel();
    rt.spawn(async move {
        while let Some(event) = events.recv().await {
            if let malachitebft_network::Event::PeerConnected(peer) = event {
                let _ = connected_tx.send(peer);
            }
        }
    });
    connected
        .recv_timeout(Duration::from_secs(30))
        .expect("the flooding peer connects to node 0");
    // Let the pubsub exchange subscriptions before the flood starts.
    std::thread::sleep(Duration::from_millis(500));
    flooder
}

/// A stranger (a libp2p peer that is no validator) streams proposals signed by its own key in
/// the name of each height's proposer, and floods prevotes and precommits for blocks nobody
/// proposed, signed as itself or forging a validator's name: the validators drop all of it, keep
/// finalising at their pace and agree on every block.
#[test]
fn a_stranger_streaming_forged_proposals_and_flooding_votes_changes_nothing() {
    use hibana_consensus::bft::{
        BlockHash, BlockPart, BorshCodec, ConsensusVote, Ed25519Signer, Height, ValidatorAddress,
        encode_proposal,
    };
    use malachitebft_app_channel::app::types::{
        SignedConsensusMsg,
        codec::Codec,
        core::{NilOrVal, Round, SigningProvider, VoteType},
    };
    use malachitebft_network::Channel;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let (net, nodes) = start_network(&out, 4);
    let rt = rt();
    let all: Vec<&NodeProcess> = nodes.iter().collect();
    wait_for_height(&rt, &all, 2, Duration::from_secs(60));
    let status = rt.block_on(nodes[0].client().status()).unwrap();
    let stranger_key = hibana_types::SecretKey::generate();
    let me = stranger_key.public_key().address();
    let signer = Ed25519Signer::new(stranger_key, &status.chain_id);
    let target = net["nodes"][0]["p2p"].as_str().unwrap().parse().unwrap();
    let peer = stranger(&rt, target);

    let start = height(&rt, &nodes[0]);
    let malformed_before = metric(&nodes[0], "hibana_p2p_malformed_messages_total");
    let until = Instant::now() + Duration::from_secs(8);
    let (mut proposals, mut votes) = (0u64, 0u64);
    while Instant::now() < until {
        let at = height(&rt, &nodes[0]);
        let parent = rt
            .block_on(nodes[0].client().block(Some(BlockId::Height(at))))
            .unwrap()
            .unwrap();
        for round in 0..3u32 {
            // A proposal in the round's proposer's name, its init signed by the stranger.
            let proposer = status.validators[(at as usize + round as usize) % 4].address;
            let block = hibana_types::Block {
                header: hibana_types::BlockHeader {
                    chain_id: status.chain_id.clone(),
                    height: at + 1,
                    parent_hash: parent.hash,
                    time_ms: parent.block.header.time_ms + 1,
                    proposer,
                    tx_root: hibana_types::merkle_root(&[]),
                    state_root: Hash::digest(b"made up"),
                    app_hash: parent.block.header.state_root,
                },
                txs: Vec::new(),
            };
            let part = BlockPart {
                height: Height(at + 1),
                round: Round::new(round),
                valid_round: Round::Nil,
                proposer: ValidatorAddress(proposer),
                block,
            };
            for data in encode_proposal(part, 1024, &signer).unwrap() {
                rt.block_on(peer.publish(Channel::ProposalParts, data))
                    .unwrap();
            }
            proposals += 1;
            // Votes for a block nobody proposed: as the stranger, and in a validator's name.
            for voter in [me, proposer] {
                for vote_type in [VoteType::Prevote, VoteType::Precommit] {
                    let vote = ConsensusVote {
                        vote_type,
                        height: Height(at + 1),
                        round: Round::new(round),
                        value: NilOrVal::Val(BlockHash(Hash::digest(&votes.to_be_bytes()))),
                        validator: ValidatorAddress(voter),
                    };
                    let message = SignedConsensusMsg::Vote(signer.sign_vote(vote));
                    let data = BorshCodec.encode(&message).unwrap();
                    rt.block_on(peer.publish(Channel::Consensus, data)).unwrap();
                    votes += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let during = height(&rt, &nodes[0]);
    assert!(
        during >= start + 10,
        "only {} blocks in 8 s while a stranger sent {proposals} proposals and {votes} votes",
        during - start
    );
    wait_for_height(&rt, &all, during + 2, Duration::from_secs(60));
    assert_same_chain(&rt, &all, during + 2);
    for h in start + 1..=during {
        let block = rt
            .block_on(nodes[0].client().block(Some(BlockId::Height(h))))
            .unwrap()
            .unwrap();
        assert_ne!(block.block.header.state_root, Hash::digest(b"made up"));
    }
    // Each forged stream is refused at its init and counted; the warning is logged at most once
    // per 10 s, so the stranger cannot fill the disk with it.
    let refused = metric(&nodes[0], "hibana_p2p_malformed_messages_total") - malformed_before;
    assert!(
        refused >= proposals as f64,
        "node 0 refused {refused} of {proposals} forged proposal streams"
    );
    let logged = std::fs::read_to_string(out.join("node0").join("test-node.log"))
        .unwrap_or_default()
        .matches("not signed by the round's proposer")
        .count();
    assert!((1..=2).contains(&logged), "{logged} warnings logged");
    rt.block_on(peer.shutdown()).unwrap();
    eprintln!(
        "stranger: {proposals} forged proposals and {votes} votes in 8 s; {} blocks finalised \
         meanwhile, {refused} forged streams refused by node 0",
        during - start
    );
}
