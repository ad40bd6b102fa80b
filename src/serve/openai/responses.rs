//! `POST /v1/responses`: a `response` object with `message` items (an `output_text` or a
//! `refusal` content part) and `function_call` items; streamed as `response.created`, then
//! `response.output_item.added`, `response.content_part.added`,
//! `response.output_text.delta` (or `response.refusal.delta`,
//! `response.function_call_arguments.delta`) as the model decodes, the matching `.done`
//! events and `response.completed`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::extract::OpenAiJson;
use super::request::responses_job;
use super::stream::{Delta, Wire};
use super::types::ResponsesRequest;
use super::{now_secs, ApiError, App, FinishReason, Output};
use crate::backend::Backend;
use crate::routing::audit::new_message_id;

pub(in crate::serve) async fn responses<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
    body: Result<OpenAiJson<ResponsesRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let (OpenAiJson { body, raw }, chat) = app.openai_request(&headers, body)?;
    let (job, stream) = responses_job(&chat, &body)?;
    let head = Head {
        id: format!("resp_{}", new_message_id().replace('-', "")),
        msg_id: format!("msg_{}", new_message_id().replace('-', "")),
        created_at: now_secs(),
        model: chat.id().to_owned(),
        body: raw,
    };
    if stream {
        return app.stream(job, ResponsesWire { head, seq: 0, message: None, call: None }).await;
    }
    let out = app.complete(job).await?;
    Ok(Json(head.response(Some(&out))).into_response())
}

/// A response's or an output item's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    InProgress,
    Completed,
    /// The token cap cut plain text short (a response only).
    Incomplete,
}

impl Status {
    /// A response's status: in progress (`None`) or finished.
    fn of(out: Option<&Output>) -> Self {
        match out {
            None => Status::InProgress,
            Some(o) if o.finish_reason == FinishReason::Length => Status::Incomplete,
            Some(_) => Status::Completed,
        }
    }
}

/// `incomplete_details.reason`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum IncompleteReason {
    MaxOutputTokens,
}

/// What a response echoes of its request, and its ids.
struct Head {
    id: String,
    msg_id: String,
    created_at: u64,
    model: String,
    body: Value,
}

impl Head {
    /// The response object: in progress (`None`) or finished.
    fn response(&self, out: Option<&Output>) -> Value {
        let body = &self.body;
        let output: Vec<Value> = out.map_or_else(Vec::new, |o| self.items(o));
        let status = Status::of(out);
        let incomplete = status == Status::Incomplete;
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": if incomplete { json!({"reason": IncompleteReason::MaxOutputTokens}) } else { Value::Null },
            "instructions": body.get("instructions").cloned().unwrap_or(Value::Null),
            "max_output_tokens": body.get("max_output_tokens").cloned().unwrap_or(Value::Null),
            "model": self.model,
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
            "usage": out.map(|o| json!({"input_tokens": o.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
                                       "output_tokens": o.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                                       "total_tokens": o.prompt_tokens + o.completion_tokens,
                                       "forced_tokens": o.forced_tokens, "budget_closed": o.budget_closed}))
        })
    }

    /// The finished output items.
    fn items(&self, out: &Output) -> Vec<Value> {
        let mut items = Vec::new();
        let part = match (&out.refusal, &out.content) {
            (Some(r), _) => Some(json!({"type": "refusal", "refusal": r})),
            (None, Some(text)) => Some(json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})),
            (None, None) => None,
        };
        if let Some(part) = part {
            items.push(json!({"id": self.msg_id, "type": "message", "role": "assistant", "status": Status::Completed, "content": [part]}));
        }
        for c in &out.tool_calls {
            items.push(json!({"id": fc_id(&c.id), "type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments, "status": Status::Completed}));
        }
        items
    }
}

fn fc_id(call_id: &str) -> String {
    format!("fc_{}", call_id.trim_start_matches("call_"))
}

/// The Responses API's events.
struct ResponsesWire {
    head: Head,
    seq: u64,
    /// The open message item: its output index and whether its part is a refusal.
    message: Option<(usize, bool)>,
    /// The open function call item: its output index and id.
    call: Option<(usize, String)>,
}

impl ResponsesWire {
    fn event(&mut self, kind: &str, mut data: Value) -> Event {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        Event::default().event(kind).data(data.to_string())
    }

    fn items_open(&self) -> usize {
        usize::from(self.message.is_some()) + usize::from(self.call.is_some())
    }

    /// Opens the message item and its content part, once.
    fn open_message(&mut self, refusal: bool, events: &mut Vec<Event>) -> usize {
        if let Some((i, _)) = self.message {
            return i;
        }
        let i = self.items_open();
        let item = json!({"id": self.head.msg_id, "type": "message", "role": "assistant", "status": Status::InProgress, "content": []});
        let part = if refusal {
            json!({"type": "refusal", "refusal": ""})
        } else {
            json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []})
        };
        let item_id = self.head.msg_id.clone();
        events.push(self.event("response.output_item.added", json!({"output_index": i, "item": item})));
        events.push(
            self.event("response.content_part.added", json!({"item_id": item_id, "output_index": i, "content_index": 0, "part": part})),
        );
        self.message = Some((i, refusal));
        i
    }
}

impl Wire for ResponsesWire {
    fn start(&mut self) -> Vec<Event> {
        let response = self.head.response(None);
        vec![
            self.event("response.created", json!({"response": response})),
            self.event("response.in_progress", json!({"response": response})),
        ]
    }

    fn deltas(&mut self, deltas: &[Delta]) -> Vec<Event> {
        let mut events = Vec::new();
        for d in deltas {
            match d {
                Delta::Content(text) => {
                    let i = self.open_message(false, &mut events);
                    let id = self.head.msg_id.clone();
                    events.push(self.event(
                        "response.output_text.delta",
                        json!({"item_id": id, "output_index": i, "content_index": 0, "delta": text, "logprobs": []}),
                    ));
                }
                Delta::Refusal(text) => {
                    let i = self.open_message(true, &mut events);
                    let id = self.head.msg_id.clone();
                    events.push(
                        self.event("response.refusal.delta", json!({"item_id": id, "output_index": i, "content_index": 0, "delta": text})),
                    );
                }
                Delta::Call { id, name } => {
                    let i = self.items_open();
                    let item = json!({"id": fc_id(id), "type": "function_call", "status": Status::InProgress, "call_id": id, "name": name, "arguments": ""});
                    events.push(self.event("response.output_item.added", json!({"output_index": i, "item": item})));
                    self.call = Some((i, fc_id(id)));
                }
                Delta::Arguments(args) => {
                    if let Some((i, item_id)) = self.call.clone() {
                        events.push(self.event(
                            "response.function_call_arguments.delta",
                            json!({"item_id": item_id, "output_index": i, "delta": args}),
                        ));
                    }
                }
            }
        }
        events
    }

    fn finish(&mut self, out: &Output) -> Vec<Event> {
        let mut events = Vec::new();
        let items = self.head.items(out);
        for item in &items {
            if item["type"] == "message" {
                let part = item["content"][0].clone();
                let i = self.open_message(part["type"] == "refusal", &mut events);
                let id = self.head.msg_id.clone();
                if part["type"] == "refusal" {
                    events.push(self.event(
                        "response.refusal.done",
                        json!({"item_id": id, "output_index": i, "content_index": 0, "refusal": part["refusal"]}),
                    ));
                } else {
                    events.push(self.event(
                        "response.output_text.done",
                        json!({"item_id": id, "output_index": i, "content_index": 0, "text": part["text"], "logprobs": []}),
                    ));
                }
                events.push(
                    self.event("response.content_part.done", json!({"item_id": id, "output_index": i, "content_index": 0, "part": part})),
                );
                events.push(self.event("response.output_item.done", json!({"output_index": i, "item": item})));
            } else if let Some((i, item_id)) = self.call.clone() {
                events.push(self.event(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": i, "arguments": item["arguments"]}),
                ));
                events.push(self.event("response.output_item.done", json!({"output_index": i, "item": item})));
            }
        }
        let response = self.head.response(Some(out));
        let kind = if Status::of(Some(out)) == Status::Incomplete { "response.incomplete" } else { "response.completed" };
        events.push(self.event(kind, json!({"response": response})));
        events
    }
}
