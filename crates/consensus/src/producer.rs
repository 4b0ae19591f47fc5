//! The clock at the edge, and one block through the three calls without consensus (for tests
//! and benchmarks of the block pipeline; nodes decide every block through the BFT engine).

use std::time::{SystemTime, UNIX_EPOCH};

use hibana_types::Address;

use crate::{BlockApplication, Chain, ChainError};

/// Milliseconds since the Unix epoch (the producer is the edge where the clock is read).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Produces one block without consensus: propose, validate, commit. Returns the new height.
/// For tests and benchmarks of the pipeline; nodes use [`run_validator`](crate::run_validator).
pub fn produce_block(chain: &Chain, proposer: Address) -> Result<u64, ChainError> {
    let height = chain.height()? + 1;
    let block = chain.propose(height, now_ms(), proposer)?;
    chain.validate(&block)?;
    chain.commit(&block)?;
    Ok(height)
}
