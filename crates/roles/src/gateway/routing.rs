//! Routing: the order in which a request's providers are tried. A model named by id or hash
//! goes to the healthy providers serving it, least loaded first; a subnet (by name or task)
//! goes to its miners in a random order weighted by incentive, latency, load and price (see
//! the gateway's documentation); the providers whose last health check failed come last,
//! fewest failures first, as the failover of last resort.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::http::StatusCode;
use hibana_types::{Hash, PublicKey};

use super::providers::{ProviderHandle, Terms};
use crate::openai::ApiError;

/// One provider to try for a request.
pub(super) struct Candidate {
    pub(super) provider: Arc<ProviderHandle>,
    /// The key its receipts must be signed with.
    pub(super) key: PublicKey,
    /// The model to ask it for, when the client named a subnet or a kind of model.
    pub(super) model: Option<String>,
    /// The content hash its receipt must name: the model it registered for the subnet, or
    /// the one it lists under the id asked for.
    pub(super) model_hash: Option<Hash>,
    /// Its registration on chain, if the gateway reads one.
    pub(super) terms: Option<Terms>,
}

/// Where to send a request for `model`, in the order to try; `next` rotates the order among
/// equally loaded providers.
pub(super) fn candidates(
    providers: &[Arc<ProviderHandle>],
    next: &AtomicUsize,
    model: &str,
) -> Result<Vec<Candidate>, ApiError> {
    let subnet_route = providers.iter().any(|p| {
        p.state
            .read()
            .subnets
            .iter()
            .any(|m| m.subnet == model || m.task == model)
    });
    if subnet_route {
        return subnet_candidates(providers, model);
    }
    let mut known = false;
    let mut out = Vec::new();
    let mut standby = Vec::new();
    let start = next.fetch_add(1, Ordering::Relaxed);
    let n = providers.len();
    for offset in 0..n {
        let p = &providers[(start + offset) % n.max(1)];
        let state = p.state.read();
        let Some(h) = &state.health else { continue };
        // A model named by id or hash goes as asked; one named by its kind (`audit`,
        // `chat`) goes to the provider's model of that kind, under its id.
        let target = match h.models.iter().find(|m| m.id == model || m.hash == model) {
            Some(m) => Some((None, m.hash.parse().ok())),
            None => h
                .models
                .iter()
                .find(|m| m.kind == model)
                .map(|m| (Some(m.id.clone()), m.hash.parse().ok())),
        };
        if let Some((rewrite, model_hash)) = target {
            known = true;
            let candidate = Candidate {
                provider: p.clone(),
                key: h.provider,
                model: rewrite,
                model_hash,
                terms: state.terms.clone(),
            };
            if state.healthy {
                let load = (h.active + state.in_flight) * 1000 / h.capacity.max(1);
                out.push((load, candidate));
            } else {
                standby.push((state.failures, candidate));
            }
        }
    }
    if !known {
        return Err(ApiError::model_not_found(model));
    }
    // Stable sort keeps the round-robin order among equally loaded providers.
    out.sort_by_key(|(load, _)| *load);
    standby.sort_by_key(|(failures, _)| *failures);
    Ok(out
        .into_iter()
        .map(|(_, c)| c)
        .chain(standby.into_iter().map(|(_, c)| c))
        .collect())
}

/// The healthy miners of the subnet named `name` (or serving task `name`), in a random
/// order weighted by incentive, latency, load and price; then the unhealthy ones.
fn subnet_candidates(
    providers: &[Arc<ProviderHandle>],
    name: &str,
) -> Result<Vec<Candidate>, ApiError> {
    let mut rows = Vec::new();
    let mut standby = Vec::new();
    for p in providers {
        let state = p.state.read();
        let Some(m) = state
            .subnets
            .iter()
            .find(|m| m.subnet == name)
            .or_else(|| state.subnets.iter().find(|m| m.task == name))
        else {
            continue;
        };
        let Some(h) = &state.health else { continue };
        if !state.healthy {
            standby.push((
                state.failures,
                Candidate {
                    provider: p.clone(),
                    key: h.provider,
                    model: Some(m.model.clone()),
                    model_hash: m.model.parse().ok(),
                    terms: state.terms.clone(),
                },
            ));
            continue;
        }
        let load = (h.active + state.in_flight) as f64 / h.capacity.max(1) as f64;
        let latency = state.latency_ms.unwrap_or(1000.0) / 1000.0;
        let weight = (m.incentive + 0.01) / ((1.0 + latency) * (1.0 + load));
        rows.push((
            weight,
            h.price(),
            p.clone(),
            h.provider,
            m.model.clone(),
            state.terms.clone(),
        ));
    }
    if rows.is_empty() && standby.is_empty() {
        return Err(ApiError::server(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no miner of subnet `{name}` is available right now; retry later"),
        ));
    }
    standby.sort_by_key(|(failures, _)| *failures);
    let cheapest = rows
        .iter()
        .filter_map(|r| r.1)
        .fold(f64::INFINITY, f64::min);
    // Weighted sampling without replacement (Efraimidis–Spirakis): sort by u^(1/w).
    let mut rng = rand::thread_rng();
    let mut keyed: Vec<(f64, Candidate)> = rows
        .into_iter()
        .map(|(weight, price, p, key, model, terms)| {
            let price_factor = match price {
                Some(pr) if pr > 0.0 && cheapest.is_finite() => (cheapest + 1.0) / (pr + 1.0),
                _ => 1.0,
            };
            let w = (weight * price_factor).max(1e-9);
            let u: f64 = rand::Rng::gen_range(&mut rng, f64::MIN_POSITIVE..1.0);
            (
                u.powf(1.0 / w),
                Candidate {
                    provider: p,
                    key,
                    model_hash: model.parse().ok(),
                    model: Some(model),
                    terms,
                },
            )
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(keyed
        .into_iter()
        .map(|(_, c)| c)
        .chain(standby.into_iter().map(|(_, c)| c))
        .collect())
}
