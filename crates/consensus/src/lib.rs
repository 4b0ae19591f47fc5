//! Block production for Hibana: the mempool, the block pipeline and the BFT engine.
//!
//! [`Chain`] owns the [`Mempool`] and drives the store and runtime through the three calls a
//! BFT engine makes ([`BlockApplication`]): `propose(height)` builds a block from the mempool
//! by executing it (so the header carries the resulting state root), `validate(block)` checks
//! links, signatures (batched, in parallel), execution and the root, and `commit(block)`
//! writes it atomically.
//!
//! The engine is Malachite (Informal Systems' Tendermint-family BFT engine): [`run_validator`]
//! starts it with libp2p networking, a write-ahead log and value sync, and answers its requests
//! from the chain ([`bft`] holds Hibana's Malachite context, codec and host). A devnet runs it
//! with one validator, a network with many; the validator set is staking's, voting power is
//! bonded stake. Blocks are decided by their hash; the block travels as a proposal part and is
//! committed together with its commit certificate, which peers that catch up ask for.
//!
//! Transactions enter through [`Chain::submit`] (signature, fee and nonce checks; duplicates,
//! replays and a full pool are refused with a reason) and can be followed with
//! [`Chain::tx_status`] from pending to committed or rejected.
#![forbid(unsafe_code)]

pub mod bft;
mod chain;
mod mempool;
mod metrics;
mod producer;

pub use bft::{BftError, BftSettings, run_validator};
pub use chain::{
    BlockApplication, COSTLY_FAILURES_PER_WINDOW, COSTLY_WINDOW_BLOCKS, Chain, ChainError,
    MAX_BLOCK_BYTES, MAX_FUTURE_BLOCK_MS, PhaseTimes,
};
pub use hibana_types::TxStatus;
pub use mempool::{MAX_NONCE_GAP, Mempool, MempoolError};
pub use metrics::ChainMetrics;
pub use producer::{now_ms, produce_block};
