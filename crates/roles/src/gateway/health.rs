//! Health checks: polls every provider's `/health` for its key, models, load and price, and
//! pins the first key a provider reports.

use std::{sync::Arc, time::Duration};

use super::providers::{Health, ProviderHandle};
use crate::limits;

/// Polls the health of each of `providers` once.
pub(super) async fn check(providers: &[Arc<ProviderHandle>]) {
    for p in providers {
        let health = p
            .http
            .get(format!("{}/health", p.url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success());
        let health = match health {
            Some(r) => limits::read_json::<Health>(r, limits::MAX_HEALTH_BYTES)
                .await
                .ok(),
            None => None,
        };
        let mut state = p.state.write();
        state.healthy = health.is_some();
        if let Some(h) = health {
            // The first key seen is pinned: a provider that changes keys is a different one.
            if state
                .health
                .as_ref()
                .is_some_and(|old| old.provider != h.provider)
            {
                tracing::warn!(url = %p.url, "provider key changed; ignoring it");
                state.healthy = false;
                continue;
            }
            state.health = Some(h);
        }
    }
}
