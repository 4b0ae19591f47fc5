//! JSON-RPC methods of the compute market: providers, orders with their bids, leases, and the
//! training jobs on them with their committed step hashes.

use hibana_types::records::market::{
    Attestation, BatchJob, Bid, Job, Lease, LineRequest, Liveness, Order, Provider,
};
use hibana_types::{Address, Amount, Hash};
#[cfg_attr(not(feature = "server"), allow(unused_imports))]
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

/// An order with its bids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Height the view was read at.
    pub height: u64,
    /// The order.
    pub order: Order,
    /// Its bids, by provider (empty once matched, closed or expired).
    pub bids: Vec<Bid>,
}

/// A lease as of a height, with what settling it then would pay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseView {
    /// Height the view was read at.
    pub height: u64,
    /// The lease.
    pub lease: Lease,
    /// What a withdrawal at `height` would pay the provider.
    pub withdrawable: Amount,
    /// Whether settling at `height` would find the escrow exhausted.
    pub overdrawn: bool,
    /// The last height the lease pays for, as its provider's liveness stands (none while the
    /// provider keeps proving it is up beyond `height`).
    #[serde(default)]
    pub paid_until: Option<u64>,
}

/// A provider's liveness as of a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivenessView {
    /// Height the view was read at.
    pub height: u64,
    /// Its liveness (none for a provider registered before liveness was kept).
    pub liveness: Option<Liveness>,
    /// The chain's liveness interval, in blocks.
    pub liveness_blocks: u64,
}

/// A training job as of a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// Height the view was read at.
    pub height: u64,
    /// The job.
    pub job: Job,
}

/// A batch inference job as of a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchView {
    /// Height the view was read at.
    pub height: u64,
    /// The batch.
    pub batch: BatchJob,
}

/// The compute market's JSON-RPC API.
#[cfg_attr(feature = "server", rpc(server, client))]
#[cfg_attr(not(feature = "server"), rpc(client))]
pub trait MarketApi {
    /// The registered providers.
    #[method(name = "market_providers")]
    async fn market_providers(&self) -> RpcResult<Vec<Provider>>;

    /// A provider by address.
    #[method(name = "market_provider")]
    async fn market_provider(&self, address: Address) -> RpcResult<Option<Provider>>;

    /// The open orders.
    #[method(name = "market_orders")]
    async fn market_orders(&self) -> RpcResult<Vec<Order>>;

    /// An order by id, with its bids.
    #[method(name = "market_order")]
    async fn market_order(&self, id: u64) -> RpcResult<Option<OrderView>>;

    /// The active leases an account owns or serves.
    #[method(name = "market_leases")]
    async fn market_leases(&self, account: Address) -> RpcResult<Vec<LeaseView>>;

    /// A lease by id (closed ones too).
    #[method(name = "market_lease")]
    async fn market_lease(&self, id: u64) -> RpcResult<Option<LeaseView>>;

    /// A provider's liveness: last heartbeat, missed checks, reputation, listed.
    #[method(name = "market_liveness")]
    async fn market_liveness(&self, address: Address) -> RpcResult<LivenessView>;

    /// The validators' attestations of a provider's attributes.
    #[method(name = "market_attestations")]
    async fn market_attestations(&self, address: Address) -> RpcResult<Vec<Attestation>>;

    /// A training job by id.
    #[method(name = "market_job")]
    async fn market_job(&self, id: u64) -> RpcResult<Option<JobView>>;

    /// The id of the training job that runs (or ran last) on a lease.
    #[method(name = "market_lease_job")]
    async fn market_lease_job(&self, lease: u64) -> RpcResult<Option<u64>>;

    /// The provider's committed hash after each step of one checkpoint of a job (checkpoint
    /// `index` covers steps `index × checkpoint_every + 1 …`); empty once pruned.
    #[method(name = "market_job_steps")]
    async fn market_job_steps(&self, id: u64, index: u64) -> RpcResult<Vec<Hash>>;

    /// A batch inference job by id.
    #[method(name = "market_batch")]
    async fn market_batch(&self, id: u64) -> RpcResult<Option<BatchView>>;

    /// The lines of a batch requested on chain, in the order asked (while the batch is
    /// disputable); posted lines come without their request and response bytes.
    #[method(name = "market_batch_lines")]
    async fn market_batch_lines(&self, batch: u64) -> RpcResult<Vec<LineRequest>>;

    /// One requested line of a batch, whole with its posted line once posted.
    #[method(name = "market_batch_line")]
    async fn market_batch_line(&self, batch: u64, line: u32) -> RpcResult<Option<LineRequest>>;

    /// The line requests a provider has yet to post, soonest deadline first.
    #[method(name = "market_owed_lines")]
    async fn market_owed_lines(&self, provider: Address) -> RpcResult<Vec<LineRequest>>;
}
