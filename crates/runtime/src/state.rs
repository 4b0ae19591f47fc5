//! The state interface the runtime reads and writes, and a write-buffering overlay.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};

/// A failure of the storage under the runtime; it aborts the block, never a single transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The storage backend failed.
    #[error("state storage failed: {0}")]
    Backend(String),
    /// A stored value did not decode: the state is corrupt.
    #[error("corrupt state value at key {key}: {reason}")]
    Corrupt {
        /// The key, printed as escaped bytes.
        key: String,
        /// The decoding error.
        reason: String,
    },
}

/// Read access to key-value state.
pub trait StateRead {
    /// The value at `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
}

/// Write access to key-value state.
pub trait StateWrite: StateRead {
    /// Sets `key` to `value`.
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    /// Removes `key`.
    fn delete(&mut self, key: Vec<u8>);
}

/// Reads and decodes a borsh value.
pub fn get_typed<T: BorshDeserialize, S: StateRead + ?Sized>(
    state: &S,
    key: &[u8],
) -> Result<Option<T>, StateError> {
    match state.get(key)? {
        None => Ok(None),
        Some(bytes) => borsh::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                key: String::from_utf8_lossy(key).into_owned(),
                reason: e.to_string(),
            }),
    }
}

/// Encodes and writes a borsh value.
pub fn put_typed<T: BorshSerialize, S: StateWrite + ?Sized>(
    state: &mut S,
    key: Vec<u8>,
    value: &T,
) {
    state.put(key, hibana_types::encode(value));
}

/// Buffers writes over a base state; reads see the buffered writes first. Used per block (over
/// the committed state) and per transaction (over the block's overlay, discarded on failure).
#[derive(Debug)]
pub struct StateDelta<'a, S: StateRead + ?Sized> {
    base: &'a S,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a, S: StateRead + ?Sized> StateDelta<'a, S> {
    /// An empty overlay over `base`.
    pub fn new(base: &'a S) -> Self {
        StateDelta {
            base,
            writes: BTreeMap::new(),
        }
    }

    /// The buffered writes: `None` marks a deletion.
    pub fn into_writes(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.writes
    }
}

impl<S: StateRead + ?Sized> StateRead for StateDelta<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.writes.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.base.get(key),
        }
    }
}

impl<S: StateRead + ?Sized> StateWrite for StateDelta<'_, S> {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }
}

/// Applies buffered writes to a state.
pub fn apply_writes<S: StateWrite + ?Sized>(
    state: &mut S,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) {
    for (key, value) in writes {
        match value {
            Some(v) => state.put(key, v),
            None => state.delete(key),
        }
    }
}

/// An in-memory state, for genesis construction and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemState(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl StateRead for MemState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(key).cloned())
    }
}

impl StateWrite for MemState {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.0.insert(key, value);
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.0.remove(&key);
    }
}
