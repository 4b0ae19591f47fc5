//! The web dashboard a node serves at `/` on its RPC port: the static files of
//! `crates/node/dashboard/`, compiled into the binary, and `/dashboard/config.json`, which tells
//! the page where this node's gateway and analytics endpoint listen.
//!
//! `HIBANA_DASHBOARD_DIR` serves the files from a folder instead, read at each request, so the
//! page can be edited without rebuilding the node.

use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
};

use hibana_rpc_server::{Page, Site};
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
}

impl Dashboard {
    /// The dashboard with `config`, from the compiled-in files or `HIBANA_DASHBOARD_DIR`.
    pub(crate) fn new(config: DashboardConfig) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            config: RwLock::new(config),
            dir: std::env::var_os("HIBANA_DASHBOARD_DIR").map(PathBuf::from),
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

impl Site for Dashboard {
    fn page(&self, path: &str) -> Option<Page> {
        if path == "/dashboard/config.json" {
            let config = self.config.read().ok()?.clone();
            return Some(Page {
                content_type: "application/json",
                body: serde_json::to_vec(&config).ok()?,
            });
        }
        let path = if path == "/" { "/index.html" } else { path };
        let body = match &self.dir {
            Some(_) => self.read_from_dir(path)?,
            None => FILES
                .iter()
                .find(|(name, _)| *name == path)
                .map(|(_, bytes)| bytes.to_vec())?,
        };
        Some(Page {
            content_type: content_type(path),
            body,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_index_and_config_are_served_and_nothing_else_is_invented() {
        let site = Dashboard {
            config: RwLock::new(DashboardConfig {
                chain_id: "c".into(),
                ..Default::default()
            }),
            dir: None,
        };
        let index = site.page("/").unwrap();
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(String::from_utf8(index.body).unwrap().contains("<html"));
        let config: serde_json::Value =
            serde_json::from_slice(&site.page("/dashboard/config.json").unwrap().body).unwrap();
        assert_eq!(config["chain_id"], "c");
        assert!(config["gateway"].is_null());
        assert!(site.page("/no-such-file.js").is_none());
        // Every compiled-in file is reachable under its own path.
        for (name, bytes) in FILES {
            assert_eq!(site.page(name).unwrap().body, *bytes);
        }
    }

    #[test]
    fn a_folder_override_serves_plain_names_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.js"), b"ok").unwrap();
        std::fs::write(dir.path().join(".secret"), b"no").unwrap();
        let site = Dashboard {
            config: RwLock::default(),
            dir: Some(dir.path().to_path_buf()),
        };
        assert_eq!(site.page("/app.js").unwrap().body, b"ok");
        assert!(site.page("/.secret").is_none());
        assert!(site.page("/../etc/passwd").is_none());
        assert!(site.page("/sub/../app.js").is_none());
    }
}
