//! Text generation from GGUF models with llama.cpp (through the `llama-cpp-2` crate).
//!
//! A [`TextModel`] holds the weights once and runs up to `parallel` generations at the same time,
//! each in its own llama.cpp context (its own KV cache), so one request never changes another's
//! numbers: with temperature 0 the same prompt always yields the same tokens.

use std::{num::NonZeroU32, sync::OnceLock};

use llama_cpp_2::{
    context::params::LlamaContextParams,
    llama_backend::LlamaBackend,
    llama_batch::LlamaBatch,
    model::{LlamaChatMessage, LlamaModel, params::LlamaModelParams},
    sampling::LlamaSampler,
    token::LlamaToken,
};
use parking_lot::{Condvar, Mutex};
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
    /// Context length in tokens (capped at the model's training context).
    pub n_ctx: u32,
    /// CPU threads shared by all running generations.
    pub threads: u32,
    /// Generations that may run at the same time; more callers wait.
    pub parallel: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        // One generation per core: on CPU, single-threaded decodes side by side beat one
        // multi-threaded decode (no per-token thread synchronisation).
        LoadOptions {
            n_ctx: 2048,
            threads,
            parallel: threads,
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

/// A loaded GGUF text model; share it in an `Arc` and call [`TextModel::generate`] from any thread.
pub struct TextModel {
    name: String,
    model: LlamaModel,
    n_ctx: u32,
    threads: u32,
    parallel: u32,
    /// Number of generations running now.
    active: Mutex<u32>,
    slot_free: Condvar,
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

/// Releases a generation slot when dropped.
struct Slot<'a>(&'a TextModel);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.active.lock() -= 1;
        self.0.slot_free.notify_one();
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
        let n_ctx = options.n_ctx.min(model.n_ctx_train().max(1));
        Ok(TextModel {
            name: info.name.clone(),
            model,
            n_ctx,
            threads: options.threads,
            parallel: options.parallel,
            active: Mutex::new(0),
            slot_free: Condvar::new(),
        })
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

    /// Waits for a free generation slot; returns it and the threads this generation may use.
    fn acquire(&self) -> (Slot<'_>, u32) {
        let mut active = self.active.lock();
        while *active >= self.parallel {
            self.slot_free.wait(&mut active);
        }
        *active += 1;
        // Split the cores between the generations running now; ggml's results do not depend on
        // the thread count (each output row is computed by one thread), so this keeps outputs
        // deterministic while letting one lone request use every core.
        let threads = (self.threads / *active).max(1);
        (Slot(self), threads)
    }

    /// Generates from a raw prompt; calls `on_token` with each piece of text as it is produced
    /// (return false to stop early).
    pub fn generate(
        &self,
        prompt: &str,
        params: &GenerateParams,
        on_token: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, AiError> {
        validate(params)?;
        let prompt_tokens: Vec<LlamaToken> =
            self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        if prompt_tokens.is_empty() {
            return Err(AiError::InvalidRequest("the prompt is empty".into()));
        }
        let n_prompt = len_u32(prompt_tokens.len());
        if n_prompt >= self.n_ctx {
            return Err(AiError::PromptTooLong {
                prompt_tokens: n_prompt,
                context_length: self.n_ctx,
            });
        }

        let (_slot, threads) = self.acquire();
        let n_batch = self.n_ctx.min(512);
        let ctx_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(1)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads as i32);
        let mut ctx = self
            .model
            .new_context(backend()?, ctx_params)
            .map_err(|e| AiError::Inference(format!("cannot create a context: {e}")))?;

        // Prompt, in chunks of at most n_batch tokens; logits only for the last token.
        let mut batch = LlamaBatch::new(n_batch as usize, 1);
        let last = prompt_tokens.len() - 1;
        for (chunk_index, chunk) in prompt_tokens.chunks(n_batch as usize).enumerate() {
            batch.clear();
            for (j, token) in chunk.iter().enumerate() {
                let pos = chunk_index * n_batch as usize + j;
                batch
                    .add(*token, pos as i32, &[0], pos == last)
                    .map_err(|e| AiError::Inference(e.to_string()))?;
            }
            ctx.decode(&mut batch)
                .map_err(|e| AiError::Inference(format!("prompt decode: {e}")))?;
        }

        let mut sampler = sampler(params);
        let vocab = self.model.vocab();
        let mut out = TextStream::new(&params.stop);
        let mut n_cur = n_prompt;
        let mut completion_tokens = 0u32;
        let finish_reason = loop {
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                break FinishReason::Stop;
            }
            completion_tokens += 1;
            let piece = vocab.token_to_piece(token, false, None);
            match out.push(&piece, on_token) {
                Flow::Continue => {}
                Flow::Stop => break FinishReason::Stop,
            }
            if completion_tokens >= params.max_tokens || n_cur >= self.n_ctx {
                break FinishReason::Length;
            }
            batch.clear();
            batch
                .add(token, n_cur as i32, &[0], true)
                .map_err(|e| AiError::Inference(e.to_string()))?;
            ctx.decode(&mut batch)
                .map_err(|e| AiError::Inference(format!("decode: {e}")))?;
            n_cur += 1;
        };
        let text = out.finish(on_token);
        Ok(Generation {
            text,
            prompt_tokens: n_prompt,
            completion_tokens,
            finish_reason,
        })
    }
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

/// Greedy for temperature 0, else temperature then nucleus then a seeded draw.
fn sampler(params: &GenerateParams) -> LlamaSampler {
    if params.temperature == 0.0 {
        return LlamaSampler::greedy();
    }
    // llama.cpp seeds are 32-bit and u32::MAX means "random"; fold the 64-bit seed and avoid it.
    let folded = (params.seed ^ (params.seed >> 32)) as u32;
    let seed = if folded == u32::MAX { 0 } else { folded };
    LlamaSampler::chain_simple([
        LlamaSampler::temp(params.temperature),
        LlamaSampler::top_p(params.top_p, 1),
        LlamaSampler::dist(seed),
    ])
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
