//! Channels: unidirectional payment channels. A payer locks a deposit for one payee; the payer
//! (or a key it delegated, such as the key a gateway API key derives) signs vouchers off chain
//! for the cumulative amount owed; the payee redeems the latest voucher whenever it likes and is
//! paid the difference to what it redeemed before, so one redemption pays for any number of
//! requests and replaying a voucher pays nothing. The payer takes the rest back by closing:
//! at once from the expiry height, or before it after a settle delay in which the payee can
//! still redeem (as Filecoin's payment channels do).
//!
//! Messages (in `messages`): `OpenChannel`, `TopUpChannel`, `RedeemVouchers`, `CloseChannel`.
//! Every deposit sits in one bank account, [`CHANNEL_ESCROW`], so the total supply never
//! changes and the escrow's balance is what the open channels still hold. State in [`state`],
//! what the RPC answers in [`query`].

mod messages;
pub mod query;
pub mod state;

pub use hibana_types::records::channels::{
    CHANNEL_ESCROW, Channel, ChannelStatus, SETTLE_DELAY_BLOCKS, SignedVoucher, Voucher,
};
pub use state::{channel, escrow_balance, pair_channel_ids, payer_channel_ids};

use crate::Component;

/// The channels component.
#[derive(Debug, Clone, Copy, Default)]
pub struct Channels;

impl Component for Channels {
    fn name(&self) -> &'static str {
        "channels"
    }
}
