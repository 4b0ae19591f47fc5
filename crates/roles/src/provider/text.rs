//! Text generation: `POST /v1/chat/completions` and `POST /v1/completions`, answered whole or
//! streamed as server-sent events, with the receipt in a header or as the stream's last comment.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response, Sse, sse::Event},
};
use hibana_ai::{
    catalog::{ModelInfo, ModelKind},
    text::{ChatMessage, FinishReason, GenerateParams, Generation, TextModel},
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{
    receipts::{RECEIPT_COMMENT, StreamHasher},
    state::{AppState, Busy, CancelOnDrop, Loaded, requested_model},
};
use crate::openai::{ApiError, ChatRequest, CompletionRequest, parse_body, unix_now};

/// A text request admitted on a model: what to generate.
pub(crate) struct TextJob {
    model: Arc<TextModel>,
    prompt: String,
    /// The sampling and the number of tokens to generate at most.
    pub(crate) params: GenerateParams,
    prompt_tokens: u32,
}

/// Tokens a chat completion generates when the request names no maximum.
pub(crate) const DEFAULT_CHAT_MAX_TOKENS: u32 = 256;
/// Tokens a text completion generates when the request names no maximum (OpenAI's default).
pub(crate) const DEFAULT_COMPLETION_MAX_TOKENS: u32 = 16;

/// The temperature and top-p a request samples with (defaults 1 and 1), or why they are invalid.
pub(crate) fn validate_sampling(
    temperature: Option<f32>,
    top_p: Option<f32>,
    n: Option<u32>,
) -> Result<(f32, f32), ApiError> {
    let t = temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&t) || t.is_nan() {
        return Err(ApiError::invalid(
            Some("temperature"),
            format!("temperature {t} must be between 0 and 2"),
        ));
    }
    let p = top_p.unwrap_or(1.0);
    if !(p > 0.0 && p <= 1.0) {
        return Err(ApiError::invalid(
            Some("top_p"),
            format!("top_p {p} must be in (0, 1]"),
        ));
    }
    if n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid(Some("n"), "only n = 1 is supported"));
    }
    Ok((t, p))
}

/// Checks a text request against the model's context and fills in `params.max_tokens` from the
/// requested maximum (or `default_max`, capped by the room left after the prompt). Errors about
/// the prompt name `prompt_param`, the request field it came from.
fn prepare_text(
    model: &Arc<TextModel>,
    prompt: String,
    prompt_param: &'static str,
    max_tokens: Option<u32>,
    default_max: u32,
    mut params: GenerateParams,
) -> Result<TextJob, ApiError> {
    if prompt.is_empty() {
        return Err(ApiError::invalid(Some(prompt_param), "the prompt is empty"));
    }
    let ctx = model.context_length();
    let prompt_tokens = model
        .count_tokens(&prompt)
        .map_err(|e| ApiError::invalid(Some(prompt_param), e.to_string()))?;
    if prompt_tokens >= ctx {
        let mut e = ApiError::invalid(
            Some(prompt_param),
            format!(
                "This model's maximum context length is {ctx} tokens; the prompt has {prompt_tokens}."
            ),
        );
        e.code = Some("context_length_exceeded");
        return Err(e);
    }
    let room = ctx - prompt_tokens;
    let max_tokens = match max_tokens {
        Some(0) => {
            return Err(ApiError::invalid(
                Some("max_tokens"),
                "max_tokens must be at least 1",
            ));
        }
        Some(m) if m > room => {
            let mut e = ApiError::invalid(
                Some("max_tokens"),
                format!(
                    "max_tokens {m} exceeds the room left in the {ctx}-token context ({room} after the prompt)"
                ),
            );
            e.code = Some("context_length_exceeded");
            return Err(e);
        }
        Some(m) => m,
        None => default_max.min(room),
    };
    if params.stop.len() > 4 {
        return Err(ApiError::invalid(Some("stop"), "at most 4 stop sequences"));
    }
    params.max_tokens = max_tokens;
    Ok(TextJob {
        model: model.clone(),
        prompt,
        params,
        prompt_tokens,
    })
}

fn text_model<'m>(
    info: &ModelInfo,
    model: &'m Loaded,
    chat: bool,
) -> Result<&'m Arc<TextModel>, ApiError> {
    match (model, info.kind) {
        (Loaded::Text(m), ModelKind::Chat) => Ok(m),
        (Loaded::Text(m), ModelKind::Completion) if !chat => Ok(m),
        (Loaded::Text(_), _) => Err(ApiError::invalid(
            Some("model"),
            format!(
                "`{}` is a base model without a chat template: use /v1/completions",
                info.name
            ),
        )),
        (Loaded::Embed(_), _) => Err(ApiError::invalid(
            Some("model"),
            format!("`{}` is an embedding model: use /v1/embeddings", info.name),
        )),
    }
}

/// Admits a chat request on a model, or says why it is refused: the checks a provider makes
/// before generating, which a judge of a refusal repeats.
pub(crate) fn admit_chat(
    info: &ModelInfo,
    model: &Loaded,
    req: &ChatRequest,
) -> Result<TextJob, ApiError> {
    let model = text_model(info, model, true)?;
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "messages must not be empty",
        ));
    }
    for m in &req.messages {
        if !matches!(
            m.role.as_str(),
            "system" | "user" | "assistant" | "developer"
        ) {
            return Err(ApiError::invalid(
                Some("messages"),
                format!("unknown role {:?}", m.role),
            ));
        }
    }
    let (t, top_p) = validate_sampling(req.temperature, req.top_p, req.n)?;
    let messages: Vec<ChatMessage> = req
        .messages
        .iter()
        .map(|m| ChatMessage {
            role: m.role.clone(),
            content: m.content.clone(),
        })
        .collect();
    let prompt = model
        .apply_chat_template(&messages)
        .map_err(|e| ApiError::invalid(Some("messages"), e.to_string()))?;
    prepare_text(
        model,
        prompt,
        "messages",
        req.max_completion_tokens.or(req.max_tokens),
        DEFAULT_CHAT_MAX_TOKENS,
        GenerateParams {
            max_tokens: 0,
            temperature: t,
            top_p,
            seed: req.seed.unwrap_or(0),
            stop: req.stop.clone().map(|s| s.into_vec()).unwrap_or_default(),
        },
    )
}

/// Admits a text completion request on a model, or says why it is refused (as
/// [`admit_chat`]).
pub(crate) fn admit_completion(
    info: &ModelInfo,
    model: &Loaded,
    req: &CompletionRequest,
) -> Result<TextJob, ApiError> {
    let model = text_model(info, model, false)?;
    let mut prompts = req.prompt.clone().into_vec();
    if prompts.len() != 1 {
        return Err(ApiError::invalid(
            Some("prompt"),
            "exactly one prompt is supported per request",
        ));
    }
    let prompt = prompts.remove(0);
    let (t, top_p) = validate_sampling(req.temperature, req.top_p, req.n)?;
    prepare_text(
        model,
        prompt,
        "prompt",
        req.max_tokens,
        DEFAULT_COMPLETION_MAX_TOKENS,
        GenerateParams {
            max_tokens: 0,
            temperature: t,
            top_p,
            seed: req.seed.unwrap_or(0),
            stop: req.stop.clone().map(|s| s.into_vec()).unwrap_or_default(),
        },
    )
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat(
    State(p): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let req: ChatRequest = parse_body(&body)?;
    let served = p.find(requested_model(&headers, &req.model))?;
    let job = admit_chat(&served.info, &served.model, &req)?;
    let info = served.info.clone();
    let id = format!("chatcmpl-{}", hex::encode(rand::random::<[u8; 12]>()));
    respond_text(p, info, job, body, id, req.stream, true).await
}

/// Runs a prepared text job and answers it: as an event stream, or as one chat completion
/// (`chat`) or text completion, with the signed receipt.
async fn respond_text(
    p: AppState,
    info: ModelInfo,
    job: TextJob,
    body: Bytes,
    id: String,
    stream: bool,
    chat: bool,
) -> Result<Response, ApiError> {
    if stream {
        return Ok(stream_text(p, info, job, body, id, chat));
    }
    let (generation, prompt_tokens) = run_text(&p, job).await?;
    let (object, choice) = if chat {
        (
            "chat.completion",
            json!({"index": 0, "message": {"role": "assistant", "content": generation.text},
                   "logprobs": null, "finish_reason": finish(&generation.finish_reason)}),
        )
    } else {
        (
            "text_completion",
            json!({"index": 0, "text": generation.text,
                   "logprobs": null, "finish_reason": finish(&generation.finish_reason)}),
        )
    };
    let response = json!({
        "id": id,
        "object": object,
        "created": unix_now(),
        "model": info.name,
        "system_fingerprint": info.content_hash,
        "choices": [choice],
        "usage": usage(prompt_tokens, generation.completion_tokens),
    });
    Ok(p.signed_answer(
        info.content_hash,
        &body,
        response,
        prompt_tokens,
        generation.completion_tokens,
    ))
}

/// `POST /v1/completions`.
pub(super) async fn completions(
    State(p): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let req: CompletionRequest = parse_body(&body)?;
    let served = p.find(requested_model(&headers, &req.model))?;
    let job = admit_completion(&served.info, &served.model, &req)?;
    let info = served.info.clone();
    let id = format!("cmpl-{}", hex::encode(rand::random::<[u8; 12]>()));
    respond_text(p, info, job, body, id, req.stream, false).await
}

fn finish(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

fn usage(prompt: u32, completion: u32) -> serde_json::Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

async fn run_text(p: &AppState, job: TextJob) -> Result<(Generation, u32), ApiError> {
    let busy = Busy::acquire(p, &p.permits).await?;
    let prompt_tokens = job.prompt_tokens;
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(cancelled.clone());
    let result = tokio::task::spawn_blocking(move || {
        let _busy = busy;
        job.model.generate(&job.prompt, &job.params, &mut |_| {
            !cancelled.load(Ordering::Relaxed)
        })
    })
    .await;
    let generation = result
        .map_err(|e| ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::invalid(None, e.to_string()))?;
    Ok((generation, prompt_tokens))
}

/// Streams a generation as OpenAI chunks; the receipt comes as an SSE comment before `[DONE]`.
fn stream_text(
    p: AppState,
    info: ModelInfo,
    job: TextJob,
    request: Bytes,
    id: String,
    chat: bool,
) -> Response {
    let (events_tx, events_rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        let created = unix_now();
        let chunk = |content: Option<&str>,
                     finish_reason: Option<&str>,
                     first: bool|
         -> serde_json::Value {
            if chat {
                let mut delta = serde_json::Map::new();
                if first {
                    delta.insert("role".into(), json!("assistant"));
                }
                if let Some(c) = content {
                    delta.insert("content".into(), json!(c));
                }
                json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": info.name,
                       "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]})
            } else {
                json!({"id": id, "object": "text_completion", "created": created, "model": info.name,
                       "choices": [{"index": 0, "text": content.unwrap_or(""), "logprobs": null, "finish_reason": finish_reason}]})
            }
        };
        let mut hasher = StreamHasher::default();
        let send = |payload: String, hasher: &mut StreamHasher| {
            hasher.add(&payload);
            Event::default().data(payload)
        };
        let Ok(busy) = Busy::acquire(&p, &p.permits).await else {
            return;
        };
        if chat {
            let first = chunk(None, None, true).to_string();
            if events_tx.send(Ok(send(first, &mut hasher))).await.is_err() {
                return;
            }
        }
        let (piece_tx, mut piece_rx) = mpsc::channel::<String>(256);
        let prompt_tokens = job.prompt_tokens;
        let generation = tokio::task::spawn_blocking(move || {
            let _busy = busy;
            job.model.generate(&job.prompt, &job.params, &mut |piece| {
                piece_tx.blocking_send(piece.to_string()).is_ok()
            })
        });
        while let Some(piece) = piece_rx.recv().await {
            let payload = chunk(Some(&piece), None, false).to_string();
            if events_tx
                .send(Ok(send(payload, &mut hasher)))
                .await
                .is_err()
            {
                // The client left: dropping the receiver stops the generation.
                break;
            }
        }
        drop(piece_rx);
        let result = generation.await;
        match result {
            Ok(Ok(generation)) => {
                let mut last = chunk(None, Some(finish(&generation.finish_reason)), false);
                if let Some(obj) = last.as_object_mut() {
                    obj.insert(
                        "usage".into(),
                        usage(prompt_tokens, generation.completion_tokens),
                    );
                }
                let _ = events_tx
                    .send(Ok(send(last.to_string(), &mut hasher)))
                    .await;
                let receipt = p.receipt(
                    info.content_hash,
                    &request,
                    hasher.finish(),
                    prompt_tokens,
                    generation.completion_tokens,
                );
                let _ = events_tx
                    .send(Ok(
                        Event::default().comment(format!("{RECEIPT_COMMENT}{}", receipt.to_hex()))
                    ))
                    .await;
                let _ = events_tx.send(Ok(Event::default().data("[DONE]"))).await;
            }
            Ok(Err(e)) => {
                let err = ApiError::invalid(None, e.to_string()).body().to_string();
                let _ = events_tx.send(Ok(Event::default().data(err))).await;
            }
            Err(e) => {
                let err = ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                    .body()
                    .to_string();
                let _ = events_tx.send(Ok(Event::default().data(err))).await;
            }
        }
    });
    Sse::new(ReceiverStream::new(events_rx)).into_response()
}
