//! Re-checking a provider's claimed answer without trusting two machines to compute the same
//! floats.
//!
//! Greedy decoding repeats exactly on one build, but not across CPUs, SIMD paths, thread counts
//! or optimisation levels: a near-tie between two tokens can go either way. So a claimed text
//! answer is not regenerated but *teacher forced*: one forward pass over prompt + claimed tokens
//! gives the model's logits at every claimed position, and each claimed token must be close
//! enough to the model's preference there.
//!
//! * **Greedy** (temperature 0): every claimed token's logit is at least the best logit at its
//!   position minus [`GREEDY_MARGIN`]. If both machines' logits are within `GREEDY_MARGIN / 2` of
//!   the true values, the token the provider picked (its best) is within the margin here.
//! * **Sampled** (temperature > 0): any token can be drawn, so single tokens prove little. The
//!   check bounds how *surprising* the answer is as a whole: for each position,
//!   `x = ½·surprisal − ln Σⱼ √pⱼ` (probabilities at the claimed temperature) has
//!   `E[eˣ] = 1` under honest sampling, so by Ville's inequality a run of positions whose `x` sum
//!   to more than `ln(n / SAMPLED_FALSE_REJECTION)` happens to an honest provider with
//!   probability below [`SAMPLED_FALSE_REJECTION`], whatever the model's distributions (nucleus
//!   sampling only makes it rarer). Each `x` is lowered by `GREEDY_MARGIN / T`, the most float
//!   noise can move it, so the bound holds across machines. Tokens a cheater substitutes are
//!   improbable under the model and push the sum up; a few in a row are caught.
//! * **The end**: a claimed stop on end-of-generation needs an end-of-generation token to pass
//!   the same rule right after the text; a stop on a stop sequence needs the model to produce the
//!   stop text (its last token may run past it); an answer needs at most `max_tokens` tokens, and
//!   no stop sequence may occur inside the text.
//! * **Tokenization**: the provider's token ids are not in its answer, and re-tokenizing the text
//!   can split it differently from how the model generated it. The check starts from the
//!   canonical tokenization and, where a position fails, tries the other tokens that spell the
//!   same bytes there and pass the rule (at most [`MAX_FORWARD_PASSES`] passes, reusing the
//!   cached prefix). Every token of an accepted path passes the rule, so the search widens what an
//!   honest provider can be credited with, never what a cheater can get past.
//!
//! Embeddings are recomputed and compared by cosine ([`EMBEDDING_MIN_COSINE`]).
//!
//! ```no_run
//! use hibana_ai::{catalog, recheck::{ClaimedPrompt, TextClaim, TextRechecker},
//!     text::{FinishReason, LoadOptions, TextModel}};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = TextModel::load(&catalog::find(&catalog::models_dir(), "gemma3-270m")?,
//!     LoadOptions::default())?;
//! let mut rechecker = TextRechecker::new(&model);
//! let verdict = rechecker.check(&TextClaim {
//!     prompt: ClaimedPrompt::Text("The capital of France is"),
//!     completion: " Paris.",
//!     finish: FinishReason::Length,
//!     stop: &[],
//!     temperature: 0.0,
//!     max_tokens: 2,
//! })?;
//! println!("accepted: {}, worst gap {:?}", verdict.accepted, verdict.worst);
//! # Ok(())
//! # }
//! ```

use serde::Serialize;

use crate::{
    AiError,
    embed::Embedder,
    text::{FinishReason, ForwardSession, TextModel},
};

/// Largest logit gap below the best token accepted for a greedy token; also twice the float
/// noise bound assumed between two machines' logits in the sampled rule.
///
/// Measured on 250 honest answers across dev/release builds and 1/2 threads (see
/// `examples/recheck.rs`): largest honest gap 0.44 (p99 0.38), all from batched teacher forcing
/// against token-by-token decoding on one CPU; other SIMD paths were not measured.
pub const GREEDY_MARGIN: f32 = 1.0;

/// Bound on the probability that the sampled rule rejects one honestly sampled answer.
pub const SAMPLED_FALSE_REJECTION: f64 = 1e-6;

/// Most tokens (prompt + completion + end token) one text re-check reads.
pub const MAX_RECHECK_TOKENS: u32 = 4096;

/// Longest claimed completion accepted for re-checking, in bytes (checked before tokenizing).
pub const MAX_COMPLETION_BYTES: usize = 64 * 1024;

/// Longest prompt text accepted for re-checking, in bytes (checked before tokenizing).
pub const MAX_PROMPT_BYTES: usize = 256 * 1024;

/// Most stop sequences a claim may carry (the provider accepts 4).
pub const MAX_STOP_SEQUENCES: usize = 4;

/// Longest stop sequence accepted, in bytes.
pub const MAX_STOP_BYTES: usize = 256;

/// Forward passes one claimed ending may take while looking for another tokenization of the
/// text; each reads only the tokens after the prefix it shares with the previous pass.
pub const MAX_FORWARD_PASSES: u32 = 8;

/// Cosine below which a claimed embedding is rejected. Honest vectors from this engine agree to
/// about 1e-6; against an independent implementation (PyTorch) they agree above 0.999.
pub const EMBEDDING_MIN_COSINE: f32 = 0.999;

/// Most tokens the texts of one embedding re-check may hold.
pub const MAX_RECHECK_EMBED_TOKENS: u64 = 16_384;

/// Positions before a failing one where another tokenization is tried.
const BACKTRACK: usize = 3;

/// What can stop a re-check before it reaches a verdict.
#[derive(Debug, thiserror::Error)]
pub enum RecheckError {
    /// The claim needs more tokens than one re-check reads.
    #[error(
        "the claim needs {tokens} tokens (prompt, completion and end) but a re-check reads at \
         most {limit}; it cannot be re-checked here"
    )]
    ClaimTooLong {
        /// Tokens the claim needs.
        tokens: u64,
        /// The limit: the smaller of the model's context length and [`MAX_RECHECK_TOKENS`].
        limit: u32,
    },
    /// A part of the claim is larger than a re-check reads (checked before tokenizing it).
    #[error("the claimed {part} is {bytes} bytes; a re-check reads at most {limit}")]
    ClaimTooLarge {
        /// `prompt` or `completion`.
        part: &'static str,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The claim is malformed (empty prompt, bad temperature, too many stop sequences…).
    #[error("invalid claim: {0}")]
    InvalidClaim(String),
    /// A claimed embedding has another length than the model's vectors.
    #[error("the claimed embedding has {claimed} dimensions; the model makes {expected}")]
    DimensionMismatch {
        /// Length of the claimed vector.
        claimed: usize,
        /// Length of the model's vectors.
        expected: usize,
    },
    /// A claimed embedding holds NaN or infinity.
    #[error("the claimed embedding has a non-finite value at index {index}")]
    NonFinite {
        /// Index of the first such value.
        index: usize,
    },
    /// A claimed embedding is the zero vector, which has no direction to compare.
    #[error("the claimed embedding is the zero vector")]
    ZeroVector,
    /// The inference engine failed.
    #[error(transparent)]
    Engine(#[from] AiError),
}

/// The prompt of a claimed answer, as the provider fed it to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimedPrompt<'a> {
    /// Prompt text after the chat template, tokenized as [`TextModel::generate`] does.
    Text(&'a str),
    /// Prompt token ids, BOS included.
    Tokens(&'a [i32]),
}

/// A provider's claimed text answer and the request parameters that constrain it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextClaim<'a> {
    /// What the model was given.
    pub prompt: ClaimedPrompt<'a>,
    /// The claimed generated text (without the stop sequence that ended it).
    pub completion: &'a str,
    /// The claimed finish reason: `Stop` means an end-of-generation token or one of `stop`.
    pub finish: FinishReason,
    /// The request's stop sequences.
    pub stop: &'a [String],
    /// The request's sampling temperature; 0 is greedy.
    pub temperature: f32,
    /// The request's `max_tokens`.
    pub max_tokens: u32,
}

/// How an accepted answer ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The model's end-of-generation token followed the text.
    EndOfGeneration,
    /// The stop sequence with this index in the claim's `stop` followed the text.
    StopSequence(usize),
    /// The answer ran to `max_tokens` (or the context).
    Length,
}

/// Why a claimed text answer was rejected.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// A claimed token is more than [`GREEDY_MARGIN`] below the best token (greedy).
    TokenOutsideMargin,
    /// The model would not end where the answer claims it ended.
    EndNotPlausible,
    /// The sampled answer is too improbable as a whole (see the module page).
    Improbable {
        /// Highest run of surprisal excess, in nats.
        peak: f64,
        /// The run above which an answer is rejected, `ln(n / SAMPLED_FALSE_REJECTION)`.
        threshold: f64,
    },
    /// The answer needs more tokens than the request's `max_tokens` allowed.
    TooManyTokens {
        /// Tokens of the shortest path found (end token included when it counts).
        tokens: u32,
        /// The request's `max_tokens`.
        max_tokens: u32,
    },
    /// The text contains one of the request's stop sequences, where generation would have ended.
    ContainsStopSequence,
    /// The text cannot be spelled with the model's tokens.
    Untokenizable,
    /// A `length` answer without any token.
    Empty,
}

/// One checked position of a claimed answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenGap {
    /// Index of the token in the checked completion (the end token comes after the last).
    pub index: u32,
    /// Byte offset in the claimed completion where the token starts.
    pub byte_offset: usize,
    /// The token checked (for the end, the most likely end-of-generation token).
    pub token: i32,
    /// Best logit at this position minus the token's logit (0 when it is the best).
    pub gap: f32,
}

/// The outcome of re-checking a claimed text answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextVerdict {
    /// Whether the answer passes.
    pub accepted: bool,
    /// Why not, when rejected.
    pub rejection: Option<Rejection>,
    /// Positions checked on the reported path (completion tokens, plus the end token).
    pub tokens_checked: u32,
    /// The position with the largest gap.
    pub worst: Option<TokenGap>,
    /// Positions that broke the rule (greedy: outside the margin; sampled: the tokens that raised
    /// the rejected run).
    pub rejected: Vec<TokenGap>,
    /// How the accepted answer ended.
    pub ending: Option<Ending>,
    /// Whether the reported path differs from the canonical tokenization of the text.
    pub retokenized: bool,
    /// Forward passes run.
    pub forward_passes: u32,
    /// Tokens llama.cpp read (cached prefixes not counted).
    pub tokens_decoded: u64,
    /// Sampled answers: highest run of surprisal excess, in nats, and the threshold.
    pub surprisal_peak: Option<(f64, f64)>,
}

/// The vocabulary as bytes: each token's piece, sorted for prefix look-ups.
struct Vocabulary {
    pieces: Vec<Vec<u8>>,
    /// Token ids with non-empty pieces, sorted by piece.
    sorted: Vec<i32>,
    longest: usize,
    end_tokens: Vec<i32>,
}

impl Vocabulary {
    fn new(model: &TextModel) -> Self {
        let n = model.vocab_size() as i32;
        let pieces: Vec<Vec<u8>> = (0..n).map(|t| model.token_piece(t)).collect();
        let mut sorted: Vec<i32> = (0..n).filter(|&t| !pieces[t as usize].is_empty()).collect();
        sorted.sort_by(|&a, &b| pieces[a as usize].cmp(&pieces[b as usize]));
        let longest = pieces.iter().map(Vec::len).max().unwrap_or(0);
        let end_tokens = (0..n).filter(|&t| model.is_end_of_generation(t)).collect();
        Vocabulary {
            pieces,
            sorted,
            longest,
            end_tokens,
        }
    }

    fn piece(&self, token: i32) -> &[u8] {
        usize::try_from(token)
            .ok()
            .and_then(|t| self.pieces.get(t))
            .map_or(&[], Vec::as_slice)
    }

    /// Tokens whose piece starts with `bytes` (`bytes` itself included).
    fn starting_with<'v>(&'v self, bytes: &'v [u8]) -> impl Iterator<Item = i32> + 'v {
        let from = self.sorted.partition_point(|&t| self.piece(t) < bytes);
        self.sorted[from..]
            .iter()
            .copied()
            .take_while(move |&t| self.piece(t).starts_with(bytes))
    }

    /// Tokens that can stand at `at` in `target`: their piece is a prefix of the rest, or, when
    /// `overshoot`, the rest is a prefix of their piece (a last token running past a stop text).
    fn matching(&self, target: &[u8], at: usize, overshoot: bool) -> Vec<i32> {
        let rest = &target[at..];
        let mut out = Vec::new();
        for len in 1..=rest.len().min(self.longest) {
            let prefix = &rest[..len];
            let mut longer = self.starting_with(prefix).peekable();
            if longer.peek().is_none() {
                // No piece starts with this prefix, so none starts with a longer one.
                break;
            }
            out.extend(longer.take_while(|&t| self.piece(t) == prefix));
        }
        if overshoot && !rest.is_empty() && rest.len() <= self.longest {
            out.extend(
                self.starting_with(rest)
                    .filter(|&t| self.piece(t).len() > rest.len()),
            );
        }
        out
    }

    /// Greedy longest-match spelling of `bytes`, for text the tokenizer cannot be given directly
    /// (a remainder that starts inside a UTF-8 character).
    fn spell(&self, bytes: &[u8]) -> Option<Vec<i32>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let token = self
                .matching(bytes, at, false)
                .into_iter()
                .max_by_key(|&t| (self.piece(t).len(), std::cmp::Reverse(t)))?;
            at += self.piece(token).len();
            out.push(token);
        }
        Some(out)
    }
}

/// What the model says at one checked position.
#[derive(Debug, Clone)]
struct Step {
    best: f32,
    chosen_token: i32,
    chosen: f32,
    /// Log-probability of the chosen outcome at the claimed temperature (sampled only).
    chosen_lp: f64,
    /// `ln Σ exp(l / T)` (sampled only).
    lse_t: f64,
    /// `ln Σ √pⱼ` (sampled only).
    ln_a: f64,
    /// Other tokens that spell the text here, with their logits.
    alternatives: Vec<(i32, f32)>,
}

impl Step {
    fn gap(&self) -> f32 {
        let gap = self.best - self.chosen;
        // A NaN logit proves nothing for the claim.
        if gap.is_nan() {
            f32::INFINITY
        } else {
            gap.max(0.0)
        }
    }

    /// The sampled statistic's increment, lowered by the most float noise can add.
    fn excess(&self, temperature: f32) -> f64 {
        let x =
            -0.5 * self.chosen_lp - self.ln_a - f64::from(GREEDY_MARGIN) / f64::from(temperature);
        if x.is_nan() { f64::INFINITY } else { x }
    }

    fn with_choice(&self, token: i32, logit: f32, temperature: f32) -> Step {
        let mut step = self.clone();
        step.chosen_token = token;
        step.chosen = logit;
        if temperature > 0.0 {
            step.chosen_lp = f64::from(logit) / f64::from(temperature) - step.lse_t;
        }
        step
    }
}

/// One claimed ending to check: the bytes the model must produce and how it must stop.
struct Target {
    bytes: Vec<u8>,
    /// Length of the claimed completion inside `bytes` (the rest is a stop sequence).
    completion_len: usize,
    ending: Ending,
}

impl Target {
    fn needs_end_token(&self) -> bool {
        self.ending == Ending::EndOfGeneration
    }
}

/// A path (tokens spelling the target) and the model's view of each of its positions.
struct Evaluation {
    path: Vec<i32>,
    offsets: Vec<usize>,
    steps: Vec<Step>,
    /// Leading positions chosen by parent branches; alternatives there are the parents' to try.
    fixed: usize,
}

/// How an evaluation fares under the rules.
#[derive(Debug, Clone, Default)]
struct Judgement {
    rejection: Option<Rejection>,
    /// Step indices that broke the rule.
    bad: Vec<usize>,
    /// The first step to revisit with another tokenization.
    first_bad: Option<usize>,
    surprisal_peak: Option<(f64, f64)>,
}

/// Re-checks claimed text answers against a loaded model; keep one per thread and model.
pub struct TextRechecker<'m> {
    model: &'m TextModel,
    vocabulary: Option<Vocabulary>,
    session: Option<ForwardSession<'m>>,
}

impl std::fmt::Debug for TextRechecker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextRechecker")
            .field("model", &self.model.name())
            .finish()
    }
}

/// Search state shared by the branches of one claimed ending.
struct Search<'c> {
    claim: &'c TextClaim<'c>,
    target: Target,
    prompt: &'c [i32],
    limit: u32,
    passes: u32,
    decoded: u64,
    /// The failed evaluation that got furthest, to report.
    best_failure: Option<(Evaluation, Judgement)>,
}

impl<'m> TextRechecker<'m> {
    /// A re-checker for `model`; the vocabulary index and the llama.cpp context are built on the
    /// first check.
    pub fn new(model: &'m TextModel) -> Self {
        TextRechecker {
            model,
            vocabulary: None,
            session: None,
        }
    }

    /// Most tokens (prompt, completion and end token) one check may read.
    pub fn limit(&self) -> u32 {
        self.model.context_length().min(MAX_RECHECK_TOKENS)
    }

    /// Re-checks a claimed answer by teacher forcing; see the module page for the rules.
    pub fn check(&mut self, claim: &TextClaim<'_>) -> Result<TextVerdict, RecheckError> {
        validate(claim)?;
        let limit = self.limit();
        let prompt_storage;
        let prompt: &[i32] = match claim.prompt {
            ClaimedPrompt::Text(text) => {
                if text.len() > MAX_PROMPT_BYTES {
                    return Err(RecheckError::ClaimTooLarge {
                        part: "prompt",
                        bytes: text.len(),
                        limit: MAX_PROMPT_BYTES,
                    });
                }
                prompt_storage = self.model.tokenize(text);
                &prompt_storage
            }
            ClaimedPrompt::Tokens(tokens) => tokens,
        };
        if prompt.is_empty() {
            return Err(RecheckError::InvalidClaim("the prompt is empty".into()));
        }
        let vocab_size = self.model.vocab_size();
        if let Some(bad) = prompt
            .iter()
            .find(|&&t| u32::try_from(t).is_ok_and(|t| t >= vocab_size) || t < 0)
        {
            return Err(RecheckError::InvalidClaim(format!(
                "prompt token {bad} is outside the vocabulary of {vocab_size} tokens"
            )));
        }
        // Cheap verdicts and bounds before any model work.
        if claim
            .stop
            .iter()
            .any(|s| !s.is_empty() && claim.completion.contains(s.as_str()))
        {
            return Ok(cheap_rejection(Rejection::ContainsStopSequence));
        }
        let completion_tokens = self.model.tokenize_output(claim.completion).len() as u64;
        let longest_stop = if claim.finish == FinishReason::Stop {
            claim.stop.iter().map(String::len).max().unwrap_or(0) as u64
        } else {
            0
        };
        let needed = prompt.len() as u64 + completion_tokens + longest_stop + 1;
        if needed > u64::from(limit) {
            return Err(RecheckError::ClaimTooLong {
                tokens: needed,
                limit,
            });
        }

        let mut targets = Vec::new();
        let completion = claim.completion.as_bytes().to_vec();
        match claim.finish {
            FinishReason::Length => targets.push(Target {
                bytes: completion,
                completion_len: claim.completion.len(),
                ending: Ending::Length,
            }),
            FinishReason::Stop => {
                targets.push(Target {
                    bytes: completion.clone(),
                    completion_len: claim.completion.len(),
                    ending: Ending::EndOfGeneration,
                });
                for (i, stop) in claim.stop.iter().enumerate() {
                    if stop.is_empty() {
                        continue;
                    }
                    let mut bytes = completion.clone();
                    bytes.extend_from_slice(stop.as_bytes());
                    targets.push(Target {
                        bytes,
                        completion_len: claim.completion.len(),
                        ending: Ending::StopSequence(i),
                    });
                }
            }
        }

        if self.vocabulary.is_none() {
            self.vocabulary = Some(Vocabulary::new(self.model));
        }
        if self.session.is_none() {
            self.session = Some(self.model.forward_session(limit)?);
        }
        let mut searches: Vec<Search<'_>> = targets
            .into_iter()
            .map(|target| Search {
                claim,
                target,
                prompt,
                limit,
                passes: 0,
                decoded: 0,
                best_failure: None,
            })
            .collect();
        // First the canonical path of every ending (an answer cut by a stop sequence fails the
        // end-token ending, and the other way round), then other tokenizations of each.
        let mut roots = Vec::with_capacity(searches.len());
        let mut accepted = None;
        for (i, search) in searches.iter_mut().enumerate() {
            let root = self.evaluate(search, Vec::new(), Vec::new())?;
            let root = root.map(|evaluation| {
                let judgement = judge(search, &evaluation);
                (evaluation, judgement)
            });
            if let Some((evaluation, judgement)) = &root
                && judgement.rejection.is_none()
            {
                accepted = Some((i, self.verdict(search, evaluation, judgement.clone())));
                break;
            }
            roots.push(root);
        }
        if accepted.is_none() {
            for (i, (search, root)) in searches.iter_mut().zip(roots).enumerate() {
                let Some((evaluation, judgement)) = root else {
                    continue;
                };
                if let Some((evaluation, judgement)) =
                    self.explore_from(search, evaluation, judgement)?
                {
                    accepted = Some((i, self.verdict(search, &evaluation, judgement)));
                    break;
                }
            }
        }
        let passes = searches.iter().map(|s| s.passes).sum();
        let decoded = searches.iter().map(|s| s.decoded).sum();
        // Rejected: report the first ending's furthest path (for `stop`, the end token).
        let verdict = match accepted {
            Some((_, verdict)) => verdict,
            None => match searches
                .first_mut()
                .and_then(|s| s.best_failure.take().map(|f| (s, f)))
            {
                Some((search, (evaluation, judgement))) => {
                    self.verdict(search, &evaluation, judgement)
                }
                None => cheap_rejection(Rejection::Untokenizable),
            },
        };
        Ok(TextVerdict {
            forward_passes: passes,
            tokens_decoded: decoded,
            ..verdict
        })
    }

    fn vocabulary(&self) -> Result<&Vocabulary, RecheckError> {
        self.vocabulary
            .as_ref()
            .ok_or_else(|| AiError::Inference("the re-checker is not initialised".into()).into())
    }

    /// Evaluates `prefix` + the canonical tokenization of the rest of the target, then, if it
    /// fails, the alternatives near where it fails. Returns the first path that passes.
    fn explore(
        &mut self,
        search: &mut Search<'_>,
        prefix: Vec<i32>,
        inherited: Vec<Step>,
    ) -> Result<Option<(Evaluation, Judgement)>, RecheckError> {
        if search.passes >= MAX_FORWARD_PASSES {
            return Ok(None);
        }
        let Some(evaluation) = self.evaluate(search, prefix, inherited)? else {
            return Ok(None);
        };
        let judgement = judge(search, &evaluation);
        if judgement.rejection.is_none() {
            return Ok(Some((evaluation, judgement)));
        }
        self.explore_from(search, evaluation, judgement)
    }

    /// Tries the alternatives near where `evaluation` fails, depth first, within the budget of
    /// forward passes; records the failed path that got furthest.
    fn explore_from(
        &mut self,
        search: &mut Search<'_>,
        evaluation: Evaluation,
        judgement: Judgement,
    ) -> Result<Option<(Evaluation, Judgement)>, RecheckError> {
        for (at, token, logit) in self.branches(search, &evaluation, &judgement) {
            if search.passes >= MAX_FORWARD_PASSES {
                break;
            }
            let mut path = evaluation.path[..at].to_vec();
            path.push(token);
            let mut steps = evaluation.steps[..at].to_vec();
            steps.push(evaluation.steps[at].with_choice(token, logit, search.claim.temperature));
            if let Some(found) = self.explore(search, path, steps)? {
                return Ok(Some(found));
            }
        }
        // Report the failed path that got furthest; the canonical one (explored first) on a tie.
        let further = search
            .best_failure
            .as_ref()
            .is_none_or(|(_, best)| judgement.first_bad > best.first_bad);
        if further {
            search.best_failure = Some((evaluation, judgement));
        }
        Ok(None)
    }

    /// Another token at a position near the failure, for a new path: `(index, token, logit)`.
    fn branches(
        &self,
        search: &Search<'_>,
        evaluation: &Evaluation,
        judgement: &Judgement,
    ) -> Vec<(usize, i32, f32)> {
        let fixed = evaluation.fixed;
        let mut out = Vec::new();
        let greedy = search.claim.temperature == 0.0;
        let passes = |step: &Step, logit: f32| {
            if greedy {
                step.best - logit <= GREEDY_MARGIN
            } else {
                logit >= step.chosen - GREEDY_MARGIN
            }
        };
        if let Some(Rejection::TooManyTokens { .. }) = judgement.rejection {
            // Look for a longer token that passes anywhere after the fixed prefix.
            for at in fixed..evaluation.path.len() {
                let step = &evaluation.steps[at];
                let own = evaluation.path[at];
                let own_len = self.piece_len(own);
                let mut longer: Vec<(i32, f32)> = step
                    .alternatives
                    .iter()
                    .copied()
                    .filter(|&(t, l)| self.piece_len(t) > own_len && passes(step, l))
                    .collect();
                longer.sort_by(|a, b| b.1.total_cmp(&a.1));
                out.extend(longer.into_iter().map(|(t, l)| (at, t, l)));
            }
            return out;
        }
        let Some(first_bad) = judgement.first_bad else {
            return out;
        };
        let last = first_bad.min(evaluation.path.len().saturating_sub(1));
        let from = last.saturating_sub(BACKTRACK).max(fixed);
        if evaluation.path.is_empty() || last < from {
            return out;
        }
        for at in (from..=last).rev() {
            let step = &evaluation.steps[at];
            let mut alternatives: Vec<(i32, f32)> = step
                .alternatives
                .iter()
                .copied()
                .filter(|&(t, l)| t != evaluation.path[at] && passes(step, l))
                .collect();
            alternatives.sort_by(|a, b| b.1.total_cmp(&a.1));
            out.extend(alternatives.into_iter().map(|(t, l)| (at, t, l)));
        }
        out
    }

    fn piece_len(&self, token: i32) -> usize {
        self.vocabulary.as_ref().map_or(0, |v| v.piece(token).len())
    }

    /// Runs the forward pass for `prefix` + canonical rest; `None` if the rest cannot be spelled
    /// or the path does not fit.
    fn evaluate(
        &mut self,
        search: &mut Search<'_>,
        prefix: Vec<i32>,
        inherited: Vec<Step>,
    ) -> Result<Option<Evaluation>, RecheckError> {
        let fixed = prefix.len();
        let target = &search.target;
        let mut offsets = Vec::with_capacity(prefix.len());
        let mut at = 0usize;
        for &t in &prefix {
            offsets.push(at);
            at += self.piece_len(t);
        }
        let mut path = prefix;
        if at < target.bytes.len() {
            let Some(rest) = self.canonical(&target.bytes, at)? else {
                return Ok(None);
            };
            for t in rest {
                offsets.push(at);
                at += self.piece_len(t);
                path.push(t);
            }
        }
        let end_step = usize::from(target.needs_end_token());
        let positions = path.len() + end_step;
        let tokens: Vec<i32> = search.prompt.iter().chain(&path).copied().collect();
        if tokens.len() > search.limit as usize {
            return Ok(None);
        }
        let mut steps = inherited;
        if steps.len() < positions {
            let (Some(vocabulary), Some(session)) =
                (self.vocabulary.as_ref(), self.session.as_mut())
            else {
                return Err(AiError::Inference("the re-checker is not initialised".into()).into());
            };
            let overshoot = matches!(target.ending, Ending::StopSequence(_));
            let first = steps.len();
            let matches: Vec<Vec<i32>> = (first..path.len())
                .map(|i| {
                    vocabulary
                        .matching(&target.bytes, offsets[i], overshoot)
                        .into_iter()
                        .filter(|&t| t != path[i])
                        .collect()
                })
                .collect();
            let temperature = search.claim.temperature;
            let end_tokens = &vocabulary.end_tokens;
            let prompt_len = search.prompt.len();
            let mut fresh: Vec<Step> = Vec::with_capacity(positions - first);
            let mut visit = |position: usize, logits: &[f32]| {
                let i = position + 1 - prompt_len;
                let (chosen_token, chosen) = if i < path.len() {
                    (path[i], logit_of(logits, path[i]))
                } else {
                    end_tokens
                        .iter()
                        .map(|&t| (t, logit_of(logits, t)))
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .unwrap_or((-1, f32::NEG_INFINITY))
                };
                let best = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let (chosen_lp, lse_t, ln_a) = if temperature > 0.0 {
                    let lse_t = log_sum_exp(logits, best, temperature);
                    let lse_2t = log_sum_exp(logits, best, 2.0 * temperature);
                    let chosen_lp = if i < path.len() {
                        f64::from(chosen) / f64::from(temperature) - lse_t
                    } else {
                        // Any end token ends the answer: their probabilities add up.
                        let ends: Vec<f32> =
                            end_tokens.iter().map(|&t| logit_of(logits, t)).collect();
                        log_sum_exp(&ends, chosen, temperature) - lse_t
                    };
                    (chosen_lp, lse_t, lse_2t - 0.5 * lse_t)
                } else {
                    (0.0, 0.0, 0.0)
                };
                let alternatives = matches
                    .get(i - first)
                    .map(|m| m.iter().map(|&t| (t, logit_of(logits, t))).collect())
                    .unwrap_or_default();
                fresh.push(Step {
                    best,
                    chosen_token,
                    chosen,
                    chosen_lp,
                    lse_t,
                    ln_a,
                    alternatives,
                });
            };
            // The logits after the last token are needed only to check an end token.
            let read = &tokens[..tokens.len() - 1 + end_step];
            let decoded = session.forward(read, prompt_len - 1 + first, &mut visit)?;
            search.passes += 1;
            search.decoded += decoded as u64;
            steps.extend(fresh);
        }
        steps.truncate(positions);
        Ok(Some(Evaluation {
            path,
            offsets,
            steps,
            fixed,
        }))
    }

    /// The model's own tokenization of `bytes[at..]`.
    fn canonical(&self, bytes: &[u8], at: usize) -> Result<Option<Vec<i32>>, RecheckError> {
        let vocabulary = self.vocabulary()?;
        let rest = &bytes[at..];
        // A remainder can start inside a UTF-8 character (after a token holding part of it);
        // those bytes are spelled from the vocabulary, the rest goes to the tokenizer.
        let boundary = (0..=rest.len())
            .find(|&i| std::str::from_utf8(&rest[i..]).is_ok())
            .unwrap_or(rest.len());
        let Some(mut tokens) = vocabulary.spell(&rest[..boundary]) else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&rest[boundary..]).unwrap_or_default();
        let canonical = self.model.tokenize_output(text);
        let spelled: Vec<u8> = canonical
            .iter()
            .flat_map(|&t| vocabulary.piece(t).iter().copied())
            .collect();
        if spelled == text.as_bytes() {
            tokens.extend(canonical);
        } else {
            // The tokenizer changed the text (a space prefix, normalisation): spell it instead.
            match vocabulary.spell(text.as_bytes()) {
                Some(spelled) => tokens.extend(spelled),
                None => return Ok(None),
            }
        }
        Ok(Some(tokens))
    }

    fn verdict(
        &self,
        search: &Search<'_>,
        evaluation: &Evaluation,
        judgement: Judgement,
    ) -> TextVerdict {
        let gap_at = |i: usize| {
            let step = &evaluation.steps[i];
            TokenGap {
                index: i as u32,
                byte_offset: evaluation
                    .offsets
                    .get(i)
                    .copied()
                    .unwrap_or(search.target.bytes.len())
                    .min(search.target.completion_len),
                token: step.chosen_token,
                gap: step.gap(),
            }
        };
        let worst = (0..evaluation.steps.len())
            .max_by(|&a, &b| {
                evaluation.steps[a]
                    .gap()
                    .total_cmp(&evaluation.steps[b].gap())
                    .then(b.cmp(&a))
            })
            .map(gap_at);
        let retokenized = self
            .canonical(&search.target.bytes, 0)
            .ok()
            .flatten()
            .is_none_or(|c| c != evaluation.path);
        let accepted = judgement.rejection.is_none();
        TextVerdict {
            accepted,
            rejection: judgement.rejection,
            tokens_checked: evaluation.steps.len() as u32,
            worst,
            rejected: judgement.bad.iter().map(|&i| gap_at(i)).collect(),
            ending: accepted.then(|| search.target.ending.clone()),
            retokenized,
            forward_passes: 0,
            tokens_decoded: 0,
            surprisal_peak: judgement.surprisal_peak,
        }
    }
}

fn logit_of(logits: &[f32], token: i32) -> f32 {
    usize::try_from(token)
        .ok()
        .and_then(|t| logits.get(t))
        .copied()
        .unwrap_or(f32::NEG_INFINITY)
}

/// `ln Σ exp(l / t)`, computed around `max` (the largest of `logits`); the exponentials are
/// of numbers ≤ 0 (f32 is enough), the sum and the result f64, so a tiny temperature gives huge
/// but finite numbers.
fn log_sum_exp(logits: &[f32], max: f32, t: f32) -> f64 {
    let sum: f64 = logits
        .iter()
        .map(|&l| {
            let d = l - max;
            if d == 0.0 {
                1.0
            } else {
                f64::from((d / t).exp())
            }
        })
        .sum();
    f64::from(max) / f64::from(t) + sum.ln()
}

/// Applies the rules of the module page to one evaluated path.
fn judge(search: &Search<'_>, evaluation: &Evaluation) -> Judgement {
    let claim = search.claim;
    let steps = &evaluation.steps;
    let path_len = evaluation.path.len();
    let mut judgement = Judgement::default();
    if steps.is_empty() {
        judgement.rejection = Some(Rejection::Empty);
        return judgement;
    }
    if claim.temperature == 0.0 {
        judgement.bad = (0..steps.len())
            .filter(|&i| steps[i].gap() > GREEDY_MARGIN)
            .collect();
        judgement.first_bad = judgement.bad.first().copied();
        judgement.rejection = match judgement.first_bad {
            Some(i) if i >= path_len => Some(Rejection::EndNotPlausible),
            Some(_) => Some(Rejection::TokenOutsideMargin),
            None => None,
        };
    } else {
        let threshold = (steps.len() as f64 / SAMPLED_FALSE_REJECTION).ln();
        let (mut run, mut run_start) = (0.0f64, 0usize);
        let (mut peak, mut window) = (0.0f64, (0usize, 0usize));
        for (i, step) in steps.iter().enumerate() {
            if run <= 0.0 {
                run = 0.0;
                run_start = i;
            }
            run += step.excess(claim.temperature);
            if run > peak {
                peak = run;
                window = (run_start, i);
            }
        }
        judgement.surprisal_peak = Some((peak, threshold));
        if peak > threshold {
            judgement.bad = (window.0..=window.1)
                .filter(|&i| steps[i].excess(claim.temperature) > 0.0)
                .collect();
            // Revisit from the most surprising position of the run.
            judgement.first_bad = (window.0..=window.1).max_by(|&a, &b| {
                steps[a]
                    .excess(claim.temperature)
                    .total_cmp(&steps[b].excess(claim.temperature))
            });
            judgement.rejection = Some(if window.1 >= path_len {
                Rejection::EndNotPlausible
            } else {
                Rejection::Improbable { peak, threshold }
            });
        }
    }
    // The engine stops at `max_tokens` generated tokens; an end token is sampled only before.
    let counted = path_len as u64 + u64::from(search.target.needs_end_token());
    if judgement.rejection.is_none() && counted > u64::from(claim.max_tokens) {
        judgement.rejection = Some(Rejection::TooManyTokens {
            tokens: counted as u32,
            max_tokens: claim.max_tokens,
        });
    }
    judgement
}

fn cheap_rejection(rejection: Rejection) -> TextVerdict {
    TextVerdict {
        accepted: false,
        rejection: Some(rejection),
        tokens_checked: 0,
        worst: None,
        rejected: Vec::new(),
        ending: None,
        retokenized: false,
        forward_passes: 0,
        tokens_decoded: 0,
        surprisal_peak: None,
    }
}

fn validate(claim: &TextClaim<'_>) -> Result<(), RecheckError> {
    if !(claim.temperature >= 0.0 && claim.temperature.is_finite()) {
        return Err(RecheckError::InvalidClaim(
            "temperature must be a finite number >= 0".into(),
        ));
    }
    if claim.max_tokens == 0 {
        return Err(RecheckError::InvalidClaim(
            "max_tokens must be at least 1".into(),
        ));
    }
    if claim.completion.len() > MAX_COMPLETION_BYTES {
        return Err(RecheckError::ClaimTooLarge {
            part: "completion",
            bytes: claim.completion.len(),
            limit: MAX_COMPLETION_BYTES,
        });
    }
    if claim.stop.len() > MAX_STOP_SEQUENCES || claim.stop.iter().any(|s| s.len() > MAX_STOP_BYTES)
    {
        return Err(RecheckError::InvalidClaim(format!(
            "at most {MAX_STOP_SEQUENCES} stop sequences of at most {MAX_STOP_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The outcome of re-checking one claimed embedding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EmbeddingVerdict {
    /// Cosine between the claimed and the recomputed vector.
    pub cosine: f32,
    /// Whether the cosine reaches [`EMBEDDING_MIN_COSINE`].
    pub accepted: bool,
}

/// Compares a claimed embedding with a recomputed one.
pub fn compare_embedding(
    claimed: &[f32],
    recomputed: &[f32],
) -> Result<EmbeddingVerdict, RecheckError> {
    check_vector(claimed, recomputed.len())?;
    let (mut dot, mut nc, mut nr) = (0f64, 0f64, 0f64);
    for (&c, &r) in claimed.iter().zip(recomputed) {
        let (c, r) = (f64::from(c), f64::from(r));
        dot += c * r;
        nc += c * c;
        nr += r * r;
    }
    let cosine = if nr > 0.0 {
        (dot / (nc.sqrt() * nr.sqrt())) as f32
    } else {
        0.0
    };
    Ok(EmbeddingVerdict {
        cosine,
        accepted: cosine >= EMBEDDING_MIN_COSINE,
    })
}

/// Recomputes the embeddings of `texts` and compares each with the claimed vector; the claimed
/// vectors are checked for shape before the model runs.
pub fn check_embeddings(
    embedder: &Embedder,
    texts: &[String],
    claimed: &[Vec<f32>],
) -> Result<Vec<EmbeddingVerdict>, RecheckError> {
    if texts.len() != claimed.len() {
        return Err(RecheckError::InvalidClaim(format!(
            "{} texts but {} claimed vectors",
            texts.len(),
            claimed.len()
        )));
    }
    for vector in claimed {
        check_vector(vector, embedder.dimensions())?;
    }
    let (recomputed, _) = embedder.embed_at_most(texts, MAX_RECHECK_EMBED_TOKENS)?;
    claimed
        .iter()
        .zip(&recomputed)
        .map(|(c, r)| compare_embedding(c, r))
        .collect()
}

fn check_vector(vector: &[f32], expected: usize) -> Result<(), RecheckError> {
    if vector.len() != expected {
        return Err(RecheckError::DimensionMismatch {
            claimed: vector.len(),
            expected,
        });
    }
    if let Some(index) = vector.iter().position(|x| !x.is_finite()) {
        return Err(RecheckError::NonFinite { index });
    }
    if vector.iter().all(|&x| x == 0.0) {
        return Err(RecheckError::ZeroVector);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(gap: f32, chosen_lp: f64, ln_a: f64) -> Step {
        Step {
            best: 10.0,
            chosen_token: 1,
            chosen: 10.0 - gap,
            chosen_lp,
            lse_t: 0.0,
            ln_a,
            alternatives: Vec::new(),
        }
    }

    fn judged(temperature: f32, max_tokens: u32, end: bool, steps: Vec<Step>) -> Judgement {
        let claim = TextClaim {
            prompt: ClaimedPrompt::Tokens(&[1]),
            completion: "",
            finish: FinishReason::Stop,
            stop: &[],
            temperature,
            max_tokens,
        };
        let search = Search {
            claim: &claim,
            target: Target {
                bytes: Vec::new(),
                completion_len: 0,
                ending: if end {
                    Ending::EndOfGeneration
                } else {
                    Ending::Length
                },
            },
            prompt: &[1],
            limit: 100,
            passes: 0,
            decoded: 0,
            best_failure: None,
        };
        let path_len = steps.len() - usize::from(end);
        let evaluation = Evaluation {
            path: vec![1; path_len],
            offsets: vec![0; path_len],
            steps,
            fixed: 0,
        };
        judge(&search, &evaluation)
    }

    #[test]
    fn greedy_rule_names_the_tokens_outside_the_margin_and_a_bad_end() {
        let ok = judged(
            0.0,
            10,
            true,
            vec![
                step(0.0, 0.0, 0.0),
                step(0.9, 0.0, 0.0),
                step(0.2, 0.0, 0.0),
            ],
        );
        assert_eq!(ok.rejection, None);
        let bad = judged(
            0.0,
            10,
            false,
            vec![
                step(0.0, 0.0, 0.0),
                step(3.0, 0.0, 0.0),
                step(0.0, 0.0, 0.0),
                step(1.5, 0.0, 0.0),
            ],
        );
        assert_eq!(bad.rejection, Some(Rejection::TokenOutsideMargin));
        assert_eq!(bad.bad, vec![1, 3]);
        let end = judged(
            0.0,
            10,
            true,
            vec![step(0.0, 0.0, 0.0), step(4.0, 0.0, 0.0)],
        );
        assert_eq!(end.rejection, Some(Rejection::EndNotPlausible));
        // Two tokens and an end token need max_tokens 3: the end is sampled after a token.
        let long = judged(0.0, 2, true, vec![step(0.0, 0.0, 0.0); 3]);
        assert_eq!(
            long.rejection,
            Some(Rejection::TooManyTokens {
                tokens: 3,
                max_tokens: 2
            })
        );
    }

    #[test]
    fn sampled_rule_tolerates_isolated_surprises_but_not_a_run_of_them() {
        // Typical sampled tokens (p = e^-1), with a few very unlikely ones spread out.
        let mut steps: Vec<Step> = (0..200).map(|_| step(1.0, -1.0, 0.8)).collect();
        for i in [20, 90, 160] {
            steps[i] = step(20.0, -28.0, 0.8);
        }
        let honest = judged(0.7, 1000, false, steps.clone());
        assert_eq!(honest.rejection, None, "{honest:?}");
        // Six unlikely tokens in a row, as a substituted phrase gives.
        for step_ in &mut steps[100..106] {
            *step_ = step(20.0, -28.0, 0.8);
        }
        let cheat = judged(0.7, 1000, false, steps);
        assert!(
            matches!(cheat.rejection, Some(Rejection::Improbable { .. })),
            "{cheat:?}"
        );
        assert!(
            cheat.bad.iter().all(|i| (100..106).contains(i)),
            "{cheat:?}"
        );
    }

    #[test]
    fn cosine_of_a_vector_with_itself_is_one_and_shapes_are_checked() {
        let v = [0.6f32, 0.8, 0.0];
        let same = compare_embedding(&v, &v).expect("same");
        assert!((same.cosine - 1.0).abs() < 1e-6 && same.accepted);
        let orthogonal = compare_embedding(&[0.0, 0.0, 1.0], &v).expect("orthogonal");
        assert!(orthogonal.cosine.abs() < 1e-6 && !orthogonal.accepted);
        assert!(matches!(
            compare_embedding(&[1.0, 0.0], &v),
            Err(RecheckError::DimensionMismatch {
                claimed: 2,
                expected: 3
            })
        ));
        assert!(matches!(
            compare_embedding(&[1.0, f32::NAN, 0.0], &v),
            Err(RecheckError::NonFinite { index: 1 })
        ));
        assert!(matches!(
            compare_embedding(&[0.0; 3], &v),
            Err(RecheckError::ZeroVector)
        ));
    }
}
