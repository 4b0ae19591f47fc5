//! The gateway's ledger: per API key usage, the latest voucher it signed on each client's
//! channel and on its own channel to each provider. Every answer is written here, and synced
//! to disk, before the client sees it, so a restart loses no unredeemed voucher and usage
//! never falls behind what the channels were charged.
//!
//! On disk: `ledger.json`, a snapshot with the sequence number of the last entry it includes,
//! and `ledger.log`, the entries after it, one JSON line each. Loading replays the log's
//! entries above the snapshot's number; a torn last line (a crash mid-write) is dropped, as its
//! answer was never sent.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
};

use hibana_types::{Address, Amount, records::channels::SignedVoucher};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::keys::KeyUsage;

/// The latest voucher signed on one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelVoucher {
    /// Who the channel pays: the gateway's operator for a client channel, a provider for the
    /// gateway's own.
    pub payee: Address,
    /// The voucher.
    pub voucher: SignedVoucher,
}

/// What the ledger holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    /// Sequence number of the last entry applied.
    pub seq: u64,
    /// Usage per key name.
    pub usage: BTreeMap<String, KeyUsage>,
    /// The latest voucher on each client channel (paying the gateway), by channel id.
    pub clients: BTreeMap<u64, ChannelVoucher>,
    /// The latest voucher on each of the gateway's channels to providers, by channel id.
    pub providers: BTreeMap<u64, ChannelVoucher>,
}

/// One answer as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number.
    pub seq: u64,
    /// The key that asked.
    pub key: String,
    /// Tokens read.
    pub prompt_tokens: u32,
    /// Tokens produced.
    pub completion_tokens: u32,
    /// What the answer cost (its receipt's price).
    pub price: Amount,
    /// The client's voucher that pays for it, if it was billed.
    pub client: Option<ChannelVoucher>,
    /// The gateway's voucher that pays the provider, if it was billed.
    pub provider: Option<ChannelVoucher>,
}

impl LedgerState {
    fn apply(&mut self, e: Entry) {
        let u = self.usage.entry(e.key).or_default();
        u.requests += 1;
        u.prompt_tokens += u64::from(e.prompt_tokens);
        u.completion_tokens += u64::from(e.completion_tokens);
        u.spent = u.spent.checked_add(e.price).unwrap_or(u.spent);
        for (book, v) in [
            (&mut self.clients, e.client),
            (&mut self.providers, e.provider),
        ] {
            if let Some(v) = v {
                let newer = book
                    .get(&v.voucher.voucher.channel)
                    .is_none_or(|old| old.voucher.voucher.nonce < v.voucher.voucher.nonce);
                if newer {
                    book.insert(v.voucher.voucher.channel, v);
                }
            }
        }
        self.seq = self.seq.max(e.seq);
    }
}

/// The ledger of a gateway home.
pub struct Ledger {
    snapshot: PathBuf,
    log_path: PathBuf,
    state: Mutex<(LedgerState, File)>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ledger({})", self.snapshot.display())
    }
}

/// Reads the snapshot and the log in `dir`, without opening them for writing.
pub fn read(dir: &Path) -> std::io::Result<LedgerState> {
    let mut state: LedgerState = match std::fs::read(dir.join("ledger.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => LedgerState::default(),
        Err(e) => return Err(e),
    };
    match File::open(dir.join("ledger.log")) {
        Ok(f) => {
            for line in BufReader::new(f).lines() {
                // A line cut short by a crash is the last one; its answer was never sent.
                let Ok(entry) = serde_json::from_str::<Entry>(&line?) else {
                    break;
                };
                if entry.seq > state.seq {
                    state.apply(entry);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(state)
}

fn write_snapshot(path: &Path, state: &LedgerState) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Ledger {
    /// Opens the ledger in `dir`, replaying what an earlier run wrote, and starts from a fresh
    /// snapshot and an empty log (dropping any torn line).
    pub fn open(dir: &Path) -> std::io::Result<Ledger> {
        std::fs::create_dir_all(dir)?;
        let state = read(dir)?;
        let snapshot = dir.join("ledger.json");
        let log_path = dir.join("ledger.log");
        write_snapshot(&snapshot, &state)?;
        let log = File::create(&log_path)?;
        log.sync_all()?;
        Ok(Ledger {
            snapshot,
            log_path,
            state: Mutex::new((state, log)),
        })
    }

    /// Records an answer: builds its entry from the state (`make` gets the state to read the
    /// latest vouchers from and returns the entry, or an error that records nothing), appends
    /// it to the log and syncs it to disk. Only then may the answer be sent.
    pub fn record<E>(
        &self,
        make: impl FnOnce(&LedgerState, u64) -> Result<Entry, E>,
    ) -> Result<Result<Entry, E>, std::io::Error> {
        let mut guard = self.state.lock();
        let seq = guard.0.seq + 1;
        let entry = match make(&guard.0, seq) {
            Ok(e) => e,
            Err(e) => return Ok(Err(e)),
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        guard.1.write_all(&line)?;
        guard.1.sync_data()?;
        guard.0.apply(entry.clone());
        Ok(Ok(entry))
    }

    /// A copy of the state.
    pub fn state(&self) -> LedgerState {
        self.state.lock().0.clone()
    }

    /// Usage of the key named `name`.
    pub fn usage(&self, name: &str) -> KeyUsage {
        self.state
            .lock()
            .0
            .usage
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Folds the log into a new snapshot and empties the log.
    pub fn compact(&self) -> std::io::Result<()> {
        let mut guard = self.state.lock();
        write_snapshot(&self.snapshot, &guard.0)?;
        guard.1 = File::create(&self.log_path)?;
        guard.1.sync_all()
    }
}

/// Appends `bytes` to the file at `path` (tests tear a line with it).
#[cfg(test)]
fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibana_types::{SecretKey, records::channels::Voucher};

    fn voucher(key: &SecretKey, channel: u64, cumulative: u128, nonce: u64) -> ChannelVoucher {
        ChannelVoucher {
            payee: key.public_key().address(),
            voucher: Voucher {
                chain_id: "c".into(),
                channel,
                cumulative: Amount(cumulative),
                nonce,
            }
            .sign(key),
        }
    }

    #[test]
    fn entries_survive_a_restart_and_a_torn_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate();
        {
            let ledger = Ledger::open(dir.path()).unwrap();
            for i in 1..=3u64 {
                let client = voucher(&key, 0, 10 * u128::from(i), i);
                ledger
                    .record(|_, seq| {
                        Ok::<_, ()>(Entry {
                            seq,
                            key: "k".into(),
                            prompt_tokens: 2,
                            completion_tokens: 3,
                            price: Amount(10),
                            client: Some(client),
                            provider: None,
                        })
                    })
                    .unwrap()
                    .unwrap();
            }
            // An error records nothing.
            assert!(
                ledger
                    .record(|_, _| Err::<Entry, _>("no"))
                    .unwrap()
                    .is_err()
            );
        }
        append(&dir.path().join("ledger.log"), b"{\"seq\": 4, \"key\"");
        let state = read(dir.path()).unwrap();
        assert_eq!(state.usage["k"].requests, 3);
        assert_eq!(state.usage["k"].spent, Amount(30));
        assert_eq!(state.clients[&0].voucher.voucher.cumulative, Amount(30));
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(ledger.usage("k").completion_tokens, 9);
        ledger.compact().unwrap();
        drop(ledger);
        assert_eq!(read(dir.path()).unwrap(), state);
    }
}
