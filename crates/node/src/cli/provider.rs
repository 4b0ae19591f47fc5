//! The AI roles on the command line: `provider serve`, `gateway`, and `gateway keys`.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use clap::{Args, Subcommand, builder::TypedValueParser as _};
use hibana_roles::{
    endpoints::EndpointPolicy,
    gateway::DEFAULT_MAX_IN_FLIGHT,
    keys::{DEFAULT_RATE_LIMIT, KeyFile},
};
use hibana_types::{Address, Amount};

use crate::{
    home::data_dir,
    run::{
        GatewaySettings, ZkServing, operator_key, provider_key, start_gateway, start_provider,
        wait_for_ctrl_c,
    },
};

#[derive(Debug, Subcommand)]
pub(crate) enum ProviderCommand {
    /// Load models and serve them with signed receipts.
    Serve(ProviderArgs),
}

/// Settings of a provider.
#[derive(Debug, Args)]
pub(crate) struct ProviderArgs {
    /// Folder holding the provider's key (created on first start).
    #[arg(long, env = "HIBANA_PROVIDER_HOME")]
    home: Option<PathBuf>,
    /// Installed models to serve (comma-separated; default: every installed model, or none
    /// when --zk-model is given; `none` serves only the Solidity auditor at /v1/audit, which
    /// every provider runs).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    #[command(flatten)]
    zk: ZkArgs,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// Price per token, e.g. 1 (base units) or 0.000001HIB.
    #[arg(long, default_value = "1")]
    price_per_token: String,
    /// Generations decoded together (one batch); further requests wait.
    #[arg(long, default_value_t = 8)]
    capacity: usize,
    /// JSON-RPC URL of a node: check the vouchers gateways pay with (`POST /v1/vouchers`)
    /// against their channels, and redeem them there; train the jobs of this provider's leases
    /// and commit their steps there.
    #[arg(long, env = "HIBANA_PROVIDER_CHAIN")]
    chain: Option<String>,
    /// Take part in the compute market: register (or update) this provider on the chain with
    /// its endpoint, then bid --price-per-block on every open order it can serve. Its account
    /// must hold the 10 HIB bond.
    #[arg(long, requires = "chain")]
    market: bool,
    /// The price this provider bids per block of a lease, e.g. 0.001HIB.
    #[arg(long, default_value = "0.001HIB")]
    price_per_block: String,
    /// The region this provider declares.
    #[arg(long, default_value = "local")]
    region: String,
    /// The URL clients reach this provider at (default: the address it listens on).
    #[arg(long)]
    public_url: Option<String>,
}

/// The ZK models a provider proves inferences of (`POST /v1/zk/infer`).
#[derive(Debug, Clone, Args)]
pub(crate) struct ZkArgs {
    /// A compiled .zkm model to serve at /v1/zk/infer, named by its file name (repeatable).
    #[arg(long = "zk-model", value_name = "PATH")]
    zk_models: Vec<PathBuf>,
    /// Price of one proof, e.g. 1000 (base units) or 0.000001HIB.
    #[arg(long, default_value = "1000")]
    zk_price: String,
    /// Proofs computed at once (each uses every core); further requests wait.
    #[arg(long, default_value_t = 1)]
    zk_capacity: usize,
}

impl ZkArgs {
    /// What the provider serves at /v1/zk/infer.
    fn serving(&self) -> Result<ZkServing> {
        Ok(ZkServing {
            models: self.zk_models.clone(),
            price: self.zk_price.parse().context("--zk-price")?,
            capacity: self.zk_capacity,
        })
    }
}

/// `hibana gateway [keys …]`.
#[derive(Debug, Args)]
pub(crate) struct GatewayArgs {
    #[command(subcommand)]
    keys: Option<GatewaySub>,
    /// Folder of the gateway's API keys and usage.
    #[arg(long, env = "HIBANA_GATEWAY_HOME", global = true)]
    home: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8088")]
    addr: SocketAddr,
    /// Provider base URL (repeatable).
    #[arg(long = "provider", value_name = "URL")]
    providers: Vec<String>,
    /// Seconds allowed for a provider's answer (and between two chunks of a stream).
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// JSON-RPC URL of a node: route `"model": "<subnet>"` to the subnet's miners.
    #[arg(long, env = "HIBANA_GATEWAY_CHAIN")]
    chain: Option<String>,
    /// Also route to chain miners at loopback, private and link-local addresses (a private
    /// network; refused by default, since anyone can register an endpoint).
    #[arg(long, env = "HIBANA_ALLOW_PRIVATE_ENDPOINTS")]
    allow_private_endpoints: bool,
    /// Bill every key through the payment channel its account opened to the gateway's
    /// operator (key in `<home>/operator_key.json`, made on first start; fund its account),
    /// and pay priced providers through channels from it. Needs --chain.
    #[arg(long, requires = "chain")]
    bill: bool,
    /// Share (0 to 1) of the subnet miners' answers re-checked by teacher forcing on this
    /// machine's installed models; with --bill, a wrong one is challenged on chain.
    #[arg(long, default_value_t = 0.02)]
    recheck_share: f64,
    /// Most inference requests served at once; more get 429 with Retry-After at once.
    #[arg(long, env = "HIBANA_GATEWAY_MAX_IN_FLIGHT", default_value_t = DEFAULT_MAX_IN_FLIGHT, value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    max_in_flight: usize,
}

#[derive(Debug, Subcommand)]
enum GatewaySub {
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// A key's usage: requests, tokens and what it was charged (in base units), as the
    /// gateway's ledger holds it.
    Usage {
        /// The key's name.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key billed to an account; the secret is printed once.
    Create {
        /// Name of the key.
        name: String,
        /// Account billed (an address).
        #[arg(long)]
        account: String,
        /// Requests per minute.
        #[arg(long, default_value_t = DEFAULT_RATE_LIMIT)]
        rate_limit: u32,
    },
    /// List keys with their usage.
    List,
    /// Revoke a key by its name, its id (as `keys list` shows it) or the secret itself.
    Revoke {
        /// Name, id (or its first 8 characters at least) or secret of the key.
        key: String,
    },
}

/// `hibana provider serve`: loads the models and serves them until Ctrl-C or SIGTERM.
pub(crate) async fn provider(cmd: ProviderCommand, json: bool) -> Result<ExitCode> {
    let ProviderCommand::Serve(args) = cmd;
    let home = args.home.unwrap_or_else(|| data_dir().join("provider"));
    let price: Amount = args.price_per_token.parse()?;
    let (url, provider) = start_provider(
        &home,
        args.models,
        args.zk.serving()?,
        args.addr,
        price,
        args.capacity,
    )
    .await?;
    if let Some(chain) = &args.chain {
        crate::market_provider::connect(&provider, chain)
            .map_err(|e| anyhow::anyhow!("--chain {chain}: {e:#}"))?;
    }
    let key = provider_key(&home)?;
    if args.market
        && let Some(chain) = &args.chain
    {
        let client = hibana_rpc::RpcClient::new(chain)?;
        let endpoint = args.public_url.clone().unwrap_or_else(|| url.clone());
        let per_block: Amount = args.price_per_block.parse()?;
        let attributes = crate::market_provider::this_machine(&args.region, Vec::new());
        tokio::spawn(crate::market_provider::join_and_bid(
            client,
            provider.clone(),
            endpoint,
            attributes,
            (per_block, price),
            Duration::from_secs(2),
        ));
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "provider": url,
                "public_key": key.public_key(),
                "address": key.public_key().address(),
            })
        );
    } else {
        println!(
            "Hibana provider serving at {url} (key {})",
            key.public_key()
        );
    }
    wait_for_ctrl_c().await;
    Ok(ExitCode::SUCCESS)
}

/// `hibana gateway`: runs the gateway until Ctrl-C or SIGTERM, or manages its API keys.
pub(crate) async fn gateway(args: GatewayArgs, json: bool) -> Result<ExitCode> {
    let home = args
        .home
        .clone()
        .unwrap_or_else(|| data_dir().join("gateway"));
    let file = KeyFile::new(home.join("keys.json"));
    match args.keys {
        Some(GatewaySub::Keys(KeysCommand::Create {
            name,
            account,
            rate_limit,
        })) => {
            let account: Address = account.parse()?;
            let (secret, record) = file.create(&name, account, rate_limit)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"name": record.name, "key": secret, "account": record.account})
                );
            } else {
                println!("Created API key {:?} for {}", record.name, record.account);
                println!("  {secret}");
                println!("It is shown only now; the gateway stores only its hash.");
            }
        }
        Some(GatewaySub::Keys(KeysCommand::List)) => {
            let keys = file.load()?;
            let usage = file.load_usage();
            if json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| serde_json::json!({"name": k.name, "prefix": k.prefix, "account": k.account, "revoked": k.revoked,
                        "rate_limit_per_minute": k.rate_limit_per_minute, "usage": usage.get(&k.name).cloned().unwrap_or_default()}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if keys.is_empty() {
                println!(
                    "No API keys. Create one with `hibana gateway keys create NAME --account ADDRESS`."
                );
            } else {
                for k in keys {
                    let u = usage.get(&k.name).cloned().unwrap_or_default();
                    println!(
                        "{:<16} {}…  {}  {}/min  {} requests, {} tokens{}",
                        k.name,
                        k.prefix,
                        k.account,
                        k.rate_limit_per_minute,
                        u.requests,
                        u.prompt_tokens + u.completion_tokens,
                        if k.revoked { "  REVOKED" } else { "" }
                    );
                }
            }
        }
        Some(GatewaySub::Usage { key }) => {
            let usage = file.load_usage();
            let Some(u) = usage.get(&key) else {
                if file.load()?.iter().any(|k| k.name == key) {
                    let u = hibana_roles::keys::KeyUsage::default();
                    return print_usage(&key, &u, json);
                }
                anyhow::bail!("no key named {key:?}; see `hibana gateway keys list`");
            };
            return print_usage(&key, u, json);
        }
        Some(GatewaySub::Keys(KeysCommand::Revoke { key })) => {
            let record = file.revoke(&key)?;
            println!("Revoked {:?}", record.name);
        }
        None => {
            if !(0.0..=1.0).contains(&args.recheck_share) {
                anyhow::bail!(
                    "--recheck-share must be between 0 and 1, got {}",
                    args.recheck_share
                );
            }
            let operator = if args.bill {
                Some(operator_key(&home)?)
            } else {
                None
            };
            let (url, _gateway) = start_gateway(
                &home,
                GatewaySettings {
                    providers: args.providers,
                    chain: args.chain,
                    timeout: Duration::from_secs(args.timeout_secs),
                    miner_endpoints: EndpointPolicy::allowing_private(args.allow_private_endpoints),
                    max_in_flight: args.max_in_flight,
                    operator,
                    recheck_share: args.recheck_share,
                },
                args.addr,
            )
            .await?;
            if json {
                println!("{}", serde_json::json!({"gateway": url}));
            } else {
                println!("Hibana gateway (OpenAI-compatible) at {url}/v1");
            }
            wait_for_ctrl_c().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_usage(name: &str, u: &hibana_roles::keys::KeyUsage, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::json!({"key": name, "usage": u}));
    } else {
        println!(
            "{name}: {} requests, {} prompt and {} completion tokens, charged {} ({} base units)",
            u.requests, u.prompt_tokens, u.completion_tokens, u.spent, u.spent.0
        );
    }
    Ok(ExitCode::SUCCESS)
}
