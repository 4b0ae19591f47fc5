//! Subnet messages: `CreateSubnet`, `RegisterNeuron`, `CommitWeights` and `RevealWeights`.

use hibana_types::records::subnets::{
    Neuron, PendingCommit, SUBNET_DEPOSITS, Subnet, WeightsRecord,
};
use hibana_types::{
    Address, Amount, CommitWeights, CreateSubnet, Event, NeuronRole, RegisterNeuron, RevealWeights,
    SubnetParams, WEIGHTS_TOTAL,
};

use crate::{
    ExecError, MessageHandler, StateRead, StateWrite, TxContext, TxError, bank, get_typed, invalid,
    put_typed,
};

use super::state::*;

pub(crate) fn bad(msg: impl Into<String>) -> TxError {
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
    type Verified = ();

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
        _: &(),
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
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        // Locked, not burned: the supply still counts it, so an account must hold it.
        bank::debit(state, &ctx.sender, SUBNET_DEPOSIT)?;
        bank::credit(state, &SUBNET_DEPOSITS, SUBNET_DEPOSIT)?;
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

/// Checks an endpoint URL: `http://` or `https://`, a non-empty rest, at most
/// [`MAX_ENDPOINT_BYTES`] bytes, no whitespace or control characters.
pub(crate) fn check_endpoint(e: &str) -> Result<(), TxError> {
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

pub(crate) fn existing<S: StateRead + ?Sized>(state: &S, id: u32) -> Result<Subnet, ExecError> {
    subnet(state, id)?.ok_or_else(|| invalid(format!("subnet {id} does not exist")))
}

/// The uid a new neuron takes: the next free one, or the lowest-paid neuron outside its
/// immunity period (ties: the lowest uid). `None` if the subnet is full of immune neurons.
pub(crate) fn slot_for(subnet: &Subnet, neurons: &[Neuron], height: u64) -> Option<(u16, bool)> {
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
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        check_endpoint(&self.endpoint)?;
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
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
        _: &(),
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
pub(crate) fn validator_uid<S: StateRead + ?Sized>(
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
pub(crate) fn live_commits(
    commits: Vec<PendingCommit>,
    interval: u64,
    height: u64,
) -> Vec<PendingCommit> {
    commits
        .into_iter()
        .filter(|c| height < c.height.saturating_add(2 * interval))
        .collect()
}

impl MessageHandler for CommitWeights {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
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
        _: &(),
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
pub(crate) fn matching<S: StateRead + ?Sized>(
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
    type Verified = ();

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
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        matching(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
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
