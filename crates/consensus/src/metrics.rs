//! Prometheus metrics of the chain.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Counters and gauges of block production, exported in the Prometheus text format.
#[derive(Debug)]
pub struct ChainMetrics {
    registry: Registry,
    /// Latest committed height.
    pub height: Gauge,
    /// Blocks committed since start.
    pub blocks: Counter,
    /// Transactions committed since start.
    pub txs: Counter,
    /// Transactions refused by the mempool or dropped.
    pub txs_rejected: Counter,
    /// Pending transactions.
    pub mempool_size: Gauge,
    /// Seconds to commit a block to disk.
    pub commit_seconds: Histogram,
    /// Consensus round of the current height.
    pub round: Gauge,
    /// Seconds from a block's proposal (its header time) to its commit on this node.
    pub finality_seconds: Histogram,
    /// Transactions other nodes gossiped that entered this node's mempool.
    pub gossip_received: Counter,
    /// Gossiped transactions dropped (invalid here, mempool full, oversized message).
    pub gossip_dropped: Counter,
    /// Gossip batches refused, or cut short, because their peer was over its budget.
    pub gossip_throttled: Counter,
    /// Equivocations this node found among the votes it received.
    pub equivocations: Counter,
    /// Evidence transactions this node submitted.
    pub evidence_submitted: Counter,
    /// Per validator: decided heights whose commit certificate lacks its precommit.
    pub missed_votes: Family<Vec<(String, String)>, Counter>,
    /// Per validator: decided heights whose commit certificate holds its precommit.
    pub signed_votes: Family<Vec<(String, String)>, Counter>,
}

impl ChainMetrics {
    /// Fresh metrics.
    pub fn new() -> ChainMetrics {
        let mut registry = Registry::with_prefix("hibana");
        let height = Gauge::default();
        let blocks = Counter::default();
        let txs = Counter::default();
        let txs_rejected = Counter::default();
        let mempool_size = Gauge::default();
        let commit_seconds =
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]);
        registry.register("height", "Latest committed block height", height.clone());
        registry.register(
            "p2p_malformed_messages",
            "Network, sync and WAL messages refused as malformed or too large, and dropped",
            crate::bft::codec::MALFORMED.clone(),
        );
        registry.register(
            "blocks",
            "Blocks committed since the node started",
            blocks.clone(),
        );
        registry.register(
            "txs",
            "Transactions committed since the node started",
            txs.clone(),
        );
        registry.register(
            "txs_rejected",
            "Transactions refused or dropped",
            txs_rejected.clone(),
        );
        registry.register(
            "mempool_size",
            "Transactions waiting in the mempool",
            mempool_size.clone(),
        );
        let round = Gauge::default();
        registry.register(
            "consensus_round",
            "Consensus round at the current height",
            round.clone(),
        );
        let finality_seconds = Histogram::new([
            0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
        ]);
        registry.register(
            "finality_seconds",
            "Time from a block's proposal to its commit on this node",
            finality_seconds.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time to commit a block to disk",
            commit_seconds.clone(),
        );
        let gossip_received = Counter::default();
        registry.register(
            "gossip_txs_received",
            "Gossiped transactions that entered the mempool",
            gossip_received.clone(),
        );
        let gossip_dropped = Counter::default();
        registry.register(
            "gossip_txs_dropped",
            "Gossiped transactions dropped: invalid here, mempool full or oversized message",
            gossip_dropped.clone(),
        );
        let gossip_throttled = Counter::default();
        registry.register(
            "gossip_batches_throttled",
            "Gossip batches refused or cut short because their peer was over its budget",
            gossip_throttled.clone(),
        );
        let equivocations = Counter::default();
        registry.register(
            "equivocations_detected",
            "Conflicting votes of one validator found among the votes received",
            equivocations.clone(),
        );
        let evidence_submitted = Counter::default();
        registry.register(
            "evidence_submitted",
            "Equivocation evidence transactions this node submitted",
            evidence_submitted.clone(),
        );
        let missed_votes = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "missed_votes",
            "Decided heights whose commit certificate lacks the validator's precommit",
            missed_votes.clone(),
        );
        let signed_votes = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "signed_votes",
            "Decided heights whose commit certificate holds the validator's precommit",
            signed_votes.clone(),
        );
        ChainMetrics {
            registry,
            height,
            blocks,
            txs,
            txs_rejected,
            mempool_size,
            commit_seconds,
            round,
            finality_seconds,
            gossip_received,
            gossip_dropped,
            gossip_throttled,
            equivocations,
            evidence_submitted,
            missed_votes,
            signed_votes,
        }
    }

    /// Counts one decided height for a validator: signed (in the certificate) or missed.
    pub fn record_vote(&self, validator: &str, signed: bool) {
        let labels = vec![("validator".to_string(), validator.to_string())];
        if signed {
            self.signed_votes.get_or_create(&labels).inc();
        } else {
            self.missed_votes.get_or_create(&labels).inc();
        }
    }

    pub(crate) fn record_block(&self, height: u64, txs: usize, mempool: usize, commit_secs: f64) {
        self.height.set(i64::try_from(height).unwrap_or(i64::MAX));
        self.blocks.inc();
        self.txs.inc_by(txs as u64);
        self.mempool_size.set(mempool as i64);
        self.commit_seconds.observe(commit_secs);
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        // One exposition ends with one `# EOF`: drop ours before appending the engine's.
        if let Some(len) = out.strip_suffix("# EOF\n").map(str::len) {
            out.truncate(len);
        }
        // The engine's own metrics: height, round, step times, votes, peers and libp2p.
        malachitebft_app_channel::app::metrics::export(&mut out);
        out
    }
}

impl Default for ChainMetrics {
    fn default() -> Self {
        ChainMetrics::new()
    }
}
