//! `strictly serve`: the router as an HTTP service (axum on tokio).
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /kommunicate/webhook` | Kommunicate's custom-bot contract: an array of `{message, metadata}` |
//! | `POST /v1/route` | `{"message", "id"}` → the decision, the payload and the explanation |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (model warmed up, not shutting down) |
//! | `GET /metrics` | Prometheus (OpenMetrics text) |
//!
//! The request path: the cheap stage ([`Router::screen`]: injection check, the examples' vote)
//! runs on a blocking thread; only messages it cannot settle queue for the model
//! ([`worker::ModelQueue`], one dedicated thread, bounded). Every decision, whichever path made
//! it (examples, model, deadline, overload, refusal, injection, error, event), is appended to the
//! audit log and synced before the reply. The webhook never gets a 429/5xx for load: a full
//! queue (or one that cannot answer before the deadline, at the recent mean model time) or a
//! passed deadline becomes default routing (`KM_ASSIGN_TO: ""`), audited with the
//! rule `overloaded` or `deadline`. A retried delivery (same `key`) gets the first answer again
//! and writes no second line.

pub mod metrics;
pub mod openai;
pub mod worker;

use std::collections::{HashMap, VecDeque};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, OnceCell};

use crate::routing::audit::AuditRecord;
use crate::backend::Backend;
use crate::routing::kommunicate::{BotMessage, KommunicatePayload, WebhookRequest};
use crate::routing::router::{RouteError, Routed, Router};
use crate::routing::RoutingConfig;
use crate::routing::{Decision, ModelVerdict, Rule, Target};
use metrics::Metrics;
use worker::ModelQueue;

/// The one place the service builds its [`Router`]: every server (the command, the tests)
/// goes through here, so a change to the router's inputs is made once.
pub fn build_router<B: Backend>(config: RoutingConfig, backend: B) -> Result<Router<B>, RouteError> {
    Router::new(config, backend, true)
}

/// Server settings: a TOML file (`strictly serve --server-config`), every key optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: String,
    /// The webhook's deadline: routing not finished by then becomes default routing (rule
    /// `deadline`). Keep it under Kommunicate's 30 s webhook timeout.
    #[serde(deserialize_with = "duration")]
    pub deadline: Duration,
    /// `/v1/route`'s limit; past it the answer is 504.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// After SIGTERM/SIGINT, how long in-flight requests may take before the process exits.
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// Model calls that may wait while one runs.
    pub queue: usize,
    /// Largest request body (413 above).
    pub max_body_bytes: usize,
    /// Longest message, in characters (400 above).
    pub max_message_chars: usize,
    /// Bearer keys for `/v1/*`; also from `STRICTLY_API_KEYS` (comma-separated). None: open.
    pub api_keys: Vec<String>,
    /// Shared secret the webhook's caller sends in `webhook_secret_header`; also from
    /// `STRICTLY_WEBHOOK_SECRET`. None: open.
    pub webhook_secret: Option<String>,
    /// Header carrying the webhook's secret (set it in Kommunicate's custom-bot form).
    pub webhook_secret_header: String,
    /// Webhook `key`s remembered for retried deliveries.
    pub recent_keys: usize,
    /// Reply to Kommunicate's `WELCOME` event (the bot keeps the conversation).
    pub welcome_reply: String,
    /// Reply to a message without text (attachment, location, other events); default routing.
    pub not_text_reply: String,
    /// Let the model refuse on the OpenAI endpoints (a `{"refusal"}` branch beside the
    /// caller's schema; see [`openai::refusal`]). Default false: with SmolLM2-135M the model
    /// took the branch for ordinary requests. The prompt-injection screen refuses either way.
    pub model_refusals: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:8080".into(),
            deadline: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(25),
            queue: 4,
            max_body_bytes: 64 * 1024,
            max_message_chars: 4000,
            api_keys: Vec::new(),
            webhook_secret: None,
            webhook_secret_header: "x-strictly-secret".into(),
            recent_keys: 10_000,
            welcome_reply: "Hi! How can I help you today?".into(),
            not_text_reply: "Thanks! I can only read text, so one of our agents will take a look.".into(),
            model_refusals: false,
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}

impl ServeConfig {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Adds the keys and the secret from the environment (`STRICTLY_API_KEYS`,
    /// `STRICTLY_WEBHOOK_SECRET`), which keeps them out of files.
    pub fn apply_env(&mut self) {
        if let Ok(keys) = std::env::var("STRICTLY_API_KEYS") {
            self.api_keys.extend(keys.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned));
        }
        if let Ok(secret) = std::env::var("STRICTLY_WEBHOOK_SECRET") {
            if !secret.is_empty() {
                self.webhook_secret = Some(secret);
            }
        }
    }
}

/// Equal in time independent of where the inputs differ (and of their lengths): both are
/// hashed first, then every byte of the digests is compared.
fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    std::hint::black_box(x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q))) == 0
}

/// An error as JSON: `{"error": {"message", "type", "param", "code"}}` (OpenAI's shape).
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    param: Option<&'static str>,
    code: Option<&'static str>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, kind, message: message.into(), param: None, code: None, retry_after: None }
    }

    /// The request field at fault.
    fn param(mut self, param: Option<&'static str>) -> Self {
        self.param = param;
        self
    }

    /// A machine-readable code (`model_not_found`).
    fn code(mut self, code: Option<&'static str>) -> Self {
        self.code = code;
        self
    }

    /// `Retry-After`, in seconds.
    fn retry_after(mut self, secs: u64) -> Self {
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

/// Recent webhook keys and their answers, oldest evicted first.
struct RecentKeys {
    cells: HashMap<String, Arc<OnceCell<Vec<BotMessage>>>>,
    order: VecDeque<String>,
    capacity: usize,
}

impl RecentKeys {
    fn cell(&mut self, key: &str) -> Arc<OnceCell<Vec<BotMessage>>> {
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

/// The service's state, shared by every request.
pub struct App<B: Backend> {
    router: Arc<Router<B>>,
    /// The model of the OpenAI-compatible endpoints, when the server has one.
    chat: Option<Arc<openai::ChatModel>>,
    runtime: tokio::runtime::Handle,
    config: ServeConfig,
    queue: ModelQueue,
    metrics: Arc<Metrics>,
    recent: Mutex<RecentKeys>,
    ready: Arc<AtomicBool>,
    stopping: AtomicBool,
}

impl<B: Backend + Send + Sync + 'static> App<B> {
    /// The state over a router (and a chat model for the OpenAI endpoints); starts the model
    /// thread, which warms the router's model up.
    pub fn new(router: Router<B>, chat: Option<openai::ChatModel>, config: ServeConfig) -> Arc<Self> {
        let router = Arc::new(router);
        let metrics = Arc::new(Metrics::new());
        let ready = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Handle::current();
        let warm_up = {
            let (router, runtime, metrics) = (router.clone(), runtime.clone(), metrics.clone());
            Box::new(move || {
                let answer = ask(&router, &runtime, &metrics, &router.model_job("hello"));
                if let Some(e) = answer.backend_error {
                    tracing::warn!(error = %e, "the warm-up call failed");
                }
            })
        };
        let queue = ModelQueue::start(config.queue, metrics.clone(), warm_up, ready.clone());
        let recent = Mutex::new(RecentKeys { cells: HashMap::new(), order: VecDeque::new(), capacity: config.recent_keys });
        let chat = chat.map(Arc::new);
        Arc::new(App { router, chat, runtime, config, queue, metrics, recent, ready, stopping: AtomicBool::new(false) })
    }

    /// Queues a routing model call.
    fn submit_route(&self, job: crate::routing::router::ModelJob, expires: Instant) -> Result<tokio::sync::oneshot::Receiver<crate::routing::router::ModelAnswer>, worker::QueueFull> {
        let (router, runtime, metrics) = (self.router.clone(), self.runtime.clone(), self.metrics.clone());
        self.queue.try_submit(move || ask(&router, &runtime, &metrics, &job), expires)
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn check_bearer(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.config.api_keys.is_empty() {
            return Ok(());
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let Some(presented) = presented else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", "missing bearer API key (Authorization: Bearer <key>)"));
        };
        // Every key is compared, whichever matches.
        let ok = self.config.api_keys.iter().fold(false, |ok, k| ok | same_secret(k, presented));
        if ok {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", "invalid API key"))
        }
    }

    fn check_webhook_secret(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(secret) = &self.config.webhook_secret else { return Ok(()) };
        let name = &self.config.webhook_secret_header;
        match headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            Some(v) if same_secret(secret, v.trim()) => Ok(()),
            Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", format!("wrong webhook secret in header {name}"))),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", format!("missing webhook secret header {name}"))),
        }
    }

    fn check_message(&self, message: &str) -> Result<(), ApiError> {
        let n = message.chars().count();
        if n > self.config.max_message_chars {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("message is {n} characters; the limit is {}", self.config.max_message_chars),
            ));
        }
        Ok(())
    }

    /// A decision made by the service itself (event, deadline, overload), with its record.
    fn canned(&self, message: &str, id: Option<&str>, target: Target, reply: String, rule: Rule, started: Instant) -> (Routed, AuditRecord) {
        let decision = Decision {
            action: target.action(),
            target,
            model_action: None,
            model_assign_to: None,
            model_assign_team: None,
            reason: None,
            model_confidence: None,
            reported_confidence: None,
            examples_support: None,
            examples_confidence: None,
            rules: vec![rule],
            reply,
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let verdict = ModelVerdict {
            backend: self.router.backend().name().into(),
            model: self.router.backend().model().into(),
            latency_ms,
            ..ModelVerdict::default()
        };
        let record = AuditRecord::new(id, message, self.router.config().audit.redact, &decision, &verdict);
        let routed = Routed {
            message_id: record.id.clone(),
            payload: KommunicatePayload::from(&decision),
            output: None,
            decision,
            action_alternatives: Vec::new(),
            backend_error: None,
            backend_error_kind: None,
            usage: None,
            billing: None,
            latency_ms,
        };
        (routed, record)
    }

    /// Default routing decided by the service (`deadline`, `overloaded`).
    fn default_routing(&self, message: &str, id: Option<&str>, rule: Rule, started: Instant) -> (Routed, AuditRecord) {
        let reply = self.router.config().replies.default_fallback.clone();
        self.canned(message, id, Target::DefaultRouting, reply, rule, started)
    }

    /// The cheap stage, off the runtime's threads (the examples' vote may grow an encoder).
    async fn screen(self: &Arc<Self>, message: &str) -> Result<crate::routing::router::Screened, ApiError> {
        let (app, text) = (self.clone(), message.to_owned());
        tokio::task::spawn_blocking(move || app.router.screen(&text)).await.map_err(internal)
    }

    /// Appends the record (synced) and counts the decision; the reply waits for this.
    async fn record(self: &Arc<Self>, routed: &Routed, record: AuditRecord, path: &str) -> Result<(), ApiError> {
        // The text as the audit config redacts it (digits masked, or only a hash and a length).
        let text = serde_json::to_string(&record.text).unwrap_or_default();
        let app = self.clone();
        tokio::task::spawn_blocking(move || app.router.append_audit(&record))
            .await
            .map_err(internal)?
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string()))?;
        self.metrics.decision(&routed.decision);
        let d = &routed.decision;
        let rules: Vec<&str> = d.rules.iter().map(|r| r.as_str()).collect();
        tracing::info!(
            target: "strictly::decision",
            id = %routed.message_id,
            path,
            action = d.action.as_str(),
            rules = %rules.join(","),
            text = %text,
            latency_ms = routed.latency_ms,
            "decision"
        );
        Ok(())
    }

    /// A webhook delivery, decided and audited.
    async fn decide_webhook(self: Arc<Self>, req: WebhookRequest) -> Result<Vec<BotMessage>, ApiError> {
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

    /// A `/v1/route` call, decided and audited.
    async fn decide_route(self: Arc<Self>, message: String, id: Option<String>) -> Result<Routed, ApiError> {
        let started = Instant::now();
        let expires = started + self.config.request_timeout;
        let mut screened = self.screen(&message).await?;
        let (routed, record, path) = match screened.model_job.take() {
            None => {
                let (r, a) = self.router.conclude(&message, id.as_deref(), screened, None);
                (r, a, "examples")
            }
            Some(job) => {
                let rx = self.submit_route(job, expires).map_err(|_| {
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "the model queue is full; retry later")
                        .retry_after(self.queue.retry_after_secs())
                })?;
                match tokio::time::timeout_at(expires.into(), rx).await {
                    Ok(Ok(answer)) => {
                        let (r, a) = self.router.conclude(&message, id.as_deref(), screened, Some(answer));
                        (r, a, "model")
                    }
                    Ok(Err(_)) | Err(_) => {
                        return Err(ApiError::new(
                            StatusCode::GATEWAY_TIMEOUT,
                            "timeout",
                            format!("routing did not finish within {:?}", self.config.request_timeout),
                        ))
                    }
                }
            }
        };
        self.record(&routed, record, path).await?;
        Ok(routed)
    }
}

/// One routing model call on the model thread: a panic inside it becomes this call's error
/// (`malformed_output` routing), never the process's.
fn ask<B: Backend>(router: &Router<B>, runtime: &tokio::runtime::Handle, metrics: &Metrics, job: &crate::routing::router::ModelJob) -> crate::routing::router::ModelAnswer {
    let started = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(router.ask_model(job))));
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(answer) => {
            let outcome = if answer.backend_error.is_some() { "error" } else { "ok" };
            metrics.model_call(outcome, Some(seconds), answer.usage.as_ref());
            answer
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(panic = %what, "a model call panicked; the message gets default routing");
            metrics.model_call("panic", Some(seconds), None);
            router.model_failed(format!("the model call panicked: {what}"), seconds * 1e3)
        }
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

fn internal(e: tokio::task::JoinError) -> ApiError {
    tracing::error!(error = %e, "a request task failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
}

fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", format!("request body over {limit} bytes"))
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", format!("cannot read the request body: {e}"))
        }
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", "empty body; expected a JSON object"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", "expected a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", format!("bad request body: {e}")))
}

async fn webhook<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<BotMessage>>, ApiError> {
    app.check_webhook_secret(&headers)?;
    let body = body_bytes(body, app.config.max_body_bytes)?;
    let req: WebhookRequest = parse_json(&body)?;
    app.check_message(&req.message)?;
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

/// `POST /v1/route` body.
#[derive(Deserialize)]
struct RouteRequest {
    message: String,
    #[serde(default)]
    id: Option<Value>,
}

async fn route<B: Backend + Send + Sync + 'static>(
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
        Some(_) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", "id must be a string or a number")),
    };
    tokio::spawn(app.clone().decide_route(req.message, id)).await.map_err(internal)?.map(Json)
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz<B: Backend + Send + Sync + 'static>(State(app): State<Arc<App<B>>>) -> Response {
    if app.stopping.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "shutting_down"}))).into_response()
    } else if !app.ready.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "starting"}))).into_response()
    } else {
        Json(json!({"status": "ready", "model": app.router.backend().model()})).into_response()
    }
}

async fn metrics_text<B: Backend + Send + Sync + 'static>(State(app): State<Arc<App<B>>>) -> Response {
    let mut res = app.metrics.encode().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Counts and logs every request (endpoint = the matched route, so unknown paths share one label).
async fn observe<B: Backend + Send + Sync + 'static>(State(app): State<Arc<App<B>>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let endpoint = req.extensions().get::<MatchedPath>().map_or("other".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().clone();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    app.metrics.request(&endpoint, status, seconds);
    tracing::info!(target: "strictly::http", method = %method, endpoint, status, latency_ms = seconds * 1e3, "request");
    res
}

/// The HTTP routes over a state.
pub fn routes<B: Backend + Send + Sync + 'static>(app: Arc<App<B>>) -> axum::Router {
    let limit = app.config.max_body_bytes;
    axum::Router::new()
        .route("/kommunicate/webhook", post(webhook::<B>))
        .route("/v1/route", post(route::<B>))
        .route("/v1/models", get(openai::models::<B>))
        .route("/v1/chat/completions", post(openai::chat_completions::<B>))
        .route("/v1/responses", post(openai::responses::<B>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<B>))
        .route("/metrics", get(metrics_text::<B>))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), observe::<B>))
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error").into_response()
        }))
        .with_state(app)
}

/// A running server (for tests and embedding): its address, and how to stop it.
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Stops accepting, lets in-flight requests finish (within the grace), and waits.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        self.done.await.map_err(std::io::Error::other)?
    }
}

/// Binds `config.listen` and serves `router` until [`Server::shutdown`].
pub async fn start<B: Backend + Send + Sync + 'static>(router: Router<B>, config: ServeConfig) -> std::io::Result<Server> {
    start_with(router, None, config).await
}

/// [`start`], with a chat model for the OpenAI-compatible endpoints.
pub async fn start_with<B: Backend + Send + Sync + 'static>(
    router: Router<B>,
    chat: Option<openai::ChatModel>,
    config: ServeConfig,
) -> std::io::Result<Server> {
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let (stop, rx) = watch::channel(false);
    let app = App::new(router, chat, config);
    let done = tokio::spawn(serve_until(app, listener, rx));
    Ok(Server { addr, stop, done })
}

/// Serves until `stop` turns true; then stops accepting and waits for in-flight requests,
/// at most `shutdown_grace`.
async fn serve_until<B: Backend + Send + Sync + 'static>(
    app: Arc<App<B>>,
    listener: tokio::net::TcpListener,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let grace = app.config.shutdown_grace;
    let (mut a, mut b) = (stop.clone(), stop);
    let state = app.clone();
    let graceful = async move {
        let _ = a.wait_for(|s| *s).await;
        state.stopping.store(true, Ordering::SeqCst);
        tracing::info!("shutting down: no new connections; finishing requests in flight");
    };
    let server = axum::serve(listener, routes(app)).with_graceful_shutdown(graceful).into_future();
    let timer = async move {
        let _ = b.wait_for(|s| *s).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server => r,
        () = timer => {
            tracing::warn!(grace = ?grace, "shutdown grace over with requests in flight");
            Ok(())
        }
    }
}

/// `strictly serve`: serves until SIGTERM or SIGINT, then shuts down gracefully. Every
/// decision was synced to the audit log before its reply, so nothing is left to flush.
pub async fn run<B: Backend + Send + Sync + 'static>(router: Router<B>, chat: Option<openai::ChatModel>, config: ServeConfig) -> std::io::Result<()> {
    if config.api_keys.is_empty() {
        tracing::warn!("no API keys configured: /v1/* is open to anyone who can reach {}", config.listen);
    }
    if config.webhook_secret.is_none() {
        tracing::warn!("no webhook secret configured: /kommunicate/webhook is open to anyone who can reach {}", config.listen);
    }
    let server = start_with(router, chat, config).await?;
    // Scripts (and the tests) read the bound address from this line.
    println!("listening on http://{}", server.addr);
    tracing::info!(addr = %server.addr, "listening");
    shutdown_signal().await;
    let r = server.shutdown().await;
    tracing::info!("stopped");
    r
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
