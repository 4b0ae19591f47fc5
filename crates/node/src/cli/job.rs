//! Training jobs on the command line: `job submit` (the job on chain, then the dataset uploaded
//! to the lease's provider), `job status` (with `--wait`, a progress bar until every step is
//! committed), `job fetch` (the trained parameters, checked against the chain's hash, written
//! as JSON and ONNX), `job verify` (re-train locally and compare every committed step hash) and
//! `job dispute` (re-train, find the first step whose hash differs, and have the chain re-run
//! it).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use hibana_rpc::RpcClient;
use hibana_train::{Dataset, Trainer, TrainingSpec};
use hibana_types::records::market::{Job, JobStatus};
use hibana_types::{Address, DisputeAverage, DisputeStep, Hash, Message, SubmitJob};
use serde_json::json;

use crate::{
    cli::common::{NodeHome, Sent, TxFlags, client, sign_and_submit, signing_key},
    market_provider::send_receipt,
    output::{print_json, print_receipt},
};

/// `hibana job …`.
#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Submit a training job on one of your leases and upload its dataset to the provider.
    Submit(SubmitArgs),
    /// Upload a submitted job's dataset to its provider again (after a failed upload, or to a
    /// provider that lost it).
    Upload {
        /// The job id.
        job: u64,
        /// The job's dataset (JSON lines).
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Show a job as the chain and its provider see it.
    Status {
        /// The job id.
        job: u64,
        /// Wait, with a progress bar, until every step is committed (or the job is refuted).
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Download the trained model from the provider, check it against the chain's hash, and
    /// write it as JSON and ONNX (for `hibana zk compile`).
    Fetch {
        /// The job id.
        job: u64,
        /// Folder to write model.json, model.onnx (and calibration.json with --data).
        #[arg(long, short)]
        out: PathBuf,
        /// The job's dataset: also write calibration data for `hibana zk compile` and report
        /// the model's accuracy on it.
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Re-train the job locally and compare every committed step hash with the provider's.
    Verify {
        /// The job id.
        job: u64,
        /// The job's dataset (JSON lines).
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Re-train the job locally and, at the first step whose committed hash is wrong, have the
    /// chain re-run that step (locks a 1 HIB deposit, lost if the step was right).
    Dispute {
        /// The job id.
        job: u64,
        /// The job's dataset (JSON lines).
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        tx: TxFlags,
    },
}

/// What `job submit` trains.
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The lease to run it on (yours).
    #[arg(long, required_unless_present = "reorder")]
    lease: Option<u64>,
    /// More of your leases, each with another provider, to train on at once (data parallel:
    /// each takes --checkpoint-every local steps a round, then their parameters are averaged).
    #[arg(long, value_delimiter = ',', conflicts_with = "reorder")]
    with: Vec<u64>,
    /// Instead of a new job, go on with this running job on another provider: post an order
    /// like its lease's, accept the cheapest bid from another provider, move the job there and
    /// upload the dataset; the new provider starts from the last committed checkpoint.
    #[arg(long, conflicts_with = "lease")]
    reorder: Option<u64>,
    /// With --reorder on a job over several leases: the lease of the worker to replace.
    #[arg(long, requires = "reorder")]
    replace: Option<u64>,
    /// With --reorder: how long to wait for a bid, in seconds.
    #[arg(long, default_value_t = 60)]
    bid_timeout: u64,
    /// The dataset: JSON lines {"features": [numbers], "label": class}.
    #[arg(long)]
    data: PathBuf,
    /// Hidden layer widths, comma-separated (none: logistic regression).
    #[arg(long, value_delimiter = ',')]
    hidden: Vec<u32>,
    /// Classes (default: one more than the largest label, at least 2).
    #[arg(long)]
    classes: Option<u32>,
    /// Learning rate.
    #[arg(long, default_value_t = 0.5)]
    learning_rate: f64,
    /// Rows per step.
    #[arg(long, default_value_t = 32)]
    batch: u32,
    /// Steps to train.
    #[arg(long, default_value_t = 300)]
    steps: u64,
    /// Seed of the initial parameters and of the batches.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Steps per checkpoint (one on-chain commitment each).
    #[arg(long, default_value_t = 50)]
    checkpoint_every: u32,
    #[command(flatten)]
    tx: TxFlags,
}

/// `hibana job …`.
pub(crate) async fn job(cmd: JobCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        JobCommand::Submit(a) => submit(a, rpc, json).await,
        JobCommand::Upload { job, data, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let j = chain_job(&client, job).await?;
            let text = std::fs::read_to_string(&data)
                .with_context(|| format!("reading {}", data.display()))?;
            load(&data, &j.spec)?;
            let url = upload(&client, &j, text).await?;
            if json {
                print_json(&json!({"job": job, "provider": url, "rows": j.spec.rows}))?;
            } else {
                println!("Job {job}: {} rows uploaded to {url}.", j.spec.rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Status {
            job,
            wait,
            timeout,
            node,
        } => {
            let client = client(rpc, node.home.as_deref())?;
            let j = if wait {
                wait_for(&client, job, Duration::from_secs(timeout), json).await?
            } else {
                chain_job(&client, job).await?
            };
            let progress = provider_progress(&client, &j).await.ok();
            let lease = client.market_lease(j.lease).await?;
            let paid_until = lease.as_ref().and_then(|l| l.paid_until);
            let workers = if j.with.is_empty() {
                Vec::new()
            } else {
                workers_now(&client, &j).await?
            };
            if json {
                print_json(&json!({
                    "job": j,
                    "provider": progress,
                    "lease_paid_until": paid_until,
                    "workers": workers,
                }))?;
            } else {
                print_job(&j);
                for w in &workers {
                    let state = match (w.lease_active, w.paid_until, w.committed_round) {
                        (false, _, _) => format!(
                            "its lease is closed: the round cannot end until `hibana job submit \
                             --reorder {} --replace {}` moves it",
                            j.id, w.lease
                        ),
                        (true, Some(until), _) => format!(
                            "its provider stopped proving it is up (paid to block {until}); \
                             replace it with `hibana job submit --reorder {} --replace {}`",
                            j.id, w.lease
                        ),
                        (true, None, true) => format!("committed round {}", w.round),
                        (true, None, false) => format!("training round {}", w.round),
                    };
                    println!(
                        "  worker {} (lease {}, provider {}): {state}",
                        w.worker, w.lease, w.provider
                    );
                }
                if let Some(until) = paid_until {
                    println!(
                        "  the provider stopped proving it is up: lease {} pays no block after {until}; \
                         go on elsewhere with `hibana job submit --reorder {}`",
                        j.lease, j.id
                    );
                }
                if let Some(p) = progress {
                    println!(
                        "  provider: {} ({} of {} steps trained)",
                        p["state"].as_str().unwrap_or("?"),
                        p["trained"],
                        p["steps"]
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Fetch {
            job,
            out,
            data,
            node,
        } => fetch(&client(rpc, node.home.as_deref())?, job, &out, data, json).await,
        JobCommand::Verify { job, data, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let j = chain_job(&client, job).await?;
            let data = load(&data, &j.spec)?;
            let Checked { hashes, found } = first_divergence(&client, &j, &data).await?;
            let ok = found.is_none();
            if json {
                print_json(&json!({
                    "job": job,
                    "steps_checked": j.committed_steps,
                    "hashes_checked": hashes,
                    "matches": ok,
                    "first_wrong_step": found.as_ref().map(|d| d.step),
                    "wrong_average_of_round": found.as_ref().and_then(|d| match d.proof {
                        Proof::Average { round, .. } => Some(round),
                        Proof::Step { .. } => None,
                    }),
                }))?;
            } else if let Some(d) = &found {
                let what = match d.proof {
                    Proof::Step { .. } => format!("step {}", d.step),
                    Proof::Average { round, .. } => format!("the average of round {round}"),
                };
                println!(
                    "Job {job}: {what} is wrong: the provider committed {}, re-training gives {}. \
                     Run `hibana job dispute {job} --data …` to have the chain re-run it.",
                    d.claimed, d.honest
                );
            } else {
                println!(
                    "Job {job}: all {hashes} committed hashes ({} steps) match a local re-run, bit for bit.",
                    j.committed_steps
                );
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        JobCommand::Dispute { job, data, tx } => {
            let client = client(rpc, tx.keys.home.as_deref())?;
            let j = chain_job(&client, job).await?;
            let data = load(&data, &j.spec)?;
            let Some(d) = first_divergence(&client, &j, &data).await?.found else {
                bail!(
                    "every committed step of job {job} matches a local re-run: there is nothing to dispute"
                );
            };
            let message = match d.proof {
                Proof::Step { params_before } => {
                    let rows = hibana_train::batch_indices(&j.spec, d.step)
                        .iter()
                        .map(|&i| {
                            data.proven_row(i)
                                .ok_or_else(|| anyhow!("row {i} is not in the dataset"))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    if !json {
                        println!("Disputing step {} of job {job}.", d.step);
                    }
                    Message::DisputeStep(DisputeStep {
                        job,
                        step: d.step,
                        params: params_before,
                        rows,
                    })
                }
                Proof::Average { round, parts } => {
                    if !json {
                        println!("Disputing the average of round {round} of job {job}.");
                    }
                    Message::DisputeAverage(DisputeAverage { job, round, parts })
                }
            };
            let key = signing_key(&tx.from, &tx.keys)?;
            match sign_and_submit(&client, &key, message, &tx).await? {
                Sent::Pending(hash) => crate::output::print_pending(&hash, json)?,
                Sent::Committed(receipt) => {
                    print_receipt(&receipt, json)?;
                    if !receipt.is_success() {
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn chain_job(client: &RpcClient, id: u64) -> Result<Job> {
    Ok(client
        .market_job(id)
        .await?
        .ok_or_else(|| anyhow!("no job {id} on chain"))?
        .job)
}

/// Where one worker of a data-parallel job stands in the current round.
#[derive(Debug, serde::Serialize)]
struct WorkerNow {
    worker: u32,
    lease: u64,
    provider: Address,
    round: u64,
    committed_round: bool,
    lease_active: bool,
    paid_until: Option<u64>,
}

/// Each worker of a data-parallel job: whether it committed the current round, and whether
/// its lease still runs and pays.
async fn workers_now(client: &RpcClient, j: &Job) -> Result<Vec<WorkerNow>> {
    let round = j.committed_steps / j.steps_per_round().max(1);
    let mut out = Vec::new();
    for k in 0..j.workers() {
        let Some(w) = j.worker(k) else { continue };
        let committed_round = !client
            .market_job_steps(j.id, j.worker_index(round, k))
            .await?
            .is_empty();
        let lease = client.market_lease(w.lease).await?;
        out.push(WorkerNow {
            worker: k,
            lease: w.lease,
            provider: w.provider,
            round,
            committed_round,
            lease_active: lease.as_ref().is_some_and(|l| {
                l.lease.status == hibana_types::records::market::LeaseStatus::Active
            }),
            paid_until: lease.and_then(|l| l.paid_until),
        });
    }
    Ok(out)
}

/// The base URL of a registered provider.
pub(crate) async fn provider_url(client: &RpcClient, provider: Address) -> Result<String> {
    let p = client
        .market_provider(provider)
        .await?
        .ok_or_else(|| anyhow!("provider {provider} left the market"))?;
    Ok(p.endpoint.trim_end_matches('/').to_string())
}

async fn provider_progress(client: &RpcClient, job: &Job) -> Result<serde_json::Value> {
    let url = provider_url(client, job.provider).await?;
    let answer = http()?
        .get(format!("{url}/v1/jobs/{}", job.id))
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("{}", answer.text().await.unwrap_or_default());
    }
    let body = hibana_roles::provider::jobs::read_capped(answer, 64 << 10)
        .await
        .map_err(|e| anyhow!("the provider's progress: {e}"))?;
    Ok(serde_json::from_slice(&body)?)
}

/// The HTTP client that talks to providers.
pub(crate) fn http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?)
}

fn load(path: &PathBuf, spec: &TrainingSpec) -> Result<Dataset> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let data = Dataset::from_jsonl(&text).with_context(|| path.display().to_string())?;
    data.check_spec(spec)?;
    Ok(data)
}

async fn submit(a: SubmitArgs, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    let client = client(rpc, a.tx.keys.home.as_deref())?;
    if let Some(job) = a.reorder {
        return reorder(&client, job, &a, json).await;
    }
    let lease = a
        .lease
        .ok_or_else(|| anyhow!("--lease or --reorder is needed"))?;
    let bytes = std::fs::read(&a.data).with_context(|| format!("reading {}", a.data.display()))?;
    let text = String::from_utf8(bytes).context("the dataset is not UTF-8 JSON lines")?;
    let data = Dataset::from_jsonl(&text).with_context(|| a.data.display().to_string())?;
    let lr = hibana_train::quantise(a.learning_rate)
        .filter(|&q| q > 0)
        .ok_or_else(|| anyhow!("--learning-rate must be a positive number up to 16"))?;
    let spec = TrainingSpec {
        dataset_root: data.root(),
        rows: data.len() as u64,
        features: data.features() as u32,
        hidden: a.hidden.clone(),
        classes: a.classes.unwrap_or(data.classes().max(2)),
        learning_rate: lr as u32,
        batch: a.batch,
        steps: a.steps,
        seed: a.seed,
        checkpoint_every: a.checkpoint_every,
    };
    data.check_spec(&spec)?;
    let key = signing_key(&a.tx.from, &a.tx.keys)?;
    let receipt = client
        .send(
            &key,
            vec![Message::SubmitJob(SubmitJob {
                lease,
                spec,
                with: a.with.clone(),
            })],
            None,
        )
        .await?;
    if !receipt.is_success() {
        print_receipt(&receipt, json)?;
        return Ok(ExitCode::FAILURE);
    }
    let id: u64 = receipt
        .attribute("market.job_submitted", "job")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("the receipt names no job"))?;
    let job = chain_job(&client, id).await?;
    let url = upload(&client, &job, text).await.with_context(|| {
        format!(
            "job {id} is on chain, but its dataset did not reach the provider; retry with \
             `hibana job upload {id} --data {}`",
            a.data.display()
        )
    })?;
    if json {
        print_json(&json!({
            "job": id,
            "lease": lease,
            "provider": job.provider,
            "workers": job.workers(),
            "dataset": job.spec.dataset_root,
            "rows": job.spec.rows,
            "steps": job.spec.steps,
            "tx_hash": receipt.tx_hash,
        }))?;
    } else {
        println!(
            "Job {id} submitted on lease {lease} (tx {}); {} rows uploaded to {url}.",
            receipt.tx_hash, job.spec.rows
        );
        println!("  Follow it with `hibana job status {id} --wait`.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `job submit --reorder JOB`: the job goes on on another provider.
async fn reorder(client: &RpcClient, id: u64, a: &SubmitArgs, json: bool) -> Result<ExitCode> {
    use hibana_types::{AcceptBid, CreateOrder, MoveJob};
    let old = chain_job(client, id).await?;
    if old.status != JobStatus::Running {
        bail!("job {id} has every step committed: there is nothing to go on with");
    }
    let leases: Vec<u64> = (0..old.workers())
        .filter_map(|k| old.worker(k).map(|w| w.lease))
        .collect();
    let replaces = match (old.with.is_empty(), a.replace) {
        (true, None) => None,
        (_, Some(l)) if leases.contains(&l) => Some(l),
        (_, Some(l)) => bail!("lease {l} is not one of job {id}'s leases {leases:?}"),
        (false, None) => bail!(
            "job {id} trains on leases {leases:?} at once: say which worker's lease to replace with --replace"
        ),
    };
    let text = std::fs::read_to_string(&a.data)
        .with_context(|| format!("reading {}", a.data.display()))?;
    load(&a.data, &old.spec)?;
    let key = signing_key(&a.tx.from, &a.tx.keys)?;
    let from_lease = replaces.unwrap_or(old.lease);
    let lease = client
        .market_lease(from_lease)
        .await?
        .ok_or_else(|| anyhow!("lease {from_lease} of job {id} does not exist"))?
        .lease;
    let order = client
        .market_order(lease.order)
        .await?
        .ok_or_else(|| anyhow!("order {} of lease {} does not exist", lease.order, lease.id))?
        .order;
    let height = client.status().await?.height;
    let created = send_receipt(
        client,
        &key,
        vec![Message::CreateOrder(CreateOrder {
            resources: order.resources.clone(),
            duration_blocks: order.duration_blocks,
            max_price_per_block: order.max_price_per_block,
            deposit: order.deposit,
            expires_at: height + 1 + 1_000,
        })],
        "posting the new order",
    )
    .await?;
    let new_order: u64 = created
        .attribute("market.order_created", "order")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("the receipt names no order"))?;
    if !json {
        println!(
            "Order {new_order} posted; waiting up to {}s for a bid from another provider.",
            a.bid_timeout
        );
    }
    let start = std::time::Instant::now();
    let bid = loop {
        let view = client
            .market_order(new_order)
            .await?
            .ok_or_else(|| anyhow!("order {new_order} vanished"))?;
        let best = view
            .bids
            .iter()
            .filter(|b| old.worker_of(&b.provider).is_none())
            .min_by_key(|b| b.price_per_block.0)
            .cloned();
        if let Some(b) = best {
            break b;
        }
        if start.elapsed() > Duration::from_secs(a.bid_timeout) {
            bail!(
                "no other provider bid on order {new_order} in {}s; it stays open (close it with \
                 `hibana market order close {new_order}`)",
                a.bid_timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let accepted = send_receipt(
        client,
        &key,
        vec![Message::AcceptBid(AcceptBid {
            order: new_order,
            provider: bid.provider,
        })],
        "accepting the bid",
    )
    .await?;
    let new_lease: u64 = accepted
        .attribute("market.lease_created", "lease")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("the receipt names no lease"))?;
    send_receipt(
        client,
        &key,
        vec![Message::MoveJob(MoveJob {
            job: id,
            lease: new_lease,
            replaces,
        })],
        "moving the job",
    )
    .await?;
    let job = chain_job(client, id).await?;
    let path = format!("/v1/jobs/{id}/data");
    let url = put_file(client, bid.provider, &path, text, "the dataset")
        .await
        .with_context(|| {
            format!(
                "job {id} moved to lease {new_lease}, but its dataset did not reach the provider; \
             retry with `hibana job upload {id} --data {}`",
                a.data.display()
            )
        })?;
    if json {
        print_json(&json!({
            "job": id,
            "lease": new_lease,
            "order": new_order,
            "provider": bid.provider,
            "replaces": replaces,
            "from_step": job.committed_steps,
        }))?;
    } else {
        println!(
            "Job {id} moved to lease {new_lease} with {} ({url}); it goes on from step {}.",
            bid.provider, job.committed_steps
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Uploads a job's dataset to each of its providers; returns their URLs.
async fn upload(client: &RpcClient, job: &Job, text: String) -> Result<String> {
    let path = format!("/v1/jobs/{}/data", job.id);
    let mut urls = Vec::new();
    for k in 0..job.workers() {
        if let Some(w) = job.worker(k) {
            urls.push(put_file(client, w.provider, &path, text.clone(), "the dataset").await?);
        }
    }
    Ok(urls.join(" and "))
}

/// PUTs a JSON-lines file (`what`) at `path` on a provider; returns the provider's URL.
pub(crate) async fn put_file(
    client: &RpcClient,
    provider: Address,
    path: &str,
    text: String,
    what: &str,
) -> Result<String> {
    let url = provider_url(client, provider).await?;
    let bar = transfer_bar(text.len() as u64, &format!("uploading {what}"));
    let chunks: Vec<Vec<u8>> = text
        .into_bytes()
        .chunks(64 << 10)
        .map(<[u8]>::to_vec)
        .collect();
    let counted = bar.clone();
    let body = futures_util::stream::iter(chunks.into_iter().map(move |c| {
        counted.inc(c.len() as u64);
        Ok::<_, std::io::Error>(c)
    }));
    let answer = http()?
        .put(format!("{url}{path}"))
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .with_context(|| format!("uploading {what} to the provider at {url}"))?;
    bar.finish_and_clear();
    if !answer.status().is_success() {
        let body = answer.text().await.unwrap_or_default();
        bail!("the provider at {url} refused {what}: {body}");
    }
    Ok(url)
}

/// A progress bar of bytes sent or received (drawn only on a terminal).
pub(crate) fn transfer_bar(total: u64, message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec})",
    ) {
        bar.set_style(style);
    }
    bar.set_message(message.to_string());
    bar
}

async fn wait_for(client: &RpcClient, id: u64, timeout: Duration, json: bool) -> Result<Job> {
    let start = std::time::Instant::now();
    let mut j = chain_job(client, id).await?;
    let bar = indicatif::ProgressBar::new(j.spec.steps);
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_message(format!("job {id}: steps committed"));
    loop {
        bar.set_position(j.committed_steps);
        if j.status != JobStatus::Running {
            bar.finish();
            return Ok(j);
        }
        if start.elapsed() > timeout {
            bar.abandon();
            bail!(
                "job {id} has {} of {} steps committed after {}s",
                j.committed_steps,
                j.spec.steps,
                timeout.as_secs()
            );
        }
        if let Ok(p) = provider_progress(client, &j).await
            && p["state"] == "failed"
        {
            bar.abandon();
            bail!("the provider's training of job {id} failed: {}", p["error"]);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        j = chain_job(client, id).await?;
    }
}

fn print_job(j: &Job) {
    let status = match j.status {
        JobStatus::Running => "running",
        JobStatus::Done => "done",
        JobStatus::Refuted => "refuted",
        JobStatus::Settled => "settled",
    };
    println!(
        "job {} on lease {}: {status}, {} of {} steps committed (provider {})",
        j.id, j.lease, j.committed_steps, j.spec.steps, j.provider
    );
    for w in &j.with {
        println!(
            "  also on lease {} (provider {}): averaged every {} local steps",
            w.lease, w.provider, j.spec.checkpoint_every
        );
    }
    println!(
        "  model: {} features, hidden {:?}, {} classes; batch {}, seed {}, dataset {}",
        j.spec.features,
        j.spec.hidden,
        j.spec.classes,
        j.spec.batch,
        j.spec.seed,
        j.spec.dataset_root
    );
    println!(
        "  state hash after step {}: {}",
        j.committed_steps, j.last_hash
    );
    match j.status {
        JobStatus::Done => println!("  disputable until height {}", j.dispute_until()),
        JobStatus::Refuted => println!(
            "  a dispute showed step {} wrong: the provider was slashed",
            j.refuted_step.unwrap_or_default()
        ),
        _ => {}
    }
}

/// A committed hash that is not what re-training gives.
struct Divergence {
    /// The step it is the state after.
    step: u64,
    claimed: Hash,
    honest: Hash,
    /// What shows it wrong.
    proof: Proof,
}

/// What a dispute carries.
enum Proof {
    /// A step: the parameters before it (agreed by both sides).
    Step { params_before: Vec<i32> },
    /// A data-parallel round's average: every worker's parameters at the round's end.
    Average { round: u64, parts: Vec<Vec<i32>> },
}

/// The hashes checked and the first that differs, if one does.
struct Checked {
    hashes: u64,
    found: Option<Divergence>,
}

/// Re-trains the committed steps of `job` and returns the first whose hash differs.
async fn first_divergence(client: &RpcClient, job: &Job, data: &Dataset) -> Result<Checked> {
    if !job.with.is_empty() {
        return first_parallel_divergence(client, job, data).await;
    }
    let every = u64::from(job.spec.checkpoint_every);
    let mut committed = Vec::with_capacity(job.committed_steps as usize);
    for index in 0..job.committed_steps.div_ceil(every) {
        let hashes = client.market_job_steps(job.id, index).await?;
        if hashes.is_empty() {
            bail!(
                "job {}'s step hashes are pruned (it settled): there is nothing left to check",
                job.id
            );
        }
        committed.extend(hashes);
    }
    let spec = job.spec.clone();
    let data = data.clone();
    let hashes = committed.len() as u64;
    tokio::task::spawn_blocking(move || {
        let mut t = Trainer::new(&spec)?;
        for (i, claimed) in committed.iter().enumerate() {
            let before = t.params().to_vec();
            let honest = t.next_step(&data)?;
            if honest != *claimed {
                return Ok(Checked {
                    hashes,
                    found: Some(Divergence {
                        step: i as u64 + 1,
                        claimed: *claimed,
                        honest,
                        proof: Proof::Step {
                            params_before: before,
                        },
                    }),
                });
            }
        }
        Ok(Checked {
            hashes,
            found: None,
        })
    })
    .await?
}

/// [`first_divergence`] for a data-parallel job: each worker's committed steps of each round,
/// re-run from the round's start, then the round's committed average.
async fn first_parallel_divergence(
    client: &RpcClient,
    job: &Job,
    data: &Dataset,
) -> Result<Checked> {
    let rounds = job.spec.steps / job.steps_per_round().max(1);
    let mut committed: Vec<(Vec<Vec<Hash>>, Option<Hash>)> = Vec::new();
    for round in 0..rounds {
        let mut parts = Vec::new();
        for k in 0..job.workers() {
            parts.push(
                client
                    .market_job_steps(job.id, job.worker_index(round, k))
                    .await?,
            );
        }
        let average = client
            .market_job_steps(job.id, job.worker_index(round, job.workers()))
            .await?
            .first()
            .copied();
        let any = parts.iter().any(|p| !p.is_empty());
        if !any {
            if round == 0 && job.status != JobStatus::Running {
                bail!(
                    "job {}'s step hashes are pruned (it is {}): there is nothing left to check",
                    job.id,
                    if job.status == JobStatus::Refuted {
                        "refuted"
                    } else {
                        "settled"
                    }
                );
            }
            break;
        }
        let whole = average.is_some();
        committed.push((parts, average));
        if !whole {
            break;
        }
    }
    let (spec, data) = (job.spec.clone(), data.clone());
    let plan = hibana_train::diloco::Plan::of(job);
    tokio::task::spawn_blocking(move || {
        let mut start = hibana_train::init_params(&spec);
        let mut checked = 0u64;
        for (round, (workers, average)) in committed.iter().enumerate() {
            let round = round as u64;
            let mut parts = Vec::new();
            for (k, hashes) in workers.iter().enumerate() {
                checked += hashes.len() as u64;
                match hibana_train::diloco::replay(
                    &spec, &data, &plan, &start, round, k as u32, hashes,
                )? {
                    hibana_train::diloco::Replay::Matches(params) => parts.push(params),
                    hibana_train::diloco::Replay::Diverges {
                        step,
                        params_before,
                        claimed,
                        honest,
                    } => {
                        return Ok(Checked {
                            hashes: checked,
                            found: Some(Divergence {
                                step,
                                claimed,
                                honest,
                                proof: Proof::Step { params_before },
                            }),
                        });
                    }
                }
            }
            let Some(claimed) = average else {
                break;
            };
            let mean = hibana_train::diloco::average(&parts)?;
            let step = (round + 1) * plan.steps_per_round();
            let honest = hibana_train::state_hash(step, &mean);
            checked += 1;
            if honest != *claimed {
                return Ok(Checked {
                    hashes: checked,
                    found: Some(Divergence {
                        step,
                        claimed: *claimed,
                        honest,
                        proof: Proof::Average { round, parts },
                    }),
                });
            }
            start = mean;
        }
        Ok(Checked {
            hashes: checked,
            found: None,
        })
    })
    .await?
}

/// The trained parameters as the job's (first) provider serves them.
async fn provider_params(client: &RpcClient, j: &Job) -> Result<Vec<i32>> {
    let id = j.id;
    let url = provider_url(client, j.provider).await?;
    let answer = http()?
        .get(format!(
            "{url}/v1/jobs/{id}/params?step={}",
            j.committed_steps
        ))
        .send()
        .await
        .with_context(|| format!("asking the provider at {url}"))?;
    if !answer.status().is_success() {
        bail!(
            "the provider has no model of job {id}: {}",
            answer.text().await.unwrap_or_default()
        );
    }
    // A checkpoint of the largest model, as JSON, is well under 1 MiB; the hash is checked next.
    let body = hibana_roles::provider::jobs::read_capped(answer, 1 << 20)
        .await
        .map_err(|e| anyhow!("the provider's model: {e}"))?;
    let c: hibana_roles::provider::jobs::Checkpoint = serde_json::from_slice(&body)?;
    Ok(c.params)
}

async fn fetch(
    client: &RpcClient,
    id: u64,
    out: &PathBuf,
    data: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    let j = chain_job(client, id).await?;
    if j.committed_steps == 0 {
        bail!("job {id} has no committed step yet");
    }
    let params = match provider_params(client, &j).await {
        Ok(params) => params,
        // The node keeps a copy of every committed checkpoint a provider stored there.
        Err(e) => {
            let bytes = crate::cli::data::fetch(&http()?, client, &j.last_hash, 1 << 20)
                .await
                .with_context(|| format!("{e:#}; and from the node"))?;
            let (step, params) = hibana_train::parse_checkpoint(&bytes)?;
            if step != j.committed_steps {
                bail!(
                    "the node's checkpoint is of step {step}, not {}",
                    j.committed_steps
                );
            }
            params
        }
    };
    let got = hibana_train::state_hash(j.committed_steps, &params);
    if got != j.last_hash {
        bail!(
            "the provider's parameters hash to {got}, but the chain has {} for step {}: do not use them",
            j.last_hash,
            j.committed_steps
        );
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("model.json"),
        serde_json::to_vec_pretty(&json!({
            "job": id,
            "step": j.committed_steps,
            "hash": got,
            "spec": j.spec,
            "params": params,
        }))?,
    )?;
    let layers: Vec<hibana_zkml::onnx::DenseLayer> = hibana_train::float_layers(&j.spec, &params)?
        .into_iter()
        .map(|l| hibana_zkml::onnx::DenseLayer {
            weights: l.weights,
            biases: l.biases,
            n_in: l.n_in,
            n_out: l.n_out,
        })
        .collect();
    std::fs::write(
        out.join("model.onnx"),
        hibana_zkml::onnx::dense_classifier(&format!("hibana-job-{id}"), &layers),
    )?;
    let mut accuracy = None;
    if let Some(path) = data {
        let data = load(&path, &j.spec)?;
        let right = hibana_train::correct(&j.spec, &params, &data)?;
        accuracy = Some(right as f64 / data.len() as f64);
        let scale = hibana_train::ONE as f64;
        let sample: Vec<_> = data.rows().iter().take(256).collect();
        let calibration = json!({
            "inputs": sample.iter().map(|r| r.features.iter().map(|&f| f64::from(f) / scale).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "labels": sample.iter().map(|r| r.label).collect::<Vec<_>>(),
        });
        std::fs::write(
            out.join("calibration.json"),
            serde_json::to_vec(&calibration)?,
        )?;
    }
    if json {
        print_json(&json!({
            "job": id,
            "step": j.committed_steps,
            "hash": got,
            "out": out,
            "accuracy": accuracy,
        }))?;
    } else {
        println!(
            "Job {id}: the model after step {} matches the chain's hash {got}.",
            j.committed_steps
        );
        println!("  wrote {}/model.json and model.onnx", out.display());
        if let Some(a) = accuracy {
            println!(
                "  accuracy on the dataset: {:.1}%; calibration.json is ready for `hibana zk compile`",
                a * 100.0
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
