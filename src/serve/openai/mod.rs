//! OpenAI-compatible endpoints on the same server: `GET /v1/models`,
//! `POST /v1/chat/completions` and `POST /v1/responses`, decoding locally under the mask.
//!
//! Every output is shaped by a schema strictly compiles: `text` is decoded as one JSON string
//! (then unwrapped), `json_object` as any object, `json_schema` as the given schema (whatever
//! `strict` says: the mask enforces it either way), function tools as an `anyOf` of
//! `{"name", "arguments"}` objects (plus `{"content"}` when `tool_choice` is `auto`). Except
//! under `json_object`, and when the server enables it, a refusal object is a further branch
//! ([`refusal`]): a value the caller's schema accepts is always content. A schema strictly cannot enforce exactly is a
//! 400 `invalid_request_error` whose `param` is `response_format` (or `tools`, `text.format`)
//! and whose message names the keyword and its JSON pointer. Compiled schemas are kept in the
//! backend's [`AutomatonCache`](crate::constraint::AutomatonCache), capped by memory and keyed
//! by the schema's text in its own key order (an object's properties are written in that
//! order, so a schema with them in another order is another entry).
//!
//! `stream: true` streams as the model decodes ([`stream`]): the decode loop hands each
//! committed token's bytes to the request's SSE stream; a client that hangs up stops the
//! decoding at the next token.
//!
//! When the token cap shapes the output (it is reached, or the budget overrules the model so
//! the value closes in time), `usage.budget_closed` is true. JSON answers still say
//! `finish_reason: "stop"` (`"tool_calls"`): the value is complete and valid, and the SDKs'
//! `parse()` would throw on `"length"`. Plain text says `"length"` (Responses: `incomplete`).
//! A schema whose shortest completion does not fit in `max_tokens` is a 400 saying how many
//! tokens it needs.
//!
//! Not supported (a clear 400, never a silent difference): `n` > 1, non-text content parts,
//! `previous_response_id`, `store: true`.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Sse;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::worker::{Lane, Pause};
use super::{ApiError, App};
use crate::backend::local::LocalBackend;
use crate::backend::{Backend, BackendError};
use crate::chat::ChatMessage;
use crate::constraint::TokenAutomaton;
use crate::decode::{DecodeOptions, Generation, StopReason};
use crate::routing::audit::new_message_id;
use extract::OpenAiJson;
use stream::{Delta, Msg, Splitter};

mod chat;
mod extract;
pub mod refusal;
mod request;
mod responses;
mod stream;
mod tools;
mod types;

pub(super) use chat::chat_completions;
pub(super) use responses::responses;

/// The model behind the OpenAI endpoints: its own backend (its own system-prompt cache, so
/// chat traffic does not evict the router's), its compiled schemas, its defaults.
pub struct ChatModel {
    backend: LocalBackend,
    defaults: DecodeOptions,
    model_refusals: bool,
}

impl ChatModel {
    /// A chat model over a backend; `defaults` gives what a request leaves out.
    pub fn new(backend: LocalBackend, defaults: DecodeOptions) -> Self {
        ChatModel { backend, defaults, model_refusals: false }
    }

    /// Offers the model a refusal branch beside the caller's schema (see [`refusal`]). Default
    /// off: refusals then come only from the prompt-injection screen.
    pub fn with_model_refusals(mut self, on: bool) -> Self {
        self.model_refusals = on;
        self
    }

    /// The model id requests must name.
    pub fn id(&self) -> &str {
        self.backend.model()
    }

    /// (hits, misses) of the compiled-schema cache.
    pub fn cache_stats(&self) -> (u64, u64) {
        let s = self.backend.cache().stats();
        (s.hits, s.misses)
    }

    /// The automaton for a schema, from the backend's cache or compiled (blocking: call off
    /// the runtime), and whether it came from the cache.
    fn automaton(&self, schema: &Value) -> Result<(Arc<TokenAutomaton>, bool), crate::schema::SchemaError> {
        self.backend.cached(schema)
    }
}

/// What the output is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Mode {
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
    /// The schema decoded under (the caller's, with the refusal branch when `refusable`).
    schema: Value,
    /// The caller's own schema, when a refusal object could also be valid content under it.
    caller: Option<Value>,
    /// Whether the output may be a refusal object.
    refusable: bool,
    /// Which request field the schema came from, for its errors.
    schema_param: &'static str,
    mode: Mode,
    options: DecodeOptions,
    stop: Vec<String>,
    /// `top_logprobs` when the request asked for `logprobs`.
    logprobs: Option<usize>,
}

/// Why the output ended: Chat's `finish_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum FinishReason {
    /// The value is complete (or a stop sequence ended plain text).
    Stop,
    /// The token cap cut plain text short.
    Length,
    /// The output is a tool call.
    ToolCalls,
}

/// A tool call: its id, the function's name and the arguments' JSON text.
#[derive(Debug, Clone)]
struct Call {
    id: String,
    name: String,
    arguments: String,
}

/// What came out.
#[derive(Debug, Clone)]
struct Output {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Vec<Call>,
    finish_reason: FinishReason,
    prompt_tokens: usize,
    completion_tokens: usize,
    /// Output tokens the schema forced (fed without sampling): an extension field of `usage`.
    forced_tokens: usize,
    /// The token cap shaped the answer (see [`interpret`]): an extension field of `usage`.
    budget_closed: bool,
    /// Chat's `choices[].logprobs.content`, when asked for.
    logprobs: Option<Value>,
}

impl Output {
    /// The screen's refusal, given without asking the model.
    fn screened(text: &str) -> Self {
        Output {
            content: None,
            refusal: Some(text.to_owned()),
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
            prompt_tokens: 0,
            completion_tokens: 0,
            forced_tokens: 0,
            budget_closed: false,
            logprobs: None,
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl<B: Backend + Send + Sync + 'static> App<B> {
    fn chat_model(&self) -> Result<&Arc<ChatModel>, ApiError> {
        self.chat.as_ref().ok_or_else(|| ApiError::invalid_request("this server has no chat model").with_status(StatusCode::NOT_FOUND))
    }

    fn check_model(&self, model: Option<&str>) -> Result<(), ApiError> {
        let chat = self.chat_model()?;
        match model {
            Some(m) if m == chat.id() => Ok(()),
            Some(m) => Err(ApiError::model_not_found(format!("The model `{m}` does not exist; this server has `{}`", chat.id()))),
            None => Err(ApiError::invalid_param("model", "model is required")),
        }
    }

    /// What both generation endpoints check first: the key, the body (its size, its JSON, its
    /// fields' types), and the model it names. The body and the chat model.
    fn openai_request<T: types::Request>(
        &self,
        headers: &HeaderMap,
        body: Result<OpenAiJson<T>, ApiError>,
    ) -> Result<(OpenAiJson<T>, Arc<ChatModel>), ApiError> {
        self.check_bearer(headers)?;
        let body = body?;
        self.check_model(body.body.model())?;
        Ok((body, self.chat_model()?.clone()))
    }

    /// Compiles the job's schema (LRU), with its errors blamed on the request field.
    async fn compile(&self, chat: &Arc<ChatModel>, job: &Job) -> Result<Arc<TokenAutomaton>, ApiError> {
        let size = job.caller.as_ref().unwrap_or(&job.schema).to_string().len();
        if size > self.config.max_schema_bytes {
            return Err(ApiError::invalid_param(
                job.schema_param,
                format!("the schema is {size} bytes of JSON; the limit is {}", self.config.max_schema_bytes),
            ));
        }
        let (chat, schema, param, wrapped) = (chat.clone(), job.schema.clone(), job.schema_param, job.caller.is_some());
        let started = Instant::now();
        let compiled = tokio::task::spawn_blocking(move || chat.automaton(&schema)).await.map_err(super::internal)?;
        let (automaton, hit) = compiled.map_err(|e| {
            let e = if wrapped { refusal::unnest_error(e) } else { e };
            ApiError::invalid_param(param, format!("the schema cannot be enforced: {e}"))
        })?;
        self.metrics.schema(hit, started.elapsed().as_secs_f64());
        Ok(automaton)
    }

    /// Runs a job: the screen's refusal at once, or the compiled schema through the model
    /// queue. With `stream`, [`Msg::Deltas`] arrive as the model decodes; the last message is
    /// always [`Msg::Done`] (a receiver that ends without it means the call was dropped).
    /// Dropping the receiver stops the decoding at the next token.
    /// The second value keeps the queued call alive: drop it with the receiver.
    async fn start(self: &Arc<Self>, job: Job, stream: bool) -> Result<(mpsc::UnboundedReceiver<Msg>, Box<dyn Send + Sync>), ApiError> {
        let chat = self.chat_model()?.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(text) = refusal::screen(&job.messages) {
            let _ = tx.send(Msg::Done(Ok(Output::screened(text)), vec![Delta::Refusal(text.to_owned())]));
            return Ok((rx, Box::new(())));
        }
        let automaton = self.compile(&chat, &job).await?;
        let expires = Instant::now() + self.config.request_timeout;
        let timeout = self.config.request_timeout;
        let metrics = self.metrics.clone();
        let call_id = format!("call_{}", new_message_id().replace('-', ""));
        let max_tokens = job.options.max_tokens;
        let run = move |pause: &Pause| {
            let mut splitter = Splitter::new(job.mode.clone(), job.refusable, job.stop.clone(), call_id.clone());
            let mut late = false;
            let result = {
                let mut on_output = |bytes: &[u8]| {
                    // Between tokens: routing calls waiting now run first.
                    pause.let_routing_in();
                    if Instant::now() >= expires {
                        late = true;
                        return ControlFlow::Break(());
                    }
                    let (deltas, flow) = splitter.push(bytes);
                    if tx.is_closed() || (stream && !deltas.is_empty() && tx.send(Msg::Deltas(deltas)).is_err()) {
                        return ControlFlow::Break(());
                    }
                    flow
                };
                chat.backend.generate_streaming(&job.messages, &automaton, &job.options, &mut on_output)
            };
            let decoded = result.as_ref().map_or(0, |g| g.tokens.len());
            let out = match result {
                _ if late => Err(ApiError::timeout(format!("generation did not finish within {timeout:?}"))),
                Ok(g) => {
                    metrics.model_call("ok", None, Some(&usage(&g)));
                    interpret(&g, &job, &call_id)
                }
                Err(BackendError::TooLong(why)) => Err(ApiError::invalid_request(why).code("context_length_exceeded")),
                Err(e) => Err(ApiError::internal(format!("the model failed: {e}"))),
            };
            let tail = match &out {
                Ok(o) if stream => splitter.finish(o),
                _ => Vec::new(),
            };
            let _ = tx.send(Msg::Done(out, tail));
            ((), decoded)
        };
        let alive = self
            .queue
            .try_submit_chat(run, max_tokens, expires)
            .map_err(|_| ApiError::overloaded(self.queue.retry_after_secs(Lane::Chat)))?;
        Ok((rx, Box::new(alive)))
    }

    /// The first message of a started job, within the request's limit: an error before any
    /// output is the request's HTTP error, not an event in a stream.
    async fn first(&self, rx: &mut mpsc::UnboundedReceiver<Msg>, started: Instant) -> Result<Msg, ApiError> {
        let limit = started + self.config.request_timeout;
        match tokio::time::timeout_at(limit.into(), rx.recv()).await {
            Ok(Some(Msg::Done(Err(e), _))) => Err(e),
            Ok(Some(m)) => Ok(m),
            // The worker dropped the call before the limit: it panicked (the server goes on).
            Ok(None) if Instant::now() < limit => Err(ApiError::internal("the model call failed")),
            Ok(None) | Err(_) => Err(ApiError::timeout(format!("generation did not finish within {:?}", self.config.request_timeout))),
        }
    }

    /// Streams a job as server-sent events in `wire`'s shape (Chat chunks or Responses
    /// events); an error before the first output is the request's HTTP error.
    async fn stream<W: stream::Wire + Send + 'static>(self: &Arc<Self>, job: Job, wire: W) -> Result<Response, ApiError> {
        let started = Instant::now();
        let (mut rx, alive) = self.start(job, true).await?;
        let first = self.first(&mut rx, started).await?;
        Ok(Sse::new(stream::EventStream::new(wire, first, rx, alive)).into_response())
    }

    /// [`generate`](Self::generate) on a task of its own, so a client that goes away does
    /// not cancel the call half-way.
    async fn complete(self: &Arc<Self>, job: Job) -> Result<Output, ApiError> {
        let app = self.clone();
        tokio::spawn(async move { app.generate(job).await }).await.map_err(crate::serve::internal)?
    }

    /// Runs a job to its end (no streaming).
    async fn generate(self: &Arc<Self>, job: Job) -> Result<Output, ApiError> {
        let started = Instant::now();
        let (mut rx, _alive) = self.start(job, false).await?;
        loop {
            match self.first(&mut rx, started).await? {
                Msg::Done(out, _) => return out,
                Msg::Deltas(_) => continue,
            }
        }
    }
}

fn usage(g: &Generation) -> crate::backend::Usage {
    crate::backend::Usage {
        prompt_tokens: g.prompt_tokens,
        completion_tokens: g.tokens.len(),
        forced_tokens: g.forced_tokens(),
        mask_ms: g.timings.mask_ms,
    }
}

/// The API's view of a generation: content, refusal or tool call, and why it ended.
fn interpret(g: &Generation, job: &Job, call_id: &str) -> Result<Output, ApiError> {
    // The cap shaped the answer: reached, or the budget overruled the model so the value closes.
    let budget_closed = g.stop == StopReason::MaxTokens || g.budget_limited;
    // Plain text says so in `finish_reason`; JSON is complete and valid, so it says `stop`
    // (the SDKs' parse() throws on `length`) and `usage.budget_closed` tells.
    let length = budget_closed && job.mode == Mode::Text;
    let mut out = Output {
        content: None,
        refusal: None,
        tool_calls: Vec::new(),
        finish_reason: if length { FinishReason::Length } else { FinishReason::Stop },
        prompt_tokens: g.prompt_tokens,
        completion_tokens: g.tokens.len(),
        forced_tokens: g.forced_tokens(),
        budget_closed,
        logprobs: job.logprobs.map(|top| logprobs(g, top)),
    };
    let bad = |e: serde_json::Error| ApiError::internal(format!("the output did not parse: {e}"));
    if g.stop == StopReason::Stopped {
        // Only a stop sequence in plain text ends a kept generation early.
        let mut text = stream::unescape_prefix(g.text.as_bytes().get(1..).unwrap_or_default());
        stream::cut_at_stop(&mut text, &job.stop);
        out.content = Some(text);
        out.finish_reason = FinishReason::Stop;
        return Ok(out);
    }
    let value: Value = serde_json::from_str(&g.text).map_err(bad)?;
    if job.refusable {
        let caller = job.caller.as_ref().and_then(|s| crate::schema::validator(s).ok());
        let check = job.caller.as_ref().map(|_| caller.as_ref());
        // A caller's schema the validator cannot build: its rejection is unproven, but the
        // automaton's union already holds, so the refusal object is reported as a refusal.
        if let Some(text) = refusal::refusal_of(&value, check.flatten()) {
            out.refusal = Some(text);
            return Ok(out);
        }
    }
    match &job.mode {
        Mode::Text => {
            let mut text = value.as_str().unwrap_or_default().to_owned();
            if stream::cut_at_stop(&mut text, &job.stop) {
                out.finish_reason = FinishReason::Stop;
            }
            out.content = Some(text);
        }
        Mode::Json => out.content = Some(g.text.clone()),
        Mode::Tools => {
            if let Some(c) = value.get("content").and_then(Value::as_str) {
                out.content = Some(c.to_owned());
            } else {
                let name = value["name"].as_str().unwrap_or_default().to_owned();
                // The arguments as decoded (not re-serialized), so streamed pieces add up to them.
                let arguments = stream::raw_arguments(&g.text, &name).map_or_else(|| value["arguments"].to_string(), str::to_owned);
                out.tool_calls.push(Call { id: call_id.to_owned(), name, arguments });
                out.finish_reason = FinishReason::ToolCalls;
            }
        }
    }
    Ok(out)
}

/// Chat's `logprobs.content`: every decoded token (of the JSON text the model wrote) with its
/// log-probability under the masked distribution and up to `top` alternatives.
fn logprobs(g: &Generation, top: usize) -> Value {
    let entry = |text: &str, logprob: f32| json!({"token": text, "logprob": logprob, "bytes": text.as_bytes()});
    let content: Vec<Value> = g
        .tokens
        .iter()
        .map(|t| {
            let mut e = entry(&t.text, t.logprob);
            let alts: Vec<Value> = if t.alternatives.is_empty() {
                // Forced: the only allowed token, probability 1.
                vec![entry(&t.text, 0.0)]
            } else {
                t.alternatives.iter().map(|a| entry(&a.text, a.prob.max(f32::MIN_POSITIVE).ln())).collect()
            };
            e["top_logprobs"] = Value::Array(alts.into_iter().take(top).collect());
            e
        })
        .collect();
    json!({"content": content, "refusal": null})
}

pub(super) async fn models<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.check_bearer(&headers)?;
    let data: Vec<Value> =
        app.chat.iter().map(|c| json!({"id": c.id(), "object": "model", "created": 0, "owned_by": "strictly"})).collect();
    Ok(Json(json!({"object": "list", "data": data})))
}
