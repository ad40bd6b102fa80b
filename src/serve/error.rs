//! Errors on the wire ([`ApiError`], OpenAI's shape) and the request-body checks every
//! endpoint shares: the size limit, JSON that is an object, a failed task.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

/// An error's `type` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ErrorKind {
    /// The request is at fault (400, and 404, 405, 408, 413, 414, 422, 431).
    InvalidRequestError,
    /// No key, or a wrong one (401).
    AuthenticationError,
    /// No such endpoint or record (404).
    NotFound,
    /// The request contradicts what is stored (409).
    Conflict,
    /// A queue is full (429).
    RateLimitError,
    /// The server is at fault or unavailable (500, 503).
    ServerError,
    /// The work did not finish in time (504).
    Timeout,
}

/// An error as JSON: `{"error": {"message", "type", "param", "code"}}` (OpenAI's shape).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) kind: ErrorKind,
    pub(super) message: String,
    pub(super) param: Option<&'static str>,
    pub(super) code: Option<&'static str>,
    pub(super) retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError { status, kind, message: message.into(), param: None, code: None, retry_after: None }
    }

    /// 400 `invalid_request_error`.
    pub(super) fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidRequestError, message)
    }

    /// 400 `invalid_request_error` blaming the request field `param`.
    pub(super) fn invalid_param(param: &'static str, message: impl Into<String>) -> Self {
        Self::invalid_request(message).param(param)
    }

    /// 404 `invalid_request_error` with `param: "model"` and `code: "model_not_found"`.
    pub(super) fn model_not_found(message: impl Into<String>) -> Self {
        Self::invalid_request(message).with_status(StatusCode::NOT_FOUND).param("model").code("model_not_found")
    }

    /// 405 `invalid_request_error`.
    pub(super) fn method_not_allowed(method: &Method) -> Self {
        Self::invalid_request(format!("{method} is not allowed on this endpoint")).with_status(StatusCode::METHOD_NOT_ALLOWED)
    }

    /// 413 `invalid_request_error`: the body passed `limit` bytes.
    pub(super) fn payload_too_large(limit: usize) -> Self {
        Self::invalid_request(format!("request body over {limit} bytes")).with_status(StatusCode::PAYLOAD_TOO_LARGE)
    }

    /// 422 `invalid_request_error`: well-formed, but refused.
    pub(super) fn unprocessable(message: impl Into<String>) -> Self {
        Self::invalid_request(message).with_status(StatusCode::UNPROCESSABLE_ENTITY)
    }

    /// 401 `authentication_error` (with `WWW-Authenticate: Bearer`).
    pub(super) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorKind::AuthenticationError, message)
    }

    /// 404 `not_found`.
    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, message)
    }

    /// 409 `conflict`.
    pub(super) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorKind::Conflict, message)
    }

    /// 429 `rate_limit_error`: the model queue is full; `Retry-After` in seconds.
    pub(super) fn overloaded(retry_after: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorKind::RateLimitError, "the model queue is full; retry later").retry_after(retry_after)
    }

    /// 504 `timeout`.
    pub(super) fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, ErrorKind::Timeout, message)
    }

    /// 500 `server_error`.
    pub(super) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::ServerError, message)
    }

    /// 503 `server_error`.
    pub(super) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorKind::ServerError, message)
    }

    /// Another status for the same error (a 408, 414 or 431 `invalid_request_error`).
    pub(super) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The request field at fault.
    pub(super) fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// A machine-readable code (`model_not_found`).
    pub(super) fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// `Retry-After`, in seconds.
    pub(super) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The `{"error": {...}}` body.
    pub(super) fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

pub(super) fn internal(e: tokio::task::JoinError) -> ApiError {
    tracing::error!(error = %e, "a request task failed");
    ApiError::internal("internal error")
}

pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(limit)
        } else {
            ApiError::invalid_request(format!("cannot read the request body: {e}"))
        }
    })
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_request("empty body; expected a JSON object"));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::invalid_request(format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid_request("expected a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid_request(format!("bad request body: {e}")))
}
