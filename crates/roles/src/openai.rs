//! The OpenAI wire format: request and response shapes, and errors in OpenAI's JSON form.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

/// A chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// `stop`: one string or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StringOrList {
    /// A single string.
    One(String),
    /// A list of strings.
    Many(Vec<String>),
}

impl StringOrList {
    /// The strings.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s],
            StringOrList::Many(v) => v,
        }
    }
}

/// `POST /v1/chat/completions`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model name or content hash.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Newer name of `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature; 0 is greedy and deterministic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StringOrList>,
    /// Stream with server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Number of choices (only 1 is supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
}

/// `POST /v1/completions`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// Model name or content hash.
    pub model: String,
    /// The prompt.
    pub prompt: StringOrList,
    /// Most tokens to generate (OpenAI's default is 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StringOrList>,
    /// Stream with server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Number of choices (only 1 is supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
}

/// `POST /v1/embeddings`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    /// Model name or content hash.
    pub model: String,
    /// Text or texts to embed.
    pub input: StringOrList,
    /// `float` (default) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
}

/// Token counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens read.
    pub prompt_tokens: u32,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u32,
    /// Sum.
    pub total_tokens: u32,
}

/// An OpenAI-style error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// OpenAI error type (`invalid_request_error`, `authentication_error`…).
    pub kind: &'static str,
    /// Machine-readable code.
    pub code: Option<&'static str>,
    /// The offending parameter.
    pub param: Option<&'static str>,
    /// Seconds after which a retry can succeed (the `Retry-After` header).
    pub retry_after: Option<u64>,
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    /// A request body that could not be read (too large, cut short), with axum's status.
    fn from(e: axum::extract::rejection::BytesRejection) -> ApiError {
        ApiError {
            status: e.status(),
            message: format!("Invalid request body: {e}"),
            kind: "invalid_request_error",
            code: None,
            param: None,
            retry_after: None,
        }
    }
}

impl ApiError {
    /// 400 with a message about a parameter.
    pub fn invalid(param: Option<&'static str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            code: None,
            param,
            retry_after: None,
        }
    }

    /// 404 for an unknown model.
    pub fn model_not_found(model: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{model}` does not exist or is not served here."),
            kind: "invalid_request_error",
            code: Some("model_not_found"),
            param: Some("model"),
            retry_after: None,
        }
    }

    /// 401 for a missing or wrong API key.
    pub fn bad_key() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "Incorrect API key provided. Create one with `hibana gateway keys create`."
                .into(),
            kind: "invalid_request_error",
            code: Some("invalid_api_key"),
            param: None,
            retry_after: None,
        }
    }

    /// 429 for a key over its rate limit, which admits another request in `retry_after`
    /// seconds.
    pub fn rate_limited(limit: u32, retry_after: u64) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "Rate limit reached: {limit} requests per minute for this key. Retry later."
            ),
            kind: "requests",
            code: Some("rate_limit_exceeded"),
            param: None,
            retry_after: Some(retry_after),
        }
    }

    /// 429 for a request refused because too many are in flight (at the gateway, or at every
    /// provider of its model), which a retry after `retry_after` seconds can get through.
    pub fn overloaded(message: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
            kind: "requests",
            code: Some("server_overloaded"),
            param: None,
            retry_after: Some(retry_after),
        }
    }

    /// 402 for a key whose channel cannot pay for the request.
    pub fn payment_required(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::PAYMENT_REQUIRED,
            message: message.into(),
            kind: "insufficient_quota",
            code: Some("insufficient_quota"),
            param: None,
            retry_after: None,
        }
    }

    /// 404 for a path that is not an endpoint.
    pub fn unknown_endpoint() -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: "Unknown endpoint.".into(),
            kind: "invalid_request_error",
            code: None,
            param: None,
            retry_after: None,
        }
    }

    /// 405 for an endpoint called with the wrong HTTP method.
    pub fn wrong_method() -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "This endpoint does not take this HTTP method (the /v1 inference endpoints take POST).".into(),
            kind: "invalid_request_error",
            code: None,
            param: None,
            retry_after: None,
        }
    }

    /// 500/502/503 for a server-side failure.
    pub fn server(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind: "server_error",
            code: None,
            param: None,
            retry_after: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Parses a JSON request body, turning every failure into a 400 that names the problem.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid(
            None,
            "The request body is empty; send a JSON object.",
        ));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::invalid(
            None,
            "The request body is not valid UTF-8.",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(None, format!("Invalid request body: {e}")))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
