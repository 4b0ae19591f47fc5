//! Networks on this machine and beyond: `hibana init` (a node home, an N-validator network, or
//! a home that joins a network), `hibana node` (run one), `hibana testnet` (run N as children).

use std::{fs, io::Write, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use hibana_runtime::GenesisAccount;
use hibana_types::{Address, Amount};

use crate::{
    cli::common::NodeFlags,
    home::{Home, NodeConfig, create_network, data_dir},
    output::{print_json, program, shell_arg},
    run::run_node,
};

/// Arguments of `hibana init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Home folder to create (a one-validator chain).
    #[arg(long, env = "HIBANA_HOME", required_unless_present = "validators")]
    home: Option<PathBuf>,
    /// Create a network of this many validators on loopback instead: DIR/node0 … DIR/nodeN-1.
    #[arg(long, requires = "out", conflicts_with = "home")]
    validators: Option<usize>,
    /// Folder for the network's node homes (with --validators).
    #[arg(long, requires = "validators")]
    out: Option<PathBuf>,
    /// Fund the demo accounts alice, bob and carol and copy their plaintext keys into every
    /// home (development networks only).
    #[arg(long)]
    dev_accounts: bool,
    /// Chain id.
    #[arg(long, default_value = "hibana-local")]
    chain_id: String,
    /// Fund an account at genesis: ADDRESS=AMOUNT (repeatable), e.g. hib1…=1000HIB.
    #[arg(long = "account", value_name = "ADDRESS=AMOUNT")]
    accounts: Vec<String>,
    /// Join an existing network instead: its genesis file (with --home and --peer). The new
    /// node follows the chain and becomes a validator once it bonds stake to itself.
    #[arg(long, requires = "home", conflicts_with_all = ["validators", "dev_accounts", "accounts"])]
    genesis: Option<PathBuf>,
    /// A node of the network to join, as a libp2p address (repeatable), e.g.
    /// /ip4/127.0.0.1/tcp/26656.
    #[arg(long = "peer", value_name = "MULTIADDR", requires = "genesis")]
    peers: Vec<String>,
}

/// Arguments of `hibana testnet`.
#[derive(Debug, Args)]
pub(crate) struct TestnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Folder of the network (default: <data dir>/hibana/testnet); reused if it exists.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Delete the folder first and start from a new genesis.
    #[arg(long)]
    reset: bool,
    /// Milliseconds between blocks.
    #[arg(long, env = "HIBANA_BLOCK_TIME_MS")]
    block_time_ms: Option<u64>,
}

/// Arguments of `hibana node`.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// Home folder created by `hibana init`.
    #[arg(long, env = "HIBANA_HOME")]
    home: PathBuf,
    #[command(flatten)]
    node: NodeFlags,
}

/// `hibana init`: writes a node home, a network of homes, or a home that joins a network.
pub(crate) fn init(args: InitArgs, json: bool) -> Result<ExitCode> {
    let mut accounts = Vec::new();
    for spec in &args.accounts {
        let (addr, amount) = spec.split_once('=').ok_or_else(|| {
            anyhow!("--account {spec:?}: expected ADDRESS=AMOUNT, e.g. hib1…=1000HIB")
        })?;
        let address: Address = addr.trim().parse()?;
        let balance: Amount = amount.parse()?;
        accounts.push(GenesisAccount { address, balance });
    }
    if let (Some(n), Some(out)) = (args.validators, &args.out) {
        let (genesis, nodes) = create_network(out, n, &args.chain_id, accounts, args.dev_accounts)?;
        if json {
            print_json(&serde_json::json!({
                "chain_id": genesis.chain_id,
                "nodes": nodes,
            }))?;
        } else {
            println!(
                "Initialised a {n}-validator network `{}` in {}",
                genesis.chain_id,
                out.display()
            );
            for node in &nodes {
                println!(
                    "  {}  validator {}  p2p {}  rpc {}",
                    node.home.display(),
                    node.validator,
                    node.p2p,
                    node.rpc
                );
            }
            println!(
                "  start each: {} node --home {}/nodeK",
                program(),
                shell_arg(out)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(home_dir) = args.home.clone() else {
        bail!("give --home DIR, or --validators N --out DIR");
    };
    let home = Home::new(home_dir.clone());
    if let Some(genesis_file) = &args.genesis {
        let (genesis, node) = home.join(genesis_file, &args.peers)?;
        if json {
            print_json(&serde_json::json!({"chain_id": genesis.chain_id, "node": node}))?;
        } else {
            println!(
                "Initialised {} to join chain `{}`",
                home_dir.display(),
                genesis.chain_id
            );
            println!(
                "  validator key: {}  (a follower until it bonds stake)",
                node.validator
            );
            println!("  p2p {}  rpc {}", node.p2p, node.rpc);
            println!(
                "  start it:  {} node --home {}",
                program(),
                shell_arg(&home_dir)
            );
            println!(
                "  then, funded: {} tx stake --amount 1000HIB --validator self --from validator --home {}",
                program(),
                shell_arg(&home_dir)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let genesis = home.create(
        &args.chain_id,
        accounts,
        &NodeConfig::default(),
        Default::default(),
        Default::default(),
    )?;
    if json {
        print_json(
            &serde_json::json!({"home": home_dir, "chain_id": genesis.chain_id, "validator": genesis.validators[0].public_key.address()}),
        )?;
    } else {
        println!(
            "Initialised {} for chain `{}`",
            home_dir.display(),
            genesis.chain_id
        );
        println!(
            "  validator: {}",
            genesis.validators[0].public_key.address()
        );
        println!(
            "  start it:  {} node --home {}",
            program(),
            shell_arg(&home_dir)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `hibana node`: runs the node of a home until Ctrl-C or SIGTERM.
pub(crate) async fn node(args: NodeArgs) -> Result<ExitCode> {
    let home = Home::new(args.home);
    let config = args.node.apply(home.load_config()?);
    let dashboard = crate::dashboard::Dashboard::new(Default::default());
    run_node(&home, config, dashboard, |url| {
        println!("Hibana node serving RPC and the dashboard at {url}");
        let _ = std::io::stdout().flush();
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// `hibana testnet`: creates (once) and runs an N-validator network, a child process each.
pub(crate) async fn testnet(args: TestnetArgs, json: bool) -> Result<ExitCode> {
    let out = args.out.unwrap_or_else(|| data_dir().join("testnet"));
    let first = out.join("node0");
    if args.reset && out.exists() {
        if !Home::new(first.clone()).is_initialised() {
            bail!(
                "refusing to reset {}: it is not a Hibana testnet",
                out.display()
            );
        }
        fs::remove_dir_all(&out).with_context(|| format!("cannot remove {}", out.display()))?;
    }
    if !Home::new(first).is_initialised() {
        create_network(&out, args.validators, "hibana-testnet", Vec::new(), true)?;
    }
    let exe = std::env::current_exe().context("cannot find the hibana executable")?;
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for k in 0.. {
        let home = out.join(format!("node{k}"));
        if !Home::new(home.clone()).is_initialised() {
            break;
        }
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(["node", "--home"])
            .arg(&home)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(ms) = args.block_time_ms {
            command.args(["--block-time-ms", &ms.to_string()]);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start the node of {}", home.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no output from the node of {}", home.display()))?;
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let banner = lines.next_line().await?.unwrap_or_default();
        let url = banner.rsplit(' ').next().unwrap_or_default().to_string();
        if !url.starts_with("http") {
            bail!(
                "the node of {} did not start; see its log above",
                home.display()
            );
        }
        urls.push((home, url));
        children.push(child);
    }
    if json {
        let nodes: Vec<_> = urls
            .iter()
            .map(|(home, url)| serde_json::json!({"home": home, "rpc": url}))
            .collect();
        println!("{}", serde_json::json!({"testnet": out, "nodes": nodes}));
    } else {
        println!(
            "Hibana testnet with {} validators in {}",
            urls.len(),
            out.display()
        );
        for (home, url) in &urls {
            println!("  {}  RPC {url}", home.display());
        }
        println!(
            "  try:  {} tx transfer --home {} --from alice --to bob --amount 1HIB",
            program(),
            shell_arg(&out.join("node0"))
        );
        println!("Press Ctrl-C to stop.");
    }
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c().await?;
    // A terminal's Ctrl-C reaches the nodes too and they stop cleanly; nodes that did not get
    // it are killed, which they survive by design (write-ahead log, atomic block commits).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for child in &mut children {
        if tokio::time::timeout_at(deadline, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
