//! llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on a loopback
//! port with the default GGUF, for tests that need a real third-party implementation.
//!
//! The venv is `STRICTLY_BENCH_VENV`, else `.venv-bench` in the project; when it lacks
//! llama-cpp-python's server, `benches/llamacpp/setup.sh` creates it (a source build of
//! llama.cpp: 10 to 20 minutes on 2 cores, once). The server is stopped on drop, pass or fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv's python, created by the project's setup script when needed.
pub fn venv_python() -> PathBuf {
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

/// The running server; killed on drop.
pub struct LlamaServer {
    child: Child,
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on a free port with `model` and waits until it answers (2 minutes at most).
pub fn start(model: &Path) -> LlamaServer {
    let python = venv_python();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::env::temp_dir().join(format!("strictly-llamacpp-{}-{port}.log", std::process::id()));
    let child = Command::new(python)
        .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--port", &port.to_string(), "--n_threads", "2", "--n_ctx", "2048", "--model"])
        .arg(model)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the venv's python starts");
    let server = LlamaServer { child, base_url: format!("http://127.0.0.1:{port}/v1") };
    let started = Instant::now();
    // Ready when /v1/models answers: a plain HTTP/1.0 request, no client library needed.
    let ready = || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET /v1/models HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.ends_with(b"200")
    };
    while !ready() {
        assert!(started.elapsed() < Duration::from_secs(120), "llama_cpp.server did not start; log: {}", std::fs::read_to_string(&log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}
