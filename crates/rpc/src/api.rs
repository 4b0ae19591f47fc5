//! The JSON-RPC methods and the shapes they return.

use hibana_types::{AccountView, records::staking::ValidatorInfo};
use hibana_types::{Block, BlockHeader, Hash, Receipt, SignedTransaction, TxStatus};
// The client-only expansion rewrites the method signatures and leaves these unused.
#[cfg_attr(not(feature = "server"), allow(unused_imports))]
use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

/// Error code: the transaction was refused (bad signature, nonce, fee, funds, format).
pub const TX_REJECTED: i32 = 1001;
/// Error code: the mempool is full.
pub const MEMPOOL_FULL: i32 = 1002;
/// Error code: the transaction is already pending.
pub const DUPLICATE_TX: i32 = 1003;
/// Error code: the node's storage failed.
pub const NODE_ERROR: i32 = 1005;

/// The node's view of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// Chain id.
    pub chain_id: String,
    /// Latest committed height (0 = genesis only).
    pub height: u64,
    /// Hash of the latest block, if any.
    pub latest_block_hash: Option<Hash>,
    /// State root at the latest height.
    pub state_root: Hash,
    /// Time of the latest block (ms since the Unix epoch).
    pub latest_time_ms: u64,
    /// Pending transactions.
    pub mempool_size: usize,
    /// Smallest fee a transaction may pay.
    pub min_fee: hibana_types::Amount,
    /// The validator set.
    pub validators: Vec<ValidatorInfo>,
}

/// A block by height or by hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    /// A height.
    Height(u64),
    /// A block hash (hex).
    Hash(Hash),
}

/// A block with its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// The block hash.
    pub hash: Hash,
    /// The block.
    pub block: Block,
    /// The hashes of its transactions, in order (what `chain_getTx` takes).
    #[serde(default)]
    pub tx_hashes: Vec<Hash>,
}

/// A committed transaction with its receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxView {
    /// The transaction hash.
    pub hash: Hash,
    /// The transaction.
    pub tx: SignedTransaction,
    /// Its receipt.
    pub receipt: Receipt,
}

/// An account with Merkle proofs of its state entries against the state root at `height`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountWithProof {
    /// The height the values and proofs are taken at.
    pub height: u64,
    /// The state root at that height (also in that block's header).
    pub state_root: Hash,
    /// The account.
    pub account: AccountView,
    /// The raw account entry (hex), absent if the account was never touched.
    pub account_entry: Option<String>,
    /// Proof of the account entry (hex of the borsh-encoded proof).
    pub account_proof: String,
    /// The raw delegations entry (hex), absent if it has none.
    pub delegations_entry: Option<String>,
    /// Proof of the delegations entry (hex).
    pub delegations_proof: String,
}

/// A block header with the commit that decided it and the validator set that signed it
/// (`chain_getCommit`): what a light client needs to check the header without trusting the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitView {
    /// The header.
    pub header: BlockHeader,
    /// The precommit signatures that decided it.
    pub commit: hibana_types::light::Commit,
    /// The set that decided the block: staking's recorded set in the state before it.
    pub validators: Vec<ValidatorInfo>,
    /// That set's stored entry (hex of its borsh encoding), which `validators_proof` proves.
    pub validators_entry: Option<String>,
    /// Merkle proof of the entry under the header's `app_hash` (hex of the borsh-encoded proof).
    pub validators_proof: String,
}

/// Recent transactions of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountTxs {
    /// Transaction hashes, newest first.
    pub txs: Vec<Hash>,
}

/// A model registered for zero-knowledge inference (`zk_getModel`), with a Merkle proof of its
/// record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZkModelView {
    /// Model commitment (hex): the content hash of the quantised model.
    pub commitment: String,
    /// Who registered it.
    pub owner: hibana_types::Address,
    /// log2 of the circuit's rows.
    pub k: u32,
    /// Shape of one input.
    pub input_shape: Vec<u32>,
    /// Shape of the output.
    pub output_shape: Vec<u32>,
    /// Fractional bits of the output values.
    pub output_scale: u32,
    /// Height of registration.
    pub registered_at: u64,
    /// Size of the stored `.zkm`, in bytes.
    pub zkm_bytes: usize,
    /// Fee the chain charges to verify one proof of this model, in base units.
    pub verification_fee: hibana_types::Amount,
    /// Height the answer was read at.
    pub height: u64,
    /// State root at `height` (also in that block's header).
    pub state_root: Hash,
    /// The stored record (hex of its borsh encoding), which `proof` proves.
    pub entry: String,
    /// Merkle proof of `entry` under `state_root` (hex of the borsh-encoded proof).
    pub proof: String,
}

/// Proof that no record is stored under the key asked for: a Merkle proof of absence against
/// the state root at `height`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsenceView {
    /// Always true: tells this answer from a found record.
    pub absent: bool,
    /// Height the answer was read at.
    pub height: u64,
    /// State root at `height` (also in that block's header).
    pub state_root: Hash,
    /// Merkle proof that the key holds nothing under `state_root` (hex of the borsh-encoded
    /// proof).
    pub proof: String,
}

/// A record with its proof, or the proof that there is none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Lookup<T> {
    /// The record.
    Found(T),
    /// Nothing is stored.
    Absent(AbsenceView),
}

/// A proved inference verified on chain (`zk_getInference`), with a Merkle proof of its record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZkInferenceView {
    /// The result id (hex): blake3 of the proof file.
    pub id: String,
    /// Model commitment (hex).
    pub model: String,
    /// Commitment to the input (hex).
    pub input_commitment: String,
    /// The quantised input, when the prover revealed it.
    pub public_input: Option<Vec<i64>>,
    /// Quantised output.
    pub output: Vec<i64>,
    /// The output as real numbers (`output / 2^output_scale`).
    pub output_values: Vec<f64>,
    /// Predicted class.
    pub class: u32,
    /// Who submitted it.
    pub submitter: hibana_types::Address,
    /// Height of inclusion.
    pub included_at: u64,
    /// Height the answer was read at.
    pub height: u64,
    /// State root at `height` (also in that block's header).
    pub state_root: Hash,
    /// The stored record (hex of its borsh encoding), which `proof` proves.
    pub entry: String,
    /// Merkle proof of `entry` under `state_root` (hex of the borsh-encoded proof).
    pub proof: String,
}

/// The node's JSON-RPC API.
#[cfg_attr(feature = "server", rpc(server, client))]
#[cfg_attr(not(feature = "server"), rpc(client))]
pub trait HibanaApi {
    /// Chain id, height, latest block and validator set.
    #[method(name = "chain_status")]
    async fn chain_status(&self) -> RpcResult<ChainStatus>;

    /// A block by height or hash; the latest when omitted.
    #[method(name = "chain_getBlock")]
    async fn chain_get_block(&self, id: Option<BlockId>) -> RpcResult<Option<BlockView>>;

    /// The commit that decided the block at `height`, with the validator set that signed it
    /// and its proof; `null` if the node has no commit for it.
    #[method(name = "chain_getCommit")]
    async fn chain_get_commit(&self, height: u64) -> RpcResult<Option<CommitView>>;

    /// A committed transaction and its receipt.
    #[method(name = "chain_getTx")]
    async fn chain_get_tx(&self, hash: String) -> RpcResult<Option<TxView>>;

    /// Events of a block that no transaction emitted: its begin and end (returned unbonded
    /// stake, subnet epochs).
    #[method(name = "chain_getBlockEvents")]
    async fn chain_get_block_events(&self, height: u64) -> RpcResult<Vec<hibana_types::Event>>;

    /// Recent transactions of an account (newest first, at most `limit`, default 20).
    #[method(name = "chain_getAccountTxs")]
    async fn chain_get_account_txs(
        &self,
        address: String,
        limit: Option<u32>,
    ) -> RpcResult<AccountTxs>;

    /// Balance, nonce and stake of an account, with Merkle proofs.
    #[method(name = "state_getAccount")]
    async fn state_get_account(&self, address: String) -> RpcResult<AccountWithProof>;

    /// A model registered for ZK inference, by its commitment (hex); `null` if not registered.
    #[method(name = "zk_getModel")]
    async fn zk_get_model(&self, commitment: String) -> RpcResult<Lookup<ZkModelView>>;

    /// A verified ZK inference by its result id (hex); `null` if there is none.
    #[method(name = "zk_getInference")]
    async fn zk_get_inference(&self, id: String) -> RpcResult<Lookup<ZkInferenceView>>;

    /// Submits a signed transaction (hex of its borsh encoding); returns its hash.
    #[method(name = "tx_submit")]
    async fn tx_submit(&self, tx: String) -> RpcResult<Hash>;

    /// Pending, committed (with receipt), rejected (with reason) or unknown.
    #[method(name = "tx_status")]
    async fn tx_status(&self, hash: String) -> RpcResult<TxStatus>;

    /// Notifies every committed block header.
    #[subscription(name = "chain_subscribeHeads" => "chain_newHead", unsubscribe = "chain_unsubscribeHeads", item = BlockHeader)]
    async fn chain_subscribe_heads(&self) -> SubscriptionResult;
}
