//! Chain sync: reads the chain's subnets from a node and makes every miner a provider, with
//! the subnet, uid, incentive and model it registered.

use std::{collections::HashMap, sync::Arc};

use hibana_rpc::RpcClient;
use parking_lot::RwLock;

use super::providers::{Membership, ProviderHandle};

/// A client of the node whose JSON-RPC answers at `url`.
pub(super) fn connect(url: &str) -> Result<RpcClient, std::io::Error> {
    RpcClient::new(url).map_err(|e| std::io::Error::other(e.to_string()))
}

/// Every miner of the chain's subnets by endpoint (without a trailing `/`), with its
/// memberships; none if the subnets cannot be read.
pub(super) async fn miners(chain: &RpcClient) -> HashMap<String, Vec<Membership>> {
    let subnets = match chain.subnets().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the subnets");
            return HashMap::new();
        }
    };
    let mut found: HashMap<String, Vec<Membership>> = HashMap::new();
    for subnet in subnets {
        let Ok(Some(view)) = chain.subnet(&subnet.id.to_string()).await else {
            continue;
        };
        for n in view.neurons {
            if n.role != hibana_types::NeuronRole::Miner {
                continue;
            }
            found
                .entry(n.endpoint.trim_end_matches('/').to_string())
                .or_default()
                .push(Membership {
                    subnet: subnet.name.clone(),
                    task: subnet.task.clone(),
                    uid: n.uid,
                    incentive: n.incentive as f64 / hibana_types::records::subnets::ONE as f64,
                    model: n.model.to_string(),
                });
        }
    }
    found
}

/// Records each miner's memberships in `providers`, adding the miners not known yet (called
/// with `http`); a provider no longer mining loses its memberships.
pub(super) fn apply(
    mut found: HashMap<String, Vec<Membership>>,
    providers: &RwLock<Vec<Arc<ProviderHandle>>>,
    http: &reqwest::Client,
) {
    let mut providers = providers.write();
    for p in providers.iter() {
        p.state.write().subnets = found.remove(&p.url).unwrap_or_default();
    }
    for (url, memberships) in found {
        let handle = ProviderHandle::new(&url, http.clone());
        handle.state.write().subnets = memberships;
        providers.push(handle);
    }
}
