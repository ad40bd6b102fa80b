//! The OpenAI backend: the same messages and schema as the local backend, sent to an
//! OpenAI-compatible server, the reply checked by the `jsonschema` crate.
//!
//! Four wire modes ([`WireMode`]): the Responses API with `text.format` json_schema strict
//! (default), Chat Completions with `response_format` json_schema strict, Chat Completions with
//! one strict function tool, and the `{"type": "json_object", "schema": ...}` shape that
//! llama-cpp-python's server takes. Before a request leaves, the schema is checked against
//! OpenAI's strict subset ([`crate::schema::lint`]); a schema that breaks a rule is refused
//! locally with the rule and its JSON pointer (`lint = false` turns the check off for servers
//! that take any schema).
//!
//! Every failure is a typed [`BackendError`] (auth, rate limit, bad request with the server's
//! message, timeout, server, transport, schema violation, truncation), never a panic; the
//! router turns each into default routing and audits it. The key comes from `OPENAI_API_KEY`
//! and is only ever put in the `Authorization` header: no log line, error or audit record
//! holds it.
//!
//! Confidence: Chat Completions is asked for token log-probabilities (`logprobs`,
//! `top_logprobs`), turned into [`BranchPoint`]s as the local decoder's branch probabilities
//! are; the Responses API and tool calls give none, and the rules fall back on the
//! self-reported `confidence` field. Cost: the usage times the config's price table.

pub mod retry;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use super::{
    Backend, BackendError, Billing, BranchPoint, OpenAiSettings, Reply, SchemaSpec, TokenScores, Usage, WireMode, OPENAI_DEFAULT_BASE_URL,
};
use crate::chat::ChatMessage;
use crate::schema::lint::{lint, Target};
use retry::{post_json, RetryPolicy};
use wire::{Answer, RequestOptions, TokenLogprob};

/// Compiled validators kept per backend.
const MAX_VALIDATORS: usize = 256;

/// Installs rustls's `ring` crypto provider as the process default, once (later calls do
/// nothing). reqwest is built without a provider of its own (its default, aws-lc-rs, is a C
/// build of minutes), so any `reqwest::Client` in a process built with the `openai` feature
/// needs this first; [`OpenAiBackend::new`] calls it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A schema checked once: its validator, or why it is refused.
type Checked = Result<Arc<jsonschema::Validator>, String>;

/// Sends routing requests to an OpenAI-compatible server.
pub struct OpenAiBackend {
    client: reqwest::Client,
    settings: OpenAiSettings,
    base_url: String,
    key: Option<String>,
    checked: Mutex<HashMap<String, Checked>>,
}

impl std::fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is left out on purpose.
        f.debug_struct("OpenAiBackend")
            .field("base_url", &self.base_url)
            .field("model", &self.settings.model)
            .field("mode", &self.settings.mode)
            .field("has_key", &self.key.is_some())
            .finish()
    }
}

impl OpenAiBackend {
    /// A backend from the config's settings and the environment: the key from
    /// `OPENAI_API_KEY`, the base URL from the settings, else `OPENAI_BASE_URL`, else OpenAI's.
    pub fn from_env(settings: OpenAiSettings) -> Result<Self, BackendError> {
        let key = std::env::var("OPENAI_API_KEY").ok().filter(|k| !k.is_empty());
        let env_url = std::env::var("OPENAI_BASE_URL").ok().filter(|u| !u.is_empty());
        let mut settings = settings;
        if settings.base_url.is_none() {
            settings.base_url = env_url;
        }
        Self::new(settings, key)
    }

    /// A backend with an explicit key (`None`: no `Authorization` header, for local servers).
    pub fn new(settings: OpenAiSettings, key: Option<String>) -> Result<Self, BackendError> {
        install_crypto_provider();
        let base_url = settings.base_url.clone().unwrap_or_else(|| OPENAI_DEFAULT_BASE_URL.to_owned()).trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(BackendError::BadRequest {
                status: 0,
                message: format!("base URL `{base_url}` is not http:// or https://"),
                param: None,
            });
        }
        if settings.top_logprobs > 20 {
            return Err(BackendError::BadRequest {
                status: 0,
                message: format!("top_logprobs {} is above 20", settings.top_logprobs),
                param: None,
            });
        }
        let client = reqwest::Client::builder().connect_timeout(settings.timeout).build().map_err(|e| BackendError::Transport {
            attempts: 0,
            message: e.to_string(),
            source: e.into(),
        })?;
        Ok(Self { client, settings, base_url, key, checked: Mutex::new(HashMap::new()) })
    }

    /// The settings.
    pub fn settings(&self) -> &OpenAiSettings {
        &self.settings
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The request options of this backend.
    fn request_options(&self) -> RequestOptions {
        let chat_logprobs = self.settings.logprobs && matches!(self.settings.mode, WireMode::Chat | WireMode::Compat);
        RequestOptions {
            model: self.settings.model.clone(),
            mode: self.settings.mode,
            max_output_tokens: self.settings.max_output_tokens,
            top_logprobs: chat_logprobs.then_some(self.settings.top_logprobs),
        }
    }

    /// The path and body this backend would send for `messages` and `schema` (no lint, no I/O).
    pub fn request_body(&self, messages: &[ChatMessage], schema: &SchemaSpec) -> (&'static str, Value) {
        wire::build(messages, schema, &self.request_options())
    }

    /// The schema's validator, after the strict-subset lint when the settings ask for it;
    /// both are done once per schema.
    pub fn check_schema(&self, schema: &SchemaSpec) -> Result<Arc<jsonschema::Validator>, BackendError> {
        let key = schema.schema.to_string();
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        let entry = match checked.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = self.check(&schema.schema);
                if checked.len() >= MAX_VALIDATORS {
                    checked.clear();
                }
                checked.insert(key, c.clone());
                c
            }
        };
        entry.map_err(BackendError::Lint)
    }

    fn check(&self, schema: &Value) -> Checked {
        if self.settings.lint {
            // What is sent: a root that is not an object goes wrapped.
            let sent = wire::wire_schema(schema);
            let findings = lint(sent.as_ref().unwrap_or(schema), Target::OpenAi);
            if !findings.is_empty() {
                return Err(findings.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "));
            }
        }
        crate::schema::validator(schema).map(Arc::new).map_err(|e| format!("the jsonschema crate cannot compile the schema: {e}"))
    }

    /// Reads a 2xx body into a reply for `schema`: parsed, unwrapped (see
    /// [`wire::wire_schema`]), validated by `validator`, priced.
    pub fn interpret(
        &self,
        body: &Value,
        schema: &SchemaSpec,
        validator: &jsonschema::Validator,
        started: Instant,
    ) -> Result<Reply, BackendError> {
        let parsed = wire::parse(self.settings.mode, body)?;
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let (text, logprobs) = match parsed.answer {
            Answer::Refusal(message) => return Ok(Reply::Refusal { message, latency_ms }),
            Answer::Text { text, logprobs } => (text, logprobs),
        };
        let value: Value =
            serde_json::from_str(&text).map_err(|e| BackendError::Parse { message: format!("{e} in {text:?}"), source: e })?;
        let (value, text, start) = if wire::wire_schema(&schema.schema).is_some() {
            match wire::unwrap_value(value, &text) {
                (value, Some((inner, start))) => (value, inner, Some(start)),
                (value, None) => (value, text, None),
            }
        } else {
            (value, text, Some(0))
        };
        let errors: Vec<String> = validator.iter_errors(&value).map(|e| format!("{e} at `{}`", e.instance_path())).collect();
        if !errors.is_empty() {
            return Err(BackendError::SchemaViolation { instance: value, errors });
        }
        let usd = self
            .settings
            .prices
            .get(&self.settings.model)
            .map(|p| p.cost(parsed.prompt_tokens, parsed.cached_tokens, parsed.completion_tokens));
        // The token probabilities count only when the tokens spell the text (offsets line up).
        let joined: String = logprobs.iter().map(|t| t.token.as_str()).collect();
        let scored = !logprobs.is_empty() && start.is_some_and(|s| joined.get(s..s + text.len()) == Some(text.as_str()));
        let scores = start.filter(|_| scored).map(|s| TokenScores {
            branches: branch_points(&logprobs)
                .into_iter()
                .filter(|b| b.offset >= s)
                .map(|b| BranchPoint { offset: b.offset - s, ..b })
                .collect(),
            logprob: logprobs.iter().map(|t| t.logprob).sum(),
        });
        Ok(Reply::Json {
            usage: Usage { prompt_tokens: parsed.prompt_tokens, completion_tokens: parsed.completion_tokens, ..Usage::default() },
            latency_ms,
            scores,
            billing: Some(Billing { cached_prompt_tokens: parsed.cached_tokens, usd }),
            value,
            text,
        })
    }
}

/// Branch points from Chat Completions' token log-probabilities: at each token with more than
/// one alternative, the alternatives' probabilities renormalised over the `top_logprobs` shown
/// (the rest of the mass is unknown), at the token's byte offset.
pub fn branch_points(tokens: &[TokenLogprob]) -> Vec<BranchPoint> {
    let mut offset = 0;
    let mut out = Vec::new();
    for t in tokens {
        if t.top.len() > 1 {
            let total: f64 = t.top.iter().map(|(_, lp)| lp.exp()).sum();
            if total > 0.0 {
                out.push(BranchPoint {
                    offset,
                    chosen: t.token.clone(),
                    alternatives: t.top.iter().map(|(s, lp)| (s.clone(), (lp.exp() / total) as f32)).collect(),
                });
            }
        }
        offset += t.token.len();
    }
    out
}

impl Backend for OpenAiBackend {
    fn name(&self) -> &str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.settings.model
    }

    async fn complete(&self, messages: &[ChatMessage], schema: &SchemaSpec) -> Result<Reply, BackendError> {
        let started = Instant::now();
        let validator = self.check_schema(schema)?;
        let (path, body) = self.request_body(messages, schema);
        let url = format!("{}{path}", self.base_url);
        let request = || {
            let mut r = self.client.post(&url);
            if let Some(key) = &self.key {
                r = r.bearer_auth(key);
            }
            if let Some(org) = &self.settings.organization {
                r = r.header("OpenAI-Organization", org);
            }
            if let Some(project) = &self.settings.project {
                r = r.header("OpenAI-Project", project);
            }
            r
        };
        let policy = RetryPolicy {
            retries: self.settings.retries,
            backoff: self.settings.backoff,
            timeout: self.settings.timeout,
            total: self.settings.total_timeout,
        };
        let reply = post_json(request, &body, &policy).await?;
        self.interpret(&reply, schema, &validator, started)
    }
}
