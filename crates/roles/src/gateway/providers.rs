//! The gateway's view of each provider: what its last health check reported, the subnets it
//! mines for, its load, latency and failures. Health checks and chain sync write it, routing
//! reads it, and every answer updates it.

use std::{sync::Arc, time::Duration};

use hibana_types::{Address, Amount, Hash, PublicKey};
use parking_lot::RwLock;
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

/// Requests the gateway sends one provider at once, per generation it reports decoding
/// together (its `capacity`): enough to keep it busy, few enough that none waits long in its
/// queue. A provider with that many is skipped; when every provider of a model is, 429.
pub const IN_FLIGHT_PER_PROVIDER_SLOT: usize = 4;

/// A model a provider reports serving.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct HealthModel {
    pub(super) id: String,
    pub(super) hash: String,
    /// `chat`, `completion`, `embedding`, `zk` or `audit`.
    #[serde(default)]
    pub(super) kind: String,
}

/// A provider's `/health` report.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Health {
    pub(super) provider: PublicKey,
    pub(super) models: Vec<HealthModel>,
    pub(super) active: usize,
    pub(super) capacity: usize,
    #[serde(default)]
    price_per_token: Option<serde_json::Value>,
}

impl Health {
    /// The price per token it reports, if any.
    pub(super) fn price(&self) -> Option<f64> {
        match self.price_per_token.as_ref()? {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// A provider's place in a subnet, read from the chain.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Membership {
    /// The subnet's id.
    pub(super) id: u32,
    pub(super) subnet: String,
    pub(super) task: String,
    pub(super) uid: u16,
    /// Incentive from the last epoch, as a fraction.
    pub(super) incentive: f64,
    /// The model hash it registered.
    pub(super) model: String,
    /// The account it registered with: its receipts must be signed by that account's key.
    pub(super) account: Address,
}

/// What the chain says of a provider: who it is, what it charges and serves. A receipt is
/// checked against these, never against what the provider says of itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct Terms {
    /// Its account: receipts must be signed by the key of this address.
    pub(super) address: Address,
    /// Most it may charge per token (0 for a miner that is not a market provider).
    pub(super) price_per_token: Amount,
    /// The model hashes it registered.
    pub(super) models: Vec<Hash>,
    /// Registered in the compute market (with a bond that a challenge can slash).
    pub(super) market: bool,
}

/// What the gateway knows of one provider.
#[derive(Debug, Default)]
pub(super) struct ProviderState {
    pub(super) health: Option<Health>,
    pub(super) healthy: bool,
    pub(super) in_flight: usize,
    /// Moving average of answer latency, in milliseconds.
    pub(super) latency_ms: Option<f64>,
    pub(super) served: u64,
    pub(super) failures: u64,
    pub(super) subnets: Vec<Membership>,
    /// Its registration on chain, when the gateway reads a chain.
    pub(super) terms: Option<Terms>,
}

/// A provider by base URL, with what the gateway knows of it.
#[derive(Debug)]
pub(super) struct ProviderHandle {
    pub(super) url: String,
    /// The client that calls it: an operator's provider is called as configured, a miner
    /// named on chain only at a public address unless the gateway allows any.
    pub(super) http: reqwest::Client,
    pub(super) state: RwLock<ProviderState>,
}

impl ProviderHandle {
    /// A provider at `url` that nothing is known of yet.
    pub(super) fn new(url: &str, http: reqwest::Client) -> Arc<ProviderHandle> {
        Arc::new(ProviderHandle {
            url: url.trim_end_matches('/').to_string(),
            http,
            state: RwLock::default(),
        })
    }

    /// Counts an answer that took `elapsed`.
    pub(super) fn served(&self, elapsed: Duration) {
        let mut s = self.state.write();
        let ms = elapsed.as_secs_f64() * 1e3;
        s.latency_ms = Some(s.latency_ms.map_or(ms, |old| 0.8 * old + 0.2 * ms));
        s.served += 1;
    }

    /// Counts a failure: the provider is unhealthy until its next good health check.
    pub(super) fn failed(&self) {
        let mut state = self.state.write();
        state.healthy = false;
        state.failures += 1;
    }
}

/// A request counted against the gateway's bound on requests in flight, until the last clone
/// is dropped (a stream's relay holds one until the stream ends).
#[derive(Clone)]
pub(super) struct Slot {
    _permit: Arc<OwnedSemaphorePermit>,
}

impl Slot {
    /// A request holding `permit` of the gateway's requests in flight.
    pub(super) fn new(permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            _permit: Arc::new(permit),
        }
    }
}

/// A request counted in its provider's `in_flight` until dropped: when its answer is done, and
/// also when the client hangs up and the handler is dropped mid-request. It also holds the
/// request's gateway [`Slot`], so a relayed stream keeps its slot until it ends.
pub(super) struct InFlight {
    provider: Arc<ProviderHandle>,
    _slot: Slot,
}

impl InFlight {
    /// Counts a request to `p`, unless the gateway already has as many there as it sends one
    /// provider: [`IN_FLIGHT_PER_PROVIDER_SLOT`] per generation its health check reports it
    /// decodes together.
    pub(super) fn try_new(p: &Arc<ProviderHandle>, slot: &Slot) -> Option<InFlight> {
        let mut state = p.state.write();
        let capacity = state.health.as_ref().map_or(1, |h| h.capacity.max(1));
        if state.in_flight >= capacity.saturating_mul(IN_FLIGHT_PER_PROVIDER_SLOT) {
            return None;
        }
        state.in_flight += 1;
        Some(InFlight {
            provider: p.clone(),
            _slot: slot.clone(),
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.provider.state.write();
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}
