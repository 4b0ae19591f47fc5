//! Judging a receipted answer without trusting the provider: from the exact request bytes the
//! receipt covers, rebuild what the provider fed its model (the same parsing and chat template
//! the provider uses); from the exact response bytes (a whole answer, or a stream's data
//! payloads each followed by a newline), read the claimed answer; then re-check it on our own
//! copy of the model: text by teacher forcing ([`hibana_ai::recheck`]: one forward pass, each
//! token within a margin of the best, so float differences between machines never convict an
//! honest provider), embeddings by cosine.
//!
//! The gateway and validators use it on a sample of the answers they see, and validators to
//! vote on challenges.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use hibana_ai::{
    catalog::{self, ModelKind},
    embed::Embedder,
    recheck::{ClaimedPrompt, TextClaim, TextRechecker, check_embeddings},
    text::{ChatMessage, FinishReason, LoadOptions, TextModel},
};
use hibana_types::Hash;
use parking_lot::Mutex;
use serde_json::Value;

use crate::{
    openai::{ChatRequest, CompletionRequest, EmbeddingRequest},
    provider::text::{DEFAULT_CHAT_MAX_TOKENS, DEFAULT_COMPLETION_MAX_TOKENS, validate_sampling},
};

/// What re-checking an answer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The answer is what the model could have produced for the request.
    Right,
    /// It is not, and why.
    Wrong(String),
    /// It cannot be judged here (another kind of model, a malformed or oversized exchange): no
    /// verdict either way.
    Unjudgeable(String),
}

impl Judgement {
    /// Whether the answer was found wrong.
    pub fn is_wrong(&self) -> bool {
        matches!(self, Judgement::Wrong(_))
    }
}

/// A local copy of a model, to judge answers of it.
pub enum Local {
    /// A chat or completion model.
    Text(Arc<TextModel>),
    /// An embedding model.
    Embed(Arc<Embedder>),
}

impl Local {
    /// Re-checks the answer `response` to `request` on this model.
    pub fn judge(&self, request: &[u8], response: &[u8]) -> Judgement {
        match self {
            Local::Text(m) => judge(Judge::Text(m), request, response),
            Local::Embed(e) => judge(Judge::Embed(e), request, response),
        }
    }
}

/// The installed models by content hash, each loaded on first use (with one thread: judging is
/// background work beside a node or a provider).
pub struct LocalModels {
    dir: PathBuf,
    loaded: Mutex<HashMap<Hash, Option<Arc<Local>>>>,
}

impl std::fmt::Debug for LocalModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalModels({})", self.dir.display())
    }
}

impl LocalModels {
    /// The models installed in `dir`.
    pub fn new(dir: PathBuf) -> LocalModels {
        LocalModels {
            dir,
            loaded: Mutex::default(),
        }
    }

    /// The model with content hash `hash`, if it is installed and loads.
    pub fn get(&self, hash: &Hash) -> Option<Arc<Local>> {
        if let Some(found) = self.loaded.lock().get(hash) {
            return found.clone();
        }
        let info = catalog::list(&self.dir)
            .ok()
            .and_then(|models| models.into_iter().find(|m| m.content_hash == *hash));
        let loaded = info.and_then(|info| {
            let loaded = match info.kind {
                ModelKind::Embedding => Embedder::load(&info).map(|e| Local::Embed(Arc::new(e))),
                _ => TextModel::load(
                    &info,
                    // One thread: more llama.cpp threads than free cores make every model on the
                    // machine crawl (its threads spin).
                    LoadOptions {
                        parallel: 1,
                        n_ctx: 1024,
                        threads: 1,
                    },
                )
                .map(|m| Local::Text(Arc::new(m))),
            };
            match loaded {
                Ok(l) => Some(Arc::new(l)),
                Err(e) => {
                    tracing::warn!(error = %e, model = %info.name, "cannot load a model to judge answers");
                    None
                }
            }
        });
        self.loaded.lock().insert(*hash, loaded.clone());
        loaded
    }
}

/// The model an answer is judged on.
#[derive(Clone, Copy)]
pub enum Judge<'m> {
    /// A chat or completion model.
    Text(&'m TextModel),
    /// An embedding model.
    Embed(&'m Embedder),
}

/// The claimed text and how it ended, from a whole answer or a stream's payloads.
fn claimed_text(response: &[u8], chat: bool) -> Result<(String, Option<String>), String> {
    let text_of = |v: &Value| -> Option<String> {
        let choice = v.pointer("/choices/0")?;
        let part = if chat {
            choice
                .pointer("/message/content")
                .or_else(|| choice.pointer("/delta/content"))
        } else {
            choice.get("text")
        };
        Some(part.and_then(Value::as_str).unwrap_or_default().to_string())
    };
    let finish_of = |v: &Value| {
        v.pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let Ok(v) = serde_json::from_slice::<Value>(response) {
        let text = text_of(&v).ok_or("the answer has no choice")?;
        return Ok((text, finish_of(&v)));
    }
    // A stream: each data payload on its own line.
    let body = std::str::from_utf8(response).map_err(|_| "the answer is not UTF-8")?;
    let (mut text, mut finish) = (String::new(), None);
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("a stream event: {e}"))?;
        text.push_str(&text_of(&v).unwrap_or_default());
        if let Some(f) = finish_of(&v) {
            finish = Some(f);
        }
    }
    Ok((text, finish))
}

/// Re-checks the answer `response` to `request` on `judge`.
pub fn judge(judge: Judge<'_>, request: &[u8], response: &[u8]) -> Judgement {
    match judge {
        Judge::Text(model) => judge_text(model, request, response),
        Judge::Embed(embedder) => judge_embeddings(embedder, request, response),
    }
}

fn judge_text(model: &TextModel, request: &[u8], response: &[u8]) -> Judgement {
    let Ok(v) = serde_json::from_slice::<Value>(request) else {
        return Judgement::Unjudgeable("the request is not JSON".into());
    };
    let chat = v.get("messages").is_some();
    if chat && v.get("prompt").is_some() {
        // The request does not say which endpoint answered it: either reading could be the
        // provider's, so neither can make it wrong.
        return Judgement::Unjudgeable(
            "the request has both messages and a prompt: chat or completion is ambiguous".into(),
        );
    }
    let (prompt, max_tokens, temperature, top_p, n, stop) = if chat {
        let Ok(req) = serde_json::from_value::<ChatRequest>(v) else {
            return Judgement::Unjudgeable("the request is not a chat request".into());
        };
        let messages: Vec<ChatMessage> = req
            .messages
            .iter()
            .map(|m| ChatMessage {
                role: m.role.clone(),
                content: m.content.clone(),
            })
            .collect();
        let prompt = match model.apply_chat_template(&messages) {
            Ok(p) => p,
            Err(e) => return Judgement::Unjudgeable(format!("chat template: {e}")),
        };
        (
            prompt,
            req.max_completion_tokens
                .or(req.max_tokens)
                .unwrap_or(DEFAULT_CHAT_MAX_TOKENS),
            req.temperature,
            req.top_p,
            req.n,
            req.stop,
        )
    } else {
        let Ok(req) = serde_json::from_value::<CompletionRequest>(v) else {
            return Judgement::Unjudgeable("the request is neither chat nor completion".into());
        };
        let mut prompts = req.prompt.into_vec();
        if prompts.len() != 1 {
            return Judgement::Unjudgeable("not exactly one prompt".into());
        }
        (
            prompts.remove(0),
            req.max_tokens.unwrap_or(DEFAULT_COMPLETION_MAX_TOKENS),
            req.temperature,
            req.top_p,
            req.n,
            req.stop,
        )
    };
    let Ok((temperature, _top_p)) = validate_sampling(temperature, top_p, n) else {
        return Judgement::Unjudgeable("the request's sampling is invalid".into());
    };
    let (text, finish) = match claimed_text(response, chat) {
        Ok(x) => x,
        Err(e) => return Judgement::Wrong(format!("the answer cannot be read: {e}")),
    };
    let finish = match finish.as_deref() {
        Some("length") => FinishReason::Length,
        Some("stop") => FinishReason::Stop,
        other => return Judgement::Wrong(format!("the answer's finish reason is {other:?}")),
    };
    let stop = stop.map(|s| s.into_vec()).unwrap_or_default();
    let claim = TextClaim {
        prompt: ClaimedPrompt::Text(&prompt),
        completion: &text,
        finish,
        stop: &stop,
        temperature,
        max_tokens,
    };
    match TextRechecker::new(model).check(&claim) {
        Ok(v) if v.accepted => Judgement::Right,
        Ok(v) => Judgement::Wrong(format!(
            "teacher forcing rejects it: {:?} (worst token {:?})",
            v.rejection, v.worst
        )),
        Err(e) => Judgement::Unjudgeable(e.to_string()),
    }
}

fn judge_embeddings(embedder: &Embedder, request: &[u8], response: &[u8]) -> Judgement {
    let Ok(req) = serde_json::from_slice::<EmbeddingRequest>(request) else {
        return Judgement::Unjudgeable("the request is not an embeddings request".into());
    };
    let texts = req.input.into_vec();
    let Ok(v) = serde_json::from_slice::<Value>(response) else {
        return Judgement::Wrong("the answer is not JSON".into());
    };
    let mut claimed = Vec::with_capacity(texts.len());
    for i in 0..texts.len() {
        let vector = v.pointer(&format!("/data/{i}/embedding"));
        let floats: Option<Vec<f32>> = match vector {
            Some(Value::Array(xs)) => xs.iter().map(|x| x.as_f64().map(|f| f as f32)).collect(),
            Some(Value::String(b64)) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .ok()
                    .filter(|b| b.len() % 4 == 0)
                    .map(|b| {
                        b.chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect()
                    })
            }
            _ => None,
        };
        match floats {
            Some(f) => claimed.push(f),
            None => return Judgement::Wrong(format!("the answer has no vector {i}")),
        }
    }
    match check_embeddings(embedder, &texts, &claimed) {
        Ok(verdicts) => match verdicts.iter().position(|v| !v.accepted) {
            None => Judgement::Right,
            Some(i) => Judgement::Wrong(format!(
                "vector {i} has cosine {} to the recomputed one",
                verdicts[i].cosine
            )),
        },
        Err(e) => Judgement::Wrong(e.to_string()),
    }
}
