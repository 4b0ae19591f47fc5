//! Payments: a gateway pays the provider through a payment channel, handing it the latest
//! voucher at `POST /v1/vouchers`. The provider checks it against the channel on chain (it pays
//! this provider, the signer is the channel's, it promises more than before and no more than
//! the deposit), keeps the latest per channel in a file, and redeems them on chain in one
//! transaction from time to time.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use axum::{Json, extract::State, http::StatusCode};
use hibana_rpc::RpcClient;
use hibana_types::{
    Message, RedeemVouchers,
    records::channels::{ChannelStatus, MAX_VOUCHERS_PER_REDEEM, SignedVoucher},
};
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;

use super::state::AppState;
use crate::openai::ApiError;

/// The vouchers a provider holds, and the chain it redeems them on.
#[derive(Debug)]
pub struct Payments {
    path: PathBuf,
    latest: Mutex<BTreeMap<u64, SignedVoucher>>,
    chain: RwLock<Option<RpcClient>>,
}

impl Payments {
    /// The vouchers kept in `path` (none yet if it does not exist).
    pub fn open(path: PathBuf) -> Payments {
        let latest = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Payments {
            path,
            latest: Mutex::new(latest),
            chain: RwLock::new(None),
        }
    }

    /// Checks vouchers against, and redeems them on, the chain whose node answers at `url`.
    pub fn connect_chain(&self, url: &str) -> Result<(), String> {
        *self.chain.write() = Some(RpcClient::new(url).map_err(|e| e.to_string())?);
        Ok(())
    }

    /// The latest voucher held on each channel.
    pub fn held(&self) -> BTreeMap<u64, SignedVoucher> {
        self.latest.lock().clone()
    }

    fn save(&self, latest: &BTreeMap<u64, SignedVoucher>) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(latest)?)?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Redeems every held voucher that promises more than its channel paid.
    pub async fn redeem(&self, provider: &super::Provider) -> Result<usize, String> {
        let Some(chain) = self.chain.read().clone() else {
            return Ok(0);
        };
        let mut due = Vec::new();
        for v in self.held().into_values() {
            if let Ok((_, Some(c))) = chain.channel(v.voucher.channel).await
                && c.status == ChannelStatus::Open
                && v.voucher.cumulative > c.redeemed
                && v.voucher.nonce > c.nonce
            {
                due.push(v);
            }
        }
        for batch in due.chunks(MAX_VOUCHERS_PER_REDEEM) {
            let message = Message::RedeemVouchers(RedeemVouchers {
                vouchers: batch.to_vec(),
            });
            let receipt = provider
                .send_tx(&chain, vec![message])
                .await
                .map_err(|e| e.to_string())?;
            if !receipt.is_success() {
                return Err(format!("redemption failed: {:?}", receipt.outcome));
            }
        }
        Ok(due.len())
    }
}

/// Redeems the provider's vouchers every `every`, for as long as the process runs.
pub fn redeem_in_background(provider: Arc<super::Provider>, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match provider.payments.redeem(&provider).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(vouchers = n, "redeemed vouchers"),
                Err(e) => tracing::warn!(error = %e, "cannot redeem vouchers"),
            }
        }
    });
}

#[derive(Deserialize)]
pub(super) struct VoucherBody {
    voucher: String,
}

/// `POST /v1/vouchers`: takes a gateway's latest voucher on a channel paying this provider.
pub(super) async fn take_voucher(
    State(p): State<AppState>,
    Json(body): Json<VoucherBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let v = SignedVoucher::from_hex(&body.voucher).map_err(|e| ApiError::invalid(None, e))?;
    v.verify()
        .map_err(|e| ApiError::invalid(None, format!("the voucher's signature is bad: {e}")))?;
    let Some(chain) = p.payments.chain.read().clone() else {
        return Err(ApiError::server(
            StatusCode::SERVICE_UNAVAILABLE,
            "this provider reads no chain: it cannot check vouchers",
        ));
    };
    let id = v.voucher.channel;
    let channel = chain
        .channel(id)
        .await
        .map_err(|e| ApiError::server(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
        .1
        .ok_or_else(|| ApiError::invalid(None, format!("channel {id} does not exist")))?;
    let me = p.key.public_key().address();
    let reason = if channel.payee != me {
        Some(format!(
            "channel {id} pays {}, not this provider",
            channel.payee
        ))
    } else if channel.signer != v.signer {
        Some(format!(
            "channel {id} honours {}, not {}",
            channel.signer, v.signer
        ))
    } else if v.voucher.cumulative > channel.deposit {
        Some(format!(
            "the voucher promises {}, more than the deposit {}",
            v.voucher.cumulative, channel.deposit
        ))
    } else if channel.status != ChannelStatus::Open {
        Some(format!("channel {id} is closed"))
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(ApiError::invalid(None, reason));
    }
    let mut latest = p.payments.latest.lock();
    let newer = latest.get(&id).is_none_or(|old| {
        old.voucher.nonce < v.voucher.nonce && old.voucher.cumulative <= v.voucher.cumulative
    });
    if newer {
        latest.insert(id, v);
        p.payments
            .save(&latest)
            .map_err(|e| ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    let held = latest.get(&id).map(|v| v.voucher.cumulative);
    Ok(Json(serde_json::json!({"channel": id, "held": held})))
}
