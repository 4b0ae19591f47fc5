//! The mempool: verified transactions waiting for a block, ordered by fee within per-account
//! nonce order.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap},
};

use hibana_runtime::{CheckedTx, Rejection};
use hibana_types::{Address, Amount, Hash};

/// How far ahead of an account's next nonce a transaction may be queued.
pub const MAX_NONCE_GAP: u64 = 64;

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The transaction itself is invalid.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The same transaction is already pending.
    #[error("transaction {0} is already in the mempool")]
    Duplicate(Hash),
    /// Another transaction with the same nonce is pending and pays at least as much.
    #[error(
        "nonce {nonce} of {account} is already pending with fee {pending_fee}; pay more to replace it"
    )]
    NonceTaken {
        /// The sender.
        account: Address,
        /// The nonce.
        nonce: u64,
        /// The pending transaction's fee.
        pending_fee: Amount,
    },
    /// The nonce is too far ahead of the account's next nonce.
    #[error(
        "nonce {found} of {account} is more than {MAX_NONCE_GAP} ahead of its next nonce {next}"
    )]
    NonceTooFar {
        /// The sender.
        account: Address,
        /// The account's next nonce.
        next: u64,
        /// The transaction's nonce.
        found: u64,
    },
    /// No room left.
    #[error("the mempool is full ({0} transactions); retry later")]
    Full(usize),
}

#[derive(Debug, Clone)]
struct Entry {
    tx: CheckedTx,
    size: usize,
    arrival: u64,
}

/// Pending transactions.
#[derive(Debug)]
pub struct Mempool {
    entries: HashMap<Hash, Entry>,
    by_sender: BTreeMap<Address, BTreeMap<u64, Hash>>,
    bytes: usize,
    max_txs: usize,
    max_bytes: usize,
    arrivals: u64,
}

impl Mempool {
    /// An empty mempool holding at most `max_txs` transactions and `max_bytes` bytes.
    pub fn new(max_txs: usize, max_bytes: usize) -> Mempool {
        Mempool {
            entries: HashMap::new(),
            by_sender: BTreeMap::new(),
            bytes: 0,
            max_txs,
            max_bytes,
            arrivals: 0,
        }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The nonce after `sender`'s pending transactions that follow `committed` without a gap.
    pub fn next_nonce(&self, sender: &Address, committed: u64) -> u64 {
        let mut next = committed;
        if let Some(pending) = self.by_sender.get(sender) {
            while pending.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// True if the transaction is pending.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.entries.contains_key(hash)
    }

    /// A pending transaction, with what its stateless checks verified.
    pub fn get(&self, hash: &Hash) -> Option<&CheckedTx> {
        self.entries.get(hash).map(|e| &e.tx)
    }

    /// Adds a transaction whose stateless checks passed; `next_nonce` is the sender's committed
    /// next nonce. Replaces a pending transaction with the same nonce if it pays a higher fee.
    pub fn insert(&mut self, tx: CheckedTx, next_nonce: u64) -> Result<Hash, MempoolError> {
        let hash = tx.hash();
        if self.entries.contains_key(&hash) {
            return Err(MempoolError::Duplicate(hash));
        }
        let sender = tx.sender();
        let nonce = tx.tx().tx.nonce;
        if nonce < next_nonce {
            return Err(Rejection::WrongNonce {
                account: sender,
                expected: next_nonce,
                found: nonce,
                hint: " (already used: a replay or a duplicate)",
            }
            .into());
        }
        if nonce > next_nonce.saturating_add(MAX_NONCE_GAP) {
            return Err(MempoolError::NonceTooFar {
                account: sender,
                next: next_nonce,
                found: nonce,
            });
        }
        let replaced = self
            .by_sender
            .get(&sender)
            .and_then(|q| q.get(&nonce))
            .copied();
        if let Some(old) = replaced
            && let Some(entry) = self.entries.get(&old)
            && entry.tx.tx().tx.fee >= tx.tx().tx.fee
        {
            return Err(MempoolError::NonceTaken {
                account: sender,
                nonce,
                pending_fee: entry.tx.tx().tx.fee,
            });
        }
        let size = tx.size();
        if replaced.is_none()
            && (self.entries.len() >= self.max_txs || self.bytes + size > self.max_bytes)
        {
            return Err(MempoolError::Full(self.entries.len()));
        }
        if let Some(old) = replaced {
            self.remove(&old);
        }
        self.arrivals += 1;
        self.bytes += size;
        self.by_sender
            .entry(sender)
            .or_default()
            .insert(nonce, hash);
        self.entries.insert(
            hash,
            Entry {
                tx,
                size,
                arrival: self.arrivals,
            },
        );
        Ok(hash)
    }

    /// Removes a transaction.
    pub fn remove(&mut self, hash: &Hash) -> Option<CheckedTx> {
        let entry = self.entries.remove(hash)?;
        self.bytes -= entry.size;
        let sender = entry.tx.sender();
        if let Some(queue) = self.by_sender.get_mut(&sender) {
            queue.remove(&entry.tx.tx().tx.nonce);
            if queue.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
        Some(entry.tx)
    }

    /// Picks up to `max` transactions of at most `max_bytes` encoded bytes for a block: each
    /// account's transactions in nonce order starting at its next nonce, accounts interleaved by
    /// highest fee first (earliest arrival on ties).
    /// `next_nonce` gives an account's committed next nonce.
    pub fn select(
        &self,
        max: usize,
        max_bytes: usize,
        mut next_nonce: impl FnMut(&Address) -> u64,
    ) -> Vec<CheckedTx> {
        let mut heap = BinaryHeap::new();
        let mut cursors: HashMap<Address, u64> = HashMap::new();
        for (sender, queue) in &self.by_sender {
            let next = next_nonce(sender);
            if let Some(hash) = queue.get(&next) {
                let entry = &self.entries[hash];
                heap.push((entry.tx.tx().tx.fee, Reverse(entry.arrival), *sender, *hash));
                cursors.insert(*sender, next);
            }
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while out.len() < max {
            let Some((_, _, sender, hash)) = heap.pop() else {
                break;
            };
            let entry = &self.entries[&hash];
            if bytes + entry.size > max_bytes {
                // The sender's later nonces cannot come before this one: skip the sender.
                continue;
            }
            bytes += entry.size;
            out.push(entry.tx.clone());
            let cursor = cursors.entry(sender).or_default();
            *cursor += 1;
            if let Some(next_hash) = self.by_sender.get(&sender).and_then(|q| q.get(cursor)) {
                let entry = &self.entries[next_hash];
                heap.push((
                    entry.tx.tx().tx.fee,
                    Reverse(entry.arrival),
                    sender,
                    *next_hash,
                ));
            }
        }
        out
    }

    /// Accounts with pending transactions none of which can go next: their next nonce
    /// (`next_nonce`) has not arrived.
    pub fn stalled(&self, mut next_nonce: impl FnMut(&Address) -> u64) -> usize {
        self.by_sender
            .iter()
            .filter(|(sender, queue)| !queue.contains_key(&next_nonce(sender)))
            .count()
    }

    /// Drops every transaction whose nonce is below its account's committed next nonce (they
    /// were included or can never be). Returns the hashes dropped that were not included.
    pub fn prune(&mut self, mut next_nonce: impl FnMut(&Address) -> u64) -> Vec<Hash> {
        let mut stale = Vec::new();
        for (sender, queue) in &self.by_sender {
            let next = next_nonce(sender);
            stale.extend(queue.range(..next).map(|(_, h)| *h));
        }
        for h in &stale {
            self.remove(h);
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use hibana_runtime::Params;
    use hibana_types::{Message, SecretKey, Transaction, Transfer};

    use super::*;

    fn tx(key: &SecretKey, nonce: u64, fee: u128) -> CheckedTx {
        let signed = Transaction {
            chain_id: "t".into(),
            signer: key.public_key(),
            nonce,
            fee: Amount(fee),
            messages: vec![Message::Transfer(Transfer {
                to: Address([1; 20]),
                amount: Amount(1),
            })],
        }
        .sign(key);
        hibana_runtime::check_stateless(&signed, "t", &Params::default()).unwrap()
    }

    #[test]
    fn orders_by_fee_across_accounts_and_by_nonce_within() {
        let (a, b) = (SecretKey::generate(), SecretKey::generate());
        let mut pool = Mempool::new(100, 1 << 20);
        pool.insert(tx(&a, 1, 900), 0).unwrap();
        pool.insert(tx(&a, 0, 10), 0).unwrap();
        pool.insert(tx(&b, 0, 50), 0).unwrap();
        let picked = pool.select(10, usize::MAX, |_| 0);
        let order: Vec<(Address, u64)> = picked
            .iter()
            .map(|t| (t.sender(), t.tx().tx.nonce))
            .collect();
        let (aa, ba) = (a.public_key().address(), b.public_key().address());
        assert_eq!(order, vec![(ba, 0), (aa, 0), (aa, 1)]);
        assert_eq!(pool.select(2, usize::MAX, |_| 0).len(), 2);
    }

    #[test]
    fn rejects_duplicates_replays_gaps_and_overflow() {
        let a = SecretKey::generate();
        let mut pool = Mempool::new(2, 1 << 20);
        let t = tx(&a, 3, 10);
        pool.insert(t.clone(), 3).unwrap();
        assert!(matches!(pool.insert(t, 3), Err(MempoolError::Duplicate(_))));
        assert!(matches!(
            pool.insert(tx(&a, 2, 10), 3),
            Err(MempoolError::Rejected(Rejection::WrongNonce { .. }))
        ));
        assert!(matches!(
            pool.insert(tx(&a, 3, 9), 3),
            Err(MempoolError::NonceTaken { .. })
        ));
        assert!(matches!(
            pool.insert(tx(&a, 3 + MAX_NONCE_GAP + 1, 10), 3),
            Err(MempoolError::NonceTooFar { .. })
        ));
        pool.insert(tx(&a, 3, 11), 3).unwrap();
        assert_eq!(pool.len(), 1);
        pool.insert(tx(&a, 4, 10), 3).unwrap();
        assert!(matches!(
            pool.insert(tx(&a, 5, 10), 3),
            Err(MempoolError::Full(2))
        ));
        assert_eq!(pool.prune(|_| 4).len(), 1);
        assert_eq!(pool.len(), 1);
    }
}
