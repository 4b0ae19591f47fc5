//! Admission: a request's bearer token must be an API key of the key file (re-read when the
//! file changes) that is not revoked, and within its key's rate limit over a sliding minute.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant, SystemTime},
};

use axum::http::{HeaderMap, header};
use hibana_types::Hash;
use parking_lot::Mutex;

use crate::{
    keys::{ApiKeyRecord, KeyFile, key_hash},
    openai::ApiError,
};

/// The API keys as last read from the key file.
struct KeyCache {
    loaded_at: Option<SystemTime>,
    by_hash: HashMap<Hash, ApiKeyRecord>,
}

/// Who may use the gateway, and how often.
pub(super) struct Admission {
    keys: KeyFile,
    cache: Mutex<KeyCache>,
    /// Each key's requests of the last minute.
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Admission {
    /// Admission by the keys of `keys`.
    pub(super) fn new(keys: KeyFile) -> Admission {
        Admission {
            keys,
            cache: Mutex::new(KeyCache {
                loaded_at: None,
                by_hash: HashMap::new(),
            }),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticates the request's key and counts it against the key's rate limit.
    pub(super) fn admit(&self, headers: &HeaderMap) -> Result<ApiKeyRecord, ApiError> {
        let key = self.authenticate(headers)?;
        self.rate_limit(&key)?;
        Ok(key)
    }

    /// The request's key, if it is one of the key file's and not revoked.
    pub(super) fn authenticate(&self, headers: &HeaderMap) -> Result<ApiKeyRecord, ApiError> {
        let token = bearer(headers).ok_or_else(ApiError::bad_key)?;
        let mut cache = self.cache.lock();
        let modified = std::fs::metadata(self.keys.path())
            .and_then(|m| m.modified())
            .ok();
        if cache.loaded_at.is_none() || modified != cache.loaded_at {
            match self.keys.load() {
                Ok(keys) => {
                    cache.by_hash = keys.into_iter().map(|k| (k.key_hash, k)).collect();
                    cache.loaded_at = modified;
                }
                Err(e) => tracing::error!(error = %e, "cannot read the API keys"),
            }
        }
        match cache.by_hash.get(&key_hash(token)) {
            Some(k) if !k.revoked => Ok(k.clone()),
            _ => Err(ApiError::bad_key()),
        }
    }

    /// Counts a request against `key`'s rate limit, or refuses it with 429.
    pub(super) fn rate_limit(&self, key: &ApiKeyRecord) -> Result<(), ApiError> {
        let mut windows = self.windows.lock();
        let window = windows.entry(key.name.clone()).or_default();
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            window.pop_front();
        }
        if window.len() >= key.rate_limit_per_minute as usize {
            // The oldest request in the window leaves it first.
            let waited = window
                .front()
                .map_or(0, |t| now.duration_since(*t).as_secs());
            return Err(ApiError::rate_limited(
                key.rate_limit_per_minute,
                60u64.saturating_sub(waited).max(1),
            ));
        }
        window.push_back(now);
        Ok(())
    }

    /// Takes back the latest request counted against `key`'s rate limit, for a request
    /// refused for the gateway's load rather than the key's.
    pub(super) fn refund(&self, key: &ApiKeyRecord) {
        if let Some(window) = self.windows.lock().get_mut(&key.name) {
            window.pop_back();
        }
    }
}

/// The secret of the request's `Authorization: Bearer` header.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 9110).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}
