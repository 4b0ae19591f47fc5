//! The implementations of the CLI commands.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, Result, anyhow, bail};
use hibana_rpc::{BlockId, RpcClient};
use hibana_runtime::GenesisAccount;
use hibana_types::{
    Address, Amount, Bond, Hash, Message, Receipt, SecretKey, Transaction, Transfer, TxOutcome,
    Unbond,
};
use serde::Serialize;

use crate::{
    Cli, Command, DevnetArgs, InitArgs, KeySource, NodeArgs, NodeFlags, QueryCommand, TestnetArgs,
    TxCommand, TxFlags, WalletCommand,
    home::{Home, NodeConfig, create_network, resolve_rpc, run_node},
    keys::{self, Keyring, Keystore},
};

pub(crate) fn data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("hibana")
}

pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs a parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<ExitCode> {
    let json = cli.json;
    let rpc = cli.rpc.clone();
    match cli.command {
        Command::Devnet(args) => devnet(args, json).await,
        Command::Init(args) => init(args, json),
        Command::Node(args) => node(args).await,
        Command::Testnet(args) => testnet(args, json).await,
        Command::Wallet(cmd) => wallet(cmd, json),
        Command::Tx(cmd) => tx(cmd, rpc.as_deref(), json).await,
        Command::Query(cmd) => query(cmd, rpc.as_deref(), json).await,
        Command::Status(node) => status(rpc.as_deref(), node.home.as_deref(), json).await,
        Command::Zk(cmd) => crate::zk_commands::run(cmd, rpc.as_deref(), json).await,
        Command::Audit(_) => Ok(ExitCode::SUCCESS),
        Command::Models(cmd) => {
            hibana_ai::cli::run(&cmd, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Provider(cmd) => {
            crate::ai_commands::provider(cmd, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gateway(args) => {
            crate::ai_commands::gateway(args, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Subnet(cmd) => crate::subnet_commands::subnet(cmd, rpc.as_deref(), json).await,
        Command::Neuron(cmd) => crate::subnet_commands::neuron(cmd, rpc.as_deref(), json).await,
        Command::Weights(cmd) => crate::subnet_commands::weights(cmd, rpc.as_deref(), json).await,
        Command::Validator(cmd) => crate::subnet_commands::validator(cmd, rpc.as_deref()).await,
    }
}

fn apply_flags(mut config: NodeConfig, flags: &NodeFlags) -> NodeConfig {
    if let Some(addr) = flags.rpc_addr {
        config.rpc_addr = addr;
    }
    if let Some(ms) = flags.block_time_ms {
        config.block_time_ms = ms;
    }
    config
}

async fn devnet(args: DevnetArgs, json: bool) -> Result<ExitCode> {
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
    let config = apply_flags(home.load_config()?, &args.node);
    let genesis = home.load_genesis().map_err(|e| {
        anyhow!("{e:#}\nthe devnet home looks corrupt: start over with `hibana devnet --reset`")
    })?;
    let dev_keys = keys::list_dev_keys(&dir);
    let ai = if args.no_ai {
        None
    } else {
        Some(
            crate::ai_commands::start_devnet_ai(&dir, &dev_keys, args.gateway_addr, args.zk_only)
                .await?,
        )
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
            if let Some(bob) = dev_keys.iter().find(|k| k.name == "bob") {
                println!(
                    "  try:      hibana tx transfer --home {} --from alice --to {} --amount 1.5HIB",
                    dir.display(),
                    bob.address
                );
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

fn init(args: InitArgs, json: bool) -> Result<ExitCode> {
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
            println!("  start each: hibana node --home {}/nodeK", out.display());
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
            println!("  start it:  hibana node --home {}", home_dir.display());
            println!(
                "  then, funded: hibana tx stake --amount 1000HIB --validator self --from validator --home {}",
                home_dir.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let genesis = home.create(
        &args.chain_id,
        accounts,
        &NodeConfig::default(),
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
        println!("  start it:  hibana node --home {}", home_dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn node(args: NodeArgs) -> Result<ExitCode> {
    let home = Home::new(args.home);
    let config = apply_flags(home.load_config()?, &args.node);
    run_node(&home, config, |url| {
        println!("Hibana node serving RPC at {url}");
        let _ = std::io::stdout().flush();
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn testnet(args: TestnetArgs, json: bool) -> Result<ExitCode> {
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
            "  try:  hibana tx transfer --home {} --from alice --to bob --amount 1HIB",
            out.join("node0").display()
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

fn keyring(keys: &KeySource) -> Keyring {
    Keyring::new(
        keys.keyring_dir
            .clone()
            .unwrap_or_else(|| data_dir().join("keyring")),
    )
}

fn wallet(cmd: WalletCommand, json: bool) -> Result<ExitCode> {
    match cmd {
        WalletCommand::New { name, keys: source } => {
            keys::check_name(&name)?;
            let ring = keyring(&source);
            if ring.get(&name).is_ok() {
                bail!(
                    "a key named {name:?} already exists in {}",
                    ring.dir.display()
                );
            }
            let mnemonic = keys::new_mnemonic()?;
            let pass = keys::passphrase(source.password_file.as_deref(), "New passphrase: ", true)?;
            let store = Keystore::seal(&name, &mnemonic, &pass)?;
            let path = ring.add(&store)?;
            if json {
                print_json(&serde_json::json!({
                    "name": name, "address": store.address, "public_key": store.public_key,
                    "mnemonic": mnemonic.to_string(), "keystore": path,
                }))?;
            } else {
                println!("Created key {name:?}");
                println!("  address:  {}", store.address);
                println!("  keystore: {}", path.display());
                println!("Write down this mnemonic; it is the only way to recover the key:");
                println!("  {mnemonic}");
            }
        }
        WalletCommand::Import {
            name,
            mnemonic_file,
            keys: source,
        } => {
            keys::check_name(&name)?;
            let phrase = match &mnemonic_file {
                Some(path) => fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => rpassword::prompt_password("Mnemonic: ").map_err(|_| {
                    anyhow!("cannot ask for the mnemonic without a terminal: use --mnemonic-file")
                })?,
            };
            let mnemonic = keys::parse_mnemonic(&phrase)?;
            let pass = keys::passphrase(source.password_file.as_deref(), "New passphrase: ", true)?;
            let store = Keystore::seal(&name, &mnemonic, &pass)?;
            let ring = keyring(&source);
            let path = ring.add(&store)?;
            if json {
                print_json(
                    &serde_json::json!({"name": name, "address": store.address, "keystore": path}),
                )?;
            } else {
                println!("Imported key {name:?}: {}", store.address);
            }
        }
        WalletCommand::List { keys: source } => {
            let mut rows: Vec<(String, Address, &str)> = Vec::new();
            if let Some(home) = &source.home {
                for k in keys::list_dev_keys(home) {
                    rows.push((k.name, k.address, "dev (plaintext)"));
                }
            } else {
                for k in keyring(&source).list()? {
                    rows.push((k.name, k.address, "encrypted"));
                }
            }
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(n, a, kind)| serde_json::json!({"name": n, "address": a, "kind": kind}))
                    .collect();
                print_json(&list)?;
            } else if rows.is_empty() {
                println!("No keys. Create one with `hibana wallet new NAME`.");
            } else {
                for (name, address, kind) in rows {
                    println!("{name:<16} {address}  {kind}");
                }
            }
        }
        WalletCommand::Show { name, keys: source } => {
            let (address, public_key) = match &source.home {
                Some(home) => {
                    let k = keys::read_dev_key(home, &name)?;
                    (k.address, k.secret()?.public_key())
                }
                None => {
                    let k = keyring(&source).get(&name)?;
                    (k.address, k.public_key)
                }
            };
            if json {
                print_json(
                    &serde_json::json!({"name": name, "address": address, "public_key": public_key}),
                )?;
            } else {
                println!("{name}");
                println!("  address:    {address}");
                println!("  public key: {public_key}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads a signing key by name from the dev keyring (`--home`) or the encrypted keyring.
pub(crate) fn signing_key(name: &str, source: &KeySource) -> Result<SecretKey> {
    match &source.home {
        // `--from validator --home H`: the node's own validator key, e.g. to bond to itself.
        Some(home) if name == "validator" && keys::read_dev_key(home, name).is_err() => {
            Home::new(home.clone()).load_validator_key()
        }
        Some(home) => keys::read_dev_key(home, name)?.secret(),
        None => {
            let store = keyring(source).get(name)?;
            let pass = keys::passphrase(
                source.password_file.as_deref(),
                &format!("Passphrase for {name}: "),
                false,
            )?;
            store.open(&pass)
        }
    }
}

/// An address, or the address of a key name in the dev keyring or keyring.
fn resolve_account(text: &str, home: Option<&Path>, source: Option<&KeySource>) -> Result<Address> {
    if text.starts_with("hib1") {
        return Ok(text.parse()?);
    }
    if let Some(home) = home
        && let Ok(k) = keys::read_dev_key(home, text)
    {
        return Ok(k.address);
    }
    if let Some(home) = home
        && text == "validator"
        && let Ok(k) = Home::new(home.to_path_buf()).load_validator_key()
    {
        return Ok(k.public_key().address());
    }
    if let Some(source) = source
        && let Ok(k) = keyring(source).get(text)
    {
        return Ok(k.address);
    }
    text.parse::<Address>()
        .map_err(|e| anyhow!("{e} (and no key is named {text:?})"))
}

pub(crate) fn client(rpc: Option<&str>, home: Option<&Path>) -> Result<RpcClient> {
    Ok(RpcClient::new(&resolve_rpc(rpc, home))?)
}

async fn tx(cmd: TxCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    let flags = match &cmd {
        TxCommand::Transfer { tx, .. }
        | TxCommand::Stake { tx, .. }
        | TxCommand::Evidence { tx, .. }
        | TxCommand::Unstake { tx, .. } => tx,
    };
    let home = flags.keys.home.clone();
    let client = client(rpc, home.as_deref())?;
    let key = signing_key(&flags.from, &flags.keys)?;
    let sender = key.public_key().address();
    let message = match &cmd {
        TxCommand::Transfer { to, amount, tx } => {
            let to = resolve_account(to, home.as_deref(), Some(&tx.keys))?;
            Message::Transfer(Transfer {
                to,
                amount: amount.parse()?,
            })
        }
        TxCommand::Stake {
            amount, validator, ..
        } => {
            let validator = match validator.as_deref() {
                Some("self") => sender,
                Some(v) => v.parse()?,
                None => {
                    let status = client.status().await?;
                    status
                        .validators
                        .first()
                        .map(|v| v.address)
                        .ok_or_else(|| anyhow!("the chain has no validators"))?
                }
            };
            Message::Bond(Bond {
                validator,
                amount: amount.parse()?,
            })
        }
        TxCommand::Evidence { file, .. } => {
            let text = fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let equivocation: hibana_types::Equivocation = serde_json::from_str(&text)
                .with_context(|| format!("{} is not equivocation evidence", file.display()))?;
            Message::SubmitEvidence(hibana_types::SubmitEvidence { equivocation })
        }
        TxCommand::Unstake {
            amount, validator, ..
        } => {
            let validator = match validator.as_deref() {
                Some("self") => sender,
                Some(v) => v.parse()?,
                None => {
                    let account = client.account_verified(&sender).await?;
                    match account.delegations.as_slice() {
                        [one] => one.validator,
                        [] => bail!("{sender} has nothing bonded"),
                        _ => bail!(
                            "{sender} is bonded to several validators: choose one with --validator"
                        ),
                    }
                }
            };
            Message::Unbond(Unbond {
                validator,
                amount: amount.parse()?,
            })
        }
    };
    send(&client, &key, message, flags, json).await
}

pub(crate) async fn send(
    client: &RpcClient,
    key: &SecretKey,
    message: Message,
    flags: &TxFlags,
    json: bool,
) -> Result<ExitCode> {
    match sign_and_submit(client, key, message, flags).await? {
        Sent::Pending(hash) => print_pending(&hash, json)?,
        Sent::Committed(receipt) => {
            print_receipt(&receipt, json)?;
            if !receipt.is_success() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a submitted transaction stands when the command returns.
pub(crate) enum Sent {
    /// Submitted with `--no-wait`.
    Pending(Hash),
    /// Included in a block.
    Committed(Receipt),
}

/// Prints the hash of a transaction submitted without waiting.
pub(crate) fn print_pending(hash: &Hash, json: bool) -> Result<()> {
    if json {
        print_json(&serde_json::json!({"hash": hash, "status": "pending"}))
    } else {
        println!("Submitted {hash}");
        Ok(())
    }
}

/// Signs a one-message transaction with the sender's next nonce, submits it and (unless
/// `--no-wait`) waits for its receipt.
pub(crate) async fn sign_and_submit(
    client: &RpcClient,
    key: &SecretKey,
    message: Message,
    flags: &TxFlags,
) -> Result<Sent> {
    let status = client.status().await?;
    let account = client.account_verified(&key.public_key().address()).await?;
    let fee = match &flags.fee {
        Some(f) => f.parse()?,
        None => status.min_fee,
    };
    let signed = Transaction {
        chain_id: status.chain_id,
        signer: key.public_key(),
        nonce: account.nonce,
        fee,
        messages: vec![message],
    }
    .sign(key);
    let hash = client.submit(&signed).await?;
    if flags.no_wait {
        return Ok(Sent::Pending(hash));
    }
    Ok(Sent::Committed(
        client.wait_for_tx(&hash, Duration::from_secs(60)).await?,
    ))
}

pub(crate) fn print_receipt(receipt: &Receipt, json: bool) -> Result<()> {
    if json {
        return print_json(receipt);
    }
    match &receipt.outcome {
        TxOutcome::Success => println!("Committed {} in block {}", receipt.tx_hash, receipt.height),
        TxOutcome::Failed(reason) => {
            println!(
                "FAILED {} in block {}: {reason}",
                receipt.tx_hash, receipt.height
            )
        }
    }
    println!("  fee: {}", receipt.fee);
    print_events(&receipt.events, "  ");
    Ok(())
}

/// Prints events a line each: kind, then key=value attributes.
fn print_events(events: &[hibana_types::Event], indent: &str) {
    for event in events {
        let attrs: Vec<String> = event
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("{indent}{} {}", event.kind, attrs.join(" "));
    }
}

async fn query(cmd: QueryCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        QueryCommand::Account {
            account,
            keys: source,
        } => {
            let home = source.home.clone();
            let client = client(rpc, home.as_deref())?;
            let address = resolve_account(&account, home.as_deref(), Some(&source))?;
            let view = client.account_verified(&address).await?;
            if json {
                print_json(&view)?;
            } else {
                println!("{}", view.address);
                println!("  balance: {}", view.balance);
                println!("  nonce:   {}", view.nonce);
                println!("  staked:  {}", view.stake);
                for d in &view.delegations {
                    println!("    {} to {}", d.tokens, d.validator);
                }
                println!("  (verified against the block's state root)");
            }
        }
        QueryCommand::Block { id, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let id = match id {
                None => None,
                Some(s) => Some(match s.parse::<u64>() {
                    Ok(h) => BlockId::Height(h),
                    Err(_) => BlockId::Hash(s.parse::<Hash>()?),
                }),
            };
            let Some(view) = client.block(id).await? else {
                bail!("no such block");
            };
            if json {
                print_json(&view)?;
            } else {
                let h = &view.block.header;
                println!("block {} {}", h.height, view.hash);
                println!("  time:       {} ms", h.time_ms);
                println!("  proposer:   {}", h.proposer);
                println!("  parent:     {}", h.parent_hash);
                println!("  state root: {}", h.state_root);
                println!("  txs:        {}", view.block.txs.len());
                for tx in &view.block.txs {
                    println!("    {}", tx.hash());
                }
            }
        }
        QueryCommand::Events { height, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let events = client.block_events(height).await?;
            if json {
                print_json(&events)?;
            } else if events.is_empty() {
                println!("Block {height} has no events outside its transactions.");
            } else {
                print_events(&events, "");
            }
        }
        QueryCommand::Tx { hash, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let hash: Hash = hash.parse()?;
            let Some(view) = client.tx(&hash).await? else {
                let status = client.tx_status(&hash).await?;
                bail!(
                    "transaction {hash} is not committed (status: {})",
                    serde_json::to_string(&status)?
                );
            };
            if json {
                print_json(&view)?;
            } else {
                println!(
                    "tx {} from {} (nonce {})",
                    view.hash,
                    view.tx.sender(),
                    view.tx.tx.nonce
                );
                print_receipt(&view.receipt, false)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(rpc: Option<&str>, home: Option<&Path>, json: bool) -> Result<ExitCode> {
    let client = client(rpc, home)?;
    let status = client.status().await?;
    if json {
        print_json(&status)?;
    } else {
        println!("chain:      {}", status.chain_id);
        println!("height:     {}", status.height);
        if let Some(hash) = status.latest_block_hash {
            println!("latest:     {hash}");
        }
        println!("state root: {}", status.state_root);
        println!("mempool:    {} txs", status.mempool_size);
        println!("validators:");
        for v in &status.validators {
            println!("  {} power {}", v.address, v.power);
        }
    }
    Ok(ExitCode::SUCCESS)
}
