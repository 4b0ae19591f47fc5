//! A provider in the compute market: its registration (declared attributes, endpoint, prices
//! and bond), its bidding on the open orders it can serve at its price, and the connection of
//! its payments and training jobs to the chain.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use hibana_roles::provider::Provider;
use hibana_rpc::RpcClient;
use hibana_types::{
    Amount, Hash, Message, PlaceBid, RegisterProvider, SecretKey, UpdateProvider,
    records::market::{MIN_PROVIDER_BOND, ProviderAttributes},
};

/// Sends `messages` signed by `key` and waits for them to succeed (nothing when empty).
pub(crate) async fn send(
    client: &RpcClient,
    key: &SecretKey,
    messages: Vec<Message>,
    what: &str,
) -> Result<()> {
    if !messages.is_empty() {
        send_receipt(client, key, messages, what).await?;
    }
    Ok(())
}

/// Sends `messages` signed by `key`, waits for them to succeed and returns the receipt.
pub(crate) async fn send_receipt(
    client: &RpcClient,
    key: &SecretKey,
    messages: Vec<Message>,
    what: &str,
) -> Result<hibana_types::Receipt> {
    let receipt = client
        .send(key, messages, None)
        .await
        .with_context(|| what.to_string())?;
    if !receipt.is_success() {
        bail!("{what}: {:?}", receipt.outcome);
    }
    Ok(receipt)
}

/// What a provider on this machine declares: its cores, 1 GiB of memory, no GPU, `region`, and
/// the models it serves.
pub(crate) fn this_machine(region: &str, models: Vec<Hash>) -> ProviderAttributes {
    ProviderAttributes {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_mib: 1024,
        gpu_model: String::new(),
        gpu_count: 0,
        region: region.into(),
        models: models
            .into_iter()
            .take(hibana_types::records::market::MAX_MODELS)
            .collect(),
    }
}

/// Signs `messages` as one transaction of the provider (one at a time with its other
/// transactions) and waits for it to succeed.
pub(crate) async fn send_as(
    client: &RpcClient,
    provider: &Provider,
    messages: Vec<Message>,
    what: &str,
) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let receipt = provider
        .send_tx(client, messages)
        .await
        .with_context(|| what.to_string())?;
    if !receipt.is_success() {
        bail!("{what}: {:?}", receipt.outcome);
    }
    Ok(())
}

/// Registers the provider at `endpoint` (bonding [`MIN_PROVIDER_BOND`]), or updates its
/// record when the endpoint or attributes changed; nothing when the chain already has them.
pub(crate) async fn register(
    client: &RpcClient,
    provider: &Provider,
    endpoint: &str,
    attributes: ProviderAttributes,
    price_per_block: Amount,
    price_per_token: Amount,
) -> Result<()> {
    let address = provider.public_key().address();
    match client.market_provider(address).await? {
        None => {
            send_as(
                client,
                provider,
                vec![Message::RegisterProvider(RegisterProvider {
                    attributes,
                    price_per_block,
                    price_per_token,
                    endpoint: endpoint.into(),
                    bond: MIN_PROVIDER_BOND,
                })],
                "registering the provider",
            )
            .await
        }
        Some(p)
            if p.endpoint != endpoint
                || p.attributes != attributes
                || p.price_per_block != price_per_block
                || p.price_per_token != price_per_token =>
        {
            send_as(
                client,
                provider,
                vec![Message::UpdateProvider(UpdateProvider {
                    attributes,
                    price_per_block,
                    price_per_token,
                    endpoint: endpoint.into(),
                })],
                "updating the provider's record",
            )
            .await
        }
        Some(_) => Ok(()),
    }
}

/// Connects a provider's payments and training jobs to the chain at `url`, resumes the jobs it
/// was training, and posts the batch lines requested of it on chain.
pub(crate) fn connect(provider: &Arc<Provider>, url: &str) -> Result<()> {
    provider
        .payments()
        .connect_chain(url)
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    provider
        .jobs()
        .connect_chain(url)
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    hibana_roles::provider::jobs::resume_all(provider);
    hibana_roles::provider::batch::resume_all(provider);
    tokio::spawn(hibana_roles::provider::batch::post_owed_lines_forever(
        provider.clone(),
        Duration::from_secs(2),
    ));
    let client = RpcClient::new(url)?;
    tokio::spawn(heartbeat_forever(
        client,
        provider.clone(),
        Duration::from_millis(500),
    ));
    Ok(())
}

/// Proves the provider is up whenever a third of the chain's liveness interval has passed since
/// its last heartbeat (once it is registered), checking every `every`; runs until the process
/// ends.
pub(crate) async fn heartbeat_forever(client: RpcClient, provider: Arc<Provider>, every: Duration) {
    let me = provider.public_key().address();
    loop {
        if let Err(e) = heartbeat_if_due(&client, &provider, &me).await {
            tracing::warn!("heartbeat: {e:#}");
        }
        tokio::time::sleep(every).await;
    }
}

async fn heartbeat_if_due(
    client: &RpcClient,
    provider: &Provider,
    me: &hibana_types::Address,
) -> Result<()> {
    let view = client.market_liveness(*me).await?;
    let due = match &view.liveness {
        Some(l) => view.height >= l.last_seen + (view.liveness_blocks / 3).max(1),
        // Registered before liveness was kept, or not registered (the heartbeat would fail).
        None => client.market_provider(*me).await?.is_some(),
    };
    if due {
        send_as(
            client,
            provider,
            vec![Message::Heartbeat(hibana_types::Heartbeat {})],
            "sending a heartbeat",
        )
        .await?;
    }
    Ok(())
}

/// Registers the provider (retrying until its account holds the bond: the operator may fund
/// it after starting it), then bids on every open order it matches and whose maximum covers its
/// price, once per order, every `every`; runs until the process ends.
pub(crate) async fn join_and_bid(
    client: RpcClient,
    provider: Arc<Provider>,
    endpoint: String,
    attributes: ProviderAttributes,
    (per_block, per_token): (Amount, Amount),
    every: Duration,
) {
    let me = provider.public_key().address();
    let mut warned = false;
    loop {
        match register(
            &client,
            &provider,
            &endpoint,
            attributes.clone(),
            per_block,
            per_token,
        )
        .await
        {
            Ok(()) => break,
            Err(e) => {
                if !warned {
                    eprintln!(
                        "the provider cannot join the market yet ({e:#}); send {me} the 10 HIB \
                         bond and fees and it will"
                    );
                    warned = true;
                }
                tokio::time::sleep(every).await;
            }
        }
    }
    tracing::info!(provider = %me, "registered in the market");
    bid_forever(client, provider, every).await;
}

/// Bids on every open order the provider can serve at its price, once per order, every
/// `every`; runs until the process ends.
pub(crate) async fn bid_forever(client: RpcClient, provider: Arc<Provider>, every: Duration) {
    loop {
        if let Err(e) = bid_once(&client, &provider).await {
            tracing::warn!("bidding: {e:#}");
        }
        tokio::time::sleep(every).await;
    }
}

/// One round of bidding: a bid on each open order this provider can serve at its price and
/// has not bid on; returns the orders bid on.
pub(crate) async fn bid_once(client: &RpcClient, provider: &Provider) -> Result<Vec<u64>> {
    let me = &provider.public_key().address();
    let Some(record) = client.market_provider(*me).await? else {
        return Ok(Vec::new());
    };
    let mut placed = Vec::new();
    for order in client.market_orders().await? {
        if order.owner == *me
            || order.max_price_per_block.0 < record.price_per_block.0
            || hibana_runtime::market::mismatch(&record.attributes, &order.resources).is_some()
        {
            continue;
        }
        let Some(view) = client.market_order(order.id).await? else {
            continue;
        };
        if view.bids.iter().any(|b| b.provider == *me) {
            continue;
        }
        send_as(
            client,
            provider,
            vec![Message::PlaceBid(PlaceBid {
                order: order.id,
                price_per_block: record.price_per_block,
            })],
            &format!("bidding on order {}", order.id),
        )
        .await?;
        tracing::info!(order = order.id, "placed a bid");
        placed.push(order.id);
    }
    Ok(placed)
}
