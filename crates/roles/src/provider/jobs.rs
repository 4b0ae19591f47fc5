//! Training jobs: the client of a lease submits a job on chain, then uploads its dataset here
//! (`PUT /v1/jobs/{id}/data`). The provider checks the job is its own and the file is the
//! dataset the job names (same Merkle root, rows and features), then trains it with the integer
//! trainer one checkpoint at a time: after each checkpoint it saves the parameters under its
//! jobs folder and commits the checkpoint's step hashes on chain (`CommitSteps`), waiting for
//! inclusion before the next. Progress is at `GET /v1/jobs/{id}`, the parameters of any
//! committed checkpoint (the trained model at the last step) at `GET /v1/jobs/{id}/params?step=N`.
//!
//! Everything restarts from the chain: a runner reads the job's committed step count and resumes
//! from its own checkpoint of that step, so a provider killed mid-job goes on where its last
//! commit left it.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    Json,
    body::Bytes,
    extract::{Path as UrlPath, Query, State},
    http::StatusCode,
};
use hibana_rpc::RpcClient;
use hibana_train::diloco::{Plan, Replay};
use hibana_train::{Dataset, Trainer};
use hibana_types::{
    CommitAverage, CommitSteps, DisputeAverage, DisputeStep, Hash, Message,
    records::market::{Job, JobStatus, LeaseStatus},
};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::state::{AppState, Provider};
use crate::openai::ApiError;

/// Largest dataset upload.
pub const MAX_DATASET_UPLOAD: usize = 64 << 20;

/// Largest checkpoint the provider reads from the node (the blob store's own limit).
const MAX_CHECKPOINT_BYTES: usize = 64 << 10;

/// Reads an HTTP answer's body, refusing one over `max` bytes before holding more.
pub async fn read_capped(mut answer: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > max {
            return Err(format!("the answer is over {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn node_http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

/// Where a job stands on this provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Steps trained here.
    pub trained: u64,
    /// Steps committed on chain.
    pub committed: u64,
    /// The job's step count.
    pub steps: u64,
    /// `training`, `done` or `failed`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// A checkpoint as saved and served: the parameters after `step` and their state hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The job.
    pub job: u64,
    /// Steps done.
    pub step: u64,
    /// [`hibana_train::state_hash`] of the parameters at `step`.
    pub hash: Hash,
    /// The parameters, fixed-point.
    pub params: Vec<i32>,
}

/// The jobs a provider trains: their files, the chain they are committed on, their progress.
#[derive(Debug)]
pub struct Jobs {
    dir: PathBuf,
    chain: RwLock<Option<RpcClient>>,
    progress: Mutex<BTreeMap<u64, Progress>>,
}

impl Jobs {
    /// Jobs kept under `dir`.
    pub fn open(dir: PathBuf) -> Jobs {
        Jobs {
            dir,
            chain: RwLock::new(None),
            progress: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reads jobs from, and commits their steps on, the chain whose node answers at `url`.
    pub fn connect_chain(&self, url: &str) -> Result<(), String> {
        *self.chain.write() = Some(RpcClient::new(url).map_err(|e| e.to_string())?);
        Ok(())
    }

    pub(super) fn chain(&self) -> Option<RpcClient> {
        self.chain.read().clone()
    }

    fn job_dir(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    fn data_path(&self, id: u64) -> PathBuf {
        self.job_dir(id).join("data.jsonl")
    }

    fn checkpoint_path(&self, id: u64, step: u64) -> PathBuf {
        self.job_dir(id).join(format!("step-{step}.json"))
    }

    fn part_path(&self, id: u64, round: u64) -> PathBuf {
        self.job_dir(id).join(format!("part-{round}.json"))
    }

    /// This provider's part of round `round` of a data-parallel job, if it has it.
    fn part(&self, id: u64, round: u64) -> Option<Checkpoint> {
        let bytes = std::fs::read(self.part_path(id, round)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn save_part(&self, round: u64, c: &Checkpoint) -> std::io::Result<()> {
        write_atomic(
            &self.part_path(c.job, round),
            &serde_json::to_vec(c).map_err(std::io::Error::other)?,
        )
    }

    /// The saved checkpoint of `step`, if this provider has it.
    pub fn checkpoint(&self, id: u64, step: u64) -> Option<Checkpoint> {
        let bytes = std::fs::read(self.checkpoint_path(id, step)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn save_checkpoint(&self, c: &Checkpoint) -> std::io::Result<()> {
        write_atomic(
            &self.checkpoint_path(c.job, c.step),
            &serde_json::to_vec(c).map_err(std::io::Error::other)?,
        )
    }

    /// A job's progress here.
    pub fn progress(&self, id: u64) -> Option<Progress> {
        self.progress.lock().get(&id).cloned()
    }

    fn set(&self, id: u64, f: impl FnOnce(&mut Progress)) {
        let mut all = self.progress.lock();
        let p = all.entry(id).or_insert_with(|| Progress {
            trained: 0,
            committed: 0,
            steps: 0,
            state: "training".into(),
            error: None,
        });
        f(p);
    }
}

pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// `PUT /v1/jobs/{id}/data`: takes a job's dataset and starts training it.
pub(super) async fn upload_data(
    State(p): State<AppState>,
    UrlPath(id): UrlPath<u64>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let chain = p.jobs.chain().ok_or_else(|| {
        ApiError::server(
            StatusCode::SERVICE_UNAVAILABLE,
            "this provider is not connected to a chain (start it with --chain URL)",
        )
    })?;
    let view = chain
        .market_job(id)
        .await
        .map_err(|e| ApiError::server(StatusCode::BAD_GATEWAY, format!("chain: {e}")))?
        .ok_or_else(|| ApiError::invalid(None, format!("job {id} does not exist on chain")))?;
    let job = view.job;
    let me = p.key.public_key().address();
    if job.worker_of(&me).is_none() {
        return Err(ApiError::invalid(
            None,
            format!("job {id} is for provider {}, not for {me}", job.provider),
        ));
    }
    if job.status != JobStatus::Running {
        return Err(ApiError::invalid(
            None,
            format!("job {id} has every step committed already"),
        ));
    }
    let text = String::from_utf8(Vec::from(body))
        .map_err(|_| ApiError::invalid(None, "the dataset is not UTF-8 JSON lines"))?;
    let spec = job.spec.clone();
    let data = tokio::task::spawn_blocking(move || {
        let data = Dataset::from_jsonl(&text)?;
        data.check_spec(&spec)?;
        Ok::<_, hibana_train::TrainError>((data, text))
    })
    .await
    .map_err(|e| ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::invalid(None, format!("job {id}: {e}")))?;
    let (data, text) = data;
    write_atomic(&p.jobs.data_path(id), text.as_bytes())
        .map_err(|e| ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let rows = data.len();
    start(p.clone(), id, Arc::new(data));
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"job": id, "rows": rows, "dataset": job.spec.dataset_root})),
    ))
}

/// `GET /v1/jobs/{id}`: a job's progress on this provider.
pub(super) async fn status(
    State(p): State<AppState>,
    UrlPath(id): UrlPath<u64>,
) -> Result<Json<Progress>, ApiError> {
    p.jobs
        .progress(id)
        .map(Json)
        .ok_or_else(|| ApiError::invalid(None, format!("job {id} has no data here yet")))
}

/// The query of `GET /v1/jobs/{id}/params`.
#[derive(Debug, Deserialize)]
pub(super) struct StepQuery {
    step: u64,
}

/// `GET /v1/jobs/{id}/params?step=N`: the parameters of a committed checkpoint.
pub(super) async fn params(
    State(p): State<AppState>,
    UrlPath(id): UrlPath<u64>,
    Query(q): Query<StepQuery>,
) -> Result<Json<Checkpoint>, ApiError> {
    p.jobs.checkpoint(id, q.step).map(Json).ok_or_else(|| {
        ApiError::invalid(
            None,
            format!("job {id} has no checkpoint of step {} here", q.step),
        )
    })
}

/// Starts training job `id` unless it is running already.
fn start(p: Arc<Provider>, id: u64, data: Arc<Dataset>) {
    {
        let mut all = p.jobs.progress.lock();
        if all.get(&id).is_some_and(|g| g.state == "training") {
            return;
        }
        all.insert(
            id,
            Progress {
                trained: 0,
                committed: 0,
                steps: 0,
                state: "training".into(),
                error: None,
            },
        );
    }
    tokio::spawn(async move {
        let outcome = run(&p, id, data).await;
        p.jobs.set(id, |g| match outcome {
            Ok(()) => g.state = "done".into(),
            Err(e) => {
                tracing::warn!(job = id, "training job failed: {e}");
                g.state = "failed".into();
                g.error = Some(e);
            }
        });
    });
}

/// Resumes every job whose dataset this provider holds and whose steps are not all committed.
pub fn resume_all(p: &Arc<Provider>) {
    let Ok(entries) = std::fs::read_dir(&p.jobs.dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(p.jobs.data_path(id)) else {
            continue;
        };
        match Dataset::from_jsonl(&text) {
            Ok(data) => start(p.clone(), id, Arc::new(data)),
            Err(e) => tracing::warn!(job = id, "its saved dataset does not load: {e}"),
        }
    }
}

/// Trains job `id` checkpoint by checkpoint, committing each, until every step is committed.
async fn run(p: &Arc<Provider>, id: u64, data: Arc<Dataset>) -> Result<(), String> {
    let chain = p.jobs.chain().ok_or("not connected to a chain")?;
    let first = chain_job(&chain, id).await?;
    if !first.with.is_empty() {
        return run_parallel(p, &chain, id, data).await;
    }
    let mut failures = 0;
    loop {
        let job = chain_job(&chain, id).await?;
        let spec = job.spec.clone();
        let done = job.committed_steps;
        p.jobs.set(id, |g| {
            g.committed = done;
            g.steps = spec.steps;
            g.trained = g.trained.max(done);
        });
        if job.status != JobStatus::Running {
            return Ok(());
        }
        let trainer = if done == 0 {
            Trainer::new(&spec).map_err(|e| e.to_string())?
        } else {
            // Its own checkpoint, or (a job moved here from another provider) the one that
            // provider stored in the node's blob store under the committed hash.
            let params = match p.jobs.checkpoint(id, done) {
                Some(c) => c.params,
                None => fetch_blob(&chain, &job.last_hash, done).await?,
            };
            Trainer::resume(&spec, done, params, &job.last_hash).map_err(|e| e.to_string())?
        };
        let window = u64::from(spec.checkpoint_every).min(spec.steps - done);
        let data = data.clone();
        let (trainer, hashes) = tokio::task::spawn_blocking(move || {
            let mut trainer = trainer;
            let hashes = (0..window)
                .map(|_| trainer.next_step(&data))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, hibana_train::TrainError>((trainer, hashes))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let step = trainer.step();
        p.jobs
            .save_checkpoint(&Checkpoint {
                job: id,
                step,
                hash: state_hash_of(&trainer),
                params: trainer.params().to_vec(),
            })
            .map_err(|e| format!("saving the checkpoint of step {step}: {e}"))?;
        p.jobs.set(id, |g| g.trained = step);
        // Stored by its hash on the node too, so that another provider can go on from it.
        if let Err(e) = store_blob(
            &chain,
            &hibana_train::checkpoint_bytes(step, trainer.params()),
        )
        .await
        {
            tracing::warn!(
                job = id,
                "cannot store the checkpoint of step {step} on the node: {e}"
            );
        }
        // A commit that fails for a passing reason (a busy mempool, a lost connection) is
        // retried from the chain's view; the same reason five times in a row stops the job.
        match p
            .send_tx(
                &chain,
                vec![Message::CommitSteps(CommitSteps {
                    job: id,
                    after: done,
                    hashes,
                })],
            )
            .await
        {
            Ok(receipt) if receipt.is_success() => failures = 0,
            Ok(receipt) => {
                // Refused as stale: an earlier send whose answer was lost landed after all, and
                // the loop goes on from the chain's count.
                let moved = chain
                    .market_job(id)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|v| v.job.committed_steps > done);
                if !moved {
                    return Err(format!("committing steps to {step}: {:?}", receipt.outcome));
                }
            }
            Err(e) => {
                failures += 1;
                if failures >= 5 {
                    return Err(format!("committing steps to {step}: {e}"));
                }
                tracing::warn!(job = id, "committing steps to {step}: {e}; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// Job `id` as the chain has it.
async fn chain_job(chain: &RpcClient, id: u64) -> Result<Job, String> {
    Ok(chain
        .market_job(id)
        .await
        .map_err(|e| format!("chain: {e}"))?
        .ok_or_else(|| format!("job {id} does not exist"))?
        .job)
}

/// `PUT {node}/blobs`: stores bytes in the node's content-addressed blob store.
async fn store_blob(chain: &RpcClient, bytes: &[u8]) -> Result<(), String> {
    let url = format!("{}/blobs", chain.url().trim_end_matches('/'));
    let answer = node_http()?
        .put(&url)
        .body(bytes.to_vec())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !answer.status().is_success() {
        return Err(answer.text().await.unwrap_or_default());
    }
    Ok(())
}

/// The parameters of the checkpoint whose state hash is `hash` (step `step`), from the node's
/// blob store; the hash is checked, so the store need not be trusted.
async fn fetch_blob(chain: &RpcClient, hash: &Hash, step: u64) -> Result<Vec<i32>, String> {
    let url = format!("{}/blobs/{hash}", chain.url().trim_end_matches('/'));
    let answer = node_http()?
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("fetching the checkpoint of step {step}: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!(
            "step {step} is committed but its checkpoint is neither here nor on the node"
        ));
    }
    let bytes = read_capped(answer, MAX_CHECKPOINT_BYTES).await?;
    if hibana_types::Hash(*blake3::hash(&bytes).as_bytes()) != *hash {
        return Err(format!(
            "the node's checkpoint of step {step} does not match its hash"
        ));
    }
    let (at, params) = hibana_train::parse_checkpoint(&bytes).map_err(|e| e.to_string())?;
    if at != step {
        return Err(format!("the checkpoint is of step {at}, not {step}"));
    }
    Ok(params)
}

fn state_hash_of(t: &Trainer) -> Hash {
    hibana_train::state_hash(t.step(), t.params())
}

/// A transaction's outcome as the training loops see it: landed, refused (the loop reads the
/// chain again), or not sent for a passing reason (retried, up to five times in a row).
async fn send_counted(
    p: &Provider,
    chain: &RpcClient,
    message: Message,
    failures: &mut u32,
    what: &str,
) -> Result<Option<hibana_types::Receipt>, String> {
    match p.send_tx(chain, vec![message]).await {
        Ok(receipt) => {
            *failures = 0;
            Ok(Some(receipt))
        }
        Err(e) => {
            *failures += 1;
            if *failures >= 5 {
                return Err(format!("{what}: {e}"));
            }
            tracing::warn!("{what}: {e}; retrying");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            Ok(None)
        }
    }
}

/// Trains this provider's part of data-parallel job `id` round by round
/// (`hibana_runtime`'s `market::parallel` states the rules): its local steps from the round's
/// start, committed; then, once every worker has committed the round, the average of their
/// parts, fetched by hash from the node's blob store and committed by whichever worker gets
/// there first. A committed average other than the one it computed is disputed.
async fn run_parallel(
    p: &Arc<Provider>,
    chain: &RpcClient,
    id: u64,
    data: Arc<Dataset>,
) -> Result<(), String> {
    let me = p.key.public_key().address();
    let mut failures = 0;
    loop {
        let job = chain_job(chain, id).await?;
        let spec = job.spec.clone();
        let plan = Plan::of(&job);
        let per_round = job.steps_per_round();
        let round = job.committed_steps / per_round;
        p.jobs.set(id, |g| {
            g.committed = job.committed_steps;
            g.steps = spec.steps;
            g.trained = g.trained.max(job.committed_steps);
        });
        if !matches!(job.status, JobStatus::Running | JobStatus::Done) {
            return Ok(());
        }
        let w = job
            .worker_of(&me)
            .ok_or_else(|| format!("this provider is not a worker of job {id}"))?;
        // The round starts from the previous one's committed average, which this provider
        // checks against its own (and disputes if it differs).
        let start = if round == 0 {
            hibana_train::init_params(&spec)
        } else {
            checked_average(p, chain, &job, round - 1, &data).await?
        };
        if job.status == JobStatus::Done {
            return Ok(());
        }
        let mine = chain
            .market_job_steps(id, job.worker_index(round, w))
            .await
            .map_err(|e| format!("chain: {e}"))?;
        if mine.is_empty() {
            let (spec2, data2, start2) = (spec.clone(), data.clone(), start);
            let (params, hashes) = tokio::task::spawn_blocking(move || {
                hibana_train::diloco::worker_round_hashes(&spec2, &data2, &plan, &start2, round, w)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let last = hibana_train::diloco::last_step(&plan, round, w, spec.steps);
            let part = Checkpoint {
                job: id,
                step: last,
                hash: hibana_train::state_hash(last, &params),
                params,
            };
            p.jobs
                .save_part(round, &part)
                .map_err(|e| format!("saving round {round}'s part: {e}"))?;
            p.jobs.set(id, |g| {
                g.trained = g.trained.max(job.committed_steps + per_round);
            });
            // The other workers average it in: it must reach the node before the commit.
            if let Err(e) =
                store_blob(chain, &hibana_train::checkpoint_bytes(last, &part.params)).await
            {
                failures += 1;
                if failures >= 5 {
                    return Err(format!("storing round {round}'s part on the node: {e}"));
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            failures = 0;
            let commit = Message::CommitSteps(CommitSteps {
                job: id,
                after: job.committed_steps,
                hashes,
            });
            let what = format!("committing round {round}'s steps");
            if let Some(r) = send_counted(p, chain, commit, &mut failures, &what).await?
                && !r.is_success()
            {
                // Refused: fine if an earlier send landed after all; otherwise the job stopped
                // for this provider (its lease closed, the job refuted).
                let landed = !chain
                    .market_job_steps(id, job.worker_index(round, w))
                    .await
                    .map_err(|e| format!("chain: {e}"))?
                    .is_empty();
                if !landed {
                    return Err(format!("{what}: {:?}", r.outcome));
                }
            }
            continue;
        }
        // Every worker's part, once all are committed.
        let mut ready = true;
        for k in 0..job.workers() {
            let hashes = chain
                .market_job_steps(id, job.worker_index(round, k))
                .await
                .map_err(|e| format!("chain: {e}"))?;
            ready &= !hashes.is_empty();
        }
        if !ready {
            // This provider stops once its own lease closes. While another worker's lease is
            // closed the round cannot end until the client moves that worker to a new lease
            // (`job submit --reorder J --replace L`), so it waits, polling slowly.
            let mut stalled = false;
            for k in 0..job.workers() {
                let Some(worker) = job.worker(k) else {
                    continue;
                };
                let active = chain
                    .market_lease(worker.lease)
                    .await
                    .map_err(|e| format!("chain: {e}"))?
                    .is_some_and(|l| l.lease.status == LeaseStatus::Active);
                if !active && k == w {
                    return Err(format!(
                        "lease {} of this provider is closed: it stops training job {id}",
                        worker.lease
                    ));
                }
                stalled |= !active;
            }
            let wait = if stalled { 5_000 } else { 500 };
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            continue;
        }
        let (_, average) = round_average(p, chain, &job, round, &data).await?;
        let end = (round + 1) * per_round;
        let hash = hibana_train::state_hash(end, &average);
        p.jobs
            .save_checkpoint(&Checkpoint {
                job: id,
                step: end,
                hash,
                params: average.clone(),
            })
            .map_err(|e| format!("saving round {round}'s average: {e}"))?;
        if let Err(e) = store_blob(chain, &hibana_train::checkpoint_bytes(end, &average)).await {
            tracing::warn!(
                job = id,
                "cannot store round {round}'s average on the node: {e}"
            );
        }
        let commit = Message::CommitAverage(CommitAverage {
            job: id,
            round,
            hash,
        });
        let what = format!("committing round {round}'s average");
        if let Some(r) = send_counted(p, chain, commit, &mut failures, &what).await?
            && !r.is_success()
        {
            // Fine if another worker committed it first (the next pass checks it against this
            // one's); otherwise the job stopped for this provider.
            let moved = chain
                .market_job(id)
                .await
                .map_err(|e| format!("chain: {e}"))?
                .is_some_and(|v| v.job.committed_steps > job.committed_steps);
            if !moved {
                return Err(format!("{what}: {:?}", r.outcome));
            }
        }
    }
}

/// The parameters round `round` starts from: the initial ones, or the previous round's
/// committed average (this provider's copy, or the node's, checked against the hash).
async fn round_start(
    p: &Provider,
    chain: &RpcClient,
    job: &Job,
    round: u64,
) -> Result<Vec<i32>, String> {
    if round == 0 {
        return Ok(hibana_train::init_params(&job.spec));
    }
    let step = round * job.steps_per_round();
    let committed = chain
        .market_job_steps(job.id, job.worker_index(round - 1, job.workers()))
        .await
        .map_err(|e| format!("chain: {e}"))?
        .first()
        .copied()
        .ok_or_else(|| format!("round {}'s average is not committed", round - 1))?;
    match p.jobs.checkpoint(job.id, step) {
        Some(c) if c.hash == committed => Ok(c.params),
        _ => fetch_blob(chain, &committed, step).await,
    }
}

/// Worker `k`'s part of round `round`, re-trained here because it could not be fetched: if a
/// committed hash differs from the re-run, the first such step is disputed.
async fn retrain_part(
    p: &Provider,
    chain: &RpcClient,
    job: &Job,
    round: u64,
    k: u32,
    committed: &[Hash],
    data: &Arc<Dataset>,
) -> Result<Vec<i32>, String> {
    let start = round_start(p, chain, job, round).await?;
    let spec = job.spec.clone();
    let plan = Plan::of(job);
    let committed = committed.to_vec();
    let rerun = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            hibana_train::diloco::replay(&spec, &data, &plan, &start, round, k, &committed)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
    };
    match rerun {
        Replay::Matches(params) => Ok(params),
        Replay::Diverges {
            step,
            params_before,
            ..
        } => {
            let rows = hibana_train::batch_indices(&job.spec, step)
                .iter()
                .filter_map(|&i| data.proven_row(i))
                .collect();
            let dispute = Message::DisputeStep(DisputeStep {
                job: job.id,
                step,
                params: params_before,
                rows,
            });
            let outcome = p
                .send_tx(chain, vec![dispute])
                .await
                .map_err(|e| e.to_string())?;
            Err(format!(
                "worker {k}'s step {step} is not what re-training gives; disputed: {:?}",
                outcome.outcome
            ))
        }
    }
}

/// Every worker's parameters at the end of round `round` (each checked against its committed
/// hash: this provider's own, the node's copy, or re-trained here) and their average.
async fn round_average(
    p: &Provider,
    chain: &RpcClient,
    job: &Job,
    round: u64,
    data: &Arc<Dataset>,
) -> Result<(Vec<Vec<i32>>, Vec<i32>), String> {
    let plan = Plan::of(job);
    let me = p.key.public_key().address();
    let mut parts = Vec::with_capacity(job.workers() as usize);
    for k in 0..job.workers() {
        let hashes = chain
            .market_job_steps(job.id, job.worker_index(round, k))
            .await
            .map_err(|e| format!("chain: {e}"))?;
        let hash = hashes
            .last()
            .ok_or_else(|| format!("worker {k} has not committed round {round}"))?;
        let last = hibana_train::diloco::last_step(&plan, round, k, job.spec.steps);
        let own = (job.worker_of(&me) == Some(k))
            .then(|| p.jobs.part(job.id, round))
            .flatten()
            .filter(|c| c.hash == *hash);
        parts.push(match own {
            Some(c) => c.params,
            None => match fetch_blob(chain, hash, last).await {
                Ok(params) => params,
                Err(e) => {
                    tracing::info!(
                        job = job.id,
                        "worker {k}'s part of round {round} ({e}): re-training it"
                    );
                    retrain_part(p, chain, job, round, k, &hashes, data).await?
                }
            },
        });
    }
    let average = hibana_train::diloco::average(&parts).map_err(|e| e.to_string())?;
    Ok((parts, average))
}

/// The committed average of round `round`, once this provider has checked it is the average
/// of the committed parts; a wrong one is disputed and stops the job here.
async fn checked_average(
    p: &Provider,
    chain: &RpcClient,
    job: &Job,
    round: u64,
    data: &Arc<Dataset>,
) -> Result<Vec<i32>, String> {
    let end = (round + 1) * job.steps_per_round();
    let committed = chain
        .market_job_steps(job.id, job.worker_index(round, job.workers()))
        .await
        .map_err(|e| format!("chain: {e}"))?
        .first()
        .copied()
        .ok_or_else(|| format!("round {round}'s average is not committed"))?;
    if let Some(c) = p.jobs.checkpoint(job.id, end)
        && c.hash == committed
    {
        return Ok(c.params);
    }
    let (parts, average) = round_average(p, chain, job, round, data).await?;
    let hash = hibana_train::state_hash(end, &average);
    if hash == committed {
        p.jobs
            .save_checkpoint(&Checkpoint {
                job: job.id,
                step: end,
                hash,
                params: average.clone(),
            })
            .map_err(|e| format!("saving round {round}'s average: {e}"))?;
        return Ok(average);
    }
    let dispute = Message::DisputeAverage(DisputeAverage {
        job: job.id,
        round,
        parts,
    });
    let outcome = p
        .send_tx(chain, vec![dispute])
        .await
        .map_err(|e| e.to_string())?;
    Err(format!(
        "round {round}'s committed average {committed} is not the average of the parts ({hash}); disputed: {:?}",
        outcome.outcome
    ))
}
