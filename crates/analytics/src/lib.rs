//! Hibana's chain as SQL tables.
//!
//! The [`Indexer`] follows a node over JSON-RPC (backfill by height, then every new head from
//! the WebSocket subscription, polling when it is unavailable), derives rows from blocks,
//! transactions, receipts and events ([`derive`]), and writes them as Parquet files in a
//! [`TableStore`]: one folder per table, lowercase snake case (`blocks`, `transactions`,
//! `transfers`, `stakes`, `accounts`, `labels`…, see [`tables::TABLES`]), amounts in base units
//! and in HIB side by side (`amount`, `amount_hib`). It is resumable (a cursor beside the
//! tables) and idempotent (heights are written once, whatever crashes or restarts).
//!
//! [`SqlEngine`] runs read-only SQL over the tables on Apache DataFusion, with a time limit, a
//! row limit and a memory limit, and refuses anything but a query (no DDL, DML, `COPY`, nor any
//! table that is not one of ours, so no file access from SQL). [`server`] serves it over HTTP
//! (`POST /sql`), as `hibana devnet` and `hibana analytics serve` do.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hibana_analytics::AnalyticsError> {
//! use hibana_analytics::{Format, SqlEngine, SqlLimits, TableStore};
//! let store = TableStore::reader(std::path::Path::new("analytics"));
//! let engine = SqlEngine::new(store, SqlLimits::default());
//! let result = engine.query("SELECT count(*) AS n FROM transfers").await?;
//! println!("{}", String::from_utf8_lossy(&result.render(Format::Table)?));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod derive;
pub mod indexer;
pub mod server;
pub mod sql;
pub mod store;
pub mod tables;

use std::path::Path;

pub use indexer::{Indexer, IndexerConfig, Label, SyncReport};
pub use sql::{Format, QueryResult, SqlEngine, SqlError, SqlLimits};
pub use store::{Cursor, TableStore};

/// What went wrong while indexing or storing tables.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Arrow refused a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Parquet could not be written or read.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A row does not match its table's columns (a bug in row derivation).
    #[error("a row of table {table} has the wrong type in column {column}")]
    Row {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
    /// An amount does not fit the 38 digits of the amount columns.
    #[error("amount {0} does not fit in 38 decimal digits")]
    AmountTooLarge(u128),
    /// No such table.
    #[error("no table named {0}")]
    UnknownTable(String),
    /// A file of the store does not parse.
    #[error("corrupt analytics file {0}")]
    Corrupt(String),
    /// The node failed or could not be reached.
    #[error("node: {0}")]
    Node(#[from] hibana_rpc::ClientError),
    /// The node is on another chain than the tables were indexed from.
    #[error(
        "the tables in {dir} were indexed from another chain ({reason}); delete that folder or index into another one"
    )]
    OtherChain {
        /// The tables' folder.
        dir: String,
        /// What differs.
        reason: String,
    },
    /// The node's answer is incomplete (e.g. a block's transaction is unknown to it).
    #[error("the node's answer is incomplete: {0}")]
    Incomplete(String),
    /// An argument is not valid.
    #[error("{0}")]
    BadInput(String),
    /// A query failed.
    #[error(transparent)]
    Sql(#[from] SqlError),
}

impl AnalyticsError {
    fn io(path: &Path, source: std::io::Error) -> AnalyticsError {
        AnalyticsError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
