//! Subnet state: subnets, neurons, weights, bonds, epoch history, and the epoch run at
//! each tempo.

use hibana_types::records::subnets::{EpochSummary, Neuron, PendingCommit, Subnet, WeightsRecord};
use hibana_types::{Address, Amount, BASE_UNITS_PER_HIB, Event, NeuronRole, SubnetParams};

use super::epoch;
use crate::{
    ExecError, StateError, StateRead, StateWrite, TxError, bank, get_typed, put_typed, staking,
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

pub(crate) const PPM: u32 = 1_000_000;

pub(crate) const INDEX_KEY: &[u8] = b"subnets/index";

pub(crate) const SHARE_KEY: &[u8] = b"subnets/emission_share";

pub(crate) fn subnet_key(id: u32) -> Vec<u8> {
    [b"subnets/subnet/".as_slice(), &id.to_be_bytes()].concat()
}

pub(crate) fn name_key(name: &str) -> Vec<u8> {
    [b"subnets/name/".as_slice(), name.as_bytes()].concat()
}

pub(crate) fn neurons_key(id: u32) -> Vec<u8> {
    [b"subnets/neurons/".as_slice(), &id.to_be_bytes()].concat()
}

pub(crate) fn member_key(id: u32, account: &Address) -> Vec<u8> {
    [b"subnets/member/".as_slice(), &id.to_be_bytes(), &account.0].concat()
}

pub(crate) fn per_uid_key(kind: &str, id: u32, uid: u16) -> Vec<u8> {
    [
        b"subnets/".as_slice(),
        kind.as_bytes(),
        b"/",
        &id.to_be_bytes(),
        &uid.to_be_bytes(),
    ]
    .concat()
}

pub(crate) fn history_key(id: u32, epoch: u64) -> Vec<u8> {
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

pub(crate) fn to_fraction(ppm: u32) -> u64 {
    ppm as u64 * (epoch::ONE / PPM as u64)
}

pub(crate) fn run_epoch<S: StateWrite + ?Sized>(
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
