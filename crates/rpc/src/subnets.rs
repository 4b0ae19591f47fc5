//! JSON-RPC methods of the model network: subnets, neurons, weights and epoch emissions.

use hibana_runtime::subnets::{EpochSummary, Neuron, PendingCommit, Subnet, WeightsRecord};
use hibana_types::Amount;
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

#[cfg(feature = "server")]
pub(crate) mod server {
    use std::sync::Arc;

    use hibana_consensus::Chain;
    use hibana_runtime::{StateRead, subnets};
    use hibana_types::NeuronRole;
    use jsonrpsee::core::{RpcResult, async_trait};

    use super::{SubnetKey, SubnetView, ValidatorWeights};
    use crate::server::{invalid_params, node_error};

    /// The subnet methods over a node's chain.
    #[derive(Debug, Clone)]
    pub(crate) struct SubnetsHandler {
        pub(crate) chain: Arc<Chain>,
    }

    fn find<S: StateRead + ?Sized>(state: &S, key: &str) -> RpcResult<Option<subnets::Subnet>> {
        let found = match key.trim().parse::<u32>() {
            Ok(id) => subnets::subnet(state, id),
            Err(_) => subnets::subnet_by_name(state, key.trim()),
        };
        found.map_err(node_error)
    }

    fn required<S: StateRead + ?Sized>(state: &S, key: &str) -> RpcResult<subnets::Subnet> {
        find(state, key)?
            .ok_or_else(|| invalid_params(format!("no subnet with id or name {key:?}")))
    }

    #[async_trait]
    impl super::SubnetsApiServer for SubnetsHandler {
        async fn subnet_list(&self) -> RpcResult<Vec<subnets::Subnet>> {
            let snapshot = self.chain.store().snapshot().map_err(node_error)?;
            let mut out = Vec::new();
            for id in subnets::subnet_ids(&snapshot).map_err(node_error)? {
                if let Some(s) = subnets::subnet(&snapshot, id).map_err(node_error)? {
                    out.push(s);
                }
            }
            Ok(out)
        }

        async fn subnet_get(&self, subnet: SubnetKey) -> RpcResult<Option<SubnetView>> {
            let snapshot = self.chain.store().snapshot().map_err(node_error)?;
            let Some(subnet) = find(&snapshot, &subnet.0)? else {
                return Ok(None);
            };
            let neurons = subnets::neurons(&snapshot, subnet.id).map_err(node_error)?;
            let height = snapshot.height();
            let tempo = subnet.params.tempo.max(1);
            let since = height.saturating_sub(subnet.created_at);
            Ok(Some(SubnetView {
                height,
                epoch_emission: subnets::epoch_emission(&subnet.params),
                next_epoch: subnet.created_at + (since / tempo + 1) * tempo,
                subnet,
                neurons,
            }))
        }

        async fn subnet_weights(&self, subnet: SubnetKey) -> RpcResult<Vec<ValidatorWeights>> {
            let snapshot = self.chain.store().snapshot().map_err(node_error)?;
            let subnet = required(&snapshot, &subnet.0)?;
            let mut out = Vec::new();
            for n in subnets::neurons(&snapshot, subnet.id).map_err(node_error)? {
                if n.role != NeuronRole::Validator {
                    continue;
                }
                out.push(ValidatorWeights {
                    uid: n.uid,
                    revealed: subnets::weights(&snapshot, subnet.id, n.uid).map_err(node_error)?,
                    pending: subnets::pending_commits(&snapshot, subnet.id, n.uid)
                        .map_err(node_error)?,
                });
            }
            Ok(out)
        }

        async fn subnet_emissions(
            &self,
            subnet: SubnetKey,
            limit: Option<u32>,
        ) -> RpcResult<Vec<subnets::EpochSummary>> {
            let snapshot = self.chain.store().snapshot().map_err(node_error)?;
            let subnet = required(&snapshot, &subnet.0)?;
            let limit = u64::from(limit.unwrap_or(10)).min(subnets::HISTORY_EPOCHS);
            let mut out = Vec::new();
            let mut epoch = subnet.epochs;
            while epoch > 0 && (out.len() as u64) < limit {
                if let Some(s) =
                    subnets::epoch_summary(&snapshot, subnet.id, epoch).map_err(node_error)?
                {
                    out.push(s);
                }
                epoch -= 1;
            }
            Ok(out)
        }
    }
}
