//! The OpenAI backend against a real third-party implementation: llama-cpp-python's
//! OpenAI-compatible server (`python -m llama_cpp.server`) on 127.0.0.1 with the default GGUF.
//!
//! The venv is `STRICTLY_BENCH_VENV`, else `.venv-bench` in the project; when it has no
//! llama-cpp-python, `benches/llamacpp/setup.sh` creates it (a source build of llama.cpp: 10 to
//! 20 minutes on 2 cores, once) and checks that its build decodes on this CPU. The server is stopped when the test ends, pass or fail.

use crate::{common, llamacpp};
use std::path::Path;
use std::time::Duration;

use strictly::backend::openai::OpenAiBackend;
use strictly::backend::{Backend, BackendError, OpenAiSettings, Reply, SchemaSpec, WireMode};
use strictly::chat::{ChatMessage, Role};
use strictly::routing::{deployment_schema, RoutingConfig};

fn backend(base: &str, mode: WireMode, max_tokens: u32) -> OpenAiBackend {
    let s = OpenAiSettings {
        base_url: Some(base.to_string()),
        model: "smollm2".into(),
        mode,
        max_output_tokens: max_tokens,
        retries: 1,
        backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(120),
        total_timeout: Duration::from_secs(300),
        ..OpenAiSettings::default()
    };
    OpenAiBackend::new(s, None).unwrap()
}

#[test]
fn compat_mode_works_json_schema_is_a_500_and_truncation_is_a_violation() {
    let server = llamacpp::start(&common::model_path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = RoutingConfig::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml")).unwrap();
    let spec = SchemaSpec { name: "support_route".into(), schema: deployment_schema(&config) };
    let oracle = jsonschema::validator_for(&spec.schema).unwrap();
    let messages = vec![
        ChatMessage { role: Role::System, content: "Route the customer's message to a team. Answer in JSON.".into() },
        ChatMessage { role: Role::User, content: "I was charged twice for order 1182".into() },
    ];

    // Compat: `{"type": "json_object", "schema": ...}`; llama.cpp turns the schema into a grammar.
    let reply = runtime.block_on(backend(&server.base_url, WireMode::Compat, 200).complete(&messages, &spec));
    match reply {
        Ok(Reply::Json { value, usage, .. }) => {
            assert!(oracle.is_valid(&value), "{value}");
            assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
        }
        other => panic!("compat mode: {other:?}\n{}", server.report()),
    }

    // Chat's `json_schema` is a 500 there: a server error, retried once, then reported.
    match runtime.block_on(backend(&server.base_url, WireMode::Chat, 200).complete(&messages, &spec)) {
        Err(BackendError::Server { status: 500, attempts: 2, .. }) => {}
        other => panic!("json_schema mode: {other:?}\n{}", server.report()),
    }

    // Cut by the token cap: `finish_reason: length`, counted as a violation.
    match runtime.block_on(backend(&server.base_url, WireMode::Compat, 6).complete(&messages, &spec)) {
        Err(e @ BackendError::Truncated { .. }) => assert!(e.is_violation() && e.kind() == "truncated", "{e}"),
        other => panic!("truncated: {other:?}\n{}", server.report()),
    }
    // A server that died on a request would show only as transport errors above.
    server.assert_alive();
    drop(server);
}
