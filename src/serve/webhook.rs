//! `POST /kommunicate/webhook`: Kommunicate's custom-bot contract, with events, non-text
//! messages, the deadline, overload and retried deliveries (same `key`, same answer).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use tokio::sync::OnceCell;

use super::{body_bytes, internal, parse_json, ApiError, App};
use crate::backend::Backend;
use crate::routing::kommunicate::{BotMessage, WebhookRequest};
use crate::routing::{Rule, Target};


/// Recent webhook keys and their answers, oldest evicted first.
pub(super) struct RecentKeys {
    cells: HashMap<String, Arc<OnceCell<Vec<BotMessage>>>>,
    order: VecDeque<String>,
    capacity: usize,
}

impl RecentKeys {
    /// Empty, remembering at most `capacity` keys.
    pub(super) fn new(capacity: usize) -> Self {
        RecentKeys { cells: HashMap::new(), order: VecDeque::new(), capacity }
    }

    pub(super) fn cell(&mut self, key: &str) -> Arc<OnceCell<Vec<BotMessage>>> {
        if let Some(c) = self.cells.get(key) {
            return c.clone();
        }
        while self.order.len() >= self.capacity.max(1) {
            let Some(old) = self.order.pop_front() else { break };
            self.cells.remove(&old);
        }
        let cell = Arc::new(OnceCell::new());
        self.cells.insert(key.to_owned(), cell.clone());
        self.order.push_back(key.to_owned());
        cell
    }
}

impl<B: Backend + Send + Sync + 'static> App<B> {
    /// A webhook delivery, decided and audited.
    pub(super) async fn decide_webhook(self: Arc<Self>, req: WebhookRequest) -> Result<Vec<BotMessage>, ApiError> {
        let started = Instant::now();
        let deadline = started + self.config.deadline;
        let id = req.key.as_deref();
        let message = req.message.as_str();
        let event = req.event_name.as_deref().map(str::trim).filter(|e| !e.is_empty());
        let (routed, record, path) = if event.is_some_and(|e| e.eq_ignore_ascii_case("WELCOME")) {
            let (r, a) = self.canned(message, id, Target::None, self.config.welcome_reply.clone(), Rule::Event, started);
            (r, a, "event")
        } else if event.is_some() || !is_text(req.content_type.as_deref()) || message.trim().is_empty() {
            let (r, a) = self.canned(message, id, Target::DefaultRouting, self.config.not_text_reply.clone(), Rule::NotText, started);
            (r, a, "not_text")
        } else {
            let mut screened = self.screen(message).await?;
            match screened.model_job.take() {
                None => {
                    let (r, a) = self.router.conclude(message, id, screened, None);
                    (r, a, "examples")
                }
                Some(job) => match self.submit_route(job, deadline) {
                    Err(_) => {
                        let (r, a) = self.default_routing(message, id, Rule::Overloaded, started);
                        (r, a, "overloaded")
                    }
                    Ok(rx) => match tokio::time::timeout_at(deadline.into(), rx).await {
                        Ok(Ok(answer)) => {
                            let (r, a) = self.router.conclude(message, id, screened, Some(answer));
                            (r, a, "model")
                        }
                        // The worker dropped the call: it reached it after the deadline.
                        Ok(Err(_)) | Err(_) => {
                            let (r, a) = self.default_routing(message, id, Rule::Deadline, started);
                            (r, a, "deadline")
                        }
                    },
                },
            }
        };
        self.record(&routed, record, path).await?;
        Ok(routed.payload.webhook_reply())
    }
}

/// Kommunicate content types that carry text: absent, 0 (default), 3 (HTML), 5 (text with a
/// URL), or a name.
fn is_text(content_type: Option<&str>) -> bool {
    match content_type.map(|c| c.trim().to_ascii_lowercase()) {
        None => true,
        Some(c) => matches!(c.as_str(), "" | "0" | "3" | "5" | "text" | "html" | "text/plain" | "text/html"),
    }
}

pub(super) async fn webhook<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<BotMessage>>, ApiError> {
    app.check_webhook_secret(&headers)?;
    let body = body_bytes(body, app.config.max_body_bytes)?;
    let req: WebhookRequest = parse_json(&body)?;
    app.check_message(&req.message)?;
    // Every remembered key costs memory: a bound per key bounds them all.
    if let Some(n) = req.key.as_deref().map(str::len).filter(|n| *n > app.config.max_key_bytes) {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("key is {n} bytes; the limit is {}", app.config.max_key_bytes),
        ));
    }
    // The decision runs in its own task: a client that hangs up does not cancel it half-way
    // (between the model and the audit line).
    let reply = match req.key.clone().filter(|k| !k.is_empty()) {
        Some(key) => {
            let cell = app.recent.lock().unwrap_or_else(PoisonError::into_inner).cell(&key);
            let task_app = app.clone();
            tokio::spawn(async move {
                let mut fresh = false;
                let reply = cell
                    .get_or_try_init(|| {
                        fresh = true;
                        task_app.clone().decide_webhook(req)
                    })
                    .await
                    .cloned();
                if !fresh && reply.is_ok() {
                    task_app.metrics.replay();
                }
                reply
            })
            .await
        }
        None => tokio::spawn(app.clone().decide_webhook(req)).await,
    };
    reply.map_err(internal)?.map(Json)
}
