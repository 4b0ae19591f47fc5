//! The encoding of every message the engine sends over the network, keeps in its WAL or
//! exchanges in sync: borsh, through the engine's own borsh support and our types' derives.

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use malachitebft_app_channel::app::types::codec::Codec;

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

/// Borsh codec for the engine's network, sync and WAL messages.
#[derive(Clone, Copy, Debug, Default)]
pub struct BorshCodec;

impl<T> Codec<T> for BorshCodec
where
    T: BorshSerialize + BorshDeserialize + Send + Sync + 'static,
{
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<T, CodecError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(CodecError::TooLarge(bytes.len()));
        }
        Ok(borsh::from_slice(&bytes)?)
    }

    fn encode(&self, msg: &T) -> Result<Bytes, CodecError> {
        Ok(Bytes::from(borsh::to_vec(msg)?))
    }
}
