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
        let message = e.to_string();
        match &e {
            FeedbackError::UnknownDecision(_) => ApiError::not_found(message).code("unknown_decision"),
            FeedbackError::IsCorrection(_) => ApiError::conflict(message).code("correction_of_correction"),
            FeedbackError::AlreadyCorrected { .. } => ApiError::conflict(message).code("already_corrected"),
            FeedbackError::Invalid(_) => ApiError::unprocessable(message).param("expected").code("unknown_route"),
            FeedbackError::Store(_) => {
                tracing::error!(error = %e, "a correction could not be stored");
                ApiError::unavailable(message).code("store_unavailable").retry_after(5)
            }
        }
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
        _ => return Err(ApiError::invalid_param("id", "id must be a decision id (a non-empty string)")),
    };
    let target = match &req.expected.target {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(ApiError::invalid_param("expected", "expected.target must be a string")),
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
