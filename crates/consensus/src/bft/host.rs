//! The application side of the engine: answers each request of Malachite from the chain.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use hibana_types::{Block, Hash};
use malachitebft_app_channel::{
    AppMsg, NetworkMsg,
    app::{
        engine::host::Next,
        streaming::{StreamContent, StreamId, StreamMessage},
        types::PeerId,
        types::{
            LocallyProposedValue, ProposedValue,
            core::{CommitCertificate, Round, Validity},
            sync::RawDecidedValue,
        },
    },
};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::{
    BftError, BlockHash, BlockPart, ConsensusValidatorSet, Ed25519Signer, Height, HibanaContext,
    Part, ProposalInit, ValidatorAddress,
    budget::{COSTLY_FAILURE_WEIGHT, PeerBudgets, Refusal},
    next_validator_set, proposer_of,
    stream::{self, Streams},
    validator_set_at,
};
use crate::{BlockApplication, Chain, ChainError, MAX_FUTURE_BLOCK_MS, now_ms};

/// How many heights ahead of ours proposals are kept for later.
const MAX_HEIGHTS_AHEAD: u64 = 8;
/// How many proposals per future height are kept.
const MAX_PENDING_PER_HEIGHT: usize = 32;
/// How many received blocks per height and round are kept on disk (an honest proposer sends
/// one; the rest bounds what a peer streaming many valid blocks can make this node write).
const MAX_KEPT_PER_ROUND: usize = 4;
/// Most transactions in one gossip message; a message with more is dropped whole.
const MAX_GOSSIP_TXS: usize = 1024;
/// Encoded bytes after which a gossip message is closed (the network's limit is 4 MiB).
const GOSSIP_MESSAGE_BYTES: usize = 1 << 20;
/// Stream ids of gossip messages start with this; block streams are height and round.
const GOSSIP_STREAM: &[u8] = b"txs/";
/// Most gossip messages waiting to be checked; more are dropped (a flooding peer).
const MAX_GOSSIP_BATCHES: usize = 64;

/// The proposal-part stream of a proposed block: its init signed by `signer`, its transactions
/// in parts of about `part_bytes`, then its end.
pub(super) fn proposal_stream(
    part: BlockPart,
    part_bytes: usize,
    signer: &Ed25519Signer,
) -> Vec<StreamMessage<Part>> {
    let mut id = part.height.0.to_be_bytes().to_vec();
    id.extend_from_slice(&part.round.as_i64().to_be_bytes());
    let parts = stream::split(part, part_bytes, signer);
    stream::messages(StreamId::new(Bytes::from(id)), parts)
}

/// The proposal-part stream that carries one batch of gossiped transactions: the `number`-th
/// batch `sender` gossips, its data then its end.
pub(super) fn gossip_stream(
    sender: &hibana_types::Address,
    number: u64,
    txs: Vec<hibana_types::SignedTransaction>,
) -> Vec<StreamMessage<Part>> {
    let mut id = GOSSIP_STREAM.to_vec();
    id.extend_from_slice(&sender.0);
    id.extend_from_slice(&number.to_be_bytes());
    stream::messages(StreamId::new(Bytes::from(id)), vec![Part::Txs(txs)])
}

/// A warning that peers can trigger at will, logged at most once per [`LogLimit::EVERY`] so
/// that a flooding peer cannot fill the disk with it; the next one logged says how many were
/// held back.
#[derive(Debug, Default)]
struct LogLimit {
    last: Option<Instant>,
    held: u64,
}

impl LogLimit {
    /// Least time between two logged warnings.
    const EVERY: Duration = Duration::from_secs(10);

    /// `Some(held back since the last)` if a warning may be logged `now`.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < Self::EVERY => {
                self.held += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }
}

/// A batch of gossiped transactions and the peer it came from.
type GossipBatch = (PeerId, Vec<hibana_types::SignedTransaction>);

/// Checks gossiped batches one after another, in the order they arrived (so a sender's nonces
/// stay in order), on a blocking thread of their own; each failure is charged to the peer that
/// sent it, and a peer out of budget has the rest of its batch dropped unchecked.
fn gossip_worker(
    chain: Arc<Chain>,
    budgets: Arc<Mutex<PeerBudgets<PeerId>>>,
) -> mpsc::Sender<GossipBatch> {
    let (tx, mut rx) = mpsc::channel::<GossipBatch>(MAX_GOSSIP_BATCHES);
    tokio::task::spawn_blocking(move || {
        while let Some((peer, txs)) = rx.blocking_recv() {
            let height = chain.height().unwrap_or(0);
            let count = txs.len() as u64;
            for (checked, tx) in txs.into_iter().enumerate() {
                if !budgets.lock().allows(&peer, height) {
                    chain
                        .metrics()
                        .gossip_dropped
                        .inc_by(count - checked as u64);
                    chain.metrics().gossip_throttled.inc();
                    break;
                }
                let weight = if hibana_runtime::has_costly_checks(&tx) {
                    COSTLY_FAILURE_WEIGHT
                } else {
                    1
                };
                match chain.submit_gossiped(tx) {
                    Ok(_) => {
                        chain.metrics().gossip_received.inc();
                    }
                    Err(crate::MempoolError::Duplicate(_) | crate::MempoolError::Full(_)) => {}
                    Err(_) => {
                        chain.metrics().gossip_dropped.inc();
                        budgets.lock().charge(&peer, height, weight);
                    }
                }
            }
            budgets.lock().finished(&peer);
        }
    });
    tx
}

/// A proposal received before this node reached its height.
struct Pending {
    value: ProposedValue<HibanaContext>,
    block: Block,
}

/// The state the application keeps between the engine's requests.
pub(super) struct Host {
    chain: Arc<Chain>,
    /// Signs the inits of this node's proposal streams and checks others'.
    signer: Ed25519Signer,
    address: ValidatorAddress,
    block_time: Duration,
    network: mpsc::Sender<NetworkMsg<HibanaContext>>,
    /// Blocks proposed at heights not yet committed, by hash.
    blocks: HashMap<Hash, Block>,
    /// The value this node proposed per (height, round), so a repeated request gets the same.
    own: BTreeMap<(u64, Round), BlockHash>,
    /// Proposals for heights above ours, validated when the height starts.
    pending: BTreeMap<u64, Vec<Pending>>,
    /// Received blocks kept on disk, per height and round (see [`MAX_KEPT_PER_ROUND`]).
    kept_per_round: HashMap<(u64, Round), usize>,
    /// Gossip messages sent, for unique stream ids.
    gossip_sent: u64,
    /// Gossip messages waiting for their transactions to be checked.
    gossip_in: mpsc::Sender<GossipBatch>,
    /// What each peer's gossip may still cost.
    budgets: Arc<Mutex<PeerBudgets<PeerId>>>,
    /// Warnings of dropped proposal streams, which any peer can cause at will.
    dropped_streams: LogLimit,
    /// Proposed blocks being received part by part.
    streams: Streams<PeerId>,
    /// Size of the transaction chunks this node streams its proposals in.
    part_bytes: usize,
}

/// The host's block and own-proposal maps, as [`kept_proposals`] reads them.
pub(super) type Kept = (HashMap<Hash, Block>, BTreeMap<(u64, Round), BlockHash>);

/// The proposals kept on disk for heights not yet committed (see [`Host::keep`]). A validator
/// that cannot read them must not start: it could sign a second vote where it voted before.
pub(super) fn kept_proposals(chain: &Chain) -> Result<Kept, BftError> {
    let kept = chain
        .store()
        .kept_proposals(chain.height()?)
        .map_err(ChainError::from)?;
    if !kept.blocks.is_empty() {
        tracing::info!(
            blocks = kept.blocks.len(),
            own = kept.own.len(),
            "proposals kept from before the restart"
        );
    }
    let blocks = kept.blocks.into_iter().map(|b| (b.hash(), b)).collect();
    let own = kept
        .own
        .into_iter()
        .map(|(h, r, hash)| ((h, Round::new(r)), BlockHash(hash)))
        .collect();
    Ok((blocks, own))
}

fn send<T>(reply: tokio::sync::oneshot::Sender<T>, value: T, what: &str) {
    if reply.send(value).is_err() {
        tracing::debug!(what, "the engine dropped its request");
    }
}

impl Host {
    pub(super) fn new(
        chain: Arc<Chain>,
        signer: Ed25519Signer,
        address: ValidatorAddress,
        block_time: Duration,
        network: mpsc::Sender<NetworkMsg<HibanaContext>>,
        part_bytes: usize,
        (blocks, own): Kept,
    ) -> Host {
        let budgets = Arc::new(Mutex::new(PeerBudgets::default()));
        let gossip_in = gossip_worker(chain.clone(), budgets.clone());
        let streams = Streams::new(chain.params().max_block_txs as usize);
        Host {
            chain,
            signer,
            address,
            block_time,
            network,
            blocks,
            own,
            pending: BTreeMap::new(),
            kept_per_round: HashMap::new(),
            gossip_sent: 0,
            gossip_in,
            budgets,
            dropped_streams: LogLimit::default(),
            streams,
            part_bytes,
        }
    }

    /// The chain this host answers from.
    pub(super) fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// Publishes the transactions this node's clients sent since the last call.
    pub(super) async fn gossip_txs(&mut self) {
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        let txs = self.chain.take_gossip();
        let last = txs.len();
        for (k, tx) in txs.into_iter().enumerate() {
            bytes = bytes.saturating_add(stream::tx_bytes(&tx));
            batch.push(tx);
            if batch.len() == MAX_GOSSIP_TXS || bytes >= GOSSIP_MESSAGE_BYTES || k + 1 == last {
                self.gossip_sent += 1;
                let txs = std::mem::take(&mut batch);
                self.send(gossip_stream(&self.address.0, self.gossip_sent, txs))
                    .await;
                bytes = 0;
            }
        }
    }

    /// Adds gossiped transactions to the mempool in the background (signature checks must not
    /// hold up the engine); ones already known or invalid here are dropped and counted, and so
    /// are whole batches beyond [`MAX_GOSSIP_BATCHES`] being checked at once, or from a peer
    /// over its budget (see [`PeerBudgets`]).
    fn received_txs(&self, from: PeerId, txs: Vec<hibana_types::SignedTransaction>) {
        let count = txs.len() as u64;
        let height = self.chain.height().unwrap_or(0);
        let refused = if txs.len() > MAX_GOSSIP_TXS {
            Some("oversized")
        } else if let Err(why) = self.budgets.lock().admit(&from, height) {
            self.chain.metrics().gossip_throttled.inc();
            Some(match why {
                Refusal::Queue => "the peer has too many batches waiting",
                Refusal::Failures => "the peer's gossip failed too often lately",
            })
        } else if self.gossip_in.try_send((from, txs)).is_err() {
            self.budgets.lock().finished(&from);
            Some("too many batches waiting")
        } else {
            None
        };
        if let Some(reason) = refused {
            tracing::debug!(%from, count, reason, "transaction gossip dropped");
            self.chain.metrics().gossip_dropped.inc_by(count);
        }
    }

    /// The height this node is deciding (the last committed + 1).
    fn current_height(&self) -> Result<u64, BftError> {
        Ok(self.chain.height()?.saturating_add(1))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Chain) -> Result<T, ChainError> + Send + 'static,
    ) -> Result<T, BftError> {
        let chain = self.chain.clone();
        tokio::task::spawn_blocking(move || f(&chain))
            .await
            .map_err(|e| BftError::Engine(format!("chain task failed: {e}")))?
            .map_err(BftError::from)
    }

    /// Keeps a valid proposal on disk before the engine can vote for it, so that this node
    /// still has the block if it is decided while the node restarts.
    async fn keep(&self, block: &Block, validity: Validity) -> Result<(), BftError> {
        if validity != Validity::Valid {
            return Ok(());
        }
        let block = block.clone();
        self.blocking(move |chain| Ok(chain.store().keep_proposal(&block, None)?))
            .await
    }

    /// Keeps a valid block received from a peer, when its stream is the round's proposer's (the
    /// engine only votes for the block of that proposer's signed proposal), a few per round at
    /// most.
    async fn keep_received(
        &mut self,
        value: &ProposedValue<HibanaContext>,
        block: &Block,
        set: &ConsensusValidatorSet,
    ) -> Result<(), BftError> {
        let key = (value.height.0, value.round);
        let kept = self.kept_per_round.get(&key).copied().unwrap_or(0);
        if proposer_of(set, value.height, value.round).address == value.proposer
            && kept < MAX_KEPT_PER_ROUND
        {
            self.keep(block, value.validity).await?;
            self.kept_per_round.insert(key, kept + 1);
        }
        Ok(())
    }

    /// Whether a stream's init names the proposer of its height and round (in the validator
    /// set of the next height) and carries that proposer's signature.
    fn authentic(&self, init: &ProposalInit) -> Result<bool, BftError> {
        let set = next_validator_set(&self.chain)?;
        let expected = proposer_of(&set, init.height, init.round);
        Ok(
            expected.address == init.proposer
                && self.signer.verify_init(init, &expected.public_key),
        )
    }

    /// Checks a block at our current height; an invalid block is an answer, not a failure.
    async fn validity(&self, block: &Block) -> Result<Validity, BftError> {
        let block = block.clone();
        let result = tokio::task::spawn_blocking({
            let chain = self.chain.clone();
            move || {
                chain
                    .check_timely(&block.header, now_ms())
                    .and_then(|()| chain.validate(&block))
            }
        })
        .await
        .map_err(|e| BftError::Engine(format!("validation task failed: {e}")))?;
        match result {
            Ok(()) => Ok(Validity::Valid),
            Err(ChainError::InvalidBlock { height, reason }) => {
                tracing::warn!(height, %reason, "rejecting proposed block");
                Ok(Validity::Invalid)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Streams a proposed block to the other validators, in parts.
    async fn publish(&self, part: BlockPart) {
        self.send(proposal_stream(part, self.part_bytes, &self.signer))
            .await;
    }

    /// Publishes a stream's messages.
    async fn send(&self, messages: Vec<StreamMessage<Part>>) {
        for message in messages {
            if self
                .network
                .send(NetworkMsg::PublishProposalPart(message))
                .await
                .is_err()
            {
                tracing::warn!("the network actor is gone; proposal not published");
            }
        }
    }

    /// Handles one request of the engine.
    pub(super) async fn handle(&mut self, msg: AppMsg<HibanaContext>) -> Result<(), BftError> {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let height = Height(self.current_height()?);
                tracing::info!(height = height.0, "consensus ready");
                send(reply, (height, next_validator_set(&self.chain)?), "ready");
            }
            AppMsg::StartedRound {
                height,
                round,
                proposer,
                role,
                reply_value,
            } => {
                tracing::debug!(height = height.0, %round, %proposer, ?role, "started round");
                self.chain.metrics().round.set(round.as_i64());
                let mut values = Vec::new();
                let set = next_validator_set(&self.chain)?;
                for pending in self.pending.remove(&height.0).unwrap_or_default() {
                    let mut value = pending.value;
                    value.validity = self.validity(&pending.block).await?;
                    self.keep_received(&value, &pending.block, &set).await?;
                    self.blocks.insert(pending.block.hash(), pending.block);
                    values.push(value);
                }
                send(reply_value, values, "started round");
            }
            AppMsg::GetValue {
                height,
                round,
                timeout: _,
                reply,
            } => {
                let value = match self.own.get(&(height.0, round)) {
                    Some(value) => *value,
                    None => {
                        let proposer = self.address.0;
                        // Kept on disk before the engine signs it: after a crash this node
                        // proposes the same block again in this round, and can commit it if
                        // it was decided (a new block would be a second, conflicting vote).
                        let block = self
                            .blocking(move |chain| {
                                let block = chain.propose(height.0, now_ms(), proposer)?;
                                chain.store().keep_proposal(&block, round.as_u32())?;
                                Ok(block)
                            })
                            .await?;
                        let value = BlockHash(block.hash());
                        self.own.insert((height.0, round), value);
                        self.blocks.insert(value.0, block);
                        value
                    }
                };
                send(
                    reply,
                    LocallyProposedValue::new(height, round, value),
                    "value",
                );
                if let Some(block) = self.blocks.get(&value.0).cloned() {
                    self.publish(BlockPart {
                        height,
                        round,
                        valid_round: Round::Nil,
                        proposer: self.address,
                        block,
                    })
                    .await;
                }
            }
            AppMsg::ExtendVote { reply, .. } => send(reply, None, "extension"),
            AppMsg::VerifyVoteExtension { reply, .. } => send(reply, Ok(()), "extension check"),
            AppMsg::RestreamProposal {
                height,
                round,
                valid_round,
                address,
                value_id,
            } => {
                if let Some(block) = self.blocks.get(&value_id.0).cloned() {
                    self.publish(BlockPart {
                        height,
                        round,
                        valid_round,
                        proposer: address,
                        block,
                    })
                    .await;
                }
            }
            AppMsg::GetHistoryMinHeight { reply } => send(reply, Height(1), "history"),
            AppMsg::ReceivedProposalPart { from, part, reply } => {
                let gossip = part.stream_id.to_bytes().starts_with(GOSSIP_STREAM);
                let answer = match part.content {
                    StreamContent::Data(Part::Txs(txs)) => {
                        self.received_txs(from, txs);
                        None
                    }
                    StreamContent::Fin if gossip => None,
                    StreamContent::Data(Part::Init(init)) if !self.authentic(&init)? => {
                        if let Some(held) = self.dropped_streams.allow(Instant::now()) {
                            tracing::warn!(
                                %from,
                                height = init.height.0,
                                round = %init.round,
                                held_back = held,
                                "proposal stream dropped: its init is not signed by the round's proposer"
                            );
                        }
                        super::codec::MALFORMED.inc();
                        None
                    }
                    _ => match self.streams.insert(from, part) {
                        Ok(Some(block)) => self.received_block(block).await?,
                        Ok(None) => None,
                        Err(reason) => {
                            if let Some(held) = self.dropped_streams.allow(Instant::now()) {
                                tracing::warn!(%from, %reason, held_back = held, "proposal stream dropped");
                            }
                            None
                        }
                    },
                };
                if answer.is_none() {
                    tracing::trace!(%from, "proposal part kept for later or dropped");
                }
                send(reply, answer, "proposal part");
            }
            AppMsg::GetValidatorSet { height, reply } => {
                // A staking change in block h takes effect at height h + 1.
                let chain = self.chain.clone();
                let set = tokio::task::spawn_blocking(move || validator_set_at(&chain, height))
                    .await
                    .map_err(|e| BftError::Engine(format!("validator set task failed: {e}")))?;
                let set = match set {
                    Ok(set) => Some(set),
                    Err(e) => {
                        tracing::warn!(height = height.0, error = %e, "no validator set");
                        None
                    }
                };
                send(reply, set, "validator set");
            }
            AppMsg::Decided {
                certificate,
                extensions: _,
                reply,
            } => {
                let next = self.decided(certificate).await?;
                let delay = match &next {
                    Next::Start(..) => self.pacing_delay(),
                    Next::Restart(..) => Duration::ZERO,
                };
                // Pace blocks without holding up the engine's other requests.
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    send(reply, next, "decided");
                });
            }
            AppMsg::GetDecidedValue { height, reply } => {
                let store = self.chain.store();
                let block = store.block(height.0).map_err(ChainError::from)?;
                let certificate = store.certificate(height.0).map_err(ChainError::from)?;
                let value = match (block, certificate) {
                    (Some(block), Some(certificate)) => {
                        match borsh::from_slice::<CommitCertificate<HibanaContext>>(&certificate) {
                            Ok(certificate) => Some(RawDecidedValue {
                                value_bytes: Bytes::from(hibana_types::encode(&block)),
                                certificate,
                            }),
                            Err(e) => {
                                tracing::error!(height = height.0, error = %e, "stored certificate is corrupt");
                                None
                            }
                        }
                    }
                    _ => None,
                };
                send(reply, value, "decided value");
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let answer = match hibana_types::decode::<Block>(&value_bytes) {
                    Ok(block) if block.header.height == height.0 => {
                        // The engine checks the commit certificate; the block is executed and
                        // checked again when it is committed. Kept on disk like a proposal:
                        // the engine may decide it again after a crash.
                        let value = BlockHash(block.hash());
                        self.keep(&block, Validity::Valid).await?;
                        self.blocks.insert(value.0, block);
                        Some(ProposedValue {
                            height,
                            round,
                            valid_round: Round::Nil,
                            proposer,
                            value,
                            validity: Validity::Valid,
                        })
                    }
                    Ok(_) | Err(_) => {
                        tracing::warn!(height = height.0, "synced block is malformed");
                        None
                    }
                };
                send(reply, answer, "synced value");
            }
        }
        Ok(())
    }

    /// A block received from a proposer: checked now if it is for our height, kept if it is
    /// for a height we have not reached, dropped if it is old.
    async fn received_block(
        &mut self,
        part: BlockPart,
    ) -> Result<Option<ProposedValue<HibanaContext>>, BftError> {
        let current = self.current_height()?;
        let height = part.height.0;
        if part.block.header.height != height {
            tracing::warn!(height, "proposal part carries a block of another height");
            return Ok(None);
        }
        let value = ProposedValue {
            height: part.height,
            round: part.round,
            valid_round: part.valid_round,
            proposer: part.proposer,
            value: BlockHash(part.block.hash()),
            validity: Validity::Invalid,
        };
        if height < current {
            return Ok(None);
        }
        if height > current {
            if height <= current.saturating_add(MAX_HEIGHTS_AHEAD) {
                let pending = self.pending.entry(height).or_default();
                if pending.len() < MAX_PENDING_PER_HEIGHT {
                    pending.push(Pending {
                        value,
                        block: part.block,
                    });
                }
            }
            return Ok(None);
        }
        let mut value = value;
        let proposer = part.block.header.proposer;
        let set = next_validator_set(&self.chain)?;
        value.validity = if set.validators().iter().any(|v| v.address.0 == proposer) {
            self.validity(&part.block).await?
        } else {
            tracing::warn!(height, %proposer, "block proposed by a non-validator");
            Validity::Invalid
        };
        self.keep_received(&value, &part.block, &set).await?;
        self.blocks.insert(value.value.0, part.block);
        Ok(Some(value))
    }

    async fn decided(
        &mut self,
        certificate: CommitCertificate<HibanaContext>,
    ) -> Result<Next<HibanaContext>, BftError> {
        let height = certificate.height;
        let restart = |set: ConsensusValidatorSet| Next::Restart(height, set);
        let Some(block) = self.blocks.get(&certificate.value_id.0).cloned() else {
            tracing::error!(height = height.0, value = %certificate.value_id, "decided a block this node does not have; restarting the height");
            return Ok(restart(next_validator_set(&self.chain)?));
        };
        let proposed_ms = block.header.time_ms;
        let encoded = hibana_types::encode(&certificate);
        let result = self
            .blocking(move |chain| {
                // The set that decided this height, read before the block changes it.
                let set = validator_set_at(chain, height).ok();
                chain.commit_decided(&block, Some(&encoded)).map(|_| set)
            })
            .await;
        match result {
            Ok(set) => {
                // Votes missed per validator: absent from the commit certificate.
                for v in set.iter().flat_map(|s| s.validators()) {
                    let signed = certificate
                        .commit_signatures
                        .iter()
                        .any(|c| c.address == v.address);
                    self.chain
                        .metrics()
                        .record_vote(&v.address.to_string(), signed);
                }
            }
            Err(BftError::Chain(ChainError::InvalidBlock { height, reason })) => {
                tracing::error!(height, %reason, "decided block does not apply; restarting the height");
                return Ok(restart(next_validator_set(&self.chain)?));
            }
            Err(e) => return Err(e),
        }
        let finality_ms = now_ms().saturating_sub(proposed_ms);
        self.chain
            .metrics()
            .finality_seconds
            .observe(finality_ms as f64 / 1000.0);
        let committed = height.0;
        self.blocks.retain(|_, b| b.header.height > committed);
        self.own.retain(|(h, _), _| *h > committed);
        self.pending.retain(|h, _| *h > committed);
        self.kept_per_round.retain(|(h, _), _| *h > committed);
        self.streams.prune(committed);
        Ok(Next::Start(
            Height(committed.saturating_add(1)),
            next_validator_set(&self.chain)?,
        ))
    }

    /// How long to wait before starting the next height so that blocks are at least
    /// `block_time` apart; none when catching up on old blocks.
    fn pacing_delay(&self) -> Duration {
        let last = self
            .chain
            .store()
            .block(self.chain.height().unwrap_or(0))
            .ok()
            .flatten()
            .map(|b| b.header.time_ms)
            .unwrap_or(0);
        let block_time = self.block_time.as_millis() as u64;
        let due = last.saturating_add(block_time);
        // A decided block's time was at most MAX_FUTURE_BLOCK_MS ahead of 2/3 of the clocks;
        // never wait longer than that on top of the block time.
        Duration::from_millis(
            due.saturating_sub(now_ms())
                .min(block_time.saturating_add(MAX_FUTURE_BLOCK_MS)),
        )
    }
}

#[cfg(test)]
mod log_limit_tests {
    use super::*;

    #[test]
    fn a_flood_of_warnings_logs_one_per_interval_and_counts_the_rest() {
        let mut limit = LogLimit::default();
        let start = Instant::now();
        assert_eq!(limit.allow(start), Some(0));
        for k in 1..=1000u64 {
            assert_eq!(limit.allow(start + Duration::from_millis(k)), None);
        }
        assert_eq!(limit.allow(start + LogLimit::EVERY), Some(1000));
        assert_eq!(limit.allow(start + LogLimit::EVERY), None);
    }
}
