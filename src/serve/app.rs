//! The service's state ([`App`]) and the steps every routing request shares: the message
//! limit, the cheap stage, the model queue, canned decisions and the recorded decision.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use serde_json::Value;

use super::metrics::Metrics;
use super::webhook::RecentKeys;
use super::worker::{self, ModelQueue};
use super::{internal, openai, ApiError, ServeConfig};
use crate::backend::Backend;
use crate::routing::audit::AuditRecord;
use crate::routing::router::{Routed, Router};
use crate::routing::{Decision, Rule, Target};
use crate::store::{Outcome, Recorder, Row};

/// The service's state, shared by every request.
pub struct App<B: Backend> {
    /// The router now serving; [`App::reload`](super::reload) swaps it.
    pub(super) router: RwLock<Arc<Router<B>>>,
    /// The routing config as its file says, without the learned phrases.
    pub(super) base: Mutex<crate::routing::RoutingConfig>,
    /// One reload at a time.
    pub(super) reloading: tokio::sync::Mutex<()>,
    /// The router's generation: 1 once started, one more per reload.
    pub(super) generation: AtomicU64,
    /// The store's phrase generation the router was built at.
    pub(super) phrases_seen: AtomicU64,
    /// The model of the OpenAI-compatible endpoints, when the server has one.
    pub(super) chat: Option<Arc<openai::ChatModel>>,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) config: ServeConfig,
    pub(super) queue: ModelQueue,
    pub(super) metrics: Arc<Metrics>,
    pub(super) recent: Mutex<RecentKeys>,
    pub(super) recorder: Arc<Recorder>,
    pub(super) ready: Arc<AtomicBool>,
    pub(super) stopping: AtomicBool,
    /// Turns true when the server shuts down.
    pub(super) shutdown: tokio::sync::watch::Sender<bool>,
}

impl<B: Backend + Send + Sync + 'static> App<B> {
    /// The state over a router (and a chat model for the OpenAI endpoints) and the record
    /// ([`super::open_recorder`]); starts the model thread, which warms the router's model up.
    pub fn new(router: Router<B>, chat: Option<openai::ChatModel>, config: ServeConfig, recorder: Arc<Recorder>) -> Arc<Self> {
        let base = router.config().clone();
        let router = Arc::new(router);
        let metrics = Arc::new(Metrics::new());
        let ready = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Handle::current();
        let warm_up = {
            let (router, runtime, metrics) = (router.clone(), runtime.clone(), metrics.clone());
            Box::new(move || {
                let answer = ask(&router, &runtime, &metrics, &router.model_job("hello"));
                if let Some(e) = &answer.backend_error {
                    tracing::warn!(error = %e, "the warm-up call failed");
                }
                decoded(&answer)
            })
        };
        let queue = ModelQueue::start(config.queue, metrics.clone(), warm_up, ready.clone());
        let recent = Mutex::new(RecentKeys::new(config.recent_keys));
        let chat = chat.map(Arc::new);
        if recorder.store().repaired_bytes() > 0 {
            metrics.record_repaired();
        }
        Arc::new(App {
            router: RwLock::new(router),
            base: Mutex::new(base),
            reloading: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            phrases_seen: AtomicU64::new(0),
            chat,
            runtime,
            config,
            queue,
            metrics,
            recent,
            recorder,
            ready,
            stopping: AtomicBool::new(false),
            shutdown: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Queues a routing model call (in the routing lane: it never waits for a generation).
    pub(super) fn submit_route(
        &self,
        router: &Arc<Router<B>>,
        job: crate::routing::router::ModelJob,
        expires: Instant,
    ) -> Result<tokio::sync::oneshot::Receiver<crate::routing::ModelAnswer>, worker::QueueFull> {
        let (router, runtime, metrics) = (router.clone(), self.runtime.clone(), self.metrics.clone());
        self.queue.try_submit(move || ask(&router, &runtime, &metrics, &job), decoded, expires)
    }

    /// The router now serving (a request reads it once and keeps it to the end).
    pub(super) fn router(&self) -> Arc<Router<B>> {
        self.router.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(super) fn check_message(&self, message: &str) -> Result<(), ApiError> {
        let n = message.chars().count();
        if n > self.config.max_message_chars {
            return Err(ApiError::invalid_request(format!("message is {n} characters; the limit is {}", self.config.max_message_chars)));
        }
        Ok(())
    }

    /// A decision made by the service itself (event, deadline, overload), with its record.
    pub(super) fn canned(
        router: &Router<B>,
        message: &str,
        id: Option<&str>,
        target: Target,
        reply: String,
        rule: Rule,
        started: Instant,
    ) -> (Routed, AuditRecord) {
        let decision = Decision::new(target, vec![rule], reply);
        router.routed_without_model(message, id, decision, started.elapsed().as_secs_f64() * 1e3)
    }

    /// Default routing decided by the service (`deadline`, `overloaded`).
    pub(super) fn default_routing(
        &self,
        router: &Router<B>,
        message: &str,
        id: Option<&str>,
        rule: Rule,
        started: Instant,
    ) -> (Routed, AuditRecord) {
        let reply = router.config().replies.default_fallback.clone();
        Self::canned(router, message, id, Target::DefaultRouting, reply, rule, started)
    }

    /// The cheap stage, off the runtime's threads (the examples' vote may grow an encoder).
    pub(super) async fn screen(&self, router: &Arc<Router<B>>, message: &str) -> Result<crate::routing::router::Screened, ApiError> {
        let (router, text) = (router.clone(), message.to_owned());
        tokio::task::spawn_blocking(move || router.screen(&text)).await.map_err(internal)
    }

    /// Writes the record (committed, or spooled when the store is down) and counts the
    /// decision; the reply waits for this. `keyed` is a webhook delivery's key and reply,
    /// stored with the record. `hold`: keep the record in memory when neither the store nor the
    /// spool file can be written (the webhook, which answers whatever happens); otherwise that
    /// is a 503 with `Retry-After`. [`Outcome::Lost`]: the key's claim was taken over, nothing
    /// was written.
    pub(super) async fn record(
        self: &Arc<Self>,
        routed: &Routed,
        mut record: AuditRecord,
        path: &str,
        keyed: Option<(&str, &Value)>,
        hold: bool,
    ) -> Result<Outcome, ApiError> {
        record.path = Some(path.to_owned());
        // The text as the audit config redacts it (digits masked, or only a hash and a length).
        let text = serde_json::to_string(&record.text).unwrap_or_default();
        let row = Row::new(&record).map_err(|e| ApiError::internal(e.to_string()))?;
        let started = Instant::now();
        let written = self.recorder.write(row, keyed, hold).await;
        let outcome = match &written {
            Ok(Outcome::Stored) => "stored",
            Ok(Outcome::Spooled) => "spooled",
            Ok(Outcome::Held) => "held",
            Ok(Outcome::Lost) => "lost",
            Err(_) => "failed",
        };
        self.metrics.record_write(outcome, started.elapsed().as_secs_f64());
        let outcome = match written {
            Ok(Outcome::Lost) => return Ok(Outcome::Lost),
            Ok(o) => o,
            Err(e) => {
                tracing::error!(id = %routed.message_id, error = %e, "a decision could not be recorded");
                return Err(ApiError::unavailable(format!("the decision cannot be recorded: {e}")).retry_after(5));
            }
        };
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
            recorded = ?outcome,
            "decision"
        );
        Ok(outcome)
    }
}

/// The tokens a routing call decoded.
fn decoded(answer: &crate::routing::ModelAnswer) -> usize {
    answer.usage.as_ref().map_or(0, |u| u.completion_tokens)
}

/// One routing model call on the model thread: a panic inside it becomes this call's error
/// (`malformed_output` routing), never the process's.
fn ask<B: Backend>(
    router: &Router<B>,
    runtime: &tokio::runtime::Handle,
    metrics: &Metrics,
    job: &crate::routing::router::ModelJob,
) -> crate::routing::ModelAnswer {
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
