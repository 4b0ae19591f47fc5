//! Usage per API key: requests, tokens and spend, counted from every checked receipt and saved
//! beside the key file when it changed.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
};

use hibana_types::InferenceReceipt;
use parking_lot::Mutex;

use crate::keys::{ApiKeyRecord, KeyFile, KeyUsage};

/// Each key's usage, by key name.
pub(super) struct UsageBook {
    path: PathBuf,
    by_key: Mutex<BTreeMap<String, KeyUsage>>,
    /// Changed since last saved.
    dirty: AtomicBool,
}

impl UsageBook {
    /// The usage saved beside `keys`.
    pub(super) fn load(keys: &KeyFile) -> UsageBook {
        UsageBook {
            path: keys.usage_path(),
            by_key: Mutex::new(keys.load_usage()),
            dirty: AtomicBool::new(false),
        }
    }

    /// The usage of the key named `name`.
    pub(super) fn of(&self, name: &str) -> KeyUsage {
        self.by_key.lock().get(name).cloned().unwrap_or_default()
    }

    /// Counts an answer to `key` with its checked `receipt`.
    pub(super) fn record(&self, key: &ApiKeyRecord, receipt: &InferenceReceipt) {
        let mut usage = self.by_key.lock();
        let u = usage.entry(key.name.clone()).or_default();
        u.requests += 1;
        u.prompt_tokens += u64::from(receipt.body.prompt_tokens);
        u.completion_tokens += u64::from(receipt.body.completion_tokens);
        u.spent = u.spent.checked_add(receipt.body.price).unwrap_or(u.spent);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes the usage to its file if it changed, atomically (write then rename).
    pub(super) fn save(&self) {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let snapshot = self.by_key.lock().clone();
        let tmp = self.path.with_extension("json.tmp");
        if let Ok(bytes) = serde_json::to_vec_pretty(&snapshot)
            && std::fs::write(&tmp, bytes).is_ok()
        {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }
}
