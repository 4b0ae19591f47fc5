//! Networks of validator processes for the end-to-end tests: `hibana init --validators N`,
//! one `hibana node` per validator on loopback, and checks that they agree.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use hibana_rpc::{BlockId, RpcClient};
use hibana_types::Hash;
use serde_json::Value;

use super::BIN;

/// Milliseconds between blocks in these networks.
pub(crate) const BLOCK_TIME_MS: &str = "200";

/// A validator process, killed when dropped.
pub(crate) struct NodeProcess {
    pub(crate) home: PathBuf,
    pub(crate) child: Option<Child>,
    pub(crate) rpc: String,
}

impl NodeProcess {
    pub(crate) fn start(home: &Path) -> NodeProcess {
        NodeProcess::start_command(home, Command::new(BIN))
    }

    /// Like [`NodeProcess::start`], with the node's wall clock `offset` away from the true time
    /// (`+1h`, `-30s`: libfaketime, which `scripts/setup.sh` installs; monotonic time is real).
    pub(crate) fn start_skewed(home: &Path, offset: &str) -> NodeProcess {
        // The library preloaded into the node itself, not the `faketime` wrapper: the wrapper
        // forks the node as its child, and killing the wrapper left the node running after
        // the test.
        let lib = Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1");
        let mut cmd = if lib.exists() {
            let mut cmd = Command::new(BIN);
            cmd.env("LD_PRELOAD", lib).env("FAKETIME", offset);
            cmd
        } else {
            let mut cmd = Command::new("faketime");
            cmd.args(["-f", offset, BIN]);
            cmd
        };
        cmd.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        NodeProcess::start_command(home, cmd)
    }

    /// Runs `cmd` (the binary, or a wrapper with the binary as its last argument) as a node.
    fn start_command(home: &Path, mut cmd: Command) -> NodeProcess {
        let mut child = cmd
            .args(["node", "--home"])
            .arg(home)
            .args([
                "--rpc-addr",
                "127.0.0.1:0",
                "--block-time-ms",
                BLOCK_TIME_MS,
            ])
            .env("HIBANA_LOG", "info")
            .stdout(Stdio::piped())
            // Kept for a failure's message (see `wait_for_height`), appended across restarts.
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(home.join("test-node.log"))
                    .expect("open the node's log"),
            )
            .spawn()
            .expect("start hibana node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let rpc = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(rpc.starts_with("http://"), "unexpected banner {line:?}");
        NodeProcess {
            home: home.to_path_buf(),
            child: Some(child),
            rpc,
        }
    }

    pub(crate) fn client(&self) -> RpcClient {
        RpcClient::new(&self.rpc).unwrap()
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub(crate) fn restart(&mut self) {
        self.kill();
        *self = NodeProcess::start(&self.home.clone());
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of the first Prometheus sample named `name` on a node's `/metrics`.
pub(crate) fn metric(node: &NodeProcess, name: &str) -> f64 {
    sample(node, name).unwrap_or_else(|| panic!("no metric {name}"))
}

/// The value of the first Prometheus sample named `name` (with its labels, if given), if any.
pub(crate) fn sample(node: &NodeProcess, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let addr = node.rpc.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))?;
    line.rsplit(' ').next().unwrap().parse().ok()
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn height(rt: &tokio::runtime::Runtime, node: &NodeProcess) -> u64 {
    rt.block_on(node.client().status())
        .map(|s| s.height)
        .unwrap_or(0)
}

pub(crate) fn block_hash(rt: &tokio::runtime::Runtime, node: &NodeProcess, h: u64) -> (Hash, Hash) {
    let view = rt
        .block_on(node.client().block(Some(BlockId::Height(h))))
        .unwrap()
        .unwrap_or_else(|| panic!("{} has no block {h}", node.home.display()));
    (view.hash, view.block.header.state_root)
}

/// Waits until every node in `nodes` is at `target` or above.
pub(crate) fn wait_for_height(
    rt: &tokio::runtime::Runtime,
    nodes: &[&NodeProcess],
    target: u64,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let heights: Vec<u64> = nodes.iter().map(|n| height(rt, n)).collect();
        if heights.iter().all(|h| *h >= target) {
            return;
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = nodes
                .iter()
                .map(|n| {
                    let log = n.home.join("test-node.log");
                    format!("--- {} ---\n{}", log.display(), log_tail(&log, 3000))
                })
                .collect();
            panic!(
                "nodes did not reach height {target} in {within:?}: {heights:?}; their logs end:\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `bytes` (about) of a log file, or nothing if it cannot be read.
pub(crate) fn log_tail(path: &Path, bytes: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = (text.len().saturating_sub(bytes)..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Asserts that all nodes hold the same block (hence the same state root) at every height
/// from 1 to `up_to`.
pub(crate) fn assert_same_chain(rt: &tokio::runtime::Runtime, nodes: &[&NodeProcess], up_to: u64) {
    for h in 1..=up_to {
        let first = block_hash(rt, nodes[0], h);
        for node in &nodes[1..] {
            assert_eq!(
                block_hash(rt, node, h),
                first,
                "{} disagrees at height {h}",
                node.home.display()
            );
        }
    }
}

/// `hibana init --validators N --dev-accounts --out OUT`; returns what it printed.
pub(crate) fn init_network(out: &Path, n: usize) -> Value {
    hibana_json(&[
        "--json",
        "init",
        "--validators",
        &n.to_string(),
        "--dev-accounts",
        "--out",
        out.to_str().unwrap(),
    ])
}

/// [`init_network`] and its N nodes started; returns what `init` printed and the nodes.
pub(crate) fn start_network(out: &Path, n: usize) -> (Value, Vec<NodeProcess>) {
    let net = init_network(out, n);
    let nodes = (0..n)
        .map(|k| NodeProcess::start(&out.join(format!("node{k}"))))
        .collect();
    (net, nodes)
}

/// Runs `hibana ARGS` and returns its JSON output; it must succeed.
pub(crate) fn hibana_json(args: &[&str]) -> Value {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "hibana {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
