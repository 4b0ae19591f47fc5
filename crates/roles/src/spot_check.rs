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
//! decline to serve the ones it got wrong. Such a line is logged `unavailable` and costs the
//! provider nothing yet: the client, who holds the whole results file, can still check and
//! dispute every line. Each check is appended to a JSON-lines log with its seed.

use std::{collections::BTreeMap, io::Write, path::PathBuf, time::Duration};

use hibana_rpc::RpcClient;
use hibana_types::records::market::{BatchJob, BatchStatus, DISPUTE_WINDOW_BLOCKS};
use hibana_types::{Amount, DisputeBatchLine, Message, SecretKey};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use crate::batch::{ProvenLine, check_line};
use crate::recheck::{Judgement, LocalModels};

/// Largest line answer read from a provider: a request and a response fit in a challenge.
const MAX_LINE_BYTES: usize = 1 << 20;

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
}

/// One line's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCheck {
    /// The line.
    pub line: u32,
    /// `right`, `wrong`, `refused` (the provider answered with an error, which is not re-run),
    /// `unjudgeable`, `undisputable` (an answer too long for a challenge), or `unavailable`
    /// (no line that checks out could be had: the provider did not serve it, served it with
    /// proofs or a receipt that do not check, or the chain did not answer).
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
}

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
    pub async fn pass(&mut self, local: &LocalModels) -> Vec<BatchCheck> {
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
            if let Err(e) = self.log(&check) {
                tracing::warn!(batch = id, "cannot log a spot-check: {e}");
            }
            done.push(check);
        }
        done
    }

    /// Checks `lines` random lines of committed batch `b`.
    pub async fn check(&self, b: &BatchJob, local: &LocalModels) -> BatchCheck {
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
        };
        for line in lines {
            let (check, dispute) = self.check_line(b, line, local).await;
            out.lines.push(check);
            if let Some(dispute) = dispute {
                let (sent, outcome) = match self.client.send(&self.key, vec![dispute], None).await {
                    Ok(r) => (r.is_success(), format!("{:?}", r.outcome)),
                    Err(e) => (false, e.to_string()),
                };
                tracing::info!(batch = b.id, line, %outcome, "challenged a wrong batch line");
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
        local: &LocalModels,
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
        if !crate::batch::disputable_response(proven.result.response.as_bytes()) {
            // No challenge could carry it, so re-running it would change nothing.
            let why = "the response is larger than a challenge carries".to_string();
            return (verdict("undisputable", Some(why)), None);
        }
        let Some(model) = local.get(&receipt.body.model_hash) else {
            let why = format!("model {} is not installed here", receipt.body.model_hash);
            return (verdict("unjudgeable", Some(why)), None);
        };
        let request = proven.body.clone().into_bytes();
        let response = proven.result.response.clone().into_bytes();
        let judged = {
            let (request, response) = (request.clone(), response.clone());
            tokio::task::spawn_blocking(move || model.judge(&request, &response)).await
        };
        match judged {
            Ok(Judgement::Right) => (verdict("right", None), None),
            Ok(Judgement::Unjudgeable(why)) => (verdict("unjudgeable", Some(why)), None),
            Err(e) => (verdict("unjudgeable", Some(e.to_string())), None),
            Ok(Judgement::Wrong(why)) => {
                let dispute = Message::DisputeBatchLine(DisputeBatchLine {
                    batch: b.id,
                    line,
                    receipt,
                    request,
                    response,
                    input_proof: proven.input_proof,
                    result_proof: proven.result_proof,
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
