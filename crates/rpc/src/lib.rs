//! The JSON-RPC 2.0 API of a Hibana node, and the typed client that the CLI and off-chain roles
//! use.
//!
//! Methods: `chain_status`, `chain_getBlock`, `chain_getTx`, `chain_getAccountTxs`,
//! `state_getAccount` (with Merkle proofs that [`RpcClient::account_verified`] checks against the
//! block header's state root), `zk_getModel` and `zk_getInference` (registered ZK models and
//! verified inference results), `tx_submit`, `tx_status`, and the `chain_subscribeHeads`
//! subscription over WebSocket; for the model network `subnet_list`, `subnet_get`,
//! `subnet_weights` and `subnet_emissions`; for the compute market `market_providers`,
//! `market_provider`, `market_orders`, `market_order`, `market_leases`, `market_lease`,
//! `market_liveness`, `market_attestations`, `market_job`, `market_lease_job`, `market_job_steps`, `market_batch`, `market_batch_lines`, `market_batch_line` and `market_owed_lines`; for
//! payment channels `channel_get` and `channel_list`; for challenges against signed inference
//! receipts `verify_challenges` and `verify_challenge`; for the data network `data_bounties`,
//! `data_bounty`, `data_items`, `data_item`, `data_assignments` and `data_dataset`. The
//! server lives in `hibana-rpc-server` (this crate's
//! feature `server` only generates the server traits it implements), so a client links neither
//! the runtime nor the chain nor a prover: the records it reads come from `hibana-types`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hibana_rpc::ClientError> {
//! let client = hibana_rpc::RpcClient::new("http://127.0.0.1:26657")?;
//! let status = client.status().await?;
//! println!("{} at height {}", status.chain_id, status.height);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod api;
pub mod channels;
mod client;
pub mod data;
pub mod market;
pub mod subnets;
pub mod verify;

pub use api::{
    AbsenceView, AccountTxs, AccountWithProof, BlockId, BlockView, ChainStatus, Lookup, TxView,
    ZkInferenceView, ZkModelView,
};
pub use channels::ChannelsView;
pub use client::{ClientError, HeadSubscription, RpcClient, verify_account};
pub use data::{BountyView, DatasetView, ItemsView};
pub use market::{BatchView, JobView, LeaseView, LivenessView, OrderView};
pub use subnets::{SubnetView, ValidatorWeights};
pub use verify::{ChallengeView, ChallengeVote, ElectorView};
