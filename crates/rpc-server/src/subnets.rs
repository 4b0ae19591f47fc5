//! The model network's JSON-RPC methods over a node's chain.

use std::sync::Arc;

use hibana_consensus::Chain;
use hibana_runtime::{StateRead, subnets};
use hibana_types::NeuronRole;
use jsonrpsee::core::{RpcResult, async_trait};

use hibana_rpc::subnets::{SubnetKey, SubnetView, SubnetsApiServer, ValidatorWeights};

use crate::errors::{invalid_params, node_error};

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
    find(state, key)?.ok_or_else(|| invalid_params(format!("no subnet with id or name {key:?}")))
}

#[async_trait]
impl SubnetsApiServer for SubnetsHandler {
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
        Ok(Some(SubnetView {
            height,
            epoch_emission: subnets::epoch_emission(&subnet.params),
            next_epoch: subnet.next_epoch(height),
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
