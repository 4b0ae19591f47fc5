//! The single-validator block producer: one block per tick through the BFT-shaped interface.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hibana_types::Address;
use tokio::sync::watch;

use crate::{BlockApplication, Chain, ChainError};

/// Milliseconds since the Unix epoch (the producer is the edge where the clock is read).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Produces one block: propose, validate, commit. Returns the new height.
pub fn produce_block(chain: &Chain, proposer: Address) -> Result<u64, ChainError> {
    let height = chain.height()? + 1;
    let block = chain.propose(height, now_ms(), proposer)?;
    chain.validate(&block)?;
    chain.commit(&block)?;
    Ok(height)
}

/// Produces a block every `block_time` until `shutdown` turns true. A failure to produce is
/// logged and retried at the next tick; a storage failure stops the producer.
pub async fn run_single_validator(
    chain: Arc<Chain>,
    proposer: Address,
    block_time: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ChainError> {
    let mut ticker = tokio::time::interval(block_time);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return Ok(()),
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        let chain = chain.clone();
        let result = tokio::task::spawn_blocking(move || produce_block(&chain, proposer)).await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(ChainError::Store(e))) => {
                tracing::error!(error = %e, "storage failed; stopping block production");
                return Err(ChainError::Store(e));
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "could not produce a block"),
            Err(e) => tracing::error!(error = %e, "block production task failed"),
        }
    }
}
