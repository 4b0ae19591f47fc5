//! Validators' spot-checks of batch inference jobs: a validator samples lines of the batches
//! committed on chain, asks each batch's provider for those lines with their proofs
//! (`GET /v1/batches/{id}/lines/{line}`), checks them against the committed roots and the
//! receipts' signatures, re-runs the answered ones on its own copy of the model, and challenges
//! a wrong one (`DisputeBatchLine`) for the chain's validators to judge.
//!
//! Checking costs the validator a model run and earns it nothing unless a line is wrong, so it
//! is bounded: at most `lines` lines of a batch, a `share` of the batches, each batch once
//! (a batch whose provider serves none of the lines is tried on [`ATTEMPTS`] passes). Which
//! lines it picks is drawn from local randomness when it checks, after the provider has
//! committed, so a provider cannot steer the draw; but it sees each line asked for, and may
//! decline to serve the ones it got wrong. With `request` set, the checker then asks for those
//! lines on chain (`RequestBatchLine`, a deposit each): the provider must post them within
//! `LINE_ANSWER_BLOCKS` or lose the batch and part of its bond, and a posted line is judged
//! like a served one on a later pass (logged with `on_chain`). Each check is appended to a
//! JSON-lines log with its seed.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use hibana_rpc::RpcClient;
use hibana_types::records::market::{BatchJob, BatchStatus, DISPUTE_WINDOW_BLOCKS, PostedLine};
use hibana_types::{
    Amount, CountStep, DisputeBatchLine, InferenceReceipt, MerkleStep, Message, RequestBatchLine,
    SecretKey,
};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use crate::batch::{ProvenLine, check_line};
use crate::recheck::{Judgement, LocalModels};

/// Largest line answer read from a provider: a request and a response fit in a challenge.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// How much a validator spot-checks.
#[derive(Debug, Clone)]
pub struct SpotCheckConfig {
    /// Lines re-run per batch.
    pub lines: usize,
    /// Share (0 to 1) of the committed batches it checks.
    pub share: f64,
    /// Deposit of each challenge it opens.
    pub deposit: Amount,
    /// JSON-lines file every check is appended to.
    pub log: PathBuf,
    /// Ask on chain for the lines the provider does not serve.
    pub request: bool,
}

/// One line's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCheck {
    /// The line.
    pub line: u32,
    /// `right`, `wrong` (a wrong answer, or a refusal the provider had no reason for),
    /// `refused` (a refusal not shown wrong: the request is invalid, or names a model the
    /// provider does not declare, or the refusal cannot be judged here, said in `why`),
    /// `unjudgeable`, `undisputable` (an answer too long for a challenge), `unavailable`
    /// (no line that checks out could be had: the provider did not serve it, served it with
    /// proofs or a receipt that do not check, or the chain did not answer), `requested` (asked
    /// for on chain after that), or `withheld` (requested and never posted: the chain refuted
    /// the batch and slashed the provider).
    pub verdict: String,
    /// Why, when it is not `right`.
    pub why: Option<String>,
}

/// One batch's check, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCheck {
    /// The batch.
    pub batch: u64,
    /// Its provider.
    pub provider: String,
    /// The seed the lines were drawn with.
    pub seed: u64,
    /// The lines checked.
    pub lines: Vec<LineCheck>,
    /// The line challenged, and the challenge's transaction outcome.
    pub challenged: Option<(u32, String)>,
    /// Whether the lines were read from the chain, posted after a request.
    #[serde(default)]
    pub on_chain: bool,
}

/// A validator's spot-checker: which batches it has seen and which wait for their results.
#[derive(Debug)]
pub struct SpotChecker {
    client: RpcClient,
    key: SecretKey,
    config: SpotCheckConfig,
    /// The next batch id not yet looked at.
    next: u64,
    /// Batches seen whose results are not committed yet, or whose provider served no line
    /// yet, with the passes that found it so.
    waiting: BTreeMap<u64, u32>,
    /// Lines its provider did not serve, by batch, to request once the batch is
    /// [`REQUEST_GRACE_BLOCKS`] past its commit.
    unserved: BTreeMap<u64, Vec<u32>>,
    /// Lines requested on chain and not yet posted or withheld.
    requested: BTreeSet<(u64, u32)>,
}

/// Blocks after a batch's commit before a checker following the chain asks on chain for the
/// lines its provider did not serve: a provider down for a moment gets that long to come back
/// before it is made to post (and someone who challenges the batch meanwhile spares the
/// deposit).
pub const REQUEST_GRACE_BLOCKS: u64 = 30;

/// Passes a batch whose provider serves none of the sampled lines is tried again.
const ATTEMPTS: u32 = 3;

impl SpotChecker {
    /// A checker that signs its challenges with `key`.
    pub fn new(client: RpcClient, key: SecretKey, config: SpotCheckConfig) -> SpotChecker {
        SpotChecker {
            client,
            key,
            config,
            next: 0,
            waiting: BTreeMap::new(),
            unserved: BTreeMap::new(),
            requested: BTreeSet::new(),
        }
    }

    /// Starts after the batches already on chain: a checker started late checks only what is
    /// committed from now on.
    pub async fn skip_to_now(&mut self) {
        while let Ok(Some(_)) = self.client.market_batch(self.next).await {
            self.next += 1;
        }
    }

    /// Looks at the batches submitted since the last pass and those still waiting for results;
    /// checks each newly committed one (with probability `share`); returns the checks made.
    pub async fn pass(&mut self, local: &Arc<LocalModels>) -> Vec<BatchCheck> {
        while let Ok(Some(view)) = self.client.market_batch(self.next).await {
            self.waiting.insert(view.batch.id, 0);
            self.next += 1;
        }
        let share = if self.config.share.is_finite() {
            self.config.share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let mut done = Vec::new();
        for (id, attempts) in self.waiting.clone() {
            let Ok(Some(view)) = self.client.market_batch(id).await else {
                continue;
            };
            let b = view.batch;
            match b.status {
                // A batch never committed within a dispute window of its submission is dropped
                // (its lease may have closed): a cheap submission cannot hold the checker.
                BatchStatus::Running
                    if view.height <= b.submitted_at.saturating_add(DISPUTE_WINDOW_BLOCKS) =>
                {
                    continue;
                }
                BatchStatus::Done if view.height <= b.dispute_until() => {}
                // Refuted already, past its dispute window, or never committed: nothing to
                // check.
                _ => {
                    self.waiting.remove(&id);
                    continue;
                }
            }
            self.waiting.remove(&id);
            if attempts == 0 && !rand::thread_rng().gen_bool(share) {
                continue;
            }
            let check = self.check(&b, local).await;
            let unserved = check.lines.iter().all(|l| l.verdict == "unavailable");
            if unserved && attempts + 1 < ATTEMPTS {
                // The provider may be down for a moment: try again on a later pass.
                self.waiting.insert(id, attempts + 1);
                continue;
            }
            let unserved: Vec<u32> = check
                .lines
                .iter()
                .filter(|l| l.verdict == "unavailable")
                .map(|l| l.line)
                .collect();
            if self.config.request && !unserved.is_empty() {
                self.unserved.insert(id, unserved);
            }
            if let Err(e) = self.log(&check) {
                tracing::warn!(batch = id, "cannot log a spot-check: {e}");
            }
            done.push(check);
        }
        self.request_after_grace().await;
        for check in self.follow_requests(local).await {
            if let Err(e) = self.log(&check) {
                tracing::warn!(batch = check.batch, "cannot log a spot-check: {e}");
            }
            done.push(check);
        }
        done
    }

    /// Requests the unserved lines of the batches now [`REQUEST_GRACE_BLOCKS`] past their
    /// commit that are still disputable; forgets those of batches that are not.
    async fn request_after_grace(&mut self) {
        for (id, lines) in self.unserved.clone() {
            let Ok(Some(view)) = self.client.market_batch(id).await else {
                continue;
            };
            let b = view.batch;
            if b.status != BatchStatus::Done || view.height > b.request_until() {
                self.unserved.remove(&id);
                continue;
            }
            if view.height < b.committed_at.saturating_add(REQUEST_GRACE_BLOCKS) {
                continue;
            }
            self.unserved.remove(&id);
            let mut check = BatchCheck {
                batch: id,
                provider: b.provider.to_string(),
                seed: 0,
                lines: lines
                    .into_iter()
                    .map(|line| LineCheck {
                        line,
                        verdict: "unavailable".into(),
                        why: None,
                    })
                    .collect(),
                challenged: None,
                on_chain: false,
            };
            self.request_unserved(&b, &mut check).await;
            if let Err(e) = self.log(&check) {
                tracing::warn!(batch = id, "cannot log a spot-check: {e}");
            }
        }
    }

    /// Lines requested on chain that are neither posted nor withheld yet.
    pub fn pending_requests(&self) -> usize {
        self.requested.len()
    }

    /// With `request` set, asks on chain for the lines of `check` its provider did not serve
    /// (while the batch takes requests), marking them `requested`.
    pub async fn request_unserved(&mut self, b: &BatchJob, check: &mut BatchCheck) {
        if !self.config.request {
            return;
        }
        for l in check
            .lines
            .iter_mut()
            .filter(|l| l.verdict == "unavailable")
        {
            let message = Message::RequestBatchLine(RequestBatchLine {
                batch: b.id,
                line: l.line,
            });
            match self.client.send(&self.key, vec![message], None).await {
                Ok(r) if r.is_success() => {
                    tracing::info!(
                        batch = b.id,
                        line = l.line,
                        "asked for an unserved line on chain"
                    );
                    self.requested.insert((b.id, l.line));
                    l.verdict = "requested".into();
                }
                Ok(r) => {
                    let why = format!("{:?}", r.outcome);
                    if why.contains("requested already") {
                        // Someone asked first: the line is followed all the same.
                        self.requested.insert((b.id, l.line));
                        l.verdict = "requested".into();
                    } else {
                        tracing::warn!(batch = b.id, line = l.line, %why, "the line request failed");
                    }
                }
                Err(e) => tracing::warn!(batch = b.id, line = l.line, "the line request: {e}"),
            }
        }
    }

    /// Judges the requested lines posted since the last call and reports the withheld ones,
    /// one check per batch; lines still awaited stay requested.
    pub async fn follow_requests(&mut self, local: &Arc<LocalModels>) -> Vec<BatchCheck> {
        let batches: BTreeSet<u64> = self.requested.iter().map(|(b, _)| *b).collect();
        let mut out = Vec::new();
        for id in batches {
            let Ok(Some(view)) = self.client.market_batch(id).await else {
                continue;
            };
            let b = view.batch;
            let mut check = BatchCheck {
                batch: id,
                provider: b.provider.to_string(),
                seed: 0,
                lines: Vec::new(),
                challenged: None,
                on_chain: true,
            };
            let lines: Vec<u32> = self
                .requested
                .iter()
                .filter(|(b, _)| *b == id)
                .map(|(_, l)| *l)
                .collect();
            for line in lines {
                // One line at a time: a list could be long, or hold many large lines.
                let Ok(found) = self.client.market_batch_line(id, line).await else {
                    continue;
                };
                let (verdict, dispute) = match &found {
                    Some(r) => match &r.posted {
                        None => continue,
                        Some(posted) => self.judge_posted(&b, line, posted, local).await,
                    },
                    None if b.refuted_line == Some(line) => (
                        LineCheck {
                            line,
                            verdict: "withheld".into(),
                            why: Some(
                                "the batch was refuted at this line: requested on chain and \
                                 never posted, or posted proving its provider's count false"
                                    .into(),
                            ),
                        },
                        None,
                    ),
                    None => (
                        LineCheck {
                            line,
                            verdict: "unavailable".into(),
                            why: Some(match b.refuted_line {
                                Some(other) => format!(
                                    "the batch was refuted at line {other} before this one was \
                                     posted"
                                ),
                                None => "the request ended without a posted line".into(),
                            }),
                        },
                        None,
                    ),
                };
                self.requested.remove(&(id, line));
                check.lines.push(verdict);
                if let Some(dispute) = dispute
                    && check.challenged.is_none()
                {
                    check.challenged = Some((line, self.challenge(id, line, dispute).await.1));
                }
            }
            if !check.lines.is_empty() {
                out.push(check);
            }
        }
        out
    }

    async fn judge_posted(
        &self,
        b: &BatchJob,
        line: u32,
        posted: &PostedLine,
        local: &Arc<LocalModels>,
    ) -> (LineCheck, Option<Message>) {
        match &posted.receipt {
            None => (
                LineCheck {
                    line,
                    verdict: "refused".into(),
                    why: None,
                },
                None,
            ),
            Some(receipt) => {
                self.judge(
                    b,
                    line,
                    receipt.clone(),
                    (posted.request.clone(), posted.response.clone()),
                    (posted.input_proof.clone(), posted.result_proof.clone()),
                    local,
                )
                .await
            }
        }
    }

    /// Sends a challenge; returns whether it was accepted, and its outcome.
    async fn challenge(&self, batch: u64, line: u32, dispute: Message) -> (bool, String) {
        let (sent, outcome) = match self.client.send(&self.key, vec![dispute], None).await {
            Ok(r) => (r.is_success(), format!("{:?}", r.outcome)),
            Err(e) => (false, e.to_string()),
        };
        tracing::info!(batch, line, %outcome, "challenged a wrong batch line");
        (sent, outcome)
    }

    /// Checks `lines` random lines of committed batch `b`.
    pub async fn check(&self, b: &BatchJob, local: &Arc<LocalModels>) -> BatchCheck {
        let seed: u64 = rand::random();
        let mut lines: Vec<u32> = (0..b.lines).collect();
        lines.shuffle(&mut StdRng::seed_from_u64(seed));
        lines.truncate(self.config.lines);
        lines.sort_unstable();
        let mut out = BatchCheck {
            batch: b.id,
            provider: b.provider.to_string(),
            seed,
            lines: Vec::new(),
            challenged: None,
            on_chain: false,
        };
        for line in lines {
            let (check, dispute) = self.check_line(b, line, local).await;
            out.lines.push(check);
            if let Some(dispute) = dispute {
                let (sent, outcome) = self.challenge(b.id, line, dispute).await;
                out.challenged = Some((line, outcome));
                if sent {
                    // One upheld challenge refutes the batch: the other lines need no check.
                    break;
                }
            }
        }
        out
    }

    async fn check_line(
        &self,
        b: &BatchJob,
        line: u32,
        local: &Arc<LocalModels>,
    ) -> (LineCheck, Option<Message>) {
        let verdict = |v: &str, why: Option<String>| LineCheck {
            line,
            verdict: v.into(),
            why,
        };
        let proven = match self.fetch_line(b, line).await {
            Ok(p) => p,
            Err(e) => return (verdict("unavailable", Some(e)), None),
        };
        let receipt = match check_line(b, &proven) {
            Ok(Some(r)) => r,
            Ok(None) => return (verdict("refused", None), None),
            Err(e) => return (verdict("unavailable", Some(e)), None),
        };
        self.judge(
            b,
            line,
            receipt,
            (
                proven.body.into_bytes(),
                proven.result.response.into_bytes(),
            ),
            (proven.input_proof, proven.result_proof),
            local,
        )
        .await
    }

    /// Re-runs an answered line whose proofs checked out on the local model; a wrong one comes
    /// with the challenge to send.
    async fn judge(
        &self,
        b: &BatchJob,
        line: u32,
        receipt: InferenceReceipt,
        (request, response): (Vec<u8>, Vec<u8>),
        (input_proof, result_proof): (Vec<MerkleStep>, Vec<CountStep>),
        local: &Arc<LocalModels>,
    ) -> (LineCheck, Option<Message>) {
        let verdict = |v: &str, why: Option<String>| LineCheck {
            line,
            verdict: v.into(),
            why,
        };
        if !crate::batch::disputable_response(&response) {
            // No challenge could carry it, so re-running it would change nothing.
            let why = "the response is larger than a challenge carries".to_string();
            return (verdict("undisputable", Some(why)), None);
        }
        // A signed refusal is judged against the models the provider declared at the commit.
        let refusal = crate::recheck::is_signed_refusal(&receipt, &response);
        let declared = b.models.clone();
        let judged = {
            let (request, response, receipt) = (request.clone(), response.clone(), receipt.clone());
            let local = local.clone();
            tokio::task::spawn_blocking(move || {
                crate::recheck::judge_response(&local, &declared, &receipt, &request, &response)
            })
            .await
        };
        let right = if refusal { "refused" } else { "right" };
        match judged {
            Ok(Judgement::Right) => (verdict(right, None), None),
            // A refusal not shown wrong stands as a refusal.
            Ok(Judgement::Unjudgeable(why)) if refusal => (verdict("refused", Some(why)), None),
            Ok(Judgement::Unjudgeable(why)) => (verdict("unjudgeable", Some(why)), None),
            Err(e) => (verdict("unjudgeable", Some(e.to_string())), None),
            Ok(Judgement::Wrong(why)) => {
                let dispute = Message::DisputeBatchLine(DisputeBatchLine {
                    batch: b.id,
                    line,
                    receipt,
                    request,
                    response,
                    input_proof,
                    result_proof,
                    deposit: self.config.deposit,
                });
                (verdict("wrong", Some(why)), Some(dispute))
            }
        }
    }

    /// The provider's line `line` of batch `b`, read up to [`MAX_LINE_BYTES`].
    async fn fetch_line(&self, b: &BatchJob, line: u32) -> Result<ProvenLine, String> {
        let p = self
            .client
            .market_provider(b.provider)
            .await
            .map_err(|e| format!("chain: {e}"))?
            .ok_or_else(|| format!("provider {} left the market", b.provider))?;
        let url = format!(
            "{}/v1/batches/{}/lines/{line}",
            p.endpoint.trim_end_matches('/'),
            b.id
        );
        let answer = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("asking {url}: {e}"))?;
        let ok = answer.status().is_success();
        let body = crate::provider::jobs::read_capped(answer, MAX_LINE_BYTES).await?;
        if !ok {
            return Err(format!(
                "the provider answered: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        serde_json::from_slice(&body).map_err(|e| format!("the provider's line: {e}"))
    }

    fn log(&self, check: &BatchCheck) -> std::io::Result<()> {
        if let Some(dir) = self.config.log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.config.log)?;
        writeln!(f, "{}", serde_json::to_string(check)?)
    }
}
