//! Batch inference jobs on the command line: `batch submit` (the batch on chain, then its input
//! uploaded to the lease's provider), `batch status` (with `--wait`, a progress bar until the
//! results are committed), `batch fetch` (the results, checked against the chain: every
//! receipt's signature and hashes and the results root, written in OpenAI's batch output
//! format), `batch verify` (re-check a random sample of lines on the local models) and
//! `batch dispute` (challenge a wrong line for the chain's validators to judge).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use hibana_roles::batch::{self, BatchRequest, LineResult};
use hibana_rpc::RpcClient;
use hibana_types::records::market::{BatchJob, BatchStatus};
use hibana_types::{Message, RequestBatchLine, SubmitBatch};
use rand::{SeedableRng, seq::SliceRandom};
use serde_json::json;

use crate::{
    cli::common::{NodeHome, TxFlags, client, send, send_all, signing_key},
    cli::job::{http, provider_url, put_file, transfer_bar},
    output::{print_json, print_receipt},
};

/// Largest results file read from a provider.
const MAX_RESULTS_BYTES: usize = 256 << 20;
/// Largest progress answer read from a provider.
const MAX_PROGRESS_BYTES: usize = 64 << 10;

/// `hibana batch …`.
#[derive(Debug, Subcommand)]
pub(crate) enum BatchCommand {
    /// Submit a batch of OpenAI requests (a JSONL file in OpenAI's batch format) on one of your
    /// leases and upload it to the provider.
    Submit {
        /// The lease to run it on (yours).
        #[arg(long)]
        lease: u64,
        /// The batch file: lines {"custom_id", "method": "POST", "url", "body"}.
        #[arg(long)]
        input: PathBuf,
        /// Only submit it on chain; upload later with `hibana batch upload`.
        #[arg(long)]
        no_upload: bool,
        /// Paid per answered line on top of the lease, e.g. 0.001HIB: `lines ×` this is held
        /// from you and paid once no line can be challenged (refused lines are refunded).
        #[arg(long, default_value = "0")]
        price_per_line: String,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Upload a submitted batch's input to its provider (again).
    Upload {
        /// The batch id.
        batch: u64,
        /// The batch file.
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Show a batch as the chain and its provider see it.
    Status {
        /// The batch id.
        batch: u64,
        /// Wait, with a progress bar, until its results are committed.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Download the results, check every receipt and the results root against the chain, and
    /// write them in OpenAI's batch output format (each line with its receipt).
    Fetch {
        /// The batch id.
        batch: u64,
        /// The batch file.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the output (JSON lines).
        #[arg(long, short)]
        out: PathBuf,
        /// Also keep the provider's results as served (for `verify` and `dispute --results`).
        #[arg(long)]
        results_out: Option<PathBuf>,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Re-check a random sample of answered lines on your own copy of the models, and of
    /// refused ones whether the provider had reason to refuse.
    Verify {
        /// The batch id.
        batch: u64,
        /// The batch file.
        #[arg(long)]
        input: PathBuf,
        /// The provider's results as saved by `fetch --results-out` (default: download them).
        #[arg(long)]
        results: Option<PathBuf>,
        /// Lines to re-check (all of them if the batch has fewer).
        #[arg(long, default_value_t = 5)]
        sample: usize,
        /// Seed of the sample (default: random).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Challenge one answered line as wrong, or one refused line as wrongly refused: the chain's
    /// validators re-check it and vote; if they uphold it, the provider is slashed, the batch
    /// refuted and the lease closed.
    Dispute {
        /// The batch id.
        batch: u64,
        /// The line (0 is the first), as `verify` names it.
        #[arg(long)]
        line: u32,
        /// The batch file.
        #[arg(long)]
        input: PathBuf,
        /// The provider's results as saved by `fetch --results-out` (default: download them).
        #[arg(long)]
        results: Option<PathBuf>,
        /// Deposit, lost if the validators find the answer right (at least 1 HIB; not taken
        /// when the line proves the provider's count false).
        #[arg(long, default_value = "1HIB")]
        deposit: String,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// As a validator (or anyone), spot-check batches: ask the provider for random lines with
    /// their proofs, check them against the chain, re-run them on your own models, and
    /// challenge a wrong one. With a batch id, checks that batch once and prints the check;
    /// without, follows the chain and checks every batch committed from now on, logging each.
    SpotCheck {
        /// The batch to check once (default: follow every batch).
        batch: Option<u64>,
        /// Lines re-run per batch.
        #[arg(long, default_value_t = 2)]
        lines: usize,
        /// Share (0 to 1) of the batches checked when following.
        #[arg(long, default_value_t = 1.0)]
        share: f64,
        /// Deposit of each challenge opened, lost if the validators find the answer right.
        #[arg(long, default_value = "1HIB")]
        deposit: String,
        /// JSON-lines file each check is appended to.
        #[arg(long, default_value = "spot_checks.jsonl")]
        log: PathBuf,
        /// Ask on chain for the lines the provider does not serve (0.1HIB deposit each), and
        /// judge them once posted: a provider that never posts one loses the batch and part of
        /// its bond.
        #[arg(long)]
        request: bool,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Ask a committed batch's provider to post one line on chain, with its proofs, within 50
    /// blocks (or more, when many of its lines are due). Of the 0.1HIB deposit, 0.01HIB pays
    /// whoever posts it and the rest comes back; if nobody posts it, the batch is refuted, its
    /// provider slashed, and the deposit comes back whole with a share of the slash.
    RequestLine {
        /// The batch id.
        batch: u64,
        /// The line (0 is the first).
        #[arg(long)]
        line: u32,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Show the lines of a batch requested on chain: who asked, the deadline, and who posted
    /// each; with `--line`, that line whole (its request, response and receipt).
    Lines {
        /// The batch id.
        batch: u64,
        /// One requested line, with what was posted.
        #[arg(long)]
        line: Option<u32>,
        #[command(flatten)]
        node: NodeHome,
    },
}

/// `hibana batch …`.
pub(crate) async fn batch(cmd: BatchCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        BatchCommand::Submit {
            lease,
            input,
            no_upload,
            price_per_line,
            tx,
        } => {
            let client = client(rpc, tx.keys.home.as_deref())?;
            let (text, requests) = read_input(&input)?;
            let key = signing_key(&tx.from, &tx.keys)?;
            let message = Message::SubmitBatch(SubmitBatch {
                lease,
                input_root: batch::input_root(&requests),
                lines: requests.len() as u32,
                input_bytes: text.len() as u64,
                price_per_line: price_per_line.parse().context("--price-per-line")?,
            });
            let receipt = client.send(&key, vec![message], None).await?;
            if !receipt.is_success() {
                print_receipt(&receipt, json)?;
                return Ok(ExitCode::FAILURE);
            }
            let id: u64 = receipt
                .attribute("market.batch_submitted", "batch")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| anyhow!("the receipt names no batch"))?;
            let b = chain_batch(&client, id).await?;
            let url = if no_upload {
                None
            } else {
                Some(upload(&client, &b, text).await.with_context(|| {
                    format!(
                        "batch {id} is on chain, but its input did not reach the provider; retry \
                         with `hibana batch upload {id} --input {}`",
                        input.display()
                    )
                })?)
            };
            if json {
                print_json(&json!({
                    "batch": id,
                    "lease": lease,
                    "provider": b.provider,
                    "input": b.input_root,
                    "lines": b.lines,
                    "escrow": b.escrow(),
                    "uploaded_to": url,
                    "tx_hash": receipt.tx_hash,
                }))?;
            } else {
                println!(
                    "Batch {id} submitted on lease {lease} (tx {}): {} lines, input root {}.",
                    receipt.tx_hash, b.lines, b.input_root
                );
                match url {
                    Some(url) => println!(
                        "  Uploaded to {url}. Follow it with `hibana batch status {id} --wait`."
                    ),
                    None => println!("  Upload it with `hibana batch upload {id} --input …`."),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BatchCommand::Upload { batch, input, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let b = chain_batch(&client, batch).await?;
            let (text, requests) = read_input(&input)?;
            if batch::input_root(&requests) != b.input_root {
                bail!("{} is not batch {batch}'s input", input.display());
            }
            let url = upload(&client, &b, text).await?;
            if json {
                print_json(&json!({"batch": batch, "provider": url, "lines": b.lines}))?;
            } else {
                println!("Batch {batch}: {} lines uploaded to {url}.", b.lines);
            }
            Ok(ExitCode::SUCCESS)
        }
        BatchCommand::Status {
            batch,
            wait,
            timeout,
            node,
        } => {
            let client = client(rpc, node.home.as_deref())?;
            let b = if wait {
                wait_for(&client, batch, Duration::from_secs(timeout), json).await?
            } else {
                chain_batch(&client, batch).await?
            };
            let progress = provider_get(&client, &b, "", MAX_PROGRESS_BYTES).await.ok();
            let progress: Option<serde_json::Value> =
                progress.and_then(|p| serde_json::from_slice(&p).ok());
            if json {
                print_json(&json!({"batch": b, "provider": progress}))?;
            } else {
                print_batch(&b);
                if let Some(p) = progress {
                    println!(
                        "  provider: {} ({} of {} lines)",
                        p["state"].as_str().unwrap_or("?"),
                        p["done"],
                        p["lines"]
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BatchCommand::Fetch {
            batch,
            input,
            out,
            results_out,
            node,
        } => {
            let client = client(rpc, node.home.as_deref())?;
            let b = chain_batch(&client, batch).await?;
            let (_, requests) = read_input(&input)?;
            let (raw, results) = fetch_results(&client, &b, None).await?;
            batch::check_results(&b, &requests, &results)
                .map_err(|e| anyhow!("the provider's results do not check out: {e}"))?;
            let mut text = String::new();
            for r in &results {
                text.push_str(&r.to_openai(batch).to_string());
                text.push('\n');
            }
            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
            if let Some(path) = &results_out {
                std::fs::write(path, raw).with_context(|| format!("writing {}", path.display()))?;
            }
            if json {
                print_json(&json!({
                    "batch": batch,
                    "lines": b.lines,
                    "answered": b.answered,
                    "results_root": b.results_root,
                    "out": out,
                    "receipts_checked": b.answered,
                }))?;
            } else {
                println!(
                    "Batch {batch}: {} lines ({} answered) written to {}; every receipt and the \
                     results root match the chain.",
                    b.lines,
                    b.answered,
                    out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BatchCommand::Verify {
            batch,
            input,
            results,
            sample,
            seed,
            node,
        } => {
            let client = client(rpc, node.home.as_deref())?;
            let b = chain_batch(&client, batch).await?;
            let (_, requests) = read_input(&input)?;
            let (_, results) = fetch_results(&client, &b, results.as_ref()).await?;
            let receipts = batch::check_results(&b, &requests, &results)
                .map_err(|e| anyhow!("the provider's results do not check out: {e}"))?;
            // Answered lines, and refused ones the provider signed its refusal of.
            let signed: Vec<Option<hibana_types::InferenceReceipt>> = results
                .iter()
                .zip(&receipts)
                .map(|(r, answer)| Ok(answer.clone().or(r.refusal().map_err(|e| anyhow!(e))?)))
                .collect::<Result<_>>()?;
            let mut answered: Vec<usize> = (0..results.len())
                .filter(|&i| signed[i].is_some())
                .collect();
            let seed = seed.unwrap_or_else(rand::random);
            answered.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            answered.truncate(sample);
            answered.sort_unstable();
            let models = std::sync::Arc::new(hibana_roles::recheck::LocalModels::new(
                crate::run::models_dir(),
            ));
            // Refusals are judged against the models the provider declared at the commit.
            let declared = b.models.clone();
            let mut checked = Vec::new();
            for i in answered {
                let Some(receipt) = signed[i].clone() else {
                    continue;
                };
                let request = requests[i].body.clone();
                let response = results[i].response.clone().into_bytes();
                let refusal = hibana_roles::recheck::is_signed_refusal(&receipt, &response);
                let (models, declared) = (models.clone(), declared.clone());
                let verdict = tokio::task::spawn_blocking(move || {
                    hibana_roles::recheck::judge_response(
                        &models, &declared, &receipt, &request, &response,
                    )
                })
                .await?;
                if let hibana_roles::recheck::Judgement::Unjudgeable(why) = &verdict
                    && !refusal
                    && why.contains("not installed here")
                {
                    bail!("line {i}: {why} (`hibana models install`)");
                }
                checked.push((i, verdict));
            }
            let wrong: Vec<usize> = checked
                .iter()
                .filter(|(_, v)| v.is_wrong())
                .map(|(i, _)| *i)
                .collect();
            if json {
                print_json(&json!({
                    "batch": batch,
                    "seed": seed,
                    "checked": checked.iter().map(|(i, v)| json!({"line": i, "verdict": verdict_name(v), "why": verdict_why(v)})).collect::<Vec<_>>(),
                    "wrong_lines": wrong,
                }))?;
            } else {
                for (i, v) in &checked {
                    println!(
                        "line {i} ({}): {}{}",
                        requests[*i].custom_id,
                        verdict_name(v),
                        verdict_why(v).map(|w| format!(": {w}")).unwrap_or_default()
                    );
                }
                match wrong.first() {
                    Some(first) => println!(
                        "Batch {batch}: {} of {} re-checked lines are wrong; challenge one with \
                         `hibana batch dispute {batch} --line {first} --input …`.",
                        wrong.len(),
                        checked.len()
                    ),
                    None => println!(
                        "Batch {batch}: all {} re-checked lines are answers the model gives \
                         (seed {seed}).",
                        checked.len()
                    ),
                }
            }
            Ok(if wrong.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        BatchCommand::SpotCheck {
            batch,
            lines,
            share,
            deposit,
            log,
            request,
            tx,
        } => {
            let client = client(rpc, tx.keys.home.as_deref())?;
            let key = signing_key(&tx.from, &tx.keys)?;
            if !(0.0..=1.0).contains(&share) {
                bail!("--share must be between 0 and 1, not {share}");
            }
            let config = hibana_roles::spot_check::SpotCheckConfig {
                lines: lines.max(1),
                share,
                deposit: deposit.parse().context("--deposit")?,
                log,
                request,
            };
            let local = std::sync::Arc::new(hibana_roles::recheck::LocalModels::new(
                crate::run::models_dir(),
            ));
            let mut checker =
                hibana_roles::spot_check::SpotChecker::new(client.clone(), key, config);
            let Some(id) = batch else {
                if !json {
                    println!("Spot-checking every committed batch; Ctrl-C to stop.");
                }
                checker.skip_to_now().await;
                loop {
                    for check in checker.pass(&local).await {
                        if json {
                            println!("{}", serde_json::to_string(&check)?);
                        } else {
                            print_check(&check);
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            };
            let b = chain_batch(&client, id).await?;
            if b.results_root.is_none() {
                bail!("batch {id}'s results are not committed yet: there is nothing to check");
            }
            let mut check = checker.check(&b, &local).await;
            checker.request_unserved(&b, &mut check).await;
            let mut checks = vec![check];
            if checker.pending_requests() > 0 {
                if !json {
                    print_check(&checks[0]);
                    println!(
                        "Waiting for the provider to post the requested lines ({} blocks or more)…",
                        hibana_types::records::market::LINE_ANSWER_BLOCKS
                    );
                }
                // The chain decides each request within LINE_ANSWER_BLOCKS; this bounds a
                // wait on a node that stopped answering.
                let give_up = std::time::Instant::now() + Duration::from_secs(600);
                while checker.pending_requests() > 0 && std::time::Instant::now() < give_up {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    checks.extend(checker.follow_requests(&local).await);
                }
                if checker.pending_requests() > 0 {
                    bail!(
                        "the chain did not settle the line requests within 10 minutes: see \
                         `hibana batch lines {id}`"
                    );
                }
            }
            let challenged = checks.iter().any(|c| c.challenged.is_some());
            let withheld = checks
                .iter()
                .flat_map(|c| &c.lines)
                .any(|l| l.verdict == "withheld");
            if json {
                if checks.len() == 1 {
                    print_json(&checks[0])?;
                } else {
                    print_json(&checks)?;
                }
            } else {
                let shown = usize::from(checks.len() > 1);
                for check in &checks[shown..] {
                    print_check(check);
                }
            }
            Ok(if challenged || withheld {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        BatchCommand::RequestLine { batch, line, tx } => {
            let client = client(rpc, tx.keys.home.as_deref())?;
            let key = signing_key(&tx.from, &tx.keys)?;
            let message = Message::RequestBatchLine(RequestBatchLine { batch, line });
            send(&client, &key, message, &tx, json).await
        }
        BatchCommand::Lines { batch, line, node } => {
            let client = client(rpc, node.home.as_deref())?;
            chain_batch(&client, batch).await?;
            if let Some(line) = line {
                let r = client
                    .market_batch_line(batch, line)
                    .await?
                    .ok_or_else(|| {
                        anyhow!(
                            "line {line} of batch {batch} is not requested (or the batch has \
                         settled or been refuted)"
                        )
                    })?;
                if json {
                    print_json(&r)?;
                } else {
                    print_line_request(&r, true);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let requests = client.market_batch_lines(batch).await?;
            if json {
                print_json(&requests)?;
            } else if requests.is_empty() {
                println!("batch {batch}: no line is requested on chain");
            } else {
                for r in &requests {
                    print_line_request(r, false);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BatchCommand::Dispute {
            batch,
            line,
            input,
            results,
            deposit,
            tx,
        } => {
            let client = client(rpc, tx.keys.home.as_deref())?;
            let b = chain_batch(&client, batch).await?;
            let (_, requests) = read_input(&input)?;
            if batch::input_root(&requests) != b.input_root {
                bail!(
                    "{} is not batch {batch}'s input (its root is {})",
                    input.display(),
                    b.input_root
                );
            }
            if line >= b.lines {
                bail!(
                    "batch {batch} has lines 0 to {}; line {line} is not among them: there is \
                     nothing to dispute",
                    b.lines - 1
                );
            }
            let committed = b.results_root.ok_or_else(|| {
                anyhow!(
                    "batch {batch}'s results are not committed yet: there is nothing to dispute"
                )
            })?;
            let (_, results) = fetch_results(&client, &b, results.as_ref()).await?;
            let key = signing_key(&tx.from, &tx.keys)?;
            let deposit = deposit.parse().context("--deposit")?;
            // The line with its proofs: from the results when they are the committed ones, else
            // as the provider serves it. A false count goes first: the committed results prove
            // it at any line (a signed one is sent as a dispute), a served line at its own.
            let from_file = results.len() == requests.len()
                && batch::results_root(&results).ok() == Some(committed);
            let proven = if from_file {
                if let Some(why) = batch::miscount(&b, &results) {
                    let pick = signed_line(&b, &requests, &results, line);
                    let proven =
                        batch::proven_line(&requests, &results, pick).map_err(|e| anyhow!(e))?;
                    let messages = prove_miscount(&client, &key, &b, proven, why, deposit).await?;
                    return send_all(&client, &key, messages, &tx, json).await;
                }
                batch::proven_line(&requests, &results, line).map_err(|e| anyhow!(e))?
            } else {
                let other = match batch::results_root(&results) {
                    Ok(root) => {
                        format!("the results hash to root {root}, not to the committed {committed}")
                    }
                    Err(e) => format!("the results do not hash ({e})"),
                };
                let proven = served_line(&client, &b, line).await.map_err(|e| {
                    anyhow!(
                        "{other}, and line {line} as the provider serves it is unusable ({e}): \
                         ask for the line on chain with `hibana batch request-line {batch} \
                         --line {line}`"
                    )
                })?;
                match batch::line_miscount(&b, &proven) {
                    Some(why) => {
                        let messages =
                            prove_miscount(&client, &key, &b, proven, why, deposit).await?;
                        return send_all(&client, &key, messages, &tx, json).await;
                    }
                    // Without the committed results the line was never re-checked here: no
                    // deposit is put at stake on it.
                    None => bail!(
                        "{other}; line {line} as the provider serves it shows no false count. \
                         Have the provider's lines posted on chain and judged with `hibana batch \
                         spot-check {batch} --request`, or ask for this one with `hibana batch \
                         request-line {batch} --line {line}`"
                    ),
                }
            };
            let receipt = batch::check_line(&b, &proven)
                .map_err(|e| {
                    anyhow!(
                        "line {line} does not check out against the chain: {e} (ask for it on \
                         chain with `hibana batch request-line {batch} --line {line}`: a \
                         provider that cannot post it loses the batch)"
                    )
                })?
                .ok_or_else(|| {
                    anyhow!(
                        "line {line} has no answer with a receipt nor a signed refusal: there is \
                         nothing to dispute"
                    )
                })?;
            let message = Message::DisputeBatchLine(proven.to_dispute(batch, receipt, deposit));
            send(&client, &key, message, &tx, json).await
        }
    }
}

/// Lines [`signed_line`] looks through for one the provider signed validly.
const SIGNED_LINE_SCAN: usize = 64;

/// `line` if the results sign it validly (an answer or a refusal, signed by the provider over
/// that request and response), else the first such line among the first
/// [`SIGNED_LINE_SCAN`], else `line`: a signed line proves a false total as a dispute, with no
/// request and no deposit.
fn signed_line(b: &BatchJob, requests: &[BatchRequest], results: &[LineResult], line: u32) -> u32 {
    let proves_signed = |i: u32| {
        results
            .get(i as usize)
            .is_some_and(|r| r.signed().is_ok_and(|s| s.is_some()))
            && batch::proven_line(requests, results, i)
                .is_ok_and(|p| batch::line_miscount(b, &p).is_some())
    };
    std::iter::once(line)
        .chain((0..b.lines).take(SIGNED_LINE_SCAN))
        .find(|&i| proves_signed(i))
        .unwrap_or(line)
}

/// Line `line` of batch `b` as its provider serves it, with its proofs.
async fn served_line(client: &RpcClient, b: &BatchJob, line: u32) -> Result<batch::ProvenLine> {
    let max = hibana_roles::spot_check::MAX_LINE_BYTES;
    let body = provider_get(client, b, &format!("/lines/{line}"), max).await?;
    serde_json::from_slice(&body).context("the provider's line")
}

/// The messages that prove batch `b`'s provider's count false (why) with line `proven`, whose
/// proofs show it: a `DisputeBatchLine` for a signed line (no vote and no deposit taken: the
/// chain refutes the batch at once), else the line's request on chain (unless it is requested
/// already) and its post, in one transaction.
async fn prove_miscount(
    client: &RpcClient,
    key: &hibana_types::SecretKey,
    b: &BatchJob,
    proven: batch::ProvenLine,
    why: String,
    deposit: hibana_types::Amount,
) -> Result<Vec<Message>> {
    if key.public_key().address() == b.provider {
        bail!("{why}, but a provider cannot prove its own batch false");
    }
    let line = proven.line;
    eprintln!(
        "The provider's count is false ({why}); sending line {line}, which proves it on chain: \
         once included, the batch is refuted and its provider slashed."
    );
    if let Some(receipt) = proven.result.signed().map_err(|e| anyhow!(e))? {
        return Ok(vec![Message::DisputeBatchLine(
            proven.to_dispute(b.id, receipt, deposit),
        )]);
    }
    let post = proven.to_post(b.id).map_err(|e| anyhow!(e))?;
    let mut messages = Vec::new();
    match client.market_batch_line(b.id, line).await? {
        None => messages.push(Message::RequestBatchLine(RequestBatchLine {
            batch: b.id,
            line,
        })),
        Some(r) => eprintln!(
            "Line {line} was requested already by {}, who takes the prover's share of the slash.",
            r.requester
        ),
    }
    messages.push(Message::PostBatchLine(post));
    Ok(messages)
}

fn print_line_request(r: &hibana_types::records::market::LineRequest, whole: bool) {
    match &r.posted {
        None => println!(
            "batch {} line {}: requested by {} at height {}, due by height {}",
            r.batch, r.line, r.requester, r.requested_at, r.due
        ),
        Some(p) => {
            let what = match (whole, hibana_roles::recheck::is_refusal(&p.response)) {
                (false, _) => "",
                (true, true) => " (refused)",
                (true, false) => " (answered)",
            };
            println!(
                "batch {} line {}: posted by {} at height {}{what}",
                r.batch, r.line, p.by, p.posted_at
            );
            if whole {
                println!("  request:  {}", String::from_utf8_lossy(&p.request));
                println!("  response: {}", String::from_utf8_lossy(&p.response));
            }
        }
    }
}

fn print_check(check: &hibana_roles::spot_check::BatchCheck) {
    for l in &check.lines {
        println!(
            "batch {} line {}: {}{}",
            check.batch,
            l.line,
            l.verdict,
            l.why.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
        );
    }
    if let Some((line, outcome)) = &check.challenged {
        println!(
            "batch {}: line {line} challenged ({outcome}); follow it with `hibana challenge list`",
            check.batch
        );
    }
}

fn verdict_name(v: &hibana_roles::recheck::Judgement) -> &'static str {
    use hibana_roles::recheck::Judgement;
    match v {
        Judgement::Right => "right",
        Judgement::Wrong(_) => "wrong",
        Judgement::Unjudgeable(_) => "unjudgeable",
    }
}

fn verdict_why(v: &hibana_roles::recheck::Judgement) -> Option<String> {
    use hibana_roles::recheck::Judgement;
    match v {
        Judgement::Right => None,
        Judgement::Wrong(w) | Judgement::Unjudgeable(w) => Some(w.clone()),
    }
}

fn read_input(path: &PathBuf) -> Result<(String, Vec<BatchRequest>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let requests = batch::parse_input(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((text, requests))
}

async fn chain_batch(client: &RpcClient, id: u64) -> Result<BatchJob> {
    Ok(client
        .market_batch(id)
        .await?
        .ok_or_else(|| anyhow!("no batch {id} on chain"))?
        .batch)
}

/// GETs `/v1/batches/{id}{suffix}` from the batch's provider, reading at most `max` bytes.
async fn provider_get(
    client: &RpcClient,
    b: &BatchJob,
    suffix: &str,
    max: usize,
) -> Result<Vec<u8>> {
    let url = provider_url(client, b.provider).await?;
    let mut answer = http()?
        .get(format!("{url}/v1/batches/{}{suffix}", b.id))
        .send()
        .await
        .with_context(|| format!("asking the provider at {url}"))?;
    let ok = answer.status().is_success();
    let bar = transfer_bar(
        answer.content_length().unwrap_or(0),
        &format!("batch {}: downloading", b.id),
    );
    if suffix.is_empty() {
        // Progress polls are small and frequent: no bar.
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer
        .chunk()
        .await
        .context("reading the provider's answer")?
    {
        if body.len() + chunk.len() > max {
            bail!("the provider's answer is over {max} bytes");
        }
        bar.inc(chunk.len() as u64);
        body.extend_from_slice(&chunk);
    }
    bar.finish_and_clear();
    if !ok {
        bail!("the provider at {url}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// The provider's results: from `file`, or downloaded.
async fn fetch_results(
    client: &RpcClient,
    b: &BatchJob,
    file: Option<&PathBuf>,
) -> Result<(Vec<u8>, Vec<LineResult>)> {
    if b.results_root.is_none() {
        bail!(
            "batch {}'s results are not committed yet: wait with `hibana batch status {} --wait`",
            b.id,
            b.id
        );
    }
    let raw = match file {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => provider_get(client, b, "/results", MAX_RESULTS_BYTES).await?,
    };
    let text = String::from_utf8(raw.clone()).context("the results are not UTF-8")?;
    let results = batch::parse_results(&text).map_err(|e| anyhow!(e))?;
    Ok((raw, results))
}

async fn upload(client: &RpcClient, b: &BatchJob, text: String) -> Result<String> {
    let path = format!("/v1/batches/{}/input", b.id);
    put_file(client, b.provider, &path, text, "the batch").await
}

async fn wait_for(client: &RpcClient, id: u64, timeout: Duration, json: bool) -> Result<BatchJob> {
    let start = std::time::Instant::now();
    let mut b = chain_batch(client, id).await?;
    let bar = indicatif::ProgressBar::new(u64::from(b.lines));
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_message(format!("batch {id}: lines answered"));
    loop {
        if b.status != BatchStatus::Running {
            bar.set_position(u64::from(b.lines));
            bar.finish();
            return Ok(b);
        }
        if start.elapsed() > timeout {
            bar.abandon();
            bail!(
                "batch {id}'s results are not committed after {}s",
                timeout.as_secs()
            );
        }
        if let Ok(p) = provider_get(client, &b, "", MAX_PROGRESS_BYTES).await
            && let Ok(p) = serde_json::from_slice::<serde_json::Value>(&p)
        {
            if p["state"] == "failed" {
                bar.abandon();
                bail!("the provider's run of batch {id} failed: {}", p["error"]);
            }
            bar.set_position(p["done"].as_u64().unwrap_or(0));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        b = chain_batch(client, id).await?;
    }
}

fn print_batch(b: &BatchJob) {
    let status = match b.status {
        BatchStatus::Running => "running",
        BatchStatus::Done => "done",
        BatchStatus::Refuted => "refuted",
        BatchStatus::Settled => "settled",
        BatchStatus::Expired => "expired",
    };
    println!(
        "batch {} on lease {}: {status}, {} lines (provider {})",
        b.id, b.lease, b.lines, b.provider
    );
    println!("  input root {}", b.input_root);
    if let Some(root) = b.results_root {
        println!(
            "  results root {root}: {} answered, committed at height {}; lines can be challenged until height {}",
            b.answered,
            b.committed_at,
            b.dispute_until()
        );
    }
    if b.price_per_line.0 > 0 {
        let when = match b.status {
            BatchStatus::Running => "held until its lines can no longer be challenged".to_string(),
            BatchStatus::Done => format!("paid for the answered lines at height {}", b.pay_at()),
            BatchStatus::Settled => "paid for the answered lines, the rest refunded".to_string(),
            BatchStatus::Refuted | BatchStatus::Expired => "refunded to the client".to_string(),
        };
        println!(
            "  {} per answered line, {} in escrow: {when}",
            b.price_per_line,
            b.escrow()
        );
    }
    if let Some(line) = b.refuted_line {
        println!("  line {line} was upheld as wrong: the provider was slashed, the lease closed");
    }
}
