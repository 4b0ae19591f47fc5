//! JSON-RPC methods of the model network: subnets, neurons, weights and epoch emissions.

use hibana_types::Amount;
use hibana_types::records::subnets::{EpochSummary, Neuron, PendingCommit, Subnet, WeightsRecord};
#[cfg_attr(not(feature = "server"), allow(unused_imports))]
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

/// A subnet with its neurons and the tokens it mints per epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetView {
    /// Height the view was read at.
    pub height: u64,
    /// The subnet.
    pub subnet: Subnet,
    /// Tokens minted per epoch when some miner earned incentive.
    pub epoch_emission: Amount,
    /// Height of the next epoch.
    pub next_epoch: u64,
    /// Its neurons by uid, with their scores from the last epoch.
    pub neurons: Vec<Neuron>,
}

/// A validator's weights: revealed and still committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorWeights {
    /// The validator's uid.
    pub uid: u16,
    /// Its last revealed weights.
    pub revealed: Option<WeightsRecord>,
    /// Commitments waiting for their reveal.
    pub pending: Vec<PendingCommit>,
}

/// A subnet named by its id or its name: JSON gives a string (`"0"`, `"chat"`) or a number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SubnetKey(pub String);

impl<'de> Deserialize<'de> for SubnetKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Key {
            Text(String),
            Id(u64),
        }
        Ok(SubnetKey(match Key::deserialize(d)? {
            Key::Text(s) => s,
            Key::Id(id) => id.to_string(),
        }))
    }
}

/// The model network's JSON-RPC API.
#[cfg_attr(feature = "server", rpc(server, client))]
#[cfg_attr(not(feature = "server"), rpc(client))]
pub trait SubnetsApi {
    /// All subnets.
    #[method(name = "subnet_list")]
    async fn subnet_list(&self) -> RpcResult<Vec<Subnet>>;

    /// A subnet by id or name, with its neurons.
    #[method(name = "subnet_get")]
    async fn subnet_get(&self, subnet: SubnetKey) -> RpcResult<Option<SubnetView>>;

    /// Weights of every validator of a subnet.
    #[method(name = "subnet_weights")]
    async fn subnet_weights(&self, subnet: SubnetKey) -> RpcResult<Vec<ValidatorWeights>>;

    /// What the last epochs paid (newest first, at most `limit`, default 10).
    #[method(name = "subnet_emissions")]
    async fn subnet_emissions(
        &self,
        subnet: SubnetKey,
        limit: Option<u32>,
    ) -> RpcResult<Vec<EpochSummary>>;
}
