//! The typed client the CLI and off-chain roles use, with verification of state proofs.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hibana_types::BlockHeader;
use hibana_types::light::{LightError, TrustedSet, verify_header};
use hibana_types::{
    AccountView,
    records::{bank, market, staking, subnets, verify},
};
use hibana_types::{
    Address, Amount, Hash, Message, Receipt, SecretKey, SignedTransaction, StateProof, Transaction,
    TxStatus, encode, verify_state_proof,
};
use jsonrpsee::{
    core::client::{Error as JsonRpcError, Subscription},
    http_client::{HttpClient, HttpClientBuilder},
    ws_client::{WsClient, WsClientBuilder},
};

use crate::api::{
    AbsenceView, AccountTxs, AccountWithProof, BlockId, BlockView, ChainStatus, CommitView,
    HibanaApiClient, Lookup, TxView, ZkInferenceView, ZkModelView,
};

/// A failed RPC call, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error.
    #[error("{message} (code {code})")]
    Rpc {
        /// JSON-RPC error code.
        code: i32,
        /// The node's message.
        message: String,
    },
    /// The node could not be reached.
    #[error("cannot reach the node at {url}: {reason}. Is it running? (set --rpc or HIBANA_RPC)")]
    Transport {
        /// The URL tried.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The node is up but refused the request for load (HTTP 429 or 503).
    #[error(
        "the node at {url} is busy (HTTP {status}: too many connections or requests at once); retry shortly"
    )]
    Busy {
        /// The URL tried.
        url: String,
        /// The HTTP status it answered.
        status: u16,
    },
    /// The node's answer does not match its own state root.
    #[error("the node's answer failed verification: {0}")]
    Verification(String),
    /// A transaction was rejected after submission.
    #[error("transaction {hash} was rejected: {reason}")]
    Rejected {
        /// The transaction.
        hash: Hash,
        /// Why.
        reason: String,
    },
    /// Waiting ran out.
    #[error(
        "transaction {0} was not included within the timeout; check later with `hibana query tx {0}`"
    )]
    Timeout(Hash),
}

/// How long [`RpcClient::send`] waits for a transaction to be included.
const INCLUSION_TIMEOUT: Duration = Duration::from_secs(60);

/// A JSON-RPC client of a Hibana node.
#[derive(Debug, Clone)]
pub struct RpcClient {
    inner: HttpClient,
    url: String,
    /// The validator set this client trusts, advanced by every header it verifies (shared by
    /// its clones).
    trust: Arc<Mutex<Option<TrustedSet>>>,
}

/// A header being verified, with the set to trust after it.
type Verifying<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<(BlockHeader, TrustedSet), ClientError>>
            + Send
            + 'a,
    >,
>;

/// How many times verification may split the way from a trusted height to a new one.
const MAX_BISECTIONS: u32 = 32;

impl RpcClient {
    /// A client for the node at `url` (e.g. `http://127.0.0.1:26657`).
    pub fn new(url: &str) -> Result<RpcClient, ClientError> {
        let inner = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(30))
            .build(url)
            .map_err(|e| ClientError::Transport {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(RpcClient {
            inner,
            url: url.to_string(),
            trust: Arc::default(),
        })
    }

    /// This client, trusting `set` (saved from an earlier session or taken from genesis):
    /// headers are then accepted only if enough of it vouches for their signers.
    pub fn with_trust(self, set: TrustedSet) -> RpcClient {
        *self.trust.lock().unwrap_or_else(|p| p.into_inner()) = Some(set);
        self
    }

    /// The validator set this client trusts now, if it verified or was given one.
    pub fn trusted(&self) -> Option<TrustedSet> {
        self.trust.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The commit that decided the block at `height`, with its validator set and proof.
    pub async fn commit(&self, height: u64) -> Result<Option<CommitView>, ClientError> {
        self.inner
            .chain_get_commit(height)
            .await
            .map_err(|e| self.map(e))
    }

    /// The header at `height`, checked against the commit that decided it: signed by more than
    /// two thirds of the power of the validator set recorded in the state before it (proven
    /// under the header's `app_hash`), and by more than a third of the set this client trusts,
    /// if any (the first header verified without one is trusted on first use). Heights too far
    /// from the trusted one for that overlap are reached by bisection, as CometBFT's light
    /// client does. The set that decided the header becomes the trusted one.
    pub async fn verified_header(&self, height: u64) -> Result<BlockHeader, ClientError> {
        let trusted = self.trusted();
        let (header, now) = self
            .verify_from(trusted.as_ref(), height, MAX_BISECTIONS)
            .await?;
        let mut trust = self.trust.lock().unwrap_or_else(|p| p.into_inner());
        if trust.as_ref().is_none_or(|t| t.height <= now.height) {
            *trust = Some(now);
        }
        Ok(header)
    }

    /// Verifies the header at `height` starting from `trusted`, splitting the way in two when
    /// too little of the trusted set signed it.
    fn verify_from<'a>(
        &'a self,
        trusted: Option<&'a TrustedSet>,
        height: u64,
        depth: u32,
    ) -> Verifying<'a> {
        Box::pin(async move {
            let view = self.commit(height).await?.ok_or_else(|| {
                ClientError::Verification(format!("the node has no commit for height {height}"))
            })?;
            let deciding = proven_validators(&view)?;
            let chain_id = trusted.map_or(view.header.chain_id.as_str(), |t| &t.chain_id);
            match verify_header(chain_id, &view.header, &view.commit, &deciding, trusted) {
                Ok(now) => Ok((view.header, now)),
                Err(LightError::Untrusted { .. })
                    if depth > 0
                        && trusted.is_some_and(|t| t.height < height && height - t.height > 1) =>
                {
                    let from = trusted.map_or(0, |t| t.height);
                    let middle = from + (height - from) / 2;
                    let (_, between) = self.verify_from(trusted, middle, depth - 1).await?;
                    let (header, now) = self.verify_from(Some(&between), height, depth - 1).await?;
                    Ok((header, now))
                }
                Err(e) => Err(ClientError::Verification(format!(
                    "the header at height {height}: {e}"
                ))),
            }
        })
    }

    /// The node URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn map(&self, e: JsonRpcError) -> ClientError {
        match e {
            JsonRpcError::Call(obj) => ClientError::Rpc {
                code: obj.code(),
                message: obj.message().to_string(),
            },
            JsonRpcError::Transport(ref inner)
                if let Some(jsonrpsee::http_client::transport::Error::Rejected { status_code }) =
                    inner.downcast_ref()
                    && matches!(status_code, 429 | 503) =>
            {
                ClientError::Busy {
                    url: self.url.clone(),
                    status: *status_code,
                }
            }
            other => ClientError::Transport {
                url: self.url.clone(),
                reason: other.to_string(),
            },
        }
    }

    /// The registered market providers.
    pub async fn market_providers(&self) -> Result<Vec<market::Provider>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner.market_providers().await.map_err(|e| self.map(e))
    }

    /// A market provider by address.
    pub async fn market_provider(
        &self,
        address: Address,
    ) -> Result<Option<market::Provider>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner
            .market_provider(address)
            .await
            .map_err(|e| self.map(e))
    }

    /// The open market orders.
    pub async fn market_orders(&self) -> Result<Vec<market::Order>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner.market_orders().await.map_err(|e| self.map(e))
    }

    /// A market order by id, with its bids.
    pub async fn market_order(&self, id: u64) -> Result<Option<crate::OrderView>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner.market_order(id).await.map_err(|e| self.map(e))
    }

    /// The active leases an account owns or serves.
    pub async fn market_leases(
        &self,
        account: Address,
    ) -> Result<Vec<crate::LeaseView>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner
            .market_leases(account)
            .await
            .map_err(|e| self.map(e))
    }

    /// A lease by id.
    pub async fn market_lease(&self, id: u64) -> Result<Option<crate::LeaseView>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner.market_lease(id).await.map_err(|e| self.map(e))
    }

    /// A provider's liveness.
    pub async fn market_liveness(
        &self,
        address: Address,
    ) -> Result<crate::LivenessView, ClientError> {
        use crate::market::MarketApiClient;
        self.inner
            .market_liveness(address)
            .await
            .map_err(|e| self.map(e))
    }

    /// The validators' attestations of a provider.
    pub async fn market_attestations(
        &self,
        address: Address,
    ) -> Result<Vec<hibana_types::records::market::Attestation>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner
            .market_attestations(address)
            .await
            .map_err(|e| self.map(e))
    }

    /// A training job by id.
    pub async fn market_job(&self, id: u64) -> Result<Option<crate::JobView>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner.market_job(id).await.map_err(|e| self.map(e))
    }

    /// The training job that runs (or ran last) on a lease.
    pub async fn market_lease_job(&self, lease: u64) -> Result<Option<u64>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner
            .market_lease_job(lease)
            .await
            .map_err(|e| self.map(e))
    }

    /// The committed step hashes of one checkpoint of a job.
    pub async fn market_job_steps(
        &self,
        id: u64,
        index: u64,
    ) -> Result<Vec<hibana_types::Hash>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner
            .market_job_steps(id, index)
            .await
            .map_err(|e| self.map(e))
    }

    /// A batch inference job by id, with the height it was read at.
    pub async fn market_batch(&self, id: u64) -> Result<Option<crate::BatchView>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner.market_batch(id).await.map_err(|e| self.map(e))
    }

    /// A batch's line requests, with the posted lines.
    pub async fn market_batch_lines(
        &self,
        batch: u64,
    ) -> Result<Vec<hibana_types::records::market::LineRequest>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner
            .market_batch_lines(batch)
            .await
            .map_err(|e| self.map(e))
    }

    /// One requested line of a batch, whole.
    pub async fn market_batch_line(
        &self,
        batch: u64,
        line: u32,
    ) -> Result<Option<hibana_types::records::market::LineRequest>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner
            .market_batch_line(batch, line)
            .await
            .map_err(|e| self.map(e))
    }

    /// The line requests a provider has yet to post.
    pub async fn market_owed_lines(
        &self,
        provider: hibana_types::Address,
    ) -> Result<Vec<hibana_types::records::market::LineRequest>, ClientError> {
        use crate::market::MarketApiClient;
        self.inner
            .market_owed_lines(provider)
            .await
            .map_err(|e| self.map(e))
    }

    /// A payment channel by id, with the height it was read at.
    pub async fn channel(
        &self,
        id: u64,
    ) -> Result<(u64, Option<hibana_types::records::channels::Channel>), ClientError> {
        use crate::channels::ChannelsApiClient;
        let view = self.inner.channel_get(id).await.map_err(|e| self.map(e))?;
        Ok((view.height, view.channels.into_iter().next()))
    }

    /// The open channels `payer` funds (only those paying `payee`, if given).
    pub async fn channels(
        &self,
        payer: Address,
        payee: Option<Address>,
    ) -> Result<crate::ChannelsView, ClientError> {
        use crate::channels::ChannelsApiClient;
        self.inner
            .channel_list(payer, payee)
            .await
            .map_err(|e| self.map(e))
    }

    /// Bounties, open ones first and newest first, at most `limit`.
    pub async fn data_bounties(
        &self,
        limit: usize,
    ) -> Result<Vec<hibana_types::records::data::Bounty>, ClientError> {
        use crate::data::DataApiClient;
        self.inner
            .data_bounties(Some(limit))
            .await
            .map_err(|e| self.map(e))
    }

    /// A bounty with its reviewers.
    pub async fn data_bounty(&self, id: u64) -> Result<Option<crate::BountyView>, ClientError> {
        use crate::data::DataApiClient;
        self.inner.data_bounty(id).await.map_err(|e| self.map(e))
    }

    /// Every item of a bounty, in submission order (read page by page).
    pub async fn data_items(
        &self,
        bounty: u64,
    ) -> Result<Vec<hibana_types::records::data::Item>, ClientError> {
        use crate::data::DataApiClient;
        let mut items = Vec::new();
        loop {
            let page = self
                .inner
                .data_items(bounty, Some(items.len()), None)
                .await
                .map_err(|e| self.map(e))?;
            if page.items.is_empty() {
                return Ok(items);
            }
            items.extend(page.items);
        }
    }

    /// An item by id.
    pub async fn data_item(
        &self,
        id: u64,
    ) -> Result<Option<hibana_types::records::data::Item>, ClientError> {
        use crate::data::DataApiClient;
        self.inner.data_item(id).await.map_err(|e| self.map(e))
    }

    /// The items awaiting `reviewer`'s commit or reveal, with the height they were read at.
    pub async fn data_assignments(
        &self,
        reviewer: Address,
    ) -> Result<crate::ItemsView, ClientError> {
        use crate::data::DataApiClient;
        self.inner
            .data_assignments(reviewer)
            .await
            .map_err(|e| self.map(e))
    }

    /// A finalised dataset with its leaves.
    pub async fn data_dataset(&self, id: u64) -> Result<Option<crate::DatasetView>, ClientError> {
        use crate::data::DataApiClient;
        self.inner.data_dataset(id).await.map_err(|e| self.map(e))
    }

    /// Challenges against signed receipts, newest first, as `filter` selects.
    pub async fn challenges(
        &self,
        filter: verify::ChallengeFilter,
    ) -> Result<Vec<verify::Challenge>, ClientError> {
        use crate::verify::VerifyApiClient;
        self.inner
            .verify_challenges(Some(filter))
            .await
            .map_err(|e| self.map(e))
    }

    /// A challenge by id, with its request and response bytes and its electorate's votes.
    pub async fn challenge(&self, id: u64) -> Result<Option<crate::ChallengeView>, ClientError> {
        use crate::verify::VerifyApiClient;
        self.inner
            .verify_challenge(id)
            .await
            .map_err(|e| self.map(e))
    }

    /// All subnets.
    pub async fn subnets(&self) -> Result<Vec<subnets::Subnet>, ClientError> {
        use crate::subnets::SubnetsApiClient;
        self.inner.subnet_list().await.map_err(|e| self.map(e))
    }

    /// A subnet by id or name, with its neurons.
    pub async fn subnet(&self, key: &str) -> Result<Option<crate::SubnetView>, ClientError> {
        use crate::subnets::SubnetsApiClient;
        self.inner
            .subnet_get(crate::subnets::SubnetKey(key.to_string()))
            .await
            .map_err(|e| self.map(e))
    }

    /// The weights of a subnet's validators.
    pub async fn subnet_weights(
        &self,
        key: &str,
    ) -> Result<Vec<crate::ValidatorWeights>, ClientError> {
        use crate::subnets::SubnetsApiClient;
        self.inner
            .subnet_weights(crate::subnets::SubnetKey(key.to_string()))
            .await
            .map_err(|e| self.map(e))
    }

    /// What a subnet's last epochs paid, newest first.
    pub async fn subnet_emissions(
        &self,
        key: &str,
        limit: Option<u32>,
    ) -> Result<Vec<subnets::EpochSummary>, ClientError> {
        use crate::subnets::SubnetsApiClient;
        self.inner
            .subnet_emissions(crate::subnets::SubnetKey(key.to_string()), limit)
            .await
            .map_err(|e| self.map(e))
    }

    /// Chain status.
    pub async fn status(&self) -> Result<ChainStatus, ClientError> {
        self.inner.chain_status().await.map_err(|e| self.map(e))
    }

    /// A block by height or hash, or the latest.
    pub async fn block(&self, id: Option<BlockId>) -> Result<Option<BlockView>, ClientError> {
        self.inner
            .chain_get_block(id)
            .await
            .map_err(|e| self.map(e))
    }

    /// A block's events that no transaction emitted (begin and end of block).
    pub async fn block_events(&self, height: u64) -> Result<Vec<hibana_types::Event>, ClientError> {
        self.inner
            .chain_get_block_events(height)
            .await
            .map_err(|e| self.map(e))
    }

    /// A committed transaction.
    pub async fn tx(&self, hash: &Hash) -> Result<Option<TxView>, ClientError> {
        self.inner
            .chain_get_tx(hash.to_string())
            .await
            .map_err(|e| self.map(e))
    }

    /// Recent transactions of an account.
    pub async fn account_txs(
        &self,
        address: &Address,
        limit: u32,
    ) -> Result<AccountTxs, ClientError> {
        self.inner
            .chain_get_account_txs(address.to_string(), Some(limit))
            .await
            .map_err(|e| self.map(e))
    }

    /// A model registered for ZK inference, by commitment, with its record (or the proof that
    /// there is none, for `None`) checked against the state root in the block header of the
    /// height the node answered at.
    pub async fn zk_model(
        &self,
        commitment: &[u8; 32],
    ) -> Result<Option<ZkModelView>, ClientError> {
        let view = match self
            .inner
            .zk_get_model(hex::encode(commitment))
            .await
            .map_err(|e| self.map(e))?
        {
            Lookup::Found(view) => view,
            Lookup::Absent(absent) => {
                self.check_absent(&absent, &verify::model_key(commitment))
                    .await?;
                return Ok(None);
            }
        };
        self.check_root(view.height, view.state_root).await?;
        let record: verify::ZkModelRecord = proven_entry(
            view.state_root,
            &verify::model_key(commitment),
            &view.entry,
            &view.proof,
        )?;
        let same = record.commitment == *commitment
            && hex::encode(record.commitment) == view.commitment
            && record.owner == view.owner
            && record.k == view.k
            && record.input_shape == view.input_shape
            && record.output_shape == view.output_shape
            && record.output_scale == view.output_scale
            && record.registered_at == view.registered_at;
        if !same {
            return Err(ClientError::Verification(
                "the model differs from the proven record".into(),
            ));
        }
        Ok(Some(view))
    }

    /// A verified ZK inference, by result id, with its record (or the proof that there is none,
    /// for `None`) checked against the state root in the block header of the height the node
    /// answered at.
    pub async fn zk_inference(
        &self,
        id: &[u8; 32],
    ) -> Result<Option<ZkInferenceView>, ClientError> {
        let view = match self
            .inner
            .zk_get_inference(hex::encode(id))
            .await
            .map_err(|e| self.map(e))?
        {
            Lookup::Found(view) => view,
            Lookup::Absent(absent) => {
                self.check_absent(&absent, &verify::inference_key(id))
                    .await?;
                return Ok(None);
            }
        };
        self.check_root(view.height, view.state_root).await?;
        let record: verify::ZkInferenceRecord = proven_entry(
            view.state_root,
            &verify::inference_key(id),
            &view.entry,
            &view.proof,
        )?;
        let same = record.id == *id
            && hex::encode(record.id) == view.id
            && hex::encode(record.model) == view.model
            && hex::encode(record.input_commitment) == view.input_commitment
            && record.public_input == view.public_input
            && record.output == view.output
            && record.class == view.class
            && record.submitter == view.submitter
            && record.height == view.included_at;
        if !same {
            return Err(ClientError::Verification(
                "the inference differs from the proven record".into(),
            ));
        }
        Ok(Some(view))
    }

    /// Checks a proof that `key` holds nothing, against the state root in the block header of
    /// the height the node answered at.
    async fn check_absent(&self, absent: &AbsenceView, key: &[u8]) -> Result<(), ClientError> {
        self.check_root(absent.height, absent.state_root).await?;
        verify_state_proof(
            absent.state_root,
            key,
            None,
            &proof("absence proof", &absent.proof)?,
        )
        .map_err(|e| ClientError::Verification(format!("absence: {e}")))
    }

    /// Checks that `root` is the state root in the header of the block at `height`, and that
    /// the header was decided by the validators (see [`RpcClient::verified_header`]).
    async fn check_root(&self, height: u64, root: Hash) -> Result<(), ClientError> {
        if height == 0 {
            // Only a chain with no block yet answers from its genesis state.
            return match self.trusted() {
                Some(t) if t.height > 0 => Err(ClientError::Verification(format!(
                    "the node answered from the genesis state, but height {} is already verified",
                    t.height
                ))),
                _ => Ok(()),
            };
        }
        let header = self.verified_header(height).await?;
        if header.state_root != root {
            return Err(ClientError::Verification(format!(
                "state root {root} is not the root in block {height}"
            )));
        }
        Ok(())
    }

    /// The status of a transaction.
    pub async fn tx_status(&self, hash: &Hash) -> Result<TxStatus, ClientError> {
        self.inner
            .tx_status(hash.to_string())
            .await
            .map_err(|e| self.map(e))
    }

    /// Submits a signed transaction.
    pub async fn submit(&self, tx: &SignedTransaction) -> Result<Hash, ClientError> {
        self.inner
            .tx_submit(hex::encode(encode(tx)))
            .await
            .map_err(|e| self.map(e))
    }

    /// Signs `messages` as `key`'s next transaction (chain id and nonce read from the node, the
    /// nonce checked against the state root), paying `fee` or else the node's minimum fee;
    /// submits it, waits up to a minute for its inclusion and returns its
    /// receipt. A transaction included but failed is a receipt too: check its outcome.
    pub async fn send(
        &self,
        key: &SecretKey,
        messages: Vec<Message>,
        fee: Option<Amount>,
    ) -> Result<Receipt, ClientError> {
        let hash = self.sign_and_submit(key, messages, fee).await?;
        self.wait_for_tx(&hash, INCLUSION_TIMEOUT).await
    }

    /// [`RpcClient::send`] without waiting: returns the hash once the node accepted the
    /// transaction into its mempool.
    pub async fn sign_and_submit(
        &self,
        key: &SecretKey,
        messages: Vec<Message>,
        fee: Option<Amount>,
    ) -> Result<Hash, ClientError> {
        let status = self.status().await?;
        let account = self.account_verified(&key.public_key().address()).await?;
        let signed = Transaction {
            chain_id: status.chain_id,
            signer: key.public_key(),
            nonce: account.nonce,
            fee: fee.unwrap_or(status.min_fee),
            messages,
        }
        .sign(key);
        self.submit(&signed).await
    }

    /// Waits until a transaction is committed and returns its receipt.
    pub async fn wait_for_tx(
        &self,
        hash: &Hash,
        timeout: Duration,
    ) -> Result<Receipt, ClientError> {
        let start = Instant::now();
        loop {
            match self.tx_status(hash).await? {
                TxStatus::Committed { receipt } => return Ok(receipt),
                TxStatus::Rejected { reason } => {
                    return Err(ClientError::Rejected {
                        hash: *hash,
                        reason,
                    });
                }
                TxStatus::Pending | TxStatus::Unknown => {}
            }
            if start.elapsed() > timeout {
                return Err(ClientError::Timeout(*hash));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An account, with its entries checked against the state root in the block header of the
    /// height the node answered at.
    pub async fn account_verified(&self, address: &Address) -> Result<AccountView, ClientError> {
        let answer = self
            .inner
            .state_get_account(address.to_string())
            .await
            .map_err(|e| self.map(e))?;
        self.check_root(answer.height, answer.state_root).await?;
        verify_account(address, &answer)?;
        Ok(answer.account)
    }
}

/// A live subscription to committed block headers over WebSocket.
#[derive(Debug)]
pub struct HeadSubscription {
    _client: WsClient,
    inner: Subscription<BlockHeader>,
}

impl HeadSubscription {
    /// Subscribes at the node's RPC URL (`http://` is turned into `ws://`).
    pub async fn connect(url: &str) -> Result<HeadSubscription, ClientError> {
        let ws_url = url
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        let transport = |e: JsonRpcError| ClientError::Transport {
            url: ws_url.clone(),
            reason: e.to_string(),
        };
        let client = WsClientBuilder::default()
            .build(&ws_url)
            .await
            .map_err(transport)?;
        let inner = client.chain_subscribe_heads().await.map_err(transport)?;
        Ok(HeadSubscription {
            _client: client,
            inner,
        })
    }

    /// The next committed header; `None` when the node closed the subscription.
    pub async fn next(&mut self) -> Option<Result<BlockHeader, ClientError>> {
        self.inner
            .next()
            .await
            .map(|r| r.map_err(|e| ClientError::Verification(e.to_string())))
    }
}

/// The validator set in a commit answer, after checking its Merkle proof under the header's
/// `app_hash`.
fn proven_validators(view: &CommitView) -> Result<Vec<staking::ValidatorInfo>, ClientError> {
    let entry = view.validators_entry.as_deref().ok_or_else(|| {
        ClientError::Verification(format!(
            "the state before height {} records no validator set",
            view.header.height
        ))
    })?;
    let set: Vec<staking::ValidatorInfo> = proven_entry(
        view.header.app_hash,
        staking::VALIDATOR_SET_KEY,
        entry,
        &view.validators_proof,
    )?;
    if set != view.validators {
        return Err(ClientError::Verification(
            "the validator set differs from the proven entry".into(),
        ));
    }
    Ok(set)
}

/// Decodes a state entry after checking its Merkle proof under `root`.
fn proven_entry<T: borsh::BorshDeserialize>(
    root: Hash,
    key: &[u8],
    entry: &str,
    proof_hex: &str,
) -> Result<T, ClientError> {
    let bytes = decode_hex("entry", entry)?;
    verify_state_proof(root, key, Some(&bytes), &proof("entry proof", proof_hex)?)
        .map_err(|e| ClientError::Verification(e.to_string()))?;
    borsh::from_slice(&bytes).map_err(|e| ClientError::Verification(format!("entry: {e}")))
}

fn decode_hex(what: &str, s: &str) -> Result<Vec<u8>, ClientError> {
    hex::decode(s).map_err(|_| ClientError::Verification(format!("{what} is not hex")))
}

fn proof(what: &str, s: &str) -> Result<StateProof, ClientError> {
    borsh::from_slice(&decode_hex(what, s)?)
        .map_err(|e| ClientError::Verification(format!("{what}: {e}")))
}

/// Checks the proofs in an account answer and that the view matches the proven entries.
pub fn verify_account(address: &Address, answer: &AccountWithProof) -> Result<(), ClientError> {
    let root = answer.state_root;
    let fail = |e: hibana_types::ProofError| ClientError::Verification(e.to_string());
    let entry = answer
        .account_entry
        .as_deref()
        .map(|s| decode_hex("account entry", s))
        .transpose()?;
    verify_state_proof(
        root,
        &bank::account_key(address),
        entry.as_deref(),
        &proof("account proof", &answer.account_proof)?,
    )
    .map_err(fail)?;
    let account: bank::Account = match &entry {
        Some(bytes) => {
            borsh::from_slice(bytes).map_err(|e| ClientError::Verification(e.to_string()))?
        }
        None => bank::Account::default(),
    };
    if account.balance != answer.account.balance || account.nonce != answer.account.nonce {
        return Err(ClientError::Verification(
            "balance or nonce differs from the proven entry".into(),
        ));
    }
    let entry = answer
        .delegations_entry
        .as_deref()
        .map(|s| decode_hex("delegations entry", s))
        .transpose()?;
    verify_state_proof(
        root,
        &staking::delegations_key(address),
        entry.as_deref(),
        &proof("delegations proof", &answer.delegations_proof)?,
    )
    .map_err(fail)?;
    let delegations: std::collections::BTreeMap<Address, u128> = match &entry {
        Some(bytes) => {
            borsh::from_slice(bytes).map_err(|e| ClientError::Verification(e.to_string()))?
        }
        None => Default::default(),
    };
    let shown: std::collections::BTreeMap<Address, u128> = answer
        .account
        .delegations
        .iter()
        .map(|d| (d.validator, d.shares))
        .collect();
    if shown != delegations {
        return Err(ClientError::Verification(
            "delegations differ from the proven entry".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server that answers every request with `status` and no body.
    async fn answering(status: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn a_node_refusing_for_load_is_reported_busy_not_down() {
        let url = answering("429 Too Many Requests").await;
        let err = RpcClient::new(&url).unwrap().status().await.unwrap_err();
        assert!(
            matches!(err, ClientError::Busy { status: 429, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("busy"), "{err}");

        let url = answering("500 Internal Server Error").await;
        let err = RpcClient::new(&url).unwrap().status().await.unwrap_err();
        assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    }
}
