//! Channel queries, as the RPC answers.

use hibana_types::Address;
use hibana_types::records::channels::Channel;

use super::state::{channel, pair_channel_ids, payer_channel_ids};
use crate::{StateError, StateRead};

/// The open channels `payer` funds, by id; with a `payee`, only those paying it.
pub fn open_channels<S: StateRead + ?Sized>(
    state: &S,
    payer: &Address,
    payee: Option<&Address>,
) -> Result<Vec<Channel>, StateError> {
    let ids = match payee {
        Some(payee) => pair_channel_ids(state, payer, payee)?,
        None => payer_channel_ids(state, payer)?,
    };
    let mut out = Vec::new();
    for id in ids {
        if let Some(c) = channel(state, id)? {
            out.push(c);
        }
    }
    Ok(out)
}
