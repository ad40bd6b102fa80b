//! The server's settings: [`ServeConfig`], read from TOML and the environment.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

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
    /// Time a client has to send a request's head (request line and headers), counted from
    /// its first byte; also how long a kept-alive connection may sit idle. Past it the
    /// connection is closed. Default 10 s.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// Time a client has to send a whole request body once its head is in; past it the answer
    /// is 408 and the connection is closed. Default 10 s.
    #[serde(deserialize_with = "duration")]
    pub body_read_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog. Default 512.
    pub max_connections: usize,
    /// Model calls that may wait in each lane (routing, generations) while one runs.
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
    /// Longest webhook `key`, in bytes (400 above). Default 256.
    pub max_key_bytes: usize,
    /// Largest schema on the OpenAI endpoints (`response_format`, `text.format`, `tools`), in
    /// bytes of its JSON (400 above). Default 64 KiB.
    pub max_schema_bytes: usize,
    /// Memory cap of the compiled-schema cache the router and the OpenAI endpoints share, in
    /// bytes. Default 64 MiB.
    pub schema_cache_bytes: usize,
    /// Reply to Kommunicate's `WELCOME` event (the bot keeps the conversation).
    pub welcome_reply: String,
    /// Reply to a message without text (attachment, location, other events); default routing.
    pub not_text_reply: String,
    /// Let the model refuse on the OpenAI endpoints (a `{"refusal"}` branch beside the
    /// caller's schema; see [`openai::refusal`]). Default false: with SmolLM2-135M the model
    /// took the branch for ordinary requests. The prompt-injection screen refuses either way.
    pub model_refusals: bool,
    /// Where the record, the webhook keys and corrections are kept (`[store]`): the embedded
    /// files by default, PostgreSQL with a `url`.
    pub store: crate::store::StoreConfig,
    /// The routing config's file, which SIGHUP and `POST /admin/reload` read again (not a
    /// key of the file: `strictly serve --config` sets it). None: a reload re-reads only the
    /// learned phrases.
    #[serde(skip)]
    pub routing_config: Option<std::path::PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:8080".into(),
            deadline: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(25),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 512,
            queue: 4,
            max_body_bytes: 64 * 1024,
            max_message_chars: 4000,
            api_keys: Vec::new(),
            webhook_secret: None,
            webhook_secret_header: "x-strictly-secret".into(),
            recent_keys: 10_000,
            max_key_bytes: 256,
            max_schema_bytes: 64 * 1024,
            schema_cache_bytes: crate::constraint::cache::DEFAULT_CACHE_BYTES,
            welcome_reply: "Hi! How can I help you today?".into(),
            not_text_reply: "Thanks! I can only read text, so one of our agents will take a look.".into(),
            model_refusals: false,
            store: crate::store::StoreConfig::default(),
            routing_config: None,
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

    /// Adds the keys, the secret and the store's URL from the environment
    /// (`STRICTLY_API_KEYS`, `STRICTLY_WEBHOOK_SECRET`, `STRICTLY_STORE_URL`), which keeps them
    /// out of files.
    pub fn apply_env(&mut self) {
        self.store.apply_env();
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
