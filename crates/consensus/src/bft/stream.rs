//! Proposed blocks travel as a stream of parts: a [`ProposalInit`] with the header, then the
//! transactions in chunks of bounded size, then the end of the stream. Large blocks so never
//! exceed the network's message limit, and a receiver puts the block back together whatever
//! order the parts arrive in. The init is signed by the round's proposer (the host checks it
//! before a stream is opened with it), the engine accepts the block only if its hash is the one
//! in the proposer's signed proposal, and the chain validates it. Memory is capped per peer (a
//! few streams, twice a block's bytes) and in all; a full table drops the streams that have no
//! signed init first, so a stranger cannot evict a proposer's stream.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use hibana_types::{Block, SignedTransaction};
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};

use super::{BlockPart, Ed25519Signer, Part, ProposalInit, context::ConsensusSignature};
use crate::MAX_BLOCK_BYTES;

/// Streams being put together at once; beyond it one without an init (else the least recently
/// active) is dropped.
const MAX_STREAMS: usize = 32;
/// Streams one peer may have open at once; beyond it that peer's least recently active is
/// dropped.
const MAX_STREAMS_PER_PEER: usize = 4;
/// Transaction bytes one peer's open streams may hold together.
const MAX_BYTES_PER_PEER: usize = 2 * MAX_BLOCK_BYTES;

/// The encoded size of a transaction, counted without encoding it into a buffer (this runs for
/// every gossiped and streamed transaction).
pub(super) fn tx_bytes(tx: &SignedTransaction) -> usize {
    borsh::object_length(tx).unwrap_or(usize::MAX)
}

/// Splits a proposed block into its stream's data parts: the [`Part::Init`], signed by `signer`,
/// and chunks of about `part_bytes` encoded bytes (a transaction larger than that travels
/// alone).
pub(super) fn split(part: BlockPart, part_bytes: usize, signer: &Ed25519Signer) -> Vec<Part> {
    let mut chunks: Vec<Vec<SignedTransaction>> = Vec::new();
    let mut size = 0usize;
    for tx in part.block.txs {
        let n = tx_bytes(&tx);
        match chunks.last_mut() {
            Some(chunk) if size.saturating_add(n) <= part_bytes => {
                chunk.push(tx);
                size += n;
            }
            _ => {
                chunks.push(vec![tx]);
                size = n;
            }
        }
    }
    let mut init = ProposalInit {
        height: part.height,
        round: part.round,
        valid_round: part.valid_round,
        proposer: part.proposer,
        header: part.block.header,
        chunks: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
        signature: ConsensusSignature([0; 64]),
    };
    init.signature = signer.sign_init(&init);
    std::iter::once(Part::Init(Box::new(init)))
        .chain(chunks.into_iter().map(Part::BlockTxs))
        .collect()
}

/// The stream messages of a split block: data parts in order, then the end.
pub(super) fn messages(stream_id: StreamId, parts: Vec<Part>) -> Vec<StreamMessage<Part>> {
    let fin = parts.len() as u64;
    let mut out: Vec<StreamMessage<Part>> = parts
        .into_iter()
        .enumerate()
        .map(|(seq, part)| {
            StreamMessage::new(stream_id.clone(), seq as u64, StreamContent::Data(part))
        })
        .collect();
    out.push(StreamMessage::new(stream_id, fin, StreamContent::Fin));
    out
}

#[derive(Default)]
struct Assembly {
    init: Option<ProposalInit>,
    chunks: BTreeMap<u64, Vec<SignedTransaction>>,
    fin: Option<u64>,
    bytes: usize,
    active: u64,
}

impl Assembly {
    /// The block, once the init, every chunk and the end have arrived.
    fn complete(&mut self) -> Option<BlockPart> {
        let init = self.init.as_ref()?;
        let fin = self.fin?;
        let want = u64::from(init.chunks);
        let in_order = self.chunks.len() as u64 == want
            && self.chunks.first_key_value().is_none_or(|(k, _)| *k == 1)
            && self.chunks.last_key_value().is_none_or(|(k, _)| *k == want);
        if fin != want + 1 || !in_order {
            return None;
        }
        let init = self.init.take()?;
        let txs = std::mem::take(&mut self.chunks)
            .into_values()
            .flatten()
            .collect();
        Some(BlockPart {
            height: init.height,
            round: init.round,
            valid_round: init.valid_round,
            proposer: init.proposer,
            block: Block {
                header: init.header,
                txs,
            },
        })
    }
}

/// Block streams being received, per sending peer and stream id.
pub(super) struct Streams<P> {
    open: HashMap<(P, Bytes), Assembly>,
    activity: u64,
    max_block_txs: usize,
}

impl<P: std::hash::Hash + Eq + Clone> Streams<P> {
    /// No stream yet; blocks of more than `max_block_txs` transactions are dropped.
    pub(super) fn new(max_block_txs: usize) -> Self {
        Streams {
            open: HashMap::new(),
            activity: 0,
            max_block_txs,
        }
    }

    /// Streams being put together.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.open.len()
    }

    /// Adds one message of a block stream; returns the block when its last part arrives. A
    /// stream that breaks the rules (a part out of place, too many transactions or bytes) is
    /// dropped, with the reason.
    pub(super) fn insert(
        &mut self,
        from: P,
        msg: StreamMessage<Part>,
    ) -> Result<Option<BlockPart>, String> {
        let key = (from, msg.stream_id.to_bytes());
        self.activity += 1;
        if !self.open.contains_key(&key) {
            self.make_room(&key.0);
        }
        let assembly = self.open.entry(key.clone()).or_default();
        assembly.active = self.activity;
        let broken = match (msg.sequence, msg.content) {
            (_, StreamContent::Fin) => {
                assembly.fin = Some(msg.sequence);
                None
            }
            (0, StreamContent::Data(Part::Init(init))) => {
                if (init.chunks as usize) > self.max_block_txs {
                    Some(format!("{} chunks announced", init.chunks))
                } else {
                    assembly.init = Some(*init);
                    None
                }
            }
            (seq, StreamContent::Data(Part::BlockTxs(txs))) if seq > 0 && !txs.is_empty() => {
                let bytes: usize = txs.iter().map(tx_bytes).fold(0, usize::saturating_add);
                assembly.bytes = assembly.bytes.saturating_add(bytes);
                assembly.chunks.insert(seq, txs);
                let count: usize = assembly.chunks.values().map(Vec::len).sum();
                if count > self.max_block_txs || assembly.bytes > MAX_BLOCK_BYTES {
                    Some(format!(
                        "more than {} transactions or {MAX_BLOCK_BYTES} bytes",
                        self.max_block_txs
                    ))
                } else if self.peer_bytes(&key.0) > MAX_BYTES_PER_PEER {
                    Some(format!(
                        "the peer's open streams hold more than {MAX_BYTES_PER_PEER} bytes"
                    ))
                } else {
                    None
                }
            }
            (seq, _) => Some(format!("an unexpected part at sequence {seq}")),
        };
        if let Some(reason) = broken {
            self.open.remove(&key);
            return Err(reason);
        }
        let block = self.open.get_mut(&key).and_then(Assembly::complete);
        if block.is_some() {
            self.open.remove(&key);
        }
        Ok(block)
    }

    /// Drops streams so that one more from `peer` fits: that peer's least recently active when
    /// it has its share open, then, when the table is full, a stream without an init (the least
    /// recently active), else the least recently active of all.
    fn make_room(&mut self, peer: &P) {
        let own = self.open.keys().filter(|(p, _)| p == peer).count();
        if own >= MAX_STREAMS_PER_PEER {
            self.drop_least_active(|(p, _), _| p == peer);
        }
        if self.open.len() >= MAX_STREAMS && !self.drop_least_active(|_, a| a.init.is_none()) {
            self.drop_least_active(|_, _| true);
        }
    }

    /// Drops the least recently active stream that `which` picks; false if it picked none.
    fn drop_least_active(&mut self, which: impl Fn(&(P, Bytes), &Assembly) -> bool) -> bool {
        let idle = self
            .open
            .iter()
            .filter(|(k, a)| which(k, a))
            .min_by_key(|(_, a)| a.active)
            .map(|(k, _)| k.clone());
        idle.is_some_and(|k| self.open.remove(&k).is_some())
    }

    /// Transaction bytes held for `peer`'s open streams.
    fn peer_bytes(&self, peer: &P) -> usize {
        self.open
            .iter()
            .filter(|((p, _), _)| p == peer)
            .map(|(_, a)| a.bytes)
            .fold(0, usize::saturating_add)
    }

    /// Drops the streams of heights up to `committed`.
    pub(super) fn prune(&mut self, committed: u64) {
        self.open
            .retain(|_, a| a.init.as_ref().is_none_or(|i| i.height.0 > committed));
    }
}
