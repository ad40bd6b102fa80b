//! The OpenAI endpoints' request layer over real HTTP: a field of the wrong type is OpenAI's
//! 400 naming the field (never axum's plain-text 422), a body that is not a JSON object is the
//! API's 400, the key is checked before the body, and fields this server does not know are
//! ignored, as OpenAI's clients send new ones.

use crate::common::rt;
use crate::openai::{model_id, server, KEY};

use std::time::Duration;

use serde_json::{json, Value};

/// A raw body to `path`, with the key when `key`, as `content_type`: the status, the
/// `Content-Type` of the answer and its body (JSON, or the text as a JSON string).
fn send(path: &str, body: impl Into<reqwest::Body>, key: bool, content_type: &str) -> (u16, String, Value) {
    let (server, _) = server();
    rt().block_on(async {
        let mut r = reqwest::Client::new()
            .post(format!("http://{}{path}", server.addr))
            .header("content-type", content_type)
            .body(body)
            .timeout(Duration::from_secs(120));
        if key {
            r = r.bearer_auth(KEY);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let kind = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let text = r.text().await.unwrap();
        (status, kind, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    })
}

fn post(path: &str, body: &Value) -> (u16, Value) {
    let (status, kind, body) = send(path, body.to_string(), true, "application/json");
    assert!(kind.starts_with("application/json"), "{kind}: {body}");
    (status, body)
}

/// `fields` merged into a minimal valid request of the endpoint at `path`.
fn request(path: &str, fields: Value) -> Value {
    let mut body = if path == "/v1/responses" {
        json!({"model": model_id(), "input": "hi"})
    } else {
        json!({"model": model_id(), "messages": [{"role": "user", "content": "hi"}]})
    };
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    body
}

const CHAT: &str = "/v1/chat/completions";
const RESPONSES: &str = "/v1/responses";

#[test]
fn a_field_of_the_wrong_type_is_a_400_naming_it() {
    // (endpoint, fields, param, the message or a part of it)
    let cases = [
        (CHAT, json!({"n": "x"}), "n", "n must be the integer 1 (one choice per request), not \"x\""),
        (CHAT, json!({"n": 2.0}), "n", "n must be the integer 1 (one choice per request), not 2.0"),
        (CHAT, json!({"n": 2}), "n", "n must be the integer 1 (one choice per request), not 2"),
        (CHAT, json!({"max_tokens": "10"}), "max_tokens", "max_tokens must be an integer from 1 to 4096"),
        (CHAT, json!({"max_completion_tokens": -1}), "max_completion_tokens", "max_completion_tokens must be an integer from 1 to 4096"),
        (CHAT, json!({"temperature": "hot"}), "temperature", "temperature must be from 0 to 2"),
        (CHAT, json!({"top_p": [1]}), "top_p", "top_p must be in (0, 1]"),
        (CHAT, json!({"seed": 1.5}), "seed", "seed must be an integer"),
        (CHAT, json!({"presence_penalty": "high"}), "presence_penalty", "presence_penalty must be a number"),
        (CHAT, json!({"stop": ["a", 1]}), "stop", "stop must be a string or up to 4 strings"),
        (CHAT, json!({"top_logprobs": "3", "logprobs": true}), "top_logprobs", "top_logprobs must be an integer from 0 to 20"),
        (CHAT, json!({"messages": "hi"}), "messages", "messages must be an array"),
        (CHAT, json!({"messages": [{"role": "user", "content": 5}]}), "messages", "content must be a string or an array of text parts"),
        (CHAT, json!({"messages": [{"role": 1, "content": "x"}]}), "messages", "every message needs a role"),
        (CHAT, json!({"response_format": {"type": "xml"}}), "response_format", "unknown format type `xml`"),
        (CHAT, json!({"response_format": "json"}), "response_format", "response_format"),
        (CHAT, json!({"stream": "yes"}), "stream", "stream"),
        (CHAT, json!({"tools": [{"type": "function", "function": {"name": 5}}]}), "tools", "tools[0]"),
        (CHAT, json!({"tool_choice": 3}), "tool_choice", "tool_choice"),
        (CHAT, json!({"model": 7}), "model", "model is required"),
        (RESPONSES, json!({"input": 5}), "input", "input must be a string or an array of items"),
        (RESPONSES, json!({"max_output_tokens": -1}), "max_output_tokens", "max_output_tokens must be an integer from 1 to 4096"),
        (RESPONSES, json!({"text": {"format": {"type": "yaml"}}}), "text.format", "unknown format type `yaml`"),
        (RESPONSES, json!({"previous_response_id": 7}), "previous_response_id", "previous_response_id is not supported"),
        (RESPONSES, json!({"instructions": ["be brief"]}), "instructions", "instructions"),
    ];
    for (path, fields, param, message) in cases {
        let (status, body) = post(path, &request(path, fields.clone()));
        assert_eq!(status, 400, "{path} {fields}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{fields}: {body}");
        assert_eq!(body["error"]["param"], param, "{fields}: {body}");
        let text = body["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{fields}: {text}");
    }
}

#[test]
fn a_body_that_is_not_a_json_object_is_the_apis_400() {
    let cases = [
        ("{\"model\": ", "the body is not JSON"),
        ("", "empty body; expected a JSON object"),
        ("  \n", "empty body; expected a JSON object"),
        ("[1, 2]", "expected a JSON object"),
        ("\"hi\"", "expected a JSON object"),
    ];
    for path in [CHAT, RESPONSES] {
        for (raw, message) in cases {
            let (status, kind, body) = send(path, raw, true, "application/json");
            assert_eq!(status, 400, "{raw:?}: {body}");
            assert!(kind.starts_with("application/json"), "{kind}");
            assert_eq!(body["error"]["type"], "invalid_request_error");
            assert!(body["error"]["message"].as_str().unwrap().starts_with(message), "{raw:?}: {body}");
        }
    }
    // The content type is not checked: JSON sent as text is read (and here refused for `n`).
    let (status, _, body) = send(CHAT, request(CHAT, json!({"n": 3})).to_string(), true, "text/plain");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "n");
    // Over the body limit (1 MiB in this server): a 413 in the same shape.
    let big = request(CHAT, json!({"padding": "x".repeat(1 << 20)})).to_string();
    let (status, kind, body) = send(CHAT, big, true, "application/json");
    assert_eq!(status, 413, "{body}");
    assert!(kind.starts_with("application/json"), "{kind}");
    assert_eq!(body["error"]["message"], format!("request body over {} bytes", 1 << 20));
}

#[test]
fn the_key_is_checked_before_the_body() {
    for path in [CHAT, RESPONSES] {
        for raw in ["not json", "{\"n\": \"x\"}"] {
            let (status, _, body) = send(path, raw, false, "application/json");
            assert_eq!(status, 401, "{raw}: {body}");
            assert_eq!(body["error"]["type"], "authentication_error");
        }
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let extra = json!({"metadata": {"ticket": "42"}, "user": "u-1", "service_tier": "auto", "parallel_tool_calls": false,
                       "a_field_from_next_year": {"nested": [1, 2, {"x": null}]}, "max_tokens": 4, "max_output_tokens": 4});
    let mut chat = request(CHAT, extra.clone());
    chat["messages"] =
        json!([{"role": "user", "name": "ann", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]);
    chat["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "n", "strict": true, "description": "a number", "schema": {"type": "integer"}}});
    let (status, body) = post(CHAT, &chat);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(serde_json::from_str::<Value>(content).unwrap().is_i64(), "{content}");
    let (status, body) = post(RESPONSES, &request(RESPONSES, extra));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "response");
    // The echo is the request as sent.
    assert_eq!(body["max_output_tokens"], 4);
}
