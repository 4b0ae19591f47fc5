//! Chain sync: reads the chain's subnets from a node and makes every miner a provider, with
//! the subnet, uid, incentive and model it registered.

use std::{collections::HashMap, sync::Arc};

use hibana_rpc::RpcClient;
use parking_lot::RwLock;

use super::providers::{Membership, ProviderHandle, Terms};

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
                    id: subnet.id,
                    subnet: subnet.name.clone(),
                    task: subnet.task.clone(),
                    uid: n.uid,
                    incentive: n.incentive as f64 / hibana_types::records::subnets::ONE as f64,
                    model: n.model.to_string(),
                    account: n.account,
                });
        }
    }
    found
}

/// The market's providers by endpoint (without a trailing `/`); none if they cannot be read.
pub(super) async fn market(
    chain: &RpcClient,
) -> Option<HashMap<String, hibana_types::records::market::Provider>> {
    match chain.market_providers().await {
        Ok(list) => Some(
            list.into_iter()
                .map(|p| (p.endpoint.trim_end_matches('/').to_string(), p))
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the market's providers");
            None
        }
    }
}

/// What the chain says of the provider at `url`: its market registration if there is one at
/// that endpoint, else its registration as a miner (which charges nothing).
fn terms(
    url: &str,
    memberships: &[Membership],
    market: &HashMap<String, hibana_types::records::market::Provider>,
) -> Option<Terms> {
    if let Some(p) = market.get(url) {
        return Some(Terms {
            address: p.address,
            price_per_token: p.price_per_token,
            models: p.attributes.models.clone(),
            market: true,
        });
    }
    let first = memberships.first()?;
    Some(Terms {
        address: first.account,
        price_per_token: hibana_types::Amount::ZERO,
        models: memberships
            .iter()
            .filter(|m| m.account == first.account)
            .filter_map(|m| m.model.parse().ok())
            .collect(),
        market: false,
    })
}

/// Records each miner's memberships and each provider's terms in `providers`, adding the
/// miners not known yet (called with `http`); a provider no longer mining loses its
/// memberships. Without the market's list (`market` is `None`) the terms stay as they were.
pub(super) fn apply(
    mut found: HashMap<String, Vec<Membership>>,
    market: Option<&HashMap<String, hibana_types::records::market::Provider>>,
    providers: &RwLock<Vec<Arc<ProviderHandle>>>,
    http: &reqwest::Client,
) {
    let mut providers = providers.write();
    for p in providers.iter() {
        let memberships = found.remove(&p.url).unwrap_or_default();
        let mut state = p.state.write();
        if let Some(market) = market {
            state.terms = terms(&p.url, &memberships, market);
        }
        state.subnets = memberships;
    }
    for (url, memberships) in found {
        let handle = ProviderHandle::new(&url, http.clone());
        {
            let mut state = handle.state.write();
            if let Some(market) = market {
                state.terms = terms(&url, &memberships, market);
            }
            state.subnets = memberships;
        }
        providers.push(handle);
    }
}
