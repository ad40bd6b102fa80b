//! The load: Kommunicate webhook calls, open loop on a schedule or closed loop with N clients,
//! and the latency summary of a run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

/// One webhook call.
pub struct Outcome {
    /// From the time the call was due (open loop) or sent (closed loop) to the whole reply.
    pub latency: Duration,
    /// The HTTP status; 0 when no answer came (refused, reset, timed out).
    pub status: u16,
    /// The delivery's `key`, which is also its record's `id`.
    pub key: String,
    /// Why no answer came (status 0).
    pub error: Option<String>,
}

/// A run: its calls, its wall time, and how far behind schedule the client sent (open loop).
pub struct Run {
    pub outcomes: Vec<Outcome>,
    pub wall: Duration,
    pub max_send_lag: Duration,
}

/// The p-th percentile of sorted latencies, in ms.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// p50, p95, p99 and max of a run's latencies, in ms.
pub fn percentiles(outcomes: &[Outcome]) -> [f64; 4] {
    let mut lat: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    lat.sort();
    [pct(&lat, 50.0), pct(&lat, 95.0), pct(&lat, 99.0), pct(&lat, 100.0)]
}

/// One line for a run.
pub fn report(name: &str, run: &Run) {
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for o in &run.outcomes {
        *statuses.entry(o.status).or_default() += 1;
    }
    let mut errors: HashMap<&str, usize> = HashMap::new();
    for e in run.outcomes.iter().filter_map(|o| o.error.as_deref()) {
        *errors.entry(e).or_default() += 1;
    }
    let [p50, p95, p99, max] = percentiles(&run.outcomes);
    println!(
        "{name}: {} requests in {:.1} s = {:.1} req/s; latency p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; statuses {statuses:?}; client behind schedule by {:.1} ms at most",
        run.outcomes.len(),
        run.wall.as_secs_f64(),
        run.outcomes.len() as f64 / run.wall.as_secs_f64(),
        run.max_send_lag.as_secs_f64() * 1e3,
    );
    if !errors.is_empty() {
        println!("  no answer: {errors:?}");
    }
}

async fn send(http: &reqwest::Client, base: &str, key: String, message: &str, since: Instant) -> Outcome {
    let body = json!({"botId": "bench", "key": key, "from": "u", "message": message, "groupId": 1, "contentType": "0", "applicationKey": "a", "source": "web", "createdAt": 0});
    let answer = match http.post(format!("{base}/kommunicate/webhook")).json(&body).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            r.bytes().await.map(|_| s)
        }
        Err(e) => Err(e),
    };
    let (status, error) = match answer {
        Ok(s) => (s, None),
        // The source chain says which: refused, reset, closed before the reply, timed out.
        Err(e) => (
            0,
            Some(std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source()).last().map_or(e.to_string(), |e| e.to_string())),
        ),
    };
    Outcome { latency: since.elapsed(), status, key, error }
}

/// `n` calls at `rate` per second, call `i` due at `i / rate` s and sent then whether or not
/// earlier calls were answered, to `bases[i % bases.len()]` (several replicas: the client
/// alternates). Latency counts from the due time, so a client that falls behind shows in it.
pub async fn open_loop(http: &reqwest::Client, bases: &[String], tag: &str, messages: &'static [&'static str], rate: f64, n: usize) -> Run {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    let mut max_send_lag = Duration::ZERO;
    for i in 0..n {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        max_send_lag = max_send_lag.max(due.elapsed());
        let (http, base) = (http.clone(), bases[i % bases.len()].clone());
        let key = format!("{tag}-{i}");
        tasks.push(tokio::spawn(async move { send(&http, &base, key, messages[i % messages.len()], due).await }));
    }
    let mut outcomes = Vec::with_capacity(n);
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    Run { outcomes, wall: started.elapsed(), max_send_lag }
}

/// `clients` clients, each sending its next call when the last is answered, for `secs` s.
pub async fn closed_loop(
    http: &reqwest::Client,
    base: &str,
    tag: &str,
    messages: &'static [&'static str],
    clients: usize,
    secs: f64,
) -> Run {
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
                out.push(send(&http, &base, format!("{tag}-{i}"), messages[i % messages.len()], Instant::now()).await);
            }
            out
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.extend(t.await.unwrap());
    }
    Run { outcomes, wall: started.elapsed(), max_send_lag: Duration::ZERO }
}
