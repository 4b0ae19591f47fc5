//! Staking: bonding to validators (share-based, so slashing needs no iteration over delegators),
//! unbonding with a delay, slashing and jailing, and the validator set.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use hibana_types::{Address, Amount, Bond, Event, PublicKey, SubmitEvidence, Unbond, VoteKind};
use serde::{Deserialize, Serialize};

use crate::{
    ExecError, MessageHandler, Params, StateError, StateRead, StateWrite, TxContext, TxError, bank,
    get_typed, invalid, params, put_typed,
};

const VALIDATOR_INDEX_KEY: &[u8] = b"staking/validators";

/// Parts per million: the unit of slashing fractions.
pub const PPM: u32 = 1_000_000;
/// Share of a validator's stake (and of the stake unbonding from it) burned for equivocation.
pub const EQUIVOCATION_SLASH_PPM: u32 = 50_000;

/// A validator: its key, the tokens bonded to it and the shares that claim them.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Validator {
    /// Consensus and account key.
    pub public_key: PublicKey,
    /// Tokens bonded (its voting power).
    pub tokens: Amount,
    /// Shares issued to delegators.
    pub shares: u128,
    /// Jailed validators are out of the validator set.
    pub jailed: bool,
}

/// Stake waiting out the unbonding period.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct UnbondingEntry {
    /// Who receives the tokens.
    pub delegator: Address,
    /// The validator they were bonded to (slashing still reaches them).
    pub validator: Address,
    /// Tokens to return.
    pub amount: Amount,
}

/// A member of the validator set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// Address.
    pub address: Address,
    /// Consensus key.
    pub public_key: PublicKey,
    /// Voting power: bonded tokens in base units.
    pub power: Amount,
}

/// One delegation of an account, valued in tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationView {
    /// The validator.
    pub validator: Address,
    /// Shares held.
    pub shares: u128,
    /// Their current token value.
    pub tokens: Amount,
}

/// State key of a validator.
pub fn validator_key(address: &Address) -> Vec<u8> {
    let mut key = b"staking/validator/".to_vec();
    key.extend_from_slice(&address.0);
    key
}

/// State key of an account's delegations (validator → shares).
pub fn delegations_key(delegator: &Address) -> Vec<u8> {
    let mut key = b"staking/delegations/".to_vec();
    key.extend_from_slice(&delegator.0);
    key
}

fn unbonding_key(release_height: u64) -> Vec<u8> {
    let mut key = b"staking/unbonding/".to_vec();
    key.extend_from_slice(&release_height.to_be_bytes());
    key
}

/// Reads a validator.
pub fn validator<S: StateRead + ?Sized>(
    state: &S,
    address: &Address,
) -> Result<Option<Validator>, StateError> {
    get_typed(state, &validator_key(address))
}

/// Reads an account's delegations.
pub fn delegations<S: StateRead + ?Sized>(
    state: &S,
    delegator: &Address,
) -> Result<BTreeMap<Address, u128>, StateError> {
    Ok(get_typed(state, &delegations_key(delegator))?.unwrap_or_default())
}

fn set_delegations<S: StateWrite + ?Sized>(
    state: &mut S,
    delegator: &Address,
    d: &BTreeMap<Address, u128>,
) {
    if d.is_empty() {
        state.delete(delegations_key(delegator));
    } else {
        put_typed(state, delegations_key(delegator), d);
    }
}

fn validator_index<S: StateRead + ?Sized>(state: &S) -> Result<BTreeSet<Address>, StateError> {
    Ok(get_typed(state, VALIDATOR_INDEX_KEY)?.unwrap_or_default())
}

/// Unbonding entries released at a height.
pub fn unbonding_at<S: StateRead + ?Sized>(
    state: &S,
    height: u64,
) -> Result<Vec<UnbondingEntry>, StateError> {
    Ok(get_typed(state, &unbonding_key(height))?.unwrap_or_default())
}

/// `a * b / c` without overflow of the intermediate product where possible; `None` if the result
/// does not fit or `c` is zero. Rounds down.
pub fn mul_div(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    match a.checked_mul(b) {
        Some(p) => Some(p / c),
        None => {
            // Split a = q*c + r so that a*b/c = q*b + r*b/c, keeping intermediates small.
            let (q, r) = (a / c, a % c);
            q.checked_mul(b)?.checked_add(r.checked_mul(b)? / c)
        }
    }
}

/// Token value of `shares` of a validator.
pub fn shares_to_tokens(v: &Validator, shares: u128) -> Amount {
    Amount(mul_div(shares, v.tokens.0, v.shares).unwrap_or(0))
}

/// The current validator set: unjailed validators with stake, largest first (ties by address),
/// at most `max_validators`.
pub fn validator_set<S: StateRead + ?Sized>(state: &S) -> Result<Vec<ValidatorInfo>, StateError> {
    let max = params(state)?.max_validators as usize;
    let mut set = Vec::new();
    for address in validator_index(state)? {
        if let Some(v) = validator(state, &address)?
            && !v.jailed
            && v.tokens.0 > 0
        {
            set.push(ValidatorInfo {
                address,
                public_key: v.public_key,
                power: v.tokens,
            });
        }
    }
    set.sort_by(|a, b| b.power.cmp(&a.power).then(a.address.cmp(&b.address)));
    set.truncate(max);
    Ok(set)
}

/// An account's delegations valued in tokens, and their total.
pub fn stake_of<S: StateRead + ?Sized>(
    state: &S,
    delegator: &Address,
) -> Result<(Vec<DelegationView>, Amount), StateError> {
    let mut views = Vec::new();
    let mut total = Amount::ZERO;
    for (validator_addr, shares) in delegations(state, delegator)? {
        let tokens = match validator(state, &validator_addr)? {
            Some(v) => shares_to_tokens(&v, shares),
            None => Amount::ZERO,
        };
        total = total.checked_add(tokens).unwrap_or(total);
        views.push(DelegationView {
            validator: validator_addr,
            shares,
            tokens,
        });
    }
    Ok((views, total))
}

/// Bonds `amount` (already taken from a balance or minted) from `delegator` to `validator_addr`.
fn bond_tokens<S: StateWrite + ?Sized>(
    state: &mut S,
    delegator: &Address,
    validator_addr: &Address,
    own_key: Option<PublicKey>,
    amount: Amount,
) -> Result<(), ExecError> {
    let mut v = match (validator(state, validator_addr)?, own_key) {
        (Some(v), _) => v,
        (None, Some(public_key)) => {
            let mut index = validator_index(state)?;
            index.insert(*validator_addr);
            put_typed(state, VALIDATOR_INDEX_KEY.to_vec(), &index);
            Validator {
                public_key,
                tokens: Amount::ZERO,
                shares: 0,
                jailed: false,
            }
        }
        (None, None) => {
            return Err(invalid(format!(
                "{validator_addr} is not a validator: a validator registers by bonding to its own address"
            )));
        }
    };
    if v.jailed {
        return Err(invalid(format!("validator {validator_addr} is jailed")));
    }
    let new_shares = if v.shares == 0 {
        amount.0
    } else if v.tokens.0 == 0 {
        return Err(invalid(format!(
            "validator {validator_addr} has been slashed to zero"
        )));
    } else {
        mul_div(amount.0, v.shares, v.tokens.0).ok_or(TxError::Overflow("shares"))?
    };
    if new_shares == 0 {
        return Err(invalid("bond amount is too small to buy a share"));
    }
    v.tokens = v
        .tokens
        .checked_add(amount)
        .ok_or(TxError::Overflow("validator tokens"))?;
    v.shares = v
        .shares
        .checked_add(new_shares)
        .ok_or(TxError::Overflow("validator shares"))?;
    put_typed(state, validator_key(validator_addr), &v);
    let mut d = delegations(state, delegator)?;
    let held = d.entry(*validator_addr).or_insert(0);
    *held = held
        .checked_add(new_shares)
        .ok_or(TxError::Overflow("delegation shares"))?;
    set_delegations(state, delegator, &d);
    Ok(())
}

/// Writes the genesis validator: stake minted and self-bonded.
pub(crate) fn genesis_validator<S: StateWrite + ?Sized>(
    state: &mut S,
    public_key: PublicKey,
    stake: Amount,
) -> Result<(), ExecError> {
    let address = public_key.address();
    bank::mint_supply(state, stake)?;
    bond_tokens(state, &address, &address, Some(public_key), stake)
}

impl MessageHandler for Bond {
    fn check_stateless(&self) -> Result<(), TxError> {
        if self.amount.0 == 0 {
            return Err(TxError::Invalid("bond amount must be positive".into()));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        bank::require_balance(state, &ctx.sender, self.amount)
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        bank::debit(state, &ctx.sender, self.amount)?;
        let own_key = (self.validator == ctx.sender).then_some(ctx.signer);
        bond_tokens(state, &ctx.sender, &self.validator, own_key, self.amount)?;
        events.push(Event::new(
            "staking.bond",
            [
                ("delegator", ctx.sender.to_string()),
                ("validator", self.validator.to_string()),
                ("amount", self.amount.0.to_string()),
            ],
        ));
        Ok(())
    }
}

impl MessageHandler for Unbond {
    fn check_stateless(&self) -> Result<(), TxError> {
        if self.amount.0 == 0 {
            return Err(TxError::Invalid("unbond amount must be positive".into()));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        let v = validator(state, &self.validator)?
            .ok_or_else(|| invalid(format!("{} is not a validator", self.validator)))?;
        let held = delegations(state, &ctx.sender)?
            .get(&self.validator)
            .copied()
            .unwrap_or(0);
        let value = shares_to_tokens(&v, held);
        if value < self.amount {
            return Err(invalid(format!(
                "cannot unbond {}: {} has {} bonded to {}",
                self.amount, ctx.sender, value, self.validator
            )));
        }
        Ok(())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        self.check_stateful(state, ctx)?;
        let mut v = validator(state, &self.validator)?
            .ok_or_else(|| invalid(format!("{} is not a validator", self.validator)))?;
        let mut d = delegations(state, &ctx.sender)?;
        let held = d.get(&self.validator).copied().unwrap_or(0);
        // Round the burned shares up so that repeated small unbonds cannot drain other
        // delegators; unbonding the whole value burns every share held.
        let exact =
            mul_div(self.amount.0, v.shares, v.tokens.0).ok_or(TxError::Overflow("shares"))?;
        let rounds_up = mul_div(exact, v.tokens.0, v.shares) != Some(self.amount.0);
        let mut burn = exact.saturating_add(u128::from(rounds_up));
        if burn > held || shares_to_tokens(&v, held) == self.amount {
            burn = held;
        }
        v.tokens = v
            .tokens
            .checked_sub(self.amount)
            .ok_or(TxError::Overflow("validator tokens"))?;
        v.shares = v
            .shares
            .checked_sub(burn)
            .ok_or(TxError::Overflow("validator shares"))?;
        put_typed(state, validator_key(&self.validator), &v);
        let remaining = held - burn;
        if remaining == 0 {
            d.remove(&self.validator);
        } else {
            d.insert(self.validator, remaining);
        }
        set_delegations(state, &ctx.sender, &d);
        let release = ctx
            .block
            .height
            .checked_add(params(state)?.unbonding_period.max(1))
            .ok_or(TxError::Overflow("release height"))?;
        let mut queue = unbonding_at(state, release)?;
        queue.push(UnbondingEntry {
            delegator: ctx.sender,
            validator: self.validator,
            amount: self.amount,
        });
        put_typed(state, unbonding_key(release), &queue);
        events.push(Event::new(
            "staking.unbond",
            [
                ("delegator", ctx.sender.to_string()),
                ("validator", self.validator.to_string()),
                ("amount", self.amount.0.to_string()),
                ("release_height", release.to_string()),
            ],
        ));
        Ok(())
    }
}

/// Returns matured unbonding stake to its owners at the start of block `height`.
pub(crate) fn begin_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let entries = unbonding_at(state, height)?;
    if entries.is_empty() {
        return Ok(());
    }
    state.delete(unbonding_key(height));
    for entry in entries {
        bank::credit(state, &entry.delegator, entry.amount)?;
        events.push(Event::new(
            "staking.unbonded",
            [
                ("delegator", entry.delegator.to_string()),
                ("amount", entry.amount.0.to_string()),
            ],
        ));
    }
    Ok(())
}

/// Slashes `fraction_ppm` parts per million of the stake bonded to `validator_addr`, including
/// stake still unbonding from it, and burns it. Called by other components on proven misbehaviour.
/// Returns the amount burned.
pub fn slash<S: StateWrite + ?Sized>(
    state: &mut S,
    validator_addr: &Address,
    fraction_ppm: u32,
    reason: &str,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<Amount, ExecError> {
    if fraction_ppm > PPM {
        return Err(invalid(format!(
            "slash fraction {fraction_ppm} ppm exceeds 100%"
        )));
    }
    let mut v = validator(state, validator_addr)?
        .ok_or_else(|| invalid(format!("{validator_addr} is not a validator")))?;
    let ppm = u128::from(fraction_ppm);
    let cut = mul_div(v.tokens.0, ppm, u128::from(PPM)).ok_or(TxError::Overflow("slash"))?;
    v.tokens = Amount(v.tokens.0 - cut);
    put_typed(state, validator_key(validator_addr), &v);
    let mut burned = cut;
    let period = params(state)?.unbonding_period.max(1);
    for release in height.saturating_add(1)..=height.saturating_add(period) {
        let mut queue = unbonding_at(state, release)?;
        let mut changed = false;
        for entry in queue.iter_mut().filter(|e| e.validator == *validator_addr) {
            let entry_cut =
                mul_div(entry.amount.0, ppm, u128::from(PPM)).ok_or(TxError::Overflow("slash"))?;
            entry.amount = Amount(entry.amount.0 - entry_cut);
            burned = burned
                .checked_add(entry_cut)
                .ok_or(TxError::Overflow("slash"))?;
            changed = true;
        }
        if changed {
            put_typed(state, unbonding_key(release), &queue);
        }
    }
    bank::burn_supply(state, Amount(burned))?;
    events.push(Event::new(
        "staking.slash",
        [
            ("validator", validator_addr.to_string()),
            ("fraction_ppm", fraction_ppm.to_string()),
            ("burned", burned.to_string()),
            ("reason", reason.to_string()),
        ],
    ));
    Ok(Amount(burned))
}

/// Removes a validator from the validator set until it is unjailed.
pub fn jail<S: StateWrite + ?Sized>(
    state: &mut S,
    validator_addr: &Address,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let mut v = validator(state, validator_addr)?
        .ok_or_else(|| invalid(format!("{validator_addr} is not a validator")))?;
    v.jailed = true;
    put_typed(state, validator_key(validator_addr), &v);
    events.push(Event::new(
        "staking.jail",
        [("validator", validator_addr.to_string())],
    ));
    Ok(())
}

/// Sum of all stake that is bonded or unbonding (for supply checks).
pub fn total_staked<S: StateRead + ?Sized>(
    state: &S,
    from_height: u64,
) -> Result<u128, StateError> {
    let mut total: u128 = 0;
    for address in validator_index(state)? {
        if let Some(v) = validator(state, &address)? {
            total = total.saturating_add(v.tokens.0);
        }
    }
    let period = params(state)?.unbonding_period.max(1);
    for release in from_height..=from_height.saturating_add(period) {
        for e in unbonding_at(state, release)? {
            total = total.saturating_add(e.amount.0);
        }
    }
    Ok(total)
}

pub(crate) fn check_params(p: &Params) -> Result<(), TxError> {
    if p.unbonding_period == 0 {
        return Err(TxError::Invalid("unbonding period must be positive".into()));
    }
    Ok(())
}

fn evidence_key(e: &hibana_types::Equivocation) -> Vec<u8> {
    let v = &e.first.vote;
    let mut key = b"staking/evidence/".to_vec();
    key.extend_from_slice(&v.validator.0);
    key.extend_from_slice(&v.height.to_be_bytes());
    key.extend_from_slice(&hibana_types::encode(&(
        v.round,
        v.kind == VoteKind::Precommit,
    )));
    key
}

/// Where the height of a validator's first equivocation punishment is kept: one slash per
/// validator, however many conflicting votes a double-signing setup produced.
fn punished_key(validator: &Address) -> Vec<u8> {
    let mut key = b"staking/equivocated/".to_vec();
    key.extend_from_slice(&validator.0);
    key
}

impl MessageHandler for SubmitEvidence {
    fn check_stateless(&self) -> Result<(), TxError> {
        // The signatures need the chain id, which comes from state: see check_stateful.
        let (a, b) = (
            &self.equivocation.first.vote,
            &self.equivocation.second.vote,
        );
        if a.value == b.value {
            return Err(TxError::Invalid(
                "the votes are for the same value: no equivocation".into(),
            ));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        let e = &self.equivocation;
        e.check(&ctx.block.chain_id)
            .map_err(|reason| invalid(format!("invalid evidence: {reason}")))?;
        let v = &e.first.vote;
        if validator(state, &v.validator)?.is_none() {
            return Err(invalid(format!("{} is not a validator", v.validator)));
        }
        if v.height > ctx.block.height {
            return Err(invalid(format!(
                "the votes are for height {}, beyond the current height {}",
                v.height, ctx.block.height
            )));
        }
        let max_age = params(state)?.unbonding_period.max(1);
        if ctx.block.height - v.height > max_age {
            return Err(invalid(format!(
                "the votes are from height {}, older than the {max_age}-block unbonding period, whose stake may be gone",
                v.height
            )));
        }
        if state.get(&evidence_key(e))?.is_some() {
            return Err(invalid(format!(
                "{} was already punished for this equivocation",
                v.validator
            )));
        }
        if let Some(at) = state.get(&punished_key(&v.validator))? {
            let at: [u8; 8] = at.as_slice().try_into().unwrap_or_default();
            return Err(invalid(format!(
                "{} was already punished for equivocation at height {}",
                v.validator,
                u64::from_be_bytes(at)
            )));
        }
        Ok(())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        self.check_stateful(state, ctx)?;
        let e = &self.equivocation;
        let v = &e.first.vote;
        state.put(evidence_key(e), ctx.block.height.to_be_bytes().to_vec());
        state.put(
            punished_key(&v.validator),
            ctx.block.height.to_be_bytes().to_vec(),
        );
        let burned = slash(
            state,
            &v.validator,
            EQUIVOCATION_SLASH_PPM,
            "equivocation",
            ctx.block.height,
            events,
        )?;
        jail(state, &v.validator, events)?;
        events.push(Event::new(
            "staking.equivocation",
            [
                ("validator", v.validator.to_string()),
                ("height", v.height.to_string()),
                ("reporter", ctx.sender.to_string()),
                ("burned", burned.0.to_string()),
            ],
        ));
        Ok(())
    }
}
