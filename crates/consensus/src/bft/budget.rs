//! Per-peer budgets for transaction gossip: a peer may have a few batches waiting to be
//! checked, and its gossip may fail here only so often per window of blocks; past either, its
//! gossip is dropped before any check, so one flooding peer neither starves the others of the
//! shared queue nor buys unlimited signature and proof checks with invalid transactions that pay
//! nothing. The per-account budget of the mempool bounds costly failures by signer; this one
//! bounds them by the connection they came from, however many accounts it makes up.

use std::{collections::HashMap, hash::Hash};

/// Batches of one peer waiting to be checked at once.
pub(super) const MAX_BATCHES_PER_PEER: usize = 8;
/// Failure weight a peer's gossip may accumulate per window before it is ignored for the rest
/// of the window.
pub(super) const PEER_FAILURES_PER_WINDOW: u32 = 1024;
/// Length of a budget window, in blocks.
pub(super) const PEER_WINDOW_BLOCKS: u64 = 100;
/// Failure weight of a rejected transaction whose checks are costly (a proof); a cheap one
/// weighs 1.
pub(super) const COSTLY_FAILURE_WEIGHT: u32 = 64;
/// Peers tracked at once; beyond, the idle one with the oldest window is forgotten.
const MAX_TRACKED_PEERS: usize = 4096;

/// Why a peer's batch was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// It already has [`MAX_BATCHES_PER_PEER`] batches waiting.
    Queue,
    /// Its gossip failed too often in this window.
    Failures,
}

#[derive(Debug, Clone, Default)]
struct PeerGossip {
    /// Batches queued and not yet checked.
    queued: usize,
    /// Failure weight in the window that starts at `window_start`.
    failures: u32,
    window_start: u64,
}

/// The gossip budgets of every peer, keyed by peer id.
#[derive(Debug)]
pub(super) struct PeerBudgets<P> {
    peers: HashMap<P, PeerGossip>,
}

impl<P: Eq + Hash + Clone> Default for PeerBudgets<P> {
    fn default() -> Self {
        PeerBudgets {
            peers: HashMap::new(),
        }
    }
}

impl<P: Eq + Hash + Clone> PeerBudgets<P> {
    /// Queues one batch of `peer` at `height` if its budget allows, counting it as waiting.
    pub(super) fn admit(&mut self, peer: &P, height: u64) -> Result<(), Refusal> {
        if !self.peers.contains_key(peer) && self.peers.len() >= MAX_TRACKED_PEERS {
            self.forget_one();
        }
        let entry = self.peers.entry(peer.clone()).or_default();
        roll(entry, height);
        if entry.failures >= PEER_FAILURES_PER_WINDOW {
            return Err(Refusal::Failures);
        }
        if entry.queued >= MAX_BATCHES_PER_PEER {
            return Err(Refusal::Queue);
        }
        entry.queued += 1;
        Ok(())
    }

    /// Whether `peer` may still have a transaction checked at `height` (a batch stops being
    /// checked as soon as its peer runs out of budget).
    pub(super) fn allows(&mut self, peer: &P, height: u64) -> bool {
        match self.peers.get_mut(peer) {
            Some(entry) => {
                roll(entry, height);
                entry.failures < PEER_FAILURES_PER_WINDOW
            }
            None => true,
        }
    }

    /// Charges `peer` `weight` for a transaction of its that failed here at `height`.
    pub(super) fn charge(&mut self, peer: &P, height: u64, weight: u32) {
        if let Some(entry) = self.peers.get_mut(peer) {
            roll(entry, height);
            entry.failures = entry.failures.saturating_add(weight);
        }
    }

    /// Marks one batch of `peer` as checked.
    pub(super) fn finished(&mut self, peer: &P) {
        if let Some(entry) = self.peers.get_mut(peer) {
            entry.queued = entry.queued.saturating_sub(1);
        }
    }

    /// Forgets the idle peer whose window started first (or any, if none is idle).
    fn forget_one(&mut self) {
        let oldest = self
            .peers
            .iter()
            .filter(|(_, g)| g.queued == 0)
            .min_by_key(|(_, g)| g.window_start)
            .or_else(|| self.peers.iter().next())
            .map(|(p, _)| p.clone());
        if let Some(p) = oldest {
            self.peers.remove(&p);
        }
    }
}

/// Starts a new window for `entry` if `height` is past its current one.
fn roll(entry: &mut PeerGossip, height: u64) {
    if height >= entry.window_start.saturating_add(PEER_WINDOW_BLOCKS) || entry.window_start == 0 {
        entry.window_start = height.max(1);
        entry.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_waits_for_its_own_batches_not_for_others() {
        let mut b = PeerBudgets::default();
        for _ in 0..MAX_BATCHES_PER_PEER {
            b.admit(&"flooder", 5).unwrap();
        }
        assert_eq!(b.admit(&"flooder", 5), Err(Refusal::Queue));
        assert_eq!(b.admit(&"honest", 5), Ok(()));
        b.finished(&"flooder");
        assert_eq!(b.admit(&"flooder", 5), Ok(()));
    }

    #[test]
    fn failures_silence_a_peer_until_the_window_ends() {
        let mut b = PeerBudgets::default();
        b.admit(&"p", 10).unwrap();
        b.finished(&"p");
        for _ in 0..PEER_FAILURES_PER_WINDOW / COSTLY_FAILURE_WEIGHT {
            assert!(b.allows(&"p", 10));
            b.charge(&"p", 10, COSTLY_FAILURE_WEIGHT);
        }
        assert!(!b.allows(&"p", 10));
        assert_eq!(b.admit(&"p", 50), Err(Refusal::Failures));
        assert!(b.allows(&"q", 50));
        // A new window forgives.
        assert_eq!(b.admit(&"p", 10 + PEER_WINDOW_BLOCKS), Ok(()));
        assert!(b.allows(&"p", 10 + PEER_WINDOW_BLOCKS));
    }

    #[test]
    fn the_table_of_peers_is_bounded() {
        let mut b = PeerBudgets::default();
        for p in 0..MAX_TRACKED_PEERS + 10 {
            b.admit(&p, 1).unwrap();
            b.finished(&p);
        }
        assert_eq!(b.peers.len(), MAX_TRACKED_PEERS);
    }
}
