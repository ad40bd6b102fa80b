//! Both APIs' request bodies, checked and turned into a [`Job`].

use serde_json::{json, Value};

use super::tools::{parse_tools, tools_schema};
use super::{refusal, ApiError, ChatModel, Job, Mode};
use crate::chat::{ChatMessage, Role};
use crate::decode::DecodeOptions;

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
                    _ => {
                        return Err(ApiError::invalid_param(param, format!("content parts of type `{kind}` are not supported; only text")))
                    }
                }
            }
            Ok(out)
        }
        _ => Err(ApiError::invalid_param(param, "content must be a string or an array of text parts")),
    }
}

/// A chat message of any OpenAI role, as the model's template takes it.
fn chat_message(m: &Value, param: &'static str) -> Result<ChatMessage, ApiError> {
    let role = m.get("role").and_then(Value::as_str).ok_or_else(|| ApiError::invalid_param(param, "every message needs a role"))?;
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
        other => return Err(ApiError::invalid_param(param, format!("unknown role `{other}`"))),
    };
    Ok(ChatMessage { role, content: text })
}

/// The schema every output is decoded under, for both APIs: the tools' (when the request has
/// tools and a choice that allows them), else the response format's (`format`, named `param`
/// in errors); the messages get the matching instruction. Returns the schema, the mode and the
/// request field an unenforceable schema is blamed on.
fn output_schema(
    chat: &ChatModel,
    body: &Value,
    messages: &mut Vec<ChatMessage>,
    format: Option<&Value>,
    param: &'static str,
) -> Result<Shape, ApiError> {
    let offer = chat.model_refusals;
    let tools = match body.get("tools").and_then(Value::as_array) {
        Some(t) if !t.is_empty() => parse_tools(t, "tools")?,
        _ => Vec::new(),
    };
    let choice = body.get("tool_choice").cloned().unwrap_or(Value::Null);
    if let Some((schema, how)) = tools_schema(&tools, &choice, offer)? {
        instruct(messages, &how);
        return Ok(Shape { schema, caller: None, refusable: offer, mode: Mode::Tools, param: "tools" });
    }
    let format = format.unwrap_or(&Value::Null);
    let (schema, mode) = format_schema(format, param)?;
    if mode == Mode::Text {
        let schema = if offer { json!({"anyOf": [schema, refusal::schema()]}) } else { schema };
        return Ok(Shape { schema, caller: None, refusable: offer, mode, param });
    }
    instruct(messages, &format!("Answer with JSON only, matching this JSON Schema: {schema}"));
    if !offer || format.get("type").and_then(Value::as_str) == Some("json_object") {
        // Any object is valid content: no refusal branch.
        return Ok(Shape { schema, caller: None, refusable: false, mode, param });
    }
    Ok(match refusal::with_refusal(&schema) {
        Some(wrapped) => {
            instruct(messages, refusal::INSTRUCTION);
            Shape { schema: wrapped, caller: Some(schema), refusable: true, mode, param }
        }
        None => Shape { schema, caller: None, refusable: false, mode, param },
    })
}

/// The schema an output is decoded under, and how to read it.
struct Shape {
    schema: Value,
    caller: Option<Value>,
    refusable: bool,
    mode: Mode,
    param: &'static str,
}

impl Shape {
    fn job(self, messages: Vec<ChatMessage>, options: DecodeOptions, stop: Vec<String>, logprobs: Option<usize>) -> Job {
        Job {
            messages,
            schema: self.schema,
            caller: self.caller,
            refusable: self.refusable,
            schema_param: self.param,
            mode: self.mode,
            options,
            stop,
            logprobs,
        }
    }
}

/// `top_logprobs` when `logprobs` is true (0 to 20; 0 when left out).
fn logprobs(body: &Value) -> Result<Option<usize>, ApiError> {
    if !body.get("logprobs").and_then(Value::as_bool).unwrap_or(false) {
        if body.get("top_logprobs").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::invalid_param("top_logprobs", "top_logprobs needs logprobs: true"));
        }
        return Ok(None);
    }
    match body.get("top_logprobs") {
        None | Some(Value::Null) => Ok(Some(0)),
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= 20)
            .map(|n| Some(n as usize))
            .ok_or_else(|| ApiError::invalid_param("top_logprobs", "top_logprobs must be an integer from 0 to 20")),
    }
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

/// Sampling options from a request over the server's defaults.
fn options(defaults: &DecodeOptions, body: &Value, max_keys: &[&'static str]) -> Result<DecodeOptions, ApiError> {
    let mut o = defaults.clone();
    for key in max_keys {
        if let Some(v) = body.get(*key).filter(|v| !v.is_null()) {
            let n = v
                .as_u64()
                .filter(|n| (1..=4096).contains(n))
                .ok_or_else(|| ApiError::invalid_param(key, format!("{key} must be an integer from 1 to 4096")))?;
            o.max_tokens = n as usize;
        }
    }
    if let Some(v) = body.get("temperature").filter(|v| !v.is_null()) {
        let t = v
            .as_f64()
            .filter(|t| (0.0..=2.0).contains(t))
            .ok_or_else(|| ApiError::invalid_param("temperature", "temperature must be from 0 to 2"))?;
        o.temperature = t as f32;
    }
    if let Some(v) = body.get("top_p").filter(|v| !v.is_null()) {
        let p = v.as_f64().filter(|p| *p > 0.0 && *p <= 1.0).ok_or_else(|| ApiError::invalid_param("top_p", "top_p must be in (0, 1]"))?;
        o.top_p = p as f32;
    }
    if let Some(v) = body.get("seed").filter(|v| !v.is_null()) {
        o.seed = v.as_i64().ok_or_else(|| ApiError::invalid_param("seed", "seed must be an integer"))? as u64;
    }
    // OpenAI's two penalties, and llama.cpp's repeat_penalty so a client written for its
    // server decodes the same way here.
    for (key, slot) in [
        ("frequency_penalty", &mut o.frequency_penalty),
        ("presence_penalty", &mut o.presence_penalty),
        ("repeat_penalty", &mut o.repeat_penalty),
    ] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            *slot = v.as_f64().ok_or_else(|| ApiError::invalid_param(key, format!("{key} must be a number")))? as f32;
        }
    }
    o.check_penalties().map_err(|(key, rule)| ApiError::invalid_param(key, format!("{key} must be {rule}")))?;
    Ok(o)
}

fn stop_sequences(body: &Value) -> Result<Vec<String>, ApiError> {
    match body.get("stop") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) if a.len() <= 4 && a.iter().all(Value::is_string) => {
            Ok(a.iter().filter_map(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        }
        _ => Err(ApiError::invalid_param("stop", "stop must be a string or up to 4 strings")),
    }
}

/// The schema of a `json_schema` format (Chat's nested or Responses' flat shape).
fn format_schema(format: &Value, param: &'static str) -> Result<(Value, Mode), ApiError> {
    match format.get("type").and_then(Value::as_str) {
        None | Some("text") => Ok((json!({"type": "string"}), Mode::Text)),
        Some("json_object") => Ok((json!({"type": "object"}), Mode::Json)),
        Some("json_schema") => {
            let spec = format.get("json_schema").unwrap_or(format);
            let name =
                spec.get("name").and_then(Value::as_str).ok_or_else(|| ApiError::invalid_param(param, "json_schema needs a name"))?;
            if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(ApiError::invalid_param(param, format!("json_schema name `{name}` must be 1 to 64 of a-z, A-Z, 0-9, _ and -")));
            }
            let schema = spec.get("schema").cloned().unwrap_or_else(|| json!({}));
            if !schema.is_object() {
                return Err(ApiError::invalid_param(param, "json_schema.schema must be an object"));
            }
            Ok((schema, Mode::Json))
        }
        Some(other) => Err(ApiError::invalid_param(param, format!("unknown format type `{other}`"))),
    }
}

/// A Chat Completions request, ready for the model.
pub(super) fn chat_job(chat: &ChatModel, body: &Value) -> Result<(Job, bool, bool), ApiError> {
    match body.get("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.is_u64() && n.as_u64() == Some(1) => {}
        Some(n) => return Err(ApiError::invalid_param("n", format!("n must be the integer 1 (one choice per request), not {n}"))),
    }
    let raw =
        body.get("messages").and_then(Value::as_array).ok_or_else(|| ApiError::invalid_param("messages", "messages must be an array"))?;
    if raw.is_empty() {
        return Err(ApiError::invalid_param("messages", "messages must not be empty"));
    }
    let mut messages = raw.iter().map(|m| chat_message(m, "messages")).collect::<Result<Vec<_>, _>>()?;
    let mut options = options(&chat.defaults, body, &["max_tokens", "max_completion_tokens"])?;
    let stop = stop_sequences(body)?;
    let logprobs = logprobs(body)?;
    if let Some(top) = logprobs {
        options.alternatives = options.alternatives.max(top);
    }
    let shape = output_schema(chat, body, &mut messages, body.get("response_format"), "response_format")?;
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let usage_in_stream = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    Ok((shape.job(messages, options, stop, logprobs), stream, usage_in_stream))
}

/// A Responses API request, ready for the model.
pub(super) fn responses_job(chat: &ChatModel, body: &Value) -> Result<(Job, bool), ApiError> {
    if body.get("previous_response_id").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid_param(
            "previous_response_id",
            "previous_response_id is not supported: this server keeps no responses; send the whole conversation in input",
        ));
    }
    if body.get("store").and_then(Value::as_bool) == Some(true) {
        return Err(ApiError::invalid_param("store", "store: true is not supported: this server keeps no responses"));
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
                        content: format!(
                            "Result of the tool call {}: {}",
                            item["call_id"].as_str().unwrap_or(""),
                            item["output"].as_str().unwrap_or("")
                        ),
                    }),
                    Some(other) => {
                        return Err(ApiError::invalid_param("input", format!("input items of type `{other}` are not supported")))
                    }
                }
            }
        }
        _ => return Err(ApiError::invalid_param("input", "input must be a string or an array of items")),
    }
    if !messages.iter().any(|m| m.role != Role::System) {
        return Err(ApiError::invalid_param("input", "input has no message"));
    }
    let options = options(&chat.defaults, body, &["max_output_tokens"])?;
    let shape = output_schema(chat, body, &mut messages, body.pointer("/text/format"), "text.format")?;
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    Ok((shape.job(messages, options, Vec::new(), None), stream))
}
