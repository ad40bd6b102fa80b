//! `POST /v1/feedback`: a reviewer's correction of a decision, stored beside it.
//!
//! Body: `{"id": DECISION_ID, "expected": {"action": ..., "target": ...}, "note"?, "author"?}`;
//! the answer, 201: `{"id": CORRECTION_ID, "decision": DECISION_ID, "expected": {...},
//! "learned": bool}`. Errors: a body that is not that shape, 400; an unknown action, team or
//! agent, or a target that does not fit the action, 422; an unknown decision, 404; a
//! correction's id, or a decision already corrected to the same route, 409.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{body_bytes, parse_json, ApiError, App};
use crate::backend::Backend;
use crate::store::feedback::{correct, expected_route, FeedbackError};

/// `POST /v1/feedback` body.
#[derive(Deserialize)]
struct FeedbackRequest {
    id: Value,
    expected: Expected,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    author: Option<String>,
}

#[derive(Deserialize)]
struct Expected {
    action: String,
    /// A team id may come as a number.
    #[serde(default)]
    target: Option<Value>,
}

impl From<FeedbackError> for ApiError {
    fn from(e: FeedbackError) -> Self {
        let (status, kind, code) = match &e {
            FeedbackError::UnknownDecision(_) => (StatusCode::NOT_FOUND, "not_found", "unknown_decision"),
            FeedbackError::IsCorrection(_) => (StatusCode::CONFLICT, "conflict", "correction_of_correction"),
            FeedbackError::AlreadyCorrected { .. } => (StatusCode::CONFLICT, "conflict", "already_corrected"),
            FeedbackError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_error", "unknown_route"),
            FeedbackError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "server_error", "store_unavailable"),
        };
        let mut err = ApiError::new(status, kind, e.to_string()).code(Some(code));
        if matches!(e, FeedbackError::Invalid(_)) {
            err = err.param(Some("expected"));
        }
        if matches!(e, FeedbackError::Store(_)) {
            tracing::error!(error = %e, "a correction could not be stored");
            err = err.retry_after(5);
        }
        err
    }
}

pub(super) async fn feedback<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // The review page's sign-in cookie is accepted here too: the page posts corrections.
    app.check_key(&headers)?;
    let body = body_bytes(body, app.config.max_body_bytes)?;
    let req: FeedbackRequest = parse_json(&body)?;
    let id = match &req.id {
        Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", "id must be a decision id (a non-empty string)")
                .param(Some("id")))
        }
    };
    let target = match &req.expected.target {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", "expected.target must be a string").param(Some("expected"))
            )
        }
    };
    let router = app.router();
    let expected = expected_route(router.config(), &req.expected.action, target.as_deref())?;
    let (correction, record) = correct(app.recorder.store(), &id, &expected, req.note, req.author).await?;
    let learned = app.learn(&correction, &record).await;
    tracing::info!(
        target: "strictly::feedback",
        correction = %correction.id,
        decision = correction.decision_id.as_deref().unwrap_or_default(),
        action = correction.action.as_str(),
        learned,
        "correction stored"
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": correction.id,
            "decision": correction.decision_id,
            "expected": {"action": expected.action().as_str(), "target": expected.name()},
            "learned": learned,
        })),
    ))
}
