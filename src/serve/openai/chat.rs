//! `POST /v1/chat/completions`: the whole answer, or `chat.completion.chunk` events as the
//! model decodes (`delta.content`, `delta.tool_calls[].function.arguments`, `delta.refusal`),
//! a last chunk with `finish_reason`, the usage chunk when `stream_options.include_usage`,
//! then `data: [DONE]`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::extract::OpenAiJson;
use super::request::chat_job;
use super::stream::{Delta, Wire};
use super::types::ChatRequest;
use super::{now_secs, ApiError, App, Output};
use crate::backend::Backend;
use crate::routing::audit::new_message_id;

/// OpenAI's usage, plus two extension fields: `forced_tokens` (fed without sampling) and
/// `budget_closed` (the token cap shaped the answer).
fn usage(out: &Output) -> Value {
    json!({"prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens, "total_tokens": out.prompt_tokens + out.completion_tokens,
           "forced_tokens": out.forced_tokens, "budget_closed": out.budget_closed})
}

pub(in crate::serve) async fn chat_completions<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
    body: Result<OpenAiJson<ChatRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let (body, chat) = app.openai_request(&headers, body)?;
    let (job, stream, usage_in_stream) = chat_job(&chat, &body.body)?;
    let id = format!("chatcmpl-{}", new_message_id().replace('-', ""));
    let wire = ChatWire { id, created: now_secs(), model: chat.id().to_owned(), usage_in_stream };
    if stream {
        return app.stream(job, wire).await;
    }
    let out = app.complete(job).await?;
    let calls: Vec<Value> = out
        .tool_calls
        .iter()
        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
        .collect();
    let mut message = json!({"role": "assistant", "content": out.content, "refusal": out.refusal, "annotations": []});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Ok(Json(json!({
        "id": wire.id,
        "object": "chat.completion",
        "created": wire.created,
        "model": wire.model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "message": message, "logprobs": out.logprobs, "finish_reason": out.finish_reason}],
        "usage": usage(&out)
    }))
    .into_response())
}

/// Chat's chunks.
struct ChatWire {
    id: String,
    created: u64,
    model: String,
    usage_in_stream: bool,
}

impl ChatWire {
    fn chunk(&self, delta: Value, finish: Value) -> Event {
        let chunk = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model, "system_fingerprint": null,
                           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        Event::default().data(chunk.to_string())
    }
}

impl Wire for ChatWire {
    fn start(&mut self) -> Vec<Event> {
        vec![self.chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null)]
    }

    fn deltas(&mut self, deltas: &[Delta]) -> Vec<Event> {
        deltas
            .iter()
            .map(|d| {
                let delta = match d {
                    Delta::Content(text) => json!({"content": text}),
                    Delta::Refusal(text) => json!({"refusal": text}),
                    Delta::Call { id, name } => {
                        json!({"tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]})
                    }
                    Delta::Arguments(args) => json!({"tool_calls": [{"index": 0, "function": {"arguments": args}}]}),
                };
                self.chunk(delta, Value::Null)
            })
            .collect()
    }

    fn finish(&mut self, out: &Output) -> Vec<Event> {
        let mut events = vec![self.chunk(json!({}), json!(out.finish_reason))];
        if self.usage_in_stream {
            let last = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                              "system_fingerprint": null, "choices": [], "usage": usage(out)});
            events.push(Event::default().data(last.to_string()));
        }
        events.push(Event::default().data("[DONE]"));
        events
    }
}
