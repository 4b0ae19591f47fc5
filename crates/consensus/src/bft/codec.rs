//! The encoding of every message the engine sends over the network, keeps in its WAL or
//! exchanges in sync: borsh, through the engine's own borsh support and our types' derives.

use std::{any::TypeId, sync::LazyLock};

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use malachitebft_app_channel::app::types::{codec::Codec, sync::Status};
use prometheus_client::metrics::counter::Counter;

use super::HibanaContext;

/// Messages this process refused to decode (malformed or too large); the engine drops them.
pub(crate) static MALFORMED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Largest message the codec decodes (a block of `max_block_txs` fits comfortably).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// Why a message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a valid encoding.
    #[error("malformed consensus message: {0}")]
    Malformed(#[from] borsh::io::Error),
    /// The message is larger than [`MAX_MESSAGE_BYTES`].
    #[error("consensus message of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

/// Whether `bytes` open with a borsh-encoded peer id that parses. Malachite's borsh decoding of
/// a `PeerId` unwraps the parse (malachitebft-peer 0.5.0), so a sync status that any peer
/// broadcasts with a malformed id would panic the decoder; such a status is refused before it
/// reaches that code. Found by the `consensus` fuzz target.
fn starts_with_valid_peer_id(bytes: &[u8]) -> bool {
    let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
        return false;
    };
    usize::try_from(u32::from_le_bytes(*len))
        .ok()
        .and_then(|len| rest.get(..len))
        .is_some_and(|id| malachitebft_peer::PeerId::from_bytes(id).is_ok())
}

/// Borsh codec for the engine's network, sync and WAL messages.
#[derive(Clone, Copy, Debug, Default)]
pub struct BorshCodec;

impl<T> Codec<T> for BorshCodec
where
    T: BorshSerialize + BorshDeserialize + Send + Sync + 'static,
{
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<T, CodecError> {
        let decoded = if bytes.len() > MAX_MESSAGE_BYTES {
            Err(CodecError::TooLarge(bytes.len()))
        } else if TypeId::of::<T>() == TypeId::of::<Status<HibanaContext>>()
            && !starts_with_valid_peer_id(&bytes)
        {
            Err(CodecError::Malformed(borsh::io::Error::new(
                borsh::io::ErrorKind::InvalidData,
                "the sync status names a malformed peer id",
            )))
        } else {
            borsh::from_slice(&bytes).map_err(CodecError::from)
        };
        if decoded.is_err() {
            MALFORMED.inc();
        }
        decoded
    }

    fn encode(&self, msg: &T) -> Result<Bytes, CodecError> {
        Ok(Bytes::from(borsh::to_vec(msg)?))
    }
}
