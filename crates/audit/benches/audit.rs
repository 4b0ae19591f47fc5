//! Throughput of the auditor: contracts per second over the labelled corpus and over a large
//! generated file, single-threaded (the reference) against the parallel file pipeline.
//! Run with `cargo bench -p hibana-audit --bench audit`.

use std::{path::PathBuf, time::Instant};

use hibana_audit::{analyse_source, files::analyse_files};

fn corpus_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    hibana_audit::files::collect_files(&[dir]).unwrap_or_default()
}

/// A file with `n` contracts of realistic size (state, modifiers, loops, calls).
fn generated(n: usize) -> String {
    let mut s = String::from("pragma solidity ^0.4.24;\n");
    for i in 0..n {
        s.push_str(&format!(
            "contract Vault{i} {{
    mapping(address => uint256) public balances;
    address public owner;
    address[] public members;
    modifier onlyOwner() {{ require(msg.sender == owner); _; }}
    constructor() public {{ owner = msg.sender; }}
    function deposit() public payable {{ balances[msg.sender] += msg.value; members.push(msg.sender); }}
    function withdraw(uint256 amount) public {{
        require(balances[msg.sender] >= amount);
        balances[msg.sender] -= amount;
        msg.sender.transfer(amount);
    }}
    function payAll() public onlyOwner {{
        for (uint256 j = 0; j < members.length; j++) {{ members[j].transfer(balances[members[j]] / 100 * 2); }}
    }}
    function setOwner(address next) public onlyOwner {{ owner = next; }}
}}
"
        ));
    }
    s
}

fn main() {
    let files = corpus_files();
    let texts: Vec<(String, String)> = files
        .iter()
        .filter_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|t| (p.display().to_string(), t))
        })
        .collect();
    let rounds = 20;
    let start = Instant::now();
    let mut contracts = 0usize;
    for _ in 0..rounds {
        for (path, text) in &texts {
            contracts += analyse_source(path, text).contracts;
        }
    }
    let single = contracts as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut par_contracts = 0usize;
    for _ in 0..rounds {
        par_contracts += analyse_files(&files)
            .iter()
            .map(|r| r.contracts)
            .sum::<usize>();
    }
    let parallel = par_contracts as f64 / start.elapsed().as_secs_f64();

    let big = generated(2000);
    let start = Instant::now();
    let report = analyse_source("generated.sol", &big);
    let big_secs = start.elapsed().as_secs_f64();
    let big_rate = report.contracts as f64 / big_secs;

    println!(
        "hibana-audit throughput ({} threads available)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<44} {:>10} {:>14}",
        "workload", "contracts", "contracts/s"
    );
    println!(
        "{:<44} {:>10} {:>14.0}",
        format!("corpus x{rounds}, one thread (reference)"),
        contracts,
        single
    );
    println!(
        "{:<44} {:>10} {:>14.0}",
        format!("corpus x{rounds}, parallel files (rayon, with I/O)"),
        par_contracts,
        parallel
    );
    println!(
        "{:<44} {:>10} {:>14.0}",
        format!("generated file, {} KiB, one thread", big.len() / 1024),
        report.contracts,
        big_rate
    );
}
