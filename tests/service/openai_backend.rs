//! The OpenAI backend against real servers on 127.0.0.1: `strictly serve`'s own
//! OpenAI-compatible endpoints (the real model behind them), a listener that never answers, a
//! port nobody listens on; the request bodies against the OpenAPI spec's request schemas; the
//! router over the backend. llama-cpp-python's server is in tests/openai_llamacpp.rs.

use crate::common;
use common::{model, rt};

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strictly::backend::local::LocalBackend;
use strictly::backend::openai::OpenAiBackend;
use strictly::backend::{AnyBackend, Backend, BackendError, OpenAiSettings, Price, Reply, SchemaSpec, WireMode};
use strictly::chat::{ChatMessage, Role};
use strictly::decode::DecodeOptions;
use strictly::routing::{deployment_schema, RoutingConfig};
use strictly::serve::openai::ChatModel;
use strictly::serve::{router_builder, start_with, ServeConfig, Server};

const KEY: &str = "backend-test-key";

fn routing_config() -> RoutingConfig {
    let mut c = RoutingConfig::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml")).unwrap();
    let dir = std::env::temp_dir().join(format!("strictly-openai-backend-{}", std::process::id()));
    c.audit.path = dir.join("audit.jsonl");
    c
}

/// A `strictly serve` with its OpenAI endpoints over the real model; `queue` model calls may wait.
fn start_server(queue: usize) -> (Server, String) {
    let options = DecodeOptions { max_tokens: 120, ..DecodeOptions::default() };
    let chat = ChatModel::new(LocalBackend::new(model(), options.clone()), options.clone());
    let id = chat.id().to_owned();
    let router = router_builder(routing_config(), LocalBackend::new(model(), options)).words_only().build().unwrap();
    let config = ServeConfig {
        listen: "127.0.0.1:0".into(),
        api_keys: vec![KEY.into()],
        queue,
        request_timeout: Duration::from_secs(120),
        ..ServeConfig::default()
    };
    (rt().block_on(start_with(router, Some(chat), config)).unwrap(), id)
}

/// One server for most tests.
fn server() -> &'static (Server, String) {
    static S: OnceLock<(Server, String)> = OnceLock::new();
    S.get_or_init(|| start_server(4))
}

fn settings(base: &str, model: &str, mode: WireMode) -> OpenAiSettings {
    let mut s = OpenAiSettings {
        base_url: Some(format!("{base}/v1")),
        model: model.into(),
        mode,
        max_output_tokens: 120,
        retries: 0,
        // Four helpers share two cores: a model call can take long.
        timeout: Duration::from_secs(120),
        total_timeout: Duration::from_secs(300),
        ..OpenAiSettings::default()
    };
    s.prices.insert(model.into(), Price { input: 0.15, cached_input: Some(0.075), output: 0.6 });
    s
}

fn backend(mode: WireMode, key: &str) -> OpenAiBackend {
    let (server, id) = server();
    OpenAiBackend::new(settings(&format!("http://{}", server.addr), id, mode), Some(key.into())).unwrap()
}

fn messages(text: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage { role: Role::System, content: "Route the customer's message. Answer in JSON.".into() },
        ChatMessage { role: Role::User, content: text.into() },
    ]
}

fn spec() -> SchemaSpec {
    SchemaSpec { name: "support_route".into(), schema: deployment_schema(&routing_config()) }
}

#[test]
fn responses_chat_and_tool_modes_against_strictly_serve() {
    let spec = spec();
    // The oracle: the jsonschema crate on the deployment schema, compiled here.
    let oracle = jsonschema::validator_for(&spec.schema).unwrap();
    for mode in [WireMode::Responses, WireMode::Chat, WireMode::Tool] {
        let b = backend(mode, KEY);
        let reply =
            rt().block_on(b.complete(&messages("I was charged twice for order 1182"), &spec)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let Reply::Json { value, usage, billing, scores, .. } = reply else { panic!("{mode:?}: a refusal") };
        assert!(oracle.is_valid(&value), "{mode:?}: {value}");
        assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0, "{mode:?}: {usage:?}");
        let billing = billing.expect("a remote reply is billed");
        let want = (usage.prompt_tokens as f64 * 0.15 + usage.completion_tokens as f64 * 0.6) / 1e6;
        assert!((billing.usd.unwrap() - want).abs() < 1e-12, "{mode:?}: {billing:?} vs {want}");
        // Chat Completions asks for logprobs and strictly serve returns them (from the masked
        // distribution), so the verdict is scored by token probabilities; the Responses API and
        // a tool call carry none, and nothing claims them.
        assert_eq!(scores.is_some(), mode == WireMode::Chat, "{mode:?}");
    }
}

#[test]
fn a_wrong_key_is_an_auth_error_and_is_not_retried() {
    let mut b = settings(&format!("http://{}", server().0.addr), &server().1, WireMode::Chat);
    b.retries = 3;
    let b = OpenAiBackend::new(b, Some("not-the-key".into())).unwrap();
    let started = Instant::now();
    match rt().block_on(b.complete(&messages("hello"), &spec())) {
        Err(BackendError::Auth { status: 401, message }) => assert!(message.contains("invalid API key"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "an auth error is not retried");
    // The key is in no error text.
    let e = rt().block_on(b.complete(&messages("hello"), &spec())).unwrap_err();
    assert!(
        !e.to_string().contains("not-the-key") && !format!("{e:?}").contains("not-the-key") && !format!("{b:?}").contains("not-the-key")
    );
}

/// A small schema: a few output tokens and a short prompt, so the queue test is about the queue.
fn tiny() -> SchemaSpec {
    SchemaSpec {
        name: "ack".into(),
        schema: json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": false}),
    }
}

#[test]
fn a_full_queue_is_a_429_with_retry_after_then_retried() {
    let (server, id) = start_server(1);
    let base = format!("http://{}", server.addr);
    let run = |retries: u32, n: usize| {
        let mut s = settings(&base, &id, WireMode::Chat);
        s.retries = retries;
        s.backoff = Duration::from_millis(50);
        // `{"ok":true}` is a few tokens; admission counts each call at its `max_tokens`, and
        // Retry-After is the queued work ahead, so a budget of 120 made each retry wait ~10 s.
        s.max_output_tokens = 16;
        s.total_timeout = Duration::from_secs(300);
        let b = Arc::new(OpenAiBackend::new(s, Some(KEY.into())).unwrap());
        rt().block_on(async {
            let calls: Vec<_> = (0..n)
                .map(|i| {
                    let b = b.clone();
                    tokio::spawn(async move { b.complete(&messages(&format!("where is my order {i}")), &tiny()).await })
                })
                .collect();
            let mut out = Vec::new();
            for c in calls {
                out.push(c.await.unwrap());
            }
            out
        })
    };
    // Six at once into a queue of one: some are turned away, with the server's Retry-After.
    let once = run(0, 6);
    let limited: Vec<_> = once
        .iter()
        .filter_map(|r| match r {
            Err(BackendError::RateLimit { attempts: 1, retry_after_ms: Some(ms), .. }) => Some(*ms),
            _ => None,
        })
        .collect();
    assert!(!limited.is_empty(), "{once:?}");
    assert!(limited.iter().all(|&ms| ms >= 1000), "Retry-After is whole seconds: {limited:?}");
    assert!(once.iter().all(|r| matches!(r, Ok(_) | Err(BackendError::RateLimit { .. }))), "{once:?}");
    // With retries honouring Retry-After, every call gets its answer.
    let retried = run(8, 3);
    assert!(retried.iter().all(Result::is_ok), "{retried:?}");
    rt().block_on(server.shutdown()).unwrap();
}

/// A listener that accepts and never answers.
fn silent_listener() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    (l, addr)
}

/// An address nobody listens on.
fn refused_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    addr
}

#[test]
fn a_timeout_and_a_refused_connection_are_typed_errors_within_the_bound() {
    let (_listener, silent) = silent_listener();
    let mut s = settings(&silent, "m", WireMode::Responses);
    s.timeout = Duration::from_millis(300);
    s.retries = 2;
    s.backoff = Duration::from_millis(10);
    let started = Instant::now();
    match rt().block_on(OpenAiBackend::new(s, None).unwrap().complete(&messages("hi"), &spec())) {
        Err(BackendError::Timeout { attempts: 3, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    // The total bound cuts the retries short.
    let mut s = settings(&silent, "m", WireMode::Responses);
    s.timeout = Duration::from_millis(400);
    s.retries = 50;
    s.total_timeout = Duration::from_secs(1);
    let started = Instant::now();
    assert!(matches!(
        rt().block_on(OpenAiBackend::new(s, None).unwrap().complete(&messages("hi"), &spec())),
        Err(BackendError::Timeout { .. })
    ));
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());

    let mut s = settings(&refused_address(), "m", WireMode::Chat);
    s.retries = 1;
    s.backoff = Duration::from_millis(10);
    match rt().block_on(OpenAiBackend::new(s, None).unwrap().complete(&messages("hi"), &spec())) {
        Err(BackendError::Transport { attempts: 2, message, .. }) => assert!(message.to_lowercase().contains("refused"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_router_turns_backend_errors_into_default_routing_audited() {
    let (_listener, silent) = silent_listener();
    let mut cases = vec![("timeout", silent), ("transport", refused_address())];
    for (kind, base) in cases.drain(..) {
        let mut config = routing_config();
        // Nothing but the model decides: no examples' vote to fall back on.
        config.vote.decide_at = None;
        config.vote.shortlist = None;
        config.rules.low_confidence_uses_examples = false;
        config.rules.out_of_scope_uses_examples = false;
        config.audit.path = std::env::temp_dir().join(format!("strictly-router-{kind}-{}", std::process::id())).join("audit.jsonl");
        let _ = std::fs::remove_file(&config.audit.path);
        let mut s = settings(&base, "m", WireMode::Responses);
        s.timeout = Duration::from_millis(200);
        let backend = AnyBackend::OpenAi(OpenAiBackend::new(s, Some("sk-secret-in-no-log".into())).unwrap());
        let router = strictly::routing::Router::builder(config.clone())
            .backend(backend)
            .words_only()
            .audit(config.audit.path.clone())
            .build()
            .unwrap();
        let job = router.screen("I was charged twice for order 1182").model_job.expect("the model is asked");
        let answer = rt().block_on(router.ask_model(&job));
        assert_eq!(answer.error_kind, Some(kind));
        let routed = rt().block_on(router.route("I was charged twice for order 1182", Some(&format!("m-{kind}")))).unwrap();
        assert_eq!(routed.decision.action, strictly::routing::Action::DefaultFallback, "{kind}");
        assert!(routed.answer.backend_error.is_some(), "{kind}");
        let audit = std::fs::read_to_string(&config.audit.path).unwrap();
        let line: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
        assert_eq!(line["id"], format!("m-{kind}"));
        assert_eq!(line["backend"], "openai");
        assert!(line["rules"].as_array().unwrap().contains(&json!("malformed_output")), "{line}");
        assert_eq!(line["backend_error"], kind, "{line}");
        assert!(!audit.contains("sk-secret-in-no-log"));
    }
}

/// The OpenAPI spec's components as JSON (PyYAML converts it once per run).
fn openapi_components() -> Value {
    let spec = common::shared().join("reference/openai/openapi.yaml.gz");
    let script = "import gzip, json, sys, yaml; d = yaml.safe_load(gzip.open(sys.argv[1])); json.dump({'components': d['components']}, sys.stdout, default=str)";
    let out = std::process::Command::new("python3").args(["-c", script]).arg(&spec).output().expect("python3 runs");
    assert!(out.status.success(), "PyYAML reads the spec: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_request_bodies_validate_against_the_openapi_request_schemas() {
    let components = openapi_components();
    let validator = |name: &str| {
        let mut root = components.clone();
        root["$ref"] = json!(format!("#/components/schemas/{name}"));
        jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let create_response = validator("CreateResponse");
    let create_chat = validator("CreateChatCompletionRequest");
    let spec = spec();
    for (mode, v) in [(WireMode::Responses, &create_response), (WireMode::Chat, &create_chat), (WireMode::Tool, &create_chat)] {
        let b = OpenAiBackend::new(settings("http://127.0.0.1:1", "gpt-4o-mini", mode), None).unwrap();
        let (path, body) = b.request_body(&messages("where is my parcel"), &spec);
        let errors: Vec<String> = v.iter_errors(&body).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{mode:?} {path}: {errors:?}");
        // The validators are not vacuous: a body with the wrong shape fails.
        let mut bad = body.clone();
        match mode {
            WireMode::Responses => bad["text"]["format"]["type"] = json!("json_schemas"),
            WireMode::Chat => bad["response_format"]["json_schema"] = json!("not an object"),
            _ => bad["tool_choice"] = json!({"type": "function"}),
        }
        assert!(!v.is_valid(&bad), "{mode:?}: the broken body passed");
    }
}
