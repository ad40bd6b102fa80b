//! The real `strictly serve` binary stopped under load: spawn it on a loopback port, send a
//! bounded, staggered load, and signal the process (`kill -9`, SIGTERM) in the middle of it.
//! Every request ends (the client has a timeout), so the load stops by itself.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Spawns `strictly serve` with `args` (after `serve`) and `envs`, in `dir`, with
/// `RUST_LOG=warn`; waits for its "listening on" line and its `/readyz`. The child and its
/// base URL.
pub fn spawn_serve(dir: &Path, args: &[&std::ffi::OsStr], envs: &[(&str, &std::ffi::OsStr)]) -> (Child, String) {
    std::fs::create_dir_all(dir).unwrap();
    let mut child = crate::common::strictly_command()
        .arg("serve")
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn strictly serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "tests only use loopback: {base}");
    super::rt().block_on(wait_ready(&base));
    (child, base)
}

/// Waits (60 s at most) until `base`'s `/readyz` answers 200.
pub async fn wait_ready(base: &str) {
    let started = Instant::now();
    while reqwest::get(format!("{base}/readyz")).await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(60), "{base} never got ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `signal` (`-9`, `-TERM`, ...) to `pid` with `kill`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill {signal} {pid}: {status}");
}

/// Starts request `i` (`send(i)`) at `i * gap` for `i` in `0..n`, sends `sig` to `pid` at
/// `signal_at`, and returns every request's result, in order.
pub async fn load_then_signal<T, F, Fut>(n: usize, gap: Duration, send: F, signal_at: Duration, pid: u32, sig: &str) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let started = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let request = send(i);
            tokio::spawn(async move {
                tokio::time::sleep_until(started + gap * i as u32).await;
                request.await
            })
        })
        .collect();
    tokio::time::sleep_until(started + signal_at).await;
    signal(pid, sig);
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("a load task panicked"));
    }
    out
}
