//! JSON-RPC methods of the payment channels.

use hibana_types::Address;
use hibana_types::records::channels::Channel;
#[cfg_attr(not(feature = "server"), allow(unused_imports))]
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

/// Channels as of a height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelsView {
    /// Height the view was read at.
    pub height: u64,
    /// The channels, by id.
    pub channels: Vec<Channel>,
}

/// The payment channels' JSON-RPC API.
#[cfg_attr(feature = "server", rpc(server, client))]
#[cfg_attr(not(feature = "server"), rpc(client))]
pub trait ChannelsApi {
    /// A channel by id (closed ones too), as of the latest height.
    #[method(name = "channel_get")]
    async fn channel_get(&self, id: u64) -> RpcResult<ChannelsView>;

    /// The open channels `payer` funds; with a `payee`, only those paying it.
    #[method(name = "channel_list")]
    async fn channel_list(&self, payer: Address, payee: Option<Address>)
    -> RpcResult<ChannelsView>;
}
