//! The chain: mempool admission, block proposal, validation and commit, over the store.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Instant,
};

use hibana_runtime::{BlockContext, CheckedTx, Params, Rejection, StateDelta, StateError, bank};
use hibana_store::{PreparedState, Store, StoreError, TxRecord};
use hibana_types::{
    Address, Block, BlockHeader, Hash, Receipt, SignedTransaction, TxStatus, merkle_root,
};
use parking_lot::Mutex;
use rayon::prelude::*;
use tokio::sync::broadcast;

use crate::{
    ChainMetrics,
    mempool::{Mempool, MempoolError},
};

/// Transactions with costly checks (proofs) one account may have fail per window before its
/// costly transactions are refused unchecked until the window ends: a failed check costs its
/// sender nothing, so without a budget an account that can pay one fee could keep a node's
/// cores busy verifying bad proofs.
pub const COSTLY_FAILURES_PER_WINDOW: u32 = 8;
/// The window of that budget, in blocks.
pub const COSTLY_WINDOW_BLOCKS: u64 = 100;

/// How many recent rejections `tx_status` remembers.
const REMEMBERED_REJECTIONS: usize = 10_000;

/// Why a block could not be proposed, validated or committed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// State access failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The block breaks a rule.
    #[error("invalid block at height {height}: {reason}")]
    InvalidBlock {
        /// The block's height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The interface a BFT engine drives: one block per height, proposed by one validator,
/// validated by all, committed once decided. The single-validator producer and a
/// multi-validator engine use the same three calls.
pub trait BlockApplication {
    /// Builds a block at `height` from the mempool.
    fn propose(&self, height: u64, time_ms: u64, proposer: Address) -> Result<Block, ChainError>;
    /// Checks a proposed block: header links, signatures, execution and the state root.
    fn validate(&self, block: &Block) -> Result<(), ChainError>;
    /// Commits a decided block and returns its state root.
    fn commit(&self, block: &Block) -> Result<Hash, ChainError>;
}

/// How far ahead of a validator's clock a proposed block's time may be (clock drift and message
/// delay). Blocks are paced from their parent's time, so this bounds how long one proposer can
/// stall the chain with a block from the future.
pub const MAX_FUTURE_BLOCK_MS: u64 = 3_000;

/// Largest block, in encoded transaction bytes, a proposer builds (it travels in parts; a
/// receiver drops a larger one).
pub const MAX_BLOCK_BYTES: usize = 32 << 20;

/// The result of executing a block's transactions.
#[derive(Debug)]
struct Execution {
    txs: Vec<SignedTransaction>,
    receipts: Vec<Receipt>,
    prepared: PreparedState,
    rejected: Vec<(Hash, String)>,
}

/// Time spent in each phase of the last block, for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseTimes {
    /// Signature, format and message checks, with execution and the Merkle root running
    /// beside the signature checks (seconds, wall clock).
    pub verify: f64,
    /// Transaction execution (seconds).
    pub execute: f64,
    /// State root computation in the Merkle tree (seconds).
    pub merkle: f64,
    /// The durable write of the block and state (seconds).
    pub write: f64,
}

/// A node's chain: store, mempool and the block pipeline.
pub struct Chain {
    store: Arc<Store>,
    chain_id: String,
    params: Params,
    mempool: Mutex<Mempool>,
    rejections: Mutex<(HashMap<Hash, String>, VecDeque<Hash>)>,
    /// Per sender: the budget window and its costly failures in it.
    costly_failures: Mutex<HashMap<Address, (u64, u32)>>,
    /// The last block this node executed (proposed or validated), so commit does not redo it.
    executed: Mutex<Option<(Hash, Execution)>>,
    heads: broadcast::Sender<BlockHeader>,
    metrics: ChainMetrics,
    phase_times: Mutex<PhaseTimes>,
    /// Transactions accepted from this node's clients, not yet gossiped to the other nodes.
    gossip: Mutex<VecDeque<SignedTransaction>>,
    gossip_ready: tokio::sync::Notify,
}

/// Most transactions waiting to be gossiped; beyond it the oldest are not passed on (they stay
/// in this node's mempool and are proposed when this node's turn comes).
const MAX_GOSSIP_BACKLOG: usize = 20_000;

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chain({})", self.chain_id)
    }
}

fn now_secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

impl Chain {
    /// A chain over an initialised store.
    pub fn new(store: Arc<Store>, mempool_max_txs: usize) -> Result<Chain, ChainError> {
        let genesis = store.genesis()?;
        let (heads, _) = broadcast::channel(256);
        Ok(Chain {
            store,
            chain_id: genesis.chain_id,
            params: genesis.params,
            mempool: Mutex::new(Mempool::new(
                mempool_max_txs,
                mempool_max_txs.saturating_mul(2048),
            )),
            rejections: Mutex::new((HashMap::new(), VecDeque::new())),
            costly_failures: Mutex::new(HashMap::new()),
            executed: Mutex::new(None),
            heads,
            metrics: ChainMetrics::new(),
            phase_times: Mutex::new(PhaseTimes::default()),
            gossip: Mutex::new(VecDeque::new()),
            gossip_ready: tokio::sync::Notify::new(),
        })
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The chain parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Metrics of this chain.
    pub fn metrics(&self) -> &ChainMetrics {
        &self.metrics
    }

    /// Time spent in each phase of the last committed block.
    pub fn last_phase_times(&self) -> PhaseTimes {
        *self.phase_times.lock()
    }

    /// The latest committed height (0 = genesis only).
    pub fn height(&self) -> Result<u64, ChainError> {
        Ok(self.store.height()?.ok_or(StoreError::NotInitialised)?)
    }

    /// A stream of committed block headers.
    pub fn subscribe_heads(&self) -> broadcast::Receiver<BlockHeader> {
        self.heads.subscribe()
    }

    /// Number of pending transactions.
    pub fn mempool_len(&self) -> usize {
        self.mempool.lock().len()
    }

    /// The nonce of `sender`'s next transaction: after its committed and pending ones.
    pub fn next_nonce(&self, sender: &Address) -> u64 {
        let committed = self
            .store
            .snapshot()
            .ok()
            .and_then(|s| bank::account(&s, sender).ok())
            .map_or(0, |a| a.nonce);
        self.mempool.lock().next_nonce(sender, committed)
    }

    /// Verifies a transaction from a client and adds it to the mempool; accepted ones are also
    /// queued for gossip to the other nodes.
    pub fn submit(&self, tx: SignedTransaction) -> Result<Hash, MempoolError> {
        let hash = tx.hash();
        let result = self.admit(tx.clone(), hash);
        match &result {
            Ok(_) => {
                let mut out = self.gossip.lock();
                if out.len() >= MAX_GOSSIP_BACKLOG {
                    out.pop_front();
                }
                out.push_back(tx);
                drop(out);
                self.gossip_ready.notify_one();
            }
            Err(MempoolError::Duplicate(_)) => {}
            Err(e) => {
                self.metrics.txs_rejected.inc();
                self.remember_rejection(hash, e.to_string());
            }
        }
        self.metrics.mempool_size.set(self.mempool_len() as i64);
        result
    }

    /// Adds a transaction another node gossiped: checked like a client's, but neither passed on
    /// again nor remembered as refused (its sender asked the other node, not this one).
    pub fn submit_gossiped(&self, tx: SignedTransaction) -> Result<Hash, MempoolError> {
        let hash = tx.hash();
        let result = match self.admit(tx, hash) {
            // Gossip that arrives after its transaction was committed (it raced the block) is a
            // duplicate, not a replay to charge the peer for; the used nonce is found before any
            // signature check, and only then is the committed index read. A client resubmitting
            // it still gets the replay's reason from `submit`.
            Err(MempoolError::Rejected(Rejection::WrongNonce {
                expected, found, ..
            })) if found < expected && matches!(self.store.tx(&hash), Ok(Some(_))) => {
                Err(MempoolError::Duplicate(hash))
            }
            other => other,
        };
        self.metrics.mempool_size.set(self.mempool_len() as i64);
        result
    }

    /// Takes the transactions waiting to be gossiped.
    pub fn take_gossip(&self) -> Vec<SignedTransaction> {
        self.gossip.lock().drain(..).collect()
    }

    /// Resolves when transactions are waiting to be gossiped.
    pub async fn gossip_ready(&self) {
        self.gossip_ready.notified().await;
    }

    /// Checks `tx` (whose hash is `hash`) and adds it to the mempool.
    fn admit(&self, tx: SignedTransaction, hash: Hash) -> Result<Hash, MempoolError> {
        let storage = |e: StateError| Rejection::Malformed(format!("node storage: {e}"));
        // A duplicate (often a gossiped one) costs a hash, not a verification.
        if self.mempool.lock().contains(&hash) {
            return Err(MempoolError::Duplicate(hash));
        }
        let snapshot = self
            .store
            .snapshot()
            .map_err(|e| Rejection::Malformed(format!("node storage: {e}")))?;
        let next_height = snapshot.height() + 1;
        let costly = hibana_runtime::has_costly_checks(&tx);
        let window = next_height / COSTLY_WINDOW_BLOCKS;
        let sender = tx.sender();
        if costly
            && let Some(&(w, failures)) = self.costly_failures.lock().get(&sender)
            && w == window
            && failures >= COSTLY_FAILURES_PER_WINDOW
        {
            return Err(Rejection::Throttled {
                account: sender,
                failures,
                until: (window + 1) * COSTLY_WINDOW_BLOCKS,
            }
            .into());
        }
        let admitted =
            hibana_runtime::admit(&snapshot, &tx, &self.chain_id, &self.params, next_height)
                .map_err(storage)?;
        if costly && let Err(Rejection::Malformed(_)) = &admitted {
            let mut budget = self.costly_failures.lock();
            budget.retain(|_, (w, _)| *w == window);
            let entry = budget.entry(sender).or_insert((window, 0));
            entry.1 = entry.1.saturating_add(1);
        }
        let (checked, next_nonce) = admitted?;
        let hash = self.mempool.lock().insert(checked, next_nonce)?;
        self.rejections.lock().0.remove(&hash);
        Ok(hash)
    }

    fn remember_rejection(&self, hash: Hash, reason: String) {
        let mut guard = self.rejections.lock();
        let (map, order) = &mut *guard;
        if map.insert(hash, reason).is_none() {
            order.push_back(hash);
            if order.len() > REMEMBERED_REJECTIONS
                && let Some(old) = order.pop_front()
            {
                map.remove(&old);
            }
        }
    }

    /// The status of a transaction.
    pub fn tx_status(&self, hash: &Hash) -> Result<TxStatus, ChainError> {
        if let Some(TxRecord { receipt, .. }) = self.store.tx(hash)? {
            return Ok(TxStatus::Committed { receipt });
        }
        if self.mempool.lock().contains(hash) {
            return Ok(TxStatus::Pending);
        }
        if let Some(reason) = self.rejections.lock().0.get(hash) {
            return Ok(TxStatus::Rejected {
                reason: reason.clone(),
            });
        }
        Ok(TxStatus::Unknown)
    }

    /// Runs a block's transactions over the committed state. When proposing, invalid
    /// transactions are left out (and remembered as rejected); when validating, any invalid
    /// transaction makes the block invalid.
    fn execute(
        &self,
        ctx: &BlockContext,
        candidates: Vec<CheckedTx>,
        proposing: bool,
    ) -> Result<Execution, ChainError> {
        let snapshot = self.store.snapshot()?;
        if snapshot.height() + 1 != ctx.height {
            return Err(ChainError::InvalidBlock {
                height: ctx.height,
                reason: format!("the next height is {}", snapshot.height() + 1),
            });
        }
        let start = Instant::now();
        let mut delta = StateDelta::new(&snapshot);
        let mut block_events = hibana_runtime::begin_block(&mut delta, ctx)?;
        let mut txs = Vec::with_capacity(candidates.len());
        let mut receipts = Vec::with_capacity(candidates.len());
        let mut rejected = Vec::new();
        for tx in candidates {
            let index = u32::try_from(txs.len()).unwrap_or(u32::MAX);
            match hibana_runtime::deliver_tx(&mut delta, ctx, &tx, index)? {
                Ok(receipt) => {
                    receipts.push(receipt);
                    txs.push(tx.into_tx());
                }
                Err(rejection) if proposing => rejected.push((tx.hash(), rejection.to_string())),
                Err(rejection) => {
                    return Err(ChainError::InvalidBlock {
                        height: ctx.height,
                        reason: format!("transaction {} is invalid: {rejection}", tx.hash()),
                    });
                }
            }
        }
        block_events.extend(hibana_runtime::end_block(&mut delta, ctx)?);
        let writes = delta.into_writes();
        let execute = now_secs(start);
        let start = Instant::now();
        let prepared = self
            .store
            .prepare(ctx.height, writes)?
            .with_events(block_events);
        let mut times = self.phase_times.lock();
        times.execute = execute;
        times.merkle = now_secs(start);
        Ok(Execution {
            txs,
            receipts,
            prepared,
            rejected,
        })
    }

    fn context(&self, header: &BlockHeader) -> BlockContext {
        BlockContext {
            chain_id: self.chain_id.clone(),
            height: header.height,
            time_ms: header.time_ms,
            proposer: header.proposer,
        }
    }

    fn parent(&self, height: u64) -> Result<(Hash, u64, Hash), ChainError> {
        let app_hash = self.store.state_root(height - 1)?;
        if height == 1 {
            let genesis = self.store.genesis()?;
            return Ok((Hash::ZERO, genesis.genesis_time_ms, app_hash));
        }
        let parent = self
            .store
            .block(height - 1)?
            .ok_or(StoreError::Corrupt("missing parent block"))?;
        Ok((parent.hash(), parent.header.time_ms, app_hash))
    }
}

impl BlockApplication for Chain {
    fn propose(&self, height: u64, time_ms: u64, proposer: Address) -> Result<Block, ChainError> {
        let (parent_hash, parent_time, app_hash) = self.parent(height)?;
        let snapshot = self.store.snapshot()?;
        let nonce = |a: &Address| {
            bank::account(&snapshot, a)
                .map(|acc| acc.nonce)
                .unwrap_or(0)
        };
        let candidates = {
            let pool = self.mempool.lock();
            let picked = pool.select(self.params.max_block_txs as usize, MAX_BLOCK_BYTES, nonce);
            // The stalled count reads every pending sender's account: only for a debug log.
            if tracing::enabled!(tracing::Level::DEBUG) {
                tracing::debug!(
                    height,
                    picked = picked.len(),
                    pending = pool.len(),
                    stalled = pool.stalled(nonce),
                    "proposing"
                );
            }
            picked
        };
        drop(snapshot);
        let mut header = BlockHeader {
            chain_id: self.chain_id.clone(),
            height,
            parent_hash,
            time_ms: time_ms.max(parent_time.saturating_add(1)),
            proposer,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            app_hash,
        };
        let mut execution = self.execute(&self.context(&header), candidates, true)?;
        for (hash, reason) in &execution.rejected {
            self.mempool.lock().remove(hash);
            self.remember_rejection(*hash, reason.clone());
        }
        header.tx_root = merkle_root(
            &execution
                .receipts
                .iter()
                .map(|r| r.tx_hash)
                .collect::<Vec<_>>(),
        );
        header.state_root = execution.prepared.root;
        // The executed transactions move into the block: commit writes the block's copy.
        let block = Block {
            header,
            txs: std::mem::take(&mut execution.txs),
        };
        *self.executed.lock() = Some((block.hash(), execution));
        Ok(block)
    }

    fn validate(&self, block: &Block) -> Result<(), ChainError> {
        let h = &block.header;
        let invalid = |reason: String| ChainError::InvalidBlock {
            height: h.height,
            reason,
        };
        if h.chain_id != self.chain_id {
            return Err(invalid(format!(
                "chain id {:?} is not {:?}",
                h.chain_id, self.chain_id
            )));
        }
        let (parent_hash, parent_time, app_hash) = self.parent(h.height)?;
        if h.parent_hash != parent_hash {
            return Err(invalid(
                "parent hash does not match the last committed block".into(),
            ));
        }
        if h.time_ms <= parent_time {
            return Err(invalid("block time does not increase".into()));
        }
        if h.app_hash != app_hash {
            return Err(invalid(
                "app hash does not match the committed state root".into(),
            ));
        }
        if block.txs.len() > self.params.max_block_txs as usize {
            return Err(invalid(format!(
                "{} transactions exceed the limit",
                block.txs.len()
            )));
        }
        // Each transaction's hash, once, for the root and the mempool lookups.
        let hashes: Vec<Hash> = block.txs.par_iter().map(SignedTransaction::hash).collect();
        if merkle_root(&hashes) != h.tx_root {
            return Err(invalid(
                "transaction root does not match the transactions".into(),
            ));
        }
        let hash = block.hash();
        if matches!(&*self.executed.lock(), Some((cached, _)) if *cached == hash) {
            // This node built the block itself: its transactions were checked on admission
            // and it was executed to compute the header's state root.
            return Ok(());
        }
        let start = Instant::now();
        // A transaction in this node's mempool passed the same checks on admission, and its hash
        // covers the signature: what they verified is taken from there, the others are checked
        // here.
        let mut pending: Vec<Option<CheckedTx>> = {
            let pool = self.mempool.lock();
            hashes.iter().map(|hash| pool.get(hash).cloned()).collect()
        };
        let unchecked: Vec<SignedTransaction> = block
            .txs
            .iter()
            .zip(&pending)
            .filter(|(_, p)| p.is_none())
            .map(|(tx, _)| tx.clone())
            .collect();
        let unchecked_at: Vec<usize> = (0..block.txs.len())
            .filter(|&i| pending[i].is_none())
            .collect();
        let ctx = self.context(h);
        // The block executes while its signatures are verified on the other threads; a bad
        // signature discards the execution.
        let outcome = hibana_runtime::check_stateless_batch_then(
            unchecked,
            &self.chain_id,
            &self.params,
            |checks| {
                let mut checks = checks.into_iter();
                let mut candidates = Vec::with_capacity(block.txs.len());
                for (tx, known) in block.txs.iter().zip(pending.iter_mut()) {
                    let checked = match known.take() {
                        Some(checked) => checked,
                        None => match checks.next() {
                            Some(Ok(checked)) => checked,
                            Some(Err(e)) => {
                                return Err(invalid(format!(
                                    "transaction {} is invalid: {e}",
                                    tx.hash()
                                )));
                            }
                            None => return Err(invalid("a transaction was not checked".into())),
                        },
                    };
                    candidates.push(checked);
                }
                self.execute(&ctx, candidates, false)
            },
        );
        self.phase_times.lock().verify = now_secs(start);
        let execution = match outcome {
            Ok(execution) => execution?,
            Err((index, e)) => {
                let hash = unchecked_at
                    .get(index)
                    .and_then(|&i| block.txs.get(i))
                    .map_or(Hash::ZERO, SignedTransaction::hash);
                return Err(invalid(format!("transaction {hash} is invalid: {e}")));
            }
        };
        if execution.prepared.root != h.state_root {
            return Err(invalid(format!(
                "state root {} does not match the executed root {}",
                h.state_root, execution.prepared.root
            )));
        }
        *self.executed.lock() = Some((hash, execution));
        Ok(())
    }

    fn commit(&self, block: &Block) -> Result<Hash, ChainError> {
        self.commit_decided(block, None)
    }
}

impl Chain {
    /// Checks a proposed block's time against this validator's clock (`now_ms`): at most
    /// [`MAX_FUTURE_BLOCK_MS`] ahead. Only a proposal being voted on is judged by a local clock;
    /// a decided block is not (2/3 of the voting power judged it timely).
    pub fn check_timely(&self, header: &BlockHeader, now_ms: u64) -> Result<(), ChainError> {
        let limit = now_ms.saturating_add(MAX_FUTURE_BLOCK_MS);
        if header.time_ms > limit {
            return Err(ChainError::InvalidBlock {
                height: header.height,
                reason: format!(
                    "block time {} ms is {} ms ahead of this validator's clock (at most {MAX_FUTURE_BLOCK_MS} ms)",
                    header.time_ms,
                    header.time_ms - now_ms
                ),
            });
        }
        Ok(())
    }

    /// Commits a decided block together with the consensus certificate that proves the
    /// decision (kept for peers that catch up), in one atomic write.
    pub fn commit_decided(
        &self,
        block: &Block,
        certificate: Option<&[u8]>,
    ) -> Result<Hash, ChainError> {
        let hash = block.hash();
        let cached = self.executed.lock().take();
        let execution = match cached {
            Some((h, execution)) if h == hash => execution,
            _ => {
                self.validate(block)?;
                self.executed.lock().take().map(|(_, e)| e).ok_or_else(|| {
                    ChainError::InvalidBlock {
                        height: block.header.height,
                        reason: "not executed".into(),
                    }
                })?
            }
        };
        let start = Instant::now();
        let root = execution.prepared.root;
        self.store.commit_with_certificate(
            block,
            &execution.receipts,
            execution.prepared,
            certificate,
        )?;
        self.phase_times.lock().write = now_secs(start);
        let snapshot = self.store.snapshot()?;
        let mut mempool = self.mempool.lock();
        // The receipts carry the block's transaction hashes, in order.
        for receipt in &execution.receipts {
            mempool.remove(&receipt.tx_hash);
        }
        let dropped = mempool.prune(|a| {
            bank::account(&snapshot, a)
                .map(|acc| acc.nonce)
                .unwrap_or(0)
        });
        let pending = mempool.len();
        drop(mempool);
        for hash in dropped {
            self.remember_rejection(
                hash,
                "dropped: its nonce was used by another transaction".into(),
            );
        }
        // A large block's receipts (each with its events) are freed beside the next block's
        // work rather than before the commit returns (inline when no thread can be started).
        if execution.receipts.len() > 1024 {
            let leftovers = (execution.receipts, execution.txs);
            let _ = std::thread::Builder::new()
                .name("free-receipts".into())
                .spawn(move || drop(leftovers));
        }
        self.metrics.record_block(
            block.header.height,
            block.txs.len(),
            pending,
            now_secs(start),
        );
        let _ = self.heads.send(block.header.clone());
        tracing::info!(height = block.header.height, txs = block.txs.len(), root = %root, "committed block");
        Ok(root)
    }
}
