//! Batch inference jobs: the client of a lease submits a batch on chain (`SubmitBatch`), then
//! uploads its input here (`PUT /v1/batches/{id}/input`). The provider checks the batch is its
//! own and the file is the one the batch names (same input root and line count), answers each
//! line through the same handler as its HTTP endpoint (so a line gets exactly the answer and
//! receipt a live request would), saves the results and commits their root (`CommitBatch`).
//! Progress is at `GET /v1/batches/{id}`, the results (JSON lines of
//! [`LineResult`](crate::batch::LineResult)) at `GET /v1/batches/{id}/results`.
//!
//! A provider restarted before its commit answers the batch again from its saved input.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use axum::{
    Json,
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use hibana_types::{CommitBatch, Message, records::market::BatchStatus};
use serde::{Deserialize, Serialize};

use super::{
    RECEIPT_HEADER,
    state::{AppState, Provider},
};
use crate::{
    batch::{self, BatchRequest, LineResult},
    openai::ApiError,
};

/// Largest batch input upload.
pub const MAX_BATCH_UPLOAD: usize = hibana_types::records::market::MAX_BATCH_BYTES as usize;

/// Largest answer a line keeps (a longer one could not be challenged).
const MAX_LINE_RESPONSE: usize = hibana_types::records::verify::MAX_CHALLENGE_RESPONSE_BYTES;

/// Where a batch stands on this provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProgress {
    /// Lines answered so far (with a receipt or refused).
    pub done: u32,
    /// Lines in the batch.
    pub lines: u32,
    /// `running`, `done` (results committed) or `failed`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// The batches a provider answers: their files and progress.
#[derive(Debug)]
pub struct Batches {
    dir: PathBuf,
    progress: parking_lot::Mutex<BTreeMap<u64, BatchProgress>>,
    /// Line requests served at once: each reads and parses a batch's whole files.
    serving: tokio::sync::Semaphore,
}

/// Line requests ([`line`]) a provider serves at once; more are told to come back.
const LINES_AT_ONCE: usize = 2;

impl Batches {
    /// Batches kept under `dir`.
    pub fn open(dir: PathBuf) -> Batches {
        Batches {
            dir,
            progress: parking_lot::Mutex::new(BTreeMap::new()),
            serving: tokio::sync::Semaphore::new(LINES_AT_ONCE),
        }
    }

    fn input_path(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string()).join("input.jsonl")
    }

    fn results_path(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string()).join("results.jsonl")
    }

    /// A batch's progress here.
    pub fn progress(&self, id: u64) -> Option<BatchProgress> {
        self.progress.lock().get(&id).cloned()
    }

    fn set(&self, id: u64, f: impl FnOnce(&mut BatchProgress)) {
        if let Some(p) = self.progress.lock().get_mut(&id) {
            f(p);
        }
    }
}

fn chain_unavailable() -> ApiError {
    ApiError::server(
        StatusCode::SERVICE_UNAVAILABLE,
        "this provider is not connected to a chain (start it with --chain URL)",
    )
}

/// `PUT /v1/batches/{id}/input`: takes a batch's input and starts answering it.
pub(super) async fn upload_input(
    State(p): State<AppState>,
    UrlPath(id): UrlPath<u64>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let chain = p.jobs.chain().ok_or_else(chain_unavailable)?;
    let b = chain
        .market_batch(id)
        .await
        .map_err(|e| ApiError::server(StatusCode::BAD_GATEWAY, format!("chain: {e}")))?
        .ok_or_else(|| ApiError::invalid(None, format!("batch {id} does not exist on chain")))?
        .batch;
    let me = p.key.public_key().address();
    if b.provider != me {
        return Err(ApiError::invalid(
            None,
            format!("batch {id} is for provider {}, not for {me}", b.provider),
        ));
    }
    match b.status {
        BatchStatus::Running => {}
        BatchStatus::Expired => {
            return Err(ApiError::invalid(
                None,
                format!("batch {id} expired with its lease's term"),
            ));
        }
        _ => {
            return Err(ApiError::invalid(
                None,
                format!("batch {id}'s results are committed already"),
            ));
        }
    }
    let text = String::from_utf8(Vec::from(body))
        .map_err(|_| ApiError::invalid(None, "the batch file is not UTF-8 JSON lines"))?;
    let (requests, text) = tokio::task::spawn_blocking(move || {
        batch::parse_input(&text).map(|requests| (requests, text))
    })
    .await
    .map_err(|e| ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::invalid(None, format!("batch {id}: {e}")))?;
    let root = batch::input_root(&requests);
    if root != b.input_root || requests.len() != b.lines as usize {
        return Err(ApiError::invalid(
            None,
            format!(
                "this file ({} lines, root {root}) is not batch {id}'s input ({} lines, root {})",
                requests.len(),
                b.lines,
                b.input_root
            ),
        ));
    }
    super::jobs::write_atomic(&p.batches.input_path(id), text.as_bytes())
        .map_err(|e| ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let lines = requests.len();
    start(p.clone(), id, requests);
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"batch": id, "lines": lines, "input": root})),
    ))
}

/// `GET /v1/batches/{id}`: a batch's progress on this provider.
pub(super) async fn status(
    State(p): State<AppState>,
    UrlPath(id): UrlPath<u64>,
) -> Result<Json<BatchProgress>, ApiError> {
    p.batches
        .progress(id)
        .map(Json)
        .ok_or_else(|| ApiError::invalid(None, format!("batch {id} has no input here yet")))
}

/// Refuses to serve a batch's results before they are committed on chain: a client that took
/// them and closed the lease first would otherwise get the answers and keep the pay.
async fn committed(p: &Provider, id: u64) -> Result<(), ApiError> {
    let chain = p.jobs.chain().ok_or_else(chain_unavailable)?;
    let b = chain
        .market_batch(id)
        .await
        .map_err(|e| ApiError::server(StatusCode::BAD_GATEWAY, format!("chain: {e}")))?
        .ok_or_else(|| ApiError::invalid(None, format!("batch {id} does not exist on chain")))?
        .batch;
    if b.results_root.is_none() {
        return Err(ApiError::invalid(
            None,
            format!("batch {id}'s results are served once they are committed on chain"),
        ));
    }
    Ok(())
}

/// `GET /v1/batches/{id}/results`: the saved results, JSON lines, once committed on chain.
pub(super) async fn results(
    State(p): State<AppState>,
    UrlPath(id): UrlPath<u64>,
) -> Result<Response, ApiError> {
    committed(&p, id).await?;
    let bytes = tokio::fs::read(p.batches.results_path(id))
        .await
        .map_err(|_| ApiError::invalid(None, format!("batch {id} has no results here yet")))?;
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/jsonl")],
        bytes,
    )
        .into_response())
}

/// `GET /v1/batches/{id}/lines/{line}`: one line with its request, result and proofs, for a
/// validator's spot-check (a request is as public as its answer, which `results` serves).
pub(super) async fn line(
    State(p): State<AppState>,
    UrlPath((id, line)): UrlPath<(u64, u32)>,
) -> Result<Json<batch::ProvenLine>, ApiError> {
    committed(&p, id).await?;
    let _turn = p.batches.serving.try_acquire().map_err(|_| {
        ApiError::server(
            StatusCode::SERVICE_UNAVAILABLE,
            "this provider is serving other batch lines: try again shortly",
        )
    })?;
    let proven = p
        .batches
        .proven_line(id, line)
        .await
        .map_err(|e| ApiError::invalid(None, e))?;
    Ok(Json(proven))
}

impl Batches {
    /// Lines `lines` of batch `id` with their proofs, from the files kept here (read and parsed
    /// once).
    async fn proven_lines(
        &self,
        id: u64,
        lines: Vec<u32>,
    ) -> Result<Vec<Result<batch::ProvenLine, String>>, String> {
        let none = || format!("batch {id} has no results here yet");
        let input = tokio::fs::read_to_string(self.input_path(id))
            .await
            .map_err(|_| none())?;
        let results = tokio::fs::read_to_string(self.results_path(id))
            .await
            .map_err(|_| none())?;
        tokio::task::spawn_blocking(move || {
            let requests = batch::parse_input(&input)?;
            let results = batch::parse_results(&results)?;
            Ok(lines
                .into_iter()
                .map(|line| batch::proven_line(&requests, &results, line))
                .collect())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e: String| format!("batch {id}: {e}"))
    }

    /// Line `line` of batch `id` with its proofs, from the files kept here.
    async fn proven_line(&self, id: u64, line: u32) -> Result<batch::ProvenLine, String> {
        self.proven_lines(id, vec![line])
            .await?
            .pop()
            .ok_or_else(|| format!("batch {id} has no line {line}"))?
    }
}

/// Posts on chain every line of this provider's batches that someone requested
/// (`RequestBatchLine`) and it has not posted yet, soonest deadline first, up to a full
/// transaction of posts at a time; returns how many it posted. A line it does not hold is left
/// (and costs it the batch at the request's deadline).
pub async fn post_owed_lines(p: &Provider) -> Result<usize, String> {
    let chain = p.jobs.chain().ok_or("not connected to a chain")?;
    let me = p.key.public_key().address();
    let owed = chain
        .market_owed_lines(me)
        .await
        .map_err(|e| e.to_string())?;
    // Each batch's files are read once; the posts go out soonest deadline first.
    let mut by_batch: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let due: BTreeMap<(u64, u32), u64> = owed.iter().map(|r| ((r.batch, r.line), r.due)).collect();
    for r in &owed {
        by_batch.entry(r.batch).or_default().push(r.line);
    }
    let mut posts: Vec<(u64, hibana_types::PostBatchLine)> = Vec::new();
    for (id, lines) in by_batch {
        match p.batches.proven_lines(id, lines.clone()).await {
            Ok(proven) => {
                for (line, proven) in lines.into_iter().zip(proven) {
                    match proven.and_then(|l| l.to_post(id)) {
                        Ok(post) => posts.push((due.get(&(id, line)).copied().unwrap_or(0), post)),
                        Err(e) => tracing::warn!(
                            batch = id,
                            line,
                            "a requested line cannot be posted: {e}"
                        ),
                    }
                }
            }
            Err(e) => tracing::warn!(batch = id, "requested lines cannot be posted: {e}"),
        }
    }
    posts.sort_by_key(|(due, post)| (*due, post.batch, post.line));
    let mut posted = 0;
    for chunk in chunks_for_tx(posts.into_iter().map(|(_, post)| post).collect()) {
        let messages: Vec<Message> = chunk.iter().cloned().map(Message::PostBatchLine).collect();
        match p.send_tx(&chain, messages).await {
            Ok(receipt) if receipt.is_success() => {
                tracing::info!(lines = chunk.len(), "posted requested lines on chain");
                posted += chunk.len();
            }
            // A line whose request ended meanwhile fails its whole transaction (a line posted
            // by someone else does not): ask the chain again what is owed.
            failed => {
                tracing::warn!(
                    ?failed,
                    "posting requested lines failed: asking again what is owed"
                );
                break;
            }
        }
    }
    Ok(posted)
}

/// Posts a transaction carries at most: as many lines as a provider is expected to post a
/// block.
const LINES_PER_TX: usize = hibana_types::records::market::LINES_PER_POST_TX as usize;

/// Bytes of posts a transaction carries at most (under the chain's 512 KiB transaction limit).
const POST_BYTES_PER_TX: usize = 400 * 1024;

/// Splits posts into transactions of at most [`LINES_PER_TX`] lines and about
/// [`POST_BYTES_PER_TX`] bytes, in order.
fn chunks_for_tx(posts: Vec<hibana_types::PostBatchLine>) -> Vec<Vec<hibana_types::PostBatchLine>> {
    let size = |p: &hibana_types::PostBatchLine| {
        p.request.len() + p.response.len() + 64 * (p.input_proof.len() + p.result_proof.len()) + 512
    };
    let mut out: Vec<Vec<hibana_types::PostBatchLine>> = Vec::new();
    let mut bytes = 0;
    for post in posts {
        let n = size(&post);
        match out.last_mut() {
            Some(last) if last.len() < LINES_PER_TX && bytes + n <= POST_BYTES_PER_TX => {
                bytes += n;
                last.push(post);
            }
            _ => {
                bytes = n;
                out.push(vec![post]);
            }
        }
    }
    out
}

/// Posts requested lines ([`post_owed_lines`]) every `every`, and again at once after a pass
/// that posted some, until the process ends.
pub async fn post_owed_lines_forever(p: Arc<Provider>, every: std::time::Duration) {
    loop {
        match post_owed_lines(&p).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::debug!("requested lines: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Starts answering batch `id` unless it is running already.
fn start(p: Arc<Provider>, id: u64, requests: Vec<BatchRequest>) {
    {
        let mut all = p.batches.progress.lock();
        if all.get(&id).is_some_and(|g| g.state == "running") {
            return;
        }
        all.insert(
            id,
            BatchProgress {
                done: 0,
                lines: requests.len() as u32,
                state: "running".into(),
                error: None,
            },
        );
    }
    tokio::spawn(async move {
        let outcome = run(&p, id, &requests).await;
        p.batches.set(id, |g| match outcome {
            Ok(()) => g.state = "done".into(),
            Err(e) => {
                tracing::warn!(batch = id, "batch failed: {e}");
                g.state = "failed".into();
                g.error = Some(e);
            }
        });
    });
}

/// Answers every batch whose input this provider holds and whose results are not committed.
pub fn resume_all(p: &Arc<Provider>) {
    let Ok(entries) = std::fs::read_dir(&p.batches.dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(p.batches.input_path(id)) else {
            continue;
        };
        match batch::parse_input(&text) {
            Ok(requests) => start(p.clone(), id, requests),
            Err(e) => tracing::warn!(batch = id, "its saved input does not load: {e}"),
        }
    }
}

/// Answers one line as its endpoint would, trying again (twice) after a failure its checks do
/// not explain. A line its checks refuse (an invalid request, a model it does not serve: what
/// a judge re-checks) gets a signed refusal, a receipt over the request and the error body for
/// no tokens and no price, so that the refusal can be challenged like an answer; a line that
/// failed otherwise three times (an engine error, an answer too long for a challenge) stays
/// refused unsigned, and unpaid.
async fn answer(p: &Arc<Provider>, line: u32, r: &BatchRequest) -> LineResult {
    let mut tries = 0;
    loop {
        tries += 1;
        let result = answer_once(p, line, r).await;
        let oversized = result.status == 500 && result.response.contains(OVERSIZED);
        if result.receipt.is_some() || result.refusal.is_some() || oversized || tries == 3 {
            return result;
        }
        tracing::info!(line, status = result.status, "a batch line failed: again");
    }
}

/// What a line whose answer is too long for a challenge says.
const OVERSIZED: &str = "bytes, more than a challenge carries";

/// The model to sign a refusal of request `r` for, if the provider's own admission checks
/// (what a judge of a refusal re-runs) refuse it on a model it serves: its body does not parse
/// (no model: zero), or the endpoint's checks (and for embeddings the token count) reject it.
/// A request naming a model not served here gets none: the judge resolves names among the
/// models the provider declared, which may differ from those it loaded, so such a refusal is
/// left unsigned.
fn refusal_model(p: &Provider, r: &BatchRequest) -> Option<hibana_types::Hash> {
    use crate::openai::{ChatRequest, CompletionRequest, EmbeddingRequest, parse_body};
    let refused = |name: &str, admits: &dyn Fn(&super::state::Served) -> bool| {
        let served = p.find(name).ok()?;
        (!admits(served)).then_some(served.info.content_hash)
    };
    let unparsed = Some(hibana_types::Hash::ZERO);
    match r.url.as_str() {
        "/v1/chat/completions" => match parse_body::<ChatRequest>(&r.body) {
            Ok(req) => refused(&req.model, &|s| {
                super::text::admit_chat(&s.info, &s.model, &req).is_ok()
            }),
            Err(_) => unparsed,
        },
        "/v1/completions" => match parse_body::<CompletionRequest>(&r.body) {
            Ok(req) => refused(&req.model, &|s| {
                super::text::admit_completion(&s.info, &s.model, &req).is_ok()
            }),
            Err(_) => unparsed,
        },
        _ => match parse_body::<EmbeddingRequest>(&r.body) {
            Ok(req) => refused(&req.model, &|s| {
                super::embed::admit_embeddings(&s.info, &s.model, &req).is_ok_and(|job| {
                    job.embedder
                        .count_tokens(&job.inputs, super::embed::MAX_EMBED_TOKENS)
                        .is_ok()
                })
            }),
            Err(_) => unparsed,
        },
    }
}

async fn answer_once(p: &Arc<Provider>, line: u32, r: &BatchRequest) -> LineResult {
    let body = Ok(Bytes::from(r.body.clone()));
    let headers = HeaderMap::new();
    let state = State(p.clone());
    let response = match r.url.as_str() {
        "/v1/chat/completions" => super::text::chat(state, headers, body).await,
        "/v1/completions" => super::text::completions(state, headers, body).await,
        _ => super::embed::embeddings(state, headers, body).await,
    }
    .into_response();
    let status = response.status().as_u16();
    let receipt = response
        .headers()
        .get(RECEIPT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(response.into_body(), MAX_LINE_RESPONSE + 1)
        .await
        .ok()
        .filter(|b| batch::disputable_response(b));
    let (status, response, receipt) = match (bytes, receipt) {
        (Some(bytes), receipt) => (status, String::from_utf8_lossy(&bytes).into_owned(), receipt),
        (None, _) => (
            500,
            serde_json::json!({"error": {"message": format!("the answer is over {MAX_LINE_RESPONSE} {OVERSIZED}"), "type": "server_error"}}).to_string(),
            None,
        ),
    };
    // The checks tokenise (a chat template, embeddings' inputs): off the async threads.
    let model = match receipt {
        Some(_) => None,
        None => {
            let (p, r) = (p.clone(), r.clone());
            tokio::task::spawn_blocking(move || refusal_model(&p, &r))
                .await
                .ok()
                .flatten()
        }
    };
    let refusal = model.map(|model| {
        p.receipt_at_price(
            model,
            &r.body,
            hibana_types::Hash::digest(response.as_bytes()),
            (0, 0),
            hibana_types::Amount::ZERO,
        )
        .to_hex()
    });
    LineResult {
        line,
        custom_id: r.custom_id.clone(),
        status,
        response,
        receipt,
        refusal,
    }
}

async fn run(p: &Arc<Provider>, id: u64, requests: &[BatchRequest]) -> Result<(), String> {
    let chain = p.jobs.chain().ok_or("not connected to a chain")?;
    let b = chain
        .market_batch(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("batch {id} is not on chain"))?
        .batch;
    if b.status == BatchStatus::Expired {
        return Err(format!("batch {id} expired with its lease's term"));
    }
    if b.status != BatchStatus::Running {
        // Committed before a restart: the saved results stand.
        p.batches.set(id, |g| g.done = g.lines);
        return Ok(());
    }
    let mut results = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let result = answer(p, i as u32, r).await;
        if result.receipt.is_none() {
            tracing::info!(
                batch = id,
                line = i,
                status = result.status,
                "batch line refused"
            );
        }
        results.push(result);
        p.batches.set(id, |g| g.done = results.len() as u32);
    }
    let (root, answered) = batch::results_root_and_count(&results)?;
    let mut text = String::new();
    for r in &results {
        text.push_str(&serde_json::to_string(r).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    super::jobs::write_atomic(&p.batches.results_path(id), text.as_bytes())
        .map_err(|e| format!("cannot save the results: {e}"))?;
    let receipt = p
        .send_tx(
            &chain,
            vec![Message::CommitBatch(CommitBatch {
                batch: id,
                results_root: root,
                answered,
            })],
        )
        .await
        .map_err(|e| format!("commit: {e}"))?;
    if !receipt.is_success() {
        return Err(format!("the commit failed: {:?}", receipt.outcome));
    }
    tracing::info!(batch = id, answered, lines = requests.len(), %root, "batch committed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(bytes: usize) -> hibana_types::PostBatchLine {
        hibana_types::PostBatchLine {
            batch: 0,
            line: 0,
            request: vec![b'x'; bytes / 2],
            response: vec![b'y'; bytes / 2],
            receipt: None,
            input_proof: Vec::new(),
            result_proof: Vec::new(),
        }
    }

    #[test]
    fn posts_go_out_a_few_lines_and_bytes_to_a_transaction() {
        let sizes = |chunks: Vec<Vec<hibana_types::PostBatchLine>>| {
            chunks.iter().map(Vec::len).collect::<Vec<_>>()
        };
        assert_eq!(sizes(chunks_for_tx(vec![post(100); 7])), vec![3, 3, 1]);
        // Three of the largest lines do not fit in one transaction's budget.
        assert_eq!(sizes(chunks_for_tx(vec![post(150_000); 3])), vec![2, 1]);
        assert!(chunks_for_tx(Vec::new()).is_empty());
    }
}
