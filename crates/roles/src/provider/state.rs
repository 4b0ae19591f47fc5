//! The provider's shared state: its key, the models it loaded, its price and its capacity, and
//! the accounting of work in progress against that capacity.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use axum::http::{HeaderMap, StatusCode};
use hibana_ai::{
    catalog::{self, ModelInfo, ModelKind},
    embed::Embedder,
    text::TextModel,
};
use hibana_types::{Amount, PublicKey, SecretKey};
use tokio::sync::Semaphore;

use crate::{openai::ApiError, zk::ZkService};

/// Header naming the model to serve in place of the body's `model`. A gateway that routes a
/// subnet or a kind of model (`"model": "chat"`) to a provider names the provider's model here
/// and forwards the client's bytes untouched, so the receipt covers exactly what the client sent.
pub const MODEL_HEADER: &str = "x-hibana-model";

/// The model a request asks for: the one named by [`MODEL_HEADER`] if any, else `body_model`.
pub(super) fn requested_model<'a>(headers: &'a HeaderMap, body_model: &'a str) -> &'a str {
    headers
        .get(MODEL_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(body_model)
}

/// What a provider serves and charges.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Names of installed models to load.
    pub models: Vec<String>,
    /// Folder of installed models.
    pub models_dir: std::path::PathBuf,
    /// Price per token (prompt and completion).
    pub price_per_token: Amount,
    /// Generations run at once; further requests wait.
    pub capacity: usize,
}

/// A loaded model, by what it does (the same as a judge's local copy).
pub(super) use crate::recheck::Local as Loaded;

/// A model the provider serves.
pub(super) struct Served {
    pub(super) info: ModelInfo,
    pub(super) model: Loaded,
}

/// A running provider's state.
pub struct Provider {
    pub(super) key: SecretKey,
    pub(super) models: BTreeMap<String, Served>,
    pub(super) zk: ZkService,
    pub(super) price_per_token: Amount,
    pub(super) capacity: usize,
    pub(super) permits: Arc<Semaphore>,
    /// Audits running at once: one per core (an audit is CPU-bound and quick).
    pub(super) audit_permits: Arc<Semaphore>,
    pub(super) active: AtomicUsize,
    /// The vouchers gateways paid it with.
    pub(super) payments: super::payments::Payments,
    /// The training jobs it runs.
    pub(super) jobs: super::jobs::Jobs,
    /// The batch inference jobs it answers.
    pub(super) batches: super::batch::Batches,
    /// Held while one of its transactions is in flight: jobs, redemptions and the market
    /// loop share its account's nonce.
    tx_lock: tokio::sync::Mutex<()>,
}

/// The state the provider's HTTP handlers share.
pub(super) type AppState = Arc<Provider>;

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Provider({}, {:?})",
            self.key.public_key(),
            self.models.keys().collect::<Vec<_>>()
        )
    }
}

impl Provider {
    /// Loads the configured models.
    pub fn load(config: &ProviderConfig, key: SecretKey) -> Result<Provider, hibana_ai::AiError> {
        let capacity = config.capacity.max(1);
        let mut models = BTreeMap::new();
        for name in &config.models {
            let info = catalog::find(&config.models_dir, name)?;
            let model = match info.kind {
                ModelKind::Embedding => Loaded::Embed(Arc::new(Embedder::load(&info)?)),
                ModelKind::Chat | ModelKind::Completion => Loaded::Text(Arc::new(TextModel::load(
                    &info,
                    hibana_ai::text::LoadOptions {
                        parallel: capacity as u32,
                        ..Default::default()
                    },
                )?)),
            };
            models.insert(info.name.clone(), Served { info, model });
        }
        Ok(Provider {
            key,
            models,
            zk: ZkService::default(),
            price_per_token: config.price_per_token,
            capacity,
            permits: Arc::new(Semaphore::new(capacity)),
            audit_permits: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, usize::from),
            )),
            active: AtomicUsize::new(0),
            payments: super::payments::Payments::open(config.models_dir.join("vouchers.json")),
            jobs: super::jobs::Jobs::open(config.models_dir.join("jobs")),
            batches: super::batch::Batches::open(config.models_dir.join("jobs").join("batches")),
            tx_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Keeps the vouchers it is paid with in `path` (default: beside the models).
    pub fn with_vouchers(mut self, path: std::path::PathBuf) -> Provider {
        self.payments = super::payments::Payments::open(path);
        self
    }

    /// The vouchers it holds, and the chain it checks and redeems them on.
    pub fn payments(&self) -> &super::payments::Payments {
        &self.payments
    }

    /// Signs `messages` as one transaction of the provider's key, sends it and waits for its
    /// receipt; its transactions go one at a time, so they never race for a nonce.
    pub async fn send_tx(
        &self,
        chain: &hibana_rpc::RpcClient,
        messages: Vec<hibana_types::Message>,
    ) -> Result<hibana_types::Receipt, hibana_rpc::ClientError> {
        let _one_at_a_time = self.tx_lock.lock().await;
        chain.send(&self.key, messages, None).await
    }

    /// Keeps its training jobs' data and checkpoints, and its batches (in `batches`), under
    /// `dir` (default: beside the models).
    pub fn with_jobs(mut self, dir: std::path::PathBuf) -> Provider {
        self.batches = super::batch::Batches::open(dir.join("batches"));
        self.jobs = super::jobs::Jobs::open(dir);
        self
    }

    /// The training jobs it runs, and the chain it commits them on.
    pub fn jobs(&self) -> &super::jobs::Jobs {
        &self.jobs
    }

    /// Also serves proved inference of these ZK models at `POST /v1/zk/infer`.
    pub fn with_zk(mut self, zk: ZkService) -> Provider {
        self.zk = zk;
        self
    }

    /// The provider's public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The loaded model named `model` (by name or content hash).
    pub(super) fn find(&self, model: &str) -> Result<&Served, ApiError> {
        if let Some(s) = self.models.get(model) {
            return Ok(s);
        }
        if let Some(zk) = self.zk.find(model) {
            return Err(ApiError::invalid(
                Some("model"),
                format!("`{}` is a ZK model: use /v1/zk/infer", zk.name),
            ));
        }
        self.models
            .values()
            .find(|s| s.info.content_hash.to_string() == model)
            .ok_or_else(|| ApiError::model_not_found(model))
    }
}

/// A request's work in progress: counted in the provider's `active` load, and holding its
/// capacity permit, until the work itself ends. Moved into the blocking task, so a
/// client that hangs up does not free capacity that is still in use.
pub(super) struct Busy {
    provider: AppState,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Busy {
    /// Waits for a permit of `permits`, then counts the work as active.
    pub(super) async fn acquire(
        provider: &AppState,
        permits: &Arc<Semaphore>,
    ) -> Result<Busy, ApiError> {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::server(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
        provider.active.fetch_add(1, Ordering::Relaxed);
        Ok(Busy {
            provider: provider.clone(),
            _permit: permit,
        })
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.provider.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Set when a request's handler is dropped (its client hung up, or it finished), so that its
/// generation stops at the next token.
pub(super) struct CancelOnDrop(pub(super) Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
