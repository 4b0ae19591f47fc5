//! Billing: every paid answer moves tokens on chain. An API key is bound to its account by a
//! payment channel that account opened to the gateway's operator, honouring the vouchers of the
//! key's derived signer ([`crate::keys::voucher_signer`]). Before a request is forwarded, the
//! most it can cost (its token bound × the highest price among its providers) is held on that
//! channel, and on the gateway's own channel to the provider; a key whose channel cannot hold
//! it gets 402. Once the receipt checks out, the gateway signs the client's voucher for the
//! channel's new cumulative total with the key's signer and its own voucher to the provider,
//! writes both to the [`Ledger`], and only then answers. In the background it redeems the
//! clients' latest vouchers in batches, opens and tops up its channels to the providers it
//! routes to, and hands each provider its latest voucher to redeem.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use hibana_rpc::RpcClient;
use hibana_types::{
    Address, Amount, Hash, InferenceReceipt, Message, OpenChannel, PublicKey, RedeemVouchers,
    SecretKey, TopUpChannel,
    records::channels::{Channel, ChannelStatus, MAX_VOUCHERS_PER_REDEEM, Voucher},
};
use parking_lot::Mutex;

use super::ledger::{ChannelVoucher, Entry, Ledger};
use crate::{keys::ApiKeyRecord, openai::ApiError};

/// A channel closer than this many blocks to its expiry takes no new requests: the gateway
/// needs the time to redeem what it is owed before the payer can close.
pub const EXPIRY_MARGIN_BLOCKS: u64 = 100;

/// Blocks the gateway's channels to providers stay open.
const PROVIDER_CHANNEL_BLOCKS: u64 = 1_000_000;

/// What one billed request holds until it is answered or fails.
pub(super) struct Hold {
    billing: Arc<Billing>,
    /// (channel, amount) held.
    held: Vec<(u64, u128)>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut reserved = self.billing.reserved.lock();
        for (channel, amount) in &self.held {
            if let Some(r) = reserved.get_mut(channel) {
                *r = r.saturating_sub(*amount);
            }
        }
    }
}

/// The client side of a billed request: the key, its secret's signer and its channel.
#[derive(Clone)]
pub(super) struct Payer {
    pub(super) key: ApiKeyRecord,
    signer: Arc<SecretKey>,
    channel: u64,
}

/// The gateway's billing state.
pub struct Billing {
    operator: SecretKey,
    chain: RpcClient,
    chain_id: String,
    pub(super) ledger: Ledger,
    /// Deposit of each channel the gateway opens to a provider (and of each top-up).
    provider_deposit: Amount,
    /// Latest chain height seen.
    height: AtomicU64,
    /// Channels as last read from the chain, by id.
    channels: Mutex<BTreeMap<u64, Channel>>,
    /// The channel each key (by hash) pays through.
    by_key: Mutex<HashMap<Hash, u64>>,
    /// The gateway's open channel to each provider.
    to_provider: Mutex<BTreeMap<Address, u64>>,
    /// Held for requests in flight, by channel.
    reserved: Mutex<BTreeMap<u64, u128>>,
    /// The voucher nonce each provider was last handed, by channel.
    pushed: Mutex<BTreeMap<u64, u64>>,
}

impl std::fmt::Debug for Billing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Billing({})", self.operator.public_key().address())
    }
}

impl Billing {
    /// Billing by `operator` on the chain `chain` answers for, with its ledger in `dir`.
    pub async fn new(
        operator: SecretKey,
        chain: RpcClient,
        dir: &std::path::Path,
        provider_deposit: Amount,
    ) -> std::io::Result<Billing> {
        let status = chain
            .status()
            .await
            .map_err(|e| std::io::Error::other(format!("cannot read the chain: {e}")))?;
        Ok(Billing {
            operator,
            chain,
            chain_id: status.chain_id,
            ledger: Ledger::open(dir)?,
            provider_deposit,
            height: AtomicU64::new(status.height),
            channels: Mutex::default(),
            by_key: Mutex::default(),
            to_provider: Mutex::default(),
            reserved: Mutex::default(),
            pushed: Mutex::default(),
        })
    }

    /// The operator's address: clients open their channels to it.
    pub fn operator(&self) -> Address {
        self.operator.public_key().address()
    }

    /// What a channel can still promise: its deposit less the latest voucher on it (or what
    /// it redeemed, if more) and less what requests in flight hold.
    fn available(&self, c: &Channel) -> u128 {
        let state = self.ledger.state();
        let signed = state
            .clients
            .get(&c.id)
            .or_else(|| state.providers.get(&c.id))
            .map_or(0, |v| v.voucher.voucher.cumulative.0)
            .max(c.redeemed.0);
        let held = self.reserved.lock().get(&c.id).copied().unwrap_or(0);
        c.deposit.0.saturating_sub(signed).saturating_sub(held)
    }

    /// Whether a channel takes new requests at the current height.
    fn usable(&self, c: &Channel) -> bool {
        c.status == ChannelStatus::Open
            && c.settling_until.is_none()
            && c.expires_at > self.height.load(Ordering::Relaxed) + EXPIRY_MARGIN_BLOCKS
    }

    /// The channel through which the key with `secret` pays, read from the chain unless known.
    pub(super) async fn payer(&self, key: &ApiKeyRecord, secret: &str) -> Result<Payer, ApiError> {
        let signer = crate::keys::voucher_signer(secret);
        let known = self.by_key.lock().get(&key.key_hash).copied();
        let usable =
            known.filter(|id| self.channels.lock().get(id).is_some_and(|c| self.usable(c)));
        let channel = match usable {
            Some(id) => id,
            None => self.find_channel(key, signer.public_key()).await?,
        };
        Ok(Payer {
            key: key.clone(),
            signer: Arc::new(signer),
            channel,
        })
    }

    async fn find_channel(&self, key: &ApiKeyRecord, signer: PublicKey) -> Result<u64, ApiError> {
        let view = self
            .chain
            .channels(key.account, Some(self.operator()))
            .await
            .map_err(|e| {
                ApiError::server(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    format!("the gateway cannot read the chain to bill this key: {e}"),
                )
            })?;
        self.height.fetch_max(view.height, Ordering::Relaxed);
        let best = view
            .channels
            .into_iter()
            .filter(|c| c.signer == signer && self.usable(c))
            .max_by_key(|c| (c.deposit.0.saturating_sub(c.redeemed.0), c.id));
        let Some(c) = best else {
            return Err(ApiError::payment_required(format!(
                "No open payment channel pays this gateway for key `{}`. Open one from {}: \
                 `hibana channel open --to {} --api-key <this key> --deposit 5HIB --from <key of {}>`.",
                key.name,
                key.account,
                self.operator(),
                key.account
            )));
        };
        let id = c.id;
        self.channels.lock().insert(id, c);
        self.by_key.lock().insert(key.key_hash, id);
        Ok(id)
    }

    /// Holds `amount` on the payer's channel, and on the gateway's channel to `provider` if the
    /// answer will cost something.
    pub(super) fn hold(
        self: &Arc<Self>,
        payer: &Payer,
        provider: Option<Address>,
        amount: u128,
    ) -> Result<Hold, HoldError> {
        let client = self
            .channels
            .lock()
            .get(&payer.channel)
            .cloned()
            .ok_or(HoldError::Client(0))?;
        let left = self.available(&client);
        if left < amount.max(1) {
            return Err(HoldError::Client(left));
        }
        let mut held = vec![(client.id, amount)];
        if let Some(provider) = provider.filter(|_| amount > 0) {
            let id = self.to_provider.lock().get(&provider).copied();
            let channel = id.and_then(|id| self.channels.lock().get(&id).cloned());
            match channel {
                Some(c) if self.usable(&c) && self.available(&c) >= amount => {
                    held.push((c.id, amount));
                }
                _ => return Err(HoldError::Provider),
            }
        }
        let mut reserved = self.reserved.lock();
        for (id, a) in &held {
            *reserved.entry(*id).or_default() += a;
        }
        Ok(Hold {
            billing: self.clone(),
            held,
        })
    }

    /// Charges an answer: signs the client's voucher and the provider's for the receipt's
    /// price and writes them, with the key's usage, to the ledger before the answer is sent.
    pub(super) fn charge(
        &self,
        payer: &Payer,
        hold: &Hold,
        receipt: &InferenceReceipt,
    ) -> Result<(), String> {
        let price = receipt.body.price;
        let provider_channel = hold.held.get(1).map(|(id, _)| *id);
        let provider = receipt.body.provider.address();
        let written = self
            .ledger
            .record(|state, seq| {
                let next = |book: &BTreeMap<u64, ChannelVoucher>, id: u64| {
                    let (cumulative, nonce) = book.get(&id).map_or((0, 0), |v| {
                        (v.voucher.voucher.cumulative.0, v.voucher.voucher.nonce)
                    });
                    let redeemed = self.channels.lock().get(&id).map_or(0, |c| c.redeemed.0);
                    (
                        Amount(cumulative.max(redeemed).saturating_add(price.0)),
                        nonce + 1,
                    )
                };
                let (client, provider_voucher) = if price.0 == 0 {
                    (None, None)
                } else {
                    let (cumulative, nonce) = next(&state.clients, payer.channel);
                    let client = ChannelVoucher {
                        payee: self.operator(),
                        voucher: Voucher {
                            chain_id: self.chain_id.clone(),
                            channel: payer.channel,
                            cumulative,
                            nonce,
                        }
                        .sign(&payer.signer),
                    };
                    let provider_voucher = match provider_channel {
                        Some(id) => {
                            let (cumulative, nonce) = next(&state.providers, id);
                            Some(ChannelVoucher {
                                payee: provider,
                                voucher: Voucher {
                                    chain_id: self.chain_id.clone(),
                                    channel: id,
                                    cumulative,
                                    nonce,
                                }
                                .sign(&self.operator),
                            })
                        }
                        None => return Err("no channel pays this provider".to_string()),
                    };
                    (Some(client), provider_voucher)
                };
                Ok(Entry {
                    seq,
                    key: payer.key.name.clone(),
                    prompt_tokens: receipt.body.prompt_tokens,
                    completion_tokens: receipt.body.completion_tokens,
                    price,
                    client,
                    provider: provider_voucher,
                })
            })
            .map_err(|e| format!("cannot write the ledger: {e}"))?;
        written.map(|_| ())
    }

    /// Records an answer that is not priced per token (a proof, an audit) in the key's usage,
    /// at no charge: the ledger is the usage of a billing gateway.
    pub(super) fn record_unbilled(
        &self,
        key: &ApiKeyRecord,
        receipt: &InferenceReceipt,
    ) -> Result<(), String> {
        self.ledger
            .record(|_, seq| {
                Ok::<_, String>(Entry {
                    seq,
                    key: key.name.clone(),
                    prompt_tokens: receipt.body.prompt_tokens,
                    completion_tokens: receipt.body.completion_tokens,
                    price: Amount::ZERO,
                    client: None,
                    provider: None,
                })
            })
            .map_err(|e| format!("cannot write the ledger: {e}"))?
            .map(|_| ())
    }

    /// Background upkeep: reads the channels again, redeems the clients' latest vouchers,
    /// keeps a funded channel open to each priced provider in `providers` (address → URL), and
    /// hands each provider its latest voucher.
    pub async fn upkeep(&self, providers: &BTreeMap<Address, String>, http: &reqwest::Client) {
        if let Ok(status) = self.chain.status().await {
            self.height.fetch_max(status.height, Ordering::Relaxed);
        }
        self.refresh().await;
        if let Err(e) = self.redeem().await {
            tracing::warn!(error = %e, "cannot redeem the clients' vouchers");
        }
        for (provider, url) in providers {
            if let Err(e) = self.fund(*provider).await {
                tracing::warn!(%provider, error = %e, "cannot fund a channel to a provider");
            }
            self.push(*provider, url, http).await;
        }
        if let Err(e) = self.ledger.compact() {
            tracing::warn!(error = %e, "cannot compact the ledger");
        }
    }

    /// Challenges a wrong answer on chain as the operator, for the validators of `subnet` to
    /// judge.
    pub(super) async fn challenge(
        &self,
        subnet: u32,
        receipt: InferenceReceipt,
        request: Vec<u8>,
        response: Vec<u8>,
    ) {
        let message = Message::ChallengeReceipt(hibana_types::ChallengeReceipt {
            subnet,
            receipt,
            request,
            response,
            deposit: hibana_types::records::verify::MIN_CHALLENGE_DEPOSIT,
        });
        match self.chain.send(&self.operator, vec![message], None).await {
            Ok(r) if r.is_success() => tracing::info!(tx = %r.tx_hash, "challenged a wrong answer"),
            Ok(r) => tracing::warn!(outcome = ?r.outcome, "the challenge failed"),
            Err(e) => tracing::warn!(error = %e, "the challenge was refused"),
        }
    }

    /// Reads every known channel again, and finds the gateway's channels to providers.
    async fn refresh(&self) {
        let ids: Vec<u64> = self.channels.lock().keys().copied().collect();
        for id in ids {
            if let Ok((_, Some(c))) = self.chain.channel(id).await {
                self.channels.lock().insert(id, c);
            }
        }
        if let Ok(view) = self.chain.channels(self.operator(), None).await {
            let mut to_provider = self.to_provider.lock();
            let mut channels = self.channels.lock();
            for c in view.channels {
                if self.usable(&c) {
                    let better = to_provider
                        .get(&c.payee)
                        .and_then(|id| channels.get(id))
                        .is_none_or(|old| old.id < c.id);
                    if better {
                        to_provider.insert(c.payee, c.id);
                    }
                }
                channels.insert(c.id, c);
            }
        }
    }

    /// Redeems the latest voucher of every client channel that owes more than it paid.
    async fn redeem(&self) -> Result<(), String> {
        let state = self.ledger.state();
        let due: Vec<_> = {
            let channels = self.channels.lock();
            state
                .clients
                .values()
                .filter(|v| {
                    channels.get(&v.voucher.voucher.channel).is_some_and(|c| {
                        c.status == ChannelStatus::Open
                            && v.voucher.voucher.cumulative > c.redeemed
                            && v.voucher.voucher.nonce > c.nonce
                    })
                })
                .map(|v| v.voucher.clone())
                .collect()
        };
        for batch in due.chunks(MAX_VOUCHERS_PER_REDEEM) {
            let receipt = self
                .chain
                .send(
                    &self.operator,
                    vec![Message::RedeemVouchers(RedeemVouchers {
                        vouchers: batch.to_vec(),
                    })],
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
            if !receipt.is_success() {
                return Err(format!("redemption failed: {:?}", receipt.outcome));
            }
            tracing::info!(vouchers = batch.len(), "redeemed the clients' vouchers");
        }
        if !due.is_empty() {
            self.refresh().await;
        }
        Ok(())
    }

    /// Opens a channel to `provider`, or tops it up when less than a quarter of a deposit is
    /// left.
    async fn fund(&self, provider: Address) -> Result<(), String> {
        let id = self.to_provider.lock().get(&provider).copied();
        let channel = id.and_then(|id| self.channels.lock().get(&id).cloned());
        let deposit = self.provider_deposit;
        let message = match channel {
            Some(c) if self.usable(&c) => {
                if self.available(&c) >= deposit.0 / 4 {
                    return Ok(());
                }
                Message::TopUpChannel(TopUpChannel {
                    channel: c.id,
                    amount: deposit,
                    expires_at: None,
                })
            }
            _ => Message::OpenChannel(OpenChannel {
                payee: provider,
                signer: None,
                deposit,
                expires_at: self.height.load(Ordering::Relaxed) + PROVIDER_CHANNEL_BLOCKS,
            }),
        };
        let receipt = self
            .chain
            .send(&self.operator, vec![message], None)
            .await
            .map_err(|e| e.to_string())?;
        if !receipt.is_success() {
            return Err(format!("{:?}", receipt.outcome));
        }
        self.refresh().await;
        Ok(())
    }

    /// Hands `provider` (at `url`) the gateway's latest voucher on its channel, if it has not
    /// had it yet.
    async fn push(&self, provider: Address, url: &str, http: &reqwest::Client) {
        let Some(id) = self.to_provider.lock().get(&provider).copied() else {
            return;
        };
        let state = self.ledger.state();
        let Some(v) = state.providers.get(&id) else {
            return;
        };
        let nonce = v.voucher.voucher.nonce;
        if self.pushed.lock().get(&id).is_some_and(|n| *n >= nonce) {
            return;
        }
        let sent = http
            .post(format!("{url}/v1/vouchers"))
            .json(&serde_json::json!({"voucher": v.voucher.to_hex()}))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                self.pushed.lock().insert(id, nonce);
            }
            Ok(r) => {
                tracing::warn!(%provider, status = %r.status(), "a provider refused its voucher")
            }
            Err(e) => tracing::warn!(%provider, error = %e, "cannot hand a provider its voucher"),
        }
    }
}

/// Why a request could not be held.
#[derive(Debug)]
pub(super) enum HoldError {
    /// The client's channel has only this much left.
    Client(u128),
    /// The gateway has no funded channel to the provider yet.
    Provider,
}
