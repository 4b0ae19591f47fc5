//! Following a node: backfill by RPC from the cursor to the head, then each new head (from the
//! WebSocket subscription, or polling when it is unavailable), with the snapshot tables
//! (accounts, validators, subnets, neurons, weights, emissions, providers, labels) refreshed
//! after each pass.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use arrow::array::{Array, StringArray};
use hibana_rpc::{BlockId, HeadSubscription, RpcClient};
use tokio::task::JoinSet;

use crate::{
    AnalyticsError, Cursor, TableStore,
    derive::{BlockData, Rows, addresses, block_rows},
    tables::{Row, cell},
};

/// How the indexer batches its work.
#[derive(Debug, Clone, Copy)]
pub struct IndexerConfig {
    /// Most heights written as one part file per table.
    pub batch_blocks: u64,
    /// Blocks fetched at once.
    pub concurrency: usize,
    /// Shortest time between two writes while following the head (fewer, larger files).
    pub flush_every: Duration,
    /// How often every known account is re-read (touched ones are re-read at every pass).
    pub full_refresh_every: Duration,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        IndexerConfig {
            batch_blocks: 500,
            concurrency: 8,
            flush_every: Duration::from_millis(500),
            full_refresh_every: Duration::from_secs(30),
        }
    }
}

/// A name for an address that the indexer is given (keyring names, the node's own keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The address.
    pub address: String,
    /// Its name.
    pub name: String,
    /// Where the name comes from (`keyring`, `validator`, …).
    pub source: String,
}

/// What one pass indexed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Heights indexed.
    pub blocks: u64,
    /// Transactions indexed.
    pub txs: u64,
    /// The cursor after the pass.
    pub height: u64,
}

/// Follows a node into a [`TableStore`].
#[derive(Debug)]
pub struct Indexer {
    client: RpcClient,
    store: TableStore,
    config: IndexerConfig,
    seeds: Vec<Label>,
    /// Every address seen, with its row in `accounts`.
    accounts: BTreeMap<String, Row>,
    last_full_refresh: Option<Instant>,
    labels_written: Option<Vec<Row>>,
}

impl Indexer {
    /// An indexer of the node at `rpc` into `store`, naming `seeds` in `labels`.
    pub fn new(
        rpc: &str,
        store: TableStore,
        config: IndexerConfig,
        seeds: Vec<Label>,
    ) -> Result<Indexer, AnalyticsError> {
        let client = RpcClient::new(rpc)?;
        let mut accounts = BTreeMap::new();
        for batch in store.read("accounts")? {
            if let Some(col) = batch.column(0).as_any().downcast_ref::<StringArray>() {
                for i in 0..col.len() {
                    if col.is_valid(i) {
                        accounts.insert(col.value(i).to_string(), Vec::new());
                    }
                }
            }
        }
        for seed in &seeds {
            accounts.insert(seed.address.clone(), Vec::new());
        }
        Ok(Indexer {
            client,
            store,
            config,
            seeds,
            accounts,
            last_full_refresh: None,
            labels_written: None,
        })
    }

    /// The store it writes.
    pub fn store(&self) -> &TableStore {
        &self.store
    }

    /// Indexes every height up to the node's head, then refreshes the snapshot tables.
    pub async fn sync(&mut self) -> Result<SyncReport, AnalyticsError> {
        let status = self.client.status().await?;
        let mut cursor = self.store.cursor()?;
        self.check_same_chain(&cursor, &status.chain_id).await?;
        let mut report = SyncReport::default();
        let mut touched = BTreeSet::new();
        while cursor.height < status.height {
            let from = cursor.height + 1;
            let to = status.height.min(cursor.height + self.config.batch_blocks);
            let blocks = self.fetch(from, to).await?;
            let mut rows = Rows::new();
            for data in &blocks {
                block_rows(data, &mut rows);
                touched.extend(addresses(data));
                report.txs += data.txs.len() as u64;
            }
            let last = blocks
                .last()
                .ok_or_else(|| AnalyticsError::Incomplete(format!("no block {to}")))?;
            cursor = Cursor {
                height: to,
                block_hash: Some(last.hash.to_string()),
                chain_id: Some(status.chain_id.clone()),
            };
            self.store.append(from, to, &rows, &cursor)?;
            report.blocks += to + 1 - from;
        }
        report.height = cursor.height;
        if report.blocks > 0 {
            self.store.compact()?;
        }
        self.refresh_snapshots(&status, touched, report.blocks > 0)
            .await?;
        Ok(report)
    }

    async fn check_same_chain(
        &self,
        cursor: &Cursor,
        chain_id: &str,
    ) -> Result<(), AnalyticsError> {
        let other = |reason: String| AnalyticsError::OtherChain {
            dir: self.store.dir().display().to_string(),
            reason,
        };
        if let Some(indexed) = &cursor.chain_id
            && indexed != chain_id
        {
            return Err(other(format!("chain {indexed}, the node is on {chain_id}")));
        }
        if let Some(hash) = &cursor.block_hash {
            let block = self
                .client
                .block(Some(BlockId::Height(cursor.height)))
                .await?;
            match block {
                Some(view) if view.hash.to_string() == *hash => {}
                Some(view) => {
                    return Err(other(format!(
                        "block {} is {hash} in the tables and {} on the node",
                        cursor.height, view.hash
                    )));
                }
                None => {
                    return Err(other(format!(
                        "the node has no block {} yet the tables do",
                        cursor.height
                    )));
                }
            }
        }
        Ok(())
    }

    /// Blocks `from..=to` with their receipts and block events, in height order.
    async fn fetch(&self, from: u64, to: u64) -> Result<Vec<BlockData>, AnalyticsError> {
        let mut out = BTreeMap::new();
        let mut tasks = JoinSet::new();
        let mut next = from;
        loop {
            while next <= to && tasks.len() < self.config.concurrency.max(1) {
                let client = self.client.clone();
                tasks.spawn(fetch_block(client, next));
                next += 1;
            }
            let Some(done) = tasks.join_next().await else {
                break;
            };
            let data = done.map_err(|e| AnalyticsError::Incomplete(e.to_string()))??;
            out.insert(data.block.header.height, data);
        }
        Ok(out.into_values().collect())
    }

    async fn refresh_snapshots(
        &mut self,
        status: &hibana_rpc::ChainStatus,
        touched: BTreeSet<String>,
        new_blocks: bool,
    ) -> Result<(), AnalyticsError> {
        let full = self
            .last_full_refresh
            .is_none_or(|t| t.elapsed() >= self.config.full_refresh_every);
        for v in &status.validators {
            self.accounts.entry(v.address.to_string()).or_default();
        }
        for address in &touched {
            self.accounts.entry(address.clone()).or_default();
        }
        let stale: Vec<String> = self
            .accounts
            .iter()
            .filter(|(a, row)| full || row.is_empty() || touched.contains(*a))
            .map(|(a, _)| a.clone())
            .collect();
        if !stale.is_empty() || full {
            for address in stale {
                let Ok(parsed) = address.parse::<hibana_types::Address>() else {
                    continue;
                };
                let view = self.client.account_verified(&parsed).await?;
                let row = vec![
                    cell::str(&address),
                    cell::amount(view.balance.0),
                    cell::amount(view.stake.0),
                    cell::u64(view.nonce),
                    cell::u64(status.height),
                ];
                self.accounts.insert(address, row);
            }
            let rows: Vec<Row> = self
                .accounts
                .values()
                .filter(|r| !r.is_empty())
                .cloned()
                .collect();
            self.store.write_snapshot("accounts", &rows)?;
        }
        if full || new_blocks {
            self.refresh_state(status).await?;
        }
        if full {
            self.last_full_refresh = Some(Instant::now());
        }
        self.refresh_labels(status).await
    }

    async fn refresh_state(
        &mut self,
        status: &hibana_rpc::ChainStatus,
    ) -> Result<(), AnalyticsError> {
        let validators: Vec<Row> = status
            .validators
            .iter()
            .map(|v| {
                vec![
                    cell::str(v.address.to_string()),
                    cell::str(hex::encode(v.public_key.0)),
                    cell::amount(v.power.0),
                    cell::u64(status.height),
                ]
            })
            .collect();
        self.store.write_snapshot("validators", &validators)?;
        let (mut subnets, mut neurons, mut weights, mut emissions) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for subnet in self.client.subnets().await? {
            let key = subnet.id.to_string();
            let id = u64::from(subnet.id);
            let view = self.client.subnet(&key).await?;
            subnets.push(vec![
                cell::u64(id),
                cell::str(subnet.name),
                cell::str(subnet.task),
                cell::str(subnet.owner.to_string()),
                cell::amount(subnet.deposit.0),
                cell::u64(subnet.created_at),
                cell::u64(subnet.epochs),
                crate::tables::Cell::Amount(view.as_ref().map(|v| v.epoch_emission.0)),
            ]);
            for n in view.map(|v| v.neurons).unwrap_or_default() {
                self.accounts.entry(n.account.to_string()).or_default();
                neurons.push(vec![
                    cell::u64(id),
                    cell::u64(u64::from(n.uid)),
                    cell::str(n.account.to_string()),
                    cell::str(format!("{:?}", n.role).to_lowercase()),
                    cell::str(n.endpoint),
                    cell::str(n.model.to_string()),
                    cell::u64(n.registered_at),
                    cell::amount(n.stake.0),
                    cell::bool(n.active),
                    cell::u64(n.incentive),
                    cell::u64(n.dividends),
                    cell::u64(n.trust),
                    cell::u64(n.consensus),
                    cell::amount(n.last_emission.0),
                    cell::amount(n.total_emission.0),
                ]);
            }
            for w in self.client.subnet_weights(&key).await? {
                if let Some(revealed) = w.revealed {
                    for (miner, weight) in revealed.weights {
                        weights.push(vec![
                            cell::u64(id),
                            cell::u64(u64::from(w.uid)),
                            cell::u64(u64::from(miner)),
                            cell::u64(u64::from(weight)),
                            cell::u64(revealed.revealed_at),
                        ]);
                    }
                }
            }
            for epoch in self.client.subnet_emissions(&key, Some(u32::MAX)).await? {
                for (uid, account, amount) in epoch.paid {
                    emissions.push(vec![
                        cell::u64(id),
                        cell::u64(epoch.epoch),
                        cell::u64(epoch.height),
                        cell::u64(u64::from(uid)),
                        cell::str(account.to_string()),
                        cell::amount(amount.0),
                    ]);
                }
            }
        }
        self.store.write_snapshot("subnets", &subnets)?;
        self.store.write_snapshot("neurons", &neurons)?;
        self.store.write_snapshot("weights", &weights)?;
        self.store.write_snapshot("emissions", &emissions)?;
        let providers: Vec<Row> = self
            .client
            .market_providers()
            .await?
            .into_iter()
            .map(|p| {
                vec![
                    cell::str(p.address.to_string()),
                    cell::str(p.endpoint),
                    cell::u64(u64::from(p.attributes.cores)),
                    cell::u64(p.attributes.memory_mib),
                    cell::str(p.attributes.gpu_model),
                    cell::u64(u64::from(p.attributes.gpu_count)),
                    cell::str(p.attributes.region),
                    cell::amount(p.price_per_block.0),
                    cell::amount(p.price_per_token.0),
                    cell::amount(p.bond.0),
                    cell::u64(p.registered_at),
                    cell::u64(u64::from(p.active_leases)),
                ]
            })
            .collect();
        self.store.write_snapshot("providers", &providers)?;
        Ok(())
    }

    async fn refresh_labels(
        &mut self,
        status: &hibana_rpc::ChainStatus,
    ) -> Result<(), AnalyticsError> {
        let mut rows: Vec<Row> = Vec::new();
        let mut push = |address: String, name: String, source: &str| {
            rows.push(vec![cell::str(address), cell::str(name), cell::str(source)]);
        };
        for seed in &self.seeds {
            push(seed.address.clone(), seed.name.clone(), &seed.source);
        }
        for (i, v) in status.validators.iter().enumerate() {
            push(v.address.to_string(), format!("validator {i}"), "validator");
        }
        if let Ok(batches) = self.store.read("providers") {
            for batch in batches {
                let cols = (
                    batch.column(0).as_any().downcast_ref::<StringArray>(),
                    batch.column(1).as_any().downcast_ref::<StringArray>(),
                );
                if let (Some(addr), Some(endpoint)) = cols {
                    for i in 0..addr.len() {
                        push(
                            addr.value(i).to_string(),
                            format!("provider {}", endpoint.value(i)),
                            "provider",
                        );
                    }
                }
            }
        }
        for (address, name) in self.store.user_labels()? {
            push(address, name, "user");
        }
        if self.labels_written.as_ref() != Some(&rows) {
            self.store.write_snapshot("labels", &rows)?;
            self.labels_written = Some(rows);
        }
        Ok(())
    }

    /// Indexes to the head, then follows it until `stop` turns true; a failing node is retried
    /// with a back-off, so a restarted or lagging node is caught up with.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut heads: Option<HeadSubscription> = None;
        let mut backoff = Duration::from_millis(250);
        let mut last_write = Instant::now()
            .checked_sub(self.config.flush_every)
            .unwrap_or_else(Instant::now);
        loop {
            if *stop.borrow() {
                return;
            }
            let wait = self.config.flush_every.saturating_sub(last_write.elapsed());
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
            match self.sync().await {
                Ok(report) => {
                    backoff = Duration::from_millis(250);
                    last_write = Instant::now();
                    if report.blocks > 0 {
                        tracing::debug!(
                            blocks = report.blocks,
                            txs = report.txs,
                            height = report.height,
                            "indexed"
                        );
                    }
                }
                Err(e @ AnalyticsError::OtherChain { .. }) => {
                    tracing::error!(error = %e, "the analytics indexer stopped");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "analytics indexer: retrying");
                    heads = None;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
            if heads.is_none() {
                heads = HeadSubscription::connect(self.client.url()).await.ok();
            }
            // Wake at the next head, or after a second when the subscription is down.
            let next = async {
                match heads.as_mut() {
                    Some(sub) => sub.next().await.is_some_and(|h| h.is_ok()),
                    None => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        true
                    }
                }
            };
            tokio::select! {
                alive = next => if !alive { heads = None; },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// One block with its receipts and block events.
async fn fetch_block(client: RpcClient, height: u64) -> Result<BlockData, AnalyticsError> {
    let view = client
        .block(Some(BlockId::Height(height)))
        .await?
        .ok_or_else(|| AnalyticsError::Incomplete(format!("the node has no block {height}")))?;
    let mut txs = Vec::with_capacity(view.block.txs.len());
    for tx in &view.block.txs {
        let hash = tx.hash();
        let committed = client.tx(&hash).await?.ok_or_else(|| {
            AnalyticsError::Incomplete(format!("transaction {hash} of block {height} is unknown"))
        })?;
        txs.push((hash, committed.tx, committed.receipt));
    }
    let block_events = client.block_events(height).await?;
    Ok(BlockData {
        hash: view.hash,
        block: view.block,
        txs,
        block_events,
    })
}
