//! Text generation from GGUF models with llama.cpp (through the `llama-cpp-2` crate).
//!
//! A [`TextModel`] holds the weights once and decodes up to `parallel` generations together in
//! one batch per step, each sequence with its own KV cache stream, so one request never changes
//! another's numbers: with temperature 0 the same prompt always yields the same tokens, alone or
//! beside others.

use std::{
    collections::VecDeque,
    num::NonZeroU32,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
};

use llama_cpp_2::{
    context::{LlamaContext, params::LlamaContextParams},
    llama_backend::LlamaBackend,
    llama_batch::LlamaBatch,
    model::{LlamaChatMessage, LlamaModel, params::LlamaModelParams},
    sampling::LlamaSampler,
    token::LlamaToken,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::{
    AiError,
    catalog::{ModelInfo, ModelKind},
};

/// One message of a chat conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// How to sample a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateParams {
    /// Maximum number of tokens to generate (at least 1).
    pub max_tokens: u32,
    /// Sampling temperature; 0 means deterministic greedy decoding.
    pub temperature: f32,
    /// Nucleus sampling mass in (0, 1]; ignored when temperature is 0.
    pub top_p: f32,
    /// Seed of the sampler; the same seed and prompt give the same tokens.
    pub seed: u64,
    /// Strings that end the generation; they are not included in the text.
    pub stop: Vec<String>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_tokens: 128,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End-of-generation token, a stop sequence, or the caller asked to stop.
    Stop,
    /// `max_tokens` reached or the context is full.
    Length,
}

/// The result of [`TextModel::generate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// Generated text, without the stop sequence that ended it.
    pub text: String,
    /// Tokens in the prompt (including any BOS token the model adds).
    pub prompt_tokens: u32,
    /// Tokens generated (the end-of-generation token is not counted).
    pub completion_tokens: u32,
    /// Why generation ended.
    pub finish_reason: FinishReason,
}

/// How to load a text model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// Context length in tokens of each generation (capped at the model's training context).
    pub n_ctx: u32,
    /// CPU threads used by the decoding engine.
    pub threads: u32,
    /// Generations decoded together in one batch; more callers wait for a free sequence.
    pub parallel: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        LoadOptions {
            n_ctx: 2048,
            threads,
            parallel: 8,
        }
    }
}

/// llama.cpp's process-wide backend; it may be initialised only once per process.
fn backend() -> Result<&'static LlamaBackend, AiError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // Route llama.cpp's chatter into `tracing` instead of stderr.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| AiError::Inference(format!("cannot initialise llama.cpp: {e}")))
}

/// A generation request handed to the decoding engine.
struct Job {
    tokens: Vec<LlamaToken>,
    params: GenerateParams,
    /// A GBNF grammar (root rule `root`) every generated token must keep the text inside.
    grammar: Option<String>,
    events: mpsc::Sender<Event>,
}

/// What the engine reports to the caller of [`TextModel::generate`].
enum Event {
    /// The id and bytes of one generated token.
    Token(LlamaToken, Vec<u8>),
    /// Generation ended on the engine's side (end-of-generation token, `max_tokens`, context).
    End(FinishReason),
    /// llama.cpp failed.
    Failed(String),
}

/// A loaded GGUF text model; share it in an `Arc` and call [`TextModel::generate`] from any thread.
///
/// One engine thread owns a llama.cpp context with `parallel` sequences, each with its own KV
/// cache stream, and decodes every running generation in one batch per step (prompts are read in
/// the same batches), so total throughput grows with the number of concurrent requests. A new
/// request goes to the free stream whose cached tokens share the longest prefix with its prompt,
/// and that prefix is not read again (a shared system prompt, the earlier turns of a chat).
pub struct TextModel {
    name: String,
    model: Arc<LlamaModel>,
    n_ctx: u32,
    threads: u32,
    parallel: u32,
    /// Prompt tokens taken from a stream's cache instead of being decoded, since loading.
    reused: Arc<AtomicU64>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    engine: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for TextModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextModel")
            .field("name", &self.name)
            .field("n_ctx", &self.n_ctx)
            .field("threads", &self.threads)
            .field("parallel", &self.parallel)
            .finish()
    }
}

impl Drop for TextModel {
    fn drop(&mut self) {
        // Closing the job channel ends the engine loop once its running generations finish.
        self.jobs.lock().take();
        if let Some(engine) = self.engine.lock().take() {
            let _ = engine.join();
        }
    }
}

impl TextModel {
    /// Loads a chat or completion model from the catalog.
    pub fn load(info: &ModelInfo, options: LoadOptions) -> Result<Self, AiError> {
        if info.kind == ModelKind::Embedding {
            return Err(AiError::WrongKind {
                name: info.name.clone(),
                expected: "chat or completion".into(),
                actual: info.kind.to_string(),
            });
        }
        if options.n_ctx == 0 || options.threads == 0 || options.parallel == 0 {
            return Err(AiError::InvalidRequest(
                "n_ctx, threads and parallel must be at least 1".into(),
            ));
        }
        if options.parallel > MAX_PARALLEL {
            return Err(AiError::InvalidRequest(format!(
                "parallel must be at most {MAX_PARALLEL}"
            )));
        }
        if !info.path.is_file() {
            return Err(AiError::Damaged {
                name: info.name.clone(),
                reason: format!("{} is missing", info.path.display()),
            });
        }
        let model =
            LlamaModel::load_from_file(backend()?, &info.path, &LlamaModelParams::default())
                .map_err(|e| AiError::Load {
                    name: info.name.clone(),
                    reason: e.to_string(),
                })?;
        let model = Arc::new(model);
        let n_ctx = options.n_ctx.min(model.n_ctx_train().max(1));
        let (jobs, job_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let reused = Arc::new(AtomicU64::new(0));
        let engine = Engine {
            model: Arc::clone(&model),
            n_ctx,
            threads: options.threads,
            parallel: options.parallel,
            reused: Arc::clone(&reused),
        };
        let handle = std::thread::Builder::new()
            .name(format!("llama-{}", info.name))
            .spawn(move || engine.run(job_rx, ready_tx))
            .map_err(|e| AiError::Inference(format!("cannot start the decoding thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                let _ = handle.join();
                return Err(AiError::Load {
                    name: info.name.clone(),
                    reason,
                });
            }
            Err(_) => {
                return Err(AiError::Load {
                    name: info.name.clone(),
                    reason: "the decoding thread stopped".into(),
                });
            }
        }
        Ok(TextModel {
            name: info.name.clone(),
            model,
            n_ctx,
            threads: options.threads,
            parallel: options.parallel,
            reused,
            jobs: Mutex::new(Some(jobs)),
            engine: Mutex::new(Some(handle)),
        })
    }

    /// Prompt tokens served from the engine's prefix cache instead of being decoded, since loading.
    pub fn reused_prompt_tokens(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    /// Context length in tokens (prompt plus generated tokens).
    pub fn context_length(&self) -> u32 {
        self.n_ctx
    }

    /// The catalog name of the model.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Formats a conversation with the chat template from the GGUF metadata, ready for the
    /// assistant's answer.
    pub fn apply_chat_template(&self, messages: &[ChatMessage]) -> Result<String, AiError> {
        let template = self
            .model
            .chat_template(None)
            .map_err(|_| AiError::NoChatTemplate(self.name.clone()))?;
        let chat = messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AiError::InvalidRequest(format!("chat message: {e}")))?;
        self.model
            .apply_chat_template(&template, &chat, true)
            .map_err(|e| AiError::InvalidRequest(format!("cannot apply chat template: {e}")))
    }

    /// Tokens `text` takes as a prompt (the same count [`Generation::prompt_tokens`] reports).
    pub fn count_tokens(&self, text: &str) -> Result<u32, AiError> {
        Ok(len_u32(self.tokenize(text).len()))
    }

    /// Token ids of `text` as a prompt: special tokens such as `<|im_start|>` are parsed, and
    /// the model's BOS token is added if it wants one.
    pub fn tokenize(&self, text: &str) -> Vec<i32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), true, true)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// Generates from a raw prompt; calls `on_token` with each piece of text as it is produced
    /// (return false to stop early).
    pub fn generate(
        &self,
        prompt: &str,
        params: &GenerateParams,
        on_token: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, AiError> {
        self.generate_with_tokens(prompt, params, on_token)
            .map(|(generation, _)| generation)
    }

    /// [`TextModel::generate`], also returning the ids of the generated tokens (the last one may
    /// hold a stop sequence that was cut from the text; an end-of-generation token is not listed).
    pub fn generate_with_tokens(
        &self,
        prompt: &str,
        params: &GenerateParams,
        on_token: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(Generation, Vec<i32>), AiError> {
        self.run_job(prompt, params, None, on_token)
    }

    /// [`TextModel::generate`] held to a GBNF grammar (llama.cpp's format, root rule `root`):
    /// only tokens that keep the text a prefix of the grammar's language are sampled, and the
    /// generation ends when the grammar is complete. A grammar that does not parse is refused.
    pub fn generate_constrained(
        &self,
        prompt: &str,
        params: &GenerateParams,
        grammar: &str,
    ) -> Result<Generation, AiError> {
        self.run_job(prompt, params, Some(grammar.to_string()), &mut |_| true)
            .map(|(generation, _)| generation)
    }

    fn run_job(
        &self,
        prompt: &str,
        params: &GenerateParams,
        grammar: Option<String>,
        on_token: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(Generation, Vec<i32>), AiError> {
        validate(params)?;
        let tokens: Vec<LlamaToken> = self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        if tokens.is_empty() {
            return Err(AiError::InvalidRequest("the prompt is empty".into()));
        }
        let n_prompt = len_u32(tokens.len());
        if n_prompt >= self.n_ctx {
            return Err(AiError::PromptTooLong {
                prompt_tokens: n_prompt,
                context_length: self.n_ctx,
            });
        }
        let (events, rx) = mpsc::channel();
        let job = Job {
            tokens,
            params: params.clone(),
            grammar,
            events,
        };
        let sent = match self.jobs.lock().as_ref() {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(AiError::Inference("the decoding engine has stopped".into()));
        }
        let mut out = TextStream::new(&params.stop);
        let mut completion_tokens = 0u32;
        let mut ids = Vec::new();
        // Dropping `rx` (returning from here) tells the engine to free the sequence.
        let finish_reason = loop {
            match rx.recv() {
                Ok(Event::Token(token, piece)) => {
                    completion_tokens += 1;
                    ids.push(token.0);
                    if let Flow::Stop = out.push(&piece, on_token) {
                        break FinishReason::Stop;
                    }
                }
                Ok(Event::End(reason)) => break reason,
                Ok(Event::Failed(reason)) => return Err(AiError::Inference(reason)),
                Err(_) => {
                    return Err(AiError::Inference("the decoding engine has stopped".into()));
                }
            }
        };
        let text = out.finish(on_token);
        let generation = Generation {
            text,
            prompt_tokens: n_prompt,
            completion_tokens,
            finish_reason,
        };
        Ok((generation, ids))
    }
}

impl TextModel {
    /// Token ids of `text` as the model's own output: no BOS token, and text that looks like a
    /// special token (`<|im_end|>`) stays plain text, as it does in a generated answer.
    pub fn tokenize_output(&self, text: &str) -> Vec<i32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// Number of tokens in the vocabulary; token ids run from 0 to this, exclusive.
    pub fn vocab_size(&self) -> u32 {
        u32::try_from(self.model.n_vocab()).unwrap_or(0)
    }

    /// The bytes `generate` streams for `token` (empty for control tokens, and for ids outside
    /// the vocabulary).
    pub fn token_piece(&self, token: i32) -> Vec<u8> {
        if !(0..self.model.n_vocab()).contains(&token) {
            return Vec::new();
        }
        self.model
            .vocab()
            .token_to_piece(LlamaToken(token), false, None)
    }

    /// Whether `token` ends a generation (end of sequence, end of turn…).
    pub fn is_end_of_generation(&self, token: i32) -> bool {
        (0..self.model.n_vocab()).contains(&token) && self.model.vocab().is_eog(LlamaToken(token))
    }

    /// Opens a teacher-forcing context for sequences of at most `capacity` tokens (capped at
    /// [`TextModel::context_length`]), separate from the decoding engine and its streams.
    pub fn forward_session(&self, capacity: u32) -> Result<ForwardSession<'_>, AiError> {
        let n_ctx = capacity.clamp(1, self.n_ctx);
        let n_batch = BATCH_TOKENS.min(n_ctx);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(1)
            .with_n_threads(self.threads as i32)
            .with_n_threads_batch(self.threads as i32);
        let ctx = {
            // llama.cpp may write to the model while it creates a context (see
            // `LlamaModel::new_context`), so two sessions are never created at once.
            static CREATING: Mutex<()> = Mutex::new(());
            let _one_at_a_time = CREATING.lock();
            self.model
                .new_context(backend()?, params)
                .map_err(|e| AiError::Inference(format!("cannot create a context: {e}")))?
        };
        Ok(ForwardSession {
            ctx,
            batch: LlamaBatch::new(n_batch as usize, 1),
            n_ctx,
            n_batch,
            n_vocab: self.model.n_vocab(),
            cached: Vec::new(),
        })
    }
}

/// Logits computed per llama.cpp call at most: llama.cpp keeps an output buffer of
/// `outputs × vocabulary` floats, 64 MiB here for Gemma 3's 262,144 tokens.
const FORWARD_OUTPUTS_PER_DECODE: usize = 64;

/// A llama.cpp context that reads a whole token sequence in one pass (teacher forcing) and hands
/// back the logits of every requested position, for re-checking an answer without generating it.
///
/// It keeps the tokens it has read: a second pass over a sequence that shares a prefix with the
/// previous one reads only the part after the shared prefix.
pub struct ForwardSession<'m> {
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'m>,
    n_ctx: u32,
    n_batch: u32,
    n_vocab: i32,
    /// The tokens whose keys and values the context holds, from position 0.
    cached: Vec<LlamaToken>,
}

impl std::fmt::Debug for ForwardSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardSession")
            .field("n_ctx", &self.n_ctx)
            .field("cached", &self.cached.len())
            .finish()
    }
}

impl ForwardSession<'_> {
    /// Most tokens one sequence may hold.
    pub fn capacity(&self) -> u32 {
        self.n_ctx
    }

    /// Tokens read by llama.cpp since the session opened (cached prefixes not counted).
    pub fn cached_tokens(&self) -> usize {
        self.cached.len()
    }

    /// Reads `tokens` from position 0 and calls `visit(i, logits)` for every `i` in
    /// `outputs_from..tokens.len()`, in order, with the logits predicting the token after `i`.
    ///
    /// `logits` has one entry per vocabulary token. Returns the number of tokens decoded (those
    /// after the prefix shared with the previous call are; the others come from the cache).
    pub fn forward(
        &mut self,
        tokens: &[i32],
        outputs_from: usize,
        visit: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<usize, AiError> {
        if tokens.is_empty() || outputs_from >= tokens.len() {
            return Err(AiError::InvalidRequest(
                "a forward pass needs tokens and at least one position to output".into(),
            ));
        }
        if tokens.len() > self.n_ctx as usize {
            return Err(AiError::PromptTooLong {
                prompt_tokens: len_u32(tokens.len()),
                context_length: self.n_ctx,
            });
        }
        if let Some(bad) = tokens.iter().find(|t| !(0..self.n_vocab).contains(*t)) {
            return Err(AiError::InvalidRequest(format!(
                "token id {bad} is outside the vocabulary of {} tokens",
                self.n_vocab
            )));
        }
        let tokens: Vec<LlamaToken> = tokens.iter().map(|&t| LlamaToken(t)).collect();
        // Positions from `outputs_from` on are read again for their logits.
        let keep = common_prefix(&self.cached, &tokens).min(outputs_from);
        let start = reusable_prefix(&mut self.ctx, 0, &mut self.cached, &tokens[..keep + 1]);
        let mut at = start;
        let result = (|| {
            while at < tokens.len() {
                self.batch.clear();
                let mut outputs: Vec<(usize, i32)> = Vec::new();
                while at < tokens.len()
                    && (self.batch.n_tokens() as u32) < self.n_batch
                    && outputs.len() < FORWARD_OUTPUTS_PER_DECODE
                {
                    let wanted = at >= outputs_from;
                    self.batch
                        .add(tokens[at], at as i32, &[0], wanted)
                        .map_err(|e| AiError::Inference(format!("batch: {e}")))?;
                    if wanted {
                        outputs.push((at, self.batch.n_tokens() - 1));
                    }
                    at += 1;
                }
                self.ctx
                    .decode(&mut self.batch)
                    .map_err(|e| AiError::Inference(format!("decode: {e}")))?;
                for (position, index) in outputs {
                    visit(position, self.ctx.get_logits_ith(index));
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.cached = tokens;
                Ok(self.cached.len() - start)
            }
            Err(e) => {
                // The cache holds an unknown part of this sequence; start afresh next time.
                self.ctx.clear_kv_cache();
                self.cached.clear();
                Err(e)
            }
        }
    }
}

/// Most sequences one context may hold (llama.cpp's `LLAMA_MAX_SEQ` is 256; beyond a few dozen
/// a CPU gains nothing).
const MAX_PARALLEL: u32 = 64;

/// Tokens decoded per llama.cpp call (prompt chunks and generation steps together).
const BATCH_TOKENS: u32 = 512;

/// The decoding loop's configuration; it runs on its own thread and owns the llama.cpp context.
struct Engine {
    model: Arc<LlamaModel>,
    n_ctx: u32,
    threads: u32,
    parallel: u32,
    reused: Arc<AtomicU64>,
}

/// One running generation inside the engine.
struct Sequence {
    job: Job,
    sampler: LlamaSampler,
    /// Prompt tokens already decoded.
    prompt_done: usize,
    /// Position of the next token in this sequence.
    n_cur: u32,
    generated: u32,
    /// The last sampled token, to decode in the next step.
    next: Option<LlamaToken>,
    /// Index in the current batch whose logits belong to this sequence.
    logits_at: Option<i32>,
}

impl Engine {
    fn run(self, jobs: mpsc::Receiver<Job>, ready: mpsc::Sender<Result<(), String>>) {
        let backend = match backend() {
            Ok(b) => b,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let n_batch = BATCH_TOKENS.min(self.n_ctx.saturating_mul(self.parallel));
        // Each sequence gets its own KV stream of n_ctx cells (kv_unified off), so what one
        // sequence computes does not depend on the others sharing the batch.
        let ctx_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.n_ctx.saturating_mul(self.parallel)))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(self.parallel)
            .with_kv_unified(false)
            .with_n_threads(self.threads as i32)
            .with_n_threads_batch(self.threads as i32);
        let mut ctx = match self.model.new_context(backend, ctx_params) {
            Ok(ctx) => ctx,
            Err(e) => {
                let _ = ready.send(Err(format!("cannot create a context: {e}")));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        drop(ready);
        let vocab = self.model.vocab();
        let mut batch = LlamaBatch::new(n_batch as usize, 1);
        let mut slots: Vec<Option<Sequence>> = (0..self.parallel).map(|_| None).collect();
        // The tokens whose keys and values each KV stream holds, from position 0, and when the
        // stream was last given a job (to pick the least recently used among equals).
        let mut cached: Vec<Vec<LlamaToken>> = vec![Vec::new(); slots.len()];
        let mut last_used: Vec<u64> = vec![0; slots.len()];
        let mut jobs_started = 0u64;
        let mut waiting: VecDeque<Job> = VecDeque::new();
        let mut open = true;
        loop {
            // Collect requests; block only when there is nothing to decode.
            if slots.iter().all(Option::is_none) && waiting.is_empty() {
                if !open {
                    return;
                }
                match jobs.recv() {
                    Ok(job) => waiting.push_back(job),
                    Err(_) => return,
                }
            }
            loop {
                match jobs.try_recv() {
                    Ok(job) => waiting.push_back(job),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            while let Some(job) = waiting.pop_front() {
                // The free stream with the longest cached prefix of this prompt, else the
                // least recently used one.
                let best = (0..slots.len())
                    .filter(|&id| slots[id].is_none())
                    .max_by_key(|&id| {
                        (
                            common_prefix(&cached[id], &job.tokens),
                            std::cmp::Reverse(last_used[id]),
                        )
                    });
                let Some(id) = best else {
                    waiting.push_front(job);
                    break;
                };
                jobs_started += 1;
                last_used[id] = jobs_started;
                let reuse = reusable_prefix(&mut ctx, id, &mut cached[id], &job.tokens);
                self.reused.fetch_add(reuse as u64, Ordering::Relaxed);
                let sampler = match sampler(&self.model, &job.params, job.grammar.as_deref()) {
                    Ok(sampler) => sampler,
                    Err(reason) => {
                        let _ = job.events.send(Event::Failed(reason));
                        continue;
                    }
                };
                slots[id] = Some(Sequence {
                    job,
                    sampler,
                    prompt_done: reuse,
                    n_cur: len_u32(reuse),
                    generated: 0,
                    next: None,
                    logits_at: None,
                });
            }

            // One batch: the next token of every generating sequence, then prompt chunks.
            batch.clear();
            let mut budget = n_batch as usize;
            let mut add_failed = None;
            for (id, seq) in slots.iter_mut().enumerate() {
                let Some(seq) = seq else { continue };
                seq.logits_at = None;
                if let Some(token) = seq.next.take() {
                    if let Err(e) = batch.add(token, seq.n_cur as i32, &[id as i32], true) {
                        add_failed = Some(e.to_string());
                        break;
                    }
                    cached[id].push(token);
                    seq.n_cur += 1;
                    seq.logits_at = Some(batch.n_tokens() - 1);
                    budget -= 1;
                }
            }
            for (id, seq) in slots.iter_mut().enumerate() {
                let Some(seq) = seq else { continue };
                if add_failed.is_some() || budget == 0 {
                    break;
                }
                let remaining = seq.job.tokens.len() - seq.prompt_done;
                if remaining == 0 {
                    continue;
                }
                let take = remaining.min(budget);
                for j in seq.prompt_done..seq.prompt_done + take {
                    let last = j + 1 == seq.job.tokens.len();
                    if let Err(e) = batch.add(seq.job.tokens[j], j as i32, &[id as i32], last) {
                        add_failed = Some(e.to_string());
                        break;
                    }
                    if last {
                        seq.logits_at = Some(batch.n_tokens() - 1);
                    }
                }
                cached[id]
                    .extend_from_slice(&seq.job.tokens[seq.prompt_done..seq.prompt_done + take]);
                seq.prompt_done += take;
                seq.n_cur = seq.prompt_done as u32;
                budget -= take;
            }
            let failure = match add_failed {
                Some(e) => Some(e),
                None if batch.n_tokens() == 0 => None,
                None => ctx.decode(&mut batch).err().map(|e| format!("decode: {e}")),
            };
            if let Some(reason) = failure {
                // Every sequence in this batch has lost its state; fail them all.
                ctx.clear_kv_cache();
                cached.iter_mut().for_each(Vec::clear);
                for slot in slots.iter_mut() {
                    if let Some(seq) = slot.take() {
                        let _ = seq.job.events.send(Event::Failed(reason.clone()));
                    }
                }
                continue;
            }

            // Sample the sequences whose logits were computed.
            for slot in slots.iter_mut() {
                let Some(seq) = slot else { continue };
                let Some(at) = seq.logits_at else { continue };
                let token = seq.sampler.sample(&ctx, at);
                let event = if vocab.is_eog(token) {
                    Some(FinishReason::Stop)
                } else {
                    seq.generated += 1;
                    let piece = vocab.token_to_piece(token, false, None);
                    if seq.job.events.send(Event::Token(token, piece)).is_err() {
                        // The caller has what it wanted (a stop sequence) or went away.
                        *slot = None;
                        continue;
                    }
                    if seq.generated >= seq.job.params.max_tokens || seq.n_cur >= self.n_ctx {
                        Some(FinishReason::Length)
                    } else {
                        seq.next = Some(token);
                        None
                    }
                };
                if let Some(reason) = event {
                    let _ = seq.job.events.send(Event::End(reason));
                    *slot = None;
                }
            }
        }
    }
}

/// How many leading tokens two sequences share.
fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Prepares KV stream `id` for `prompt`: keeps the cached prefix it shares with the prompt (at
/// least the last prompt token is always decoded again, for its logits) and drops the rest.
/// Returns how many prompt tokens are kept. A stream whose early positions a sliding-window
/// cache has already evicted cannot be reused and is cleared.
fn reusable_prefix(
    ctx: &mut LlamaContext<'_>,
    id: usize,
    cached: &mut Vec<LlamaToken>,
    prompt: &[LlamaToken],
) -> usize {
    let keep = common_prefix(cached, prompt).min(prompt.len().saturating_sub(1));
    let whole = keep > 0 && ctx.kv_cache_seq_pos_min(id as i32) == 0;
    if whole && ctx.clear_kv_cache_seq(Some(id as u32), Some(len_u32(keep)), None) == Ok(true) {
        cached.truncate(keep);
        return keep;
    }
    let _ = ctx.clear_kv_cache_seq(Some(id as u32), None, None);
    cached.clear();
    0
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn validate(params: &GenerateParams) -> Result<(), AiError> {
    if params.max_tokens == 0 {
        return Err(AiError::InvalidRequest(
            "max_tokens must be at least 1".into(),
        ));
    }
    if !(params.temperature >= 0.0 && params.temperature.is_finite()) {
        return Err(AiError::InvalidRequest(
            "temperature must be a finite number >= 0".into(),
        ));
    }
    if !(params.top_p > 0.0 && params.top_p <= 1.0) {
        return Err(AiError::InvalidRequest("top_p must be in (0, 1]".into()));
    }
    Ok(())
}

/// Greedy for temperature 0, else temperature then nucleus then a seeded draw; behind the
/// grammar's filter when there is one.
fn sampler(
    model: &LlamaModel,
    params: &GenerateParams,
    grammar: Option<&str>,
) -> Result<LlamaSampler, String> {
    let mut chain = Vec::new();
    if let Some(grammar) = grammar {
        chain.push(
            LlamaSampler::grammar(model, grammar, "root")
                .map_err(|e| format!("the grammar is not valid GBNF: {e}"))?,
        );
    }
    if params.temperature == 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        // llama.cpp seeds are 32-bit and u32::MAX means "random"; fold the 64-bit seed and
        // avoid it.
        let folded = (params.seed ^ (params.seed >> 32)) as u32;
        let seed = if folded == u32::MAX { 0 } else { folded };
        chain.extend([
            LlamaSampler::temp(params.temperature),
            LlamaSampler::top_p(params.top_p, 1),
            LlamaSampler::dist(seed),
        ]);
    }
    Ok(match chain.len() {
        1 => chain.remove(0),
        _ => LlamaSampler::chain_simple(chain),
    })
}

enum Flow {
    Continue,
    Stop,
}

/// Turns token bytes into text: completes UTF-8 sequences split across tokens, cuts at stop
/// sequences, and holds back text that could still become a stop sequence before streaming it.
struct TextStream<'a> {
    stops: Vec<&'a str>,
    pending: Vec<u8>,
    text: String,
    emitted: usize,
}

impl<'a> TextStream<'a> {
    fn new(stops: &'a [String]) -> Self {
        TextStream {
            stops: stops
                .iter()
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .collect(),
            pending: Vec::new(),
            text: String::new(),
            emitted: 0,
        }
    }

    fn push(&mut self, bytes: &[u8], on_token: &mut dyn FnMut(&str) -> bool) -> Flow {
        let old_len = self.text.len();
        self.pending.extend_from_slice(bytes);
        match std::str::from_utf8(&self.pending) {
            Ok(s) => {
                self.text.push_str(s);
                self.pending.clear();
            }
            Err(e) => {
                let valid = e.valid_up_to();
                if e.error_len().is_some() {
                    // Invalid bytes (not just an unfinished sequence): replace them.
                    self.text.push_str(&String::from_utf8_lossy(&self.pending));
                    self.pending.clear();
                } else {
                    let (done, rest) = self.pending.split_at(valid);
                    self.text.push_str(&String::from_utf8_lossy(done));
                    self.pending = rest.to_vec();
                }
            }
        }
        // A stop sequence can only start where it would overlap the new text.
        let longest = self.stops.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut from = old_len.saturating_sub(longest);
        while !self.text.is_char_boundary(from) {
            from -= 1;
        }
        let hit = self
            .stops
            .iter()
            .filter_map(|s| self.text[from..].find(s).map(|i| from + i))
            .min();
        if let Some(at) = hit {
            self.text.truncate(at);
            self.pending.clear();
            self.flush_to(self.text.len(), on_token);
            return Flow::Stop;
        }
        // Hold back a tail that is a proper prefix of some stop sequence.
        let held = self
            .stops
            .iter()
            .flat_map(|s| (1..s.len()).map(move |k| &s.as_bytes()[..k]))
            .filter(|prefix| self.text.as_bytes().ends_with(prefix))
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        let mut safe = self.text.len() - held;
        while !self.text.is_char_boundary(safe) {
            safe -= 1;
        }
        if self.flush_to(safe, on_token) {
            Flow::Continue
        } else {
            // The caller stopped listening: the text is what it has seen.
            self.text.truncate(self.emitted);
            self.pending.clear();
            Flow::Stop
        }
    }

    /// Streams text up to byte `to`; returns what the callback returned (true if nothing to send).
    fn flush_to(&mut self, to: usize, on_token: &mut dyn FnMut(&str) -> bool) -> bool {
        if to <= self.emitted {
            return true;
        }
        let keep_going = on_token(&self.text[self.emitted..to]);
        self.emitted = to;
        keep_going
    }

    fn finish(mut self, on_token: &mut dyn FnMut(&str) -> bool) -> String {
        if !self.pending.is_empty() {
            self.text.push_str(&String::from_utf8_lossy(&self.pending));
            self.pending.clear();
        }
        let end = self.text.len();
        self.flush_to(end, on_token);
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&[u8]]) -> (String, Vec<String>, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut streamed = Vec::new();
        let mut stream = TextStream::new(&stops);
        let mut stopped = false;
        for p in pieces {
            if let Flow::Stop = stream.push(p, &mut |s| {
                streamed.push(s.to_string());
                true
            }) {
                stopped = true;
                break;
            }
        }
        let text = stream.finish(&mut |s| {
            streamed.push(s.to_string());
            true
        });
        (text, streamed, stopped)
    }

    #[test]
    fn stop_sequence_split_across_tokens_is_cut_and_never_streamed() {
        let (text, streamed, stopped) = run(&["\nUser:"], &[b"Hi", b" there\n", b"Us", b"er: x"]);
        assert!(stopped);
        assert_eq!(text, "Hi there");
        assert_eq!(streamed.concat(), "Hi there");
    }

    #[test]
    fn held_back_prefix_is_released_when_no_stop_follows() {
        let (text, streamed, stopped) = run(&["END"], &[b"a E", b"N", b"x"]);
        assert!(!stopped);
        assert_eq!(text, "a ENx");
        assert_eq!(streamed, vec!["a ", "ENx"]);
    }

    #[test]
    fn utf8_split_across_tokens_is_joined() {
        let bytes = "é".as_bytes();
        let (text, streamed, _) = run(&[], &[b"caf", &bytes[..1], &bytes[1..]]);
        assert_eq!(text, "café");
        assert_eq!(streamed.concat(), "café");
    }
}
