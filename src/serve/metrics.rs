//! The service's Prometheus metrics (OpenMetrics text at `GET /metrics`).

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::backend::Usage;
use crate::routing::Decision;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric the service exports; cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<EndpointLabel, Histogram, fn() -> Histogram>,
    decisions: Family<ActionLabel, Counter>,
    rules: Family<RuleLabel, Counter>,
    model_calls: Family<OutcomeLabel, Counter>,
    model_latency: Histogram,
    sampled_tokens: Counter,
    forced_tokens: Counter,
    mask_seconds: Counter<f64, AtomicU64>,
    queue_depth: Gauge<i64, AtomicI64>,
    webhook_replays: Counter,
    schema_lookups: Family<OutcomeLabel, Counter>,
    schema_compile: Histogram,
    record_writes: Family<OutcomeLabel, Counter>,
    record_write_seconds: Histogram,
    spool_depth: Gauge<i64, AtomicI64>,
    record_repairs: Counter,
    config_generation: Gauge<i64, AtomicI64>,
    learned_phrases: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("strictly");
        let requests = Family::<HttpLabels, Counter>::default();
        let latency = Family::<EndpointLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let decisions = Family::<ActionLabel, Counter>::default();
        let rules = Family::<RuleLabel, Counter>::default();
        let model_calls = Family::<OutcomeLabel, Counter>::default();
        let model_latency = latency_histogram();
        let sampled_tokens = Counter::default();
        let forced_tokens = Counter::default();
        let mask_seconds = Counter::<f64, AtomicU64>::default();
        let queue_depth = Gauge::<i64, AtomicI64>::default();
        let webhook_replays = Counter::default();
        let schema_lookups = Family::<OutcomeLabel, Counter>::default();
        let schema_compile = latency_histogram();
        let record_writes = Family::<OutcomeLabel, Counter>::default();
        let record_write_seconds = latency_histogram();
        let spool_depth = Gauge::<i64, AtomicI64>::default();
        let record_repairs = Counter::default();
        let config_generation = Gauge::<i64, AtomicI64>::default();
        let learned_phrases = Gauge::<i64, AtomicI64>::default();
        registry.register("http_requests", "HTTP requests by endpoint and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by endpoint", latency.clone());
        registry.register("decisions", "Routing decisions by final action", decisions.clone());
        registry.register("decision_rules", "Rules that fired in routing decisions", rules.clone());
        registry.register("model_calls", "Model calls by outcome (ok, error, panic, skipped)", model_calls.clone());
        registry.register("model_call_duration_seconds", "Time of one model call", model_latency.clone());
        registry.register("sampled_tokens", "Output tokens the model sampled", sampled_tokens.clone());
        registry.register("forced_tokens", "Output tokens the schema forced (fed without sampling)", forced_tokens.clone());
        registry.register("mask_seconds", "Time spent computing token masks", mask_seconds.clone());
        registry.register("model_queue_depth", "Model calls waiting in the queue", queue_depth.clone());
        registry.register("webhook_replays", "Webhook deliveries answered from the memory of recent keys", webhook_replays.clone());
        registry.register(
            "schema_cache_lookups",
            "Schemas of the OpenAI endpoints looked up in the compiled-schema cache, by outcome (hit, miss)",
            schema_lookups.clone(),
        );
        registry.register(
            "schema_compile_seconds",
            "Time to get a compiled schema: compilation on a miss, the lookup on a hit",
            schema_compile.clone(),
        );
        registry.register(
            "record_writes",
            "Decision records by where they went (stored, spooled, held, lost, failed)",
            record_writes.clone(),
        );
        registry.register(
            "record_write_seconds",
            "Time to write a decision record (the store's commit, or the spool)",
            record_write_seconds.clone(),
        );
        registry.register("spool_depth", "Decision records waiting in the spool for the store", spool_depth.clone());
        registry.register("record_repairs", "Partial last lines of the audit file moved aside at start", record_repairs.clone());
        registry.register(
            "config_generation",
            "The routing config's generation: 1 at start, one more per reload",
            config_generation.clone(),
        );
        registry.register("learned_phrases", "Learned phrases voting in the router now serving", learned_phrases.clone());
        Metrics {
            registry,
            requests,
            latency,
            decisions,
            rules,
            model_calls,
            model_latency,
            sampled_tokens,
            forced_tokens,
            mask_seconds,
            queue_depth,
            webhook_replays,
            schema_lookups,
            schema_compile,
            record_writes,
            record_write_seconds,
            spool_depth,
            record_repairs,
            config_generation,
            learned_phrases,
        }
    }

    /// One HTTP request answered.
    pub fn request(&self, endpoint: &str, status: u16, seconds: f64) {
        self.requests.get_or_create(&HttpLabels { endpoint: endpoint.into(), status: status.to_string() }).inc();
        self.latency.get_or_create(&EndpointLabel { endpoint: endpoint.into() }).observe(seconds);
    }

    /// One decision made (and audited).
    pub fn decision(&self, d: &Decision) {
        self.decisions.get_or_create(&ActionLabel { action: d.action.as_str().into() }).inc();
        for r in &d.rules {
            self.rules.get_or_create(&RuleLabel { rule: r.as_str().into() }).inc();
        }
    }

    /// One model call finished (or skipped: its caller had gone).
    pub fn model_call(&self, outcome: &str, seconds: Option<f64>, usage: Option<&Usage>) {
        self.model_calls.get_or_create(&OutcomeLabel { outcome: outcome.into() }).inc();
        if let Some(s) = seconds {
            self.model_latency.observe(s);
        }
        if let Some(u) = usage {
            self.forced_tokens.inc_by(u.forced_tokens as u64);
            self.sampled_tokens.inc_by(u.completion_tokens.saturating_sub(u.forced_tokens) as u64);
            self.mask_seconds.inc_by(u.mask_ms / 1e3);
        }
    }

    /// The model queue's depth changed by `delta`.
    pub fn queue(&self, delta: i64) {
        self.queue_depth.inc_by(delta);
    }

    /// Calls now waiting in the model queue.
    pub fn queue_depth(&self) -> i64 {
        self.queue_depth.get()
    }

    /// A schema was looked up in the compiled-schema cache (`hit`), or compiled, in `seconds`.
    pub fn schema(&self, hit: bool, seconds: f64) {
        self.schema_lookups.get_or_create(&OutcomeLabel { outcome: if hit { "hit" } else { "miss" }.into() }).inc();
        self.schema_compile.observe(seconds);
    }

    /// A retried webhook delivery was answered from memory.
    pub fn replay(&self) {
        self.webhook_replays.inc();
    }

    /// A decision record was written (`stored`, `spooled`, `held`, `lost`, `failed`) in `seconds`.
    pub fn record_write(&self, outcome: &str, seconds: f64) {
        self.record_writes.get_or_create(&OutcomeLabel { outcome: outcome.into() }).inc();
        self.record_write_seconds.observe(seconds);
    }

    /// Records waiting in the spool.
    pub fn set_spool_depth(&self, depth: usize) {
        self.spool_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// A partial last line of the audit file was moved aside at start.
    pub fn record_repaired(&self) {
        self.record_repairs.inc();
    }

    /// The router now serving is the `generation`th.
    pub fn set_config_generation(&self, generation: u64) {
        self.config_generation.set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// Learned phrases in the router now serving.
    pub fn set_learned_phrases(&self, n: usize) {
        self.learned_phrases.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
