//! The data network's JSON-RPC methods over a node's chain.

use std::sync::Arc;

use hibana_consensus::Chain;
use hibana_runtime::data;
use hibana_types::Address;
use hibana_types::records::data::Item;
use jsonrpsee::core::{RpcResult, async_trait};

use hibana_rpc::data::{BountyView, DataApiServer, DatasetView, ItemsView};

use crate::errors::node_error;

/// The data methods over a node's chain.
#[derive(Debug, Clone)]
pub(crate) struct DataHandler {
    pub(crate) chain: Arc<Chain>,
}

#[async_trait]
impl DataApiServer for DataHandler {
    async fn data_bounties(
        &self,
        limit: Option<usize>,
    ) -> RpcResult<Vec<hibana_types::records::data::Bounty>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        data::query::list_bounties(&snapshot, limit.unwrap_or(100).min(1_000)).map_err(node_error)
    }

    async fn data_bounty(&self, id: u64) -> RpcResult<Option<BountyView>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        Ok(data::query::bounty_with_reviewers(&snapshot, id)
            .map_err(node_error)?
            .map(|(bounty, reviewers)| BountyView {
                height: snapshot.height(),
                bounty,
                reviewers,
            }))
    }

    async fn data_items(
        &self,
        bounty: u64,
        from: Option<usize>,
        limit: Option<usize>,
    ) -> RpcResult<ItemsView> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        let limit = limit.unwrap_or(data::query::MAX_ITEMS_PER_PAGE);
        Ok(ItemsView {
            height: snapshot.height(),
            items: data::query::items_page(&snapshot, bounty, from.unwrap_or(0), limit)
                .map_err(node_error)?,
        })
    }

    async fn data_item(&self, id: u64) -> RpcResult<Option<Item>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        data::item(&snapshot, id).map_err(node_error)
    }

    async fn data_assignments(&self, reviewer: Address) -> RpcResult<ItemsView> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        Ok(ItemsView {
            height: snapshot.height(),
            items: data::query::pending_reviews(&snapshot, &reviewer).map_err(node_error)?,
        })
    }

    async fn data_dataset(&self, id: u64) -> RpcResult<Option<DatasetView>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        Ok(data::query::dataset_with_leaves(&snapshot, id)
            .map_err(node_error)?
            .map(|(dataset, leaves)| DatasetView {
                height: snapshot.height(),
                dataset,
                leaves,
            }))
    }
}
