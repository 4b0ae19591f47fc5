//! The compute market's JSON-RPC methods over a node's chain.

use std::sync::Arc;

use hibana_consensus::Chain;
use hibana_runtime::market::{self, Lease, LeaseStatus};
use hibana_types::Address;
use hibana_types::records::market::{Order, Provider};
use jsonrpsee::core::{RpcResult, async_trait};

use hibana_rpc::market::{JobView, LeaseView, LivenessView, MarketApiServer, OrderView};

use crate::errors::node_error;

/// The market methods over a node's chain.
#[derive(Debug, Clone)]
pub(crate) struct MarketHandler {
    pub(crate) chain: Arc<Chain>,
}

/// A lease with what settling it at `height` would pay, as its provider's liveness stands.
fn view<S: hibana_runtime::StateRead + ?Sized>(
    state: &S,
    lease: Lease,
    height: u64,
) -> Result<LeaseView, hibana_runtime::StateError> {
    let (withdrawable, overdrawn) = if lease.status == LeaseStatus::Active {
        market::owed(state, &lease, height)?
    } else {
        (hibana_types::Amount::ZERO, false)
    };
    let live_until = market::live_until(state, &lease.provider)?;
    let paid_until = (lease.status == LeaseStatus::Active
        && live_until < height.min(lease.ends_at))
    .then_some(live_until);
    Ok(LeaseView {
        height,
        lease,
        withdrawable,
        overdrawn,
        paid_until,
    })
}

#[async_trait]
impl MarketApiServer for MarketHandler {
    async fn market_providers(&self) -> RpcResult<Vec<Provider>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        market::query::providers(&snapshot).map_err(node_error)
    }

    async fn market_provider(&self, address: Address) -> RpcResult<Option<Provider>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        market::provider(&snapshot, &address).map_err(node_error)
    }

    async fn market_orders(&self) -> RpcResult<Vec<Order>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        market::query::open_orders(&snapshot).map_err(node_error)
    }

    async fn market_order(&self, id: u64) -> RpcResult<Option<OrderView>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        let height = snapshot.height();
        Ok(market::query::order_with_bids(&snapshot, id)
            .map_err(node_error)?
            .map(|(order, bids)| OrderView {
                height,
                order,
                bids,
            }))
    }

    async fn market_leases(&self, account: Address) -> RpcResult<Vec<LeaseView>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        let height = snapshot.height();
        market::query::active_leases(&snapshot, &account)
            .map_err(node_error)?
            .into_iter()
            .map(|l| view(&snapshot, l, height).map_err(node_error))
            .collect()
    }

    async fn market_lease(&self, id: u64) -> RpcResult<Option<LeaseView>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        let height = snapshot.height();
        market::lease(&snapshot, id)
            .map_err(node_error)?
            .map(|l| view(&snapshot, l, height).map_err(node_error))
            .transpose()
    }

    async fn market_liveness(&self, address: Address) -> RpcResult<LivenessView> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        Ok(LivenessView {
            height: snapshot.height(),
            liveness: market::liveness(&snapshot, &address).map_err(node_error)?,
            liveness_blocks: market::market_params(&snapshot)
                .map_err(node_error)?
                .liveness_blocks,
        })
    }

    async fn market_attestations(
        &self,
        address: Address,
    ) -> RpcResult<Vec<hibana_types::records::market::Attestation>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        market::attestations(&snapshot, &address).map_err(node_error)
    }

    async fn market_job(&self, id: u64) -> RpcResult<Option<JobView>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        let height = snapshot.height();
        Ok(market::job(&snapshot, id)
            .map_err(node_error)?
            .map(|job| JobView { height, job }))
    }

    async fn market_lease_job(&self, lease: u64) -> RpcResult<Option<u64>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        market::job_of_lease(&snapshot, lease).map_err(node_error)
    }

    async fn market_job_steps(&self, id: u64, index: u64) -> RpcResult<Vec<hibana_types::Hash>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        market::checkpoint_hashes(&snapshot, id, index).map_err(node_error)
    }

    async fn market_batch(&self, id: u64) -> RpcResult<Option<hibana_rpc::BatchView>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        let height = snapshot.height();
        Ok(market::batch(&snapshot, id)
            .map_err(node_error)?
            .map(|batch| hibana_rpc::BatchView { height, batch }))
    }

    async fn market_batch_lines(
        &self,
        batch: u64,
    ) -> RpcResult<Vec<hibana_types::records::market::LineRequest>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        market::line_requests(&snapshot, batch).map_err(node_error)
    }

    async fn market_owed_lines(
        &self,
        provider: Address,
    ) -> RpcResult<Vec<hibana_types::records::market::LineRequest>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        let from = snapshot.height() + 1;
        market::owed_lines(&snapshot, &provider, from).map_err(node_error)
    }

    async fn market_batch_line(
        &self,
        batch: u64,
        line: u32,
    ) -> RpcResult<Option<hibana_types::records::market::LineRequest>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        market::line_request(&snapshot, batch, line).map_err(node_error)
    }
}
