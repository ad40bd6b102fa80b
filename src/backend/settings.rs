//! `[backend]` of the routing config: which backend, and the OpenAI backend's settings.
//! Plain serde types, compiled with or without the `openai` feature, so a config names
//! `kind = "openai"` and the binary says clearly when it was built without it.
//!
//! ```
//! use strictly::backend::{BackendKind, BackendSettings, WireMode};
//!
//! let s: BackendSettings = toml::from_str(r#"
//!     kind = "openai"
//!     [openai]
//!     model = "gpt-4o-mini"
//!     mode = "chat"
//!     timeout = "20s"
//!     [openai.prices."gpt-4o-mini"]
//!     input = 0.15
//!     cached_input = 0.075
//!     output = 0.60
//! "#)?;
//! assert_eq!(s.kind, BackendKind::OpenAi);
//! assert_eq!(s.openai.mode, WireMode::Chat);
//! assert_eq!(s.openai.timeout.as_secs(), 20);
//! // 1,000 prompt tokens (400 cached) and 100 output tokens:
//! let usd = s.openai.prices["gpt-4o-mini"].cost(1000, 400, 100);
//! assert!((usd - (600.0 * 0.15 + 400.0 * 0.075 + 100.0 * 0.60) / 1e6).abs() < 1e-12);
//! # Ok::<(), toml::de::Error>(())
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::BackendKind;

/// OpenAI's API, the default base URL (`OPENAI_BASE_URL` or `base_url` replace it).
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// `[backend]`: which backend routes, and how the remote one is reached.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendSettings {
    /// `local` (default), `openai` or `examples`; `--backend` overrides it.
    pub kind: BackendKind,
    /// The OpenAI backend's settings (`[backend.openai]`).
    pub openai: OpenAiSettings,
}

/// How the schema travels to the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireMode {
    /// `POST /responses` with `text.format` `{type: json_schema, strict: true}` (default).
    #[default]
    Responses,
    /// `POST /chat/completions` with `response_format` `{type: json_schema, json_schema: {strict: true}}`.
    Chat,
    /// `POST /chat/completions` with one strict function tool, `tool_choice` naming it and
    /// `parallel_tool_calls: false`; the call's arguments are the value.
    Tool,
    /// `POST /chat/completions` with `response_format` `{type: json_object, schema}`: the shape
    /// llama-cpp-python's server takes (it answers `json_schema` with a 500).
    Compat,
}

impl WireMode {
    /// The name the config uses.
    pub fn as_str(self) -> &'static str {
        match self {
            WireMode::Responses => "responses",
            WireMode::Chat => "chat",
            WireMode::Tool => "tool",
            WireMode::Compat => "compat",
        }
    }
}

impl std::str::FromStr for WireMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "responses" => Ok(WireMode::Responses),
            "chat" => Ok(WireMode::Chat),
            "tool" => Ok(WireMode::Tool),
            "compat" => Ok(WireMode::Compat),
            other => Err(format!("wire mode `{other}` is not one of responses, chat, tool or compat")),
        }
    }
}

/// `[backend.openai]`. The key is never here: it comes from `OPENAI_API_KEY` only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiSettings {
    /// Base URL ending in `/v1`; default `OPENAI_BASE_URL`, else [`OPENAI_DEFAULT_BASE_URL`].
    pub base_url: Option<String>,
    /// Model name sent in every request; default `gpt-4o-mini`.
    pub model: String,
    /// Wire mode; default [`WireMode::Responses`].
    pub mode: WireMode,
    /// Time bound of one attempt; default 30 s.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Retries after the first attempt (429, 5xx, timeouts, connection errors); default 3.
    pub retries: u32,
    /// First backoff; doubled each retry, with full jitter; default 500 ms.
    #[serde(deserialize_with = "duration")]
    pub backoff: Duration,
    /// Bound on the whole call, retries and waits included; default 90 s.
    #[serde(deserialize_with = "duration")]
    pub total_timeout: Duration,
    /// Token cap of the output (`max_output_tokens`, `max_completion_tokens`); default 256.
    pub max_output_tokens: u32,
    /// Ask Chat Completions for token log-probabilities (`logprobs`, `top_logprobs`), which
    /// give the action's probability as the local decoder's branch points do. Default true.
    pub logprobs: bool,
    /// How many alternatives per token; default 5 (OpenAI allows 0 to 20).
    pub top_logprobs: u32,
    /// `OpenAI-Organization` header, when set.
    pub organization: Option<String>,
    /// `OpenAI-Project` header, when set.
    pub project: Option<String>,
    /// Check the schema against OpenAI's strict subset before sending, and refuse it locally
    /// when it breaks a rule. Default true (turn off for servers that take any schema).
    pub lint: bool,
    /// US dollars per million tokens, per model name.
    pub prices: BTreeMap<String, Price>,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        OpenAiSettings {
            base_url: None,
            model: "gpt-4o-mini".into(),
            mode: WireMode::Responses,
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(500),
            total_timeout: Duration::from_secs(90),
            max_output_tokens: 256,
            logprobs: true,
            top_logprobs: 5,
            organization: None,
            project: None,
            lint: true,
            prices: BTreeMap::new(),
        }
    }
}

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Prompt tokens served from the cache; default: the `input` price.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Output tokens.
    pub output: f64,
}

impl Price {
    /// The cost in dollars of `prompt` prompt tokens (of which `cached` were cached) and
    /// `output` output tokens.
    pub fn cost(&self, prompt: usize, cached: usize, output: usize) -> f64 {
        let cached = cached.min(prompt);
        let uncached = (prompt - cached) as f64 * self.input;
        let cached = cached as f64 * self.cached_input.unwrap_or(self.input);
        (uncached + cached + output as f64 * self.output) / 1e6
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}
