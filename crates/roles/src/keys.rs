//! Gateway API keys: each maps to an account, has a rate limit, and is stored only as a hash.

use std::path::{Path, PathBuf};

use hibana_types::{Address, Hash};
use serde::{Deserialize, Serialize};

/// Requests per minute allowed by default.
pub const DEFAULT_RATE_LIMIT: u32 = 600;

/// A stored API key (the secret itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Name chosen at creation.
    pub name: String,
    /// The account billed for this key's requests.
    pub account: Address,
    /// blake3 of the secret key.
    pub key_hash: Hash,
    /// A public id to recognise the key by: `hib-` and the first 8 hex digits of its hash
    /// (keys made before this was a hash show the first characters of the secret).
    pub prefix: String,
    /// Creation time (ms since the Unix epoch).
    pub created_ms: u64,
    /// Revoked keys are refused.
    pub revoked: bool,
    /// Requests per minute.
    pub rate_limit_per_minute: u32,
}

/// Usage of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsage {
    /// Requests answered.
    pub requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Sum of the receipts' prices, in base units.
    pub spent: hibana_types::Amount,
}

/// Errors of key management.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// File access failed.
    #[error("cannot access the key file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The file does not parse.
    #[error("key file {0} is corrupt: {1}")]
    Corrupt(PathBuf, String),
    /// A key with that name exists.
    #[error("a key named {0:?} already exists")]
    Exists(String),
    /// No such key.
    #[error("no key named or starting with {0:?}")]
    NotFound(String),
    /// Bad name.
    #[error("key name {0:?} must be 1-64 characters of letters, digits, '-' or '_'")]
    BadName(String),
}

/// The key file of a gateway (`<home>/gateway/keys.json`).
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
}

/// The public id of a key with this hash.
fn key_id(hash: &Hash) -> String {
    format!("hib-{}", &hash.to_string()[..8])
}

/// The key that signs an API key's vouchers: derived from the secret, so the holder of the API
/// key, and only it, can open a channel that honours them (`OpenChannel { signer }`), and the
/// gateway signs them only while it holds that secret in a request.
pub fn voucher_signer(secret: &str) -> hibana_types::SecretKey {
    hibana_types::SecretKey::from_bytes(blake3::derive_key(
        "hibana 2026 gateway api key voucher signer v1",
        secret.trim().as_bytes(),
    ))
}

/// Hash under which a secret key is stored.
pub fn key_hash(secret: &str) -> Hash {
    Hash::digest(secret.as_bytes())
}

impl KeyFile {
    /// The key file at `path`.
    pub fn new(path: PathBuf) -> KeyFile {
        KeyFile { path }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All keys (none if the file does not exist yet).
    pub fn load(&self) -> Result<Vec<ApiKeyRecord>, KeyError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| KeyError::Corrupt(self.path.clone(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(KeyError::Io(self.path.clone(), e)),
        }
    }

    fn save(&self, keys: &[ApiKeyRecord]) -> Result<(), KeyError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| KeyError::Io(dir.to_path_buf(), e))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(keys)
            .map_err(|e| KeyError::Corrupt(self.path.clone(), e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(|e| KeyError::Io(tmp.clone(), e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| KeyError::Io(self.path.clone(), e))
    }

    /// Creates a key for `account`; returns the secret (shown once) and its record.
    pub fn create(
        &self,
        name: &str,
        account: Address,
        rate_limit_per_minute: u32,
    ) -> Result<(String, ApiKeyRecord), KeyError> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(KeyError::BadName(name.to_string()));
        }
        let mut keys = self.load()?;
        if keys.iter().any(|k| k.name == name) {
            return Err(KeyError::Exists(name.to_string()));
        }
        let secret = format!("hib-{}", hex::encode(rand::random::<[u8; 24]>()));
        let record = ApiKeyRecord {
            name: name.to_string(),
            account,
            key_hash: key_hash(&secret),
            prefix: key_id(&key_hash(&secret)),
            created_ms: crate::openai::unix_now().saturating_mul(1000),
            revoked: false,
            rate_limit_per_minute: rate_limit_per_minute.max(1),
        };
        keys.push(record.clone());
        self.save(&keys)?;
        Ok((secret, record))
    }

    /// Revokes the key with this name, id (or the start of it, 8 characters at least) or
    /// secret.
    pub fn revoke(&self, name_or_prefix: &str) -> Result<ApiKeyRecord, KeyError> {
        let mut keys = self.load()?;
        let hash = key_hash(name_or_prefix);
        let key = keys
            .iter_mut()
            .find(|k| {
                k.name == name_or_prefix
                    || k.key_hash == hash
                    || (name_or_prefix.len() >= 8 && k.prefix.starts_with(name_or_prefix))
            })
            .ok_or_else(|| KeyError::NotFound(name_or_prefix.to_string()))?;
        key.revoked = true;
        let revoked = key.clone();
        self.save(&keys)?;
        Ok(revoked)
    }

    /// The file of usage figures the gateway writes beside the keys.
    pub fn usage_path(&self) -> PathBuf {
        self.path.with_file_name("usage.json")
    }

    /// Usage per key name, as last written by the gateway: from its ledger when it bills
    /// through channels, else from its usage file.
    pub fn load_usage(&self) -> std::collections::BTreeMap<String, KeyUsage> {
        if let Some(dir) = self.path.parent()
            && dir.join("ledger.json").exists()
            && let Ok(state) = crate::gateway::ledger::read(dir)
        {
            return state.usage;
        }
        std::fs::read(self.usage_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key file holds no part of a secret, and a key is revoked by its name, its id or its
    /// secret.
    #[test]
    fn keys_are_stored_without_their_secret_and_revoked_by_name_id_or_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = KeyFile::new(dir.path().join("keys.json"));
        let account = hibana_types::SecretKey::generate().public_key().address();
        let mut made = Vec::new();
        for name in ["a", "b", "c"] {
            made.push(file.create(name, account, 60).unwrap());
        }
        let stored = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        for (secret, record) in &made {
            assert!(
                !stored.contains(&secret[4..12]),
                "a part of the secret is stored"
            );
            assert!(record.prefix.starts_with("hib-") && record.prefix.len() == 12);
        }
        assert!(file.revoke("a").unwrap().revoked);
        assert_eq!(file.revoke(&made[1].1.prefix).unwrap().name, "b");
        assert_eq!(file.revoke(&made[2].0).unwrap().name, "c");
        assert!(file.revoke("hib-nothing").is_err());
    }
}
