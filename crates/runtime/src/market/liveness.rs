//! Provider liveness: a registered provider sends a `Heartbeat` from time to time; its leases
//! pay for no block after `liveness_blocks` past the last one (its clients stop paying a
//! provider that stopped answering), and every further interval without one is a missed check
//! that costs reputation. After [`MAX_MISSED_CHECKS`] in a row it is unlisted (it cannot bid)
//! until its next heartbeat.
//!
//! Checks are filed by height: a heartbeat at `h` files the provider for a check at the end of
//! `h + liveness_blocks + 1`; the check finds a later heartbeat (nothing to do) or counts a miss
//! and files the next check one interval later. Only the providers filed at a height are read.

use std::collections::BTreeSet;

use hibana_types::records::market::{
    HEARTBEAT_GAIN, Liveness, MARKET_PARAMS_KEY, MAX_MISSED_CHECKS, MAX_REPUTATION,
    MISSED_CHECK_COST, MarketParams, liveness_due_key, liveness_key,
};
use hibana_types::{Address, Event, Heartbeat};

use super::state::{edit_set, provider, provider_lease_ids, take_set};
use crate::{
    ExecError, MessageHandler, StateError, StateRead, StateWrite, TxContext, TxError, get_typed,
    invalid, put_typed,
};

/// The market's parameters (the defaults on a chain whose genesis predates them).
pub fn market_params<S: StateRead + ?Sized>(state: &S) -> Result<MarketParams, StateError> {
    Ok(get_typed(state, MARKET_PARAMS_KEY)?.unwrap_or_default())
}

/// A provider's liveness (`None` for a provider registered before liveness was kept: it is
/// treated as live).
pub fn liveness<S: StateRead + ?Sized>(
    state: &S,
    address: &Address,
) -> Result<Option<Liveness>, StateError> {
    get_typed(state, &liveness_key(address))
}

/// The providers whose liveness is checked at the end of `height`.
pub fn liveness_due_at<S: StateRead + ?Sized>(
    state: &S,
    height: u64,
) -> Result<BTreeSet<Address>, StateError> {
    Ok(get_typed(state, &liveness_due_key(height))?.unwrap_or_default())
}

fn file_check<S: StateWrite + ?Sized>(
    state: &mut S,
    address: &Address,
    at: u64,
) -> Result<(), StateError> {
    edit_set(state, liveness_due_key(at), *address, true)
}

/// The last height a lease of `provider` pays for (`u64::MAX` when no liveness is kept).
pub fn live_until<S: StateRead + ?Sized>(state: &S, provider: &Address) -> Result<u64, StateError> {
    let params = market_params(state)?;
    Ok(liveness(state, provider)?.map_or(u64::MAX, |l| l.live_until(&params)))
}

/// Starts a newly registered provider's liveness at `height`.
pub(crate) fn start<S: StateWrite + ?Sized>(
    state: &mut S,
    address: &Address,
    height: u64,
) -> Result<(), StateError> {
    let params = market_params(state)?;
    put_typed(
        state,
        liveness_key(address),
        &Liveness {
            last_seen: height,
            missed: 0,
            reputation: MAX_REPUTATION,
            listed: true,
        },
    );
    file_check(
        state,
        address,
        height
            .saturating_add(params.liveness_blocks)
            .saturating_add(1),
    )
}

/// Forgets a provider that left the market.
pub(crate) fn forget<S: StateWrite + ?Sized>(state: &mut S, address: &Address) {
    state.delete(liveness_key(address));
}

/// Why a provider may not bid, if it may not.
pub(crate) fn check_listed<S: StateRead + ?Sized>(
    state: &S,
    address: &Address,
) -> Result<(), ExecError> {
    if let Some(l) = liveness(state, address)?
        && !l.listed
    {
        return Err(invalid(format!(
            "provider {address} is unlisted after {} missed liveness checks: send a heartbeat",
            l.missed
        )));
    }
    Ok(())
}

impl MessageHandler for Heartbeat {
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
        if provider(state, &ctx.sender)?.is_none() {
            return Err(invalid(format!(
                "{} is not a registered provider",
                ctx.sender
            )));
        }
        Ok(())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        v: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        self.check_stateful(v, state, ctx)?;
        let params = market_params(state)?;
        let height = ctx.block.height;
        let mut l = liveness(state, &ctx.sender)?.unwrap_or(Liveness {
            last_seen: height,
            missed: 0,
            reputation: MAX_REPUTATION,
            listed: true,
        });
        l.last_seen = height;
        l.missed = 0;
        l.reputation = (l.reputation + HEARTBEAT_GAIN).min(MAX_REPUTATION);
        let relisted = !l.listed;
        l.listed = true;
        put_typed(state, liveness_key(&ctx.sender), &l);
        file_check(
            state,
            &ctx.sender,
            height
                .saturating_add(params.liveness_blocks)
                .saturating_add(1),
        )?;
        events.push(Event::new(
            "market.heartbeat",
            [
                ("provider", ctx.sender.to_string()),
                ("reputation", l.reputation.to_string()),
                ("live_until", l.live_until(&params).to_string()),
                ("relisted", relisted.to_string()),
            ],
        ));
        Ok(())
    }
}

/// Checks the providers filed at `height`: one whose last heartbeat is older than the interval
/// misses a check (reputation down, unlisted after [`MAX_MISSED_CHECKS`] in a row, its clients
/// told which of their leases stopped paying) and is filed again one interval later.
pub(crate) fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let due: BTreeSet<Address> = take_set(state, liveness_due_key(height))?;
    if due.is_empty() {
        return Ok(());
    }
    let params = market_params(state)?;
    for address in due {
        let Some(mut l) = liveness(state, &address)? else {
            continue;
        };
        if l.live_until(&params) >= height {
            continue; // a later heartbeat filed its own check
        }
        l.missed = l.missed.saturating_add(1);
        l.reputation = l.reputation.saturating_sub(MISSED_CHECK_COST);
        let unlisted = l.listed && l.missed >= MAX_MISSED_CHECKS;
        if unlisted {
            l.listed = false;
        }
        put_typed(state, liveness_key(&address), &l);
        file_check(
            state,
            &address,
            height.saturating_add(params.liveness_blocks),
        )?;
        events.push(Event::new(
            "market.liveness_missed",
            [
                ("provider", address.to_string()),
                ("missed", l.missed.to_string()),
                ("reputation", l.reputation.to_string()),
                ("last_seen", l.last_seen.to_string()),
                ("unlisted", unlisted.to_string()),
            ],
        ));
        if l.missed == 1 {
            for lease in provider_lease_ids(state, &address)? {
                events.push(Event::new(
                    "market.lease_stalled",
                    [
                        ("lease", lease.to_string()),
                        ("provider", address.to_string()),
                        ("paid_until", l.live_until(&params).to_string()),
                    ],
                ));
            }
        }
    }
    Ok(())
}
