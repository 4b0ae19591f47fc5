//! The long-running services this process hosts: a node (store, RPC, BFT engine), a provider
//! and a gateway; and waiting for the signal that stops them.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, anyhow, bail};
use hibana_consensus::Chain;
use hibana_roles::{
    endpoints::EndpointPolicy,
    gateway::{Gateway, GatewayConfig},
    keys::KeyFile,
    provider::{Provider, ProviderConfig},
    zk::ZkService,
};
use hibana_store::Store;
use hibana_types::{Amount, SecretKey};

use crate::{
    home::{Home, NodeConfig},
    keys,
};

/// Runs a node from its home until Ctrl-C or SIGTERM: opens (or initialises) the store, serves
/// RPC and runs the BFT engine as one validator of the network (the only one in a devnet).
/// `on_ready` receives the RPC URL. The RPC port also serves `dashboard` to browsers at `/`.
pub(crate) async fn run_node(
    home: &Home,
    config: NodeConfig,
    dashboard: Arc<crate::dashboard::Dashboard>,
    on_ready: impl FnOnce(&str),
) -> Result<()> {
    let genesis = home.load_genesis()?;
    let validator = home.load_validator_key()?;
    let identity = home.load_node_key(&config)?;
    let store = Arc::new(open_store(home)?);
    match store.height()? {
        None => {
            let root = store.init_genesis(&genesis)?;
            tracing::info!(chain_id = %genesis.chain_id, root = %root, "initialised genesis");
        }
        Some(height) => {
            let stored = store.genesis()?;
            if stored != genesis {
                bail!(
                    "genesis.json in {} differs from the genesis the database was started with; restore it or start over with a new home",
                    home.dir.display()
                );
            }
            tracing::info!(height, "resuming");
        }
    }
    let chain = Arc::new(Chain::new(store, config.mempool_max_txs)?);
    let blobs = hibana_rpc_server::BlobStore::open(&home.dir.join("blobs"))
        .with_context(|| format!("cannot open the blob store in {}", home.dir.display()))?;
    dashboard.update(|c| c.chain_id = genesis.chain_id.clone());
    let extras = hibana_rpc_server::Extras {
        blobs: Some(Arc::new(blobs)),
        site: Some(dashboard),
    };
    let server = hibana_rpc_server::start_with(chain.clone(), config.rpc_addr, extras)
        .await
        .with_context(|| format!("cannot serve RPC on {}", config.rpc_addr))?;
    let url = format!("http://{}", server.addr);
    fs::write(home.rpc_url_path(), &url)?;
    on_ready(&url);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let producer = tokio::spawn(hibana_consensus::run_validator(
        chain.clone(),
        validator,
        identity,
        config.p2p.clone(),
        home.dir.join("data"),
        Duration::from_millis(config.block_time_ms.max(10)),
        stop_rx,
    ));
    let mut producer = producer;
    let outcome = wait_for_shutdown(&mut producer).await;
    let _ = stop_tx.send(true);
    if outcome.is_ok() {
        // Let the block being produced finish before the process exits.
        let _ = producer.await;
    }
    let _ = server.handle.stop();
    server.handle.stopped().await;
    let _ = fs::remove_file(home.rpc_url_path());
    outcome?;
    tracing::info!(height = chain.height().unwrap_or(0), "stopped cleanly");
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_ctrl_c() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn open_store(home: &Home) -> Result<Store> {
    let path = home.db_path();
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    Store::open(&path).map_err(|e| {
        anyhow!(
            "cannot open the chain database {}: {e}. Is another node running on this home?",
            path.display()
        )
    })
}

async fn wait_for_shutdown(
    producer: &mut tokio::task::JoinHandle<Result<(), hibana_consensus::BftError>>,
) -> Result<()> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    #[cfg(unix)]
    let terminated = term.recv();
    #[cfg(not(unix))]
    let terminated = std::future::pending::<Option<()>>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = terminated => tracing::info!("terminated; stopping"),
        result = producer => {
            return match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(anyhow!("consensus stopped: {e}")),
                Err(e) => Err(anyhow!("consensus crashed: {e}")),
            };
        }
    }
    Ok(())
}

/// The folder models are installed in and loaded from.
pub(crate) fn models_dir() -> PathBuf {
    hibana_ai::catalog::models_dir()
}

/// The signing key of a provider that ran in `home` (never creates one): what `--from provider
/// --home H` signs with, so the key that signs a devnet provider's receipts can also register it
/// in the market and as a miner, and its receipts can be challenged.
pub(crate) fn saved_provider_key(home: &Path) -> Result<SecretKey> {
    if !home.join("provider_key.json").exists() {
        bail!(
            "no provider key in {}: a devnet started without --no-ai has one",
            home.display()
        );
    }
    provider_key(home)
}

/// Loads or creates the provider's signing key in `home`.
pub(crate) fn provider_key(home: &Path) -> Result<SecretKey> {
    service_key(&home.join("provider_key.json"), "provider signing key")
}

/// Loads or creates the gateway operator's key in `home`: its account takes the clients'
/// payments and pays the providers.
pub(crate) fn operator_key(home: &Path) -> Result<SecretKey> {
    service_key(&home.join("operator_key.json"), "gateway operator key")
}

/// Loads or creates the key of a devnet's scoring validator in `home`: its neurons score the
/// demo subnets' miners.
pub(crate) fn scorer_key(home: &Path) -> Result<SecretKey> {
    service_key(&home.join("scorer_key.json"), "scoring validator key")
}

/// Loads or creates the key of a service (`what`) in the file at `path`.
fn service_key(path: &Path, what: &str) -> Result<SecretKey> {
    let home = path.parent().unwrap_or(Path::new("."));
    let path = path.to_path_buf();
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
        "warning": format!("{what}: keep this file private"),
        "public_key": key.public_key(),
        "secret_key": hex::encode(key.to_bytes()),
    });
    keys::write_private(&path, &serde_json::to_vec_pretty(&file)?)?;
    Ok(key)
}

/// The ZK models a provider proves inferences of (`POST /v1/zk/infer`), and at what price.
#[derive(Debug, Clone)]
pub(crate) struct ZkServing {
    /// Compiled .zkm models, each named by its file name.
    pub(crate) models: Vec<PathBuf>,
    /// Price of one proof.
    pub(crate) price: Amount,
    /// Proofs computed at once.
    pub(crate) capacity: usize,
}

/// Starts a provider in this process; returns its URL and the provider (to connect it to a
/// chain, where it checks and redeems the vouchers it is paid with).
pub(crate) async fn start_provider(
    home: &Path,
    models: Vec<String>,
    zk: ZkServing,
    addr: SocketAddr,
    price: Amount,
    capacity: usize,
) -> Result<(String, Arc<Provider>)> {
    let key = provider_key(home)?;
    let dir = models_dir();
    // `--models none`: only the auditor (and any ZK models), which need no model files.
    let none = models == ["none"];
    let models = if none || (models.is_empty() && !zk.models.is_empty()) {
        Vec::new()
    } else if models.is_empty() {
        hibana_ai::catalog::list(&dir)?
            .into_iter()
            .map(|m| m.name)
            .collect()
    } else {
        models
    };
    if models.is_empty() && zk.models.is_empty() && !none {
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
        let service = ZkService::load(&zk.models, zk.price, zk.capacity)?;
        Ok(Provider::load(&config, key)?.with_zk(service))
    })
    .await??;
    let provider = Arc::new(
        provider
            .with_vouchers(home.join("vouchers.json"))
            .with_jobs(home.join("jobs")),
    );
    let (addr, _task) = hibana_roles::provider::serve(provider.clone(), addr).await?;
    hibana_roles::provider::payments::redeem_in_background(
        provider.clone(),
        Duration::from_secs(5),
    );
    Ok((format!("http://{addr}"), provider))
}

/// How a gateway started in this process runs (see [`GatewayConfig`]).
pub(crate) struct GatewaySettings {
    /// Provider base URLs.
    pub(crate) providers: Vec<String>,
    /// JSON-RPC URL of a node, to route to subnet miners and bill through channels.
    pub(crate) chain: Option<String>,
    /// Time allowed for an answer.
    pub(crate) timeout: Duration,
    /// Which addresses a miner's endpoint may have.
    pub(crate) miner_endpoints: EndpointPolicy,
    /// Most requests served at once.
    pub(crate) max_in_flight: usize,
    /// The operator's key, to bill through payment channels.
    pub(crate) operator: Option<SecretKey>,
    /// Share (0 to 1) of the miners' answers re-checked on the gateway's own copies of the
    /// models (with billing: a wrong one is challenged by the operator).
    pub(crate) recheck_share: f64,
}

/// Starts a gateway with its keys and ledger in `home`, listening on `addr`; returns its URL.
pub(crate) async fn start_gateway(
    home: &Path,
    settings: GatewaySettings,
    addr: SocketAddr,
) -> Result<(String, Arc<Gateway>)> {
    if settings.providers.is_empty() && settings.chain.is_none() {
        bail!(
            "the gateway needs at least one --provider URL, or --chain to route to subnet miners"
        );
    }
    let config = GatewayConfig {
        providers: settings.providers,
        keys: KeyFile::new(home.join("keys.json")),
        request_timeout: settings.timeout,
        health_interval: Duration::from_millis(500),
        chain_rpc: settings.chain,
        miner_endpoints: settings.miner_endpoints,
        max_in_flight: settings.max_in_flight,
        operator: settings.operator,
        provider_deposit: hibana_roles::gateway::DEFAULT_PROVIDER_DEPOSIT,
        sampling: (settings.recheck_share > 0.0).then(|| hibana_roles::gateway::Sampling {
            share: settings.recheck_share,
            models_dir: models_dir(),
        }),
    };
    let gateway = Arc::new(Gateway::new(config)?);
    let (addr, _task) = hibana_roles::gateway::serve(gateway.clone(), addr).await?;
    Ok((format!("http://{addr}"), gateway))
}
