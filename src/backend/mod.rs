//! One trait for every way of getting a schema-shaped answer from a model.
//!
//! The local backend ([`local::LocalBackend`], feature `local`) decodes under
//! the token mask; an OpenAI backend (Responses `text.format` json_schema
//! strict, Chat Completions `response_format`, strict tools) fits behind the
//! same trait: it takes the same messages and schema and reports a refusal
//! (`message.refusal`, or a `refusal` content part) as [`Reply::Refusal`].

use serde::Serialize;
use serde_json::Value;

use crate::chat::ChatMessage;

#[cfg(feature = "local")]
pub mod local;

/// A schema as sent to a backend: its JSON, and a name for logs and APIs.
#[derive(Debug, Clone)]
pub struct SchemaSpec {
    pub name: String,
    pub schema: Value,
}

/// Token counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
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

/// A backend's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// The output, parsed, with what is known of how it was made.
    Json {
        value: Value,
        text: String,
        usage: Usage,
        latency_ms: f64,
        /// Branch points with the alternatives' probabilities (empty when the backend gives none).
        branches: Vec<BranchPoint>,
        /// Sum of the sampled tokens' log-probabilities.
        logprob: f64,
    },
    /// The model declined.
    Refusal { message: String, latency_ms: f64 },
}

/// Errors a backend can return.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the schema cannot be enforced: {0}")]
    Schema(#[from] crate::schema::SchemaError),
    #[error("the model failed: {0}")]
    Model(String),
    /// The request cannot be served as asked: the prompt and output do not fit in the model's
    /// context, or no valid value fits under the token cap. The caller's to fix, not a fault.
    #[error("{0}")]
    TooLong(String),
    #[error("the output did not parse as JSON: {0}")]
    Parse(String),
}

impl BackendError {
    /// A short, stable name of the error's kind, for counting errors by kind (`strictly ab`,
    /// metrics): `schema`, `model`, `too_long`, `parse`.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::Schema(_) => "schema",
            BackendError::Model(_) => "model",
            BackendError::TooLong(_) => "too_long",
            BackendError::Parse(_) => "parse",
        }
    }
}

/// A model that answers chat messages with JSON matching a schema.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// A short name for logs (`local`, `openai`).
    fn name(&self) -> &str;
    /// The model's name.
    fn model(&self) -> &str;
    /// Answers `messages` with a value that matches `schema`, or a refusal.
    async fn complete(&self, messages: &[ChatMessage], schema: &SchemaSpec) -> Result<Reply, BackendError>;
}
