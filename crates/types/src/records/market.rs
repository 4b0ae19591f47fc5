//! Compute market records: providers, orders, bids, leases, the market's limits and its state
//! keys.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, Amount, BASE_UNITS_PER_HIB, Hash};

/// The account that holds every token the market has locked (provider bonds, order deposits,
/// lease escrow, bid deposits). Nobody has its key: only the market's rules move its tokens.
pub const MARKET_ESCROW: Address = Address(*b"hibana/market/escrow");

/// Smallest stake bond a provider registers with.
pub const MIN_PROVIDER_BOND: Amount = Amount(10 * BASE_UNITS_PER_HIB);
/// Deposit a provider locks with each bid, returned when the bid loses, the order ends or the
/// lease closes.
pub const BID_DEPOSIT: Amount = Amount(BASE_UNITS_PER_HIB);
/// An order's deposit must pay its maximum price for at least this many blocks.
pub const MIN_DEPOSIT_BLOCKS: u64 = 10;
/// Longest lease an order may ask for, in blocks.
pub const MAX_LEASE_BLOCKS: u64 = 10_000_000;
/// Furthest ahead an order's expiry height may be, in blocks.
pub const MAX_ORDER_TTL_BLOCKS: u64 = 100_000;
/// Most bids an order takes.
pub const MAX_BIDS_PER_ORDER: usize = 32;
/// Most bids a provider may have open at once.
pub const MAX_OPEN_BIDS_PER_PROVIDER: u32 = 64;
/// Most active leases a provider may hold at once.
pub const MAX_ACTIVE_LEASES_PER_PROVIDER: u32 = 64;
/// Most models a provider declares.
pub const MAX_MODELS: usize = 16;
/// Longest GPU model name, in bytes.
pub const MAX_GPU_MODEL_BYTES: usize = 64;
/// Longest region name, in bytes.
pub const MAX_REGION_BYTES: usize = 32;
/// Most GPUs a provider declares or an order asks for.
pub const MAX_GPUS: u32 = 1_024;
/// Most cores a provider declares or an order asks for.
pub const MAX_CORES: u32 = 1 << 20;

/// What a provider declares it offers.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct ProviderAttributes {
    /// CPU cores.
    pub cores: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// GPU model name (empty for none).
    pub gpu_model: String,
    /// Number of GPUs (0 when `gpu_model` is empty).
    pub gpu_count: u32,
    /// Region, lowercase (`eu-west`, `us-east`…).
    pub region: String,
    /// Content hashes of the models it serves.
    pub models: Vec<Hash>,
}

/// A registered provider.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Provider {
    /// The provider's account, which bids and is paid.
    pub address: Address,
    /// Its declared attributes.
    pub attributes: ProviderAttributes,
    /// Its asking price per block, in base units.
    pub price_per_block: Amount,
    /// Its price per token of an inference request, in base units (0: free); a receipt may
    /// charge at most its tokens times this.
    pub price_per_token: Amount,
    /// Where it answers (`http://` or `https://` URL).
    pub endpoint: String,
    /// Stake bond held in [`MARKET_ESCROW`].
    pub bond: Amount,
    /// Height of registration.
    pub registered_at: u64,
    /// Bids it has open on orders.
    pub open_bids: u32,
    /// Leases it serves that are not closed.
    pub active_leases: u32,
}

/// What an order needs from a provider.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Resources {
    /// Fewest cores.
    pub min_cores: u32,
    /// Least memory in MiB.
    pub min_memory_mib: u64,
    /// A GPU model the provider must have, if any.
    pub gpu_model: Option<String>,
    /// Fewest GPUs (0 for none).
    pub gpu_count: u32,
    /// A region the provider must be in, if any.
    pub region: Option<String>,
    /// A model (content hash) the provider must serve, if any.
    pub model: Option<Hash>,
}

/// Where an order stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Taking bids.
    Open,
    /// A bid was accepted: the order became a lease.
    Matched,
    /// Closed by its owner before a match.
    Closed,
    /// Reached its expiry height unmatched.
    Expired,
}

/// A client's request for compute.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Order {
    /// Id.
    pub id: u64,
    /// The client.
    pub owner: Address,
    /// What it needs.
    pub resources: Resources,
    /// Lease length in blocks.
    pub duration_blocks: u64,
    /// Highest price per block it pays.
    pub max_price_per_block: Amount,
    /// Deposit held in [`MARKET_ESCROW`]; it becomes the lease's escrow.
    pub deposit: Amount,
    /// Height of creation.
    pub created_at: u64,
    /// The order expires at the end of this block if unmatched.
    pub expires_at: u64,
    /// Where it stands.
    pub status: OrderStatus,
    /// The lease it became, once matched.
    pub lease: Option<u64>,
}

/// A provider's offer on an order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Bid {
    /// The order.
    pub order: u64,
    /// The provider.
    pub provider: Address,
    /// Price per block offered.
    pub price_per_block: Amount,
    /// Deposit held in [`MARKET_ESCROW`].
    pub deposit: Amount,
    /// Height of the bid.
    pub placed_at: u64,
}

/// Where a lease stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LeaseStatus {
    /// Running and paying the provider.
    Active,
    /// Closed by a side or at the end of its term.
    Closed,
    /// Closed because its escrow ran out before the end of its term.
    Overdrawn,
}

/// A matched order: the provider is paid per block from escrow, settled lazily.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Lease {
    /// Id.
    pub id: u64,
    /// The order it came from.
    pub order: u64,
    /// The client.
    pub owner: Address,
    /// The provider.
    pub provider: Address,
    /// Price per block (the accepted bid's).
    pub price_per_block: Amount,
    /// Escrow left, held in [`MARKET_ESCROW`].
    pub escrow: Amount,
    /// The provider's bid deposit, held until the lease closes.
    pub bid_deposit: Amount,
    /// Paid to the provider so far.
    pub paid: Amount,
    /// Height the lease started.
    pub started_at: u64,
    /// Last height it pays for (`started_at + duration_blocks`).
    pub ends_at: u64,
    /// Height up to which the provider has been paid.
    pub settled_at: u64,
    /// Where it stands.
    pub status: LeaseStatus,
    /// Height it closed, once closed.
    pub closed_at: Option<u64>,
}

impl Lease {
    /// The height at which the lease runs out unless topped up: the end of its term, or the
    /// first height [`Lease::owed_at`] finds its escrow spent if that comes first.
    pub fn due_at(&self) -> u64 {
        match (self.price_per_block.0 > 0).then(|| self.escrow.0.div_ceil(self.price_per_block.0)) {
            Some(blocks) => {
                let blocks = u64::try_from(blocks).unwrap_or(u64::MAX);
                self.settled_at.saturating_add(blocks).min(self.ends_at)
            }
            // Free: only the term ends it.
            None => self.ends_at,
        }
    }

    /// What settling at `height` pays the provider (price × blocks since `settled_at`, capped
    /// at `ends_at` and by the escrow left), and whether the escrow runs out before `ends_at`.
    pub fn owed_at(&self, height: u64) -> (Amount, bool) {
        let until = height.min(self.ends_at);
        let blocks = until.saturating_sub(self.settled_at);
        let full = self.price_per_block.0.checked_mul(u128::from(blocks));
        match full {
            Some(due) if due <= self.escrow.0 => {
                // Escrow that is exactly spent before the term's end leaves nothing to pay the
                // next block with: the lease is overdrawn then too.
                let exhausted = due == self.escrow.0 && until < self.ends_at;
                (Amount(due), exhausted)
            }
            _ => (self.escrow, until < self.ends_at || full.is_none()),
        }
    }
}

/// State key of a provider.
pub fn provider_key(address: &Address) -> Vec<u8> {
    [b"market/provider/".as_slice(), &address.0].concat()
}

/// Buckets the sets of registered providers and of open orders are spread over, so that adding
/// or removing one rewrites a 256th of the set, not all of it.
pub const SET_BUCKETS: usize = 256;

/// State key of one bucket (`BTreeSet<Address>`) of the registered providers: those whose
/// address starts with the byte `bucket`.
pub fn providers_key(bucket: u8) -> Vec<u8> {
    [b"market/providers/".as_slice(), &[bucket]].concat()
}

/// State key of the next order id (`u64`).
pub const NEXT_ORDER_KEY: &[u8] = b"market/next_order";

/// State key of the next lease id (`u64`).
pub const NEXT_LEASE_KEY: &[u8] = b"market/next_lease";

/// State key of one bucket (`BTreeSet<u64>`) of the open orders: those whose id is `bucket`
/// modulo [`SET_BUCKETS`].
pub fn open_orders_key(bucket: u8) -> Vec<u8> {
    [b"market/open_orders/".as_slice(), &[bucket]].concat()
}

/// State key of an order.
pub fn order_key(id: u64) -> Vec<u8> {
    [b"market/order/".as_slice(), &id.to_be_bytes()].concat()
}

/// State key of an order's bids (`Vec<Bid>`, ordered by provider).
pub fn bids_key(order: u64) -> Vec<u8> {
    [b"market/bids/".as_slice(), &order.to_be_bytes()].concat()
}

/// State key of the orders that expire at the end of a block (`Vec<u64>`).
pub fn expiry_key(height: u64) -> Vec<u8> {
    [b"market/expiry/".as_slice(), &height.to_be_bytes()].concat()
}

/// State key of the active leases that run out at the end of a block, their term over or
/// their escrow spent (`BTreeSet<u64>`).
pub fn lease_due_key(height: u64) -> Vec<u8> {
    [b"market/lease_due/".as_slice(), &height.to_be_bytes()].concat()
}

/// State key of a lease.
pub fn lease_key(id: u64) -> Vec<u8> {
    [b"market/lease/".as_slice(), &id.to_be_bytes()].concat()
}

/// State key of the active leases a client owns (`BTreeSet<u64>`).
pub fn owner_leases_key(owner: &Address) -> Vec<u8> {
    [b"market/leases_of_owner/".as_slice(), &owner.0].concat()
}

/// State key of the active leases a provider serves (`BTreeSet<u64>`).
pub fn provider_leases_key(provider: &Address) -> Vec<u8> {
    [b"market/leases_of_provider/".as_slice(), &provider.0].concat()
}

/// The market's parameters, fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketParams {
    /// Blocks a provider stays live after its last heartbeat: a lease pays no block after
    /// that, and each further interval without one is a missed liveness check.
    pub liveness_blocks: u64,
}

impl Default for MarketParams {
    fn default() -> Self {
        MarketParams {
            liveness_blocks: 600,
        }
    }
}

/// Missed liveness checks in a row after which a provider is unlisted (it cannot bid, and
/// auto-accepting orders pass it over) until its next heartbeat.
pub const MAX_MISSED_CHECKS: u32 = 3;
/// Highest reputation, which a new provider starts at.
pub const MAX_REPUTATION: u32 = 1_000;
/// Reputation a missed liveness check costs.
pub const MISSED_CHECK_COST: u32 = 200;
/// Reputation a heartbeat earns back.
pub const HEARTBEAT_GAIN: u32 = 20;

/// A provider's liveness: when it last proved it was up, how many checks it has missed in a
/// row, and the reputation that follows from both.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Liveness {
    /// Height of its last heartbeat (or registration).
    pub last_seen: u64,
    /// Liveness checks missed since then.
    pub missed: u32,
    /// 0 to [`MAX_REPUTATION`].
    pub reputation: u32,
    /// Whether it may bid.
    pub listed: bool,
}

impl Liveness {
    /// The last height its leases pay for, given the chain's liveness interval.
    pub fn live_until(&self, params: &MarketParams) -> u64 {
        self.last_seen.saturating_add(params.liveness_blocks)
    }
}

/// A validator's attestation of a provider's attributes: what it audited, and when.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Attestation {
    /// The validator that attested.
    pub attester: Address,
    /// The attributes it found.
    pub attributes: ProviderAttributes,
    /// Height of the attestation.
    pub height: u64,
}

/// Key of a provider's attestations (one per attester, the latest).
pub fn attestations_key(provider: &Address) -> Vec<u8> {
    [b"market/attestations/".as_slice(), &provider.0].concat()
}

/// An order's auto-accept rule: at the end of height `at`, the chain accepts the cheapest bid
/// from a listed provider whose reputation is at least `min_reputation`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AutoAccept {
    /// The order.
    pub order: u64,
    /// The least reputation of a provider whose bid may be taken.
    pub min_reputation: u32,
    /// The height at whose end the bid is taken.
    pub at: u64,
    /// Whether only providers with a validator's attestation that meets the order are eligible.
    pub attested_only: bool,
}

/// Key of an order's auto-accept rule.
pub fn auto_accept_key(order: u64) -> Vec<u8> {
    [b"market/auto_accept/".as_slice(), &order.to_be_bytes()].concat()
}

/// Key of the orders auto-accepted at the end of a height.
pub fn auto_accept_due_key(height: u64) -> Vec<u8> {
    [b"market/auto_accept_due/".as_slice(), &height.to_be_bytes()].concat()
}

/// Key of the market's parameters.
pub const MARKET_PARAMS_KEY: &[u8] = b"market/params";

/// Key of a provider's liveness.
pub fn liveness_key(address: &Address) -> Vec<u8> {
    [b"market/liveness/".as_slice(), &address.0].concat()
}

/// Key of the providers whose liveness is checked at the end of a height.
pub fn liveness_due_key(height: u64) -> Vec<u8> {
    [b"market/liveness_due/".as_slice(), &height.to_be_bytes()].concat()
}

/// Most input features a training job's rows carry.
pub const MAX_TRAIN_FEATURES: u32 = 64;
/// Most neurons in one hidden layer of a training job's model.
pub const MAX_TRAIN_HIDDEN: u32 = 128;
/// Most hidden layers of a training job's model (0 is logistic regression).
pub const MAX_TRAIN_HIDDEN_LAYERS: usize = 2;
/// Most classes a training job's model tells apart.
pub const MAX_TRAIN_CLASSES: u32 = 16;
/// Most parameters of a training job's model: a dispute carries them all, and a checkpoint
/// (4 bytes each) fits in one blob of the node's store.
pub const MAX_TRAIN_PARAMS: u64 = 16_000;
/// Most rows in one training step: a dispute carries them all, with their proofs.
pub const MAX_TRAIN_BATCH: u32 = 64;
/// Most steps of one training job: its step hashes stay in state until it settles.
pub const MAX_TRAIN_STEPS: u64 = 100_000;
/// Most rows of a training job's dataset.
pub const MAX_TRAIN_ROWS: u64 = 1 << 24;
/// Most leases one data-parallel job trains on: a dispute of an average carries every
/// worker's parameters.
pub const MAX_JOB_WORKERS: u32 = 4;
/// Most steps between two checkpoints (one `CommitSteps` message each).
pub const MAX_CHECKPOINT_EVERY: u32 = 1_024;
/// Blocks after a job's last commit during which its steps can be disputed.
pub const DISPUTE_WINDOW_BLOCKS: u64 = 1_000;
/// What a challenger locks to dispute a step; the provider takes it if the step was right.
pub const DISPUTE_DEPOSIT: Amount = Amount(BASE_UNITS_PER_HIB);
/// What a provider loses from its bond when a dispute shows one of its steps wrong.
pub const DISPUTE_SLASH: Amount = MIN_PROVIDER_BOND;

/// A training job: which data, which model, how to train it. Every number is exact (the
/// learning rate is fixed-point with 16 fractional bits), so every machine computes the same
/// parameters, bit for bit, and the chain can re-run any one step.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TrainingSpec {
    /// Merkle root of the dataset's rows (each leaf binds a row to its index).
    pub dataset_root: Hash,
    /// Rows in the dataset.
    pub rows: u64,
    /// Input features per row.
    pub features: u32,
    /// Neurons per hidden layer (ReLU); empty for logistic regression.
    pub hidden: Vec<u32>,
    /// Classes (softmax outputs).
    pub classes: u32,
    /// Learning rate, fixed-point: 65,536 is 1.0.
    pub learning_rate: u32,
    /// Rows per step, drawn from the dataset by the seed.
    pub batch: u32,
    /// Steps to train.
    pub steps: u64,
    /// Seed of the initial parameters and of the batches.
    pub seed: u64,
    /// Steps per checkpoint: the provider commits their hashes together.
    pub checkpoint_every: u32,
}

impl TrainingSpec {
    /// The width of every layer, inputs first and classes last.
    pub fn widths(&self) -> Vec<u32> {
        let mut w = Vec::with_capacity(self.hidden.len() + 2);
        w.push(self.features);
        w.extend(&self.hidden);
        w.push(self.classes);
        w
    }

    /// The number of parameters (weights and biases of every layer), saturating.
    pub fn param_count(&self) -> u64 {
        self.widths().windows(2).fold(0u64, |n, w| {
            let (i, o) = (u64::from(w[0]), u64::from(w[1]));
            n.saturating_add(i.saturating_mul(o).saturating_add(o))
        })
    }

    /// The checkpoints a job commits: one per `checkpoint_every` steps, the last maybe shorter.
    pub fn checkpoints(&self) -> u64 {
        self.steps.div_ceil(u64::from(self.checkpoint_every.max(1)))
    }

    /// Why the spec is out of the chain's limits, if it is.
    pub fn check(&self) -> Result<(), String> {
        let within = |what: &str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                Err(format!("{what} is {v}: it must be between {lo} and {hi}"))
            } else {
                Ok(())
            }
        };
        within(
            "the feature count",
            self.features.into(),
            1,
            MAX_TRAIN_FEATURES.into(),
        )?;
        within(
            "the class count",
            self.classes.into(),
            2,
            MAX_TRAIN_CLASSES.into(),
        )?;
        if self.hidden.len() > MAX_TRAIN_HIDDEN_LAYERS {
            return Err(format!(
                "{} hidden layers: at most {MAX_TRAIN_HIDDEN_LAYERS}",
                self.hidden.len()
            ));
        }
        for &h in &self.hidden {
            within(
                "a hidden layer's width",
                h.into(),
                1,
                MAX_TRAIN_HIDDEN.into(),
            )?;
        }
        within(
            "the parameter count",
            self.param_count(),
            1,
            MAX_TRAIN_PARAMS,
        )?;
        within("the batch", self.batch.into(), 1, MAX_TRAIN_BATCH.into())?;
        within("the step count", self.steps, 1, MAX_TRAIN_STEPS)?;
        within("the row count", self.rows, 1, MAX_TRAIN_ROWS)?;
        within("the learning rate", self.learning_rate.into(), 1, 1 << 20)?;
        within(
            "the checkpoint interval",
            self.checkpoint_every.into(),
            1,
            MAX_CHECKPOINT_EVERY.into(),
        )?;
        Ok(())
    }
}

/// Where a training job stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// The provider is committing its steps.
    Running,
    /// Every step is committed; disputes are open until `Job::dispute_until`.
    Done,
    /// A dispute showed one of the provider's steps wrong: it was slashed, the lease closed.
    Refuted,
    /// The dispute window passed: the result stands and the step hashes are pruned.
    Settled,
}

/// A training job on a lease, as the chain keeps it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Job {
    /// Job id.
    pub id: u64,
    /// The lease it runs on.
    pub lease: u64,
    /// The lease's client, who submitted it.
    pub client: Address,
    /// The lease's provider, who trains.
    pub provider: Address,
    /// What to train.
    pub spec: TrainingSpec,
    /// Height it was submitted at.
    pub submitted_at: u64,
    /// Steps whose state hashes are committed.
    pub committed_steps: u64,
    /// Hash of the state after the last committed step: the trained model's, once done.
    pub last_hash: Hash,
    /// Height of the last commit.
    pub last_commit_at: u64,
    /// Where it stands.
    pub status: JobStatus,
    /// The step a dispute showed wrong.
    pub refuted_step: Option<u64>,
    /// The other leases it trains on at once, data parallel (empty: `lease` trains alone).
    pub with: Vec<Worker>,
}

/// A lease that trains part of a data-parallel job, and its provider.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Worker {
    /// The lease.
    pub lease: u64,
    /// Its provider.
    pub provider: Address,
}

impl Job {
    /// Providers training at once (1 unless the job is data parallel).
    pub fn workers(&self) -> u32 {
        1 + self.with.len() as u32
    }

    /// Worker `k` of the job (0 is `lease` and `provider`).
    pub fn worker(&self, k: u32) -> Option<Worker> {
        match k {
            0 => Some(Worker {
                lease: self.lease,
                provider: self.provider,
            }),
            k => self.with.get(k as usize - 1).cloned(),
        }
    }

    /// The index of the worker `provider` is, if it is one.
    pub fn worker_of(&self, provider: &Address) -> Option<u32> {
        (0..self.workers()).find(|&k| self.worker(k).is_some_and(|w| w.provider == *provider))
    }

    /// Global steps one averaging round covers in a data-parallel job: every worker takes
    /// `checkpoint_every` local steps.
    pub fn steps_per_round(&self) -> u64 {
        u64::from(self.workers()) * u64::from(self.spec.checkpoint_every)
    }

    /// The checkpoint index, under [`job_steps_key`], of worker `k`'s step hashes in round
    /// `round` of a data-parallel job; index `worker_index(round, workers())` holds the
    /// round's average. Saturates: callers bound `round` by [`Job::rounds`] first.
    pub fn worker_index(&self, round: u64, k: u32) -> u64 {
        round
            .saturating_mul(u64::from(self.workers()) + 1)
            .saturating_add(u64::from(k))
    }

    /// Rounds a data-parallel job trains (its steps are a whole number of rounds).
    pub fn rounds(&self) -> u64 {
        self.spec.steps / self.steps_per_round().max(1)
    }

    /// The number of checkpoint indexes the job can fill.
    pub fn checkpoint_indexes(&self) -> u64 {
        if self.with.is_empty() {
            self.spec.checkpoints()
        } else {
            self.worker_index(self.spec.steps / self.steps_per_round().max(1), 0)
        }
    }

    /// The last height at which a step can be disputed (while running: the window after the
    /// latest commit).
    pub fn dispute_until(&self) -> u64 {
        self.last_commit_at.saturating_add(DISPUTE_WINDOW_BLOCKS)
    }
}

/// One committed checkpoint of a job: the provider that committed it, the lease it trained on,
/// and the state hash after each of its steps. A job moved to another lease keeps the
/// checkpoints of its earlier provider, and a dispute of one of their steps slashes that one.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CheckpointCommit {
    /// Who committed it.
    pub provider: Address,
    /// The lease it was trained on.
    pub lease: u64,
    /// The hash after each of its steps.
    pub hashes: Vec<Hash>,
}

/// Key of the next job id.
pub const NEXT_JOB_KEY: &[u8] = b"market/next_job";

/// Key of a job.
pub fn job_key(id: u64) -> Vec<u8> {
    [b"market/job/".as_slice(), &id.to_be_bytes()].concat()
}

/// Key of the job running on a lease.
pub fn lease_job_key(lease: u64) -> Vec<u8> {
    [b"market/job_of_lease/".as_slice(), &lease.to_be_bytes()].concat()
}

/// Key of one checkpoint's step hashes (checkpoint `index` covers steps
/// `index * checkpoint_every + 1 ..`; in a data-parallel job, see [`Job::worker_index`]).
pub fn job_steps_key(job: u64, index: u64) -> Vec<u8> {
    [
        b"market/job_steps/".as_slice(),
        &job.to_be_bytes(),
        &index.to_be_bytes(),
    ]
    .concat()
}

/// Key of the jobs whose dispute window ends at a height (they settle then).
pub fn job_due_key(height: u64) -> Vec<u8> {
    [b"market/job_due/".as_slice(), &height.to_be_bytes()].concat()
}

/// Most lines (requests) in one batch inference job.
pub const MAX_BATCH_LINES: u32 = 10_000;
/// Largest batch input file, in bytes.
pub const MAX_BATCH_BYTES: u64 = 64 * 1024 * 1024;
/// Most steps in a batch Merkle proof: enough for [`MAX_BATCH_LINES`] leaves.
pub const MAX_BATCH_PROOF_STEPS: usize = 32;
/// Domain of a batch input leaf: `blake3(domain || line index (u32 LE) || request hash)`.
pub const BATCH_INPUT_LEAF_DOMAIN: &[u8] = b"hibana/batch/input/v1\0";
/// Domain of a batch result leaf: `blake3(domain || line index (u32 LE) || outcome hash)`,
/// where the outcome hash is the receipt's id for a line answered or refused with a signature
/// and the blake3 of the error body for a refusal without one. The results root is a count
/// tree (`crate::count_root`) over these leaves, each counting 1 if its line is answered: its
/// receipt is for tokens or a price.
pub const BATCH_RESULT_LEAF_DOMAIN: &[u8] = b"hibana/batch/result/v2\0";

/// Whether a batch line with this receipt (none for a refusal without a signature) is an
/// answered line: one sold for tokens or a price, which the results root counts and the batch
/// pays. A signed refusal is for neither.
pub fn counts_as_answered(receipt: Option<&crate::InferenceReceipt>) -> bool {
    receipt.is_some_and(|r| !r.body.is_free())
}

/// What a batch line's result proof shows of its provider's count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineCount {
    /// The line is counted as its receipt says, and the root counts the committed total.
    Holds,
    /// The provider's count is false (why): the results root counts the line other than its
    /// receipt, or counts another number of answered lines than the batch's committed one.
    Miscounted(String),
}

/// What `proof` shows of batch `b`'s count at `line`, whose result leaf is `leaf` and which
/// its receipt makes `answered` ([`counts_as_answered`]), under the committed `results_root`:
/// the proof is tried with that count, and only when it fails with the other one (the
/// provider's false count). `None` when it reaches the root with neither.
pub fn line_count(
    b: &BatchJob,
    results_root: &Hash,
    (line, leaf, answered): (u32, &Hash, bool),
    proof: &[crate::CountStep],
) -> Option<LineCount> {
    let total = |answered: bool| {
        crate::verify_count_proof(
            (leaf, u32::from(answered)),
            (line, b.lines),
            1,
            proof,
            results_root,
        )
    };
    Some(match total(answered) {
        Some(total) if total != b.answered => LineCount::Miscounted(format!(
            "the results root counts {total} answered lines, the provider committed {}",
            b.answered
        )),
        Some(_) => LineCount::Holds,
        None => {
            total(!answered)?;
            LineCount::Miscounted(if answered {
                format!(
                    "line {line} is answered (its receipt is for tokens or a price), but the \
                     results root counts it as refused"
                )
            } else {
                format!(
                    "line {line} is counted as answered, but it has no receipt for tokens or a \
                     price"
                )
            })
        }
    })
}

/// The leaf of line `index` of a batch: under the input root for its request hash, under the
/// results root for its outcome hash.
pub fn batch_leaf(domain: &[u8], index: u32, hash: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(domain);
    h.update(&index.to_le_bytes());
    h.update(&hash.0);
    Hash(*h.finalize().as_bytes())
}

/// Where a batch inference job stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// The provider is answering the lines.
    Running,
    /// The results root is committed; lines can be challenged until `BatchJob::dispute_until`.
    Done,
    /// The validators upheld a challenge of one of its lines: the provider was slashed and the
    /// lease closed.
    Refuted,
    /// No line can be challenged any more, and its answered lines are paid.
    Settled,
    /// Never committed before its lease's term ended: its escrow went back to the client.
    Expired,
}

/// A batch inference job on a lease: a JSONL file of OpenAI-shaped requests, named by the
/// Merkle root over its lines' request hashes, answered by the lease's provider with a signed
/// receipt per line.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BatchJob {
    /// Batch id.
    pub id: u64,
    /// The lease it runs on.
    pub lease: u64,
    /// The lease's client, who submitted it.
    pub client: Address,
    /// The lease's provider, who answers.
    pub provider: Address,
    /// Merkle root over the lines' input leaves ([`BATCH_INPUT_LEAF_DOMAIN`]).
    pub input_root: Hash,
    /// Lines in the input.
    pub lines: u32,
    /// Size of the input file, in bytes.
    pub input_bytes: u64,
    /// Height it was submitted at.
    pub submitted_at: u64,
    /// Merkle root over the lines' result leaves ([`BATCH_RESULT_LEAF_DOMAIN`]), once committed.
    pub results_root: Option<Hash>,
    /// Lines the provider answered with a receipt for tokens or a price (the rest it refused).
    pub answered: u32,
    /// Height of the results commit.
    pub committed_at: u64,
    /// Where it stands.
    pub status: BatchStatus,
    /// The line whose challenge was upheld.
    pub refuted_line: Option<u32>,
    /// Paid per answered line from the batch's escrow (`lines ×` this, held from the client).
    pub price_per_line: Amount,
    /// The dispute window extended by line requests: a requested line stays open to challenge
    /// until its deadline plus [`LINE_RECHECK_BLOCKS`] (0 without requests).
    #[serde(default)]
    pub lines_until: u64,
    /// The models its provider declared when it committed the results: a refusal is judged
    /// against them.
    #[serde(default)]
    pub models: Vec<Hash>,
}

/// Blocks after a batch's dispute window before its answered lines are paid: a challenge
/// opened on the window's last block is decided by then.
pub const BATCH_PAY_DELAY_BLOCKS: u64 = super::verify::CHALLENGE_VOTING_BLOCKS + 1;

impl BatchJob {
    /// What its escrow holds while neither paid nor refunded (`lines × price_per_line`,
    /// checked when it was submitted).
    pub fn escrow(&self) -> Amount {
        Amount(u128::from(self.lines).saturating_mul(self.price_per_line.0))
    }

    /// The height its answered lines are paid at (once committed).
    pub fn pay_at(&self) -> u64 {
        self.dispute_until().saturating_add(BATCH_PAY_DELAY_BLOCKS)
    }

    /// The last height at which a line can be challenged (0 before the results are committed):
    /// the dispute window after the commit, extended by the line requests.
    pub fn dispute_until(&self) -> u64 {
        if self.results_root.is_none() {
            return 0;
        }
        self.committed_at
            .saturating_add(DISPUTE_WINDOW_BLOCKS)
            .max(self.lines_until)
    }
}

/// Key of the next batch id.
pub const NEXT_BATCH_KEY: &[u8] = b"market/next_batch";

/// Key of a batch inference job.
pub fn batch_key(id: u64) -> Vec<u8> {
    [b"market/batch/".as_slice(), &id.to_be_bytes()].concat()
}

/// Key of a provider's committed work that can still be disputed: `(kind, id)` with kind 0 a
/// training job it committed steps or an average of, 1 a batch it committed. A provider with any
/// cannot deregister (and take its bond back) until they settle.
pub fn provider_open_work_key(provider: &Address) -> Vec<u8> {
    [b"market/open_work/".as_slice(), &provider.0].concat()
}

/// Kind of open work: a training job.
pub const WORK_JOB: u8 = 0;
/// Kind of open work: a batch.
pub const WORK_BATCH: u8 = 1;

/// Key of the batches whose escrow is paid or refunded at a height.
pub fn batch_due_key(height: u64) -> Vec<u8> {
    [b"market/batch_due/".as_slice(), &height.to_be_bytes()].concat()
}

/// Key of the batch line a challenge disputes (`(batch id, line)`).
pub fn batch_challenge_key(challenge: u64) -> Vec<u8> {
    [
        b"market/batch_challenge/".as_slice(),
        &challenge.to_be_bytes(),
    ]
    .concat()
}

/// Blocks a batch's provider has at least to post a requested line (`PostBatchLine`) before the
/// chain holds it withheld: the batch is refuted and the provider slashed.
pub const LINE_ANSWER_BLOCKS: u64 = 50;
/// Requested lines a provider posts in one transaction (three of the largest lines, a 64 KiB
/// request and a 64 KiB answer each, fit in one). Each line a provider owes moves a new
/// request's deadline a block later, so a flood of requests asks a third of that rate of it:
/// room for blocks it loses to its other transactions.
pub const LINES_PER_POST_TX: u32 = 3;
/// Blocks a posted line stays open to challenge at the least after its deadline: a request
/// extends its batch's dispute window to its deadline plus this.
pub const LINE_RECHECK_BLOCKS: u64 = 100;
/// Deposit of a line request: back to the requester, less [`LINE_POST_FEE`] to whoever posts
/// the line (or whole, with a share of the slash, if nobody does).
pub const LINE_REQUEST_DEPOSIT: Amount = Amount(BASE_UNITS_PER_HIB / 10);
/// What a posted line pays its poster out of the request's deposit.
pub const LINE_POST_FEE: Amount = Amount(BASE_UNITS_PER_HIB / 100);

/// A batch line as posted on chain after a request.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PostedLine {
    /// The request bytes (under the input root).
    pub request: Vec<u8>,
    /// The response bytes (the answer, or the error body of a refused line).
    pub response: Vec<u8>,
    /// The provider's signed receipt, for an answered line.
    pub receipt: Option<crate::InferenceReceipt>,
    /// Proof of the input leaf under the input root.
    pub input_proof: Vec<crate::MerkleStep>,
    /// Proof of the result leaf under the results root.
    pub result_proof: Vec<crate::CountStep>,
    /// Who posted it.
    pub by: Address,
    /// Height it was posted at.
    pub posted_at: u64,
}

/// A request that a batch line be posted on chain (`RequestBatchLine`), and the line once
/// posted. Kept while the batch is committed and disputable.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct LineRequest {
    /// The batch id.
    pub batch: u64,
    /// The line.
    pub line: u32,
    /// Who asked, and gets the deposit back if the line is not posted.
    pub requester: Address,
    /// The batch's provider, who owes the line.
    pub provider: Address,
    /// The deposit locked with the request.
    pub deposit: Amount,
    /// Height of the request.
    pub requested_at: u64,
    /// Last height the line can be posted at.
    pub due: u64,
    /// The line, once posted.
    pub posted: Option<PostedLine>,
}

impl BatchJob {
    /// The last height a line of this batch can be requested at: the end of its first dispute
    /// window (0 before the commit).
    pub fn request_until(&self) -> u64 {
        if self.results_root.is_none() {
            return 0;
        }
        self.committed_at.saturating_add(DISPUTE_WINDOW_BLOCKS)
    }
}

/// Key of the request of one batch line.
pub fn line_request_key(batch: u64, line: u32) -> Vec<u8> {
    [
        b"market/line_request/".as_slice(),
        &batch.to_be_bytes(),
        &line.to_be_bytes(),
    ]
    .concat()
}

/// Key of how many lines of a batch were requested (its requests are listed in order under
/// [`batch_request_at_key`]).
pub fn batch_request_count_key(batch: u64) -> Vec<u8> {
    [b"market/line_requests/".as_slice(), &batch.to_be_bytes()].concat()
}

/// Key of the line of a batch's `i`-th request.
pub fn batch_request_at_key(batch: u64, i: u32) -> Vec<u8> {
    [
        b"market/line_request_at/".as_slice(),
        &batch.to_be_bytes(),
        &i.to_be_bytes(),
    ]
    .concat()
}

/// Key of the providers with requested lines due at a height.
pub fn line_due_providers_key(height: u64) -> Vec<u8> {
    [b"market/line_due/".as_slice(), &height.to_be_bytes()].concat()
}

/// Key of a provider's requested lines (`(batch, line)`) due at a height.
pub fn provider_lines_due_key(provider: &Address, height: u64) -> Vec<u8> {
    [
        b"market/lines_due/".as_slice(),
        &provider.0,
        &height.to_be_bytes(),
    ]
    .concat()
}

/// Key of the lines a provider owes (`(open requests, latest deadline)`), kept while it owes
/// any: a new request's deadline follows from the count.
pub fn provider_owed_key(provider: &Address) -> Vec<u8> {
    [b"market/owed_lines/".as_slice(), &provider.0].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(price: u128, escrow: u128, settled_at: u64, ends_at: u64) -> Lease {
        Lease {
            id: 0,
            order: 0,
            owner: Address([1; 20]),
            provider: Address([2; 20]),
            price_per_block: Amount(price),
            escrow: Amount(escrow),
            bid_deposit: BID_DEPOSIT,
            paid: Amount::ZERO,
            started_at: 0,
            ends_at,
            settled_at,
            status: LeaseStatus::Active,
            closed_at: None,
        }
    }

    #[test]
    fn the_escrow_address_is_the_one_the_readme_names() {
        assert_eq!(
            MARKET_ESCROW.to_string(),
            "hib1dp5kyctwvyhk6ctjddjhgtm9wd3hymmhhzdeak"
        );
    }

    #[test]
    fn owed_is_price_times_blocks_capped_by_term_and_escrow() {
        assert_eq!(lease(5, 100, 10, 50).owed_at(14), (Amount(20), false));
        assert_eq!(lease(5, 100, 10, 20).owed_at(99), (Amount(50), false));
        assert_eq!(lease(5, 100, 10, 50).owed_at(40), (Amount(100), true));
        assert_eq!(lease(5, 100, 10, 30).owed_at(30), (Amount(100), false));
        assert_eq!(lease(5, 100, 10, 50).owed_at(30), (Amount(100), true));
        assert_eq!(lease(5, 100, 10, 50).owed_at(5), (Amount(0), false));
        assert_eq!(
            lease(u128::MAX, 7, 0, u64::MAX).owed_at(2),
            (Amount(7), true)
        );
    }
}
