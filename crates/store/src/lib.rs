//! Hibana's storage: authenticated, versioned state and the block, transaction and receipt
//! store, in one redb database.
//!
//! State lives twice: a flat table of current values, which execution reads, and a Jellyfish
//! Merkle tree (the `jmt` crate, hashed with blake3) versioned by height, which gives one state
//! root per block and inclusion and non-inclusion proofs for any key at any height. Each block
//! is committed in one redb write transaction — tree nodes, flat state, block, transactions,
//! receipts and indexes together — so a crash (even `kill -9`) leaves the last committed block
//! intact and nothing half-written.
//!
//! Flow: [`Store::snapshot`] gives a [`StateRead`] view to execute on; the execution's writes go
//! to [`Store::prepare`], which computes the new root without writing; [`Store::commit`] then
//! writes the block atomically.
#![forbid(unsafe_code)]

use std::{collections::BTreeMap, path::Path};

use hibana_runtime::{Genesis, GenesisError, MemState, StateError, StateRead};
use hibana_types::{
    Address, Block, Hash, Receipt, SignedTransaction, StateHasher, StateProof, decode, encode,
    state_key_hash,
};
use jmt::{
    JellyfishMerkleTree, KeyHash, OwnedValue, Version,
    storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch},
};
use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, TableDefinition};

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const STATE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("state");
const NODES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("jmt_nodes");
const VALUES: TableDefinition<'_, ([u8; 32], u64), &[u8]> = TableDefinition::new("jmt_values");
const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
const BLOCK_HASHES: TableDefinition<'_, [u8; 32], u64> = TableDefinition::new("block_hashes");
const TXS: TableDefinition<'_, [u8; 32], (u64, u32)> = TableDefinition::new("txs");
const RECEIPTS: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("receipts");
/// Consensus evidence that a block was decided (an encoded commit certificate), per height.
const CERTIFICATES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("certificates");
const BLOCK_EVENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("block_events");
const ACCOUNT_TXS: TableDefinition<'_, ([u8; 20], u64, u32), [u8; 32]> =
    TableDefinition::new("account_txs");
/// Blocks proposed for heights not yet committed, by (height, block hash): a validator that
/// voted for one must still have it after a crash.
const PROPOSALS: TableDefinition<'_, (u64, [u8; 32]), &[u8]> = TableDefinition::new("proposals");
/// This node's own proposals, by (height, round): the block hash it proposed.
const OWN_PROPOSALS: TableDefinition<'_, (u64, u32), [u8; 32]> =
    TableDefinition::new("own_proposals");

const HEIGHT_KEY: &str = "height";
const GENESIS_KEY: &str = "genesis";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, corruption).
    #[error("database error: {0}")]
    Db(String),
    /// The Merkle tree failed.
    #[error("state tree error: {0}")]
    Tree(String),
    /// A stored record did not decode.
    #[error("corrupt record in {0}")]
    Corrupt(&'static str),
    /// The store has no genesis yet.
    #[error("the chain has not been initialised: run `hibana init` or `hibana devnet`")]
    NotInitialised,
    /// Genesis was written already.
    #[error("the chain is already initialised at height {0}")]
    AlreadyInitialised(u64),
    /// A commit that does not follow the last block.
    #[error("cannot commit block {found}: the next height is {expected}")]
    WrongHeight {
        /// The next height.
        expected: u64,
        /// The block's height.
        found: u64,
    },
    /// The genesis is invalid.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
db_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<StoreError> for StateError {
    fn from(e: StoreError) -> Self {
        StateError::Backend(e.to_string())
    }
}

/// State writes of a block and the tree update they make, computed but not yet written.
#[derive(Debug)]
pub struct PreparedState {
    /// The state root after the writes.
    pub root: Hash,
    version: Version,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    batch: TreeUpdateBatch,
    events: Vec<hibana_types::Event>,
}

impl PreparedState {
    /// Attaches the events of the block's begin and end (outside any transaction), stored with
    /// the block.
    pub fn with_events(mut self, events: Vec<hibana_types::Event>) -> PreparedState {
        self.events = events;
        self
    }
}

/// Where a transaction landed, with its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRecord {
    /// The transaction.
    pub tx: SignedTransaction,
    /// Its receipt.
    pub receipt: Receipt,
}

/// Proposals kept across restarts for heights not yet committed.
#[derive(Debug, Default)]
pub struct KeptProposals {
    /// The blocks, in height order.
    pub blocks: Vec<Block>,
    /// This node's own proposals: height, round and block hash.
    pub own: Vec<(u64, u32, Hash)>,
}

/// The chain database.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database at `path`, recovering from an unclean shutdown.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(META)?;
            txn.open_table(STATE)?;
            txn.open_table(NODES)?;
            txn.open_table(VALUES)?;
            txn.open_table(BLOCKS)?;
            txn.open_table(BLOCK_HASHES)?;
            txn.open_table(TXS)?;
            txn.open_table(RECEIPTS)?;
            txn.open_table(ACCOUNT_TXS)?;
            txn.open_table(PROPOSALS)?;
            txn.open_table(OWN_PROPOSALS)?;
        }
        txn.commit()?;
        Ok(Store { db })
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    /// The height of the last committed block (0 after genesis), or `None` before genesis.
    pub fn height(&self) -> Result<Option<u64>, StoreError> {
        let meta = self.read()?.open_table(META)?;
        match meta.get(HEIGHT_KEY)? {
            None => Ok(None),
            Some(v) => decode::<u64>(v.value())
                .map(Some)
                .map_err(|_| StoreError::Corrupt("meta.height")),
        }
    }

    /// The genesis the chain was started from.
    pub fn genesis(&self) -> Result<Genesis, StoreError> {
        let meta = self.read()?.open_table(META)?;
        let bytes = meta.get(GENESIS_KEY)?.ok_or(StoreError::NotInitialised)?;
        let json =
            std::str::from_utf8(bytes.value()).map_err(|_| StoreError::Corrupt("meta.genesis"))?;
        Ok(Genesis::from_json(json)?)
    }

    /// Writes the genesis state as version 0 and returns its state root.
    pub fn init_genesis(&self, genesis: &Genesis) -> Result<Hash, StoreError> {
        if let Some(h) = self.height()? {
            return Err(StoreError::AlreadyInitialised(h));
        }
        let mut state = MemState::default();
        hibana_runtime::init_genesis(&mut state, genesis)?;
        let writes = state.0.into_iter().map(|(k, v)| (k, Some(v))).collect();
        let prepared = self.prepare(0, writes)?;
        let root = prepared.root;
        let json = serde_json::to_vec(genesis).map_err(|e| StoreError::Db(e.to_string()))?;
        let txn = self.db.begin_write()?;
        {
            write_state(&txn, &prepared)?;
            let mut meta = txn.open_table(META)?;
            meta.insert(GENESIS_KEY, json.as_slice())?;
            meta.insert(HEIGHT_KEY, encode(&0u64).as_slice())?;
        }
        txn.commit()?;
        Ok(root)
    }

    /// A consistent read-only view of the latest committed state.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let txn = self.read()?;
        let height = match txn.open_table(META)?.get(HEIGHT_KEY)? {
            None => return Err(StoreError::NotInitialised),
            Some(v) => decode::<u64>(v.value()).map_err(|_| StoreError::Corrupt("meta.height"))?,
        };
        Ok(Snapshot {
            state: txn.open_table(STATE)?,
            tree: TreeView::open(&txn)?,
            height,
        })
    }

    /// Computes the state root after applying `writes` as version `version`, without writing.
    pub fn prepare(
        &self,
        version: Version,
        writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<PreparedState, StoreError> {
        let view = TreeView::open(&self.read()?)?;
        let tree = JellyfishMerkleTree::<_, StateHasher>::new(&view);
        let has_deletions = writes.values().any(Option::is_none);
        let (root, batch) = if writes.is_empty() || has_deletions {
            let set: Vec<(KeyHash, Option<OwnedValue>)> = writes
                .iter()
                .map(|(k, v)| (state_key_hash(k), v.clone()))
                .collect();
            tree.put_value_set(set, version)
                .map_err(|e| StoreError::Tree(e.to_string()))?
        } else {
            // Inserts and updates only: the bottom-up batch insertion is faster and gives the
            // same root (the root is a function of the key-value set).
            let set: Vec<(KeyHash, OwnedValue)> = writes
                .iter()
                .filter_map(|(k, v)| v.clone().map(|v| (state_key_hash(k), v)))
                .collect();
            let (roots, batch) = tree
                .batch_put_value_sets(vec![set], None, version)
                .map_err(|e| StoreError::Tree(e.to_string()))?;
            let root = roots
                .first()
                .copied()
                .ok_or_else(|| StoreError::Tree("no root computed".into()))?;
            (root, batch)
        };
        Ok(PreparedState {
            root: Hash(root.0),
            version,
            writes,
            batch,
            events: Vec::new(),
        })
    }

    /// Writes a block, its receipts and its prepared state in one atomic, durable transaction.
    pub fn commit(
        &self,
        block: &Block,
        receipts: &[Receipt],
        state: PreparedState,
    ) -> Result<(), StoreError> {
        self.commit_with_certificate(block, receipts, state, None)
    }

    /// Like [`Store::commit`], and stores the consensus certificate of the block (opaque bytes
    /// that peers catching up ask for) in the same transaction.
    pub fn commit_with_certificate(
        &self,
        block: &Block,
        receipts: &[Receipt],
        state: PreparedState,
        certificate: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let height = block.header.height;
        let expected = self.height()?.ok_or(StoreError::NotInitialised)? + 1;
        if height != expected || state.version != height {
            return Err(StoreError::WrongHeight {
                expected,
                found: height,
            });
        }
        let txn = self.db.begin_write()?;
        {
            if !state.events.is_empty() {
                txn.open_table(BLOCK_EVENTS)?
                    .insert(height, encode(&state.events).as_slice())?;
            }
            write_state(&txn, &state)?;
            txn.open_table(BLOCKS)?
                .insert(height, encode(block).as_slice())?;
            txn.open_table(BLOCK_HASHES)?
                .insert(block.hash().0, height)?;
            // Keys inserted in order: a B-tree fills its pages one after another instead of
            // touching a random page per key.
            let mut by_hash = Vec::with_capacity(receipts.len());
            let mut by_account = Vec::with_capacity(receipts.len() * 2);
            let mut receipts_table = txn.open_table(RECEIPTS)?;
            for (i, (tx, receipt)) in block.txs.iter().zip(receipts).enumerate() {
                let index = u32::try_from(i).map_err(|_| StoreError::Corrupt("tx index"))?;
                let hash = receipt.tx_hash.0;
                by_hash.push((hash, index));
                receipts_table.insert((height, index), encode(receipt).as_slice())?;
                for account in tx.accounts() {
                    by_account.push((account.0, index, hash));
                }
            }
            by_hash.sort_unstable();
            by_account.sort_unstable();
            let mut txs = txn.open_table(TXS)?;
            for (hash, index) in by_hash {
                txs.insert(hash, (height, index))?;
            }
            let mut account_txs = txn.open_table(ACCOUNT_TXS)?;
            for (account, index, hash) in by_account {
                account_txs.insert((account, height, index), hash)?;
            }
            if let Some(certificate) = certificate {
                txn.open_table(CERTIFICATES)?.insert(height, certificate)?;
            }
            txn.open_table(META)?
                .insert(HEIGHT_KEY, encode(&height).as_slice())?;
            // Proposals for this height and below are settled.
            txn.open_table(PROPOSALS)?
                .retain_in(..=(height, [u8::MAX; 32]), |_, _| false)?;
            txn.open_table(OWN_PROPOSALS)?
                .retain_in(..=(height, u32::MAX), |_, _| false)?;
        }
        txn.commit()?;
        // A large block's state writes and tree nodes are tens of thousands of allocations:
        // they are freed beside the next block's work rather than before the commit returns
        // (inline when no thread can be started).
        if state.batch.node_batch.nodes().len() > 1024 {
            let _ = std::thread::Builder::new()
                .name("free-block-state".into())
                .spawn(move || drop(state));
        }
        Ok(())
    }

    /// Keeps a block proposed for a height not yet committed, durably; with `own_round`, as
    /// this node's proposal in that round.
    pub fn keep_proposal(&self, block: &Block, own_round: Option<u32>) -> Result<(), StoreError> {
        let height = block.header.height;
        let hash = block.hash().0;
        let txn = self.db.begin_write()?;
        {
            txn.open_table(PROPOSALS)?
                .insert((height, hash), encode(block).as_slice())?;
            if let Some(round) = own_round {
                txn.open_table(OWN_PROPOSALS)?
                    .insert((height, round), hash)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The proposals kept for heights above `height` (see [`Store::keep_proposal`]).
    pub fn kept_proposals(&self, height: u64) -> Result<KeptProposals, StoreError> {
        let txn = self.read()?;
        let above = height.saturating_add(1);
        let mut kept = KeptProposals::default();
        for entry in txn.open_table(PROPOSALS)?.range((above, [0u8; 32])..)? {
            let (_, bytes) = entry?;
            let block: Block =
                decode(bytes.value()).map_err(|_| StoreError::Corrupt("proposals"))?;
            kept.blocks.push(block);
        }
        for entry in txn.open_table(OWN_PROPOSALS)?.range((above, 0u32)..)? {
            let (key, hash) = entry?;
            let (h, round) = key.value();
            kept.own.push((h, round, Hash(hash.value())));
        }
        Ok(kept)
    }

    /// Events of the block at `height` that no transaction emitted (its begin and end: unbonded
    /// stake, subnet epochs).
    pub fn block_events(&self, height: u64) -> Result<Vec<hibana_types::Event>, StoreError> {
        let txn = self.read()?;
        let table = match txn.open_table(BLOCK_EVENTS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        match table.get(height)? {
            Some(bytes) => {
                hibana_types::decode(bytes.value()).map_err(|_| StoreError::Corrupt("block events"))
            }
            None => Ok(Vec::new()),
        }
    }

    /// The consensus certificate stored with the block at `height`, if any.
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let table = match txn.open_table(CERTIFICATES) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(table.get(height)?.map(|v| v.value().to_vec()))
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        let blocks = self.read()?.open_table(BLOCKS)?;
        match blocks.get(height)? {
            None => Ok(None),
            Some(v) => decode(v.value())
                .map(Some)
                .map_err(|_| StoreError::Corrupt("blocks")),
        }
    }

    /// The block with hash `hash`.
    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, StoreError> {
        let height = self
            .read()?
            .open_table(BLOCK_HASHES)?
            .get(hash.0)?
            .map(|v| v.value());
        match height {
            None => Ok(None),
            Some(h) => self.block(h),
        }
    }

    /// A committed transaction and its receipt.
    pub fn tx(&self, hash: &Hash) -> Result<Option<TxRecord>, StoreError> {
        let txn = self.read()?;
        let Some((height, index)) = txn.open_table(TXS)?.get(hash.0)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let receipt_bytes = txn
            .open_table(RECEIPTS)?
            .get((height, index))?
            .ok_or(StoreError::Corrupt("receipts"))?;
        let receipt: Receipt =
            decode(receipt_bytes.value()).map_err(|_| StoreError::Corrupt("receipts"))?;
        let block = self.block(height)?.ok_or(StoreError::Corrupt("blocks"))?;
        let tx = block
            .txs
            .into_iter()
            .nth(index as usize)
            .ok_or(StoreError::Corrupt("blocks"))?;
        Ok(Some(TxRecord { tx, receipt }))
    }

    /// Hashes of the most recent transactions that involve `account`, newest first.
    pub fn account_txs(&self, account: &Address, limit: usize) -> Result<Vec<Hash>, StoreError> {
        let table = self.read()?.open_table(ACCOUNT_TXS)?;
        let range = table.range((account.0, 0u64, 0u32)..=(account.0, u64::MAX, u32::MAX))?;
        let mut out = Vec::new();
        for entry in range.rev().take(limit) {
            out.push(Hash(entry?.1.value()));
        }
        Ok(out)
    }

    /// A read-only view of the state as it was at `version` (a committed height), read from
    /// the versioned Merkle tree: slower than [`Store::snapshot`], for rare historical reads.
    pub fn state_at(&self, version: Version) -> StateAt<'_> {
        StateAt {
            store: self,
            version,
        }
    }

    /// The value of a state key at `version`, with a proof against that version's root.
    pub fn get_with_proof(
        &self,
        key: &[u8],
        version: Version,
    ) -> Result<(Option<Vec<u8>>, StateProof), StoreError> {
        let view = TreeView::open(&self.read()?)?;
        let tree = JellyfishMerkleTree::<_, StateHasher>::new(&view);
        tree.get_with_proof(state_key_hash(key), version)
            .map_err(|e| StoreError::Tree(e.to_string()))
    }

    /// The state root at `version`.
    pub fn state_root(&self, version: Version) -> Result<Hash, StoreError> {
        let view = TreeView::open(&self.read()?)?;
        let tree = JellyfishMerkleTree::<_, StateHasher>::new(&view);
        tree.get_root_hash(version)
            .map(|r| Hash(r.0))
            .map_err(|e| StoreError::Tree(e.to_string()))
    }
}

fn write_state(txn: &redb::WriteTransaction, prepared: &PreparedState) -> Result<(), StoreError> {
    let mut state = txn.open_table(STATE)?;
    for (key, value) in &prepared.writes {
        match value {
            Some(v) => {
                state.insert(key.as_slice(), v.as_slice())?;
            }
            None => {
                state.remove(key.as_slice())?;
            }
        }
    }
    let mut nodes = txn.open_table(NODES)?;
    for (key, node) in prepared.batch.node_batch.nodes() {
        nodes.insert(encode(key).as_slice(), encode(node).as_slice())?;
    }
    let mut values = txn.open_table(VALUES)?;
    for ((version, key_hash), value) in prepared.batch.node_batch.values() {
        let stored = match value {
            Some(v) => {
                let mut s = Vec::with_capacity(v.len() + 1);
                s.push(1);
                s.extend_from_slice(v);
                s
            }
            None => vec![0],
        };
        values.insert((key_hash.0, *version), stored.as_slice())?;
    }
    Ok(())
}

/// Read access to the state tree inside one read transaction.
struct TreeView {
    nodes: ReadOnlyTable<&'static [u8], &'static [u8]>,
    values: ReadOnlyTable<([u8; 32], u64), &'static [u8]>,
}

impl TreeView {
    fn open(txn: &ReadTransaction) -> Result<TreeView, StoreError> {
        Ok(TreeView {
            nodes: txn.open_table(NODES)?,
            values: txn.open_table(VALUES)?,
        })
    }
}

impl TreeReader for TreeView {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        match self.nodes.get(encode(node_key).as_slice())? {
            None => Ok(None),
            Some(v) => Ok(Some(decode(v.value())?)),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let mut range = self
            .values
            .range((key_hash.0, 0u64)..=(key_hash.0, max_version))?;
        match range.next_back() {
            None => Ok(None),
            Some(entry) => {
                let (_, value) = entry?;
                let bytes = value.value();
                match bytes.split_first() {
                    Some((1, rest)) => Ok(Some(rest.to_vec())),
                    _ => Ok(None),
                }
            }
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("tree restoration is not supported")
    }
}

/// A consistent view of the committed state at one height.
pub struct Snapshot {
    state: ReadOnlyTable<&'static [u8], &'static [u8]>,
    tree: TreeView,
    height: u64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot(height {})", self.height)
    }
}

impl Snapshot {
    /// The height this view shows.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The value at `key` with a proof against this height's state root.
    pub fn get_with_proof(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, StateProof), StoreError> {
        let tree = JellyfishMerkleTree::<_, StateHasher>::new(&self.tree);
        tree.get_with_proof(state_key_hash(key), self.height)
            .map_err(|e| StoreError::Tree(e.to_string()))
    }
}

/// The state at a past height; see [`Store::state_at`].
#[derive(Clone, Copy)]
pub struct StateAt<'a> {
    store: &'a Store,
    version: Version,
}

impl std::fmt::Debug for StateAt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateAt({})", self.version)
    }
}

impl StateRead for StateAt<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.store.get_with_proof(key, self.version)?.0)
    }
}

impl StateRead for Snapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.state.get(key) {
            Ok(v) => Ok(v.map(|v| v.value().to_vec())),
            Err(e) => Err(StateError::Backend(e.to_string())),
        }
    }
}
