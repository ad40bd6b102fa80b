//! Errors on the wire ([`ApiError`], OpenAI's shape) and the request-body checks every
//! endpoint shares: the size limit, JSON that is an object, a failed task.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// An error as JSON: `{"error": {"message", "type", "param", "code"}}` (OpenAI's shape).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) kind: &'static str,
    pub(super) message: String,
    pub(super) param: Option<&'static str>,
    pub(super) code: Option<&'static str>,
    pub(super) retry_after: Option<u64>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, kind, message: message.into(), param: None, code: None, retry_after: None }
    }

    /// The request field at fault.
    pub(super) fn param(mut self, param: Option<&'static str>) -> Self {
        self.param = param;
        self
    }

    /// A machine-readable code (`model_not_found`).
    pub(super) fn code(mut self, code: Option<&'static str>) -> Self {
        self.code = code;
        self
    }

    /// `Retry-After`, in seconds.
    pub(super) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}});
        let mut res = (self.status, Json(body)).into_response();
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
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
}

pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", format!("request body over {limit} bytes"))
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", format!("cannot read the request body: {e}"))
        }
    })
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", "empty body; expected a JSON object"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", "expected a JSON object"));
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", format!("bad request body: {e}")))
}
