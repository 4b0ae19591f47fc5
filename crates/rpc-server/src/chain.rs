//! The chain's JSON-RPC methods, and the server that answers them with Prometheus metrics at
//! `GET /metrics` and a health check at `GET /health` on the same port.

use std::{net::SocketAddr, sync::Arc};

use hibana_consensus::{Chain, ChainError, MempoolError};
use hibana_runtime::{bank, query_account, staking, verify};
use hibana_types::{Address, Hash, SignedTransaction, TxStatus, decode, encode};
use jsonrpsee::{
    PendingSubscriptionSink,
    core::{RpcResult, SubscriptionResult, async_trait},
    server::{HttpRequest, Server, ServerConfig, ServerHandle},
    types::ErrorObjectOwned,
};

use hibana_rpc::api::{
    AbsenceView, AccountTxs, AccountWithProof, BlockId, BlockView, ChainStatus, CommitView,
    DUPLICATE_TX, HibanaApiServer, Lookup, MEMPOOL_FULL, TX_REJECTED, TxView, ZkInferenceView,
    ZkModelView,
};

use crate::{
    channels::ChannelsHandler,
    data::DataHandler,
    errors::{invalid_params, node_error},
    intercept::{Answer, Intercept, InterceptLayer, respond},
    market::MarketHandler,
    subnets::SubnetsHandler,
    verify::VerifyHandler,
};

/// Largest accepted request body (1 MiB).
pub const MAX_REQUEST_BYTES: u32 = 1024 * 1024;

fn parse_hash(s: &str) -> Result<Hash, ErrorObjectOwned> {
    s.parse()
        .map_err(|e: hibana_types::HashParseError| invalid_params(e.to_string()))
}

fn parse_address(s: &str) -> Result<Address, ErrorObjectOwned> {
    s.parse()
        .map_err(|e: hibana_types::AddressError| invalid_params(e.to_string()))
}

/// The proof that `key` holds nothing in `snapshot`, as a lookup's answer.
fn absence<T>(
    store: &hibana_store::Store,
    snapshot: &hibana_store::Snapshot,
    key: &[u8],
) -> RpcResult<Lookup<T>> {
    let (entry, proof) = snapshot.get_with_proof(key).map_err(node_error)?;
    if entry.is_some() {
        return Err(node_error("the record changed while it was read"));
    }
    Ok(Lookup::Absent(AbsenceView {
        absent: true,
        height: snapshot.height(),
        state_root: store.state_root(snapshot.height()).map_err(node_error)?,
        proof: hex::encode(encode(&proof)),
    }))
}

fn parse_id32(what: &str, s: &str) -> Result<[u8; 32], ErrorObjectOwned> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| invalid_params(format!("{what} must be 64 hex characters, got {s:?}")))
}

/// The RPC methods over a node's chain.
#[derive(Debug, Clone)]
pub(crate) struct RpcHandler {
    chain: Arc<Chain>,
}

#[async_trait]
impl HibanaApiServer for RpcHandler {
    async fn chain_status(&self) -> RpcResult<ChainStatus> {
        let store = self.chain.store();
        let snapshot = store.snapshot().map_err(node_error)?;
        let height = snapshot.height();
        let latest = store.block(height).map_err(node_error)?;
        let state_root = store.state_root(height).map_err(node_error)?;
        let genesis_time = store.genesis().map_err(node_error)?.genesis_time_ms;
        Ok(ChainStatus {
            chain_id: self.chain.chain_id().to_string(),
            height,
            latest_block_hash: latest.as_ref().map(|b| b.hash()),
            state_root,
            latest_time_ms: latest.map(|b| b.header.time_ms).unwrap_or(genesis_time),
            mempool_size: self.chain.mempool_len(),
            min_fee: self.chain.params().min_fee,
            validators: staking::validator_set(&snapshot).map_err(node_error)?,
        })
    }

    async fn chain_get_block(&self, id: Option<BlockId>) -> RpcResult<Option<BlockView>> {
        let store = self.chain.store();
        let block = match id {
            None => {
                let height = store.height().map_err(node_error)?.unwrap_or(0);
                store.block(height)
            }
            Some(BlockId::Height(h)) => store.block(h),
            Some(BlockId::Hash(hash)) => store.block_by_hash(&hash),
        }
        .map_err(node_error)?;
        Ok(block.map(|block| BlockView {
            hash: block.hash(),
            tx_hashes: block.txs.iter().map(SignedTransaction::hash).collect(),
            block,
        }))
    }

    async fn chain_get_commit(&self, height: u64) -> RpcResult<Option<CommitView>> {
        let store = self.chain.store();
        let Some(block) = store.block(height).map_err(node_error)? else {
            return Ok(None);
        };
        let Some(commit) =
            hibana_consensus::bft::commit_at(&self.chain, height).map_err(node_error)?
        else {
            return Ok(None);
        };
        // The set that decided block `height` is the one recorded in the state before it,
        // whose root is the header's `app_hash`.
        let (entry, proof) = store
            .get_with_proof(
                hibana_types::records::staking::VALIDATOR_SET_KEY,
                height.saturating_sub(1),
            )
            .map_err(node_error)?;
        let validators = match &entry {
            Some(bytes) => decode(bytes).map_err(node_error)?,
            None => Vec::new(),
        };
        Ok(Some(CommitView {
            header: block.header,
            commit,
            validators,
            validators_entry: entry.map(hex::encode),
            validators_proof: hex::encode(encode(&proof)),
        }))
    }

    async fn chain_get_block_events(&self, height: u64) -> RpcResult<Vec<hibana_types::Event>> {
        self.chain.store().block_events(height).map_err(node_error)
    }

    async fn chain_get_tx(&self, hash: String) -> RpcResult<Option<TxView>> {
        let hash = parse_hash(&hash)?;
        let record = self.chain.store().tx(&hash).map_err(node_error)?;
        Ok(record.map(|r| TxView {
            hash,
            tx: r.tx,
            receipt: r.receipt,
        }))
    }

    async fn chain_get_account_txs(
        &self,
        address: String,
        limit: Option<u32>,
    ) -> RpcResult<AccountTxs> {
        let address = parse_address(&address)?;
        let limit = limit.unwrap_or(20).min(1000) as usize;
        let txs = self
            .chain
            .store()
            .account_txs(&address, limit)
            .map_err(node_error)?;
        Ok(AccountTxs { txs })
    }

    async fn state_get_account(&self, address: String) -> RpcResult<AccountWithProof> {
        let address = parse_address(&address)?;
        let store = self.chain.store();
        let snapshot = store.snapshot().map_err(node_error)?;
        let account = query_account(&snapshot, &address).map_err(node_error)?;
        let (account_entry, account_proof) = snapshot
            .get_with_proof(&bank::account_key(&address))
            .map_err(node_error)?;
        let (delegations_entry, delegations_proof) = snapshot
            .get_with_proof(&staking::delegations_key(&address))
            .map_err(node_error)?;
        Ok(AccountWithProof {
            height: snapshot.height(),
            state_root: store.state_root(snapshot.height()).map_err(node_error)?,
            account,
            account_entry: account_entry.map(hex::encode),
            account_proof: hex::encode(encode(&account_proof)),
            delegations_entry: delegations_entry.map(hex::encode),
            delegations_proof: hex::encode(encode(&delegations_proof)),
        })
    }

    async fn zk_get_model(&self, commitment: String) -> RpcResult<Lookup<ZkModelView>> {
        let commitment = parse_id32("the model commitment", &commitment)?;
        let store = self.chain.store();
        let snapshot = store.snapshot().map_err(node_error)?;
        let Some(record) = verify::model(&snapshot, &commitment).map_err(node_error)? else {
            return absence(store, &snapshot, &verify::model_key(&commitment));
        };
        let zkm = verify::model_zkm(&snapshot, &commitment).map_err(node_error)?;
        let zkm_bytes = zkm.as_ref().map_or(0, Vec::len);
        let verification_fee = verify::registered_verification_fee(zkm.as_deref(), record.k);
        let (entry, proof) = snapshot
            .get_with_proof(&verify::model_key(&commitment))
            .map_err(node_error)?;
        Ok(Lookup::Found(ZkModelView {
            commitment: hex::encode(record.commitment),
            owner: record.owner,
            k: record.k,
            input_shape: record.input_shape,
            output_shape: record.output_shape,
            output_scale: record.output_scale,
            registered_at: record.registered_at,
            zkm_bytes,
            verification_fee,
            height: snapshot.height(),
            state_root: store.state_root(snapshot.height()).map_err(node_error)?,
            entry: hex::encode(entry.unwrap_or_default()),
            proof: hex::encode(encode(&proof)),
        }))
    }

    async fn zk_get_inference(&self, id: String) -> RpcResult<Lookup<ZkInferenceView>> {
        let id = parse_id32("the result id", &id)?;
        let store = self.chain.store();
        let snapshot = store.snapshot().map_err(node_error)?;
        let Some(record) = verify::inference(&snapshot, &id).map_err(node_error)? else {
            return absence(store, &snapshot, &verify::inference_key(&id));
        };
        let scale = verify::model(&snapshot, &record.model)
            .map_err(node_error)?
            .map_or(0, |m| m.output_scale);
        let divisor = f64::from(1u32 << scale.min(31));
        let (entry, proof) = snapshot
            .get_with_proof(&verify::inference_key(&id))
            .map_err(node_error)?;
        Ok(Lookup::Found(ZkInferenceView {
            id: hex::encode(record.id),
            model: hex::encode(record.model),
            input_commitment: hex::encode(record.input_commitment),
            public_input: record.public_input,
            output_values: record.output.iter().map(|&v| v as f64 / divisor).collect(),
            output: record.output,
            class: record.class,
            submitter: record.submitter,
            included_at: record.height,
            height: snapshot.height(),
            state_root: store.state_root(snapshot.height()).map_err(node_error)?,
            entry: hex::encode(entry.unwrap_or_default()),
            proof: hex::encode(encode(&proof)),
        }))
    }

    async fn tx_submit(&self, tx: String) -> RpcResult<Hash> {
        let bytes = hex::decode(tx.trim())
            .map_err(|_| invalid_params("the transaction must be hex of its borsh encoding"))?;
        let tx: SignedTransaction = decode(&bytes)
            .map_err(|e| invalid_params(format!("the transaction does not decode: {e}")))?;
        let chain = self.chain.clone();
        let result = tokio::task::spawn_blocking(move || chain.submit(tx))
            .await
            .map_err(node_error)?;
        result.map_err(|e| {
            let code = match &e {
                MempoolError::Full(_) => MEMPOOL_FULL,
                MempoolError::Duplicate(_) => DUPLICATE_TX,
                _ => TX_REJECTED,
            };
            ErrorObjectOwned::owned(code, e.to_string(), None::<()>)
        })
    }

    async fn tx_status(&self, hash: String) -> RpcResult<TxStatus> {
        let hash = parse_hash(&hash)?;
        self.chain
            .tx_status(&hash)
            .map_err(|e: ChainError| node_error(e))
    }

    async fn chain_subscribe_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut heads = self.chain.subscribe_heads();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                head = heads.recv() => match head {
                    Ok(header) => {
                        let msg = serde_json::value::to_raw_value(&header)?;
                        if sink.send(msg).await.is_err() {
                            return Ok(());
                        }
                    }
                    // A slow subscriber skips headers rather than stalling the node.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = sink.closed() => return Ok(()),
            }
        }
    }
}

/// Serves `GET /metrics` (Prometheus text) and `GET /health`.
#[derive(Debug, Clone)]
struct Metrics {
    chain: Arc<Chain>,
}

impl Intercept for Metrics {
    fn intercept<B>(&self, req: HttpRequest<B>) -> Result<Answer, HttpRequest<B>> {
        if req.method() != http::Method::GET {
            return Err(req);
        }
        let (content_type, body) = match req.uri().path() {
            "/metrics" => ("text/plain; version=0.0.4", self.chain.metrics().render()),
            "/health" => ("text/plain", "ok\n".to_string()),
            _ => return Err(req),
        };
        let response = respond(200, content_type, body.into_bytes());
        Ok(Box::pin(async move { response }))
    }
}

/// A running RPC server.
#[derive(Debug)]
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Stops the server when asked.
    pub handle: ServerHandle,
}

/// Every JSON-RPC method the server answers, over `chain`: what [`start`] serves, and what a
/// fuzz target or test calls without a socket.
pub fn rpc_module(
    chain: Arc<Chain>,
) -> Result<jsonrpsee::RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
    let mut module = jsonrpsee::RpcModule::new(());
    module.merge(
        RpcHandler {
            chain: chain.clone(),
        }
        .into_rpc(),
    )?;
    module.merge(hibana_rpc::subnets::SubnetsApiServer::into_rpc(
        SubnetsHandler {
            chain: chain.clone(),
        },
    ))?;
    module.merge(hibana_rpc::market::MarketApiServer::into_rpc(
        MarketHandler {
            chain: chain.clone(),
        },
    ))?;
    module.merge(hibana_rpc::channels::ChannelsApiServer::into_rpc(
        ChannelsHandler {
            chain: chain.clone(),
        },
    ))?;
    module.merge(hibana_rpc::data::DataApiServer::into_rpc(DataHandler {
        chain: chain.clone(),
    }))?;
    module.merge(hibana_rpc::verify::VerifyApiServer::into_rpc(
        VerifyHandler { chain },
    ))?;
    Ok(module)
}

/// Starts the JSON-RPC server (HTTP and WebSocket on one port) over `chain`.
pub async fn start(chain: Arc<Chain>, addr: SocketAddr) -> Result<RunningServer, std::io::Error> {
    start_with(chain, addr, Extras::default()).await
}

/// What a node serves on its RPC port besides the API.
#[derive(Debug, Default, Clone)]
pub struct Extras {
    /// The blob store, served at `/blobs`.
    pub blobs: Option<Arc<crate::BlobStore>>,
    /// Pages served to browsers (the dashboard).
    pub site: Option<Arc<dyn crate::Site>>,
}

/// Starts the JSON-RPC server over `chain`, with the blob store and pages of `extras` on the
/// same port.
pub async fn start_with(
    chain: Arc<Chain>,
    addr: SocketAddr,
    extras: Extras,
) -> Result<RunningServer, std::io::Error> {
    // Metrics and blobs before the pages: the site answers every other GET.
    let middleware = tower::ServiceBuilder::new()
        .layer(InterceptLayer(Metrics {
            chain: chain.clone(),
        }))
        .layer(InterceptLayer(crate::blobs::Blobs {
            store: extras.blobs,
        }))
        .layer(InterceptLayer(crate::site::Pages { site: extras.site }));
    let config = ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BYTES)
        .max_response_body_size(64 * 1024 * 1024)
        .build();
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .build(addr)
        .await?;
    let addr = server.local_addr()?;
    let module = rpc_module(chain).map_err(std::io::Error::other)?;
    let handle = server.start(module);
    tracing::info!(%addr, "JSON-RPC listening");
    Ok(RunningServer { addr, handle })
}
