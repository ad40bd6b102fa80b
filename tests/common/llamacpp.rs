//! llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on a loopback
//! port with the default GGUF, for tests that need a real third-party implementation.
//!
//! The venv is `STRICTLY_BENCH_VENV`, else `.venv-bench` in the project. `benches/llamacpp/setup.sh`
//! creates it when needed (a source build of llama.cpp: about 3 minutes on 2 cores, once) and
//! checks on every run that its build decodes on this CPU, rebuilding it more conservatively
//! when it does not. The server is stopped on drop, pass or fail; a server that died says how
//! (its exit status or signal, and the tail of its log) through [`LlamaServer::report`].
#![allow(dead_code)]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The venv's python, set up (and smoke-tested with `model`) by the project's script once per
/// test binary.
pub fn venv_python(model: &Path) -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let venv = std::env::var_os("STRICTLY_BENCH_VENV").map(PathBuf::from).unwrap_or_else(|| root.join(".venv-bench"));
            let out = Command::new("bash")
                .arg(root.join("benches/llamacpp/setup.sh"))
                .env("VENV", &venv)
                .env("STRICTLY_MODEL", model)
                .output()
                .expect("bash runs");
            let said = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "benches/llamacpp/setup.sh failed:\n{said}");
            // Which build of llama.cpp these tests run against, and why.
            if let Some(kept) = said.lines().find(|l| l.contains("kept the")) {
                eprintln!("{kept}");
            }
            venv.join("bin/python")
        })
        .clone()
}

/// How a child process ended, in words: `exit code 1`, or `signal 4 (SIGILL)`.
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("signal {sig} ({})", signal_name(sig)),
        _ => status.to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => "SIGILL: an instruction this CPU or kernel does not allow",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => "see `kill -l`",
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The running server; killed on drop.
pub struct LlamaServer {
    child: Mutex<Child>,
    log: PathBuf,
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
}

impl LlamaServer {
    /// How the server ended, if it has.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    /// The server's state for a failure message: running or how it died, and its log's tail.
    pub fn report(&self) -> String {
        let state = match self.exited() {
            Some(status) => format!("llama_cpp.server DIED with {}", describe_exit(status)),
            None => "llama_cpp.server is still running".to_string(),
        };
        format!("{state}; the last lines of its log ({}):\n{}", self.log.display(), tail(&self.log, 30))
    }

    /// Panics with [`LlamaServer::report`] unless the server is still running.
    pub fn assert_alive(&self) {
        assert!(self.exited().is_none(), "{}", self.report());
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Starts the server on a free port with `model` and waits until it answers (2 minutes at most).
pub fn start(model: &Path) -> LlamaServer {
    let python = venv_python(model);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::env::temp_dir().join(format!("strictly-llamacpp-{}-{port}.log", std::process::id()));
    let child = Command::new(python)
        .args([
            "-m",
            "llama_cpp.server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--n_threads",
            "2",
            "--n_ctx",
            "2048",
            "--model",
        ])
        .arg(model)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the venv's python starts");
    let server = LlamaServer { child: Mutex::new(child), log, base_url: format!("http://127.0.0.1:{port}/v1") };
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
        server.assert_alive();
        assert!(started.elapsed() < Duration::from_secs(120), "llama_cpp.server did not start in 120 s; {}", server.report());
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}
