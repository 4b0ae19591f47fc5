//! A node's home folder: config, genesis, validator key, data, the RPC URL a running node saved;
//! and where homes go by default.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, anyhow, bail};
use hibana_consensus::BftSettings;
use hibana_runtime::{Genesis, GenesisAccount, GenesisValidator, Params};
use hibana_types::{Amount, SecretKey};
use serde::{Deserialize, Serialize};

use crate::keys::{self, DevKey};

/// HIB each validator of `hibana init --validators N` holds, unbonded, for fees.
const VALIDATOR_FEE_FUNDS_HIB: u128 = 1_000;

/// The node's settings (`config.toml`); flags and `HIBANA_*` variables override them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NodeConfig {
    /// Address the JSON-RPC server binds.
    pub(crate) rpc_addr: SocketAddr,
    /// Milliseconds between blocks.
    pub(crate) block_time_ms: u64,
    /// Largest mempool.
    pub(crate) mempool_max_txs: usize,
    /// Consensus networking: listen address, peers, timeouts.
    pub(crate) p2p: BftSettings,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], 26657)),
            block_time_ms: 1000,
            mempool_max_txs: 50_000,
            p2p: BftSettings::default(),
        }
    }
}

/// Paths inside a home folder.
#[derive(Clone, Debug)]
pub(crate) struct Home {
    pub(crate) dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct ValidatorKeyFile {
    warning: String,
    address: hibana_types::Address,
    public_key: hibana_types::PublicKey,
    secret_key: String,
}

impl Home {
    pub(crate) fn new(dir: PathBuf) -> Home {
        Home { dir }
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    pub(crate) fn genesis_path(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }

    pub(crate) fn validator_key_path(&self) -> PathBuf {
        self.dir.join("validator_key.json")
    }

    pub(crate) fn db_path(&self) -> PathBuf {
        self.dir.join("data").join("chain.redb")
    }

    pub(crate) fn rpc_url_path(&self) -> PathBuf {
        self.dir.join("rpc.url")
    }

    /// True if the folder holds an initialised home.
    pub(crate) fn is_initialised(&self) -> bool {
        self.genesis_path().exists()
    }

    pub(crate) fn load_config(&self) -> Result<NodeConfig> {
        let path = self.config_path();
        match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!(
                    "config file {} is invalid; fix it or delete it to use defaults",
                    path.display()
                )
            }),
            Err(_) => Ok(NodeConfig::default()),
        }
    }

    pub(crate) fn load_genesis(&self) -> Result<Genesis> {
        let path = self.genesis_path();
        let text = fs::read_to_string(&path).map_err(|_| {
            anyhow!("{} has no genesis.json: is this a Hibana home? Create one with `hibana init --home {}`", self.dir.display(), self.dir.display())
        })?;
        Genesis::from_json(&text)
            .with_context(|| format!("genesis file {} is corrupt", path.display()))
    }

    pub(crate) fn load_validator_key(&self) -> Result<SecretKey> {
        load_key_file(&self.validator_key_path())
    }

    /// The libp2p identity named by `[p2p] node_key_file`, if any.
    pub(crate) fn load_node_key(&self, config: &NodeConfig) -> Result<Option<SecretKey>> {
        config
            .p2p
            .node_key_file
            .as_ref()
            .map(|file| load_key_file(&self.dir.join(file)))
            .transpose()
    }

    fn write_validator_key(&self, key: &SecretKey) -> Result<()> {
        let file = ValidatorKeyFile {
            warning: "validator signing key: keep this file private".into(),
            address: key.public_key().address(),
            public_key: key.public_key(),
            secret_key: hex::encode(key.to_bytes()),
        };
        keys::write_private(
            &self.validator_key_path(),
            &serde_json::to_vec_pretty(&file)?,
        )
    }

    /// Creates a home with a fresh validator key, the given accounts and a config.
    pub(crate) fn create(
        &self,
        chain_id: &str,
        accounts: Vec<GenesisAccount>,
        config: &NodeConfig,
        params: Params,
        market: hibana_types::records::market::MarketParams,
    ) -> Result<Genesis> {
        if self.is_initialised() {
            bail!(
                "{} is already initialised; use another --home or remove it",
                self.dir.display()
            );
        }
        fs::create_dir_all(self.dir.join("data"))
            .with_context(|| format!("cannot create home {}", self.dir.display()))?;
        let validator = SecretKey::generate();
        self.write_validator_key(&validator)?;
        let genesis = Genesis {
            market,
            chain_id: chain_id.to_string(),
            genesis_time_ms: hibana_consensus::now_ms(),
            params,
            accounts,
            validators: vec![GenesisValidator {
                public_key: validator.public_key(),
                stake: Amount::from_hib(1_000_000).unwrap_or_default(),
            }],
        };
        genesis.validate()?;
        fs::write(self.config_path(), toml::to_string_pretty(config)?)?;
        fs::write(self.genesis_path(), serde_json::to_string_pretty(&genesis)?)?;
        Ok(genesis)
    }

    /// Creates a devnet home: a validator and the funded demo accounts alice, bob and carol in
    /// a plaintext development keyring.
    pub(crate) fn create_devnet(
        &self,
        config: &NodeConfig,
        market: hibana_types::records::market::MarketParams,
    ) -> Result<Genesis> {
        let mut accounts = Vec::new();
        let mut dev_keys = Vec::new();
        for name in ["alice", "bob", "carol"] {
            let (dev, _) = DevKey::new(name)?;
            accounts.push(GenesisAccount {
                address: dev.address,
                balance: Amount::from_hib(1_000_000).unwrap_or_default(),
            });
            dev_keys.push(dev);
        }
        let genesis = self.create("hibana-devnet", accounts, config, Params::default(), market)?;
        for dev in &dev_keys {
            keys::write_dev_key(&self.dir, dev)?;
        }
        Ok(genesis)
    }
}

impl Home {
    /// Creates a home that joins an existing network: a fresh validator key (a follower until
    /// it bonds stake to itself), a copy of the network's genesis, and a config that listens on
    /// a free loopback port and dials `peers`.
    pub(crate) fn join(
        &self,
        genesis_file: &Path,
        peers: &[String],
    ) -> Result<(Genesis, NetworkNode)> {
        if self.is_initialised() {
            bail!(
                "{} is already initialised; use another --home or remove it",
                self.dir.display()
            );
        }
        if peers.is_empty() {
            bail!("--genesis needs at least one --peer: the network's nodes to dial");
        }
        let text = fs::read_to_string(genesis_file)
            .with_context(|| format!("cannot read {}", genesis_file.display()))?;
        let genesis: Genesis = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a genesis file", genesis_file.display()))?;
        genesis.validate()?;
        fs::create_dir_all(self.dir.join("data"))
            .with_context(|| format!("cannot create home {}", self.dir.display()))?;
        let key = SecretKey::generate();
        self.write_validator_key(&key)?;
        let node = NetworkNode {
            home: self.dir.clone(),
            validator: key.public_key().address(),
            p2p: format!("/ip4/127.0.0.1/tcp/{}", free_port()?),
            rpc: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
        };
        let config = NodeConfig {
            rpc_addr: node.rpc,
            p2p: BftSettings {
                listen_addr: node.p2p.clone(),
                persistent_peers: peers.to_vec(),
                ..BftSettings::default()
            },
            ..NodeConfig::default()
        };
        fs::write(self.config_path(), toml::to_string_pretty(&config)?)?;
        fs::write(self.genesis_path(), serde_json::to_string_pretty(&genesis)?)?;
        Ok((genesis, node))
    }
}

/// A free TCP port on the loopback interface for a node to bind later, below the OS's range
/// of ephemeral ports: a port the OS picked there could become the source port of another
/// process's outgoing connection before the node binds it, leaving that node unreachable.
/// Never the same port twice in one process; the OS's own choice if none is free below.
fn free_port() -> Result<u16> {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (low, _) = ephemeral_ports().unwrap_or((32768, 60999));
    const FLOOR: u16 = 10_000;
    if low > FLOOR + 1_000 {
        let span = u32::from(low - FLOOR);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            ^ std::process::id().wrapping_mul(2_654_435_761);
        for k in 0..256u32 {
            let offset = seed.wrapping_add(k.wrapping_mul(7_919)) % span;
            let port = FLOOR + u16::try_from(offset).unwrap_or(0);
            if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.insert(port);
                return Ok(port);
            }
        }
    }
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .context("cannot find a free port on 127.0.0.1")?;
    let port = listener.local_addr()?.port();
    given.insert(port);
    Ok(port)
}

/// The OS's range of ephemeral ports (Linux: `/proc/sys/net/ipv4/ip_local_port_range`).
fn ephemeral_ports() -> Option<(u16, u16)> {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    Some((numbers.next()??, numbers.next()??))
}

/// One node of a network written by [`create_network`].
#[derive(Debug, Serialize)]
pub(crate) struct NetworkNode {
    pub(crate) home: PathBuf,
    pub(crate) validator: hibana_types::Address,
    pub(crate) p2p: String,
    pub(crate) rpc: SocketAddr,
}

/// Writes the homes `out/node0` … `out/node{n-1}` of an `n`-validator network on loopback: a
/// key per validator, one genesis with all of them (equal stake), and configs whose p2p and RPC
/// addresses are free ports and whose peers are all the other nodes. With `dev_accounts`, the
/// demo accounts alice, bob and carol are funded and their plaintext keys copied into every home.
pub(crate) fn create_network(
    out: &Path,
    n: usize,
    chain_id: &str,
    mut accounts: Vec<GenesisAccount>,
    dev_accounts: bool,
) -> Result<(Genesis, Vec<NetworkNode>)> {
    if n == 0 {
        bail!("--validators must be at least 1");
    }
    let homes: Vec<Home> = (0..n)
        .map(|k| Home::new(out.join(format!("node{k}"))))
        .collect();
    if let Some(home) = homes.iter().find(|h| h.is_initialised()) {
        bail!(
            "{} is already initialised; choose another --out or remove it",
            home.dir.display()
        );
    }
    let mut dev_keys = Vec::new();
    if dev_accounts {
        for name in ["alice", "bob", "carol"] {
            let (dev, _) = DevKey::new(name)?;
            accounts.push(GenesisAccount {
                address: dev.address,
                balance: Amount::from_hib(1_000_000).unwrap_or_default(),
            });
            dev_keys.push(dev);
        }
    }
    let keys: Vec<SecretKey> = (0..n).map(|_| SecretKey::generate()).collect();
    // Each validator's own account holds enough for fees, such as those of the equivocation
    // evidence its node submits.
    for key in &keys {
        accounts.push(GenesisAccount {
            address: key.public_key().address(),
            balance: Amount::from_hib(VALIDATOR_FEE_FUNDS_HIB).unwrap_or_default(),
        });
    }
    let genesis = Genesis {
        market: Default::default(),
        chain_id: chain_id.to_string(),
        genesis_time_ms: hibana_consensus::now_ms(),
        params: Params::default(),
        accounts,
        validators: keys
            .iter()
            .map(|k| GenesisValidator {
                public_key: k.public_key(),
                stake: Amount::from_hib(1_000_000).unwrap_or_default(),
            })
            .collect(),
    };
    genesis.validate()?;
    let mut nodes = Vec::new();
    for (home, key) in homes.iter().zip(&keys) {
        nodes.push(NetworkNode {
            home: home.dir.clone(),
            validator: key.public_key().address(),
            p2p: format!("/ip4/127.0.0.1/tcp/{}", free_port()?),
            rpc: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
        });
    }
    for (k, (home, key)) in homes.iter().zip(&keys).enumerate() {
        fs::create_dir_all(home.dir.join("data"))
            .with_context(|| format!("cannot create home {}", home.dir.display()))?;
        home.write_validator_key(key)?;
        let config = NodeConfig {
            rpc_addr: nodes[k].rpc,
            p2p: BftSettings {
                listen_addr: nodes[k].p2p.clone(),
                persistent_peers: nodes
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .map(|(_, node)| node.p2p.clone())
                    .collect(),
                ..BftSettings::default()
            },
            ..NodeConfig::default()
        };
        fs::write(home.config_path(), toml::to_string_pretty(&config)?)?;
        fs::write(home.genesis_path(), serde_json::to_string_pretty(&genesis)?)?;
        for dev in &dev_keys {
            keys::write_dev_key(&home.dir, dev)?;
        }
    }
    Ok((genesis, nodes))
}

/// Reads a key file in `validator_key.json`'s format.
fn load_key_file(path: &Path) -> Result<SecretKey> {
    let bytes =
        fs::read(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    let file: ValidatorKeyFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("key file {} is corrupt", path.display()))?;
    let secret: [u8; 32] = hex::decode(&file.secret_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("key file {} is corrupt", path.display()))?;
    let key = SecretKey::from_bytes(secret);
    if key.public_key() != file.public_key {
        bail!("key file {} is inconsistent", path.display());
    }
    Ok(key)
}

/// Where the CLI finds a node's RPC: an explicit URL, else the URL a running node of `--home`
/// wrote, else the default local port.
pub(crate) fn resolve_rpc(explicit: Option<&str>, home: Option<&Path>) -> String {
    if let Some(url) = explicit {
        return url.to_string();
    }
    if let Some(home) = home
        && let Ok(url) = fs::read_to_string(Home::new(home.to_path_buf()).rpc_url_path())
    {
        return url.trim().to_string();
    }
    "http://127.0.0.1:26657".to_string()
}

/// The folder Hibana keeps its default homes in (`~/.local/share/hibana` on Linux).
pub(crate) fn data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("hibana")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let low = ephemeral_ports().map_or(32768, |(low, _)| low);
        let ports: Vec<u16> = (0..20).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        for port in ports {
            assert!(port < low, "{port} is in the ephemeral range");
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }
}
