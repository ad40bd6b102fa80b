//! OpenAI-compatible endpoints on the same server: `GET /v1/models`,
//! `POST /v1/chat/completions` and `POST /v1/responses`, decoding locally under the mask.
//!
//! Every output is shaped by a schema strictly compiles: `text` is decoded as one JSON string
//! (then unwrapped), `json_object` as any object, `json_schema` as the given schema (whatever
//! `strict` says: the mask enforces it either way), function tools as an `anyOf` of
//! `{"name", "arguments"}` objects (plus `{"content"}` when `tool_choice` is `auto`). A schema
//! strictly cannot enforce exactly is a 400 `invalid_request_error` whose `param` is
//! `response_format` (or `tools`, `text.format`) and whose message names the keyword and its
//! JSON pointer. Compiled schemas are kept in an LRU keyed by the SHA-256 of their canonical
//! JSON (keys sorted), so the same schema sent with its keys in another order is one entry.
//!
//! Not supported (a clear 400, never a silent difference): `n` > 1, non-text content parts,
//! `previous_response_id`, `store: true`. Streaming sends the finished answer as SSE chunks
//! (the decode loop has no per-token callback yet), so the first byte arrives with the last.
//! `message.refusal` is always null: no refusal branch is added to the caller's schema.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{body_bytes, parse_json, ApiError, App};
use crate::routing::audit::new_message_id;
use crate::backend::local::LocalBackend;
use crate::backend::Backend;
use crate::chat::{ChatMessage, Role};
use crate::constraint::TokenAutomaton;
use crate::decode::{DecodeOptions, Generation, StopReason};

/// Compiled schemas kept by the OpenAI endpoints.
const SCHEMA_CACHE: usize = 64;

/// The model behind the OpenAI endpoints: its own backend (its own system-prompt cache, so
/// chat traffic does not evict the router's), its compiled schemas, its defaults.
pub struct ChatModel {
    backend: LocalBackend,
    defaults: DecodeOptions,
    cache: Mutex<SchemaCache>,
}

#[derive(Default)]
struct SchemaCache {
    map: HashMap<[u8; 32], Arc<TokenAutomaton>>,
    order: VecDeque<[u8; 32]>,
    hits: u64,
    misses: u64,
}

impl ChatModel {
    /// A chat model over a backend; `defaults` gives what a request leaves out.
    pub fn new(backend: LocalBackend, defaults: DecodeOptions) -> Self {
        ChatModel { backend, defaults, cache: Mutex::new(SchemaCache::default()) }
    }

    /// The model id requests must name.
    pub fn id(&self) -> &str {
        self.backend.model()
    }

    /// (hits, misses) of the compiled-schema cache.
    pub fn cache_stats(&self) -> (u64, u64) {
        let c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        (c.hits, c.misses)
    }

    /// The automaton for a schema, from the LRU or compiled (blocking: call off the runtime).
    /// The compiled schema, and whether it came from the cache.
    fn automaton(&self, schema: &Value) -> Result<(Arc<TokenAutomaton>, bool), crate::schema::SchemaError> {
        let key: [u8; 32] = Sha256::digest(canonical(schema).as_bytes()).into();
        {
            let mut c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(a) = c.map.get(&key).cloned() {
                c.hits += 1;
                c.order.retain(|k| k != &key);
                c.order.push_back(key);
                return Ok((a, true));
            }
            c.misses += 1;
        }
        let automaton = self.backend.compile(schema)?;
        let mut c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        while c.map.len() >= SCHEMA_CACHE {
            let Some(old) = c.order.pop_front() else { break };
            c.map.remove(&old);
        }
        c.map.insert(key, automaton.clone());
        c.order.push_back(key);
        Ok((automaton, false))
    }
}

/// JSON with every object's keys sorted, as one string.
pub fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect::<Map<String, Value>>())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

fn invalid(param: Option<&'static str>, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message).param(param)
}

/// What the output is.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Plain text: decoded as a JSON string, then unwrapped.
    Text,
    /// JSON (`json_object` or `json_schema`): the output is the content.
    Json,
    /// Function tools: `{"name", "arguments"}` (or `{"content"}` under `auto`).
    Tools,
}

/// One request, ready for the model.
struct Job {
    messages: Vec<ChatMessage>,
    schema: Value,
    /// Which request field the schema came from, for its errors.
    schema_param: &'static str,
    mode: Mode,
    options: DecodeOptions,
    stop: Vec<String>,
}

/// What came out.
struct Output {
    content: Option<String>,
    tool_calls: Vec<(String, String, String)>,
    finish_reason: &'static str,
    prompt_tokens: usize,
    completion_tokens: usize,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Text of a message's `content`: a string, or an array of text parts.
fn content_text(content: &Value, param: &'static str) -> Result<String, ApiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
                match (kind, p.get("text").and_then(Value::as_str)) {
                    ("text" | "input_text" | "output_text", Some(t)) => out.push_str(t),
                    ("refusal", _) => out.push_str(p.get("refusal").and_then(Value::as_str).unwrap_or("")),
                    _ => return Err(invalid(Some(param), format!("content parts of type `{kind}` are not supported; only text"))),
                }
            }
            Ok(out)
        }
        _ => Err(invalid(Some(param), "content must be a string or an array of text parts")),
    }
}

/// A chat message of any OpenAI role, as the model's template takes it.
fn chat_message(m: &Value, param: &'static str) -> Result<ChatMessage, ApiError> {
    let role = m.get("role").and_then(Value::as_str).ok_or_else(|| invalid(Some(param), "every message needs a role"))?;
    let mut text = content_text(m.get("content").unwrap_or(&Value::Null), param)?;
    let role = match role {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => {
            if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                for c in calls {
                    let f = &c["function"];
                    text.push_str(&format!(
                        "{}{{\"name\":{},\"arguments\":{}}}",
                        if text.is_empty() { "" } else { "\n" },
                        f["name"],
                        f["arguments"].as_str().unwrap_or("{}")
                    ));
                }
            }
            Role::Assistant
        }
        "tool" | "function" => {
            text = format!("Result of the tool call {}: {text}", m.get("tool_call_id").and_then(Value::as_str).unwrap_or(""));
            Role::User
        }
        other => return Err(invalid(Some(param), format!("unknown role `{other}`"))),
    };
    Ok(ChatMessage { role, content: text })
}

/// The schema every output is decoded under, for both APIs: the tools' (when the request has
/// tools and a choice that allows them), else the response format's (`format`, named `param`
/// in errors); the messages get the matching instruction. Returns the schema, the mode and the
/// request field an unenforceable schema is blamed on.
fn output_schema(body: &Value, messages: &mut Vec<ChatMessage>, format: Option<&Value>, param: &'static str) -> Result<(Value, Mode, &'static str), ApiError> {
    let tools = match body.get("tools").and_then(Value::as_array) {
        Some(t) if !t.is_empty() => parse_tools(t, "tools")?,
        _ => Vec::new(),
    };
    let choice = body.get("tool_choice").cloned().unwrap_or(Value::Null);
    if let Some((schema, how)) = tools_schema(&tools, &choice, "tools")? {
        instruct(messages, &how);
        return Ok((schema, Mode::Tools, "tools"));
    }
    let (schema, mode) = format_schema(format.unwrap_or(&Value::Null), param)?;
    if mode == Mode::Json {
        instruct(messages, &format!("Answer with JSON only, matching this JSON Schema: {schema}"));
    }
    Ok((schema, mode, param))
}

/// Adds instructions to the first system message (or a new one at the start).
fn instruct(messages: &mut Vec<ChatMessage>, text: &str) {
    match messages.iter_mut().find(|m| m.role == Role::System) {
        Some(m) => {
            m.content.push_str("\n\n");
            m.content.push_str(text);
        }
        None => messages.insert(0, ChatMessage { role: Role::System, content: text.into() }),
    }
}

/// `$defs`/`definitions` of a tool's parameters moved under the wrapper's root with a prefix,
/// and every local `$ref` to them rewritten, so the tool's schema means the same inside the
/// `anyOf`.
fn hoist_defs(params: &Value, prefix: &str, defs: &mut Map<String, Value>) -> Value {
    fn rewrite(v: &Value, prefix: &str) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| k.as_str() != "$defs" && k.as_str() != "definitions")
                    .map(|(k, v)| {
                        let v = match (k.as_str(), v.as_str()) {
                            ("$ref", Some(r)) => {
                                let r = r.strip_prefix("#/$defs/").or_else(|| r.strip_prefix("#/definitions/")).map_or_else(
                                    || if r == "#" { format!("#/$defs/{prefix}root") } else { r.to_owned() },
                                    |name| format!("#/$defs/{prefix}{name}"),
                                );
                                Value::String(r)
                            }
                            _ => rewrite(v, prefix),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|x| rewrite(x, prefix)).collect()),
            other => other.clone(),
        }
    }
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(d)) = params.get(key) {
            for (name, schema) in d {
                defs.insert(format!("{prefix}{name}"), rewrite(schema, prefix));
            }
        }
    }
    let body = rewrite(params, prefix);
    if params.to_string().contains("\"#\"") {
        defs.insert(format!("{prefix}root"), body.clone());
    }
    body
}

/// A function tool, from either API's shape.
struct Tool {
    name: String,
    description: String,
    parameters: Value,
}

fn parse_tools(tools: &[Value], param: &'static str) -> Result<Vec<Tool>, ApiError> {
    tools
        .iter()
        .map(|t| {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(invalid(Some(param), "only function tools are supported"));
            }
            // Chat nests the function; Responses is flat.
            let f = t.get("function").unwrap_or(t);
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| invalid(Some(param), "a function tool needs a name"))?;
            if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(invalid(Some(param), format!("function name `{name}` must be 1 to 64 of a-z, A-Z, 0-9, _ and -")));
            }
            Ok(Tool {
                name: name.to_owned(),
                description: f.get("description").and_then(Value::as_str).unwrap_or("").to_owned(),
                parameters: f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}, "additionalProperties": false})),
            })
        })
        .collect()
}

/// The output schema and the instructions for function tools under a `tool_choice`.
fn tools_schema(tools: &[Tool], choice: &Value, param: &'static str) -> Result<Option<(Value, String)>, ApiError> {
    let named = choice
        .get("function")
        .and_then(|f| f.get("name"))
        .or_else(|| choice.get("name"))
        .and_then(Value::as_str);
    let (chosen, auto): (Vec<&Tool>, bool) = match (choice.as_str(), named) {
        (Some("none"), _) => return Ok(None),
        (Some("auto") | None, None) => (tools.iter().collect(), true),
        (Some("required"), _) => (tools.iter().collect(), false),
        (None, Some(n)) => match tools.iter().find(|t| t.name == n) {
            Some(t) => (vec![t], false),
            None => return Err(invalid(Some("tool_choice"), format!("tool_choice names `{n}`, which is not among the tools"))),
        },
        (Some(other), _) => return Err(invalid(Some("tool_choice"), format!("tool_choice `{other}` is not none, auto or required"))),
    };
    if chosen.is_empty() {
        return Ok(None);
    }
    let mut defs = Map::new();
    let mut branches: Vec<Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": hoist_defs(&t.parameters, &format!("t{i}_"), &mut defs)},
                "required": ["name", "arguments"],
                "additionalProperties": false
            })
        })
        .collect();
    if auto {
        branches.insert(0, json!({"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"], "additionalProperties": false}));
    }
    let mut schema = if branches.len() == 1 { branches.pop().expect("one") } else { json!({"anyOf": branches}) };
    if !defs.is_empty() {
        schema["$defs"] = Value::Object(defs);
    }
    let _ = param;
    let list: Vec<String> = chosen
        .iter()
        .map(|t| format!("- {}: {} Arguments: {}", t.name, t.description, t.parameters))
        .collect();
    let how = if auto {
        "Answer with a JSON object: {\"content\": \"your answer\"}, or call one function with {\"name\": \"<function>\", \"arguments\": {...}}."
    } else {
        "Call one function: answer with {\"name\": \"<function>\", \"arguments\": {...}}."
    };
    Ok(Some((schema, format!("You can call these functions:\n{}\n{how}", list.join("\n")))))
}

/// Sampling options from a request over the server's defaults.
fn options(defaults: &DecodeOptions, body: &Value, max_keys: &[&'static str]) -> Result<DecodeOptions, ApiError> {
    let mut o = defaults.clone();
    for key in max_keys {
        if let Some(v) = body.get(*key).filter(|v| !v.is_null()) {
            let n = v.as_u64().filter(|n| (1..=4096).contains(n)).ok_or_else(|| invalid(Some(key), format!("{key} must be an integer from 1 to 4096")))?;
            o.max_tokens = n as usize;
        }
    }
    if let Some(v) = body.get("temperature").filter(|v| !v.is_null()) {
        let t = v.as_f64().filter(|t| (0.0..=2.0).contains(t)).ok_or_else(|| invalid(Some("temperature"), "temperature must be from 0 to 2"))?;
        o.temperature = t as f32;
    }
    if let Some(v) = body.get("top_p").filter(|v| !v.is_null()) {
        let p = v.as_f64().filter(|p| *p > 0.0 && *p <= 1.0).ok_or_else(|| invalid(Some("top_p"), "top_p must be in (0, 1]"))?;
        o.top_p = p as f32;
    }
    if let Some(v) = body.get("seed").filter(|v| !v.is_null()) {
        o.seed = v.as_i64().ok_or_else(|| invalid(Some("seed"), "seed must be an integer"))? as u64;
    }
    Ok(o)
}

fn stop_sequences(body: &Value) -> Result<Vec<String>, ApiError> {
    match body.get("stop") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) if a.len() <= 4 && a.iter().all(Value::is_string) => {
            Ok(a.iter().filter_map(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        }
        _ => Err(invalid(Some("stop"), "stop must be a string or up to 4 strings")),
    }
}

/// The schema of a `json_schema` format (Chat's nested or Responses' flat shape).
fn format_schema(format: &Value, param: &'static str) -> Result<(Value, Mode), ApiError> {
    match format.get("type").and_then(Value::as_str) {
        None | Some("text") => Ok((json!({"type": "string"}), Mode::Text)),
        Some("json_object") => Ok((json!({"type": "object"}), Mode::Json)),
        Some("json_schema") => {
            let spec = format.get("json_schema").unwrap_or(format);
            let name = spec.get("name").and_then(Value::as_str).ok_or_else(|| invalid(Some(param), "json_schema needs a name"))?;
            if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(invalid(Some(param), format!("json_schema name `{name}` must be 1 to 64 of a-z, A-Z, 0-9, _ and -")));
            }
            let schema = spec.get("schema").cloned().unwrap_or_else(|| json!({}));
            if !schema.is_object() {
                return Err(invalid(Some(param), "json_schema.schema must be an object"));
            }
            Ok((schema, Mode::Json))
        }
        Some(other) => Err(invalid(Some(param), format!("unknown format type `{other}`"))),
    }
}

impl<B: Backend + Send + Sync + 'static> App<B> {
    fn chat_model(&self) -> Result<&Arc<ChatModel>, ApiError> {
        self.chat.as_ref().ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", "this server has no chat model"))
    }

    fn check_model(&self, body: &Value) -> Result<(), ApiError> {
        let chat = self.chat_model()?;
        match body.get("model").and_then(Value::as_str) {
            Some(m) if m == chat.id() => Ok(()),
            Some(m) => Err(ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", format!("The model `{m}` does not exist; this server has `{}`", chat.id()))
                .param(Some("model"))
                .code(Some("model_not_found"))),
            None => Err(invalid(Some("model"), "model is required")),
        }
    }

    /// What both generation endpoints check first: the key, the body's size and JSON, and the
    /// model it names. The parsed body and the chat model.
    fn openai_request(&self, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<(Value, Arc<ChatModel>), ApiError> {
        self.check_bearer(headers)?;
        let body: Value = parse_json(&body_bytes(body, self.config.max_body_bytes)?)?;
        self.check_model(&body)?;
        Ok((body, self.chat_model()?.clone()))
    }

    /// Compiles the job's schema (LRU) and runs it through the model queue.
    async fn generate(self: &Arc<Self>, job: Job) -> Result<Output, ApiError> {
        let chat = self.chat_model()?.clone();
        let expires = Instant::now() + self.config.request_timeout;
        let schema = job.schema.clone();
        let param = job.schema_param;
        let automaton = {
            let chat = chat.clone();
            let started = Instant::now();
            let compiled = tokio::task::spawn_blocking(move || chat.automaton(&schema)).await.map_err(super::internal)?;
            let (automaton, hit) = compiled.map_err(|e| invalid(Some(param), format!("the schema cannot be enforced: {e}")))?;
            self.metrics.schema(hit, started.elapsed().as_secs_f64());
            automaton
        };
        let Job { messages, mode, options, stop, .. } = job;
        let run = move || chat.backend.generate_with(&messages, &automaton, &options);
        let rx = self.queue.try_submit(run, expires).map_err(|_| {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "the model queue is full; retry later").retry_after(self.queue.retry_after_secs())
        })?;
        let generation: Generation = match tokio::time::timeout_at(expires.into(), rx).await {
            Ok(Ok(Ok(g))) => g,
            Ok(Ok(Err(crate::backend::BackendError::TooLong(why)))) => {
                return Err(invalid(None, why).code(Some("context_length_exceeded")));
            }
            Ok(Ok(Err(e))) => return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", format!("the model failed: {e}"))),
            // The worker dropped the call before the limit: it panicked (the server goes on).
            Ok(Err(_)) if Instant::now() < expires => {
                return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the model call failed"))
            }
            Ok(Err(_)) | Err(_) => {
                return Err(ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", format!("generation did not finish within {:?}", self.config.request_timeout)))
            }
        };
        self.metrics.model_call(
            "ok",
            None,
            Some(&crate::backend::Usage {
                prompt_tokens: generation.prompt_tokens,
                completion_tokens: generation.tokens.len(),
                forced_tokens: generation.forced_tokens(),
                mask_ms: generation.timings.mask_ms,
            }),
        );
        interpret(&generation, &mode, &stop)
    }
}

fn interpret(g: &Generation, mode: &Mode, stop: &[String]) -> Result<Output, ApiError> {
    let length = g.stop == StopReason::MaxTokens;
    let mut out = Output {
        content: None,
        tool_calls: Vec::new(),
        finish_reason: if length { "length" } else { "stop" },
        prompt_tokens: g.prompt_tokens,
        completion_tokens: g.tokens.len(),
    };
    let bad = |e: serde_json::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", format!("the output did not parse: {e}"));
    match mode {
        Mode::Text => {
            let mut text: String = serde_json::from_str(&g.text).map_err(bad)?;
            if let Some(cut) = stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                text.truncate(cut);
                out.finish_reason = "stop";
            }
            out.content = Some(text);
        }
        Mode::Json => out.content = Some(g.text.clone()),
        Mode::Tools => {
            let v: Value = serde_json::from_str(&g.text).map_err(bad)?;
            if let Some(c) = v.get("content").and_then(Value::as_str) {
                out.content = Some(c.to_owned());
            } else {
                let name = v["name"].as_str().unwrap_or_default().to_owned();
                out.tool_calls.push((format!("call_{}", new_message_id().replace('-', "")), name, v["arguments"].to_string()));
                out.finish_reason = "tool_calls";
            }
        }
    }
    Ok(out)
}

/// A Chat Completions request, ready for the model.
fn chat_job(chat: &ChatModel, body: &Value) -> Result<(Job, bool, bool), ApiError> {
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n != 1) {
        return Err(invalid(Some("n"), "only n = 1 is supported"));
    }
    let raw = body.get("messages").and_then(Value::as_array).ok_or_else(|| invalid(Some("messages"), "messages must be an array"))?;
    if raw.is_empty() {
        return Err(invalid(Some("messages"), "messages must not be empty"));
    }
    let mut messages = raw.iter().map(|m| chat_message(m, "messages")).collect::<Result<Vec<_>, _>>()?;
    let options = options(&chat.defaults, body, &["max_tokens", "max_completion_tokens"])?;
    let stop = stop_sequences(body)?;
    let (schema, mode, schema_param) = output_schema(body, &mut messages, body.get("response_format"), "response_format")?;
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let usage_in_stream = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    Ok((Job { messages, schema, schema_param, mode, options, stop }, stream, usage_in_stream))
}

pub(super) async fn chat_completions<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (body, chat) = app.openai_request(&headers, body)?;
    let (job, stream, usage_in_stream) = chat_job(&chat, &body)?;
    let out = tokio::spawn({
        let app = app.clone();
        async move { app.generate(job).await }
    })
    .await
    .map_err(super::internal)??;
    let id = format!("chatcmpl-{}", new_message_id().replace('-', ""));
    let created = now_secs();
    let usage = json!({"prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens, "total_tokens": out.prompt_tokens + out.completion_tokens});
    let calls: Vec<Value> = out
        .tool_calls
        .iter()
        .map(|(cid, name, args)| json!({"id": cid, "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    if !stream {
        let mut message = json!({"role": "assistant", "content": out.content, "refusal": null, "annotations": []});
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        return Ok(Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": chat.id(),
            "system_fingerprint": null,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": out.finish_reason}],
            "usage": usage
        }))
        .into_response());
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": chat.id(), "system_fingerprint": null,
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null)];
    if let Some(content) = &out.content {
        let chars: Vec<char> = content.chars().collect();
        for piece in chars.chunks(24) {
            events.push(chunk(json!({"content": piece.iter().collect::<String>()}), Value::Null));
        }
    }
    for (i, (cid, name, args)) in out.tool_calls.iter().enumerate() {
        events.push(chunk(json!({"tool_calls": [{"index": i, "id": cid, "type": "function", "function": {"name": name, "arguments": args}}]}), Value::Null));
    }
    events.push(chunk(json!({}), json!(out.finish_reason)));
    if usage_in_stream {
        let mut last = chunk(json!({}), Value::Null);
        last["choices"] = json!([]);
        last["usage"] = usage;
        events.push(last);
    }
    Ok(sse(events.into_iter().map(|e| Event::default().data(e.to_string())).collect()))
}

fn sse(mut events: Vec<Event>) -> Response {
    events.push(Event::default().data("[DONE]"));
    let stream = futures_lite_iter(events);
    Sse::new(stream).into_response()
}

/// A stream over ready events.
fn futures_lite_iter(events: Vec<Event>) -> impl futures_core::Stream<Item = Result<Event, std::convert::Infallible>> + Send {
    struct Iter(std::vec::IntoIter<Event>);
    impl futures_core::Stream for Iter {
        type Item = Result<Event, std::convert::Infallible>;
        fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next().map(Ok))
        }
    }
    Iter(events.into_iter())
}

pub(super) async fn models<B: Backend + Send + Sync + 'static>(State(app): State<Arc<App<B>>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    app.check_bearer(&headers)?;
    let data: Vec<Value> = app.chat.iter().map(|c| json!({"id": c.id(), "object": "model", "created": 0, "owned_by": "strictly"})).collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

/// A Responses API request, ready for the model.
fn responses_job(chat: &ChatModel, body: &Value) -> Result<(Job, bool), ApiError> {
    if body.get("previous_response_id").is_some_and(|v| !v.is_null()) {
        return Err(invalid(Some("previous_response_id"), "previous_response_id is not supported: this server keeps no responses; send the whole conversation in input"));
    }
    if body.get("store").and_then(Value::as_bool) == Some(true) {
        return Err(invalid(Some("store"), "store: true is not supported: this server keeps no responses"));
    }
    let mut messages = Vec::new();
    if let Some(i) = body.get("instructions").and_then(Value::as_str) {
        messages.push(ChatMessage { role: Role::System, content: i.to_owned() });
    }
    match body.get("input") {
        Some(Value::String(s)) => messages.push(ChatMessage { role: Role::User, content: s.clone() }),
        Some(Value::Array(items)) => {
            for item in items {
                match item.get("type").and_then(Value::as_str) {
                    None | Some("message") => messages.push(chat_message(item, "input")?),
                    Some("function_call") => messages.push(ChatMessage {
                        role: Role::Assistant,
                        content: format!("{{\"name\":{},\"arguments\":{}}}", item["name"], item["arguments"].as_str().unwrap_or("{}")),
                    }),
                    Some("function_call_output") => messages.push(ChatMessage {
                        role: Role::User,
                        content: format!("Result of the tool call {}: {}", item["call_id"].as_str().unwrap_or(""), item["output"].as_str().unwrap_or("")),
                    }),
                    Some(other) => return Err(invalid(Some("input"), format!("input items of type `{other}` are not supported"))),
                }
            }
        }
        _ => return Err(invalid(Some("input"), "input must be a string or an array of items")),
    }
    if !messages.iter().any(|m| m.role != Role::System) {
        return Err(invalid(Some("input"), "input has no message"));
    }
    let options = options(&chat.defaults, body, &["max_output_tokens"])?;
    let (schema, mode, schema_param) = output_schema(body, &mut messages, body.pointer("/text/format"), "text.format")?;
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    Ok((Job { messages, schema, schema_param, mode, options, stop: Vec::new() }, stream))
}

pub(super) async fn responses<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (body, chat) = app.openai_request(&headers, body)?;
    let (job, stream) = responses_job(&chat, &body)?;
    let out = tokio::spawn({
        let app = app.clone();
        async move { app.generate(job).await }
    })
    .await
    .map_err(super::internal)??;
    let id = format!("resp_{}", new_message_id().replace('-', ""));
    let msg_id = format!("msg_{}", new_message_id().replace('-', ""));
    let mut output = Vec::new();
    if let Some(text) = &out.content {
        output.push(json!({"id": msg_id, "type": "message", "role": "assistant", "status": "completed",
                           "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}));
    }
    for (cid, name, args) in &out.tool_calls {
        output.push(json!({"id": format!("fc_{}", &cid[5..]), "type": "function_call", "call_id": cid, "name": name, "arguments": args, "status": "completed"}));
    }
    let incomplete = out.finish_reason == "length";
    let response = json!({
        "id": id,
        "object": "response",
        "created_at": now_secs(),
        "status": if incomplete { "incomplete" } else { "completed" },
        "error": null,
        "incomplete_details": if incomplete { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "instructions": body.get("instructions").cloned().unwrap_or(Value::Null),
        "max_output_tokens": body.get("max_output_tokens").cloned().unwrap_or(Value::Null),
        "model": chat.id(),
        "output": output,
        "parallel_tool_calls": false,
        "previous_response_id": null,
        "store": false,
        "temperature": body.get("temperature").cloned().unwrap_or(json!(0.0)),
        "top_p": body.get("top_p").cloned().unwrap_or(json!(1.0)),
        "text": body.get("text").cloned().unwrap_or_else(|| json!({"format": {"type": "text"}})),
        "tool_choice": body.get("tool_choice").cloned().unwrap_or(json!("auto")),
        "tools": body.get("tools").cloned().unwrap_or(json!([])),
        "metadata": {},
        "usage": {"input_tokens": out.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": out.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": out.prompt_tokens + out.completion_tokens}
    });
    if !stream {
        return Ok(Json(response).into_response());
    }
    let mut seq = 0u64;
    let mut event = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(seq);
        seq += 1;
        Event::default().event(kind).data(data.to_string())
    };
    let mut created = response.clone();
    created["status"] = json!("in_progress");
    created["output"] = json!([]);
    let mut events = vec![event("response.created", json!({"response": created}))];
    for (i, item) in response["output"].as_array().into_iter().flatten().enumerate() {
        events.push(event("response.output_item.added", json!({"output_index": i, "item": item})));
        if let Some(text) = item.pointer("/content/0/text").and_then(Value::as_str) {
            let item_id = item["id"].clone();
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(24) {
                events.push(event(
                    "response.output_text.delta",
                    json!({"item_id": item_id, "output_index": i, "content_index": 0, "delta": piece.iter().collect::<String>(), "logprobs": []}),
                ));
            }
            events.push(event("response.output_text.done", json!({"item_id": item_id, "output_index": i, "content_index": 0, "text": text, "logprobs": []})));
        }
        events.push(event("response.output_item.done", json!({"output_index": i, "item": item})));
    }
    events.push(event("response.completed", json!({"response": response})));
    let stream = futures_lite_iter(events);
    Ok(Sse::new(stream).into_response())
}
