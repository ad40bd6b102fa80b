//! `POST /v1/route`: one message in, the decision, the payload and the explanation out.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::{body_bytes, internal, parse_json, ApiError, App};
use crate::backend::Backend;
use crate::routing::router::Routed;

impl<B: Backend + Send + Sync + 'static> App<B> {
    /// A `/v1/route` call, decided and recorded (503 with `Retry-After` when it cannot be).
    pub(super) async fn decide_route(self: Arc<Self>, message: String, id: Option<String>) -> Result<Routed, ApiError> {
        let started = Instant::now();
        let expires = started + self.config.request_timeout;
        // The router of this request, to its end: a reload swaps the next request's.
        let router = self.router();
        let mut screened = self.screen(&router, &message).await?;
        let (routed, record, path) = match screened.model_job.take() {
            None => {
                let (r, a) = router.conclude(&message, id.as_deref(), screened, None);
                (r, a, "examples")
            }
            Some(job) => {
                let rx = self
                    .submit_route(&router, job, expires)
                    .map_err(|_| ApiError::overloaded(self.queue.retry_after_secs(super::worker::Lane::Route)))?;
                match tokio::time::timeout_at(expires.into(), rx).await {
                    Ok(Ok(answer)) => {
                        let (r, a) = router.conclude(&message, id.as_deref(), screened, Some(answer));
                        (r, a, "model")
                    }
                    Ok(Err(_)) | Err(_) => {
                        return Err(ApiError::timeout(format!("routing did not finish within {:?}", self.config.request_timeout)))
                    }
                }
            }
        };
        self.record(&routed, record, path, None, false).await?;
        Ok(routed)
    }
}

/// `POST /v1/route` body.
#[derive(Deserialize)]
struct RouteRequest {
    message: String,
    #[serde(default)]
    id: Option<Value>,
}

pub(super) async fn route<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Routed>, ApiError> {
    app.check_bearer(&headers)?;
    let body = body_bytes(body, app.config.max_body_bytes)?;
    let req: RouteRequest = parse_json(&body)?;
    app.check_message(&req.message)?;
    let id = match req.id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(ApiError::invalid_request("id must be a string or a number")),
    };
    tokio::spawn(app.clone().decide_route(req.message, id)).await.map_err(internal)?.map(Json)
}
