//! The AI roles on the command line: `provider serve`, `gateway`, `gateway keys`, and their
//! place in the devnet.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use hibana_roles::{
    gateway::{Gateway, GatewayConfig},
    keys::{DEFAULT_RATE_LIMIT, KeyFile},
    provider::{Provider, ProviderConfig},
    zk::ZkService,
};
use hibana_types::{Address, Amount, SecretKey};

use crate::keys;

/// `hibana provider …`.
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
}

#[derive(Debug, Subcommand)]
enum GatewaySub {
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
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
    /// Revoke a key by name or prefix.
    Revoke {
        /// Name or prefix of the key.
        key: String,
    },
}

pub(crate) fn models_dir() -> PathBuf {
    hibana_ai::catalog::models_dir()
}

fn default_home(role: &str) -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("hibana")
        .join(role)
}

/// Loads or creates the provider's signing key in `home`.
pub(crate) fn provider_key(home: &Path) -> Result<SecretKey> {
    let path = home.join("provider_key.json");
    if let Ok(bytes) = std::fs::read(&path) {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is corrupt", path.display()))?;
        let secret: [u8; 32] = v["secret_key"]
            .as_str()
            .and_then(|s| hex::decode(s).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("{} is corrupt", path.display()))?;
        return Ok(SecretKey::from_bytes(secret));
    }
    std::fs::create_dir_all(home)?;
    let key = SecretKey::generate();
    let file = serde_json::json!({
        "warning": "provider signing key: keep this file private",
        "public_key": key.public_key(),
        "secret_key": hex::encode(key.to_bytes()),
    });
    keys::write_private(&path, &serde_json::to_vec_pretty(&file)?)?;
    Ok(key)
}

/// Starts a provider in this process; returns its URL.
pub(crate) async fn start_provider(
    home: &Path,
    models: Vec<String>,
    zk: &ZkArgs,
    addr: SocketAddr,
    price: Amount,
    capacity: usize,
) -> Result<String> {
    let key = provider_key(home)?;
    let dir = models_dir();
    let zk_price: Amount = zk.zk_price.parse().context("--zk-price")?;
    let zk_paths = zk.zk_models.clone();
    let zk_capacity = zk.zk_capacity;
    // `--models none`: only the auditor (and any ZK models), which need no model files.
    let none = models == ["none"];
    let models = if none || (models.is_empty() && !zk_paths.is_empty()) {
        Vec::new()
    } else if models.is_empty() {
        hibana_ai::catalog::list(&dir)?
            .into_iter()
            .map(|m| m.name)
            .collect()
    } else {
        models
    };
    if models.is_empty() && zk_paths.is_empty() && !none {
        bail!(
            "no models are installed in {}: run `hibana models install` (or pass --models none \
             to serve only the Solidity auditor)",
            dir.display()
        );
    }
    let config = ProviderConfig {
        models,
        models_dir: dir,
        price_per_token: price,
        capacity,
    };
    let provider = tokio::task::spawn_blocking(move || -> Result<Provider> {
        let zk = ZkService::load(&zk_paths, zk_price, zk_capacity)?;
        Ok(Provider::load(&config, key)?.with_zk(zk))
    })
    .await??;
    let (addr, _task) = hibana_roles::provider::serve(Arc::new(provider), addr).await?;
    Ok(format!("http://{addr}"))
}

/// Starts a gateway in this process; returns its URL.
pub(crate) async fn start_gateway(
    home: &Path,
    providers: Vec<String>,
    chain: Option<String>,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(String, Arc<Gateway>)> {
    if providers.is_empty() && chain.is_none() {
        bail!(
            "the gateway needs at least one --provider URL, or --chain to route to subnet miners"
        );
    }
    let config = GatewayConfig {
        providers,
        keys: KeyFile::new(home.join("keys.json")),
        request_timeout: timeout,
        health_interval: Duration::from_millis(500),
        chain_rpc: chain,
    };
    let gateway = Arc::new(Gateway::new(config)?);
    let (addr, _task) = hibana_roles::gateway::serve(gateway.clone(), addr).await?;
    Ok((format!("http://{addr}"), gateway))
}

pub(crate) async fn provider(cmd: ProviderCommand, json: bool) -> Result<()> {
    let ProviderCommand::Serve(args) = cmd;
    let home = args.home.unwrap_or_else(|| default_home("provider"));
    let price: Amount = args.price_per_token.parse()?;
    let url = start_provider(
        &home,
        args.models,
        &args.zk,
        args.addr,
        price,
        args.capacity,
    )
    .await?;
    let key = provider_key(&home)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"provider": url, "public_key": key.public_key()})
        );
    } else {
        println!(
            "Hibana provider serving at {url} (key {})",
            key.public_key()
        );
    }
    crate::home::wait_for_ctrl_c().await;
    Ok(())
}

pub(crate) async fn gateway(args: GatewayArgs, json: bool) -> Result<()> {
    let home = args.home.clone().unwrap_or_else(|| default_home("gateway"));
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
        Some(GatewaySub::Keys(KeysCommand::Revoke { key })) => {
            let record = file.revoke(&key)?;
            println!("Revoked {:?}", record.name);
        }
        None => {
            let (url, _gateway) = start_gateway(
                &home,
                args.providers,
                args.chain,
                args.addr,
                Duration::from_secs(args.timeout_secs),
            )
            .await?;
            if json {
                println!("{}", serde_json::json!({"gateway": url}));
            } else {
                println!("Hibana gateway (OpenAI-compatible) at {url}/v1");
            }
            crate::home::wait_for_ctrl_c().await;
        }
    }
    Ok(())
}

/// The AI side of a devnet: where the gateway and provider listen, and a demo key.
pub(crate) struct DevnetAi {
    pub(crate) gateway: String,
    /// The running gateway, told the devnet's RPC URL once the node listens.
    pub(crate) router: Arc<Gateway>,
    pub(crate) provider: String,
    pub(crate) api_key: String,
    pub(crate) zk_model: PathBuf,
}

/// The demo ZK model every devnet provider serves: the credit-scoring MLP from the zkml test
/// data (16 features → 4 classes), compiled on first start into the devnet home.
const DEMO_ZK_ONNX: &[u8] = include_bytes!("../../zkml/testdata/credit_mlp.onnx");
const DEMO_ZK_CALIBRATION: &[u8] = include_bytes!("../../zkml/testdata/credit_calibration.json");

/// Compiles the demo ZK model to `<home>/zk/credit-mlp.zkm` unless it is there already.
fn demo_zk_model(home: &Path) -> Result<PathBuf> {
    let path = home.join("zk").join("credit-mlp.zkm");
    if hibana_zkml::ZkModel::read(&path).is_ok() {
        return Ok(path);
    }
    let calibration: hibana_zkml::Calibration = serde_json::from_slice(DEMO_ZK_CALIBRATION)?;
    let zkm = hibana_zkml::ZkModel::compile(DEMO_ZK_ONNX, &calibration)?;
    std::fs::create_dir_all(home.join("zk"))?;
    std::fs::write(&path, zkm.to_bytes()?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Installs the models (first start only; none with `zk_only`), compiles the demo ZK model,
/// then starts a provider and the gateway in this process, with a demo API key billed to
/// alice.
pub(crate) async fn start_devnet_ai(
    home: &Path,
    dev_keys: &[keys::DevKey],
    gateway_addr: SocketAddr,
    zk_only: bool,
) -> Result<DevnetAi> {
    let dir = models_dir();
    let wanted: Vec<String> = if zk_only {
        Vec::new()
    } else {
        hibana_ai::catalog::KNOWN
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let installed: Vec<String> = hibana_ai::catalog::list(&dir)
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.name)
        .collect();
    if wanted.iter().any(|w| !installed.contains(w)) {
        eprintln!(
            "Installing models into {} (first start only)…",
            dir.display()
        );
        let dir2 = dir.clone();
        let wanted2 = wanted.clone();
        tokio::task::spawn_blocking(move || {
            hibana_ai::catalog::install(&dir2, &wanted2, &|stage: &str, done: u64, total: u64| {
                if total > 0 && done == total {
                    eprintln!("  {stage}: done");
                }
            })
        })
        .await??;
    }
    let zk_model = demo_zk_model(home)?;
    let zk = ZkArgs {
        zk_models: vec![zk_model.clone()],
        zk_price: "1000".into(),
        zk_capacity: 1,
    };
    let provider = start_provider(
        &home.join("provider"),
        wanted,
        &zk,
        "127.0.0.1:0".parse()?,
        Amount(1),
        4,
    )
    .await?;
    let gateway_home = home.join("gateway");
    let file = KeyFile::new(gateway_home.join("keys.json"));
    let key_path = gateway_home.join("demo-api-key");
    // Reuse the saved demo key while it is valid; otherwise make a new one.
    let saved = std::fs::read_to_string(&key_path)
        .ok()
        .map(|k| k.trim().to_string());
    let valid = saved.as_ref().is_some_and(|k| {
        let hash = hibana_roles::keys::key_hash(k);
        file.load()
            .unwrap_or_default()
            .iter()
            .any(|r| r.key_hash == hash && !r.revoked)
    });
    let api_key = match saved {
        Some(k) if valid => k,
        _ => {
            let alice = dev_keys
                .iter()
                .find(|k| k.name == "alice")
                .map(|k| k.address)
                .ok_or_else(|| anyhow!("the devnet has no alice"))?;
            let name = format!("demo-{}", hex::encode(rand::random::<[u8; 3]>()));
            let (secret, _) = file.create(&name, alice, DEFAULT_RATE_LIMIT)?;
            keys::write_private(&key_path, secret.as_bytes())?;
            secret
        }
    };
    let (gateway, router) = start_gateway(
        &gateway_home,
        vec![provider.clone()],
        None,
        gateway_addr,
        Duration::from_secs(120),
    )
    .await?;
    // Where `hibana audit --remote --home …` and other clients find this devnet's gateway.
    std::fs::write(gateway_home.join("url"), format!("{gateway}\n"))?;
    Ok(DevnetAi {
        gateway,
        router,
        provider,
        api_key,
        zk_model,
    })
}
