//! Subnets: the model network. Miners serve a task, validators score them and set weights
//! through commit-reveal, and every `tempo` blocks the Yuma epoch ([`epoch`]) turns stake and
//! weights into consensus, incentive and dividends, and mints the subnet's emission.
//!
//! Messages: `CreateSubnet` (locks [`SUBNET_DEPOSIT`]), `RegisterNeuron` (burns the subnet's
//! registration fee; a full subnet replaces its lowest-paid neuron outside the immunity period),
//! `CommitWeights` and `RevealWeights` (a reveal must match a commitment made at least
//! `commit_reveal_interval` blocks earlier and arrive within as many blocks after that, so
//! anyone copying revealed weights is always one interval late).

pub mod epoch;

use borsh::{BorshDeserialize, BorshSerialize};
use hibana_types::{
    Address, Amount, BASE_UNITS_PER_HIB, CommitWeights, CreateSubnet, Event, Hash, NeuronRole,
    RegisterNeuron, RevealWeights, SubnetParams, WEIGHTS_TOTAL,
};
use serde::{Deserialize, Serialize};

use crate::{
    ExecError, MessageHandler, StateError, StateRead, StateWrite, TxContext, TxError, bank,
    get_typed, invalid, put_typed, staking,
};

/// Tokens a subnet's creator locks.
pub const SUBNET_DEPOSIT: Amount = Amount(100 * BASE_UNITS_PER_HIB);
/// Tokens minted per block for all subnets together; each gets its emission share.
pub const SUBNET_EMISSION_PER_BLOCK: Amount = Amount(BASE_UNITS_PER_HIB);
/// The tasks a subnet can serve.
pub const TASKS: [&str; 5] = [
    "chat",
    "text-generation",
    "embeddings",
    "audit",
    "zk-inference",
];
/// Most neurons a subnet may allow.
pub const MAX_NEURONS: u16 = 4096;
/// Most commitments a validator may have waiting to be revealed.
pub const MAX_PENDING_COMMITS: usize = 4;
/// Longest endpoint URL.
pub const MAX_ENDPOINT_BYTES: usize = 256;
/// Epoch summaries kept per subnet.
pub const HISTORY_EPOCHS: u64 = 64;

const PPM: u32 = 1_000_000;
const INDEX_KEY: &[u8] = b"subnets/index";
const SHARE_KEY: &[u8] = b"subnets/emission_share";

/// A subnet.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Subnet {
    /// Id.
    pub id: u32,
    /// Unique name.
    pub name: String,
    /// Task served.
    pub task: String,
    /// Creator, who receives the owner's cut.
    pub owner: Address,
    /// Tokens locked by the owner.
    pub deposit: Amount,
    /// Parameters.
    pub params: SubnetParams,
    /// Height of creation; epochs run at `created_at + k * tempo`.
    pub created_at: u64,
    /// Epochs run so far.
    pub epochs: u64,
    /// Height of the last epoch (0 if none).
    pub last_epoch_height: u64,
}

/// A neuron and its scores from the last epoch (fractions scaled by [`epoch::ONE`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Neuron {
    /// Position in the subnet.
    pub uid: u16,
    /// The account that registered and is paid.
    pub account: Address,
    /// Miner or validator.
    pub role: NeuronRole,
    /// Its endpoint URL.
    pub endpoint: String,
    /// Content hash of the model it serves.
    pub model: Hash,
    /// Height of registration.
    pub registered_at: u64,
    /// Stake of its account at the last epoch.
    pub stake: Amount,
    /// Held a validator permit at the last epoch.
    pub permit: bool,
    /// Was an active validator at the last epoch.
    pub active: bool,
    /// Miner: stake-weighted clipped weight.
    pub rank: u64,
    /// Miner: share of its weight that survived clipping.
    pub trust: u64,
    /// Miner: consensus weight.
    pub consensus: u64,
    /// Miner: share of the miners' emission.
    pub incentive: u64,
    /// Validator: share of its weights that agreed with consensus.
    pub validator_trust: u64,
    /// Validator: share of the validators' emission.
    pub dividends: u64,
    /// Tokens paid at the last epoch; the lowest is replaced first when the subnet is full.
    pub last_emission: Amount,
    /// Tokens paid since registration.
    pub total_emission: Amount,
}

/// A validator's revealed weights.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct WeightsRecord {
    /// (miner uid, parts per million).
    pub weights: Vec<(u16, u32)>,
    /// Height of the reveal.
    pub revealed_at: u64,
    /// Height of the matching commitment.
    pub committed_at: u64,
}

/// A commitment waiting for its reveal.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PendingCommit {
    /// The commitment.
    pub commitment: Hash,
    /// Height it was made.
    pub height: u64,
}

/// What one epoch paid.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EpochSummary {
    /// Epoch number (1 for the first).
    pub epoch: u64,
    /// Height it ran at.
    pub height: u64,
    /// Tokens minted in total.
    pub minted: Amount,
    /// Tokens paid to the owner.
    pub owner: Amount,
    /// (uid, account, tokens) for every neuron paid.
    pub paid: Vec<(u16, Address, Amount)>,
}

fn subnet_key(id: u32) -> Vec<u8> {
    [b"subnets/subnet/".as_slice(), &id.to_be_bytes()].concat()
}

fn name_key(name: &str) -> Vec<u8> {
    [b"subnets/name/".as_slice(), name.as_bytes()].concat()
}

fn neurons_key(id: u32) -> Vec<u8> {
    [b"subnets/neurons/".as_slice(), &id.to_be_bytes()].concat()
}

fn member_key(id: u32, account: &Address) -> Vec<u8> {
    [b"subnets/member/".as_slice(), &id.to_be_bytes(), &account.0].concat()
}

fn per_uid_key(kind: &str, id: u32, uid: u16) -> Vec<u8> {
    [
        b"subnets/".as_slice(),
        kind.as_bytes(),
        b"/",
        &id.to_be_bytes(),
        &uid.to_be_bytes(),
    ]
    .concat()
}

fn history_key(id: u32, epoch: u64) -> Vec<u8> {
    [
        b"subnets/history/".as_slice(),
        &id.to_be_bytes(),
        &epoch.to_be_bytes(),
    ]
    .concat()
}

/// Ids of all subnets, in creation order.
pub fn subnet_ids<S: StateRead + ?Sized>(state: &S) -> Result<Vec<u32>, StateError> {
    Ok(get_typed(state, INDEX_KEY)?.unwrap_or_default())
}

/// Reads a subnet.
pub fn subnet<S: StateRead + ?Sized>(state: &S, id: u32) -> Result<Option<Subnet>, StateError> {
    get_typed(state, &subnet_key(id))
}

/// Finds a subnet by name.
pub fn subnet_by_name<S: StateRead + ?Sized>(
    state: &S,
    name: &str,
) -> Result<Option<Subnet>, StateError> {
    match get_typed::<u32, _>(state, &name_key(name))? {
        Some(id) => subnet(state, id),
        None => Ok(None),
    }
}

/// A subnet's neurons, by uid.
pub fn neurons<S: StateRead + ?Sized>(state: &S, id: u32) -> Result<Vec<Neuron>, StateError> {
    Ok(get_typed(state, &neurons_key(id))?.unwrap_or_default())
}

/// The uid of `account` in a subnet, if registered.
pub fn uid_of<S: StateRead + ?Sized>(
    state: &S,
    id: u32,
    account: &Address,
) -> Result<Option<u16>, StateError> {
    get_typed(state, &member_key(id, account))
}

/// A validator's revealed weights.
pub fn weights<S: StateRead + ?Sized>(
    state: &S,
    id: u32,
    uid: u16,
) -> Result<Option<WeightsRecord>, StateError> {
    get_typed(state, &per_uid_key("weights", id, uid))
}

/// A validator's commitments waiting for their reveal.
pub fn pending_commits<S: StateRead + ?Sized>(
    state: &S,
    id: u32,
    uid: u16,
) -> Result<Vec<PendingCommit>, StateError> {
    Ok(get_typed(state, &per_uid_key("commits", id, uid))?.unwrap_or_default())
}

/// A validator's bonds (miner uid, fraction of that miner's bonds).
pub fn bonds<S: StateRead + ?Sized>(
    state: &S,
    id: u32,
    uid: u16,
) -> Result<Vec<(u16, u64)>, StateError> {
    Ok(get_typed(state, &per_uid_key("bonds", id, uid))?.unwrap_or_default())
}

/// The summary of one epoch, if it is among the last [`HISTORY_EPOCHS`].
pub fn epoch_summary<S: StateRead + ?Sized>(
    state: &S,
    id: u32,
    epoch: u64,
) -> Result<Option<EpochSummary>, StateError> {
    get_typed(state, &history_key(id, epoch))
}

/// Tokens a subnet mints per epoch (when some miner earned incentive).
pub fn epoch_emission(params: &SubnetParams) -> Amount {
    let per_block = SUBNET_EMISSION_PER_BLOCK.0 * params.emission_share_ppm as u128 / PPM as u128;
    Amount(per_block.saturating_mul(params.tempo as u128))
}

fn bad(msg: impl Into<String>) -> TxError {
    TxError::Invalid(msg.into())
}

/// Checks a subnet's parameters.
pub fn check_params(p: &SubnetParams) -> Result<(), TxError> {
    let in_ppm = |name: &str, v: u32, allow_zero: bool| {
        if v > PPM || (!allow_zero && v == 0) {
            let low = if allow_zero { 0 } else { 1 };
            return Err(bad(format!(
                "{name} must be between {low} and {PPM} (parts per million), got {v}"
            )));
        }
        Ok(())
    };
    if !(1..=100_000).contains(&p.tempo) {
        return Err(bad(format!(
            "tempo must be 1 to 100000 blocks, got {}",
            p.tempo
        )));
    }
    in_ppm("kappa_ppm", p.kappa_ppm, false)?;
    in_ppm("emission_share_ppm", p.emission_share_ppm, false)?;
    in_ppm("owner_cut_ppm", p.owner_cut_ppm, true)?;
    if p.bonds_moving_average_ppm >= PPM {
        return Err(bad(format!(
            "bonds_moving_average_ppm must be below {PPM}, or bonds never change; got {}",
            p.bonds_moving_average_ppm
        )));
    }
    if p.max_neurons < 2 || p.max_neurons > MAX_NEURONS {
        return Err(bad(format!(
            "max_neurons must be 2 to {MAX_NEURONS}, got {}",
            p.max_neurons
        )));
    }
    if p.max_validators == 0 || p.max_validators >= p.max_neurons {
        return Err(bad(format!(
            "max_validators must be 1 to max_neurons - 1 ({}), got {}",
            p.max_neurons - 1,
            p.max_validators
        )));
    }
    if p.activity_cutoff == 0 {
        return Err(bad("activity_cutoff must be at least 1 block"));
    }
    if p.commit_reveal_interval == 0 || p.commit_reveal_interval > 10_000 {
        return Err(bad(format!(
            "commit_reveal_interval must be 1 to 10000 blocks, got {}",
            p.commit_reveal_interval
        )));
    }
    Ok(())
}

impl MessageHandler for CreateSubnet {
    fn check_stateless(&self) -> Result<(), TxError> {
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok_name {
            return Err(bad(format!(
                "subnet name {:?} must be 1 to 32 characters of a-z, 0-9 and -",
                self.name
            )));
        }
        if !TASKS.contains(&self.task.as_str()) {
            return Err(bad(format!(
                "unknown task {:?}: expected one of {}",
                self.task,
                TASKS.join(", ")
            )));
        }
        check_params(&self.params)
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        if let Some(existing) = subnet_by_name(state, &self.name)? {
            return Err(invalid(format!(
                "a subnet named {:?} exists already (id {})",
                self.name, existing.id
            )));
        }
        let used: u32 = get_typed(state, SHARE_KEY)?.unwrap_or(0);
        if used + self.params.emission_share_ppm > PPM {
            return Err(invalid(format!(
                "emission share {} ppm is more than the {} ppm left to share out",
                self.params.emission_share_ppm,
                PPM - used
            )));
        }
        bank::require_balance(state, &ctx.sender, SUBNET_DEPOSIT)
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        bank::debit(state, &ctx.sender, SUBNET_DEPOSIT)?;
        let mut ids = subnet_ids(state)?;
        let id = ids.last().map_or(0, |last| last + 1);
        ids.push(id);
        put_typed(state, INDEX_KEY.to_vec(), &ids);
        let used: u32 = get_typed(state, SHARE_KEY)?.unwrap_or(0);
        put_typed(
            state,
            SHARE_KEY.to_vec(),
            &(used + self.params.emission_share_ppm),
        );
        put_typed(state, name_key(&self.name), &id);
        let subnet = Subnet {
            id,
            name: self.name.clone(),
            task: self.task.clone(),
            owner: ctx.sender,
            deposit: SUBNET_DEPOSIT,
            params: self.params.clone(),
            created_at: ctx.block.height,
            epochs: 0,
            last_epoch_height: 0,
        };
        put_typed(state, subnet_key(id), &subnet);
        events.push(Event::new(
            "subnets.created",
            [
                ("subnet", id.to_string()),
                ("name", self.name.clone()),
                ("task", self.task.clone()),
                ("owner", ctx.sender.to_string()),
            ],
        ));
        Ok(())
    }
}

fn existing<S: StateRead + ?Sized>(state: &S, id: u32) -> Result<Subnet, ExecError> {
    subnet(state, id)?.ok_or_else(|| invalid(format!("subnet {id} does not exist")))
}

/// The uid a new neuron takes: the next free one, or the lowest-paid neuron outside its
/// immunity period (ties: the lowest uid). `None` if the subnet is full of immune neurons.
fn slot_for(subnet: &Subnet, neurons: &[Neuron], height: u64) -> Option<(u16, bool)> {
    if neurons.len() < subnet.params.max_neurons as usize {
        return Some((neurons.len() as u16, false));
    }
    neurons
        .iter()
        .filter(|n| height.saturating_sub(n.registered_at) >= subnet.params.immunity_period)
        .min_by(|a, b| {
            a.last_emission
                .cmp(&b.last_emission)
                .then(a.uid.cmp(&b.uid))
        })
        .map(|n| (n.uid, true))
}

impl MessageHandler for RegisterNeuron {
    fn check_stateless(&self) -> Result<(), TxError> {
        let e = &self.endpoint;
        let scheme_ok = e.starts_with("http://") || e.starts_with("https://");
        let host_len = e.split_once("://").map_or(0, |(_, rest)| rest.len());
        if !scheme_ok
            || host_len == 0
            || e.len() > MAX_ENDPOINT_BYTES
            || e.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(format!(
                "endpoint {e:?} must be an http:// or https:// URL of at most {MAX_ENDPOINT_BYTES} bytes"
            )));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        let subnet = existing(state, self.subnet)?;
        if let Some(uid) = uid_of(state, self.subnet, &ctx.sender)? {
            return Err(invalid(format!(
                "{} is already registered in subnet {} as uid {uid}",
                ctx.sender, self.subnet
            )));
        }
        let neurons = neurons(state, self.subnet)?;
        if slot_for(&subnet, &neurons, ctx.block.height).is_none() {
            return Err(invalid(format!(
                "subnet {} is full ({} neurons) and every neuron is still within its immunity period of {} blocks",
                self.subnet, subnet.params.max_neurons, subnet.params.immunity_period
            )));
        }
        bank::require_balance(state, &ctx.sender, subnet.params.registration_fee)
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let subnet = existing(state, self.subnet)?;
        let fee = subnet.params.registration_fee;
        bank::debit(state, &ctx.sender, fee)?;
        bank::burn_supply(state, fee)?;
        let mut all = neurons(state, self.subnet)?;
        let height = ctx.block.height;
        let (uid, replaces) = slot_for(&subnet, &all, height)
            .ok_or_else(|| invalid(format!("subnet {} is full", self.subnet)))?;
        let neuron = Neuron {
            uid,
            account: ctx.sender,
            role: self.role,
            endpoint: self.endpoint.clone(),
            model: self.model,
            registered_at: height,
            stake: Amount::ZERO,
            permit: false,
            active: false,
            rank: 0,
            trust: 0,
            consensus: 0,
            incentive: 0,
            validator_trust: 0,
            dividends: 0,
            last_emission: Amount::ZERO,
            total_emission: Amount::ZERO,
        };
        if replaces {
            let old = std::mem::replace(&mut all[uid as usize], neuron);
            state.delete(member_key(self.subnet, &old.account));
            for kind in ["weights", "commits", "bonds"] {
                state.delete(per_uid_key(kind, self.subnet, uid));
            }
            // Nobody keeps bonds in the replaced miner.
            for v in all.iter().filter(|n| n.role == NeuronRole::Validator) {
                let mut b = bonds(state, self.subnet, v.uid)?;
                let before = b.len();
                b.retain(|&(j, _)| j != uid);
                if b.len() != before {
                    put_typed(state, per_uid_key("bonds", self.subnet, v.uid), &b);
                }
            }
            events.push(Event::new(
                "subnets.replaced",
                [
                    ("subnet", self.subnet.to_string()),
                    ("uid", uid.to_string()),
                    ("account", old.account.to_string()),
                ],
            ));
        } else {
            all.push(neuron);
        }
        put_typed(state, neurons_key(self.subnet), &all);
        put_typed(state, member_key(self.subnet, &ctx.sender), &uid);
        events.push(Event::new(
            "subnets.registered",
            [
                ("subnet", self.subnet.to_string()),
                ("uid", uid.to_string()),
                ("account", ctx.sender.to_string()),
                ("role", format!("{:?}", self.role).to_lowercase()),
                ("burned", fee.0.to_string()),
            ],
        ));
        Ok(())
    }
}

/// The signer's uid, which must be a validator of the subnet.
fn validator_uid<S: StateRead + ?Sized>(
    state: &S,
    subnet: u32,
    account: &Address,
) -> Result<u16, ExecError> {
    existing(state, subnet)?;
    let uid = uid_of(state, subnet, account)?
        .ok_or_else(|| invalid(format!("{account} is not a neuron of subnet {subnet}")))?;
    let all = neurons(state, subnet)?;
    match all.get(uid as usize) {
        Some(n) if n.role == NeuronRole::Validator => Ok(uid),
        _ => Err(invalid(format!(
            "{account} is a miner of subnet {subnet}; only validators set weights"
        ))),
    }
}

/// Commitments still possible to reveal at `height`.
fn live_commits(commits: Vec<PendingCommit>, interval: u64, height: u64) -> Vec<PendingCommit> {
    commits
        .into_iter()
        .filter(|c| height < c.height.saturating_add(2 * interval))
        .collect()
}

impl MessageHandler for CommitWeights {
    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        let uid = validator_uid(state, self.subnet, &ctx.sender)?;
        let interval = existing(state, self.subnet)?.params.commit_reveal_interval;
        let live = live_commits(
            pending_commits(state, self.subnet, uid)?,
            interval,
            ctx.block.height,
        );
        if live.len() >= MAX_PENDING_COMMITS {
            return Err(invalid(format!(
                "{MAX_PENDING_COMMITS} commitments are already waiting to be revealed"
            )));
        }
        if live.iter().any(|c| c.commitment == self.commitment) {
            return Err(invalid("this commitment is already waiting to be revealed"));
        }
        Ok(())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let uid = validator_uid(state, self.subnet, &ctx.sender)?;
        let interval = existing(state, self.subnet)?.params.commit_reveal_interval;
        let mut live = live_commits(
            pending_commits(state, self.subnet, uid)?,
            interval,
            ctx.block.height,
        );
        live.push(PendingCommit {
            commitment: self.commitment,
            height: ctx.block.height,
        });
        put_typed(state, per_uid_key("commits", self.subnet, uid), &live);
        events.push(Event::new(
            "subnets.committed",
            [
                ("subnet", self.subnet.to_string()),
                ("uid", uid.to_string()),
                ("reveal_from", (ctx.block.height + interval).to_string()),
            ],
        ));
        Ok(())
    }
}

/// Checks a reveal against the subnet and its commitment: the reveal's uid, the pending
/// commitments and the index of the matching one.
fn matching<S: StateRead + ?Sized>(
    m: &RevealWeights,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(u16, Vec<PendingCommit>, usize), ExecError> {
    let uid = validator_uid(state, m.subnet, &ctx.sender)?;
    let subnet = existing(state, m.subnet)?;
    let all = neurons(state, m.subnet)?;
    for &(target, _) in &m.weights {
        match all.get(target as usize) {
            None => {
                return Err(invalid(format!(
                    "uid {target} is not a neuron of subnet {} ({} neurons)",
                    m.subnet,
                    all.len()
                )));
            }
            Some(n) if n.role != NeuronRole::Miner => {
                return Err(invalid(format!(
                    "uid {target} is a validator; weights go to miners"
                )));
            }
            Some(_) => {}
        }
    }
    let commitment = m.commitment(&ctx.sender);
    let commits = pending_commits(state, m.subnet, uid)?;
    let Some(index) = commits.iter().position(|c| c.commitment == commitment) else {
        return Err(invalid(
            "no commitment matches these weights and salt: commit first, then reveal the same weights and salt",
        ));
    };
    let interval = subnet.params.commit_reveal_interval;
    let committed = commits[index].height;
    let height = ctx.block.height;
    if height < committed + interval {
        return Err(invalid(format!(
            "too early: weights committed at height {committed} can be revealed from height {}",
            committed + interval
        )));
    }
    if height >= committed + 2 * interval {
        return Err(invalid(format!(
            "too late: the reveal window of the commitment made at height {committed} closed at height {}",
            committed + 2 * interval
        )));
    }
    Ok((uid, commits, index))
}

impl MessageHandler for RevealWeights {
    fn check_stateless(&self) -> Result<(), TxError> {
        if self.weights.is_empty() {
            return Err(bad("weights are empty"));
        }
        if self.weights.len() > MAX_NEURONS as usize {
            return Err(bad(format!(
                "{} weights exceed the most neurons a subnet can have ({MAX_NEURONS})",
                self.weights.len()
            )));
        }
        let mut total = 0u64;
        for (k, &(uid, w)) in self.weights.iter().enumerate() {
            if k > 0 && uid <= self.weights[k - 1].0 {
                return Err(bad(format!(
                    "weight uids must be strictly increasing: uid {uid} follows {}",
                    self.weights[k - 1].0
                )));
            }
            if w == 0 {
                return Err(bad(format!("weight of uid {uid} is zero: leave it out")));
            }
            total += w as u64;
        }
        if total != WEIGHTS_TOTAL as u64 {
            return Err(bad(format!(
                "weights must sum to {WEIGHTS_TOTAL} (parts per million), they sum to {total}"
            )));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        matching(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let (uid, mut commits, index) = matching(self, state, ctx)?;
        let committed = commits.remove(index).height;
        put_typed(state, per_uid_key("commits", self.subnet, uid), &commits);
        let record = WeightsRecord {
            weights: self.weights.clone(),
            revealed_at: ctx.block.height,
            committed_at: committed,
        };
        put_typed(state, per_uid_key("weights", self.subnet, uid), &record);
        events.push(Event::new(
            "subnets.revealed",
            [
                ("subnet", self.subnet.to_string()),
                ("uid", uid.to_string()),
                ("miners", self.weights.len().to_string()),
            ],
        ));
        Ok(())
    }
}

/// Runs the epoch of every subnet whose tempo ends at this height.
pub(crate) fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    for id in subnet_ids(state)? {
        let Some(subnet) = subnet(state, id)? else {
            continue;
        };
        let since = height.saturating_sub(subnet.created_at);
        if since > 0 && since % subnet.params.tempo == 0 {
            run_epoch(state, subnet, height, events)?;
        }
    }
    Ok(())
}

fn to_fraction(ppm: u32) -> u64 {
    ppm as u64 * (epoch::ONE / PPM as u64)
}

fn run_epoch<S: StateWrite + ?Sized>(
    state: &mut S,
    mut subnet: Subnet,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let id = subnet.id;
    let mut all = neurons(state, id)?;
    let mut inputs = Vec::with_capacity(all.len());
    for n in &all {
        let (_, stake) = staking::stake_of(state, &n.account)?;
        let validator = n.role == NeuronRole::Validator;
        let (weights, bonds) = if validator {
            (
                weights(state, id, n.uid)?.map(|w| (w.weights, w.revealed_at)),
                bonds(state, id, n.uid)?,
            )
        } else {
            (None, Vec::new())
        };
        inputs.push(epoch::EpochNeuron {
            stake: stake.0,
            validator,
            registered_at: n.registered_at,
            weights,
            bonds,
        });
    }
    let p = &subnet.params;
    let emission = epoch_emission(p);
    let params = epoch::EpochParams {
        height,
        kappa: to_fraction(p.kappa_ppm),
        max_validators: p.max_validators as usize,
        activity_cutoff: p.activity_cutoff,
        bonds_moving_average: to_fraction(p.bonds_moving_average_ppm),
        emission: emission.0,
        owner_cut: to_fraction(p.owner_cut_ppm),
    };
    let out = epoch::run(&params, &inputs);

    subnet.epochs += 1;
    subnet.last_epoch_height = height;
    let mut paid = Vec::new();
    let mut minted = Amount(out.owner_emission);
    for (k, n) in all.iter_mut().enumerate() {
        n.stake = Amount(inputs[k].stake);
        n.permit = out.permit[k];
        n.active = out.active[k];
        n.rank = out.rank[k];
        n.trust = out.trust[k];
        n.consensus = out.consensus[k];
        n.incentive = out.incentive[k];
        n.validator_trust = out.validator_trust[k];
        n.dividends = out.dividends[k];
        let tokens = Amount(out.emission[k]);
        n.last_emission = tokens;
        n.total_emission = n
            .total_emission
            .checked_add(tokens)
            .unwrap_or(n.total_emission);
        if inputs[k].validator {
            put_typed(state, per_uid_key("bonds", id, n.uid), &out.bonds[k]);
        }
        if tokens.0 > 0 {
            bank::credit(state, &n.account, tokens)?;
            minted = minted
                .checked_add(tokens)
                .ok_or(TxError::Overflow("emission"))?;
            paid.push((n.uid, n.account, tokens));
        }
    }
    if out.owner_emission > 0 {
        bank::credit(state, &subnet.owner, Amount(out.owner_emission))?;
    }
    if minted.0 > 0 {
        bank::mint_supply(state, minted)?;
    }
    put_typed(state, neurons_key(id), &all);
    let summary = EpochSummary {
        epoch: subnet.epochs,
        height,
        minted,
        owner: Amount(out.owner_emission),
        paid,
    };
    put_typed(state, history_key(id, subnet.epochs), &summary);
    if subnet.epochs > HISTORY_EPOCHS {
        state.delete(history_key(id, subnet.epochs - HISTORY_EPOCHS));
    }
    events.push(Event::new(
        "subnets.epoch",
        [
            ("subnet", id.to_string()),
            ("epoch", subnet.epochs.to_string()),
            ("minted", minted.0.to_string()),
            ("neurons_paid", summary.paid.len().to_string()),
        ],
    ));
    put_typed(state, subnet_key(id), &subnet);
    Ok(())
}
