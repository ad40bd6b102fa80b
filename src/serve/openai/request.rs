//! Both APIs' request bodies, checked and turned into a [`Job`].

use serde_json::{json, Value};

use super::tools::{parse_tools, tools_schema};
use super::types::{ChatRequest, Content, Format, Input, Message, ResponsesRequest, Sampling, Stop, ToolChoice, ToolSpec};
use super::{refusal, ApiError, ChatModel, Job, Mode};
use crate::chat::{ChatMessage, Role};
use crate::decode::DecodeOptions;

/// Text of a message's `content`: a string, or an array of text parts.
fn content_text(content: Option<&Content>, param: &'static str) -> Result<String, ApiError> {
    match content {
        None => Ok(String::new()),
        Some(Content::Text(s)) => Ok(s.clone()),
        Some(Content::Parts(parts)) => {
            let mut out = String::new();
            for p in parts {
                match (p.kind.as_str(), &p.text) {
                    ("text" | "input_text" | "output_text", Some(t)) => out.push_str(t),
                    ("refusal", _) => out.push_str(p.refusal.as_deref().unwrap_or("")),
                    (kind, _) => {
                        return Err(ApiError::invalid_param(param, format!("content parts of type `{kind}` are not supported; only text")))
                    }
                }
            }
            Ok(out)
        }
    }
}

/// A function call as the model writes it: `{"name":...,"arguments":...}` (`null` for no name).
fn call_text(name: Option<&str>, arguments: Option<&str>) -> String {
    let name = serde_json::to_string(&name).unwrap_or_default();
    format!("{{\"name\":{name},\"arguments\":{}}}", arguments.unwrap_or("{}"))
}

/// A chat message of any OpenAI role, as the model's template takes it.
fn chat_message(m: &Message, param: &'static str) -> Result<ChatMessage, ApiError> {
    let role = m.role.as_deref().ok_or_else(|| ApiError::invalid_param(param, "every message needs a role"))?;
    let mut text = content_text(m.content.as_ref(), param)?;
    let role = match role {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => {
            for c in m.tool_calls.iter().flatten() {
                let f = c.function.as_ref();
                let call = call_text(f.and_then(|f| f.name.as_deref()), f.and_then(|f| f.arguments.as_deref()));
                text.push_str(if text.is_empty() { "" } else { "\n" });
                text.push_str(&call);
            }
            Role::Assistant
        }
        "tool" | "function" => {
            text = format!("Result of the tool call {}: {text}", m.tool_call_id.as_deref().unwrap_or(""));
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
    (tools, choice): (Option<&[ToolSpec]>, Option<&ToolChoice>),
    messages: &mut Vec<ChatMessage>,
    format: Option<&Format>,
    param: &'static str,
) -> Result<Shape, ApiError> {
    let offer = chat.model_refusals;
    let tools = parse_tools(tools.unwrap_or_default(), "tools")?;
    if let Some((schema, how)) = tools_schema(&tools, choice, offer)? {
        instruct(messages, &how);
        return Ok(Shape { schema, caller: None, refusable: offer, mode: Mode::Tools, param: "tools" });
    }
    let (schema, mode) = format_schema(format, param)?;
    if mode == Mode::Text {
        let schema = if offer { json!({"anyOf": [schema, refusal::schema()]}) } else { schema };
        return Ok(Shape { schema, caller: None, refusable: offer, mode, param });
    }
    instruct(messages, &format!("Answer with JSON only, matching this JSON Schema: {schema}"));
    if !offer || matches!(format, Some(Format::JsonObject)) {
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
fn logprobs(logprobs: Option<bool>, top_logprobs: Option<u64>) -> Result<Option<usize>, ApiError> {
    if !logprobs.unwrap_or(false) {
        if top_logprobs.is_some() {
            return Err(ApiError::invalid_param("top_logprobs", "top_logprobs needs logprobs: true"));
        }
        return Ok(None);
    }
    match top_logprobs {
        None => Ok(Some(0)),
        Some(n) if n <= 20 => Ok(Some(n as usize)),
        Some(_) => Err(ApiError::invalid_param("top_logprobs", "top_logprobs must be an integer from 0 to 20")),
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
fn options(defaults: &DecodeOptions, s: &Sampling) -> Result<DecodeOptions, ApiError> {
    let mut o = defaults.clone();
    for &(key, n) in &s.max_tokens {
        if !(1..=4096).contains(&n) {
            return Err(ApiError::invalid_param(key, format!("{key} must be an integer from 1 to 4096")));
        }
        o.max_tokens = n as usize;
    }
    if let Some(t) = s.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::invalid_param("temperature", "temperature must be from 0 to 2"));
        }
        o.temperature = t as f32;
    }
    if let Some(p) = s.top_p {
        if !(p > 0.0 && p <= 1.0) {
            return Err(ApiError::invalid_param("top_p", "top_p must be in (0, 1]"));
        }
        o.top_p = p as f32;
    }
    if let Some(seed) = s.seed {
        o.seed = seed as u64;
    }
    // OpenAI's two penalties, and llama.cpp's repeat_penalty so a client written for its
    // server decodes the same way here.
    for (value, slot) in [
        (s.frequency_penalty, &mut o.frequency_penalty),
        (s.presence_penalty, &mut o.presence_penalty),
        (s.repeat_penalty, &mut o.repeat_penalty),
    ] {
        if let Some(v) = value {
            *slot = v as f32;
        }
    }
    o.check_penalties().map_err(|(key, rule)| ApiError::invalid_param(key, format!("{key} must be {rule}")))?;
    Ok(o)
}

fn stop_sequences(stop: Option<&Stop>) -> Result<Vec<String>, ApiError> {
    match stop {
        None => Ok(Vec::new()),
        Some(Stop::One(s)) => Ok(vec![s.clone()]),
        Some(Stop::Many(a)) if a.len() <= 4 => Ok(a.iter().filter(|s| !s.is_empty()).cloned().collect()),
        Some(Stop::Many(_)) => Err(ApiError::invalid_param("stop", "stop must be a string or up to 4 strings")),
    }
}

/// The schema of a format (Chat's nested or Responses' flat `json_schema`); none is `text`.
fn format_schema(format: Option<&Format>, param: &'static str) -> Result<(Value, Mode), ApiError> {
    match format {
        None | Some(Format::Text) => Ok((json!({"type": "string"}), Mode::Text)),
        Some(Format::JsonObject) => Ok((json!({"type": "object"}), Mode::Json)),
        Some(Format::JsonSchema { json_schema, flat }) => {
            let spec = json_schema.as_ref().unwrap_or(flat);
            let name = spec.name.as_deref().ok_or_else(|| ApiError::invalid_param(param, "json_schema needs a name"))?;
            if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(ApiError::invalid_param(param, format!("json_schema name `{name}` must be 1 to 64 of a-z, A-Z, 0-9, _ and -")));
            }
            let schema = spec.schema.clone().unwrap_or_else(|| json!({}));
            if !schema.is_object() {
                return Err(ApiError::invalid_param(param, "json_schema.schema must be an object"));
            }
            Ok((schema, Mode::Json))
        }
    }
}

/// Why `previous_response_id` is refused.
pub(super) const NO_PREVIOUS: &str =
    "previous_response_id is not supported: this server keeps no responses; send the whole conversation in input";

/// A Chat Completions request, ready for the model.
pub(super) fn chat_job(chat: &ChatModel, body: &ChatRequest) -> Result<(Job, bool, bool), ApiError> {
    if let Some(n) = body.n.filter(|n| *n != 1) {
        return Err(ApiError::invalid_param("n", format!("n must be the integer 1 (one choice per request), not {n}")));
    }
    let raw = body.messages.as_deref().ok_or_else(|| ApiError::invalid_param("messages", "messages must be an array"))?;
    if raw.is_empty() {
        return Err(ApiError::invalid_param("messages", "messages must not be empty"));
    }
    let mut messages = raw.iter().map(|m| chat_message(m, "messages")).collect::<Result<Vec<_>, _>>()?;
    let mut options = options(&chat.defaults, &body.sampling())?;
    let stop = stop_sequences(body.stop.as_ref())?;
    let logprobs = logprobs(body.logprobs, body.top_logprobs)?;
    if let Some(top) = logprobs {
        options.alternatives = options.alternatives.max(top);
    }
    let tools = (body.tools.as_deref(), body.tool_choice.as_ref());
    let shape = output_schema(chat, tools, &mut messages, body.response_format.as_ref(), "response_format")?;
    let stream = body.stream.unwrap_or(false);
    let usage_in_stream = body.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    Ok((shape.job(messages, options, stop, logprobs), stream, usage_in_stream))
}

/// A Responses API request, ready for the model.
pub(super) fn responses_job(chat: &ChatModel, body: &ResponsesRequest) -> Result<(Job, bool), ApiError> {
    if body.previous_response_id.is_some() {
        return Err(ApiError::invalid_param("previous_response_id", NO_PREVIOUS));
    }
    if body.store == Some(true) {
        return Err(ApiError::invalid_param("store", "store: true is not supported: this server keeps no responses"));
    }
    let mut messages = Vec::new();
    if let Some(i) = &body.instructions {
        messages.push(ChatMessage { role: Role::System, content: i.clone() });
    }
    match &body.input {
        Some(Input::Text(s)) => messages.push(ChatMessage { role: Role::User, content: s.clone() }),
        Some(Input::Items(items)) => {
            for item in items {
                match item.kind.as_deref() {
                    None | Some("message") => messages.push(chat_message(item, "input")?),
                    Some("function_call") => messages
                        .push(ChatMessage { role: Role::Assistant, content: call_text(item.name.as_deref(), item.arguments.as_deref()) }),
                    Some("function_call_output") => messages.push(ChatMessage {
                        role: Role::User,
                        content: format!(
                            "Result of the tool call {}: {}",
                            item.call_id.as_deref().unwrap_or(""),
                            item.output.as_deref().unwrap_or("")
                        ),
                    }),
                    Some(other) => {
                        return Err(ApiError::invalid_param("input", format!("input items of type `{other}` are not supported")))
                    }
                }
            }
        }
        None => return Err(ApiError::invalid_param("input", "input must be a string or an array of items")),
    }
    if !messages.iter().any(|m| m.role != Role::System) {
        return Err(ApiError::invalid_param("input", "input has no message"));
    }
    let options = options(&chat.defaults, &body.sampling())?;
    let tools = (body.tools.as_deref(), body.tool_choice.as_ref());
    let format = body.text.as_ref().and_then(|t| t.format.as_ref());
    let shape = output_schema(chat, tools, &mut messages, format, "text.format")?;
    let stream = body.stream.unwrap_or(false);
    Ok((shape.job(messages, options, Vec::new(), None), stream))
}
