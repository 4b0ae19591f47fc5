//! Auto-accept: an order's owner sets a rule (`SetAutoAccept`), and at the end of the rule's
//! height the chain accepts the cheapest bid from a listed provider whose reputation is at
//! least the rule's floor, and if the rule says so with a validator's attestation that meets
//! the order (ties: the earliest bid, then the lower address), so a client need
//! not watch the bids. No eligible bid: the order stays open, and its owner is told.

use hibana_types::records::market::{
    AutoAccept, MAX_ACTIVE_LEASES_PER_PROVIDER, MAX_REPUTATION, OrderStatus, auto_accept_due_key,
    auto_accept_key,
};
use hibana_types::{Event, SetAutoAccept};

use super::liveness::liveness;
use super::messages::open_lease;
use super::state::{bids, edit_set, order, provider, take_set};
use crate::{
    ExecError, MessageHandler, StateError, StateRead, StateWrite, TxContext, TxError, get_typed,
    invalid, put_typed,
};

/// An order's auto-accept rule.
pub fn auto_accept<S: StateRead + ?Sized>(
    state: &S,
    order: u64,
) -> Result<Option<AutoAccept>, StateError> {
    get_typed(state, &auto_accept_key(order))
}

fn rules<S: StateRead + ?Sized>(
    m: &SetAutoAccept,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Option<AutoAccept>, ExecError> {
    let o = order(state, m.order)?
        .ok_or_else(|| invalid(format!("order {} does not exist", m.order)))?;
    if o.owner != ctx.sender {
        return Err(invalid(format!(
            "order {} belongs to {}, not to {}",
            m.order, o.owner, ctx.sender
        )));
    }
    if o.status != OrderStatus::Open {
        return Err(invalid(format!("order {} is not open", m.order)));
    }
    if m.at <= ctx.block.height || m.at >= o.expires_at {
        return Err(invalid(format!(
            "the auto-accept height must be after {} and before the order expires at {}; {} is not",
            ctx.block.height, o.expires_at, m.at
        )));
    }
    Ok(auto_accept(state, m.order)?)
}

impl MessageHandler for SetAutoAccept {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.min_reputation > MAX_REPUTATION {
            return Err(TxError::Invalid(format!(
                "the reputation floor is 0 to {MAX_REPUTATION}, not {}",
                self.min_reputation
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
        rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        if let Some(old) = rules(self, state, ctx)? {
            edit_set(state, auto_accept_due_key(old.at), old.order, false)?;
        }
        let rule = AutoAccept {
            order: self.order,
            min_reputation: self.min_reputation,
            at: self.at,
            attested_only: self.attested_only,
        };
        put_typed(state, auto_accept_key(self.order), &rule);
        edit_set(state, auto_accept_due_key(self.at), self.order, true)?;
        events.push(Event::new(
            "market.auto_accept_set",
            [
                ("order", self.order.to_string()),
                ("min_reputation", self.min_reputation.to_string()),
                ("at", self.at.to_string()),
                ("attested_only", self.attested_only.to_string()),
            ],
        ));
        Ok(())
    }
}

/// Accepts, for each order whose rule falls due at `height`, its cheapest eligible bid.
pub(crate) fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    for id in take_set::<u64, _>(state, auto_accept_due_key(height))? {
        let Some(rule) = auto_accept(state, id)? else {
            continue;
        };
        state.delete(auto_accept_key(id));
        let Some(o) = order(state, id)? else { continue };
        if o.status != OrderStatus::Open || rule.at != height {
            continue;
        }
        let order_bids = bids(state, id)?;
        let mut best: Option<&hibana_types::records::market::Bid> = None;
        for b in &order_bids {
            let eligible = match liveness(state, &b.provider)? {
                Some(l) => l.listed && l.reputation >= rule.min_reputation,
                None => rule.min_reputation == 0,
            } && provider(state, &b.provider)?
                .is_some_and(|p| p.active_leases < MAX_ACTIVE_LEASES_PER_PROVIDER)
                && (!rule.attested_only
                    || super::attest::attested_for(state, &b.provider, &o.resources)?);
            let better = best.is_none_or(|x| {
                (b.price_per_block, b.placed_at, b.provider)
                    < (x.price_per_block, x.placed_at, x.provider)
            });
            if eligible && better {
                best = Some(b);
            }
        }
        match best.cloned() {
            Some(bid) => {
                let lease = open_lease(state, o, &order_bids, &bid, height, events)?;
                events.push(Event::new(
                    "market.auto_accepted",
                    [
                        ("order", id.to_string()),
                        ("lease", lease.to_string()),
                        ("provider", bid.provider.to_string()),
                    ],
                ));
            }
            None => events.push(Event::new(
                "market.auto_accept_found_none",
                [
                    ("order", id.to_string()),
                    ("owner", o.owner.to_string()),
                    ("bids", order_bids.len().to_string()),
                    ("min_reputation", rule.min_reputation.to_string()),
                ],
            )),
        }
    }
    Ok(())
}
