//! `POST /kommunicate/webhook`: Kommunicate's custom-bot contract, with events, non-text
//! messages, the deadline, overload and retried deliveries (same `key`, same answer).
//!
//! A delivery with a `key` is coalesced in memory with a concurrent one on this replica, then
//! claimed in the store ([`crate::store::Store::claim`]): the claimant routes it and stores
//! the reply with the record; a retry on any replica, or after a restart, gets that reply. A
//! replica that finds the key claimed by another polls for the reply until its own deadline.
//! When the store is unreachable the delivery is routed here and its record spooled.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::{body_bytes, internal, parse_json, ApiError, App};
use crate::backend::Backend;
use crate::routing::audit::AuditRecord;
use crate::routing::kommunicate::WebhookRequest;
use crate::routing::router::Routed;
use crate::routing::{Rule, Target};
use crate::store::{Claim, Outcome};

/// How often a delivery whose key another replica holds asks the store for the reply.
const POLL: Duration = Duration::from_millis(50);

/// Recent webhook keys and their answers, oldest evicted first.
pub(super) struct RecentKeys {
    cells: HashMap<String, Arc<OnceCell<Value>>>,
    order: VecDeque<String>,
    capacity: usize,
}

impl RecentKeys {
    /// Empty, remembering at most `capacity` keys.
    pub(super) fn new(capacity: usize) -> Self {
        RecentKeys { cells: HashMap::new(), order: VecDeque::new(), capacity }
    }

    pub(super) fn cell(&mut self, key: &str) -> Arc<OnceCell<Value>> {
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
    /// Routes a delivery (nothing is written yet): the decision, its record and its path.
    async fn decide_delivery(
        self: &Arc<Self>,
        req: &WebhookRequest,
        started: Instant,
    ) -> Result<(Routed, AuditRecord, &'static str), ApiError> {
        let deadline = started + self.config.deadline;
        let id = req.key.as_deref();
        let message = req.message.as_str();
        let event = req.event_name.as_deref().map(str::trim).filter(|e| !e.is_empty());
        let router = self.router();
        Ok(if event.is_some_and(|e| e.eq_ignore_ascii_case("WELCOME")) {
            let (r, a) = Self::canned(&router, message, id, Target::None, self.config.welcome_reply.clone(), Rule::Event, started);
            (r, a, "event")
        } else if event.is_some() || !is_text(req.content_type.as_deref()) || message.trim().is_empty() {
            let (r, a) =
                Self::canned(&router, message, id, Target::DefaultRouting, self.config.not_text_reply.clone(), Rule::NotText, started);
            (r, a, "not_text")
        } else {
            let mut screened = self.screen(&router, message).await?;
            match screened.model_job.take() {
                None => {
                    let (r, a) = router.conclude(message, id, screened, None);
                    (r, a, "examples")
                }
                Some(job) => match self.submit_route(&router, job, deadline) {
                    Err(_) => {
                        let (r, a) = self.default_routing(&router, message, id, Rule::Overloaded, started);
                        (r, a, "overloaded")
                    }
                    Ok(rx) => match tokio::time::timeout_at(deadline.into(), rx).await {
                        Ok(Ok(answer)) => {
                            let (r, a) = router.conclude(message, id, screened, Some(answer));
                            (r, a, "model")
                        }
                        // The worker dropped the call: it reached it after the deadline.
                        Ok(Err(_)) | Err(_) => {
                            let (r, a) = self.default_routing(&router, message, id, Rule::Deadline, started);
                            (r, a, "deadline")
                        }
                    },
                },
            }
        })
    }

    /// A delivery without a key, decided and recorded. The reply goes out even when the record
    /// cannot be written anywhere (logged as an error): the webhook never gets a 5xx for it.
    pub(super) async fn decide_webhook(self: Arc<Self>, req: WebhookRequest) -> Result<Value, ApiError> {
        let (routed, record, path) = self.decide_delivery(&req, Instant::now()).await?;
        let reply = reply_of(&routed);
        let _ = self.record(&routed, record, path, None, true).await;
        Ok(reply)
    }

    /// A delivery with a key: claimed in the store, decided once across the replicas.
    pub(super) async fn decide_keyed(self: Arc<Self>, key: String, req: WebhookRequest) -> Result<Value, ApiError> {
        let started = Instant::now();
        let deadline = started + self.config.deadline;
        let lease = self.config.store.lease.unwrap_or(self.config.deadline * 2).max(Duration::from_secs(1));
        loop {
            let claim = self.recorder.claim(&key, lease).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot claim the webhook key in the store; routing here");
                Claim::Mine
            });
            match claim {
                Claim::Done(reply) => {
                    self.metrics.replay();
                    return Ok(reply);
                }
                Claim::Busy if Instant::now() + POLL < deadline => tokio::time::sleep(POLL).await,
                Claim::Busy => {
                    // The claimant (another replica) records its own decision; this answer is
                    // default routing and writes nothing.
                    tracing::warn!(key = %key.escape_debug(), "another replica holds this delivery past the deadline; default routing");
                    let (routed, _) = self.default_routing(&self.router(), &req.message, Some(&key), Rule::Deadline, started);
                    return Ok(reply_of(&routed));
                }
                Claim::Mine => {
                    let (routed, record, path) = self.decide_delivery(&req, started).await?;
                    let reply = reply_of(&routed);
                    match self.record(&routed, record, path, Some((&key, &reply)), true).await {
                        Ok(Outcome::Lost) => continue,
                        _ => return Ok(reply),
                    }
                }
            }
        }
    }
}

fn reply_of(routed: &Routed) -> Value {
    serde_json::to_value(routed.payload.webhook_reply()).unwrap_or_else(|_| Value::Array(Vec::new()))
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
) -> Result<Json<Value>, ApiError> {
    app.check_webhook_secret(&headers)?;
    let body = body_bytes(body, app.config.max_body_bytes)?;
    let req: WebhookRequest = parse_json(&body)?;
    app.check_message(&req.message)?;
    // Every remembered key costs memory: a bound per key bounds them all.
    if let Some(n) = req.key.as_deref().map(str::len).filter(|n| *n > app.config.max_key_bytes) {
        return Err(ApiError::invalid_request(format!("key is {n} bytes; the limit is {}", app.config.max_key_bytes)));
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
                        task_app.clone().decide_keyed(key, req)
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
