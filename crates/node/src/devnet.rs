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
    market_provider::send as send_step,
    output::{program, shell_arg},
    run::{GatewaySettings, ZkServing, models_dir, run_node, start_gateway, start_provider},
};

/// Arguments of `hibana devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Home folder of the devnet (default: <data dir>/hibana/devnet).
    #[arg(long, env = "HIBANA_HOME")]
    home: Option<PathBuf>,
    /// Blocks a market provider stays live after its last heartbeat (a new devnet's genesis):
    /// its leases pay no block after that.
    #[arg(long, default_value_t = hibana_types::records::market::MarketParams::default().liveness_blocks, value_parser = clap::value_parser!(u64).range(1..))]
    liveness_blocks: u64,
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
    /// Address of the analytics SQL endpoint (port 0 picks a free port; `hibana sql --home`
    /// finds it).
    #[arg(long, env = "HIBANA_ANALYTICS_ADDR", default_value = "127.0.0.1:0")]
    analytics_addr: SocketAddr,
    /// Do not run the analytics indexer and SQL endpoint.
    #[arg(long)]
    no_analytics: bool,
    /// Do not populate the network: without this flag the devnet (with AI) creates the `chat`
    /// and `embeddings` subnets, registers its provider as their miner and a validator of its
    /// own (bonded), scores the miner every few blocks so that epochs pay, and opens a demo data
    /// bounty (id 0 on a new devnet).
    #[arg(long)]
    no_demo: bool,
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
        home.create_devnet(
            &NodeConfig::default(),
            hibana_types::records::market::MarketParams {
                liveness_blocks: args.liveness_blocks,
            },
        )?;
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
    let banner = Banner {
        json,
        chain_id: genesis.chain_id.clone(),
        dir: dir.clone(),
        created,
        dev_keys: dev_keys.clone(),
        ai: ai.clone(),
        analytics: None,
        subnets: Vec::new(),
    };
    let analytics_addr = (!args.no_analytics).then_some(args.analytics_addr);
    let dashboard = crate::dashboard::Dashboard::new(crate::dashboard::DashboardConfig {
        devnet: true,
        gateway: ai.as_ref().map(|a| a.gateway.clone()),
        // The page hands the demo key to whoever loads it: only when only this machine can.
        api_key: ai
            .as_ref()
            .filter(|_| config.rpc_addr.ip().is_loopback())
            .map(|a| a.api_key.clone()),
        accounts: dev_keys
            .iter()
            .map(|k| crate::dashboard::NamedAccount {
                name: k.name.clone(),
                address: k.address.to_string(),
            })
            .collect(),
        ..Default::default()
    });
    let page = dashboard.clone();
    let (demo, zk_only) = (!args.no_demo, args.zk_only);
    run_node(&home, config, dashboard, move |url| {
        let url = url.to_string();
        // The banner says the devnet is ready: with the AI side, once every paid request can
        // move tokens (the provider registered, the channels open).
        tokio::spawn(async move {
            let mut banner = banner;
            if let Some(ai) = &banner.ai.clone() {
                if let Err(e) = ai.router.connect_chain(&url) {
                    tracing::warn!(error = %e, "the gateway cannot read the chain's subnets");
                }
                if let Err(e) = crate::market_provider::connect(&ai.provider_handle, &url) {
                    tracing::warn!(error = %e, "the provider cannot read the chain");
                }
                if let Err(e) = setup_payments(&banner.dir, ai, &url).await {
                    tracing::warn!(error = %e, "cannot set up the devnet's payments");
                    eprintln!("warning: the devnet's payments are not set up: {e:#}");
                } else if let Ok(client) = hibana_rpc::RpcClient::new(&url) {
                    // The devnet's provider bids on the orders it can serve, by itself.
                    tokio::spawn(crate::market_provider::bid_forever(
                        client,
                        ai.provider_handle.clone(),
                        Duration::from_secs(2),
                    ));
                    // Its validator judges the batch lines challenged on its provider's leases.
                    tokio::spawn(judge_forever(banner.dir.clone(), url.clone()));
                }
                if demo && !zk_only {
                    match setup_demo_network(&banner.dir, ai, &url).await {
                        Ok(subnets) => {
                            banner.subnets = subnets.clone();
                            tokio::spawn(score_forever(banner.dir.clone(), url.clone(), subnets));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot set up the demo network");
                            eprintln!("warning: the demo subnets and bounty are not set up: {e:#}");
                        }
                    }
                }
            }
            // Held for as long as the devnet runs: dropping it stops the indexer.
            let mut analytics = None;
            if let Some(addr) = analytics_addr {
                let mut names = Vec::new();
                if let Some(ai) = &banner.ai {
                    names.push((ai.provider_key.public_key().address(), "provider"));
                    names.push((ai.operator.public_key().address(), "gateway operator"));
                    if let Ok(key) = crate::run::scorer_key(&banner.dir.join("validator")) {
                        names.push((key.public_key().address(), "scoring validator"));
                    }
                }
                match crate::cli::analytics::start_for_devnet(&banner.dir, &url, addr, names).await
                {
                    Ok(running) => {
                        page.update(|c| c.analytics = Some(running.url.clone()));
                        banner.analytics = Some(running.url.clone());
                        analytics = Some(running);
                    }
                    Err(e) => eprintln!("warning: analytics is not running: {e:#}"),
                }
            }
            banner.print(&url);
            if analytics.is_some() {
                std::future::pending::<()>().await;
            }
        });
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// What the devnet prints once it is ready.
struct Banner {
    json: bool,
    chain_id: String,
    dir: PathBuf,
    created: bool,
    dev_keys: Vec<keys::DevKey>,
    ai: Option<DevnetAi>,
    /// URL of the analytics SQL endpoint, when it runs.
    analytics: Option<String>,
    /// The demo subnets, when the devnet runs them.
    subnets: Vec<String>,
}

impl Banner {
    fn print(&self, url: &str) {
        let (dev_keys, dir, created) = (&self.dev_keys, &self.dir, self.created);
        let ai = &self.ai;
        if self.json {
            let accounts: Vec<_> = dev_keys
                .iter()
                .map(|k| serde_json::json!({"name": k.name, "address": k.address}))
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "chain_id": self.chain_id,
                    "home": dir,
                    "rpc": url,
                    "dashboard": format!("{url}/"),
                    "metrics": format!("{url}/metrics"),
                    "analytics": self.analytics,
                    "subnets": self.subnets,
                    "dev_keyring": keys::dev_keyring_dir(dir),
                    "accounts": accounts,
                    "created": created,
                    "gateway": ai.as_ref().map(|a| &a.gateway),
                    "provider": ai.as_ref().map(|a| &a.provider),
                    "api_key": ai.as_ref().map(|a| &a.api_key),
                    "zk_model": ai.as_ref().map(|a| &a.zk_model),
                    "operator": ai.as_ref().map(|a| a.operator.public_key().address()),
                    "provider_account": ai.as_ref().map(|a| a.provider_key.public_key().address()),
                })
            );
        } else {
            println!(
                "Hibana devnet `{}` {}",
                self.chain_id,
                if created { "created" } else { "resumed" }
            );
            println!("  home:     {}", dir.display());
            println!("  dashboard: {url}/  (open it in a browser)");
            println!("  RPC:      {url}");
            println!("  metrics:  {url}/metrics");
            if let Some(analytics) = &self.analytics {
                println!(
                    "  SQL:      {analytics}/sql  (try: {} sql --home {} \"SELECT * FROM labels\")",
                    program(),
                    shell_arg(dir)
                );
            }
            println!(
                "  dev keyring (INSECURE, plaintext keys): {}",
                keys::dev_keyring_dir(dir).display()
            );
            for k in dev_keys {
                println!("    {:<6} {}", k.name, k.address);
            }
            // Commands that work as printed: this program's name and this devnet's home.
            let (hibana, home) = (program(), shell_arg(dir));
            if let Some(bob) = dev_keys.iter().find(|k| k.name == "bob") {
                println!(
                    "  try:      {hibana} tx transfer --home {home} --from alice --to {} --amount 1.5HIB",
                    bob.address
                );
                println!("            {hibana} query account bob --home {home}");
            }
            if let Some(ai) = ai {
                println!(
                    "  gateway:  {}/v1  (OpenAI-compatible; provider at {})",
                    ai.gateway, ai.provider
                );
                println!(
                    "  API key:  {}  (demo key: alice pays through channel to the gateway operator {})",
                    ai.api_key,
                    ai.operator.public_key().address()
                );
                println!(
                    "  provider: {} charges {} per token, paid by the gateway through a channel",
                    ai.provider_key.public_key().address(),
                    DEVNET_PRICE_PER_TOKEN
                );
                println!(
                    "  ZK model: {}  (served at {}/v1/zk/infer as `credit-mlp`)",
                    ai.zk_model.display(),
                    ai.gateway
                );
            }
            if !self.subnets.is_empty() {
                println!(
                    "  subnets:  {} (the provider mines, a scoring validator scores it; epochs every {DEMO_TEMPO} blocks: {} subnet emissions chat --home {})",
                    self.subnets.join(", "),
                    program(),
                    shell_arg(dir)
                );
            }
            println!("Press Ctrl-C to stop.");
        }
        let _ = std::io::stdout().flush();
    }
}

/// The AI side of a devnet: where the gateway and provider listen, and a demo key.
#[derive(Clone)]
pub(crate) struct DevnetAi {
    pub(crate) gateway: String,
    /// The running gateway, told the devnet's RPC URL once the node listens.
    pub(crate) router: Arc<Gateway>,
    pub(crate) provider: String,
    /// The running provider, told the devnet's RPC URL to check and redeem vouchers.
    pub(crate) provider_handle: Arc<hibana_roles::provider::Provider>,
    /// The provider's key (its account is registered in the market).
    pub(crate) provider_key: hibana_types::SecretKey,
    /// The gateway operator's key (its account takes alice's payments).
    pub(crate) operator: hibana_types::SecretKey,
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
    // The provider keeps its port across restarts when it can: its neurons registered that
    // URL, and the chain has no message to move a neuron.
    let port_file = home.join("provider").join("port");
    let saved_port = fs::read_to_string(&port_file)
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok());
    let mut started = None;
    for port in saved_port.into_iter().chain([0]) {
        match start_provider(
            &home.join("provider"),
            wanted.clone(),
            zk.clone(),
            SocketAddr::from(([127, 0, 0, 1], port)),
            DEVNET_PRICE_PER_TOKEN,
            4,
        )
        .await
        {
            Ok(running) => {
                started = Some(running);
                break;
            }
            Err(e) if port != 0 => {
                eprintln!(
                    "warning: the provider cannot listen on its port {port} again ({e:#}); it takes a new one, and the demo subnets' miner stops being reachable"
                );
            }
            Err(e) => return Err(e),
        }
    }
    let (provider, provider_handle) =
        started.ok_or_else(|| anyhow!("the provider did not start"))?;
    if let Some(port) = provider.rsplit(':').next() {
        fs::write(&port_file, port)?;
    }
    let provider_key = crate::run::provider_key(&home.join("provider"))?;
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
    let operator = crate::run::operator_key(&gateway_home)?;
    let (gateway, router) = start_gateway(
        &gateway_home,
        GatewaySettings {
            providers: vec![provider.clone()],
            chain: None,
            timeout: Duration::from_secs(120),
            // A devnet's miners all listen on loopback.
            miner_endpoints: EndpointPolicy::AnyAddress,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            operator: Some(operator.clone()),
            recheck_share: DEVNET_RECHECK_SHARE,
        },
        gateway_addr,
    )
    .await?;
    // Where `hibana audit --remote --home …` and other clients find this devnet's gateway.
    std::fs::write(gateway_home.join("url"), format!("{gateway}\n"))?;
    Ok(DevnetAi {
        gateway,
        router,
        provider,
        provider_handle,
        provider_key,
        operator,
        api_key,
        zk_model,
    })
}

/// The subnets a devnet runs (name, task): one per kind of model its provider serves.
const DEMO_SUBNETS: [(&str, &str); 2] = [("chat", "chat"), ("embeddings", "embeddings")];

/// Blocks between a demo subnet's epochs.
const DEMO_TEMPO: u64 = 10;

/// A development key of the devnet in `home` (`alice`, `bob`, `carol`).
fn dev_key(home: &Path, name: &str) -> Result<hibana_types::SecretKey> {
    let source = crate::cli::common::KeySource {
        keyring_dir: None,
        home: Some(home.to_path_buf()),
        password_file: None,
    };
    crate::cli::common::signing_key(name, &source)
}

/// Makes the network live: creates the demo subnets (alice owns them), registers the provider
/// as their miner and the devnet's scoring validator (its own key, funded and bonded by
/// alice's tokens so that its weights count) as their validator, and opens alice's demo data
/// bounty. Each step is skipped when the chain already has it. Returns the subnets' names.
async fn setup_demo_network(home: &Path, ai: &DevnetAi, url: &str) -> Result<Vec<String>> {
    use hibana_types::{
        Bond, CreateSubnet, Message, NeuronRole, RegisterNeuron, SubnetParams, Transfer,
    };
    let client = hibana_rpc::RpcClient::new(url)?;
    let alice = dev_key(home, "alice")?;
    let scorer = crate::run::scorer_key(&home.join("validator"))?;
    let hib = |n: u128| Amount(n * hibana_types::BASE_UNITS_PER_HIB);
    let scorer_address = scorer.public_key().address();
    let mut alice_sends = Vec::new();
    let scorer_account = client.account_verified(&scorer_address).await?;
    if scorer_account.stake.0 == 0 && scorer_account.balance.0 < hib(1_000).0 {
        alice_sends.push(Message::Transfer(Transfer {
            to: scorer_address,
            amount: hib(1_010),
        }));
    }
    for (name, task) in DEMO_SUBNETS {
        if client.subnet(name).await?.is_none() {
            alice_sends.push(Message::CreateSubnet(CreateSubnet {
                name: name.into(),
                task: task.into(),
                params: SubnetParams {
                    tempo: DEMO_TEMPO,
                    commit_reveal_interval: 2,
                    ..SubnetParams::default()
                },
            }));
        }
    }
    let bounties = client.data_bounties(64).await?;
    let alice_address = alice.public_key().address();
    if !bounties
        .iter()
        .any(|b| b.owner == alice_address && b.terms.title == DEMO_BOUNTY_TITLE)
    {
        alice_sends.push(Message::CreateBounty(hibana_types::CreateBounty {
            terms: demo_bounty(client.status().await?.height),
        }));
    }
    send_step(
        &client,
        &alice,
        alice_sends,
        "creating the demo subnets and bounty",
    )
    .await?;
    let provider = ai.provider_key.public_key().address();
    let (mut miner, mut validator) = (Vec::new(), Vec::new());
    if scorer_account.stake.0 == 0 {
        let status = client.status().await?;
        let Some(bonded) = status.validators.first() else {
            bail!("the devnet has no validator to bond to");
        };
        validator.push(Message::Bond(Bond {
            validator: bonded.address,
            amount: hib(1_000),
        }));
    }
    for (name, task) in DEMO_SUBNETS {
        let Some(view) = client.subnet(name).await? else {
            bail!("the subnet {name} was not created");
        };
        let registered = |who| view.neurons.iter().any(|n| n.account == who);
        if !registered(provider) {
            let model = crate::cli::subnet::endpoint_model(&ai.provider, task).await?;
            miner.push(Message::RegisterNeuron(RegisterNeuron {
                subnet: view.subnet.id,
                role: NeuronRole::Miner,
                endpoint: ai.provider.clone(),
                model,
            }));
        }
        if !registered(scorer_address) {
            validator.push(Message::RegisterNeuron(RegisterNeuron {
                subnet: view.subnet.id,
                role: NeuronRole::Validator,
                // A validator serves nothing; the runtime wants a URL.
                endpoint: "http://127.0.0.1:9".into(),
                model: hibana_types::Hash::ZERO,
            }));
        }
    }
    crate::market_provider::send_as(
        &client,
        &ai.provider_handle,
        miner,
        "registering the provider as a miner",
    )
    .await?;
    send_step(
        &client,
        &scorer,
        validator,
        "registering the scoring validator",
    )
    .await?;
    Ok(DEMO_SUBNETS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect())
}

/// Title of the data bounty a devnet opens for its users to contribute to.
const DEMO_BOUNTY_TITLE: &str = "demo: sentiment labels";

/// The devnet's demo bounty, opened at `height`: short texts labelled positive or negative,
/// 0.1 HIB per accepted item, one reviewer per item, open for a million blocks.
fn demo_bounty(height: u64) -> hibana_types::records::data::BountyTerms {
    let hib = |milli: u128| Amount(milli * hibana_types::BASE_UNITS_PER_HIB / 1000);
    hibana_types::records::data::BountyTerms {
        title: DEMO_BOUNTY_TITLE.into(),
        schema: r#"{"type":"object","required":["text","label"],"additionalProperties":false,"properties":{"text":{"type":"string","minLength":1,"maxLength":500},"label":{"enum":["positive","negative"]}}}"#.into(),
        reward_per_item: hib(100),
        reviewer_reward: hib(10),
        reviewers_per_item: 1,
        quorum_bps: 6_000,
        contribution_stake: hib(10),
        review_stake: hib(1_000),
        slash_bps: 1_000,
        deadline: height.saturating_add(1_000_000),
        max_items: 100,
        commit_blocks: 30,
        reveal_blocks: 30,
        gold_commitment: None,
        gold_floor_bps: 0,
    }
}

/// The devnet's scoring validator scores the miners of every subnet in `subnets` about once
/// per tempo, one round at a time (its transactions share one nonce sequence), for as long
/// as the devnet runs; a failed round is logged and the next one tried later.
async fn score_forever(home: PathBuf, url: String, subnets: Vec<String>) {
    let mut validators = Vec::new();
    for subnet in subnets {
        let validator = crate::run::scorer_key(&home.join("validator")).and_then(|key| {
            let config = hibana_roles::validator::ValidatorConfig {
                rpc: url.clone(),
                subnet: subnet.clone(),
                challenges: 1,
                timeout: Duration::from_secs(60),
                history: home.join("validator").join(format!("{subnet}.jsonl")),
                models_dir: None,
                rounds: None,
                miner_endpoints: EndpointPolicy::AnyAddress,
                // The gateway already re-checks a share of answers; this one only scores.
                recheck_share: 0.0,
                challenge_deposit: Amount(hibana_types::BASE_UNITS_PER_HIB),
            };
            hibana_roles::validator::Validator::new(config, key)
        });
        match validator {
            Ok(v) => validators.push((subnet, v)),
            Err(e) => eprintln!("warning: the demo validator of {subnet} cannot start: {e:#}"),
        }
    }
    for round in 1.. {
        for (subnet, validator) in &mut validators {
            if let Err(e) = validator.round(round).await {
                tracing::warn!(%subnet, error = %e, "demo validator round failed");
            }
        }
        // About one round per epoch keeps the CPU free for the devnet's users.
        tokio::time::sleep(Duration::from_secs(DEMO_TEMPO)).await;
    }
}

/// Lines of each committed batch the devnet's validator re-runs (devnet batches are small; a
/// validator of a busy network would check fewer, of a share of the batches).
const DEVNET_SPOT_CHECK_LINES: usize = 4;

/// The devnet's validator re-checks, on the installed models, the batch lines challenged for
/// the chain's validators to judge, and votes (its fees were funded with the provider's). It
/// also spot-checks every committed batch itself, challenging a wrong line and asking on chain
/// for the lines a provider does not serve, and logs each check to `spot_checks.jsonl` in the
/// devnet's home.
async fn judge_forever(dir: PathBuf, url: String) {
    let ready = crate::home::Home::new(dir.clone())
        .load_validator_key()
        .and_then(|key| Ok((key, hibana_rpc::RpcClient::new(&url)?)));
    let (key, client) = match ready {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!(
                "warning: the devnet's validator will not judge challenged batch lines: {e:#}"
            );
            return;
        }
    };
    let local = std::sync::Arc::new(hibana_roles::recheck::LocalModels::new(
        crate::run::models_dir(),
    ));
    let mut voted = std::collections::BTreeSet::new();
    let mut spot = hibana_roles::spot_check::SpotChecker::new(
        client.clone(),
        key.clone(),
        hibana_roles::spot_check::SpotCheckConfig {
            lines: DEVNET_SPOT_CHECK_LINES,
            share: 1.0,
            deposit: hibana_types::records::verify::MIN_CHALLENGE_DEPOSIT,
            log: dir.join("spot_checks.jsonl"),
            request: true,
        },
    );
    // Spot-checks run beside the votes, so a slow provider never delays a vote.
    let models = local.clone();
    tokio::spawn(async move {
        loop {
            spot.pass(&models).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    loop {
        hibana_roles::validator::vote_on_challenges(
            &client,
            &key,
            &local,
            hibana_types::records::verify::CHAIN_JUDGED,
            &mut voted,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Share of the miners' answers the devnet's gateway re-checks by teacher forcing.
const DEVNET_RECHECK_SHARE: f64 = 0.02;

/// What the devnet's provider charges per token, in base units.
const DEVNET_PRICE_PER_TOKEN: Amount = Amount(1_000);

/// Makes every paid request of the demo key move tokens: funds the provider's and the
/// operator's accounts from alice, registers the provider in the market at its price and
/// current URL, opens alice's channel to the operator for the demo key, and lets the gateway
/// open its channel to the provider. Each step is skipped when the chain already has it.
async fn setup_payments(home: &Path, ai: &DevnetAi, url: &str) -> Result<()> {
    use hibana_types::{Message, OpenChannel, Transfer};
    let client = hibana_rpc::RpcClient::new(url)?;
    let alice = dev_key(home, "alice")?;
    // The first block carries the genesis accounts' first transactions.
    for _ in 0..200 {
        if client.status().await.map(|s| s.height).unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hib = |n: u128| Amount(n * hibana_types::BASE_UNITS_PER_HIB);
    let provider = ai.provider_key.public_key().address();
    let operator = ai.operator.public_key().address();
    // The validator pays its votes on challenged batch lines (`judge_forever`).
    let validator = crate::home::Home::new(home.to_path_buf())
        .load_validator_key()?
        .public_key()
        .address();
    let mut funding = Vec::new();
    for (to, want) in [
        (provider, hib(20)),
        (operator, hib(20)),
        (validator, hib(10)),
    ] {
        let has = client
            .account_verified(&to)
            .await
            .map(|a| a.balance)
            .unwrap_or_default();
        if has.0 < want.0 / 2 {
            funding.push(Message::Transfer(Transfer { to, amount: want }));
        }
    }
    send_step(
        &client,
        &alice,
        funding,
        "funding the provider, the operator and the validator",
    )
    .await?;
    let models: Vec<hibana_types::Hash> = reqwest::get(format!("{}/health", ai.provider))
        .await?
        .json::<serde_json::Value>()
        .await?["models"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|m| m["hash"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    crate::market_provider::register(
        &client,
        &ai.provider_handle,
        &ai.provider,
        crate::market_provider::this_machine("local", models),
        Amount(1_000),
        DEVNET_PRICE_PER_TOKEN,
    )
    .await?;
    let signer = hibana_roles::keys::voucher_signer(&ai.api_key).public_key();
    let alice_address = alice.public_key().address();
    let view = client.channels(alice_address, Some(operator)).await?;
    let usable = view.channels.iter().any(|c| {
        c.signer == signer
            && c.settling_until.is_none()
            && c.expires_at > view.height + hibana_roles::gateway::EXPIRY_MARGIN_BLOCKS
            && c.remaining().0 > 0
    });
    if !usable {
        send_step(
            &client,
            &alice,
            vec![Message::OpenChannel(OpenChannel {
                payee: operator,
                signer: Some(signer),
                deposit: hib(5),
                expires_at: view.height + 1_000_000,
            })],
            "opening alice's channel to the gateway",
        )
        .await?;
    }
    // The gateway learns the provider's registration, then opens its channel to it.
    ai.router.refresh_subnets().await;
    ai.router.billing_upkeep().await;
    Ok(())
}
