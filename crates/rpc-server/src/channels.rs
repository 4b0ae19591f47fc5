//! The payment channels' JSON-RPC methods over a node's chain.

use std::sync::Arc;

use hibana_consensus::Chain;
use hibana_runtime::channels;
use hibana_types::Address;
use jsonrpsee::core::{RpcResult, async_trait};

use hibana_rpc::channels::{ChannelsApiServer, ChannelsView};

use crate::errors::node_error;

/// The channel methods over a node's chain.
#[derive(Debug, Clone)]
pub(crate) struct ChannelsHandler {
    pub(crate) chain: Arc<Chain>,
}

#[async_trait]
impl ChannelsApiServer for ChannelsHandler {
    async fn channel_get(&self, id: u64) -> RpcResult<ChannelsView> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        Ok(ChannelsView {
            height: snapshot.height(),
            channels: channels::channel(&snapshot, id)
                .map_err(node_error)?
                .into_iter()
                .collect(),
        })
    }

    async fn channel_list(
        &self,
        payer: Address,
        payee: Option<Address>,
    ) -> RpcResult<ChannelsView> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        Ok(ChannelsView {
            height: snapshot.height(),
            channels: channels::query::open_channels(&snapshot, &payer, payee.as_ref())
                .map_err(node_error)?,
        })
    }
}
