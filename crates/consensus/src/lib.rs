//! Block production for Hibana: the mempool, the block pipeline and the producer.
//!
//! [`Chain`] owns the [`Mempool`] and drives the store and runtime through the three calls a
//! BFT engine makes ([`BlockApplication`]): `propose(height)` builds a block from the mempool
//! by executing it (so the header carries the resulting state root), `validate(block)` checks
//! links, signatures (batched, in parallel), execution and the root, and `commit(block)`
//! writes it atomically. With one validator, [`run_single_validator`] calls them once per block
//! time; a multi-validator engine plugs into the same trait.
//!
//! Transactions enter through [`Chain::submit`] (signature, fee and nonce checks; duplicates,
//! replays and a full pool are refused with a reason) and can be followed with
//! [`Chain::tx_status`] from pending to committed or rejected.
#![forbid(unsafe_code)]

mod chain;
mod mempool;
mod metrics;
mod producer;

pub use chain::{BlockApplication, Chain, ChainError, PhaseTimes};
pub use hibana_types::TxStatus;
pub use mempool::{MAX_NONCE_GAP, Mempool, MempoolError};
pub use metrics::ChainMetrics;
pub use producer::{now_ms, produce_block, run_single_validator};
