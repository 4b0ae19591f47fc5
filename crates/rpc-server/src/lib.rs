//! The JSON-RPC server of a Hibana node: answers the API that `hibana-rpc` defines (and its
//! typed client calls) from the node's chain, over HTTP and WebSocket on one port, with
//! Prometheus metrics at `GET /metrics`, a health check at `GET /health`, and the node's
//! content-addressed blob store at `PUT /blobs` and `GET /blobs/<hash>` ([`BlobStore`]), and
//! the pages of a [`Site`] (the node's web dashboard) to browsers.
//!
//! Clients depend on `hibana-rpc` alone; only a node links this crate, the chain and the
//! runtime. [`start`] binds the server over a [`Chain`](hibana_consensus::Chain):
//!
//! ```no_run
//! # async fn demo(chain: std::sync::Arc<hibana_consensus::Chain>) -> std::io::Result<()> {
//! let server = hibana_rpc_server::start(chain, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("JSON-RPC at http://{}", server.addr);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod blobs;
mod chain;
mod channels;
mod data;
mod errors;
mod intercept;
mod market;
mod site;
mod subnets;
mod verify;

pub use blobs::{BlobError, BlobStore, DEFAULT_MAX_BLOB_BYTES, DEFAULT_MAX_TOTAL_BYTES, Stored};
pub use chain::{Extras, MAX_REQUEST_BYTES, RunningServer, rpc_module, start, start_with};
pub use site::{Page, PageRequest, Site};
