//! The OpenAI backend against a real third-party implementation: llama-cpp-python's
//! OpenAI-compatible server (`python -m llama_cpp.server`) on 127.0.0.1 with the default GGUF.
//!
//! The venv is `STRICTLY_BENCH_VENV`, else `.venv-bench` in the project; when it has no
//! llama-cpp-python, `benches/llamacpp/setup.sh` creates it (a source build of llama.cpp: 10 to
//! 20 minutes on 2 cores, once). The server is stopped when the test ends, pass or fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strictly::backend::openai::OpenAiBackend;
use strictly::backend::{Backend, BackendError, OpenAiSettings, Reply, SchemaSpec, WireMode};
use strictly::chat::{ChatMessage, Role};
use strictly::routing::{deployment_schema, RoutingConfig};

/// The venv's python, created by the project's setup script when needed.
fn venv_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var_os("STRICTLY_BENCH_VENV").map(PathBuf::from).unwrap_or_else(|| root.join(".venv-bench"));
    let python = venv.join("bin/python");
    let ready = Command::new(&python).args(["-c", "import llama_cpp.server, uvicorn, fastapi"]).status().is_ok_and(|s| s.success());
    if !ready {
        let out = Command::new("bash").arg(root.join("benches/llamacpp/setup.sh")).env("VENV", &venv).output().expect("bash runs");
        assert!(out.status.success(), "setup.sh failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    python
}

/// The server process, killed on drop.
struct LlamaServer {
    child: Child,
    base: String,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> LlamaServer {
    let python = venv_python();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::env::temp_dir().join(format!("strictly-llamacpp-{}.log", std::process::id()));
    let child = Command::new(python)
        .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--port", &port.to_string(), "--n_threads", "2", "--n_ctx", "2048", "--model"])
        .arg(common::model_path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = LlamaServer { child, base: format!("http://127.0.0.1:{port}") };
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    strictly::backend::openai::install_crypto_provider();
    let client = reqwest::Client::new();
    while runtime.block_on(client.get(format!("{}/v1/models", server.base)).send()).map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(120), "llama_cpp.server did not start; log: {}", std::fs::read_to_string(&log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}

fn backend(base: &str, mode: WireMode, max_tokens: u32) -> OpenAiBackend {
    let s = OpenAiSettings {
        base_url: Some(format!("{base}/v1")),
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
    let server = start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = RoutingConfig::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml")).unwrap();
    let spec = SchemaSpec { name: "support_route".into(), schema: deployment_schema(&config) };
    let oracle = jsonschema::validator_for(&spec.schema).unwrap();
    let messages = vec![
        ChatMessage { role: Role::System, content: "Route the customer's message to a team. Answer in JSON.".into() },
        ChatMessage { role: Role::User, content: "I was charged twice for order 1182".into() },
    ];

    // Compat: `{"type": "json_object", "schema": ...}`; llama.cpp turns the schema into a grammar.
    let reply = runtime.block_on(backend(&server.base, WireMode::Compat, 200).complete(&messages, &spec));
    match reply {
        Ok(Reply::Json { value, usage, .. }) => {
            assert!(oracle.is_valid(&value), "{value}");
            assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
        }
        other => panic!("compat mode: {other:?}"),
    }

    // Chat's `json_schema` is a 500 there: a server error, retried once, then reported.
    match runtime.block_on(backend(&server.base, WireMode::Chat, 200).complete(&messages, &spec)) {
        Err(BackendError::Server { status: 500, attempts: 2, .. }) => {}
        other => panic!("json_schema mode: {other:?}"),
    }

    // Cut by the token cap: `finish_reason: length`, counted as a violation.
    match runtime.block_on(backend(&server.base, WireMode::Compat, 6).complete(&messages, &spec)) {
        Err(e @ BackendError::Truncated { .. }) => assert!(e.is_violation() && e.kind() == "truncated", "{e}"),
        other => panic!("truncated: {other:?}"),
    }
    drop(server);
}
