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
    catalog::{self, ModelInfo, ModelKind},
    embed::Embedder,
    recheck::{ClaimedPrompt, TextClaim, TextRechecker, check_embeddings},
    text::{ChatMessage, FinishReason, LoadOptions, TextModel},
};
use hibana_types::Hash;
use parking_lot::Mutex;
use serde_json::Value;

use crate::{
    openai::{ChatRequest, CompletionRequest, EmbeddingRequest},
    provider::embed::{MAX_EMBED_TOKENS, admit_embeddings},
    provider::text::{
        DEFAULT_CHAT_MAX_TOKENS, DEFAULT_COMPLETION_MAX_TOKENS, admit_chat, admit_completion,
        validate_sampling,
    },
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
    loaded: Mutex<HashMap<Hash, Option<LocalModel>>>,
}

/// An installed model's catalog entry and its loaded copy.
type LocalModel = (ModelInfo, Arc<Local>);

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
        self.get_with_info(hash).map(|(_, local)| local)
    }

    /// The model with content hash `hash` and its catalog entry, if it is installed and loads.
    pub fn get_with_info(&self, hash: &Hash) -> Option<(ModelInfo, Arc<Local>)> {
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
                Ok(l) => Some((info, Arc::new(l))),
                Err(e) => {
                    tracing::warn!(error = %e, model = %info.name, "cannot load a model to judge answers");
                    None
                }
            }
        });
        self.loaded.lock().insert(*hash, loaded.clone());
        loaded
    }

    /// The catalog entries of the installed models (without loading them).
    pub fn installed(&self) -> Vec<ModelInfo> {
        catalog::list(&self.dir).unwrap_or_default()
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

/// Whether a response is a refusal: an OpenAI error body (`{"error": …}`) rather than an
/// answer.
pub fn is_refusal(response: &[u8]) -> bool {
    serde_json::from_slice::<Value>(response).is_ok_and(|v| {
        v.get("error").is_some() && v.get("choices").is_none() && v.get("data").is_none()
    })
}

/// Whether `response` signed by `receipt` is a signed refusal: an error body, signed for no
/// tokens and no price.
pub fn is_signed_refusal(receipt: &hibana_types::InferenceReceipt, response: &[u8]) -> bool {
    receipt.body.is_free() && is_refusal(response)
}

/// Judges a provider's signed response to `request`: a refusal (an error body signed for no
/// tokens and no price) by [`judge_refusal`] (with the models the provider declared,
/// `declared`), anything else as an answer on the local copy of the model its receipt names.
pub fn judge_response(
    local: &LocalModels,
    declared: &[Hash],
    receipt: &hibana_types::InferenceReceipt,
    request: &[u8],
    response: &[u8],
) -> Judgement {
    // An error body sold as an answer is judged as an answer (and found wrong).
    if is_signed_refusal(receipt, response) {
        return judge_refusal(local, declared, request, response);
    }
    match local.get(&receipt.body.model_hash) {
        Some(model) => model.judge(request, response),
        None => Judgement::Unjudgeable(format!(
            "model {} is not installed here",
            receipt.body.model_hash
        )),
    }
}

/// Room a response envelope takes around the answer itself (ids, model name, usage): far more
/// than any the provider writes.
const ENVELOPE_BYTES: usize = 2_048;

/// The most bytes one generated token can take in a JSON answer: its longest piece, each byte
/// escaped as `\u00XX` at worst.
fn max_token_json_bytes(model: &TextModel) -> usize {
    let longest = (0..model.vocab_size() as i32)
        .map(|t| model.token_piece(t).len())
        .max()
        .unwrap_or(0);
    6 * longest.max(1)
}

/// The most bytes an embeddings answer of `inputs` vectors of `dims` floats can take (as JSON
/// numbers, or as base64).
fn max_embeddings_bytes(inputs: usize, dims: usize, base64: bool) -> usize {
    let per_vector = if base64 {
        (dims * 4).div_ceil(3) * 4
    } else {
        // `-1.2345678e-38,` at most, for each float.
        dims * 16
    };
    ENVELOPE_BYTES + inputs * (per_vector + 64)
}

/// Judges a provider's signed refusal (`response`, an error body) of `request` (a batch line's
/// body, whose fields name its endpoint: `messages` chat, `prompt` completion, `input`
/// embeddings), against the models the provider declared (`declared`, by content hash, as the
/// batch recorded them when its results were committed). The refusal is right if the provider
/// declares no model of the name the request gives, or if the same checks the provider makes
/// before running refuse the request on the local copy of that model; it is wrong if they
/// admit it and its answer, however long, would fit in a challenge (so the provider had no
/// reason to refuse). Whatever cannot be told here (a declared model not installed here, a
/// request refused for a context longer than the judge's, an answer that might not fit) gets
/// no verdict.
pub fn judge_refusal(
    local: &LocalModels,
    declared: &[Hash],
    request: &[u8],
    response: &[u8],
) -> Judgement {
    if !is_refusal(response) {
        return Judgement::Unjudgeable("the response is not a refusal".into());
    }
    let right = |why: String| {
        tracing::debug!(%why, "a refusal is right");
        Judgement::Right
    };
    let Ok(v) = serde_json::from_slice::<Value>(request) else {
        return right("the request is not JSON".into());
    };
    let endpoint = match (
        v.get("messages").is_some(),
        v.get("prompt").is_some(),
        v.get("input").is_some(),
    ) {
        (true, false, false) => "chat",
        (false, true, false) => "completion",
        (false, false, true) => "embeddings",
        _ => return right("the request names no single endpoint".into()),
    };
    let Some(name) = v.get("model").and_then(Value::as_str) else {
        return right("the request names no model".into());
    };
    // The model the provider resolves the name to, among those it declared.
    let installed = local.installed();
    let found = installed.iter().find(|m| {
        declared.contains(&m.content_hash) && (m.name == name || m.content_hash.to_string() == name)
    });
    let Some(found) = found else {
        // Models declared but not installed here could carry the name, except the auditor
        // (every provider declares it, and it answers no text or embeddings endpoint).
        let audit = crate::audit::engine_hash();
        let unknown = declared
            .iter()
            .filter(|h| **h != audit && !installed.iter().any(|m| m.content_hash == **h))
            .count();
        if unknown > 0 {
            return Judgement::Unjudgeable(format!(
                "the provider declares {unknown} model(s) not installed here; {name} may be one"
            ));
        }
        return right(format!("the provider declares no model named {name}"));
    };
    let Some((info, model)) = local.get_with_info(&found.content_hash) else {
        return Judgement::Unjudgeable(format!("model {} does not load here", found.name));
    };
    let invalid = |e: serde_json::Error| crate::openai::ApiError::invalid(None, e.to_string());
    let refused = |e: crate::openai::ApiError| {
        if e.code == Some("context_length_exceeded") {
            // The judge's context may be shorter than the provider's.
            return Judgement::Unjudgeable(format!(
                "the judge's context is too short: {}",
                e.message
            ));
        }
        right(format!("the provider's checks refuse it: {}", e.message))
    };
    let worst = match endpoint {
        "chat" | "completion" => {
            // The provider generates at most what the request asks for, or the endpoint's
            // default (capped by the room its context leaves, which may exceed the judge's).
            let admitted = if endpoint == "chat" {
                serde_json::from_value::<ChatRequest>(v)
                    .map_err(invalid)
                    .and_then(|req| {
                        let asked = req.max_completion_tokens.or(req.max_tokens);
                        admit_chat(&info, &model, &req)
                            .map(|_| asked.unwrap_or(DEFAULT_CHAT_MAX_TOKENS))
                    })
            } else {
                serde_json::from_value::<CompletionRequest>(v)
                    .map_err(invalid)
                    .and_then(|req| {
                        admit_completion(&info, &model, &req)
                            .map(|_| req.max_tokens.unwrap_or(DEFAULT_COMPLETION_MAX_TOKENS))
                    })
            };
            let tokens = match admitted {
                Ok(tokens) => tokens,
                Err(e) => return refused(e),
            };
            let Local::Text(text) = model.as_ref() else {
                return Judgement::Unjudgeable("a text request admitted on another model".into());
            };
            ENVELOPE_BYTES + tokens as usize * max_token_json_bytes(text)
        }
        _ => {
            let job = match serde_json::from_value::<EmbeddingRequest>(v)
                .map_err(invalid)
                .and_then(|req| admit_embeddings(&info, &model, &req))
            {
                Ok(job) => job,
                Err(e) => return refused(e),
            };
            // The token limit, as the provider checks it before embedding.
            if let Err(e) = job.embedder.count_tokens(&job.inputs, MAX_EMBED_TOKENS) {
                return right(format!("its inputs are refused: {e}"));
            }
            max_embeddings_bytes(job.inputs.len(), job.embedder.dimensions(), job.base64)
        }
    };
    if worst > hibana_types::records::verify::MAX_CHALLENGE_RESPONSE_BYTES {
        return Judgement::Unjudgeable(format!(
            "its answer could take {worst} bytes, more than a challenge carries, so refusing \
             it may be right"
        ));
    }
    Judgement::Wrong(format!(
        "model {} admits the request and its answer fits in {worst} bytes: refusing it was wrong",
        info.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_from_answers() {
        assert!(is_refusal(br#"{"error":{"message":"no"}}"#));
        assert!(!is_refusal(br#"{"choices":[{"text":"x"}]}"#));
        assert!(!is_refusal(br#"{"error":null,"data":[]}"#));
        assert!(!is_refusal(b"not json"));
    }

    #[test]
    fn refusals_the_judge_cannot_see_through_are_never_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalModels::new(dir.path().to_path_buf());
        let error = br#"{"error":{"message":"busy"}}"#;
        let chat = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        // An answer is not judged as a refusal.
        assert!(matches!(
            judge_refusal(&local, &[], chat, br#"{"choices":[]}"#),
            Judgement::Unjudgeable(_)
        ));
        // Requests no provider answers: not JSON, no single endpoint, no model.
        for request in [
            b"nope".as_slice(),
            br#"{"model":"m","messages":[],"prompt":"x"}"#,
            br#"{"messages":[]}"#,
        ] {
            assert_eq!(judge_refusal(&local, &[], request, error), Judgement::Right);
        }
        // No model of that name, and the provider declares none the judge lacks.
        assert_eq!(
            judge_refusal(&local, &[crate::audit::engine_hash()], chat, error),
            Judgement::Right
        );
        // It declares a model the judge does not have: that may be the one named.
        assert!(matches!(
            judge_refusal(&local, &[Hash([3; 32])], chat, error),
            Judgement::Unjudgeable(_)
        ));
    }

    #[test]
    fn embeddings_answers_are_bounded_by_their_size() {
        // 384 floats take at most 16 bytes each as JSON numbers, 4 as base64 (in 4/3).
        assert_eq!(max_embeddings_bytes(1, 384, false), 2_048 + 384 * 16 + 64);
        assert_eq!(max_embeddings_bytes(2, 384, true), 2_048 + 2 * (2_048 + 64));
        let one = serde_json::to_string(&vec![-1.234_567_8e-38_f32; 384]).unwrap();
        assert!(one.len() <= 384 * 16, "{}", one.len());
    }
}
