//! Staking messages: `Bond`, `Unbond`, `SubmitEvidence` and `Unjail`.

use hibana_types::records::staking::{UnbondingEntry, validator_key};
use hibana_types::{Amount, Bond, Event, SubmitEvidence, Unbond, Unjail};

use crate::{
    ExecError, MessageHandler, StateRead, StateWrite, TxContext, TxError, bank, invalid, params,
    put_typed,
};

use super::state::*;

impl MessageHandler for Bond {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.amount.0 == 0 {
            return Err(TxError::Invalid("bond amount must be positive".into()));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        bank::require_balance(state, &ctx.sender, self.amount)
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
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
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.amount.0 == 0 {
            return Err(TxError::Invalid("unbond amount must be positive".into()));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
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
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        self.check_stateful(&(), state, ctx)?;
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

impl MessageHandler for SubmitEvidence {
    type Verified = ();

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
        _: &(),
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
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        self.check_stateful(&(), state, ctx)?;
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
        jail(state, &v.validator, ctx.block.height, events)?;
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

impl MessageHandler for Unjail {
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
        let v = validator(state, &ctx.sender)?
            .ok_or_else(|| invalid(format!("{} is not a validator", ctx.sender)))?;
        if !v.jailed {
            return Err(invalid(format!("validator {} is not jailed", ctx.sender)));
        }
        if v.tokens == Amount::ZERO {
            return Err(invalid(format!(
                "validator {} has no stake left: bond some before unjailing",
                ctx.sender
            )));
        }
        let period = params(state)?.unbonding_period;
        let free_at = jailed_at(state, &ctx.sender)?.saturating_add(period);
        if ctx.block.height < free_at {
            return Err(invalid(format!(
                "validator {} is jailed until height {free_at} (the unbonding period of {period} blocks)",
                ctx.sender
            )));
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
        self.check_stateful(&(), state, ctx)?;
        let mut v = validator(state, &ctx.sender)?
            .ok_or_else(|| invalid(format!("{} is not a validator", ctx.sender)))?;
        v.jailed = false;
        put_typed(state, validator_key(&ctx.sender), &v);
        state.delete(jailed_at_key(&ctx.sender));
        events.push(Event::new(
            "staking.unjail",
            [("validator", ctx.sender.to_string())],
        ));
        Ok(())
    }
}
