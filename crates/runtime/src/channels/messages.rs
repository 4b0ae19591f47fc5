//! Channel messages: `OpenChannel`, `TopUpChannel`, `RedeemVouchers`, `CloseChannel`.
//!
//! Each message's stateful rules live in one function that reads what the message needs and
//! returns it; `check_stateful` calls it and discards the result, `execute` calls it again on
//! the same state and writes, so the two can never disagree.

use std::collections::BTreeSet;

use hibana_types::records::MODULE_ACCOUNTS;
use hibana_types::records::channels::{
    Channel, ChannelStatus, MAX_CHANNEL_BLOCKS, MAX_OPEN_CHANNELS_PER_PAIR,
    MAX_OPEN_CHANNELS_PER_PAYER, MAX_VOUCHER_CHAIN_ID_BYTES, MAX_VOUCHERS_PER_REDEEM,
    MIN_CHANNEL_DEPOSIT, SETTLE_DELAY_BLOCKS,
};
use hibana_types::{Amount, CloseChannel, Event, OpenChannel, RedeemVouchers, TopUpChannel};

use super::state::*;
use crate::{ExecError, MessageHandler, StateRead, StateWrite, TxContext, TxError, bank, invalid};

fn bad(msg: impl Into<String>) -> TxError {
    TxError::Invalid(msg.into())
}

/// The channel `id`, which must exist and be open.
fn open_channel<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Channel, ExecError> {
    let c = channel(state, id)?.ok_or_else(|| invalid(format!("channel {id} does not exist")))?;
    if c.status != ChannelStatus::Open {
        return Err(invalid(format!("channel {id} is closed")));
    }
    Ok(c)
}

/// Checks an expiry height against the current one.
fn check_expiry(expires_at: u64, height: u64) -> Result<(), ExecError> {
    let latest = height.saturating_add(MAX_CHANNEL_BLOCKS);
    if expires_at <= height || expires_at > latest {
        return Err(invalid(format!(
            "expiry height {expires_at} must be after the current height {height} and at most {latest}"
        )));
    }
    Ok(())
}

fn open_rules<S: StateRead + ?Sized>(
    m: &OpenChannel,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(), ExecError> {
    if m.payee == ctx.sender {
        return Err(invalid("a channel cannot pay its own payer"));
    }
    check_expiry(m.expires_at, ctx.block.height)?;
    let of_payer = payer_channel_ids(state, &ctx.sender)?;
    if of_payer.len() >= MAX_OPEN_CHANNELS_PER_PAYER {
        return Err(invalid(format!(
            "{} has {} open channels, the most allowed: close one first",
            ctx.sender,
            of_payer.len()
        )));
    }
    let of_pair = pair_channel_ids(state, &ctx.sender, &m.payee)?;
    if of_pair.len() >= MAX_OPEN_CHANNELS_PER_PAIR {
        return Err(invalid(format!(
            "{} has {} open channels to {}, the most allowed: top one up instead",
            ctx.sender,
            of_pair.len(),
            m.payee
        )));
    }
    bank::require_balance(state, &ctx.sender, m.deposit)
}

impl MessageHandler for OpenChannel {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.deposit < MIN_CHANNEL_DEPOSIT {
            return Err(bad(format!(
                "deposit {} is below the minimum channel deposit {MIN_CHANNEL_DEPOSIT}",
                self.deposit
            )));
        }
        if MODULE_ACCOUNTS.contains(&self.payee) {
            return Err(bad(format!(
                "{} is a module account: nobody could redeem from it",
                self.payee
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
        open_rules(self, state, ctx)
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        open_rules(self, state, ctx)?;
        lock(state, &ctx.sender, self.deposit)?;
        let c = Channel {
            id: next_channel_id(state)?,
            payer: ctx.sender,
            payee: self.payee,
            signer: self.signer.unwrap_or(ctx.signer),
            deposit: self.deposit,
            redeemed: Amount::ZERO,
            nonce: 0,
            opened_at: ctx.block.height,
            expires_at: self.expires_at,
            settling_until: None,
            status: ChannelStatus::Open,
            closed_at: None,
        };
        put_channel(state, &c);
        list_open(state, &c, true)?;
        events.push(Event::new(
            "channels.opened",
            [
                ("channel", c.id.to_string()),
                ("payer", c.payer.to_string()),
                ("payee", c.payee.to_string()),
                ("signer", c.signer.to_string()),
                ("deposit", c.deposit.0.to_string()),
                ("expires_at", c.expires_at.to_string()),
            ],
        ));
        Ok(())
    }
}

fn top_up_rules<S: StateRead + ?Sized>(
    m: &TopUpChannel,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Channel, ExecError> {
    let mut c = open_channel(state, m.channel)?;
    if c.payer != ctx.sender {
        return Err(invalid(format!(
            "only the payer {} tops up channel {}",
            c.payer, c.id
        )));
    }
    if let Some(until) = c.settling_until {
        return Err(invalid(format!(
            "channel {} is closing (its payee may redeem until height {until}): open a new one",
            c.id
        )));
    }
    if let Some(expires_at) = m.expires_at {
        check_expiry(expires_at, ctx.block.height)?;
        if expires_at < c.expires_at {
            return Err(invalid(format!(
                "expiry height {expires_at} is before the channel's expiry {}: it only moves later",
                c.expires_at
            )));
        }
        c.expires_at = expires_at;
    }
    bank::require_balance(state, &ctx.sender, m.amount)?;
    c.deposit = c
        .deposit
        .checked_add(m.amount)
        .ok_or(TxError::Overflow("channel deposit"))?;
    Ok(c)
}

impl MessageHandler for TopUpChannel {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.amount.0 == 0 && self.expires_at.is_none() {
            return Err(bad("a top-up adds tokens, moves the expiry, or both"));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        top_up_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let c = top_up_rules(self, state, ctx)?;
        lock(state, &ctx.sender, self.amount)?;
        put_channel(state, &c);
        events.push(Event::new(
            "channels.topped_up",
            [
                ("channel", c.id.to_string()),
                ("amount", self.amount.0.to_string()),
                ("deposit", c.deposit.0.to_string()),
                ("expires_at", c.expires_at.to_string()),
            ],
        ));
        Ok(())
    }
}

/// Each voucher's channel as it will be after redeeming, with what it pays.
fn redeem_rules<S: StateRead + ?Sized>(
    m: &RedeemVouchers,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Vec<(Channel, Amount)>, ExecError> {
    let height = ctx.block.height;
    let mut out = Vec::with_capacity(m.vouchers.len());
    for v in &m.vouchers {
        let voucher = &v.voucher;
        if voucher.chain_id != ctx.block.chain_id {
            return Err(invalid(format!(
                "a voucher for channel {} is for chain {:?}, this is {:?}",
                voucher.channel, voucher.chain_id, ctx.block.chain_id
            )));
        }
        let mut c = open_channel(state, voucher.channel)?;
        if c.payee != ctx.sender {
            return Err(invalid(format!(
                "channel {} pays {}, not {}: only its payee redeems",
                c.id, c.payee, ctx.sender
            )));
        }
        if let Some(until) = c.settling_until
            && height > until
        {
            return Err(invalid(format!(
                "channel {} stopped taking vouchers at height {until} (its payer is closing it)",
                c.id
            )));
        }
        if v.signer != c.signer {
            return Err(invalid(format!(
                "a voucher for channel {} is signed by {}, the channel honours {}",
                c.id, v.signer, c.signer
            )));
        }
        if voucher.nonce <= c.nonce {
            return Err(invalid(format!(
                "a voucher for channel {} has nonce {}, the channel already redeemed nonce {}",
                c.id, voucher.nonce, c.nonce
            )));
        }
        if voucher.cumulative <= c.redeemed {
            return Err(invalid(format!(
                "a voucher for channel {} promises {} in all, the channel has paid {} already: only a higher amount pays",
                c.id, voucher.cumulative, c.redeemed
            )));
        }
        if voucher.cumulative > c.deposit {
            return Err(invalid(format!(
                "a voucher for channel {} promises {}, more than its deposit {}",
                c.id, voucher.cumulative, c.deposit
            )));
        }
        let pays = Amount(voucher.cumulative.0 - c.redeemed.0);
        c.redeemed = voucher.cumulative;
        c.nonce = voucher.nonce;
        out.push((c, pays));
    }
    Ok(out)
}

impl MessageHandler for RedeemVouchers {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        let n = self.vouchers.len();
        if n == 0 || n > MAX_VOUCHERS_PER_REDEEM {
            return Err(bad(format!(
                "a redemption carries 1 to {MAX_VOUCHERS_PER_REDEEM} vouchers, got {n}"
            )));
        }
        let channels: BTreeSet<u64> = self.vouchers.iter().map(|v| v.voucher.channel).collect();
        if channels.len() != n {
            return Err(bad(
                "two vouchers for one channel: redeem only the latest, it pays for all before it",
            ));
        }
        for v in &self.vouchers {
            if v.voucher.chain_id.len() > MAX_VOUCHER_CHAIN_ID_BYTES {
                return Err(bad(format!(
                    "a voucher's chain id is longer than {MAX_VOUCHER_CHAIN_ID_BYTES} bytes"
                )));
            }
            v.verify().map_err(|e| {
                bad(format!(
                    "the voucher for channel {} has a bad signature: {e}",
                    v.voucher.channel
                ))
            })?;
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        redeem_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        for (c, pays) in redeem_rules(self, state, ctx)? {
            release(state, &ctx.sender, pays)?;
            put_channel(state, &c);
            events.push(Event::new(
                "channels.redeemed",
                [
                    ("channel", c.id.to_string()),
                    ("payee", c.payee.to_string()),
                    ("amount", pays.0.to_string()),
                    ("redeemed", c.redeemed.0.to_string()),
                    ("nonce", c.nonce.to_string()),
                ],
            ));
        }
        Ok(())
    }
}

/// What closing does now.
enum Closing {
    /// The rest returns to the payer and the channel closes.
    Now(Channel),
    /// The payee keeps redeeming until this height; the payer closes after it.
    Settle(Channel, u64),
}

fn close_rules<S: StateRead + ?Sized>(
    m: &CloseChannel,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Closing, ExecError> {
    let c = open_channel(state, m.channel)?;
    let height = ctx.block.height;
    if ctx.sender == c.payee {
        return Ok(Closing::Now(c));
    }
    if ctx.sender != c.payer {
        return Err(invalid(format!(
            "only the payer {} or the payee {} closes channel {}",
            c.payer, c.payee, c.id
        )));
    }
    if height >= c.expires_at {
        return Ok(Closing::Now(c));
    }
    match c.settling_until {
        Some(until) if height > until => Ok(Closing::Now(c)),
        Some(until) => Err(invalid(format!(
            "channel {} is closing: its payee may redeem until height {until}; close it again after",
            c.id
        ))),
        None => {
            let until = height
                .checked_add(SETTLE_DELAY_BLOCKS)
                .ok_or(TxError::Overflow("settle height"))?;
            Ok(Closing::Settle(c, until))
        }
    }
}

impl MessageHandler for CloseChannel {
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
        close_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        match close_rules(self, state, ctx)? {
            Closing::Now(mut c) => {
                let refund = c.remaining();
                release(state, &c.payer, refund)?;
                c.status = ChannelStatus::Closed;
                c.closed_at = Some(ctx.block.height);
                put_channel(state, &c);
                list_open(state, &c, false)?;
                events.push(Event::new(
                    "channels.closed",
                    [
                        ("channel", c.id.to_string()),
                        ("payer", c.payer.to_string()),
                        ("refund", refund.0.to_string()),
                        ("redeemed", c.redeemed.0.to_string()),
                    ],
                ));
            }
            Closing::Settle(mut c, until) => {
                c.settling_until = Some(until);
                put_channel(state, &c);
                events.push(Event::new(
                    "channels.settling",
                    [
                        ("channel", c.id.to_string()),
                        ("redeemable_until", until.to_string()),
                    ],
                ));
            }
        }
        Ok(())
    }
}
