//! The gateway's shared state: its configuration, the providers it knows, its connection to
//! the chain, API key admission and usage; and the upkeep that refreshes them.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, atomic::AtomicUsize},
    time::Duration,
};

use hibana_rpc::RpcClient;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Semaphore;

use super::{
    auth::Admission,
    billing::Billing,
    health,
    providers::{ProviderHandle, Slot},
    routing::{self, Candidate},
    subnets,
    usage::UsageBook,
};
use crate::{endpoints::EndpointPolicy, keys::KeyFile, openai::ApiError};

/// Time allowed to connect to a provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Requests a gateway serves at once by default; more are refused with 429 at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// Seconds a client is told to wait (`Retry-After`) when a request is refused for load.
pub(super) const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// How the gateway reaches providers.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Provider base URLs.
    pub providers: Vec<String>,
    /// The API key file.
    pub keys: KeyFile,
    /// Time allowed for a whole non-streamed answer, and between two chunks of a stream.
    pub request_timeout: Duration,
    /// Interval of provider health checks.
    pub health_interval: Duration,
    /// JSON-RPC URL of a node, to route to the miners of the chain's subnets.
    pub chain_rpc: Option<String>,
    /// Which addresses a miner's endpoint named on chain may have (the configured providers
    /// are called wherever they are).
    pub miner_endpoints: EndpointPolicy,
    /// Most requests served at once (inference endpoints); more get 429 with `Retry-After`.
    pub max_in_flight: usize,
    /// The operator's key: with a chain, the gateway bills every key through its payment
    /// channel to this account and pays providers through channels from it.
    pub operator: Option<hibana_types::SecretKey>,
    /// Deposit of each channel the gateway opens to a provider, and of each top-up.
    pub provider_deposit: hibana_types::Amount,
    /// Re-checking a share of the answers on the gateway's own copies of the models.
    pub sampling: Option<Sampling>,
}

/// Which answers the gateway re-checks, and with which models.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// Share (0 to 1) of the answers of subnet miners re-checked; a wrong one is challenged
    /// on chain by the operator.
    pub share: f64,
    /// Folder of the installed models to re-check with.
    pub models_dir: std::path::PathBuf,
}

/// Deposit of a gateway's channel to a provider by default.
pub const DEFAULT_PROVIDER_DEPOSIT: hibana_types::Amount =
    hibana_types::Amount(5 * hibana_types::BASE_UNITS_PER_HIB);

/// The gateway's shared state.
pub struct Gateway {
    pub(super) config: GatewayConfig,
    providers: RwLock<Vec<Arc<ProviderHandle>>>,
    chain: RwLock<Option<RpcClient>>,
    /// The client for miners named on chain, under `config.miner_endpoints`.
    miner_http: reqwest::Client,
    /// Miner endpoints refused by the policy, each reported once.
    refused: Mutex<BTreeSet<String>>,
    /// Where the round-robin among equally loaded providers starts next.
    next: AtomicUsize,
    pub(super) admission: Admission,
    pub(super) usage: UsageBook,
    /// One permit per request the gateway may serve at once.
    slots: Arc<Semaphore>,
    /// Billing through payment channels, once the chain answered.
    billing: RwLock<Option<Arc<Billing>>>,
    /// The models answers are re-checked with, when sampling.
    local: Option<Arc<crate::recheck::LocalModels>>,
    /// One re-check at a time: a sample is dropped rather than queued when one runs.
    rechecking: Arc<Semaphore>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gateway({:?})", self.config.providers)
    }
}

impl Gateway {
    /// A gateway over the configured providers.
    pub fn new(config: GatewayConfig) -> Result<Gateway, std::io::Error> {
        let http = EndpointPolicy::AnyAddress
            .client(CONNECT_TIMEOUT)
            .map_err(std::io::Error::other)?;
        let miner_http = config
            .miner_endpoints
            .client(CONNECT_TIMEOUT)
            .map_err(std::io::Error::other)?;
        let chain = match &config.chain_rpc {
            Some(url) => Some(subnets::connect(url)?),
            None => None,
        };
        Ok(Gateway {
            providers: RwLock::new(
                config
                    .providers
                    .iter()
                    .map(|url| ProviderHandle::new(url, http.clone()))
                    .collect(),
            ),
            chain: RwLock::new(chain),
            miner_http,
            refused: Mutex::default(),
            next: AtomicUsize::new(0),
            admission: Admission::new(config.keys.clone()),
            usage: UsageBook::load(&config.keys),
            slots: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            billing: RwLock::new(None),
            local: config
                .sampling
                .as_ref()
                .map(|s| Arc::new(crate::recheck::LocalModels::new(s.models_dir.clone()))),
            rechecking: Arc::new(Semaphore::new(1)),
            config,
        })
    }

    /// Routes for the subnets of the chain whose node answers JSON-RPC at `url`.
    pub fn connect_chain(&self, url: &str) -> Result<(), std::io::Error> {
        *self.chain.write() = Some(subnets::connect(url)?);
        Ok(())
    }

    /// Reads the subnets from the chain: every miner becomes a provider, with its incentive.
    pub async fn refresh_subnets(&self) {
        let Some(chain) = self.chain.read().clone() else {
            return;
        };
        let miners = subnets::miners(&chain).await;
        let market = subnets::market(&chain).await;
        let policy = self.config.miner_endpoints;
        let mut allowed = HashMap::new();
        for (url, memberships) in miners {
            match policy.check(&url) {
                Ok(()) => {
                    allowed.insert(url, memberships);
                }
                Err(reason) => {
                    if self.refused.lock().insert(url.clone()) {
                        tracing::warn!(%reason, "not routing to a miner");
                    }
                }
            }
        }
        subnets::apply(allowed, market.as_ref(), &self.providers, &self.miner_http);
    }

    /// Offers an answer for re-checking: a configured share of the answers of subnet miners is
    /// re-checked in the background on the gateway's own copy of the model, and a wrong one is
    /// challenged on chain by the operator (which needs billing: an operator and a chain).
    pub(super) fn sample(
        &self,
        provider: &super::providers::ProviderHandle,
        request: Vec<u8>,
        response: Vec<u8>,
        receipt: hibana_types::InferenceReceipt,
    ) {
        let (Some(sampling), Some(local), Some(billing)) =
            (&self.config.sampling, &self.local, self.billing())
        else {
            return;
        };
        if rand::random::<f64>() >= sampling.share {
            return;
        }
        let model = receipt.body.model_hash.to_string();
        let Some(subnet) = provider
            .state
            .read()
            .subnets
            .iter()
            .find(|m| m.model == model)
            .map(|m| m.id)
        else {
            return;
        };
        let Ok(permit) = self.rechecking.clone().try_acquire_owned() else {
            return;
        };
        let local = local.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let hash = receipt.body.model_hash;
            let (req, resp) = (request.clone(), response.clone());
            let verdict =
                tokio::task::spawn_blocking(move || local.get(&hash).map(|m| m.judge(&req, &resp)))
                    .await;
            if let Ok(Some(crate::recheck::Judgement::Wrong(why))) = verdict {
                tracing::warn!(%why, provider = %receipt.body.provider.address(), "a sampled answer is wrong: challenging it");
                billing.challenge(subnet, receipt, request, response).await;
            }
        });
    }

    /// Whether the gateway reads a chain: then a provider's key, price and models come from
    /// its registration there.
    pub(super) fn reads_chain(&self) -> bool {
        self.chain.read().is_some()
    }

    /// Billing, once it started.
    pub(super) fn billing(&self) -> Option<Arc<Billing>> {
        self.billing.read().clone()
    }

    /// Starts billing if the gateway has an operator key and a chain and has not yet.
    pub async fn start_billing(&self) -> std::io::Result<Option<Arc<Billing>>> {
        if let Some(b) = self.billing() {
            return Ok(Some(b));
        }
        let (Some(operator), Some(chain)) =
            (self.config.operator.clone(), self.chain.read().clone())
        else {
            return Ok(None);
        };
        let dir = self
            .config
            .keys
            .path()
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let billing =
            Arc::new(Billing::new(operator, chain, &dir, self.config.provider_deposit).await?);
        *self.billing.write() = Some(billing.clone());
        tracing::info!(operator = %billing.operator(), "billing through payment channels");
        Ok(Some(billing))
    }

    /// One round of billing upkeep (see [`Billing::upkeep`]) over the priced market providers
    /// the gateway routes to.
    pub async fn billing_upkeep(&self) {
        let billing = match self.start_billing().await {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start billing yet");
                return;
            }
        };
        let providers: std::collections::BTreeMap<_, _> = self
            .snapshot()
            .iter()
            .filter_map(|p| {
                let s = p.state.read();
                let t = s.terms.as_ref()?;
                (t.market && t.price_per_token.0 > 0).then(|| (t.address, p.url.clone()))
            })
            .collect();
        billing.upkeep(&providers, &self.miner_http).await;
    }

    /// Polls every provider's health once.
    pub async fn check_providers(&self) {
        health::check(&self.snapshot()).await;
    }

    /// A slot for one more request, or 429 at once if all are taken: a queue here would only
    /// hold clients past the point where an answer is worth waiting for, and hold their memory.
    pub(super) fn take_slot(&self) -> Result<Slot, ApiError> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(Slot::new(permit)),
            Err(_) => Err(ApiError::overloaded(
                format!(
                    "The gateway is serving {} requests, its limit. Retry after {BUSY_RETRY_AFTER_SECS} s.",
                    self.config.max_in_flight.max(1)
                ),
                BUSY_RETRY_AFTER_SECS,
            )),
        }
    }

    /// The providers known now.
    pub(super) fn snapshot(&self) -> Vec<Arc<ProviderHandle>> {
        self.providers.read().clone()
    }

    /// Where to send a request for `model`, in the order to try (see [`routing`]).
    pub(super) fn candidates(&self, model: &str) -> Result<Vec<Candidate>, ApiError> {
        routing::candidates(&self.snapshot(), &self.next, model)
    }
}
