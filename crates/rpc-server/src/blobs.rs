//! The node's content-addressed blob store, served over HTTP beside the JSON-RPC API:
//! `PUT /blobs` stores the request body under its blake3 hash and answers
//! `{"hash", "size", "stored"}`; `GET /blobs/<hash>` returns the bytes. Blobs are size-limited,
//! deduplicated by hash, and written to a temporary file, synced and renamed before the upload
//! is acknowledged, so a node that restarts loses no blob a transaction could reference.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use http_body_util::BodyExt;
use jsonrpsee::server::{HttpRequest, HttpResponse};

use crate::intercept::{Answer, Intercept, respond};

/// Largest blob the store takes by default (the data network's largest item).
pub const DEFAULT_MAX_BLOB_BYTES: u64 = hibana_types::records::data::MAX_ITEM_BYTES;
/// Most bytes the store holds in all by default (1 GiB).
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 1 << 30;

/// Why a blob was not stored or served.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob is larger than the store takes.
    #[error("the blob is larger than the {0} bytes this node stores")]
    TooLarge(u64),
    /// The blob is empty.
    #[error("an empty blob is not stored")]
    Empty,
    /// The store is full.
    #[error("the blob store is full ({0} bytes)")]
    Full(u64),
    /// The name is not a blake3 hash.
    #[error("`{0}` is not a blob hash (64 hex digits)")]
    BadHash(String),
    /// The disk failed.
    #[error("the blob store failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A directory of blobs named by their blake3 hash.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    max_blob: u64,
    max_total: u64,
    total: AtomicU64,
    /// Numbers each upload's temporary file: two uploads of the same bytes at once must not
    /// share one.
    uploads: AtomicU64,
}

/// What storing a blob did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    /// The blob's blake3 hash (hex).
    pub hash: String,
    /// Its size in bytes.
    pub size: u64,
    /// False when the store already held it.
    pub stored: bool,
}

impl BlobStore {
    /// Opens (creating) the store in `dir`, with the default limits.
    pub fn open(dir: &Path) -> Result<BlobStore, BlobError> {
        BlobStore::with_limits(dir, DEFAULT_MAX_BLOB_BYTES, DEFAULT_MAX_TOTAL_BYTES)
    }

    /// Opens (creating) the store in `dir`, taking blobs up to `max_blob` bytes and at most
    /// `max_total` bytes in all. Leftover temporary files of an interrupted upload are removed.
    pub fn with_limits(dir: &Path, max_blob: u64, max_total: u64) -> Result<BlobStore, BlobError> {
        fs::create_dir_all(dir)?;
        let mut total = 0u64;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            } else {
                total = total.saturating_add(entry.metadata()?.len());
            }
        }
        Ok(BlobStore {
            dir: dir.to_path_buf(),
            max_blob,
            max_total,
            total: AtomicU64::new(total),
            uploads: AtomicU64::new(0),
        })
    }

    /// The largest blob it takes.
    pub fn max_blob(&self) -> u64 {
        self.max_blob
    }

    fn path_of(&self, hash: &str) -> Result<PathBuf, BlobError> {
        let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(BlobError::BadHash(hash.chars().take(80).collect()));
        }
        Ok(self.dir.join(hash.to_ascii_lowercase()))
    }

    /// Stores `bytes` (durably) and returns its hash.
    pub fn put(&self, bytes: &[u8]) -> Result<Stored, BlobError> {
        let size = bytes.len() as u64;
        if size == 0 {
            return Err(BlobError::Empty);
        }
        if size > self.max_blob {
            return Err(BlobError::TooLarge(self.max_blob));
        }
        let hash = blake3::hash(bytes).to_hex().to_string();
        let path = self.path_of(&hash)?;
        if path.exists() {
            return Ok(Stored {
                hash,
                size,
                stored: false,
            });
        }
        if self.total.load(Ordering::Relaxed).saturating_add(size) > self.max_total {
            return Err(BlobError::Full(self.max_total));
        }
        // Two uploads of the same bytes at once both write and rename (the second replaces the
        // first with the same bytes); the total may count it twice, which errs on the full side.
        let upload = self.uploads.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{hash}.{}.{upload}.tmp", std::process::id()));
        {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        // The rename is durable once the directory is synced.
        fs::File::open(&self.dir)?.sync_all()?;
        self.total.fetch_add(size, Ordering::Relaxed);
        Ok(Stored {
            hash,
            size,
            stored: true,
        })
    }

    /// The blob named `hash`, if held.
    pub fn get(&self, hash: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let path = self.path_of(hash)?;
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Serves `PUT /blobs` and `GET /blobs/<hash>` from a [`BlobStore`].
#[derive(Debug, Clone)]
pub(crate) struct Blobs {
    pub(crate) store: Option<Arc<BlobStore>>,
}

fn error(status: u16, message: &str) -> HttpResponse {
    let body = serde_json::json!({ "error": message }).to_string();
    respond(status, "application/json", body.into_bytes())
}

impl Intercept for Blobs {
    fn intercept<B>(&self, req: HttpRequest<B>) -> Result<Answer, HttpRequest<B>>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path().to_string();
        if !(path == "/blobs" || path.starts_with("/blobs/")) {
            return Err(req);
        }
        let Some(store) = self.store.clone() else {
            return Ok(Box::pin(async {
                error(404, "this node keeps no blob store")
            }));
        };
        let method = req.method().clone();
        Ok(Box::pin(async move {
            match (method, path.strip_prefix("/blobs/")) {
                (http::Method::PUT, None) | (http::Method::POST, None) => {
                    let limit = usize::try_from(store.max_blob())
                        .unwrap_or(usize::MAX)
                        .saturating_add(1);
                    match http_body_util::Limited::new(req.into_body(), limit)
                        .collect()
                        .await
                    {
                        Err(_) => error(
                            413,
                            &format!(
                                "the blob is larger than the {} bytes this node stores",
                                store.max_blob()
                            ),
                        ),
                        Ok(collected) => {
                            let bytes = collected.to_bytes();
                            let store = store.clone();
                            match tokio::task::spawn_blocking(move || store.put(&bytes)).await {
                                Ok(Ok(stored)) => respond(
                                    if stored.stored { 201 } else { 200 },
                                    "application/json",
                                    serde_json::to_vec(&stored).unwrap_or_default(),
                                ),
                                Ok(Err(e @ (BlobError::TooLarge(_) | BlobError::Empty))) => {
                                    error(413, &e.to_string())
                                }
                                Ok(Err(e @ BlobError::Full(_))) => error(507, &e.to_string()),
                                Ok(Err(e)) => error(500, &e.to_string()),
                                Err(e) => error(500, &e.to_string()),
                            }
                        }
                    }
                }
                (http::Method::GET, Some(hash)) => match store.get(hash) {
                    Ok(Some(bytes)) => respond(200, "application/octet-stream", bytes),
                    Ok(None) => error(404, &format!("no blob {hash} here")),
                    Err(e @ BlobError::BadHash(_)) => error(400, &e.to_string()),
                    Err(e) => error(500, &e.to_string()),
                },
                _ => error(
                    405,
                    "blobs are stored with PUT /blobs and read with GET /blobs/<hash>",
                ),
            }
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_deduplicated_bounded_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::with_limits(dir.path(), 8, 12).unwrap();
        let first = store.put(b"hello").unwrap();
        assert!(first.stored);
        assert_eq!(first.hash, blake3::hash(b"hello").to_hex().to_string());
        assert!(!store.put(b"hello").unwrap().stored);
        assert!(matches!(
            store.put(b"123456789"),
            Err(BlobError::TooLarge(8))
        ));
        assert!(matches!(store.put(b""), Err(BlobError::Empty)));
        assert!(matches!(store.put(b"12345678"), Err(BlobError::Full(12))));
        assert!(matches!(store.get("../etc"), Err(BlobError::BadHash(_))));
        fs::write(dir.path().join("x.tmp"), b"half").unwrap();
        let reopened = BlobStore::with_limits(dir.path(), 8, 12).unwrap();
        assert_eq!(reopened.get(&first.hash).unwrap().unwrap(), b"hello");
        assert!(!dir.path().join("x.tmp").exists());
        assert!(reopened.get(&"0".repeat(64)).unwrap().is_none());
    }

    #[test]
    fn the_same_blob_stored_at_once_by_many_uploads_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(BlobStore::open(dir.path()).unwrap());
        let bytes = vec![7u8; 32 << 10];
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (store, bytes) = (store.clone(), bytes.clone());
                std::thread::spawn(move || store.put(&bytes).map(|s| s.hash))
            })
            .collect();
        for t in threads {
            let hash = t.join().unwrap().expect("stored");
            assert_eq!(store.get(&hash).unwrap().unwrap(), bytes);
        }
    }
}
