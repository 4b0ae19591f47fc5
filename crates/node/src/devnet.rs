//! `hibana devnet`: a one-validator development network with funded demo accounts, and
//! (unless `--no-ai`) a provider and an OpenAI-compatible gateway in the same process, with the
//! demo ZK model and a demo API key.

use std::{
    fs,
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use hibana_roles::{
    endpoints::EndpointPolicy,
    gateway::{DEFAULT_MAX_IN_FLIGHT, Gateway},
    keys::{DEFAULT_RATE_LIMIT, KeyFile},
};
use hibana_types::Amount;

use crate::{
    cli::common::NodeFlags,
    home::{Home, NodeConfig, data_dir},
    keys,
    output::{program, shell_arg},
    run::{ZkServing, models_dir, run_node, start_gateway, start_provider},
};

/// Arguments of `hibana devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
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

/// Starts (or resumes) the devnet of `--home` and runs it until Ctrl-C or SIGTERM.
pub(crate) async fn devnet(args: DevnetArgs, json: bool) -> Result<ExitCode> {
    let dir = args.home.unwrap_or_else(|| data_dir().join("devnet"));
    let home = Home::new(dir.clone());
    if args.reset && dir.exists() {
        let looks_like_home = home.is_initialised()
            || fs::read_dir(&dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !looks_like_home {
            bail!(
                "refusing to reset {}: it is not a Hibana home",
                dir.display()
            );
        }
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let created = !home.is_initialised();
    if created {
        home.create_devnet(&NodeConfig::default())?;
    }
    let config = args.node.apply(home.load_config()?);
    let genesis = home.load_genesis().map_err(|e| {
        anyhow!(
            "{e:#}\nthe devnet home looks corrupt: start over with `{} devnet --home {} --reset`",
            program(),
            shell_arg(&dir)
        )
    })?;
    let dev_keys = keys::list_dev_keys(&dir);
    let ai = if args.no_ai {
        None
    } else {
        Some(start_devnet_ai(&dir, &dev_keys, args.gateway_addr, args.zk_only).await?)
    };
    run_node(&home, config, |url| {
        if let Some(ai) = &ai
            && let Err(e) = ai.router.connect_chain(url)
        {
            tracing::warn!(error = %e, "the gateway cannot read the chain's subnets");
        }
        if json {
            let accounts: Vec<_> = dev_keys
                .iter()
                .map(|k| serde_json::json!({"name": k.name, "address": k.address}))
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "chain_id": genesis.chain_id,
                    "home": dir,
                    "rpc": url,
                    "metrics": format!("{url}/metrics"),
                    "dev_keyring": keys::dev_keyring_dir(&dir),
                    "accounts": accounts,
                    "created": created,
                    "gateway": ai.as_ref().map(|a| &a.gateway),
                    "provider": ai.as_ref().map(|a| &a.provider),
                    "api_key": ai.as_ref().map(|a| &a.api_key),
                    "zk_model": ai.as_ref().map(|a| &a.zk_model),
                })
            );
        } else {
            println!(
                "Hibana devnet `{}` {}",
                genesis.chain_id,
                if created { "created" } else { "resumed" }
            );
            println!("  home:     {}", dir.display());
            println!("  RPC:      {url}");
            println!("  metrics:  {url}/metrics");
            println!(
                "  dev keyring (INSECURE, plaintext keys): {}",
                keys::dev_keyring_dir(&dir).display()
            );
            for k in &dev_keys {
                println!("    {:<6} {}", k.name, k.address);
            }
            // Commands that work as printed: this program's name and this devnet's home.
            let (hibana, home) = (program(), shell_arg(&dir));
            if let Some(bob) = dev_keys.iter().find(|k| k.name == "bob") {
                println!(
                    "  try:      {hibana} tx transfer --home {home} --from alice --to {} --amount 1.5HIB",
                    bob.address
                );
                println!("            {hibana} query account bob --home {home}");
            }
            if let Some(ai) = &ai {
                println!(
                    "  gateway:  {}/v1  (OpenAI-compatible; provider at {})",
                    ai.gateway, ai.provider
                );
                println!("  API key:  {}  (demo key billed to alice)", ai.api_key);
                println!(
                    "  ZK model: {}  (served at {}/v1/zk/infer as `credit-mlp`)",
                    ai.zk_model.display(),
                    ai.gateway
                );
            }
            println!("Press Ctrl-C to stop.");
        }
        let _ = std::io::stdout().flush();
    })
    .await?;
    Ok(ExitCode::SUCCESS)
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
    let zk = ZkServing {
        models: vec![zk_model.clone()],
        price: Amount(1000),
        capacity: 1,
    };
    let provider = start_provider(
        &home.join("provider"),
        wanted,
        zk,
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
        // A devnet's miners all listen on loopback.
        EndpointPolicy::AnyAddress,
        DEFAULT_MAX_IN_FLIGHT,
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
