//! A small process-wide memo for values derived from their key alone.

/// A small process-wide memo of results that depend only on their key: at most `capacity`
/// entries, the oldest dropped first.
#[derive(Debug)]
pub(crate) struct Memo<K, V> {
    entries: std::sync::Mutex<std::collections::VecDeque<(K, V)>>,
    capacity: usize,
}

impl<K: PartialEq, V: Clone> Memo<K, V> {
    pub(crate) const fn new(capacity: usize) -> Self {
        Memo {
            entries: std::sync::Mutex::new(std::collections::VecDeque::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<(K, V)>> {
        match self.entries.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.lock()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// Remembers `value` unless `key` already has one, and returns the one remembered.
    pub(crate) fn put(&self, key: K, value: V) -> V {
        let mut entries = self.lock();
        if let Some((_, v)) = entries.iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        if entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((key, value.clone()));
        value
    }
}
