//! Load bench of `strictly serve`'s webhook: `cargo bench --bench serve_load`.
//!
//! Spawns the real binary on 127.0.0.1 (only), waits until it is ready, then:
//! 1. example-decided messages, open loop at `RATE` req/s (default 50) for `SECS` s (default 20);
//! 2. model-decided messages, closed loop with 1 client, then 4 clients, `MODEL_SECS` s each;
//! 3. example-decided messages, closed loop with 16 clients for 10 s (the ceiling).
//!
//! For each: p50/p95/p99 latency, req/s, statuses, decisions by path. Then the server's RSS
//! (idle and peak, from /proc), panics in its stderr, and whether every 200 has exactly one
//! audit line (lost decisions). Environment: RATE, SECS, MODEL_SECS, STRICTLY_MODEL.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

const EXAMPLE_DECIDED: &[&str] = &[
    "I want a refund for order 1234, it was broken",
    "my card got charged twice for the same order",
    "how do i reset my password",
    "where is my order 5573",
    "i want to talk to someone, not a machine",
    "do you take PayPal",
    "what will the weather be like tomorrow",
    "cancel order 4412",
];

/// Messages the examples' vote is unsure of (confidence below `[vote] decide_at`), so the model
/// decides them.
const MODEL_DECIDED: &[&str] = &[
    "my discount didn't apply",
    "I need help with my account and my order",
    "the promo code says it expired but it shouldn't have",
];

struct Outcome {
    latency: Duration,
    status: u16,
    key: String,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn report(name: &str, outcomes: &[Outcome], wall: Duration) {
    let mut lat: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    lat.sort();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for o in outcomes {
        *statuses.entry(o.status).or_default() += 1;
    }
    println!(
        "{name}: {} requests in {:.1} s = {:.1} req/s; latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms; statuses {:?}",
        outcomes.len(),
        wall.as_secs_f64(),
        outcomes.len() as f64 / wall.as_secs_f64(),
        pct(&lat, 50.0),
        pct(&lat, 95.0),
        pct(&lat, 99.0),
        pct(&lat, 100.0),
        statuses
    );
}

async fn send(http: &reqwest::Client, base: &str, key: String, message: &str) -> Outcome {
    let body = json!({"botId": "bench", "key": key, "from": "u", "message": message, "groupId": 1, "contentType": "0", "applicationKey": "a", "source": "web", "createdAt": 0});
    let started = Instant::now();
    let status = match http.post(format!("{base}/kommunicate/webhook")).json(&body).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes().await;
            s
        }
        Err(_) => 0,
    };
    Outcome { latency: started.elapsed(), status, key }
}

async fn open_loop(http: &reqwest::Client, base: &str, tag: &str, messages: &'static [&'static str], rate: f64, secs: f64) -> (Vec<Outcome>, Duration) {
    let n = (rate * secs) as usize;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let at = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let (http, base) = (http.clone(), base.to_owned());
        let key = format!("{tag}-{i}");
        tasks.push(tokio::spawn(async move { send(&http, &base, key, messages[i % messages.len()]).await }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    (out, started.elapsed())
}

async fn closed_loop(http: &reqwest::Client, base: &str, tag: &str, messages: &'static [&'static str], clients: usize, secs: f64) -> (Vec<Outcome>, Duration) {
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(secs);
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, base, tag, counter) = (http.clone(), base.to_owned(), tag.to_owned(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < end {
                let i = counter.fetch_add(1, Ordering::SeqCst) as usize;
                out.push(send(&http, &base, format!("{tag}-{i}"), messages[i % messages.len()]).await);
            }
            out
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await.unwrap());
    }
    (out, started.elapsed())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // reqwest is built without a TLS provider of its own (feature `openai`): install ring's.
    #[cfg(feature = "openai")]
    strictly::backend::openai::install_crypto_provider();
    let rate: f64 = env_or("RATE", 50.0);
    let secs: f64 = env_or("SECS", 20.0);
    let model_secs: f64 = env_or("MODEL_SECS", 20.0);
    let dir = std::env::temp_dir().join(format!("strictly-serve-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stderr_path = dir.join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_strictly"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml"))
        .env("RUST_LOG", "warn")
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("spawn strictly serve");
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").expect("listening line").to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "the bench only targets loopback: {base}");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let peak = Arc::new(AtomicU64::new(0));
    let all = rt.block_on(async {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(64).build().unwrap();
        while http.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16()).ok() != Some(200) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("idle RSS after warm-up: {:.0} MB", rss_kb(pid) as f64 / 1024.0);
        let p = peak.clone();
        let sampler = tokio::spawn(async move {
            loop {
                p.fetch_max(rss_kb(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut all = Vec::new();
        let (o, w) = open_loop(&http, &base, "ex", EXAMPLE_DECIDED, rate, secs).await;
        report(&format!("example-decided, open loop {rate} req/s"), &o, w);
        all.extend(o);
        let (o, w) = closed_loop(&http, &base, "m1", MODEL_DECIDED, 1, model_secs).await;
        report("model-decided, 1 client", &o, w);
        all.extend(o);
        let (o, w) = closed_loop(&http, &base, "m4", MODEL_DECIDED, 4, model_secs).await;
        report("model-decided, 4 clients (queue 4)", &o, w);
        all.extend(o);
        let (o, w) = closed_loop(&http, &base, "ex16", EXAMPLE_DECIDED, 16, 10.0).await;
        report("example-decided, 16 clients closed loop", &o, w);
        all.extend(o);
        sampler.abort();
        println!("idle RSS after load: {:.0} MB", rss_kb(pid) as f64 / 1024.0);
        all
    });
    println!("peak RSS under load: {:.0} MB", peak.load(Ordering::Relaxed) as f64 / 1024.0);
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let audit = std::fs::read_to_string(dir.join("logs/audit.jsonl")).unwrap_or_default();
    let mut lines: HashMap<String, usize> = HashMap::new();
    let mut paths: HashMap<String, usize> = HashMap::new();
    for l in audit.lines() {
        let v: Value = serde_json::from_str(l).expect("whole audit lines");
        *lines.entry(v["id"].as_str().unwrap_or("").to_owned()).or_default() += 1;
        let rules = v["rules"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default();
        *paths.entry(if rules.is_empty() { "model".into() } else { rules }).or_default() += 1;
    }
    let ok: Vec<&Outcome> = all.iter().filter(|o| o.status == 200).collect();
    let lost = ok.iter().filter(|o| lines.get(&o.key) != Some(&1)).count();
    println!("decisions by rules: {paths:?}");
    println!(
        "{} answered, {} lost decisions (answered without exactly one audit line), {} panics in the server log, exit {:?}",
        ok.len(),
        lost,
        stderr.matches("panicked").count(),
        status.code()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
