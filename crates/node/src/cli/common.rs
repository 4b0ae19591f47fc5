//! What many commands share: the arguments that name a node, a key and a transaction's options,
//! and the helpers that turn them into an RPC client, a signing key, an address, a sent
//! transaction. Command modules import this one; it imports none of them.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use hibana_rpc::RpcClient;
use hibana_types::{Address, Hash, Message, Receipt, SecretKey};

use crate::{
    home::{Home, NodeConfig, data_dir, resolve_rpc},
    keys::{self, Keyring},
    output::{print_pending, print_receipt},
};

/// The home of the node to talk to, for commands that need no keys.
#[derive(Debug, Args)]
pub(crate) struct NodeHome {
    /// A devnet or node home: talk to its node (the RPC URL it saved), unless --rpc is given.
    #[arg(long, env = "HIBANA_HOME")]
    pub(crate) home: Option<PathBuf>,
}

/// Where signing keys come from.
#[derive(Debug, Args)]
pub(crate) struct KeySource {
    /// Folder of encrypted keystores (default: <data dir>/hibana/keyring).
    #[arg(long, env = "HIBANA_KEYRING_DIR", conflicts_with = "home")]
    pub(crate) keyring_dir: Option<PathBuf>,
    /// A devnet home: use its plaintext development keyring (alice, bob, carol).
    #[arg(long, env = "HIBANA_HOME")]
    pub(crate) home: Option<PathBuf>,
    /// Read the keystore passphrase from the first line of this file instead of asking.
    #[arg(long, env = "HIBANA_PASSWORD_FILE")]
    pub(crate) password_file: Option<PathBuf>,
}

/// Options of every transaction.
#[derive(Debug, Args)]
pub(crate) struct TxFlags {
    /// Name of the signing key (with a devnet's --home: alice, bob, carol, `validator` for the
    /// node's key, `provider` for the key its provider signs receipts with).
    #[arg(long)]
    pub(crate) from: String,
    /// Fee (default: the chain's minimum fee).
    #[arg(long)]
    pub(crate) fee: Option<String>,
    /// Return after submission without waiting for inclusion.
    #[arg(long)]
    pub(crate) no_wait: bool,
    #[command(flatten)]
    pub(crate) keys: KeySource,
}

/// Node settings shared by `devnet` and `node`.
#[derive(Debug, Args)]
pub(crate) struct NodeFlags {
    /// Address for the JSON-RPC server (port 0 picks a free port).
    #[arg(long, env = "HIBANA_RPC_ADDR")]
    pub(crate) rpc_addr: Option<SocketAddr>,
    /// Milliseconds between blocks.
    #[arg(long, env = "HIBANA_BLOCK_TIME_MS")]
    pub(crate) block_time_ms: Option<u64>,
}

impl NodeFlags {
    /// The home's config with these flags applied over it.
    pub(crate) fn apply(&self, mut config: NodeConfig) -> NodeConfig {
        if let Some(addr) = self.rpc_addr {
            config.rpc_addr = addr;
        }
        if let Some(ms) = self.block_time_ms {
            config.block_time_ms = ms;
        }
        config
    }
}

/// A client of the node named by `--rpc`, else by the RPC URL a node of `home` saved.
pub(crate) fn client(rpc: Option<&str>, home: Option<&Path>) -> Result<RpcClient> {
    Ok(RpcClient::new(&resolve_rpc(rpc, home))?)
}

/// Where the validator set a light client trusts for the chain of `home` is kept.
pub(crate) fn trust_path(home: &Path) -> PathBuf {
    home.join("light.json")
}

/// A client like [`client`] that trusts the validator set saved at [`trust_path`] of `home`,
/// if any (without a home, a command trusts the first set it verifies, for its own run).
pub(crate) fn light_client(rpc: Option<&str>, home: Option<&Path>) -> Result<RpcClient> {
    let client = client(rpc, home)?;
    let Some(home) = home else {
        return Ok(client);
    };
    let path = trust_path(home);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let set = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a trusted validator set; delete it to trust anew",
                    path.display()
                )
            })?;
            Ok(client.with_trust(set))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(client),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Saves the validator set `client` trusts now at [`trust_path`] of `home`, for the next
/// command.
pub(crate) fn save_trust(client: &RpcClient, home: &Path) -> Result<()> {
    let Some(set) = client.trusted() else {
        return Ok(());
    };
    let path = trust_path(home);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&set)?)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
}

/// The encrypted keyring of `--keyring-dir`, else the default one.
pub(crate) fn keyring(keys: &KeySource) -> Keyring {
    Keyring::new(
        keys.keyring_dir
            .clone()
            .unwrap_or_else(|| data_dir().join("keyring")),
    )
}

/// Loads a signing key by name from the dev keyring (`--home`) or the encrypted keyring.
pub(crate) fn signing_key(name: &str, source: &KeySource) -> Result<SecretKey> {
    match &source.home {
        // `--from validator --home H`: the node's own validator key, e.g. to bond to itself.
        Some(home) if name == "validator" && keys::read_dev_key(home, name).is_err() => {
            Home::new(home.clone()).load_validator_key()
        }
        // `--from provider --home H`: the key the devnet's provider signs receipts with.
        Some(home) if name == "provider" && keys::read_dev_key(home, name).is_err() => {
            crate::run::saved_provider_key(&home.join("provider"))
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
pub(crate) fn resolve_account(
    text: &str,
    home: Option<&Path>,
    source: Option<&KeySource>,
) -> Result<Address> {
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
    if let Some(home) = home
        && text == "provider"
        && let Ok(k) = crate::run::saved_provider_key(&home.join("provider"))
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

/// Signs and sends a one-message transaction and prints its receipt (or its hash with
/// `--no-wait`); a failed transaction is a failed command.
pub(crate) async fn send(
    client: &RpcClient,
    key: &SecretKey,
    message: Message,
    flags: &TxFlags,
    json: bool,
) -> Result<ExitCode> {
    send_all(client, key, vec![message], flags, json).await
}

/// [`send`] for a transaction of several messages, run in order and all or none.
pub(crate) async fn send_all(
    client: &RpcClient,
    key: &SecretKey,
    messages: Vec<Message>,
    flags: &TxFlags,
    json: bool,
) -> Result<ExitCode> {
    match sign_and_submit_all(client, key, messages, flags).await? {
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

/// Signs `message` with the `--from` key and sends it to the node, as [`send`] does.
pub(crate) async fn sign_and_send(
    rpc: Option<&str>,
    message: Message,
    tx: &TxFlags,
    json: bool,
) -> Result<ExitCode> {
    let client = client(rpc, tx.keys.home.as_deref())?;
    let key = signing_key(&tx.from, &tx.keys)?;
    send(&client, &key, message, tx, json).await
}

/// Where a submitted transaction stands when the command returns.
pub(crate) enum Sent {
    /// Submitted with `--no-wait`.
    Pending(Hash),
    /// Included in a block.
    Committed(Receipt),
}

/// Signs a one-message transaction with the sender's next nonce, submits it and (unless
/// `--no-wait`) waits for its receipt.
pub(crate) async fn sign_and_submit(
    client: &RpcClient,
    key: &SecretKey,
    message: Message,
    flags: &TxFlags,
) -> Result<Sent> {
    sign_and_submit_all(client, key, vec![message], flags).await
}

/// [`sign_and_submit`] for a transaction of several messages.
async fn sign_and_submit_all(
    client: &RpcClient,
    key: &SecretKey,
    messages: Vec<Message>,
    flags: &TxFlags,
) -> Result<Sent> {
    let fee = flags.fee.as_deref().map(str::parse).transpose()?;
    Ok(if flags.no_wait {
        Sent::Pending(client.sign_and_submit(key, messages, fee).await?)
    } else {
        Sent::Committed(client.send(key, messages, fee).await?)
    })
}
