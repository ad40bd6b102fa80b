//! The OpenAI backend's own overhead per request, without the network: build the request body
//! (the deployment schema, wrapped), then read a reply (parse, unwrap, validate with the
//! jsonschema crate, price), for each wire mode. Target: under 1 ms per request.
//!
//! ```sh
//! cargo bench --bench openai_backend
//! ```
//!
//! The anchor, in the same run: `serde_json::from_str` of the same reply body alone, so the
//! figures can be read as a ratio to plain JSON parsing on whatever machine runs them.

use std::path::Path;
use std::time::Instant;

use criterion::Criterion;
use serde_json::{json, Value};
use strictly::backend::openai::OpenAiBackend;
use strictly::backend::{OpenAiSettings, Price, SchemaSpec, WireMode};
use strictly::chat::{ChatMessage, Role};
use strictly::routing::{deployment_schema, RoutingConfig};

/// A reply body of `mode` carrying `text`, in the API's shape (as OpenAI documents it).
fn reply(mode: WireMode, text: &str) -> Value {
    let usage_chat =
        json!({"prompt_tokens": 412, "completion_tokens": 38, "total_tokens": 450, "prompt_tokens_details": {"cached_tokens": 256}});
    match mode {
        WireMode::Responses => json!({
            "id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-4o-mini",
            "output": [{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": 412, "output_tokens": 38, "total_tokens": 450, "input_tokens_details": {"cached_tokens": 256}}
        }),
        WireMode::Tool => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null, "message": {"role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "support_route", "arguments": text}}]}}],
            "usage": usage_chat
        }),
        _ => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null, "message": {"role": "assistant", "content": text, "refusal": null}}],
            "usage": usage_chat
        }),
    }
}

fn main() {
    let config = RoutingConfig::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml")).unwrap();
    let spec = SchemaSpec { name: "support_route".into(), schema: deployment_schema(&config) };
    let messages = vec![
        ChatMessage { role: Role::System, content: "You route customer-support messages. ".repeat(40) },
        ChatMessage { role: Role::User, content: "I was charged twice for order 1182, please sort it out".into() },
    ];
    let output = r#"{"value":{"action":"handoff_team","assignTo":null,"assignTeam":"54515931","reason":"double charge on an order","confidence":0.92}}"#;
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    let mut summary = Vec::new();
    for mode in [WireMode::Responses, WireMode::Chat, WireMode::Tool] {
        let mut settings = OpenAiSettings { base_url: Some("http://127.0.0.1:1/v1".into()), mode, ..OpenAiSettings::default() };
        settings.prices.insert(settings.model.clone(), Price { input: 0.15, cached_input: Some(0.075), output: 0.6 });
        let backend = OpenAiBackend::new(settings, Some("sk-bench".into())).unwrap();
        let validator = backend.check_schema(&spec).unwrap();
        let body_text = reply(mode, output).to_string();
        let round = || {
            let started = Instant::now();
            let (_, body) = backend.request_body(&messages, &spec);
            let request = serde_json::to_vec(&body).unwrap();
            let reply: Value = serde_json::from_str(&body_text).unwrap();
            let out = backend.interpret(&reply, &spec, &validator, started).unwrap();
            (request.len(), out)
        };
        assert!(matches!(round().1, strictly::backend::Reply::Json { .. }), "the canned reply is valid");
        c.bench_function(&format!("openai_backend/{}/request+reply", mode.as_str()), |b| b.iter(round));
        c.bench_function(&format!("openai_backend/{}/anchor_parse_reply_only", mode.as_str()), |b| {
            b.iter(|| serde_json::from_str::<Value>(&body_text).unwrap())
        });
        // A plain-timer figure for the summary line (criterion's own report is above).
        let n = 2000;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(round());
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(serde_json::from_str::<Value>(&body_text).unwrap());
        }
        let anchor = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        summary.push(format!(
            "{:<9} {per:>7.1} µs per request ({:.1}x the anchor, parsing the reply alone: {anchor:.1} µs)",
            mode.as_str(),
            per / anchor
        ));
    }
    c.final_summary();
    println!("\nOpenAI backend overhead (build + serialize the request, parse + unwrap + validate + price the reply):");
    for line in summary {
        println!("  {line}");
    }
}
