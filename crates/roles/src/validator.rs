//! The validator role of the model network: every round it challenges each miner of its subnet,
//! scores the answers, and sets weights on chain by commit-reveal.
//!
//! Scoring (each part in [0, 1]; documented in the README):
//! - `chat` / `text-generation`: challenges with answers the validator can check, generated
//!   fresh each round from a seeded RNG (arithmetic, extraction of a code from a passage,
//!   format following). `correctness` is the share answered right. A sample of greedy
//!   requests is re-executed on the validator's own copy of the registered model (found by
//!   content hash among the installed models): `reexecution` is the agreement of the texts
//!   (common prefix over length), which tells whether the served model is the registered one.
//! - `embeddings`: fresh sentences; `correctness` is the mean cosine between the miner's vectors
//!   and the validator's own.
//! - `audit`: contracts generated from the round's seed with known vulnerabilities planted in
//!   them ([`hibana_audit::challenge`]); `correctness` is the F1 score (precision and recall) of
//!   the miner's findings against the planted flaws, over all the round's contracts.
//! - `speed = 1 / (1 + best latency in seconds)`; `price = 0.9 + 0.1 × cheapest / own price`.
//! - score = (0.6 × correctness + 0.25 × reexecution + 0.15 × speed) × price, with
//!   reexecution replaced by correctness when the validator lacks the model. Weights are
//!   proportional to score², so clear differences in quality become clear differences in pay.
//!
//! Each round's scores, weights and transactions are appended to a JSON-lines history file, with
//! the round's seed, so a round can be reproduced.

use std::{
    io::Write,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use hibana_ai::{
    catalog,
    text::{ChatMessage, GenerateParams},
};
use hibana_rpc::{RpcClient, SubnetView};
use hibana_types::records::subnets::{Neuron, apportion};
use hibana_types::{
    CommitWeights, Hash, Message, NeuronRole, Receipt, RevealWeights, SecretKey, WEIGHTS_TOTAL,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    endpoints::EndpointPolicy,
    limits,
    recheck::{self, Local, LocalModels},
};

/// How a validator runs.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// JSON-RPC URL of a node.
    pub rpc: String,
    /// Subnet id or name.
    pub subnet: String,
    /// Challenges sent to each miner per round.
    pub challenges: usize,
    /// Time allowed for one answer.
    pub timeout: Duration,
    /// JSON-lines file that keeps every round's scores.
    pub history: PathBuf,
    /// Folder of installed models, for re-execution and reference embeddings.
    pub models_dir: Option<PathBuf>,
    /// Stop after this many rounds (run forever if `None`).
    pub rounds: Option<u64>,
    /// Which addresses a miner's endpoint may have; a miner at another is scored 0.
    pub miner_endpoints: EndpointPolicy,
    /// Share (0 to 1) of the text answers it scores that it also re-checks by teacher forcing on
    /// its own copy of the model; a wrong one becomes a challenge.
    pub recheck_share: f64,
    /// Deposit of each challenge it opens.
    pub challenge_deposit: hibana_types::Amount,
}

/// A request sent to a miner, the exact bytes of both sides and the receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The request bytes.
    pub request: Vec<u8>,
    /// The response bytes.
    pub response: Vec<u8>,
    /// The miner's receipt, if it sent one.
    pub receipt: Option<hibana_types::InferenceReceipt>,
}

/// One checkable challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// `arithmetic`, `extraction` or `format`.
    pub kind: String,
    /// The prompt sent to the miner.
    pub prompt: String,
    /// What a right answer contains.
    pub expected: String,
}

/// A miner's score in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerScore {
    /// The miner's uid.
    pub uid: u16,
    /// Its endpoint.
    pub endpoint: String,
    /// Share of right answers (or mean cosine for embeddings).
    pub correctness: f64,
    /// Agreement with the validator's own greedy re-execution, if it could re-execute.
    pub reexecution: Option<f64>,
    /// Best latency in milliseconds among the answers it gave (what the miner can do, without
    /// the spikes that other load on the machine causes).
    pub latency_ms: Option<f64>,
    /// Requests that failed (error, timeout, malformed answer).
    pub failures: usize,
    /// Why they failed: the distinct reasons, in the order first seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Its price per token, from its health report.
    pub price_per_token: Option<u128>,
    /// The combined score.
    pub score: f64,
    /// Answers its re-check found wrong, and why (each also challenged on chain when the miner
    /// is a market provider).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrong_answers: Vec<String>,
    /// The exchanges behind `wrong_answers`, to challenge.
    #[serde(skip)]
    pub suspicious: Vec<Exchange>,
}

impl MinerScore {
    /// Counts a failed request and keeps its reason.
    fn fail(&mut self, reason: String) {
        self.failures += 1;
        if !self.errors.contains(&reason) {
            self.errors.push(reason);
        }
    }
}

/// Makes `n` challenges from a seed.
pub fn challenges(seed: u64, n: usize) -> Vec<Challenge> {
    const WORDS: [&str; 12] = [
        "apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "rocket", "garden",
        "silver", "window", "planet",
    ];
    const NAMES: [&str; 8] = [
        "Mara", "Tomas", "Ines", "Kenji", "Lucia", "Omar", "Freya", "Ravi",
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|k| match k % 3 {
            0 => {
                let (a, b) = (rng.gen_range(2..50u32), rng.gen_range(2..50u32));
                Challenge {
                    kind: "arithmetic".into(),
                    prompt: format!("What is {a} plus {b}? Reply with the number only."),
                    expected: (a + b).to_string(),
                }
            }
            1 => {
                let name = NAMES[rng.gen_range(0..NAMES.len())];
                let code = rng.gen_range(1000..10000u32);
                let word = WORDS[rng.gen_range(0..WORDS.len())];
                Challenge {
                    kind: "extraction".into(),
                    prompt: format!(
                        "Passage: {name} keeps the {word} in locker number {code}. \
                         Question: what is the locker number? Reply with the number only."
                    ),
                    expected: code.to_string(),
                }
            }
            _ => {
                let word = WORDS[rng.gen_range(0..WORDS.len())];
                Challenge {
                    kind: "format".into(),
                    prompt: format!("Repeat this word exactly, in capital letters: {word}"),
                    expected: word.to_uppercase(),
                }
            }
        })
        .collect()
}

/// Whether `answer` is right: it contains the expected text as a whole token.
pub fn is_right(challenge: &Challenge, answer: &str) -> bool {
    answer
        .split(|c: char| !c.is_alphanumeric())
        .any(|token| token == challenge.expected)
}

/// Agreement of two texts: length of their common prefix over the longer length.
pub fn agreement(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    common as f64 / longest as f64
}

/// The combined score of the parts (see the module documentation).
pub fn combine(
    correctness: f64,
    reexecution: Option<f64>,
    latency_ms: Option<f64>,
    price: f64,
) -> f64 {
    let speed = latency_ms.map_or(0.0, |ms| 1.0 / (1.0 + ms / 1000.0));
    let reexec = reexecution.unwrap_or(correctness);
    (0.6 * correctness + 0.25 * reexec + 0.15 * speed) * price
}

/// Weights in parts per million, proportional to score², summing to exactly one million.
pub fn weights_from_scores(scores: &[MinerScore]) -> Vec<(u16, u32)> {
    let raw: Vec<u64> = scores
        .iter()
        .map(|s| (s.score.clamp(0.0, 1.0).powi(2) * 1e9) as u64)
        .collect();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by_key(|&k| scores[k].uid);
    let sorted: Vec<u64> = order.iter().map(|&k| raw[k]).collect();
    apportion(u128::from(WEIGHTS_TOTAL), &sorted)
        .into_iter()
        .zip(&order)
        .filter(|(w, _)| *w > 0)
        .map(|(w, &k)| (scores[k].uid, w as u32))
        .collect()
}

/// An error with the causes under it, as in `error sending request: connection closed`.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn best(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().min_by(f64::total_cmp)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na * nb)).max(0.0)
    }
}

/// A running validator.
pub struct Validator {
    config: ValidatorConfig,
    key: SecretKey,
    client: RpcClient,
    http: reqwest::Client,
    local: Arc<LocalModels>,
    /// Challenges it voted on.
    voted: std::collections::BTreeSet<u64>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Validator({})", self.key.public_key().address())
    }
}

/// What one round did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number (1-based).
    pub round: u64,
    /// Subnet id.
    pub subnet: u32,
    /// Seed of the round's challenges.
    pub seed: u64,
    /// Height when scoring started.
    pub height: u64,
    /// Scores of every miner.
    pub scores: Vec<MinerScore>,
    /// Weights revealed (uid, parts per million).
    pub weights: Vec<(u16, u32)>,
    /// Commit transaction.
    pub commit_tx: Option<Hash>,
    /// Reveal transaction.
    pub reveal_tx: Option<Hash>,
    /// Why the round set no weights, if it did not.
    pub skipped: Option<String>,
}

impl Validator {
    /// A validator signing with `key`.
    pub fn new(config: ValidatorConfig, key: SecretKey) -> anyhow::Result<Validator> {
        let local = Arc::new(LocalModels::new(
            config
                .models_dir
                .clone()
                .unwrap_or_else(catalog::models_dir),
        ));
        let client = RpcClient::new(&config.rpc)?;
        let http = config.miner_endpoints.client(Duration::from_secs(2))?;
        Ok(Validator {
            config,
            key,
            client,
            http,
            local,
            voted: Default::default(),
        })
    }

    async fn view(&self) -> anyhow::Result<SubnetView> {
        self.client
            .subnet(&self.config.subnet)
            .await?
            .ok_or_else(|| anyhow::anyhow!("subnet {:?} does not exist", self.config.subnet))
    }

    /// Runs rounds until the configured number is reached (or forever).
    pub async fn run(&mut self) -> anyhow::Result<()> {
        let address = self.key.public_key().address();
        let view = self.view().await?;
        let me = view
            .neurons
            .iter()
            .find(|n| n.account == address)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{address} is not a neuron of subnet {}: register first with `hibana neuron register --subnet {} --role validator`",
                    view.subnet.id,
                    view.subnet.id
                )
            })?;
        if me.role != NeuronRole::Validator {
            anyhow::bail!(
                "{address} is a miner of subnet {}, not a validator",
                view.subnet.id
            );
        }
        let stake = self.client.account_verified(&address).await?.stake;
        if stake.0 == 0 {
            tracing::warn!(%address, "no stake: the weights will not count until you stake (`hibana tx stake`)");
        }
        let mut round = 0u64;
        loop {
            round += 1;
            let record = self.round(round).await?;
            tracing::info!(
                round,
                weights = ?record.weights,
                skipped = ?record.skipped,
                "validator round done"
            );
            self.append_history(&record)?;
            if self.config.rounds.is_some_and(|n| round >= n) {
                return Ok(());
            }
            if record.skipped.is_some() {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }

    fn append_history(&self, record: &RoundRecord) -> anyhow::Result<()> {
        if let Some(dir) = self.config.history.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.config.history)?;
        writeln!(file, "{}", serde_json::to_string(record)?)?;
        Ok(())
    }

    /// Scores every miner once and sets weights by commit-reveal.
    pub async fn round(&mut self, round: u64) -> anyhow::Result<RoundRecord> {
        let view = self.view().await?;
        let seed: u64 = rand::thread_rng().r#gen();
        let miners: Vec<Neuron> = view
            .neurons
            .iter()
            .filter(|n| n.role == NeuronRole::Miner)
            .cloned()
            .collect();
        let mut record = RoundRecord {
            round,
            subnet: view.subnet.id,
            seed,
            height: view.height,
            scores: Vec::new(),
            weights: Vec::new(),
            commit_tx: None,
            reveal_tx: None,
            skipped: None,
        };
        if miners.is_empty() {
            record.skipped = Some("the subnet has no miners".into());
            return Ok(record);
        }
        let task = view.subnet.task.clone();
        let mut scores = Vec::new();
        // One miner at a time, so that no miner's latency includes the load of another's test.
        for m in &miners {
            let local = self.local_model(&m.model);
            scores.push(self.score_miner(m, &task, seed, local).await);
        }
        for s in &mut scores {
            for exchange in std::mem::take(&mut s.suspicious) {
                self.challenge(view.subnet.id, exchange).await;
            }
        }
        self.vote_on_challenges(view.subnet.id).await;
        // Price: the cheapest miner gets 1, the dearest at least 0.9.
        let cheapest = scores.iter().filter_map(|s| s.price_per_token).min();
        for s in &mut scores {
            let price = match (cheapest, s.price_per_token) {
                (Some(c), Some(p)) => 0.9 + 0.1 * (c as f64 + 1.0) / (p as f64 + 1.0),
                _ => 1.0,
            };
            s.score = combine(s.correctness, s.reexecution, s.latency_ms, price);
        }
        record.weights = weights_from_scores(&scores);
        record.scores = scores;
        if record.weights.is_empty() {
            record.skipped = Some("no miner earned a score".into());
            return Ok(record);
        }
        let mut salt = [0u8; 32];
        rand::thread_rng().fill(&mut salt);
        let reveal = RevealWeights {
            subnet: view.subnet.id,
            weights: record.weights.clone(),
            salt: Hash(salt),
        };
        let commitment = reveal.commitment(&self.key.public_key().address());
        let receipt = self
            .submit(Message::CommitWeights(CommitWeights {
                subnet: view.subnet.id,
                commitment,
            }))
            .await?;
        record.commit_tx = Some(receipt.tx_hash);
        if let hibana_types::TxOutcome::Failed(reason) = &receipt.outcome {
            record.skipped = Some(format!("commit failed: {reason}"));
            return Ok(record);
        }
        let reveal_from = receipt.height + view.subnet.params.commit_reveal_interval;
        loop {
            if self.client.status().await?.height + 1 >= reveal_from {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let receipt = self.submit(Message::RevealWeights(reveal)).await?;
        record.reveal_tx = Some(receipt.tx_hash);
        if let hibana_types::TxOutcome::Failed(reason) = &receipt.outcome {
            record.skipped = Some(format!("reveal failed: {reason}"));
        }
        Ok(record)
    }

    /// Challenges a receipted answer its re-check found wrong. A miner that is not a market
    /// provider has no bond to slash: the chain refuses the challenge, and nothing is lost.
    async fn challenge(&self, subnet: u32, exchange: Exchange) {
        let Some(receipt) = exchange.receipt else {
            return;
        };
        let message = Message::ChallengeReceipt(hibana_types::ChallengeReceipt {
            subnet,
            receipt,
            request: exchange.request,
            response: exchange.response,
            deposit: self.config.challenge_deposit,
        });
        match self.submit(message).await {
            Ok(r) if r.is_success() => tracing::info!(tx = %r.tx_hash, "challenged a wrong answer"),
            Ok(r) => tracing::warn!(outcome = ?r.outcome, "the challenge failed"),
            Err(e) => tracing::warn!(error = %e, "the challenge was refused"),
        }
    }

    /// Re-checks every open challenge of the subnet this validator has not voted on, on its own
    /// copy of the model the receipt names, and votes; one it cannot judge it leaves alone.
    pub async fn vote_on_challenges(&mut self, subnet: u32) {
        vote_on_challenges(
            &self.client,
            &self.key,
            &self.local,
            subnet,
            &mut self.voted,
        )
        .await;
    }

    /// Sends a one-message transaction at the minimum fee and waits for its receipt.
    async fn submit(&self, message: Message) -> anyhow::Result<Receipt> {
        Ok(self.client.send(&self.key, vec![message], None).await?)
    }

    /// The validator's own copy of a model, loaded on first use; `None` if not installed.
    fn local_model(&mut self, hash: &Hash) -> Option<Arc<Local>> {
        self.local.get(hash)
    }

    async fn health_price(&self, endpoint: &str) -> Option<u128> {
        let resp = self
            .http
            .get(format!("{}/health", endpoint.trim_end_matches('/')))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = limits::read_json(resp, limits::MAX_HEALTH_BYTES)
            .await
            .ok()?;
        v.get("price_per_token").and_then(|p| {
            p.as_str()
                .and_then(|s| s.parse().ok())
                .or(p.as_u64().map(u128::from))
        })
    }

    async fn score_miner(
        &self,
        miner: &Neuron,
        task: &str,
        seed: u64,
        local: Option<Arc<Local>>,
    ) -> MinerScore {
        let mut score = MinerScore {
            uid: miner.uid,
            endpoint: miner.endpoint.clone(),
            correctness: 0.0,
            reexecution: None,
            latency_ms: None,
            failures: 0,
            errors: Vec::new(),
            price_per_token: None,
            score: 0.0,
            wrong_answers: Vec::new(),
            suspicious: Vec::new(),
        };
        if let Err(reason) = self.config.miner_endpoints.check(&miner.endpoint) {
            score.errors.push(reason);
            return score;
        }
        score.price_per_token = self.health_price(&miner.endpoint).await;
        if task == "embeddings" {
            self.score_embeddings(miner, seed, local, &mut score).await;
        } else if task == "audit" {
            self.score_audit(miner, seed, &mut score).await;
        } else {
            self.score_text(miner, task, seed, local, &mut score).await;
        }
        score
    }

    async fn ask(
        &self,
        url: String,
        body: serde_json::Value,
    ) -> Result<(serde_json::Value, f64, Exchange), String> {
        let start = Instant::now();
        let request = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let send = || {
            self.http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(request.clone())
                .timeout(self.config.timeout)
                .send()
        };
        // A pooled connection the miner closed fails before the request is sent: that is not
        // the miner's fault, so it gets one more try on a fresh connection.
        let resp = match send().await {
            Err(e) if !e.is_timeout() && (e.is_connect() || e.is_request()) => send().await,
            other => other,
        }
        .map_err(|e| with_causes(&e))?;
        let status = resp.status();
        if !status.is_success() {
            let text = limits::read_body(resp, limits::MAX_HEALTH_BYTES)
                .await
                .unwrap_or_default();
            let text: String = String::from_utf8_lossy(&text).chars().take(200).collect();
            return Err(format!("HTTP {status}: {text}"));
        }
        let receipt = resp
            .headers()
            .get(crate::provider::RECEIPT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| hibana_types::InferenceReceipt::from_hex(v).ok());
        let response = limits::read_body(resp, limits::MAX_ANSWER_BYTES).await?;
        let value: serde_json::Value = serde_json::from_slice(&response)
            .map_err(|e| format!("the answer is not JSON: {e}"))?;
        let exchange = Exchange {
            request,
            response: response.to_vec(),
            receipt,
        };
        Ok((value, start.elapsed().as_secs_f64() * 1e3, exchange))
    }

    async fn score_text(
        &self,
        miner: &Neuron,
        task: &str,
        seed: u64,
        local: Option<Arc<Local>>,
        score: &mut MinerScore,
    ) {
        let chat = task != "text-generation";
        let params = GenerateParams {
            max_tokens: 16,
            ..Default::default()
        };
        let base = miner.endpoint.trim_end_matches('/');
        let mut right = 0usize;
        let mut latencies = Vec::new();
        let mut reexec = Vec::new();
        // Every miner gets the same challenges in a round, so their scores compare like for like.
        let list = challenges(seed, self.config.challenges);
        for (k, c) in list.iter().enumerate() {
            let (url, body) = if chat {
                (
                    format!("{base}/v1/chat/completions"),
                    json!({"model": miner.model.to_string(), "messages": [{"role": "user", "content": c.prompt}],
                           "max_tokens": params.max_tokens, "temperature": 0}),
                )
            } else {
                (
                    format!("{base}/v1/completions"),
                    json!({"model": miner.model.to_string(), "prompt": format!("{}\nAnswer:", c.prompt),
                           "max_tokens": params.max_tokens, "temperature": 0}),
                )
            };
            let answer = match self.ask(url, body).await {
                Ok((v, ms, exchange)) => {
                    // A share of the answers is re-checked by teacher forcing, which no float
                    // difference between machines can fail.
                    if rand::thread_rng().r#gen::<f64>() < self.config.recheck_share
                        && let Some(l) = &local
                        && let Local::Text(model) = l.as_ref()
                    {
                        let model = model.clone();
                        let (request, response) =
                            (exchange.request.clone(), exchange.response.clone());
                        let verdict = tokio::task::spawn_blocking(move || {
                            recheck::judge(recheck::Judge::Text(&model), &request, &response)
                        })
                        .await;
                        if let Ok(recheck::Judgement::Wrong(why)) = verdict {
                            tracing::warn!(uid = miner.uid, %why, "a miner's answer is wrong");
                            score.wrong_answers.push(why);
                            score.suspicious.push(exchange);
                        }
                    }
                    let text = if chat {
                        v.pointer("/choices/0/message/content")
                    } else {
                        v.pointer("/choices/0/text")
                    }
                    .and_then(|t| t.as_str())
                    .map(str::to_string);
                    match text {
                        Some(t) => {
                            latencies.push(ms);
                            t
                        }
                        None => {
                            score.fail("the answer has no text".into());
                            continue;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(uid = miner.uid, error = %e, "miner failed a challenge");
                    score.fail(e);
                    continue;
                }
            };
            if is_right(c, &answer) {
                right += 1;
            }
            // Re-execute every other challenge on the validator's own copy of the model.
            if k % 2 == 0
                && let Some(l) = &local
                && let Local::Text(model) = l.as_ref()
            {
                let model = model.clone();
                let prompt = c.prompt.clone();
                let params = params.clone();
                let own = tokio::task::spawn_blocking(move || {
                    let prompt = if chat {
                        model.apply_chat_template(&[ChatMessage::new("user", prompt)])?
                    } else {
                        format!("{prompt}\nAnswer:")
                    };
                    model.generate(&prompt, &params, &mut |_| true)
                })
                .await;
                if let Ok(Ok(own)) = own {
                    reexec.push(agreement(own.text.trim(), answer.trim()));
                }
            }
        }
        score.correctness = right as f64 / list.len().max(1) as f64;
        score.latency_ms = best(&latencies);
        if !reexec.is_empty() {
            score.reexecution = Some(reexec.iter().sum::<f64>() / reexec.len() as f64);
        } else if local.is_some() {
            // It had the model but the miner never answered: nothing agreed.
            score.reexecution = Some(0.0);
        }
    }

    /// Sends every miner the same generated contracts with planted flaws; correctness is the
    /// F1 of its findings against what was planted, over all of them.
    async fn score_audit(&self, miner: &Neuron, seed: u64, score: &mut MinerScore) {
        let url = format!("{}/v1/audit", miner.endpoint.trim_end_matches('/'));
        let mut total = hibana_audit::evaluate::Score::default();
        let mut latencies = Vec::new();
        for k in 0..self.config.challenges.max(1) {
            let c = hibana_audit::challenge::generate(seed.wrapping_add(k as u64));
            let body =
                json!({"model": miner.model.to_string(), "path": c.path, "source": c.source});
            let found = match self.ask(url.clone(), body).await {
                Ok((v, ms, _)) => match crate::audit::reported(&v) {
                    Some(found) => {
                        latencies.push(ms);
                        found
                    }
                    None => {
                        score.fail("the answer is not an audit report".into());
                        Vec::new()
                    }
                },
                Err(e) => {
                    tracing::debug!(uid = miner.uid, error = %e, "miner failed an audit");
                    score.fail(e);
                    Vec::new()
                }
            };
            // A failed answer counts as finding nothing: every planted flaw is missed.
            let cmp = hibana_audit::challenge::score(&c.planted, &found);
            total.true_positives += cmp.score.true_positives;
            total.false_positives += cmp.score.false_positives;
            total.false_negatives += cmp.score.false_negatives;
        }
        score.correctness = if latencies.is_empty() {
            0.0
        } else {
            hibana_audit::challenge::f1(&total)
        };
        score.latency_ms = best(&latencies);
    }

    async fn score_embeddings(
        &self,
        miner: &Neuron,
        seed: u64,
        local: Option<Arc<Local>>,
        score: &mut MinerScore,
    ) {
        let sentences: Vec<String> = challenges(seed, self.config.challenges)
            .into_iter()
            .map(|c| c.prompt)
            .collect();
        let Some(Local::Embed(embedder)) = local.as_deref() else {
            tracing::warn!(
                uid = miner.uid,
                "no local copy of the embedding model: cannot score"
            );
            return;
        };
        let embedder = embedder.clone();
        let inputs = sentences.clone();
        let Ok(Ok((reference, _))) =
            tokio::task::spawn_blocking(move || embedder.embed(&inputs)).await
        else {
            return;
        };
        let url = format!("{}/v1/embeddings", miner.endpoint.trim_end_matches('/'));
        match self
            .ask(
                url,
                json!({"model": miner.model.to_string(), "input": sentences}),
            )
            .await
        {
            Ok((v, ms, _)) => {
                let data = v
                    .get("data")
                    .and_then(|d| d.as_array())
                    .cloned()
                    .unwrap_or_default();
                let mut total = 0.0;
                for (k, r) in reference.iter().enumerate() {
                    let theirs: Vec<f32> = data
                        .get(k)
                        .and_then(|d| d.get("embedding"))
                        .and_then(|e| e.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_f64())
                                .map(|x| x as f32)
                                .collect()
                        })
                        .unwrap_or_default();
                    total += cosine(r, &theirs);
                }
                score.correctness = total / reference.len().max(1) as f64;
                score.reexecution = Some(score.correctness);
                score.latency_ms = Some(ms);
            }
            Err(e) => {
                tracing::debug!(uid = miner.uid, error = %e, "miner failed the embeddings");
                score.fail(e);
            }
        }
    }
}

/// Re-checks every open challenge of `subnet` (or, with
/// [`CHAIN_JUDGED`](hibana_types::records::verify::CHAIN_JUDGED), the batch lines the chain's
/// validators judge) in which `key` is an elector and has not voted, on its own copy of the
/// model the receipt names, and votes; one it cannot judge it leaves alone. `voted` remembers
/// the challenges done with.
pub async fn vote_on_challenges(
    client: &RpcClient,
    key: &hibana_types::SecretKey,
    local: &Arc<LocalModels>,
    subnet: u32,
    voted: &mut std::collections::BTreeSet<u64>,
) {
    let me = key.public_key().address();
    let filter = hibana_types::records::verify::ChallengeFilter {
        status: Some(hibana_types::records::verify::ChallengeStatus::Open),
        subnet: Some(subnet),
        ..Default::default()
    };
    let open = match client.challenges(filter).await {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open challenges");
            return;
        }
    };
    for c in open {
        if voted.contains(&c.id) {
            continue;
        }
        let Ok(Some(view)) = client.challenge(c.id).await else {
            continue;
        };
        let Some(elector) = view.electorate.iter().find(|e| e.account == me) else {
            voted.insert(c.id);
            continue;
        };
        if elector.vote.is_some() {
            voted.insert(c.id);
            continue;
        }
        // A refusal is judged against the models its provider declared: for a batch line, as
        // the batch recorded them at its commit.
        let declared = if !recheck::is_signed_refusal(&c.receipt, &view.response) {
            Vec::new()
        } else if let Some((batch, _)) = view.batch_line {
            match client.market_batch(batch).await {
                Ok(Some(b)) => b.batch.models,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(id = c.id, error = %e, "cannot read the challenged batch");
                    continue;
                }
            }
        } else {
            match client.market_provider(c.provider).await {
                Ok(p) => p.map(|p| p.attributes.models).unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(id = c.id, error = %e, "cannot read the challenged provider");
                    continue;
                }
            }
        };
        let (request, response, receipt) = (view.request, view.response, c.receipt.clone());
        let local = local.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            recheck::judge_response(&local, &declared, &receipt, &request, &response)
        })
        .await;
        let wrong = match verdict {
            Ok(recheck::Judgement::Wrong(why)) => {
                tracing::info!(id = c.id, %why, "voting that a challenged answer is wrong");
                true
            }
            Ok(recheck::Judgement::Right) => false,
            Ok(recheck::Judgement::Unjudgeable(why)) => {
                tracing::warn!(id = c.id, %why, "cannot judge a challenge");
                continue;
            }
            Err(_) => continue,
        };
        let vote = Message::VoteChallenge(hibana_types::VoteChallenge { id: c.id, wrong });
        match client.send(key, vec![vote], None).await {
            Ok(r) if r.is_success() => {
                voted.insert(c.id);
            }
            Ok(r) => tracing::warn!(id = c.id, outcome = ?r.outcome, "the vote failed"),
            Err(e) => tracing::warn!(id = c.id, error = %e, "the vote was refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_reproducible_and_checkable() {
        let a = challenges(7, 6);
        assert_eq!(a, challenges(7, 6));
        assert_ne!(a, challenges(8, 6));
        for c in &a {
            assert!(is_right(c, &format!("The answer is {}.", c.expected)));
            assert!(!is_right(c, "I do not know"));
        }
        // A number inside a longer number is not the answer.
        let c = Challenge {
            kind: "arithmetic".into(),
            prompt: String::new(),
            expected: "12".into(),
        };
        assert!(!is_right(&c, "123"));
    }

    #[test]
    fn weights_follow_scores_and_sum_exactly() {
        let s = |uid, score| MinerScore {
            uid,
            endpoint: String::new(),
            correctness: 0.0,
            reexecution: None,
            latency_ms: None,
            failures: 0,
            errors: Vec::new(),
            price_per_token: None,
            score,
            wrong_answers: Vec::new(),
            suspicious: Vec::new(),
        };
        let w = weights_from_scores(&[s(5, 0.9), s(2, 0.3), s(7, 0.0)]);
        assert_eq!(w.iter().map(|x| x.1).sum::<u32>(), WEIGHTS_TOTAL);
        assert_eq!(w.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2, 5]);
        assert!(w[1].1 > 8 * w[0].1);
        assert!(weights_from_scores(&[s(1, 0.0)]).is_empty());
        assert!(agreement("hello world", "hello there") > 0.5);
        assert_eq!(agreement("", ""), 1.0);
        assert!(
            combine(1.0, Some(1.0), Some(500.0), 1.0) > combine(1.0, Some(1.0), Some(4000.0), 1.0)
        );
    }
}
