//! `hibana sql` and `hibana analytics …`: the chain as SQL tables (see `hibana-analytics`), and
//! the indexer and SQL endpoint that `hibana devnet` runs inside itself.

use std::{
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use hibana_analytics::{
    Format, Indexer, IndexerConfig, Label, SqlEngine, SqlLimits, TableStore,
    server::MAX_ROWS_CEILING,
};

use hibana_roles::ask;

use crate::{
    cli::common::resolve_account,
    home::{data_dir, resolve_rpc},
    keys::{self, Keyring},
};

/// Where the tables are: a running endpoint, or a folder read in this process.
#[derive(Debug, Args)]
pub(crate) struct TablesSource {
    /// URL of a running analytics endpoint (`hibana devnet` and `hibana analytics serve` print
    /// it).
    #[arg(long, env = "HIBANA_ANALYTICS")]
    analytics: Option<String>,
    /// Read the tables from this folder, in this process (no endpoint needed).
    #[arg(long, conflicts_with = "analytics")]
    data: Option<PathBuf>,
    /// A devnet home: its running endpoint, else its tables folder (default: the default
    /// devnet's).
    #[arg(long, env = "HIBANA_HOME")]
    home: Option<PathBuf>,
}

/// `hibana sql`.
#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    /// One read-only query, e.g. `SELECT count(*) FROM transfers`.
    sql: String,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv", "parquet"])]
    format: String,
    /// Write the output to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Most rows the result may have.
    #[arg(long)]
    max_rows: Option<usize>,
    #[command(flatten)]
    source: TablesSource,
}

/// `hibana ask`.
#[derive(Debug, Args)]
pub(crate) struct AskArgs {
    /// The question, e.g. "how much HIB did alice send to bob?".
    #[arg(required_unless_present = "eval")]
    question: Option<String>,
    /// Measure instead: ask every question of this JSONL file (`{"q": …, "gold": SQL}`) on each
    /// route, and report execution accuracy (the gold SQL's rows against the answer's) and
    /// latency per route.
    #[arg(long, conflicts_with = "question")]
    eval: Option<PathBuf>,
    /// Routes measured by --eval: `retrieval` (the closest worked example's SQL, no model),
    /// `greedy` (one grammar-constrained decoding), `vote` (--candidates decodings, voted).
    #[arg(long, value_delimiter = ',', default_value = "retrieval,greedy,vote")]
    routes: Vec<String>,
    /// SQL candidates the model writes (1: greedy only; more are sampled), voted on with the
    /// closest worked example adapted to the question.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    candidates: u32,
    /// Worked examples from the library put in the prompt.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=12))]
    examples: u32,
    /// Chat model (from `hibana models list`) that writes the SQL.
    #[arg(long, default_value = "smollm2-135m-instruct")]
    model: String,
    /// Decode freely instead of under the grammar of the live schema (to measure the grammar).
    #[arg(long)]
    no_grammar: bool,
    #[command(flatten)]
    source: TablesSource,
}

/// `hibana analytics …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AnalyticsCommand {
    /// Index a node into SQL tables and serve SQL over HTTP (`POST /sql`), until Ctrl-C.
    Serve(ServeArgs),
    /// An account's full history (every event naming it), as CSV or Parquet.
    Export {
        /// Address (or a devnet key name with --home).
        address: String,
        /// Output format.
        #[arg(long, default_value = "csv", value_parser = ["csv", "parquet", "json", "table"])]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        source: TablesSource,
    },
    /// Name an address in the `labels` table.
    Label {
        /// The address.
        address: String,
        /// Its name.
        name: String,
        #[command(flatten)]
        source: TablesSource,
    },
}

/// `hibana analytics serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Folder of the tables (default: <data dir>/hibana/analytics).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Address of the SQL endpoint (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8089")]
    addr: SocketAddr,
    /// A node home whose RPC URL to use when --rpc is not given.
    #[arg(long, env = "HIBANA_HOME")]
    home: Option<PathBuf>,
    /// Most rows a query may return unless the request asks for fewer or more.
    #[arg(long, default_value_t = 10_000)]
    max_rows: usize,
    /// Longest a query may run, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Origin of a web page allowed to query the endpoint from a browser, e.g. a node's
    /// dashboard `http://127.0.0.1:26657` (repeatable).
    #[arg(long)]
    allow_origin: Vec<String>,
}

/// Runs `hibana sql`.
pub(crate) async fn sql(args: SqlArgs) -> Result<ExitCode> {
    let format: Format = args.format.parse()?;
    let bytes = run_query(&args.source, &args.sql, format, args.max_rows).await?;
    emit(&bytes, args.out.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// Columns whose values the prompt shows (few distinct values that questions name).
const SAMPLED_COLUMNS: &[&str] = &["kind", "role", "task", "source", "region", "message_types"];

/// The live schema of the tables, with sample values and the `labels` names.
async fn live_schema(source: &TablesSource) -> Result<ask::Schema> {
    let rows = |bytes: Vec<u8>| -> Result<Vec<serde_json::Value>> {
        Ok(serde_json::from_slice::<Vec<serde_json::Value>>(&bytes)?)
    };
    let mut tables = Vec::new();
    for def in hibana_analytics::tables::TABLES {
        let mut columns = Vec::new();
        for field in def.schema().fields() {
            let mut samples = Vec::new();
            if SAMPLED_COLUMNS.contains(&field.name().as_str()) {
                let sql = format!(
                    "SELECT DISTINCT {0} AS v FROM {1} WHERE {0} IS NOT NULL ORDER BY v LIMIT 8",
                    field.name(),
                    def.name
                );
                for row in rows(run_query(source, &sql, Format::Json, Some(8)).await?)? {
                    if let Some(v) = row["v"].as_str() {
                        samples.push(v.chars().take(40).collect());
                    }
                }
            }
            columns.push(ask::Column {
                name: field.name().clone(),
                data_type: field.data_type().to_string(),
                samples,
            });
        }
        tables.push(ask::Table {
            name: def.name.to_string(),
            about: def.about.to_string(),
            columns,
        });
    }
    let names = rows(
        run_query(
            source,
            "SELECT DISTINCT name FROM labels ORDER BY name LIMIT 64",
            Format::Json,
            Some(64),
        )
        .await?,
    )?
    .iter()
    .filter_map(|r| r["name"].as_str().map(str::to_string))
    .collect();
    Ok(ask::Schema { tables, names })
}

/// Runs the asker's SQL on the tables, from the blocking thread the model runs on.
struct Runner<'a> {
    source: &'a TablesSource,
    handle: tokio::runtime::Handle,
}

impl ask::SqlRunner for Runner<'_> {
    fn run(&mut self, sql: &str) -> std::result::Result<Vec<serde_json::Value>, String> {
        let bytes = self
            .handle
            .block_on(run_query(
                self.source,
                sql,
                Format::Json,
                Some(ASK_MAX_ROWS),
            ))
            .map_err(|e| format!("{e:#}"))?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }
}

/// Most rows an answer to `ask` shows.
const ASK_MAX_ROWS: usize = 1000;

/// The chat model `ask` writes SQL with (`parallel` sequences at once) and the embedder it
/// retrieves examples with.
fn load_ask_models(
    name: &str,
    parallel: u32,
) -> Result<(hibana_ai::text::TextModel, hibana_ai::embed::Embedder)> {
    let dir = hibana_ai::catalog::models_dir();
    let chat = hibana_ai::catalog::find(&dir, name)
        .with_context(|| format!("the model {name} is not installed"))?;
    let model = hibana_ai::text::TextModel::load(
        &chat,
        hibana_ai::text::LoadOptions {
            parallel,
            ..Default::default()
        },
    )?;
    let minilm = hibana_ai::catalog::find(&dir, "all-minilm-l6-v2")
        .context("the embedding model all-minilm-l6-v2 is not installed")?;
    let embedder = hibana_ai::embed::Embedder::load(&minilm)?;
    Ok((model, embedder))
}

/// The chat model the endpoint's `POST /ask` uses.
const ASK_MODEL: &str = "smollm2-135m-instruct";

/// A question for the asking thread, and where its answer goes.
type AskJob = (
    String,
    tokio::sync::oneshot::Sender<std::result::Result<ask::Answer, String>>,
);

/// `POST /ask` of an analytics endpoint over the tables in `dir`: `{"question": "…"}` answers
/// what `hibana ask --json` prints. One thread owns the models (loaded at the first question)
/// and answers one question at a time, with one more waiting; a question beyond that gets 503
/// rather than a queue that could grow without bound.
fn ask_routes(dir: PathBuf) -> axum::Router {
    use axum::{Json, http::StatusCode, response::IntoResponse};
    let (jobs, queue) = std::sync::mpsc::sync_channel::<AskJob>(1);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(Some(queue)));
    let handle = tokio::runtime::Handle::current();
    let answer = move |Json(body): Json<serde_json::Value>| {
        let jobs = jobs.clone();
        let queue = queue.clone();
        let handle = handle.clone();
        let dir = dir.clone();
        async move {
            let error = |status: StatusCode, message: String| {
                (status, Json(serde_json::json!({ "error": message }))).into_response()
            };
            let question = body["question"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_string();
            if question.is_empty() {
                return error(StatusCode::BAD_REQUEST, "give {\"question\": \"…\"}".into());
            }
            if question.len() > ask::MAX_QUESTION {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("a question is at most {} bytes", ask::MAX_QUESTION),
                );
            }
            // The first question starts the thread that owns the models.
            if let Some(queue) = queue.lock().ok().and_then(|mut q| q.take()) {
                std::thread::spawn(move || asking_thread(queue, dir, handle));
            }
            let (reply, answer) = tokio::sync::oneshot::channel();
            if jobs.try_send((question, reply)).is_err() {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "another question is being answered: ask again in a few seconds".into(),
                );
            }
            match answer.await {
                Ok(Ok(answer)) => Json(answer).into_response(),
                Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
                Err(_) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the asking thread stopped".into(),
                ),
            }
        }
    };
    axum::Router::new().route("/ask", axum::routing::post(answer))
}

/// Owns the models and answers the questions of `queue`, one at a time, until the endpoint
/// is dropped.
fn asking_thread(
    queue: std::sync::mpsc::Receiver<AskJob>,
    dir: PathBuf,
    handle: tokio::runtime::Handle,
) {
    let loaded = load_ask_models(ASK_MODEL, 1).and_then(|(model, embedder)| {
        Ok((model, embedder, ask::library().map_err(|e| anyhow!(e))?))
    });
    let (model, embedder, library) = match loaded {
        Ok(parts) => parts,
        Err(e) => {
            let message = format!("ask cannot load its models: {e:#}");
            for (_, reply) in queue {
                let _ = reply.send(Err(message.clone()));
            }
            return;
        }
    };
    let asker = match ask::Asker::new(&model, &embedder, library) {
        Ok(asker) => asker,
        Err(e) => {
            for (_, reply) in queue {
                let _ = reply.send(Err(format!("ask cannot start: {e}")));
            }
            return;
        }
    };
    let source = TablesSource {
        analytics: None,
        data: Some(dir),
        home: None,
    };
    for (question, reply) in queue {
        let answer = handle
            .block_on(live_schema(&source))
            .map_err(|e| format!("{e:#}"))
            .and_then(|schema| {
                let mut runner = Runner {
                    source: &source,
                    handle: handle.clone(),
                };
                asker
                    .ask(&question, &schema, &mut runner, ask::AskOptions::default())
                    .map_err(|e| e.to_string())
            });
        let _ = reply.send(answer);
    }
}

/// Runs `hibana ask`.
pub(crate) async fn ask(args: AskArgs, json: bool) -> Result<ExitCode> {
    let schema = live_schema(&args.source).await?;
    let eval = match &args.eval {
        Some(path) => Some(read_eval(path)?),
        None => None,
    };
    for route in &args.routes {
        if !["retrieval", "greedy", "vote"].contains(&route.as_str()) {
            bail!("unknown route {route:?}: the routes are retrieval, greedy and vote");
        }
    }
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || -> Result<AskOutcome> {
        let (model, embedder) = load_ask_models(&args.model, args.candidates)?;
        let library = ask::library().map_err(|e| anyhow!(e))?;
        let asker = ask::Asker::new(&model, &embedder, library)?;
        let mut runner = Runner {
            source: &args.source,
            handle,
        };
        let options = ask::AskOptions {
            candidates: args.candidates as usize,
            examples: args.examples as usize,
            grammar: !args.no_grammar,
            ..Default::default()
        };
        match (eval, args.question) {
            (Some(questions), _) => Ok(AskOutcome::Eval(evaluate(
                &asker,
                &schema,
                &mut runner,
                options,
                &questions,
                &args.routes,
            )?)),
            (None, Some(question)) => Ok(AskOutcome::Answer(Box::new(asker.ask(
                &question,
                &schema,
                &mut runner,
                options,
            )?))),
            (None, None) => bail!("give a question, or --eval FILE"),
        }
    })
    .await
    .context("the asking thread failed")??;
    let answer = match outcome {
        AskOutcome::Eval(report) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_eval(&report);
            }
            return Ok(ExitCode::SUCCESS);
        }
        AskOutcome::Answer(answer) => answer,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("{}", answer.text);
        match (&answer.sql, answer.answered) {
            (Some(sql), true) => println!("\nSQL: {sql}"),
            (Some(sql), false) => println!("\nbest SQL (not an answer): {sql}"),
            (None, _) => {}
        }
        if answer.answered && !answer.rows.is_empty() {
            println!();
            print_rows(&answer.rows);
        }
        for a in answer.attempts.iter().filter(|a| a.error.is_some()) {
            println!(
                "\ntried: {}\n  error: {}",
                a.sql,
                a.error.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(if answer.answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

enum AskOutcome {
    Answer(Box<ask::Answer>),
    Eval(Vec<RouteReport>),
}

/// One question of an --eval file.
#[derive(Debug, serde::Deserialize)]
struct EvalQuestion {
    q: String,
    gold: String,
}

fn read_eval(path: &Path) -> Result<Vec<EvalQuestion>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let questions = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<EvalQuestion>(l).with_context(|| {
                format!("{} line {}: not {{\"q\", \"gold\"}}", path.display(), i + 1)
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if questions.is_empty() {
        bail!("{} holds no questions", path.display());
    }
    Ok(questions)
}

/// What one route scored on an --eval file.
#[derive(Debug, serde::Serialize)]
struct RouteReport {
    route: String,
    questions: usize,
    correct: usize,
    accuracy: f64,
    p50_ms: u64,
    p90_ms: u64,
    /// The lowest retrieval similarity among the questions (where the refusal threshold must
    /// stay under).
    lowest_similarity: f32,
    misses: Vec<serde_json::Value>,
}

fn evaluate(
    asker: &ask::Asker<'_>,
    schema: &ask::Schema,
    runner: &mut Runner<'_>,
    options: ask::AskOptions,
    questions: &[EvalQuestion],
    routes: &[String],
) -> Result<Vec<RouteReport>> {
    use ask::SqlRunner;
    let mut golds = Vec::new();
    for q in questions {
        let rows = runner
            .run(&q.gold)
            .map_err(|e| anyhow!("the gold SQL of {:?} fails: {e}", q.q))?;
        golds.push(rows);
    }
    let mut reports = Vec::new();
    for route in routes {
        let candidates = match route.as_str() {
            "retrieval" => 0,
            "greedy" => 1,
            _ => options.candidates.max(2),
        };
        let options = ask::AskOptions {
            candidates,
            ..options
        };
        let mut correct = 0;
        let mut times = Vec::new();
        let mut misses = Vec::new();
        let mut lowest_similarity = f32::MAX;
        for (q, gold) in questions.iter().zip(&golds) {
            let answer = asker.ask(&q.q, schema, runner, options)?;
            // The chain moves on while the model writes: the gold SQL runs again right after
            // the answer, so that "the latest block" is judged at the same height.
            let gold = &runner.run(&q.gold).unwrap_or_else(|_| gold.clone());
            if let Some((_, similarity)) = answer.examples.first() {
                lowest_similarity = lowest_similarity.min(*similarity);
            }
            times.push(answer.elapsed_ms);
            if answer.answered && ask::matches(gold, &answer.rows) {
                correct += 1;
            } else {
                misses.push(serde_json::json!({
                    "q": q.q,
                    "sql": answer.sql,
                    "answered": answer.answered,
                    "rows": answer.rows.iter().take(3).collect::<Vec<_>>(),
                    "gold": gold.iter().take(3).collect::<Vec<_>>(),
                }));
            }
        }
        times.sort_unstable();
        let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
        reports.push(RouteReport {
            route: route.clone(),
            questions: questions.len(),
            correct,
            accuracy: correct as f64 / questions.len() as f64,
            p50_ms: at(50),
            p90_ms: at(90),
            lowest_similarity,
            misses,
        });
    }
    Ok(reports)
}

fn print_eval(reports: &[RouteReport]) {
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>9}",
        "route", "correct", "accuracy", "p50 ms", "p90 ms"
    );
    for r in reports {
        println!(
            "{:<10} {:>4}/{:<4} {:>8.1}% {:>9} {:>9}",
            r.route,
            r.correct,
            r.questions,
            r.accuracy * 100.0,
            r.p50_ms,
            r.p90_ms
        );
    }
    for r in reports {
        for m in &r.misses {
            println!("[{}] missed {}: {}", r.route, m["q"], m["sql"]);
        }
    }
}

/// Rows as an aligned text table (at most 50 shown).
fn print_rows(rows: &[serde_json::Value]) {
    let Some(first) = rows.first().and_then(|r| r.as_object()) else {
        return;
    };
    let headers: Vec<&String> = first.keys().collect();
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let shown: Vec<Vec<String>> = rows
        .iter()
        .take(50)
        .map(|r| headers.iter().map(|h| cell(&r[h.as_str()])).collect())
        .collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            shown
                .iter()
                .map(|r| r[i].chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(headers.iter().map(|h| h.to_string()).collect()));
    for row in shown {
        println!("{}", line(row));
    }
    if rows.len() > 50 {
        println!("… {} rows in all (--json shows every one)", rows.len());
    }
}

/// Runs a `hibana analytics` command.
pub(crate) async fn analytics(
    cmd: AnalyticsCommand,
    rpc: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    match cmd {
        AnalyticsCommand::Serve(args) => serve(args, rpc, json).await,
        AnalyticsCommand::Export {
            address,
            format,
            out,
            source,
        } => {
            let address = resolve_account(&address, source.home.as_deref(), None)?;
            // The address is checked bech32, so it cannot carry SQL; quoted, it matches only a
            // whole attribute value.
            let sql = format!(
                "SELECT height, time, tx_hash, tx_index, event_index, kind, amount, amount_hib, attributes \
                 FROM events WHERE attributes LIKE '%\"{address}\"%' \
                 ORDER BY height, tx_index NULLS FIRST, event_index"
            );
            let bytes = run_query(&source, &sql, format.parse()?, Some(MAX_ROWS_CEILING)).await?;
            emit(&bytes, out.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        AnalyticsCommand::Label {
            address,
            name,
            source,
        } => {
            let address = resolve_account(&address, source.home.as_deref(), None)?.to_string();
            match endpoint(&source)? {
                Endpoint::Http(url, fallback) => {
                    let body = serde_json::json!({"address": address, "name": name});
                    match (post(&url, "/labels", &body).await, fallback) {
                        (Err(e), Some(dir)) if e.is::<Unreached>() => {
                            TableStore::reader(&dir).set_label(&address, &name)?
                        }
                        (result, _) => {
                            result?;
                        }
                    }
                }
                Endpoint::Local(dir) => TableStore::reader(&dir).set_label(&address, &name)?,
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"address": address, "name": name.trim()})
                );
            } else {
                println!("{address} is now labelled {:?}", name.trim());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

enum Endpoint {
    /// A running endpoint; when its URL came from a home, the folder to read if it is down.
    Http(String, Option<PathBuf>),
    Local(PathBuf),
}

/// The file a running analytics endpoint writes its URL to, in its tables folder.
fn url_file(dir: &Path) -> PathBuf {
    dir.join("endpoint.url")
}

/// The tables folder of a devnet home.
pub(crate) fn devnet_tables(home: &Path) -> PathBuf {
    home.join("analytics")
}

fn endpoint(source: &TablesSource) -> Result<Endpoint> {
    if let Some(url) = &source.analytics {
        return Ok(Endpoint::Http(url.trim_end_matches('/').to_string(), None));
    }
    if let Some(dir) = &source.data {
        if !dir.join("tables").is_dir() {
            bail!(
                "{} holds no analytics tables; index a node into it with `hibana analytics serve --data {}`",
                dir.display(),
                dir.display()
            );
        }
        return Ok(Endpoint::Local(dir.clone()));
    }
    let home = source
        .home
        .clone()
        .unwrap_or_else(|| data_dir().join("devnet"));
    let dir = devnet_tables(&home);
    if let Ok(url) = std::fs::read_to_string(url_file(&dir)) {
        return Ok(Endpoint::Http(url.trim().to_string(), Some(dir)));
    }
    if dir.join("tables").is_dir() {
        return Ok(Endpoint::Local(dir));
    }
    Err(anyhow!(
        "no analytics tables for {}: start `hibana devnet`, or pass --analytics URL (of `hibana analytics serve`) or --data DIR",
        home.display()
    ))
}

async fn run_query(
    source: &TablesSource,
    sql: &str,
    format: Format,
    max_rows: Option<usize>,
) -> Result<Vec<u8>> {
    match endpoint(source)? {
        Endpoint::Http(url, fallback) => {
            let format_name = match format {
                Format::Table => "table",
                Format::Json => "json",
                Format::Csv => "csv",
                Format::Parquet => "parquet",
            };
            let body = serde_json::json!({"sql": sql, "format": format_name, "max_rows": max_rows});
            match (post(&url, "/sql", &body).await, fallback) {
                // A devnet that was killed leaves its URL behind; its tables are still here.
                (Err(e), Some(dir)) if e.is::<Unreached>() => {
                    local_query(&dir, sql, format, max_rows).await
                }
                (result, _) => result,
            }
        }
        Endpoint::Local(dir) => local_query(&dir, sql, format, max_rows).await,
    }
}

async fn local_query(
    dir: &Path,
    sql: &str,
    format: Format,
    max_rows: Option<usize>,
) -> Result<Vec<u8>> {
    let mut limits = SqlLimits::default();
    if let Some(n) = max_rows {
        limits.max_rows = n.min(MAX_ROWS_CEILING);
    }
    let engine = SqlEngine::new(TableStore::reader(dir), limits);
    Ok(engine.query(sql).await?.render(format)?)
}

/// The endpoint could not be reached at all (as opposed to answering an error).
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the analytics endpoint at {0}; is it running?")]
struct Unreached(String);

async fn post(url: &str, path: &str, body: &serde_json::Value) -> Result<Vec<u8>> {
    let response = match reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Err(Unreached(url.to_string()).into()),
        Err(e) => return Err(e).context(format!("the analytics endpoint at {url} failed")),
    };
    let status = response.status();
    let bytes = response.bytes().await?.to_vec();
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        bail!("{message}");
    }
    Ok(bytes)
}

fn emit(bytes: &[u8], out: Option<&Path>) -> Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes)?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// Names the indexer starts from: the keys of the default encrypted keyring (names are public,
/// keys are not), plus `extra`.
fn seed_labels(extra: Vec<Label>) -> Vec<Label> {
    let dir = std::env::var_os("HIBANA_KEYRING_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir().join("keyring"));
    let mut labels = extra;
    for store in Keyring::new(dir).list().unwrap_or_default() {
        labels.push(Label {
            address: store.address.to_string(),
            name: store.name,
            source: "keyring".into(),
        });
    }
    labels
}

/// A running indexer and SQL endpoint.
pub(crate) struct RunningAnalytics {
    /// URL of the SQL endpoint.
    pub(crate) url: String,
    stop: tokio::sync::watch::Sender<bool>,
    dir: PathBuf,
}

impl RunningAnalytics {
    /// Stops the indexer and forgets the endpoint's URL file.
    pub(crate) fn stop(&self) {
        let _ = self.stop.send(true);
        let _ = std::fs::remove_file(url_file(&self.dir));
    }
}

/// Starts the indexer of the node at `rpc` into `dir` and the SQL endpoint on `addr`.
pub(crate) async fn start(
    dir: &Path,
    rpc: &str,
    addr: SocketAddr,
    limits: SqlLimits,
    seeds: Vec<Label>,
    allowed_origins: Vec<String>,
) -> Result<RunningAnalytics> {
    let store = TableStore::open(dir)
        .with_context(|| format!("cannot open the analytics tables in {}", dir.display()))?;
    let indexer = Indexer::new(
        rpc,
        store.clone(),
        IndexerConfig::default(),
        seed_labels(seeds),
    )?;
    let options = hibana_analytics::server::ServeOptions {
        allowed_origins,
        routes: Some(ask_routes(dir.to_path_buf())),
    };
    let server = hibana_analytics::server::serve(store, limits, addr, options)
        .await
        .with_context(|| format!("cannot serve analytics on {addr}"))?;
    let url = format!("http://{}", server.addr);
    std::fs::write(url_file(dir), &url)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(indexer.run(stopped));
    Ok(RunningAnalytics {
        url,
        stop,
        dir: dir.to_path_buf(),
    })
}

/// Starts analytics inside `hibana devnet`: tables in the home, its dev keys as labels.
pub(crate) async fn start_for_devnet(
    home: &Path,
    rpc: &str,
    addr: SocketAddr,
    names: Vec<(hibana_types::Address, &str)>,
) -> Result<RunningAnalytics> {
    let mut seeds: Vec<Label> = keys::list_dev_keys(home)
        .into_iter()
        .map(|k| Label {
            address: k.address.to_string(),
            name: k.name,
            source: "keyring".into(),
        })
        .collect();
    if let Ok(key) = crate::home::Home::new(home.to_path_buf()).load_validator_key() {
        seeds.push(Label {
            address: key.public_key().address().to_string(),
            name: "validator".into(),
            source: "node".into(),
        });
    }
    for (address, name) in names {
        seeds.push(Label {
            address: address.to_string(),
            name: name.into(),
            source: "node".into(),
        });
    }
    // The devnet's dashboard (served by the node at `rpc`) may call the endpoint.
    let origins = vec![rpc.to_string(), rpc.replacen("127.0.0.1", "localhost", 1)];
    start(
        &devnet_tables(home),
        rpc,
        addr,
        SqlLimits::default(),
        seeds,
        origins,
    )
    .await
}

async fn serve(args: ServeArgs, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    let rpc = resolve_rpc(rpc, args.home.as_deref());
    let dir = args.data.unwrap_or_else(|| data_dir().join("analytics"));
    let limits = SqlLimits {
        max_rows: args.max_rows,
        timeout: Duration::from_millis(args.timeout_ms),
        ..SqlLimits::default()
    };
    let running = start(&dir, &rpc, args.addr, limits, Vec::new(), args.allow_origin).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({"analytics": running.url, "data": dir, "rpc": rpc})
        );
    } else {
        println!("Indexing {rpc} into {}", dir.display());
        println!("  SQL endpoint: {}/sql", running.url);
        println!(
            "  try: {} sql --analytics {} \"SELECT count(*) FROM blocks\"",
            crate::output::program(),
            running.url
        );
    }
    crate::run::wait_for_ctrl_c().await;
    running.stop();
    Ok(ExitCode::SUCCESS)
}
