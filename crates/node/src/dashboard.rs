//! The web dashboard a node serves at `/` on its RPC port: the static files of
//! `crates/node/dashboard/`, compiled into the binary, and `/dashboard/config.json`, which tells
//! the page where this node's gateway and analytics endpoint listen.
//!
//! `HIBANA_DASHBOARD_DIR` serves the files from a folder instead, read at each request, so the
//! page can be edited without rebuilding the node.

use std::{
    collections::BTreeMap,
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
};

use hibana_rpc_server::{Page, PageRequest, Site};
use serde::Serialize;

include!(concat!(env!("OUT_DIR"), "/dashboard.rs"));

/// An account the page offers by name (a devnet's demo keys).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NamedAccount {
    pub(crate) name: String,
    pub(crate) address: String,
}

/// What the page learns from `/dashboard/config.json`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct DashboardConfig {
    pub(crate) chain_id: String,
    pub(crate) devnet: bool,
    /// URL of the OpenAI-compatible gateway the playground talks to.
    pub(crate) gateway: Option<String>,
    /// URL of the analytics endpoint (SQL and ask).
    pub(crate) analytics: Option<String>,
    /// The devnet's demo API key (a devnet on loopback only; never a real node's).
    pub(crate) api_key: Option<String>,
    pub(crate) accounts: Vec<NamedAccount>,
}

/// The dashboard as the RPC server serves it.
#[derive(Debug, Default)]
pub(crate) struct Dashboard {
    config: RwLock<DashboardConfig>,
    dir: Option<PathBuf>,
    /// Compiled-in files, gzipped once at their first request.
    gzipped: Mutex<BTreeMap<&'static str, Arc<Vec<u8>>>>,
}

impl Dashboard {
    /// The dashboard with `config`, from the compiled-in files or `HIBANA_DASHBOARD_DIR`.
    pub(crate) fn new(config: DashboardConfig) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            config: RwLock::new(config),
            dir: std::env::var_os("HIBANA_DASHBOARD_DIR").map(PathBuf::from),
            gzipped: Mutex::default(),
        })
    }

    /// Changes what the page is told (e.g. once the analytics endpoint listens).
    pub(crate) fn update(&self, change: impl FnOnce(&mut DashboardConfig)) {
        if let Ok(mut config) = self.config.write() {
            change(&mut config);
        }
    }

    fn read_from_dir(&self, path: &str) -> Option<Vec<u8>> {
        let dir = self.dir.as_ref()?;
        let mut file = dir.clone();
        for part in path.trim_start_matches('/').split('/') {
            // Only plain names: no `..`, no hidden files, nothing outside the folder.
            let plain = !part.is_empty()
                && !part.starts_with('.')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !plain {
                return None;
            }
            file.push(part);
        }
        std::fs::read(file).ok()
    }
}

/// The media type of a file, by its name.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "text/plain; charset=utf-8",
    }
}

/// The gzip of `bytes`.
fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

impl Dashboard {
    /// A compiled-in file, gzipped when the browser takes it and it gains from it.
    fn compiled(&self, name: &'static str, bytes: &'static [u8], accepts_gzip: bool) -> Page {
        let content_type = content_type(name);
        let packed = (accepts_gzip && bytes.len() >= 1024 && content_type != "image/png")
            .then(|| self.gzipped(name, bytes))
            .flatten();
        match packed {
            Some(packed) => Page {
                content_type,
                body: packed.to_vec(),
                gzip: true,
            },
            None => Page {
                content_type,
                body: bytes.to_vec(),
                gzip: false,
            },
        }
    }

    /// The gzip of a compiled-in file, made at its first request.
    fn gzipped(&self, name: &'static str, bytes: &'static [u8]) -> Option<Arc<Vec<u8>>> {
        let mut cache = self.gzipped.lock().ok()?;
        if let Some(packed) = cache.get(name) {
            return Some(packed.clone());
        }
        let packed = Arc::new(gzip(bytes)?);
        cache.insert(name, packed.clone());
        Some(packed)
    }
}

impl Site for Dashboard {
    fn page(&self, request: PageRequest<'_>) -> Option<Page> {
        if request.path == "/dashboard/config.json" {
            let mut config = self.config.read().ok()?.clone();
            // A page reached under another name than this machine's may be a site that
            // rebound its name to 127.0.0.1: it gets no key.
            if !request.local_host {
                config.api_key = None;
            }
            return Some(Page {
                content_type: "application/json",
                body: serde_json::to_vec(&config).ok()?,
                gzip: false,
            });
        }
        let path = if request.path == "/" {
            "/index.html"
        } else {
            request.path
        };
        match &self.dir {
            Some(_) => Some(Page {
                content_type: content_type(path),
                body: self.read_from_dir(path)?,
                gzip: false,
            }),
            None => FILES
                .iter()
                .find(|(name, _)| *name == path)
                .map(|(name, bytes)| self.compiled(name, bytes, request.gzip)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A plain request from this machine.
    fn get(path: &str) -> PageRequest<'_> {
        PageRequest {
            path,
            local_host: true,
            gzip: false,
        }
    }

    #[test]
    fn the_index_and_config_are_served_and_nothing_else_is_invented() {
        let site = Dashboard {
            config: RwLock::new(DashboardConfig {
                chain_id: "c".into(),
                api_key: Some("hib-demo".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let index = site.page(get("/")).unwrap();
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(String::from_utf8(index.body).unwrap().contains("<html"));
        let config: serde_json::Value =
            serde_json::from_slice(&site.page(get("/dashboard/config.json")).unwrap().body)
                .unwrap();
        assert_eq!(config["chain_id"], "c");
        assert_eq!(config["api_key"], "hib-demo");
        assert!(config["gateway"].is_null());
        // Under a name that is not this machine's, the page gets no key.
        let rebound = PageRequest {
            local_host: false,
            ..get("/dashboard/config.json")
        };
        let config: serde_json::Value =
            serde_json::from_slice(&site.page(rebound).unwrap().body).unwrap();
        assert!(config["api_key"].is_null());
        assert!(site.page(get("/no-such-file.js")).is_none());
        // Every compiled-in file is reachable under its own path, plain or gzipped.
        for (name, bytes) in FILES {
            assert_eq!(site.page(get(name)).unwrap().body, *bytes);
            let packed = site
                .page(PageRequest {
                    gzip: true,
                    ..get(name)
                })
                .unwrap();
            if packed.gzip {
                let mut unpacked = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&packed.body[..]),
                    &mut unpacked,
                )
                .unwrap();
                assert_eq!(unpacked, *bytes, "{name}");
                assert!(packed.body.len() < bytes.len(), "{name}");
            }
        }
    }

    #[test]
    fn a_folder_override_serves_plain_names_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.js"), b"ok").unwrap();
        std::fs::write(dir.path().join(".secret"), b"no").unwrap();
        let site = Dashboard {
            dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        assert_eq!(site.page(get("/app.js")).unwrap().body, b"ok");
        assert!(site.page(get("/.secret")).is_none());
        assert!(site.page(get("/../etc/passwd")).is_none());
        assert!(site.page(get("/sub/../app.js")).is_none());
    }
}
