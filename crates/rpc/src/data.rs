//! JSON-RPC methods of the data network.

use hibana_types::Address;
use hibana_types::records::data::{Bounty, Dataset, DatasetLeaf, Item, Reviewer};
#[cfg_attr(not(feature = "server"), allow(unused_imports))]
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

/// A bounty with its reviewers, as of a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BountyView {
    /// Height the view was read at.
    pub height: u64,
    /// The bounty.
    pub bounty: Bounty,
    /// Its reviewers, in joining order.
    pub reviewers: Vec<Reviewer>,
}

/// Items as of a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemsView {
    /// Height the view was read at.
    pub height: u64,
    /// The items.
    pub items: Vec<Item>,
}

/// A finalised dataset with the leaves its root commits to, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetView {
    /// Height the view was read at.
    pub height: u64,
    /// The dataset.
    pub dataset: Dataset,
    /// Its leaves, in item order.
    pub leaves: Vec<DatasetLeaf>,
}

/// The data network's JSON-RPC API.
#[cfg_attr(feature = "server", rpc(server, client))]
#[cfg_attr(not(feature = "server"), rpc(client))]
pub trait DataApi {
    /// Bounties, open ones first and newest first, at most `limit` (default 100).
    #[method(name = "data_bounties")]
    async fn data_bounties(&self, limit: Option<usize>) -> RpcResult<Vec<Bounty>>;

    /// A bounty with its reviewers.
    #[method(name = "data_bounty")]
    async fn data_bounty(&self, id: u64) -> RpcResult<Option<BountyView>>;

    /// A page of a bounty's items in submission order, from position `from` (default 0), at
    /// most `limit` (default and most 1000).
    #[method(name = "data_items")]
    async fn data_items(
        &self,
        bounty: u64,
        from: Option<usize>,
        limit: Option<usize>,
    ) -> RpcResult<ItemsView>;

    /// An item by id.
    #[method(name = "data_item")]
    async fn data_item(&self, id: u64) -> RpcResult<Option<Item>>;

    /// The items awaiting `reviewer`'s commit or reveal.
    #[method(name = "data_assignments")]
    async fn data_assignments(&self, reviewer: Address) -> RpcResult<ItemsView>;

    /// A finalised dataset with its leaves.
    #[method(name = "data_dataset")]
    async fn data_dataset(&self, id: u64) -> RpcResult<Option<DatasetView>>;
}
