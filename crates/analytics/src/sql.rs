//! Read-only SQL over the tables, on Apache DataFusion, with limits.
//!
//! A statement is accepted only if it parses as exactly one query, plans without DDL, DML or
//! other statements, and reads only our tables (and `information_schema`): a table function or
//! a file path in `FROM` is refused, so SQL cannot touch the disk. It runs under a time limit
//! and a memory limit, and may return at most `max_rows` rows.

use std::{ops::ControlFlow, path::Path, sync::Arc, time::Duration};

use arrow::{datatypes::SchemaRef, record_batch::RecordBatch};
use datafusion::{
    catalog::TableProvider,
    common::tree_node::TreeNodeRecursion,
    datasource::{
        MemTable,
        file_format::parquet::ParquetFormat,
        listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl},
    },
    execution::{context::SQLOptions, runtime_env::RuntimeEnvBuilder},
    logical_expr::LogicalPlan,
    prelude::{SessionConfig, SessionContext},
    sql::{
        parser::{DFParser, Statement as DfStatement},
        sqlparser::ast::{Expr, Statement, Visit, Visitor},
    },
};
use futures_util::StreamExt;

use crate::{
    store::{TableStore, parquet_bytes},
    tables::TABLES,
};

/// Limits every query runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Most rows a result may have; a larger result is refused (add `LIMIT` or aggregate).
    pub max_rows: usize,
    /// Longest a query may run.
    pub timeout: Duration,
    /// Most memory a query's operators may hold.
    pub memory_bytes: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_rows: 10_000,
            timeout: Duration::from_secs(10),
            memory_bytes: 512 << 20,
        }
    }
}

/// Why a query was refused or failed, in words that say what to do.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Not a single read-only query.
    #[error("refused: {0}. Only a single SELECT query over the analytics tables is allowed")]
    Refused(String),
    /// The SQL does not parse or plan.
    #[error("invalid query: {0}")]
    Invalid(String),
    /// The query ran past its time limit.
    #[error("the query ran past its time limit of {0:?} and was stopped; narrow it (WHERE, LIMIT)")]
    Timeout(Duration),
    /// The result is larger than the row limit.
    #[error("the result has more than {0} rows, the limit; add LIMIT, or aggregate")]
    TooManyRows(usize),
    /// The query needed more memory than it may use.
    #[error("the query needs more memory than its limit of {0} MiB; narrow it")]
    Memory(usize),
    /// The query failed while running.
    #[error("the query failed: {0}")]
    Failed(String),
    /// The output could not be encoded.
    #[error("cannot encode the result: {0}")]
    Output(String),
}

/// An output format of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// A JSON array of objects.
    Json,
    /// CSV with a header line.
    Csv,
    /// A Parquet file.
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = SqlError;
    fn from_str(s: &str) -> Result<Format, SqlError> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            other => Err(SqlError::Output(format!(
                "unknown format {other:?}: use table, json, csv or parquet"
            ))),
        }
    }
}

impl Format {
    /// The HTTP content type of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Table => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// The rows a query returned.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Their schema.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The rows encoded in `format`.
    pub fn render(&self, format: Format) -> Result<Vec<u8>, SqlError> {
        let out = |e: arrow::error::ArrowError| SqlError::Output(e.to_string());
        let batches: Vec<RecordBatch> = if self.batches.is_empty() {
            vec![RecordBatch::new_empty(self.schema.clone())]
        } else {
            self.batches.clone()
        };
        match format {
            Format::Table => {
                let mut text = arrow::util::pretty::pretty_format_batches(&batches)
                    .map_err(out)?
                    .to_string();
                text.push('\n');
                Ok(text.into_bytes())
            }
            Format::Json => {
                let mut writer = arrow::json::ArrayWriter::new(Vec::new());
                let refs: Vec<&RecordBatch> = batches.iter().collect();
                writer.write_batches(&refs).map_err(out)?;
                writer.finish().map_err(out)?;
                let mut bytes = writer.into_inner();
                if bytes.is_empty() {
                    bytes = b"[]".to_vec();
                }
                bytes.push(b'\n');
                Ok(bytes)
            }
            Format::Csv => {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(Vec::new());
                for batch in &batches {
                    writer.write(batch).map_err(out)?;
                }
                Ok(writer.into_inner())
            }
            Format::Parquet => parquet_bytes(&batches, self.schema.clone())
                .map_err(|e| SqlError::Output(e.to_string())),
        }
    }
}

/// Runs read-only SQL over a [`TableStore`].
#[derive(Debug, Clone)]
pub struct SqlEngine {
    store: TableStore,
    limits: SqlLimits,
}

impl SqlEngine {
    /// An engine over `store`'s tables.
    pub fn new(store: TableStore, limits: SqlLimits) -> SqlEngine {
        SqlEngine { store, limits }
    }

    /// Its limits.
    pub fn limits(&self) -> SqlLimits {
        self.limits
    }

    /// The same engine with other limits.
    pub fn with_limits(&self, limits: SqlLimits) -> SqlEngine {
        SqlEngine {
            store: self.store.clone(),
            limits,
        }
    }

    /// Runs one read-only query under the limits.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, SqlError> {
        if sql.len() > MAX_SQL_BYTES {
            return Err(SqlError::Invalid(format!(
                "the query is {} bytes long; at most {MAX_SQL_BYTES}",
                sql.len()
            )));
        }
        let limits = self.limits;
        let engine = self.clone();
        let sql = sql.to_string();
        // Parsing, planning and execution run on their own threads: a query that keeps them
        // busy must not keep the caller's runtime (the HTTP server, its timers) from answering
        // on time, and their stacks hold the deepest expression a bounded text can spell.
        let run = sql_runtime().spawn(async move {
            check_single_query(&sql)?;
            let ctx = engine.context().await?;
            let options = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            let frame = ctx
                .sql_with_options(&sql, options)
                .await
                .map_err(|e| engine.classify(e))?;
            check_tables(frame.logical_plan())?;
            let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
            let mut stream = frame
                .execute_stream()
                .await
                .map_err(|e| engine.classify(e))?;
            let (mut batches, mut rows) = (Vec::new(), 0usize);
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| engine.classify(e))?;
                rows += batch.num_rows();
                if rows > limits.max_rows {
                    return Err(SqlError::TooManyRows(limits.max_rows));
                }
                batches.push(batch);
            }
            Ok(QueryResult { schema, batches })
        });
        let abort = run.abort_handle();
        match tokio::time::timeout(limits.timeout, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(SqlError::Failed(e.to_string())),
            Err(_) => {
                // Dropping the plan's streams at their next yield stops its work.
                abort.abort();
                Err(SqlError::Timeout(limits.timeout))
            }
        }
    }

    fn classify(&self, e: datafusion::error::DataFusionError) -> SqlError {
        let text = e.to_string();
        if text.contains("Resources exhausted") {
            SqlError::Memory(self.limits.memory_bytes >> 20)
        } else if matches!(
            e.find_root(),
            datafusion::error::DataFusionError::SQL(..)
                | datafusion::error::DataFusionError::Plan(_)
                | datafusion::error::DataFusionError::SchemaError(..)
        ) {
            SqlError::Invalid(text)
        } else if (text.contains("not supported") && text.contains("DDL"))
            || text.contains("DML")
            || text.contains("Statement not supported")
        {
            SqlError::Refused(text)
        } else {
            SqlError::Failed(text)
        }
    }

    /// A DataFusion session with our tables registered, and nothing else.
    async fn context(&self) -> Result<SessionContext, SqlError> {
        let failed = |e: datafusion::error::DataFusionError| SqlError::Failed(e.to_string());
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_bytes, 1.0)
            .build_arc()
            .map_err(failed)?;
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(2);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        for def in TABLES {
            let schema = def.schema();
            let files = self
                .store
                .files(def.name)
                .map_err(|e| SqlError::Failed(e.to_string()))?;
            let provider: Arc<dyn TableProvider> = if files.is_empty() {
                Arc::new(MemTable::try_new(schema, vec![vec![]]).map_err(failed)?)
            } else {
                let urls = files
                    .iter()
                    .map(|f| listing_url(f.as_path()))
                    .collect::<Result<Vec<_>, _>>()?;
                let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                    .with_file_extension(".parquet");
                let config = ListingTableConfig::new_with_multi_paths(urls)
                    .with_listing_options(options)
                    .with_schema(schema);
                Arc::new(ListingTable::try_new(config).map_err(failed)?)
            };
            ctx.register_table(def.name, provider).map_err(failed)?;
        }
        Ok(ctx)
    }
}

/// The longest query text accepted.
pub const MAX_SQL_BYTES: usize = 64 << 10;

/// The stack of each SQL thread. A chain of operators (`1+1+…`) parses into a tree as deep as
/// it is long, and the planner and the tree's drop walk it recursively: the longest text
/// accepted spells about 32,000 levels before [`MAX_EXPR_DEPTH`] refuses it, and dropping that
/// tree overflowed the default 2 MiB stack at 3,000 levels, aborting the process. The memory
/// is reserved, and used only as deep as a query goes.
const SQL_STACK_BYTES: usize = 256 << 20;

/// The runtime SQL plans run on: its own worker threads, apart from any server's.
fn sql_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_stack_size(SQL_STACK_BYTES)
            .thread_name("hibana-sql")
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the SQL runtime: {e}"))
    })
}

fn listing_url(path: &Path) -> Result<ListingTableUrl, SqlError> {
    let absolute = std::path::absolute(path).map_err(|e| SqlError::Failed(e.to_string()))?;
    ListingTableUrl::parse(absolute.to_string_lossy()).map_err(|e| SqlError::Failed(e.to_string()))
}

/// Refuses anything but exactly one query statement.
pub fn check_single_query(sql: &str) -> Result<(), SqlError> {
    let statements = DFParser::parse_sql(sql).map_err(|e| SqlError::Invalid(e.to_string()))?;
    match statements.len() {
        0 => return Err(SqlError::Invalid("the SQL is empty".into())),
        1 => {}
        n => return Err(SqlError::Refused(format!("{n} statements given"))),
    }
    match statements.front() {
        Some(DfStatement::Statement(statement)) if matches!(**statement, Statement::Query(_)) => {
            let mut depth = ExprDepth::default();
            if statement.visit(&mut depth).is_break() {
                return Err(SqlError::Invalid(format!(
                    "expressions nest more than {MAX_EXPR_DEPTH} deep (a chain of operators \
                     counts one level per operator)"
                )));
            }
            Ok(())
        }
        Some(DfStatement::Statement(statement)) => Err(SqlError::Refused(format!(
            "`{}` is not a query",
            first_words(&statement.to_string())
        ))),
        Some(DfStatement::CreateExternalTable(_)) => Err(SqlError::Refused(
            "CREATE EXTERNAL TABLE reads files".into(),
        )),
        Some(DfStatement::CopyTo(_)) => Err(SqlError::Refused("COPY writes files".into())),
        Some(other) => Err(SqlError::Refused(format!(
            "`{}` is not a query",
            first_words(&other.to_string())
        ))),
        None => Err(SqlError::Invalid("the SQL is empty".into())),
    }
}

/// The deepest expression a query may nest. Planning time grows with the square of a chain's
/// length: 500 operators (`1+1+…`) took 0.37 s to plan and 2,000 took 6 s.
pub const MAX_EXPR_DEPTH: usize = 256;

/// Follows the nesting of expressions, stopping past [`MAX_EXPR_DEPTH`].
#[derive(Default)]
struct ExprDepth {
    now: usize,
}

impl Visitor for ExprDepth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now += 1;
        if self.now > MAX_EXPR_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now = self.now.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Refuses a plan that reads anything but our tables and `information_schema`.
fn check_tables(plan: &LogicalPlan) -> Result<(), SqlError> {
    let mut refused = None;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = scan.table_name.table();
            let schema = scan.table_name.schema();
            let ours =
                TABLES.iter().any(|t| t.name == name) && matches!(schema, None | Some("public"));
            if !ours && schema != Some("information_schema") {
                refused = Some(scan.table_name.to_string());
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match refused {
        Some(name) => Err(SqlError::Refused(format!(
            "{name} is not an analytics table (table functions and file paths are not allowed)"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Cursor, derive::Rows, tables::cell};

    fn engine(limits: SqlLimits) -> (tempfile::TempDir, SqlEngine) {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::open(dir.path()).unwrap();
        let mut rows = Rows::new();
        for h in 1..=50u64 {
            rows.entry("transfers").or_default().push(vec![
                cell::u64(h),
                cell::time(1_700_000_000_000 + h * 1000),
                cell::str(format!("tx{h}")),
                cell::u64(0),
                cell::str(if h % 2 == 0 { "alice" } else { "bob" }),
                cell::str("carol"),
                cell::amount(u128::from(h) * 1_000_000_000),
            ]);
        }
        let cursor = Cursor {
            height: 50,
            block_hash: None,
            chain_id: None,
        };
        store.append(1, 50, &rows, &cursor).unwrap();
        (dir, SqlEngine::new(store, limits))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queries_answer_with_amounts_in_base_units_and_hib() {
        let (_dir, engine) = engine(SqlLimits::default());
        let r = engine
            .query("SELECT \"from\", sum(amount) AS total, sum(amount_hib) AS hib FROM transfers GROUP BY \"from\" ORDER BY \"from\"")
            .await
            .unwrap();
        let csv = String::from_utf8(r.render(Format::Csv).unwrap()).unwrap();
        // alice: 2+4+…+50 = 650 HIB; bob: 1+3+…+49 = 625 HIB.
        assert!(csv.contains("alice,650000000000,650.000000000"), "{csv}");
        assert!(csv.contains("bob,625000000000,625.000000000"), "{csv}");
        let empty = engine.query("SELECT * FROM stakes").await.unwrap();
        assert_eq!(empty.rows(), 0);
        let table = String::from_utf8(empty.render(Format::Table).unwrap()).unwrap();
        assert!(table.contains("validator"), "{table}");
        let json = engine
            .query("SELECT height FROM transfers WHERE height < 3 ORDER BY height")
            .await
            .unwrap()
            .render(Format::Json)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v, serde_json::json!([{"height": 1}, {"height": 2}]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn anything_but_a_query_over_our_tables_is_refused() {
        let (dir, engine) = engine(SqlLimits::default());
        let file = dir.path().join("tables/transfers");
        for sql in [
            "CREATE TABLE t AS SELECT 1",
            "DROP TABLE transfers",
            "INSERT INTO transfers SELECT * FROM transfers",
            &format!(
                "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '{}'",
                file.display()
            ),
            &format!("COPY transfers TO '{}/out.parquet'", dir.path().display()),
            "SET datafusion.execution.batch_size = 1",
            "SELECT 1; SELECT 2",
            &format!("SELECT * FROM '{}'", file.display()),
            "SELECT * FROM generate_series(1, 10)",
            "SELECT * FROM (SELECT * FROM range(5)) r",
        ] {
            let err = engine.query(sql).await.unwrap_err();
            assert!(
                matches!(err, SqlError::Refused(_) | SqlError::Invalid(_)),
                "{sql}: {err}"
            );
        }
        let err = engine.query("DELETE FROM transfers").await.unwrap_err();
        assert!(err.to_string().starts_with("refused"), "{err}");
        assert!(!dir.path().join("out.parquet").exists());
        let err = engine.query("SELEC 1").await.unwrap_err();
        assert!(matches!(err, SqlError::Invalid(_)), "{err}");
        // information_schema is readable: it is how tools list the columns.
        let cols = engine
            .query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'transfers'",
            )
            .await
            .unwrap();
        assert_eq!(cols.rows(), 8);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn row_and_time_limits_stop_a_query_with_a_clear_error() {
        let (_dir, engine) = engine(SqlLimits {
            max_rows: 10,
            ..SqlLimits::default()
        });
        let err = engine.query("SELECT * FROM transfers").await.unwrap_err();
        assert!(matches!(err, SqlError::TooManyRows(10)), "{err}");
        assert!(err.to_string().contains("add LIMIT"));
        assert_eq!(
            engine
                .query("SELECT * FROM transfers LIMIT 10")
                .await
                .unwrap()
                .rows(),
            10
        );
        let slow = engine.with_limits(SqlLimits {
            timeout: Duration::from_millis(200),
            ..SqlLimits::default()
        });
        let started = std::time::Instant::now();
        // A cross join of 50^5 rows, aggregated: far more than 200 ms of work.
        let err = slow
            .query("SELECT count(*) FROM transfers a, transfers b, transfers c, transfers d, transfers e WHERE a.amount + b.amount + c.amount + d.amount + e.amount > 0")
            .await
            .unwrap_err();
        assert!(matches!(err, SqlError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_and_deep_queries_are_refused_without_harm() {
        let (_dir, engine) = engine(SqlLimits::default());
        // The longest text accepted, one chain of operators: it aborted the process on a
        // stack overflow before the depth bound; now it is refused at once.
        let chain = format!("SELECT {}1 AS x FROM transfers", "1+".repeat(32_700));
        assert!(chain.len() <= MAX_SQL_BYTES);
        let started = std::time::Instant::now();
        let err = engine.query(&chain).await.unwrap_err();
        assert!(
            matches!(err, SqlError::Invalid(_)) && err.to_string().contains("nest more than"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let long = format!("SELECT 1 AS x {}", " ".repeat(MAX_SQL_BYTES));
        let err = engine.query(&long).await.unwrap_err();
        assert!(err.to_string().contains("bytes long"), "{err}");
        // Just under the bound, a long conjunction still answers.
        let terms = vec!["amount_hib > 0"; MAX_EXPR_DEPTH - 1].join(" AND ");
        let r = engine
            .query(&format!(
                "SELECT count(*) AS n FROM transfers WHERE {terms}"
            ))
            .await
            .unwrap();
        assert_eq!(r.rows(), 1);
    }
}
