//! The Malachite BFT engine behind [`BlockApplication`](crate::BlockApplication).
//!
//! [`run_validator`] starts Malachite's actors (libp2p network, consensus, WAL, value sync)
//! through its channel API with Hibana's [`HibanaContext`] and [`BorshCodec`], then answers the
//! engine from the [`Chain`]: a value to propose (`propose`), received blocks (`validate`), the
//! decided block (`commit`, atomically with its commit certificate), validator sets (from
//! staking), and decided blocks with their certificates for peers that catch up. One validator
//! (the devnet) and many run the same path.

mod budget;
pub(crate) mod codec;
mod context;
mod evidence;
mod host;
mod stream;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use hibana_types::{Equivocation, Message, SecretKey, SubmitEvidence, Transaction};
use malachitebft_app_channel::app::{
    self as mapp,
    config::{
        ConsensusConfig, P2pConfig, PubSubProtocol, TimeoutConfig, ValuePayload, ValueSyncConfig,
    },
    events::{RxEvent, TxEvent},
    node::{EngineHandle, Node, NodeConfig},
    types::{
        Keypair,
        core::{CommitCertificate, Height as _},
    },
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use codec::{BorshCodec, CodecError, MAX_MESSAGE_BYTES};
pub use context::{
    BlockHash, BlockPart, ConsensusProposal, ConsensusSignature, ConsensusValidator,
    ConsensusValidatorSet, ConsensusVote, Ed25519, Ed25519Signer, EmptyValidatorSet, Height,
    HibanaContext, Part, ProposalInit, SignatureLengthError, ValidatorAddress, proposer_of,
    sign_bytes,
};
pub use evidence::EvidenceWatch;

use crate::{Chain, ChainError};

/// Networking and timing of a validator (the `[p2p]` section of a node's config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BftSettings {
    /// libp2p listen address, e.g. `/ip4/127.0.0.1/tcp/26656` (port 0 picks a free port).
    pub listen_addr: String,
    /// Peers to stay connected to (libp2p multiaddrs).
    pub persistent_peers: Vec<String>,
    /// How long to wait for a proposal before prevoting nil (ms).
    pub timeout_propose_ms: u64,
    /// How long to wait for more votes after seeing 2/3 of any (ms).
    pub timeout_vote_ms: u64,
    /// How often peers exchange their height for sync (ms).
    pub sync_status_interval_ms: u64,
    /// Size in bytes of the transaction chunks a proposed block is streamed in.
    pub proposal_part_bytes: usize,
    /// Key file of the node's libp2p identity, relative to the home folder; by default the
    /// identity is the validator key.
    pub node_key_file: Option<String>,
}

impl Default for BftSettings {
    fn default() -> Self {
        BftSettings {
            listen_addr: "/ip4/127.0.0.1/tcp/0".into(),
            persistent_peers: Vec::new(),
            timeout_propose_ms: 2000,
            timeout_vote_ms: 500,
            sync_status_interval_ms: 1000,
            proposal_part_bytes: 256 * 1024,
            node_key_file: None,
        }
    }
}

/// Puts proposal streams together from `(peer, message)` pairs as a validator does with what
/// its peers send (same per-peer and total caps; the proposer-signature check on inits, which
/// needs the chain, is left out), and returns the blocks completed. For fuzz targets.
#[doc(hidden)]
pub fn reassemble_proposal_streams(
    max_block_txs: usize,
    messages: impl IntoIterator<
        Item = (
            u8,
            malachitebft_app_channel::app::streaming::StreamMessage<Part>,
        ),
    >,
) -> Vec<BlockPart> {
    let mut streams = stream::Streams::new(max_block_txs);
    messages
        .into_iter()
        .filter_map(|(peer, msg)| streams.insert(peer, msg).ok().flatten())
        .collect()
}

/// Why the validator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum BftError {
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A configured address is not a valid multiaddr.
    #[error("invalid p2p address {address:?}: {reason}")]
    Address {
        /// The address.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// The chain has no validator.
    #[error(transparent)]
    EmptyValidatorSet(#[from] EmptyValidatorSet),
    /// The engine failed.
    #[error("consensus engine: {0}")]
    Engine(String),
}

/// The engine's view of our node: its key, home folder and configuration.
#[derive(Clone)]
struct EngineNode {
    home: PathBuf,
    key: SecretKey,
    /// The libp2p identity, if not the validator key.
    identity: Option<SecretKey>,
    chain_id: String,
    config: EngineConfig,
    watch: Arc<EvidenceWatch>,
}

/// The engine's configuration, built from [`BftSettings`].
#[derive(Clone, Debug, Serialize, Deserialize)]
struct EngineConfig {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }

    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }

    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
}

/// A handle the engine's `Node` trait asks for; Hibana drives the engine from
/// [`run_validator`] instead.
struct EngineNodeHandle {
    events: TxEvent<HibanaContext>,
}

#[async_trait]
impl mapp::node::NodeHandle<HibanaContext> for EngineNodeHandle {
    fn subscribe(&self) -> RxEvent<HibanaContext> {
        self.events.subscribe()
    }

    async fn kill(&self, _reason: Option<String>) -> eyre::Result<()> {
        Ok(())
    }
}

#[async_trait]
impl Node for EngineNode {
    type Context = HibanaContext;
    type Config = EngineConfig;
    type Genesis = ();
    type PrivateKeyFile = [u8; 32];
    type SigningProvider = Ed25519Signer;
    type NodeHandle = EngineNodeHandle;

    async fn start(&self) -> eyre::Result<EngineNodeHandle> {
        Err(eyre::eyre!(
            "Hibana starts the engine with hibana_consensus::run_validator"
        ))
    }

    async fn run(self) -> eyre::Result<()> {
        Err(eyre::eyre!(
            "Hibana starts the engine with hibana_consensus::run_validator"
        ))
    }

    fn get_home_dir(&self) -> PathBuf {
        self.home.clone()
    }

    fn load_config(&self) -> eyre::Result<EngineConfig> {
        Ok(self.config.clone())
    }

    fn get_address(&self, pk: &hibana_types::PublicKey) -> ValidatorAddress {
        ValidatorAddress(pk.address())
    }

    fn get_public_key(&self, pk: &SecretKey) -> hibana_types::PublicKey {
        pk.public_key()
    }

    fn get_keypair(&self, pk: SecretKey) -> Keypair {
        // By default the libp2p identity is the validator's own ed25519 key, so peer ids map
        // 1:1 to validators. 32 bytes are always a valid ed25519 secret.
        let identity = self.identity.as_ref().unwrap_or(&pk);
        match Keypair::ed25519_from_bytes(identity.to_bytes()) {
            Ok(keypair) => keypair,
            Err(e) => {
                tracing::error!(error = %e, "cannot derive the libp2p identity; using a random one");
                Keypair::generate_ed25519()
            }
        }
    }

    fn load_private_key(&self, file: [u8; 32]) -> SecretKey {
        SecretKey::from_bytes(file)
    }

    fn load_private_key_file(&self) -> eyre::Result<[u8; 32]> {
        Ok(self.key.to_bytes())
    }

    fn load_genesis(&self) -> eyre::Result<()> {
        Ok(())
    }

    fn get_signing_provider(&self, private_key: SecretKey) -> Ed25519Signer {
        Ed25519Signer::new(private_key, &self.chain_id).watching(self.watch.clone())
    }
}

fn multiaddr(text: &str) -> Result<multiaddr::Multiaddr, BftError> {
    text.parse()
        .map_err(|e: multiaddr::Error| BftError::Address {
            address: text.to_string(),
            reason: e.to_string(),
        })
}

fn engine_config(settings: &BftSettings, moniker: &str) -> Result<EngineConfig, BftError> {
    let propose = Duration::from_millis(settings.timeout_propose_ms.max(50));
    let vote = Duration::from_millis(settings.timeout_vote_ms.max(20));
    let mut p2p = P2pConfig {
        listen_addr: multiaddr(&settings.listen_addr)?,
        persistent_peers: settings
            .persistent_peers
            .iter()
            .map(|p| multiaddr(p))
            .collect::<Result<_, _>>()?,
        // Validators connect directly to each other: every message goes to every peer.
        protocol: PubSubProtocol::Broadcast,
        ..P2pConfig::default()
    };
    p2p.discovery.enabled = false;
    let consensus = ConsensusConfig {
        // The signed proposal carries the block hash and the block travels as a proposal
        // part: the engine checks the proposer's signature, we check the block.
        value_payload: ValuePayload::ProposalAndParts,
        timeouts: TimeoutConfig {
            timeout_propose: propose,
            timeout_propose_delta: propose / 4,
            timeout_prevote: vote,
            timeout_prevote_delta: vote / 2,
            timeout_precommit: vote,
            timeout_precommit_delta: vote / 2,
            timeout_rebroadcast: propose + vote + vote,
        },
        p2p,
        ..ConsensusConfig::default()
    };
    let value_sync = ValueSyncConfig {
        enabled: true,
        status_update_interval: Duration::from_millis(settings.sync_status_interval_ms.max(100)),
        request_timeout: Duration::from_secs(5),
        ..ValueSyncConfig::default()
    };
    Ok(EngineConfig {
        moniker: moniker.to_string(),
        consensus,
        value_sync,
    })
}

/// The validator set for the next height, from the committed staking state.
pub fn next_validator_set(chain: &Chain) -> Result<ConsensusValidatorSet, BftError> {
    let snapshot = chain.store().snapshot().map_err(ChainError::from)?;
    let set =
        hibana_runtime::staking::deciding_validator_set(&snapshot).map_err(ChainError::from)?;
    Ok(ConsensusValidatorSet::from_staking(&set)?)
}

/// The validator set that decides `height`: staking's set after the block before it. Heights
/// beyond the next one are not known yet and get the latest set.
pub fn validator_set_at(chain: &Chain, height: Height) -> Result<ConsensusValidatorSet, BftError> {
    let committed = chain.height()?;
    let version = height.0.saturating_sub(1);
    if version >= committed {
        return next_validator_set(chain);
    }
    let view = chain.store().state_at(version);
    let set = hibana_runtime::staking::deciding_validator_set(&view).map_err(ChainError::from)?;
    Ok(ConsensusValidatorSet::from_staking(&set)?)
}

/// The network messages (proposal-parts channel) that gossip `txs` as the `number`-th batch
/// of `sender`, encoded as a node publishes them.
pub fn encode_gossip(
    sender: &hibana_types::Address,
    number: u64,
    txs: Vec<hibana_types::SignedTransaction>,
) -> Result<Vec<bytes::Bytes>, CodecError> {
    use malachitebft_app_channel::app::types::codec::Codec;
    host::gossip_stream(sender, number, txs)
        .iter()
        .map(|m| BorshCodec.encode(m))
        .collect()
}

/// The network messages (proposal-parts channel) that stream the proposal `part`, signed by
/// `signer`, in parts of about `part_bytes`, encoded as a proposer publishes them.
pub fn encode_proposal(
    part: BlockPart,
    part_bytes: usize,
    signer: &Ed25519Signer,
) -> Result<Vec<bytes::Bytes>, CodecError> {
    use malachitebft_app_channel::app::types::codec::Codec;
    host::proposal_stream(part, part_bytes, signer)
        .iter()
        .map(|m| BorshCodec.encode(m))
        .collect()
}

/// The commit that decided the block at `height`, read from its stored certificate, in the
/// engine-neutral form light clients check; `None` if no certificate is stored.
pub fn commit_at(
    chain: &Chain,
    height: u64,
) -> Result<Option<hibana_types::light::Commit>, ChainError> {
    let Some(bytes) = chain.store().certificate(height)? else {
        return Ok(None);
    };
    let corrupt = |reason: String| ChainError::InvalidBlock { height, reason };
    let certificate = borsh::from_slice::<CommitCertificate<HibanaContext>>(&bytes)
        .map_err(|e| corrupt(format!("stored certificate: {e}")))?;
    let round = u32::try_from(certificate.round.as_i64())
        .map_err(|_| corrupt("stored certificate has no round".into()))?;
    Ok(Some(hibana_types::light::Commit {
        height: certificate.height.0,
        round,
        block_hash: certificate.value_id.0,
        signatures: certificate
            .commit_signatures
            .iter()
            .map(|s| hibana_types::light::CommitSignature {
                validator: s.address.0,
                signature: hibana_types::Signature(s.signature.0),
            })
            .collect(),
    }))
}

/// Runs this node as a validator (or a follower, if its key is not in the set) until
/// `shutdown` turns true: starts the engine with its WAL under `wal_home`, and answers it from
/// `chain`. `block_time` is the least time between two blocks. `identity` is the libp2p key if
/// not `key`. Equivocations among the votes it receives are saved under `wal_home/evidence`
/// and submitted to the chain, signed by `key`.
pub async fn run_validator(
    chain: Arc<Chain>,
    key: SecretKey,
    identity: Option<SecretKey>,
    settings: BftSettings,
    wal_home: PathBuf,
    block_time: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), BftError> {
    let address = key.public_key().address();
    let config = engine_config(&settings, &address.to_string())?;
    let start_height = Height(chain.height()?.saturating_add(1));
    let validator_set = next_validator_set(&chain)?;
    // Read before the engine starts: a validator that cannot read them must not vote.
    let kept = host::kept_proposals(&chain)?;
    let watch = Arc::new(EvidenceWatch::new());
    let evidence_dir = wal_home.join("evidence");
    let node = EngineNode {
        home: wal_home,
        key: key.clone(),
        identity,
        chain_id: chain.chain_id().to_string(),
        config: config.clone(),
        watch: watch.clone(),
    };
    let (mut channels, engine) = malachitebft_app_channel::start_engine(
        HibanaContext,
        node,
        config,
        BorshCodec,
        BorshCodec,
        Some(start_height),
        validator_set,
    )
    .await
    .map_err(|e| BftError::Engine(format!("{e:#}")))?;
    tracing::info!(height = start_height.as_u64(), %address, "consensus engine started");
    let signer = Ed25519Signer::new(key.clone(), chain.chain_id());
    let mut host = host::Host::new(
        chain,
        signer,
        ValidatorAddress(address),
        block_time,
        channels.network.clone(),
        settings.proposal_part_bytes.clamp(1024, 2 << 20),
        kept,
    );
    let gossip = host.chain().clone();
    let outcome = loop {
        tokio::select! {
            // Transactions this node's clients sent go to every other mempool.
            () = gossip.gossip_ready() => host.gossip_txs().await,
            () = watch.ready() => report_evidence(&gossip, &key, &evidence_dir, watch.take()),
            msg = channels.consensus.recv() => match msg {
                Some(msg) => {
                    if let Err(e) = host.handle(msg).await {
                        break Err(e);
                    }
                }
                None => break Err(BftError::Engine("the consensus engine stopped".into())),
            },
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break Ok(());
                }
            }
        }
    };
    stop_engine(engine).await;
    outcome
}

/// Saves each equivocation as a file that `hibana tx evidence --file` accepts, and submits it
/// to the chain in a transaction signed by this node's key. The mempool's dry run refuses it if
/// the validator was already punished or has left the set. A node does not report its own key:
/// when two nodes run one validator key, each sees the other's votes as an equivocation, and
/// the evidence is for the other validators to submit.
fn report_evidence(chain: &Chain, key: &SecretKey, dir: &Path, found: Vec<Equivocation>) {
    let reporter = key.public_key().address();
    for equivocation in found {
        chain.metrics().equivocations.inc();
        let vote = &equivocation.first.vote;
        if vote.validator == reporter {
            tracing::error!(
                height = vote.height,
                "equivocation by this node's own validator key: another node signs with it"
            );
            continue;
        }
        let step = match vote.kind {
            hibana_types::VoteKind::Prevote => "prevote",
            hibana_types::VoteKind::Precommit => "precommit",
        };
        let round = match vote.round {
            hibana_types::VoteRound::Nil => "nil".to_string(),
            hibana_types::VoteRound::Some(r) => r.to_string(),
        };
        let file = dir.join(format!(
            "{}-{}-{round}-{step}.json",
            vote.validator, vote.height
        ));
        let saved = std::fs::create_dir_all(dir)
            .and_then(|()| serde_json::to_vec_pretty(&equivocation).map_err(std::io::Error::other))
            .and_then(|json| std::fs::write(&file, json));
        if let Err(e) = &saved {
            tracing::warn!(error = %e, file = %file.display(), "cannot save equivocation evidence");
        }
        let tx = Transaction {
            chain_id: chain.chain_id().to_string(),
            signer: key.public_key(),
            nonce: chain.next_nonce(&reporter),
            fee: chain.params().min_fee,
            messages: vec![Message::SubmitEvidence(SubmitEvidence {
                equivocation: equivocation.clone(),
            })],
        }
        .sign(key);
        match chain.submit(tx) {
            Ok(hash) => {
                chain.metrics().evidence_submitted.inc();
                tracing::warn!(
                    validator = %vote.validator,
                    height = vote.height,
                    tx = %hash,
                    file = %file.display(),
                    "equivocation: evidence submitted"
                );
            }
            Err(e) => tracing::warn!(
                validator = %vote.validator,
                height = vote.height,
                error = %e,
                file = %file.display(),
                "equivocation: evidence not submitted (submit the file with `hibana tx evidence --file` from a funded account)"
            ),
        }
    }
}

async fn stop_engine(engine: EngineHandle) {
    if let Err(e) = engine
        .actor
        .stop_and_wait(None, Some(Duration::from_secs(5)))
        .await
    {
        tracing::debug!(error = %e, "consensus engine did not stop in time");
    }
    engine.handle.abort();
}

#[cfg(test)]
mod tests;
