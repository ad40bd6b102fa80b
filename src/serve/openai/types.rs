//! The request bodies of both APIs as serde types: [`ChatRequest`] and [`ResponsesRequest`].
//!
//! Every field is optional and unknown fields are ignored, as OpenAI's clients send new ones.
//! A field of the wrong type is a 400 naming the field ([`from_value`]), with the same message
//! as the range checks in [`request`](super::request) give for a value out of range.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_path_to_error::Segment;

use super::ApiError;

/// `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct ChatRequest {
    pub model: Option<String>,
    pub messages: Option<Vec<Message>>,
    pub n: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    pub frequency_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    /// llama.cpp's, so a client written for its server decodes the same way here.
    pub repeat_penalty: Option<f64>,
    pub stop: Option<Stop>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u64>,
    pub response_format: Option<Format>,
    pub tools: Option<Vec<ToolSpec>>,
    pub tool_choice: Option<ToolChoice>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
}

/// `POST /v1/responses`.
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct ResponsesRequest {
    pub model: Option<String>,
    pub input: Option<Input>,
    pub instructions: Option<String>,
    pub previous_response_id: Option<String>,
    pub store: Option<bool>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    pub frequency_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub repeat_penalty: Option<f64>,
    pub text: Option<TextOptions>,
    pub tools: Option<Vec<ToolSpec>>,
    pub tool_choice: Option<ToolChoice>,
    pub stream: Option<bool>,
}

/// What every generation request names.
pub(in crate::serve) trait Request: serde::de::DeserializeOwned + Send {
    /// The model asked for.
    fn model(&self) -> Option<&str>;
}

impl Request for ChatRequest {
    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
}

impl Request for ResponsesRequest {
    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
}

/// The sampling fields both APIs share (inlined in each request, so a wrong type's error
/// names its field).
#[derive(Debug, Clone)]
pub(in crate::serve) struct Sampling {
    /// The token caps given and the fields they came from (the last one counts).
    pub max_tokens: Vec<(&'static str, u64)>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    pub frequency_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub repeat_penalty: Option<f64>,
}

impl ChatRequest {
    /// The sampling fields (`max_completion_tokens` over `max_tokens`).
    pub fn sampling(&self) -> Sampling {
        let max_tokens = [("max_tokens", self.max_tokens), ("max_completion_tokens", self.max_completion_tokens)];
        Sampling {
            max_tokens: max_tokens.into_iter().filter_map(|(k, n)| Some((k, n?))).collect(),
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            repeat_penalty: self.repeat_penalty,
        }
    }
}

impl ResponsesRequest {
    /// The sampling fields.
    pub fn sampling(&self) -> Sampling {
        Sampling {
            max_tokens: self.max_output_tokens.map(|n| ("max_output_tokens", n)).into_iter().collect(),
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            repeat_penalty: self.repeat_penalty,
        }
    }
}

/// A Chat message, or a Responses input item (which adds `type` and the function-call fields).
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct Message {
    /// Responses' item type: none or `message`, `function_call`, `function_call_output`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub role: Option<String>,
    pub content: Option<Content>,
    pub tool_calls: Option<Vec<ToolCall>>,
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
    pub call_id: Option<String>,
    pub output: Option<String>,
}

/// A message's `content`: a string, or an array of parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(in crate::serve) enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// A content part (only the text kinds and `refusal` are taken).
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct Part {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub text: Option<String>,
    pub refusal: Option<String>,
}

/// An assistant message's tool call.
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct ToolCall {
    pub function: Option<FunctionCall>,
}

/// The function of a tool call.
#[derive(Debug, Default, Deserialize)]
pub(in crate::serve) struct FunctionCall {
    pub name: Option<String>,
    pub arguments: Option<String>,
}

/// Responses' `input`: a string, or an array of items.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(in crate::serve) enum Input {
    Text(String),
    Items(Vec<Message>),
}

/// `stop`: one string or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(in crate::serve) enum Stop {
    One(String),
    Many(Vec<String>),
}

/// Chat's `stream_options`.
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct StreamOptions {
    pub include_usage: Option<bool>,
}

/// Responses' `text`.
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct TextOptions {
    pub format: Option<Format>,
}

/// Chat's `response_format` or Responses' `text.format`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(in crate::serve) enum Format {
    Text,
    JsonObject,
    /// Chat nests the name and schema under `json_schema`; Responses has them flat.
    JsonSchema {
        json_schema: Option<JsonSchemaSpec>,
        #[serde(flatten)]
        flat: JsonSchemaSpec,
    },
}

/// A `json_schema` format's name and schema (`strict` is ignored: the mask enforces the schema
/// either way).
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct JsonSchemaSpec {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub schema: Option<Value>,
}

/// A tool, in Chat's nested shape (`function: {...}`) or Responses' flat one.
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct ToolSpec {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub function: Option<FunctionSpec>,
    #[serde(flatten)]
    pub flat: FunctionSpec,
}

/// A function tool's name, description and parameters.
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct FunctionSpec {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub parameters: Option<Value>,
}

/// `tool_choice`: `none`, `auto`, `required`, or an object naming a function (Chat's
/// `{"function": {"name"}}` or Responses' `{"name"}`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(in crate::serve) enum ToolChoice {
    Mode(String),
    Named { function: Option<Named>, name: Option<String> },
}

/// `{"name"}` inside Chat's named tool choice.
#[derive(Debug, Deserialize)]
pub(in crate::serve) struct Named {
    pub name: Option<String>,
}

impl ToolChoice {
    /// The function a named choice names.
    pub fn named(&self) -> Option<&str> {
        match self {
            ToolChoice::Mode(_) => None,
            ToolChoice::Named { function, name } => function.as_ref().and_then(|f| f.name.as_deref()).or(name.as_deref()),
        }
    }
}

/// A present field as it is, `null` included (serde's `Option` would read `null` as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The request fields whose type is checked, as `param`s.
const FIELDS: &[&str] = &[
    "model",
    "messages",
    "input",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "temperature",
    "top_p",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "repeat_penalty",
    "stop",
    "logprobs",
    "top_logprobs",
    "response_format",
    "tools",
    "tool_choice",
    "stream",
    "stream_options",
    "instructions",
    "previous_response_id",
    "store",
];

/// A typed request from a JSON object; a field of the wrong type is a 400 naming it.
pub(in crate::serve) fn from_value<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| wrong_type(body, &e))
}

/// The 400 for a field serde refused: the message the range checks give, where there is one.
fn wrong_type(body: &Value, e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let keys: Vec<&str> = e.path().iter().filter_map(|s| if let Segment::Map { key } = s { Some(key.as_str()) } else { None }).collect();
    let top = keys.first().copied().unwrap_or_default();
    let deep = e.path().iter().count() > 1;
    let detail = || format!("{}: {}", e.path(), e.inner());
    if top == "text" {
        return ApiError::invalid_param("text.format", format_message(body.pointer("/text/format"), detail()));
    }
    let Some(param) = FIELDS.iter().copied().find(|f| *f == top) else {
        return ApiError::invalid_request(format!("bad request body: {}", detail()));
    };
    let message = match param {
        "model" => "model is required".to_owned(),
        "n" => format!("n must be the integer 1 (one choice per request), not {}", body["n"]),
        "messages" if !deep => "messages must be an array".to_owned(),
        "input" if !deep => "input must be a string or an array of items".to_owned(),
        "messages" | "input" => match keys.last().copied() {
            Some("content") => "content must be a string or an array of text parts".to_owned(),
            Some("role") => "every message needs a role".to_owned(),
            _ => detail(),
        },
        "max_tokens" | "max_completion_tokens" | "max_output_tokens" => format!("{param} must be an integer from 1 to 4096"),
        "temperature" => "temperature must be from 0 to 2".to_owned(),
        "top_p" => "top_p must be in (0, 1]".to_owned(),
        "seed" => "seed must be an integer".to_owned(),
        "frequency_penalty" | "presence_penalty" | "repeat_penalty" => format!("{param} must be a number"),
        "stop" => "stop must be a string or up to 4 strings".to_owned(),
        "top_logprobs" => "top_logprobs must be an integer from 0 to 20".to_owned(),
        "previous_response_id" => super::request::NO_PREVIOUS.to_owned(),
        "response_format" => format_message(body.get("response_format"), detail()),
        _ => detail(),
    };
    ApiError::invalid_param(param, message)
}

/// A format serde refused: an unknown `type` is named as such.
fn format_message(format: Option<&Value>, detail: String) -> String {
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some(t) if !matches!(t, "text" | "json_object" | "json_schema") => format!("unknown format type `{t}`"),
        _ => detail,
    }
}
