//! Attestations (after Akash's auditors): a bonded, unjailed validator audits a provider and
//! records the attributes it found (`AttestProvider`). The latest attestation of each
//! validator is kept with the provider, and an order's auto-accept rule may take only
//! providers whose attested attributes meet the order.

use hibana_types::records::market::{Attestation, Resources, attestations_key};
use hibana_types::{Address, AttestProvider, Event};

use super::messages::{check_offer, mismatch};
use super::state::provider;
use crate::{
    ExecError, MessageHandler, StateError, StateRead, StateWrite, TxContext, TxError, get_typed,
    invalid, put_typed, staking,
};

/// A provider's attestations, one per validator (the latest), by attester.
pub fn attestations<S: StateRead + ?Sized>(
    state: &S,
    provider: &Address,
) -> Result<Vec<Attestation>, StateError> {
    Ok(get_typed(state, &attestations_key(provider))?.unwrap_or_default())
}

/// Whether a validator that is still bonded and unjailed attested attributes of `provider`
/// that meet `resources`.
pub(crate) fn attested_for<S: StateRead + ?Sized>(
    state: &S,
    provider: &Address,
    resources: &Resources,
) -> Result<bool, StateError> {
    for a in attestations(state, provider)? {
        let trusted = staking::validator(state, &a.attester)?.is_some_and(|v| !v.jailed);
        if trusted && mismatch(&a.attributes, resources).is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn rules<S: StateRead + ?Sized>(
    m: &AttestProvider,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(), ExecError> {
    let trusted = staking::validator(state, &ctx.sender)?.is_some_and(|v| !v.jailed);
    if !trusted {
        return Err(invalid(format!(
            "{} is not a bonded, unjailed validator: only validators attest providers",
            ctx.sender
        )));
    }
    if provider(state, &m.provider)?.is_none() {
        return Err(invalid(format!(
            "{} is not a registered provider",
            m.provider
        )));
    }
    Ok(())
}

impl MessageHandler for AttestProvider {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        // Any price and endpoint pass: only the attributes are attested.
        check_offer(&self.attributes, hibana_types::Amount(1), "http://attested")
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        rules(self, state, ctx)
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        rules(self, state, ctx)?;
        let mut all = attestations(state, &self.provider)?;
        all.retain(|a| a.attester != ctx.sender);
        all.push(Attestation {
            attester: ctx.sender,
            attributes: self.attributes.clone(),
            height: ctx.block.height,
        });
        all.sort_by_key(|a| a.attester);
        put_typed(state, attestations_key(&self.provider), &all);
        events.push(Event::new(
            "market.provider_attested",
            [
                ("provider", self.provider.to_string()),
                ("attester", ctx.sender.to_string()),
                ("cores", self.attributes.cores.to_string()),
                ("memory_mib", self.attributes.memory_mib.to_string()),
                ("region", self.attributes.region.clone()),
            ],
        ));
        Ok(())
    }
}
