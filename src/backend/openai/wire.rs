//! The request bodies of the four wire modes, and what a reply says, in either API's shape.
//!
//! Shapes from the OpenAPI spec (`CreateResponse`, `CreateChatCompletionRequest`, `Response`,
//! `CreateChatCompletionResponse`); `../shared/reference/openai/structured-outputs-shapes.md`
//! quotes them. Nothing here does I/O.

use serde_json::{json, Map, Value};

use crate::backend::{BackendError, SchemaSpec, WireMode};
use crate::chat::{ChatMessage, Role};

/// What [`build`] needs besides the messages and the schema.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// The model's name, as sent in the request's `model`.
    pub model: String,
    /// Which API and schema mechanism the request uses.
    pub mode: WireMode,
    /// Cap on output tokens, sent as `max_output_tokens`, `max_completion_tokens` or `max_tokens` as the mode calls it.
    pub max_output_tokens: u32,
    /// `Some(k)`: ask Chat Completions for `logprobs` with `top_logprobs: k`.
    pub top_logprobs: Option<u32>,
}

/// The path under the base URL and the JSON body of one request.
/// The schema goes as [`wire_schema`] makes it.
pub fn build(messages: &[ChatMessage], schema: &SchemaSpec, o: &RequestOptions) -> (&'static str, Value) {
    let name = wire_name(&schema.name);
    let wrapped = wire_schema(&schema.schema);
    let schema = SchemaSpec { name: schema.name.clone(), schema: wrapped.unwrap_or_else(|| schema.schema.clone()) };
    match o.mode {
        WireMode::Responses => {
            let input: Vec<Value> = messages.iter().map(|m| json!({"role": role(m.role), "content": m.content})).collect();
            let body = json!({
                "model": o.model,
                "input": input,
                "text": {"format": {"type": "json_schema", "name": name, "schema": schema.schema, "strict": true}},
                "max_output_tokens": o.max_output_tokens,
                "store": false,
            });
            ("/responses", body)
        }
        WireMode::Chat | WireMode::Tool | WireMode::Compat => {
            let mut body = Map::new();
            body.insert("model".into(), json!(o.model));
            body.insert(
                "messages".into(),
                Value::Array(messages.iter().map(|m| json!({"role": role(m.role), "content": m.content})).collect()),
            );
            body.insert("max_completion_tokens".into(), json!(o.max_output_tokens));
            match o.mode {
                WireMode::Chat => {
                    body.insert(
                        "response_format".into(),
                        json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema.schema, "strict": true}}),
                    );
                }
                WireMode::Tool => {
                    body.insert(
                        "tools".into(),
                        json!([{"type": "function", "function": {"name": name, "parameters": schema.schema, "strict": true}}]),
                    );
                    body.insert("tool_choice".into(), json!({"type": "function", "function": {"name": name}}));
                    body.insert("parallel_tool_calls".into(), json!(false));
                }
                _ => {
                    // llama-cpp-python reads `max_tokens`, not `max_completion_tokens`.
                    body.insert("max_tokens".into(), json!(o.max_output_tokens));
                    body.insert("response_format".into(), json!({"type": "json_object", "schema": schema.schema}));
                }
            }
            if let Some(k) = o.top_logprobs.filter(|_| o.mode != WireMode::Tool) {
                body.insert("logprobs".into(), json!(true));
                body.insert("top_logprobs".into(), json!(k));
            }
            ("/chat/completions", Value::Object(body))
        }
    }
}

fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// A schema name as the APIs take it: a-z, A-Z, 0-9, `_` and `-`, at most 64 characters.
pub fn wire_name(name: &str) -> String {
    let n: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(64).collect();
    if n.is_empty() {
        "output".into()
    } else {
        n
    }
}

/// One token of a Chat Completions `logprobs.content` list.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// The token's text.
    pub token: String,
    /// The token's natural-log probability.
    pub logprob: f64,
    /// `(token, logprob)` of the likeliest tokens at this position.
    pub top: Vec<(String, f64)>,
}

/// What a successful HTTP reply says.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The output text (the message content, or the tool call's arguments).
    Text {
        /// The output text.
        text: String,
        /// The output tokens' log-probabilities (empty when the reply carries none).
        logprobs: Vec<TokenLogprob>,
    },
    /// The model declined.
    Refusal(String),
}

/// A parsed reply: the answer and the token counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The output or the refusal.
    pub answer: Answer,
    /// Prompt tokens the API bills (0 when the reply gives no usage).
    pub prompt_tokens: usize,
    /// Prompt tokens served from the provider's cache, a part of `prompt_tokens` (0 when not reported).
    pub cached_tokens: usize,
    /// Output tokens the API bills (0 when the reply gives no usage).
    pub completion_tokens: usize,
}

fn count(v: &Value, path: &[&str]) -> usize {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_u64().unwrap_or(0) as usize
}

fn protocol(what: &str) -> BackendError {
    BackendError::Protocol { message: what.to_owned(), source: None }
}

/// Reads a 2xx reply body of `mode`. A cut output is [`BackendError::Truncated`].
pub fn parse(mode: WireMode, body: &Value) -> Result<Parsed, BackendError> {
    match mode {
        WireMode::Responses => parse_response(body),
        _ => parse_chat(mode, body),
    }
}

fn parse_response(body: &Value) -> Result<Parsed, BackendError> {
    let usage = &body["usage"];
    let (prompt_tokens, cached_tokens, completion_tokens) =
        (count(usage, &["input_tokens"]), count(usage, &["input_tokens_details", "cached_tokens"]), count(usage, &["output_tokens"]));
    let output = body.get("output").and_then(Value::as_array).ok_or_else(|| protocol("a response without `output`"))?;
    let mut text = String::new();
    let mut refusal = None;
    for item in output.iter().filter(|i| i["type"] == "message") {
        for part in item["content"].as_array().into_iter().flatten() {
            match part["type"].as_str() {
                Some("output_text") => text.push_str(part["text"].as_str().unwrap_or("")),
                Some("refusal") => refusal = Some(part["refusal"].as_str().unwrap_or("").to_owned()),
                _ => {}
            }
        }
    }
    let answer = match refusal {
        Some(r) => Answer::Refusal(r),
        None => {
            if body["status"] == "incomplete" {
                let reason = body["incomplete_details"]["reason"].as_str().unwrap_or("incomplete").to_owned();
                return Err(BackendError::Truncated { reason, text });
            }
            if body["status"] == "failed" {
                return Err(BackendError::Server {
                    status: 200,
                    attempts: 1,
                    message: body["error"]["message"].as_str().unwrap_or("failed").into(),
                });
            }
            if !output.iter().any(|i| i["type"] == "message") {
                return Err(protocol("a response with no message in `output`"));
            }
            Answer::Text { text, logprobs: Vec::new() }
        }
    };
    Ok(Parsed { answer, prompt_tokens, cached_tokens, completion_tokens })
}

fn parse_chat(mode: WireMode, body: &Value) -> Result<Parsed, BackendError> {
    let usage = &body["usage"];
    let (prompt_tokens, cached_tokens, completion_tokens) =
        (count(usage, &["prompt_tokens"]), count(usage, &["prompt_tokens_details", "cached_tokens"]), count(usage, &["completion_tokens"]));
    let choice = body.get("choices").and_then(|c| c.get(0)).ok_or_else(|| protocol("a chat completion without `choices`"))?;
    let message = choice.get("message").ok_or_else(|| protocol("a choice without `message`"))?;
    if let Some(r) = message.get("refusal").and_then(Value::as_str) {
        return Ok(Parsed { answer: Answer::Refusal(r.to_owned()), prompt_tokens, cached_tokens, completion_tokens });
    }
    let text = if mode == WireMode::Tool {
        let call = message["tool_calls"].get(0).ok_or_else(|| protocol("tool mode, but the reply has no tool call"))?;
        call["function"]["arguments"].as_str().ok_or_else(|| protocol("a tool call without `arguments`"))?.to_owned()
    } else {
        message.get("content").and_then(Value::as_str).ok_or_else(|| protocol("a message with neither content nor refusal"))?.to_owned()
    };
    let finish = choice["finish_reason"].as_str().unwrap_or("");
    if finish == "length" || finish == "content_filter" {
        return Err(BackendError::Truncated { reason: finish.to_owned(), text });
    }
    let logprobs = choice["logprobs"]["content"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| TokenLogprob {
            token: t["token"].as_str().unwrap_or("").to_owned(),
            logprob: t["logprob"].as_f64().unwrap_or(0.0),
            top: t["top_logprobs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| Some((a["token"].as_str()?.to_owned(), a["logprob"].as_f64()?)))
                .collect(),
        })
        .collect();
    Ok(Parsed { answer: Answer::Text { text, logprobs }, prompt_tokens, cached_tokens, completion_tokens })
}

/// OpenAI's error message and `param` from an error body (`{"error": {"message", "param"}}`),
/// or the body's text when it has another shape.
pub fn error_message(text: &str) -> (String, Option<String>) {
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v["error"].is_object() => {
            (v["error"]["message"].as_str().unwrap_or("").to_owned(), v["error"]["param"].as_str().map(str::to_owned))
        }
        // llama-cpp-python and FastAPI: `{"detail": ...}`; others: plain text.
        Ok(v) if v.get("detail").is_some() => (v["detail"].to_string(), None),
        _ => (text.chars().take(500).collect(), None),
    }
}

/// The property a wrapped schema puts the value under.
pub const WRAP_KEY: &str = "value";

/// The schema as sent: unchanged when its root is an object the strict subset takes; otherwise
/// (a root `anyOf`, a root that is not an object) wrapped as the one required property
/// [`WRAP_KEY`] of an object, as OpenAI's guide suggests. `$schema` stays out of the wrapper.
///
/// ```
/// use serde_json::json;
/// use strictly::backend::openai::wire::wire_schema;
/// let routed = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "anyOf": [{"type": "null"}]});
/// let sent = wire_schema(&routed).unwrap();
/// assert_eq!(sent["properties"]["value"], json!({"anyOf": [{"type": "null"}]}));
/// assert!(wire_schema(&json!({"type": "object", "properties": {}, "additionalProperties": false})).is_none());
/// ```
pub fn wire_schema(schema: &Value) -> Option<Value> {
    let is_object = schema.get("type") == Some(&json!("object")) && schema.get("anyOf").is_none();
    if is_object {
        return None;
    }
    let mut inner = schema.clone();
    let mut defs = Map::new();
    if let Some(o) = inner.as_object_mut() {
        o.remove("$schema");
        // `$ref`s point from the root: keep the definitions there.
        for key in ["$defs", "definitions"] {
            if let Some(Value::Object(d)) = o.remove(key) {
                defs.insert(key.to_owned(), Value::Object(d));
            }
        }
    }
    let mut wrapped = json!({
        "type": "object",
        "properties": {WRAP_KEY: inner},
        "required": [WRAP_KEY],
        "additionalProperties": false,
    });
    if let Some(o) = wrapped.as_object_mut() {
        o.extend(defs);
    }
    Some(wrapped)
}

/// The value inside a wrapped reply, and the text of it when the reply is written without
/// spaces (`{"value":...}`; `None` otherwise), with the byte offset it starts at.
pub fn unwrap_value(value: Value, text: &str) -> (Value, Option<(String, usize)>) {
    let inner = match value {
        Value::Object(mut o) if o.len() == 1 && o.contains_key(WRAP_KEY) => o.remove(WRAP_KEY).unwrap_or(Value::Null),
        other => return (other, None),
    };
    let prefix = format!("{{\"{WRAP_KEY}\":");
    let slice = text.strip_prefix(&prefix).and_then(|t| t.strip_suffix('}')).map(|t| (t.to_owned(), prefix.len()));
    (inner, slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reply bodies in the shapes of the OpenAPI spec (`Response`, `CreateChatCompletionResponse`).

    #[test]
    fn refusals_in_both_apis_shapes() {
        let responses = json!({"status": "completed", "output": [{"type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "refusal", "refusal": "I can't help with that."}]}], "usage": {"input_tokens": 9, "output_tokens": 6}});
        assert_eq!(parse(WireMode::Responses, &responses).unwrap().answer, Answer::Refusal("I can't help with that.".into()));
        let chat = json!({"choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
            "message": {"role": "assistant", "content": null, "refusal": "No."}}]});
        for mode in [WireMode::Chat, WireMode::Tool, WireMode::Compat] {
            assert_eq!(parse(mode, &chat).unwrap().answer, Answer::Refusal("No.".into()));
        }
    }

    #[test]
    fn cut_outputs_are_truncated_in_both_apis() {
        let responses = json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "{\"a\":"}]}]});
        match parse(WireMode::Responses, &responses) {
            Err(BackendError::Truncated { reason, text }) => assert_eq!((reason.as_str(), text.as_str()), ("max_output_tokens", "{\"a\":")),
            other => panic!("{other:?}"),
        }
        let chat =
            json!({"choices": [{"finish_reason": "length", "message": {"role": "assistant", "content": "{\"a\"", "refusal": null}}]});
        assert!(matches!(parse(WireMode::Chat, &chat), Err(BackendError::Truncated { .. })));
    }

    #[test]
    fn usage_tool_arguments_and_logprobs() {
        let chat = json!({"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": null, "refusal": null,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "r", "arguments": "{\"x\":1}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 8}}});
        let p = parse(WireMode::Tool, &chat).unwrap();
        assert_eq!(p.answer, Answer::Text { text: "{\"x\":1}".into(), logprobs: vec![] });
        assert_eq!((p.prompt_tokens, p.cached_tokens, p.completion_tokens), (10, 8, 4));
        let chat = json!({"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "{}", "refusal": null},
            "logprobs": {"content": [{"token": "{}", "logprob": -0.1, "bytes": [123, 125],
                "top_logprobs": [{"token": "{}", "logprob": -0.1, "bytes": [123, 125]}, {"token": "{\"", "logprob": -2.4, "bytes": [123, 34]}]}], "refusal": null}}]});
        let Answer::Text { logprobs, .. } = parse(WireMode::Chat, &chat).unwrap().answer else { panic!() };
        assert_eq!(logprobs, [TokenLogprob { token: "{}".into(), logprob: -0.1, top: vec![("{}".into(), -0.1), ("{\"".into(), -2.4)] }]);
        assert!(matches!(parse(WireMode::Chat, &json!({"choices": []})), Err(BackendError::Protocol { .. })));
    }

    #[test]
    fn error_bodies() {
        let (m, p) = error_message(
            r#"{"error": {"message": "Invalid schema", "type": "invalid_request_error", "param": "response_format", "code": null}}"#,
        );
        assert_eq!((m.as_str(), p.as_deref()), ("Invalid schema", Some("response_format")));
        assert_eq!(error_message("Internal Server Error").0, "Internal Server Error");
    }
}
