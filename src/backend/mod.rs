//! One trait for every way of getting a schema-shaped answer from a model.
//!
//! The local backend ([`local::LocalBackend`], feature `local`) decodes under
//! the token mask; the OpenAI backend ([`openai::OpenAiBackend`], feature
//! `openai`) sends the same messages and schema to an OpenAI-compatible server
//! (Responses `text.format` json_schema strict, Chat Completions
//! `response_format`, a strict function tool, or the `json_object` + `schema`
//! shape of llama-cpp-python) and reports a refusal as [`Reply::Refusal`].
//! [`NoModel`] is the backend of a router that asks no model (the examples'
//! vote decides). [`AnyBackend`] holds any of them, chosen at run time
//! (`--backend local|openai|examples`, or `[backend]` in the routing config).

use serde::Serialize;
use serde_json::Value;

use crate::chat::ChatMessage;

mod any;
#[cfg(feature = "local")]
pub mod local;
mod none;
#[cfg(feature = "openai")]
pub mod openai;
mod settings;

pub use any::{AnyBackend, BackendKind};
pub use none::NoModel;
pub use settings::{BackendSettings, OpenAiSettings, Price, WireMode, OPENAI_DEFAULT_BASE_URL};

/// A schema as sent to a backend: its JSON, and a name for logs and APIs.
#[derive(Debug, Clone)]
pub struct SchemaSpec {
    /// The schema's name, as sent to APIs that ask for one (OpenAI's `json_schema.name`) and written in logs.
    pub name: String,
    /// The JSON Schema the output must match.
    pub schema: Value,
}

/// Token counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    /// Tokens of the prompt, as the backend counts them.
    pub prompt_tokens: usize,
    /// Tokens of the output, forced ones included.
    pub completion_tokens: usize,
    /// Tokens the schema forced (fed without sampling), local backend only.
    pub forced_tokens: usize,
    /// Time spent computing token masks, local backend only.
    pub mask_ms: f64,
}

/// The probability of each alternative at one branch point of the output.
#[derive(Debug, Clone, Serialize)]
pub struct BranchPoint {
    /// Byte offset in the output where the alternatives diverge.
    pub offset: usize,
    /// The chosen token's text.
    pub chosen: String,
    /// `(token text, probability)` of the likeliest allowed tokens.
    pub alternatives: Vec<(String, f32)>,
}

/// The model's token probabilities behind one output.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenScores {
    /// Branch points with the alternatives' probabilities (empty when nothing branched).
    pub branches: Vec<BranchPoint>,
    /// Sum of the sampled tokens' log-probabilities.
    pub logprob: f64,
}

/// A backend's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reply {
    /// The output, parsed, with what is known of how it was made.
    Json {
        /// The output parsed as JSON.
        value: Value,
        /// The output as the model wrote it.
        text: String,
        /// Token counts of the call.
        usage: Usage,
        /// Time from the request to the parsed output, in ms.
        latency_ms: f64,
        /// The model's token probabilities behind the output; `None` when the backend gave
        /// none (a remote one), and confidence is then the self-reported field.
        scores: Option<TokenScores>,
        /// What a remote backend bills for the call (`None` for the local one).
        billing: Option<Billing>,
    },
    /// The model declined.
    Refusal {
        /// The model's refusal text.
        message: String,
        /// Time from the request to the refusal, in ms.
        latency_ms: f64,
    },
}

/// What a remote backend bills for one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Billing {
    /// Prompt tokens served from the provider's cache (a part of [`Usage::prompt_tokens`]).
    pub cached_prompt_tokens: usize,
    /// The call's cost in US dollars, from the price table; `None` when the model has no price.
    pub usd: Option<f64>,
}

/// Errors a backend can return. [`BackendError::kind`] names the variant for counting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The schema cannot be compiled to an automaton (local backend).
    #[error("the schema cannot be enforced: {0}")]
    Schema(#[from] crate::schema::SchemaError),
    /// The local model, its tokenizer or its chat template failed; holds the cause (a message
    /// alone when there is no error value behind it).
    #[error("the model failed: {0}")]
    Model(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request cannot be served as asked: the prompt and output do not fit in the model's
    /// context, or no valid value fits under the token cap. The caller's to fix, not a fault.
    #[error("{0}")]
    TooLong(String),
    /// The output is not valid JSON.
    #[error("the output did not parse as JSON: {message}")]
    Parse {
        /// The parser's message (with the output, from a remote backend).
        message: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The server refused the key (401, 403).
    #[error("authentication failed ({status}): {message}")]
    Auth {
        /// The HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// 429 after the retries ran out.
    #[error("rate limited after {attempts} attempts: {message}")]
    RateLimit {
        /// Attempts made, the first included.
        attempts: u32,
        /// The last `Retry-After` the server sent, in ms; None when it sent none.
        retry_after_ms: Option<u64>,
        /// The server's error message.
        message: String,
    },
    /// Another 4xx: the request is wrong, and retrying will not help. `message` is the server's.
    #[error("bad request ({status}, param {param:?}): {message}")]
    BadRequest {
        /// The HTTP status (0 when the request was refused before sending).
        status: u16,
        /// The server's error message, or why the request was refused before sending.
        message: String,
        /// The request parameter the server blames; None when it names none.
        param: Option<String>,
    },
    /// No answer within the per-attempt timeout, or the total time bound ran out.
    #[error("timed out after {attempts} attempts ({elapsed_ms} ms)")]
    Timeout {
        /// Attempts made, the first included.
        attempts: u32,
        /// Time from the first attempt to giving up, in ms.
        elapsed_ms: u64,
    },
    /// A 5xx after the retries ran out.
    #[error("server error ({status}) after {attempts} attempts: {message}")]
    Server {
        /// The HTTP status of the last attempt.
        status: u16,
        /// Attempts made, the first included.
        attempts: u32,
        /// The server's error message.
        message: String,
    },
    /// The connection failed (refused, reset, DNS) after the retries ran out.
    #[error("transport error after {attempts} attempts: {message}")]
    Transport {
        /// Attempts made, the first included (0 when the HTTP client could not be built).
        attempts: u32,
        /// The error and its sources, on one line.
        message: String,
        /// The HTTP client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The reply parsed as JSON but does not match the schema: the instance and the
    /// validator's messages (each with its instance path).
    #[error("the reply breaks the schema: {}", errors.join("; "))]
    SchemaViolation {
        /// The parsed reply.
        instance: Value,
        /// The validator's messages, each with its instance path.
        errors: Vec<String>,
    },
    /// The output was cut by the token cap (`finish_reason: length`, `status: incomplete`).
    #[error("the output was cut by the token cap ({reason}): {text:?}")]
    Truncated {
        /// The API's reason for stopping (`length`, `content_filter`, `max_output_tokens`).
        reason: String,
        /// The output up to the cut.
        text: String,
    },
    /// The reply has none of the shapes the API defines.
    #[error("unexpected reply: {message}")]
    Protocol {
        /// What was wrong with the reply.
        message: String,
        /// The JSON parser's error, for a reply that is not JSON.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// The schema breaks a rule of the target's strict subset; refused before sending.
    #[error("the schema breaks OpenAI's strict subset: {0}")]
    Lint(String),
}

impl BackendError {
    /// A short name of the variant, for counting errors by kind (`timeout`, `auth`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::Schema(_) => "schema",
            BackendError::Model(_) => "model",
            BackendError::TooLong(_) => "too_long",
            BackendError::Parse { .. } => "parse",
            BackendError::Auth { .. } => "auth",
            BackendError::RateLimit { .. } => "rate_limit",
            BackendError::BadRequest { .. } => "bad_request",
            BackendError::Timeout { .. } => "timeout",
            BackendError::Server { .. } => "server",
            BackendError::Transport { .. } => "transport",
            BackendError::SchemaViolation { .. } => "schema_violation",
            BackendError::Truncated { .. } => "truncated",
            BackendError::Protocol { .. } => "protocol",
            BackendError::Lint(_) => "lint",
        }
    }

    /// The output does not match the schema (cut short, unparsable or invalid): what an A/B
    /// comparison counts as a schema violation.
    pub fn is_violation(&self) -> bool {
        matches!(self, BackendError::Parse { .. } | BackendError::SchemaViolation { .. } | BackendError::Truncated { .. })
    }
}

/// A model that answers chat messages with JSON matching a schema.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// A short name for logs (`local`, `openai`).
    fn name(&self) -> &str;
    /// The model's name.
    fn model(&self) -> &str;
    /// Whether this backend asks a model at all; `false` for [`NoModel`], whose router
    /// routes by the examples' vote alone.
    fn asks_model(&self) -> bool {
        true
    }
    /// Whether [`complete`](Backend::complete) does its work on the thread that polls it and
    /// waits on no I/O (the local model decodes for seconds in one poll). A router runs such a
    /// backend off the async runtime's threads ([`Router::route`](crate::routing::Router::route)).
    /// Default `false`: the backend awaits I/O (a remote server) and needs a tokio runtime.
    fn runs_inline(&self) -> bool {
        false
    }
    /// Answers `messages` with a value that matches `schema`, or a refusal.
    async fn complete(&self, messages: &[ChatMessage], schema: &SchemaSpec) -> Result<Reply, BackendError>;
}
