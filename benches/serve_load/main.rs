//! Load bench of `strictly serve`'s webhook: `cargo bench --bench serve_load`.
//!
//! Spawns the release binary on 127.0.0.1 (only), the example routing config with the local
//! model and the vote by meaning, and drives Kommunicate webhook calls at it. In one run:
//!
//! 1. **The stores.** A throwaway PostgreSQL cluster (`initdb` in a temporary directory, the
//!    same code as the tests' `tests/common/pg.rs`). Then one replica with the embedded store,
//!    then one with the PostgreSQL store, each driven with example-decided calls, open loop
//!    (each call sent when due, answered or not) at each rate of `RATES` (default
//!    50,100,150,200 req/s), `COUNT` calls per rate (default 1500). Then two replicas sharing
//!    PostgreSQL, the client alternating between them, at `PAIR_RATE` (default 100) req/s.
//! 2. **The model lane** (on the embedded replica, skipped with `MODEL_SECS=0`): model-decided
//!    calls, closed loop with 1 client, then 4, `MODEL_SECS` s each (default 20); and the
//!    example-decided ceiling, 16 clients closed loop for 10 s.
//!
//! Per run: p50/p95/p99/max latency (from the call's due time to the whole reply, so the
//! store's commit is in it), answered and non-200 calls; after each replica stops, its records
//! read back from the store (the audit file, or the bench's own SQL): records, lost (answered
//! without a record) and duplicated (a key with more than one record), and the store's commit
//! time from the replica's `/metrics`. Then a table, and for
//! each store the first rate whose p99 passes 50 ms. RSS (idle, peak) and panics in the
//! server's stderr are printed too. When PostgreSQL cannot start, the bench says why and
//! reports the embedded store alone. Environment: RATES, COUNT, PAIR_RATE, MODEL_SECS,
//! STRICTLY_MODEL.

mod client;
#[allow(dead_code)]
#[path = "../../tests/common/pg.rs"]
mod pg;
mod replica;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use client::{closed_loop, open_loop, percentiles, report, Run};
use replica::{embedded_records, postgres_records, rss_kb, Records, Replica};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
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
const MODEL_DECIDED: &[&str] =
    &["my discount didn't apply", "I need help with my account and my order", "the promo code says it expired but it shouldn't have"];

/// One row of the table.
struct Row {
    store: String,
    replicas: usize,
    rate: f64,
    sent: usize,
    answered: usize,
    non_200: usize,
    ms: [f64; 4],
    records: usize,
    lost: usize,
    duplicated: usize,
    paths: std::collections::BTreeMap<String, usize>,
    lag_ms: f64,
}

impl Row {
    fn new(store: &str, replicas: usize, rate: f64, run: &Run, records: &Records) -> Row {
        let mut row = Row {
            store: store.to_owned(),
            replicas,
            rate,
            sent: run.outcomes.len(),
            answered: 0,
            non_200: 0,
            ms: percentiles(&run.outcomes),
            records: 0,
            lost: 0,
            duplicated: 0,
            paths: Default::default(),
            lag_ms: run.max_send_lag.as_secs_f64() * 1e3,
        };
        for o in &run.outcomes {
            let found = records.get(&o.key).map_or(&[][..], Vec::as_slice);
            if o.status == 200 {
                row.answered += 1;
                row.lost += usize::from(found.is_empty());
            } else {
                row.non_200 += 1;
            }
            row.records += found.len();
            row.duplicated += usize::from(found.len() > 1);
            for p in found {
                *row.paths.entry(p.clone()).or_default() += 1;
            }
        }
        row
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// Samples `pid`'s RSS every 100 ms into the returned peak, until the task is aborted.
fn sample_rss(pid: u32) -> (tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
    let peak = Arc::new(AtomicU64::new(0));
    let p = peak.clone();
    let task = tokio::spawn(async move {
        loop {
            p.fetch_max(rss_kb(pid), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (task, peak)
}

/// Open-loop runs at each rate against one replica; the runs by rate.
async fn rate_steps(http: &reqwest::Client, r: &Replica, tag: &str, rates: &[f64], count: usize) -> Vec<(f64, Run)> {
    let mut runs = Vec::new();
    for &rate in rates {
        let run = open_loop(http, std::slice::from_ref(&r.base), &format!("{tag}-{rate}"), EXAMPLE_DECIDED, rate, count).await;
        report(&format!("{tag}: example-decided, open loop {rate} req/s"), &run);
        runs.push((rate, run));
        // Let the replica drain what is left before the next step.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    runs
}

async fn stopped(name: &str, r: Replica) {
    match r.commit_time().await {
        Some((writes, mean, p99)) => println!(
            "{name}: store commit (strictly_record_write_seconds) mean {mean:.2} ms, p99 at most {p99:.1} ms, over {writes} writes"
        ),
        None => println!("{name}: no commit time in /metrics"),
    }
    let (code, panics) = r.stop();
    println!("{name}: exit {code:?} on SIGTERM, {panics} panics in its stderr");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // reqwest is built without a TLS provider of its own (feature `openai`): install ring's.
    #[cfg(feature = "openai")]
    strictly::backend::openai::install_crypto_provider();
    let rates: Vec<f64> = std::env::var("RATES")
        .unwrap_or_else(|_| "50,100,150,200".into())
        .split(',')
        .map(|r| r.trim().parse().expect("RATES: comma-separated numbers"))
        .collect();
    let count: usize = env_or("COUNT", 1500);
    let pair_rate: f64 = env_or("PAIR_RATE", 100.0);
    let model_secs: f64 = env_or("MODEL_SECS", 20.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|m| m.trim().to_owned()))
        .unwrap_or_default();
    println!(
        "machine: {} cores, {cpu}; load average at start {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let root = std::env::temp_dir().join(format!("strictly-serve-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();

    // PostgreSQL first: when it cannot start, say why, and still measure the embedded store.
    let pg = std::panic::catch_unwind(|| pg::Postgres::start("serve-load")).map_err(|e| {
        e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "unknown".into())
    });

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let rows = rt.block_on(async {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(256).build().unwrap();
        let mut rows = Vec::new();

        let dir = root.join("embedded");
        let r = Replica::start(&dir, None).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("embedded replica: idle RSS after warm-up {:.0} MB", rss_kb(r.pid()) as f64 / 1024.0);
        let (sampler, peak) = sample_rss(r.pid());
        let runs = rate_steps(&http, &r, "embedded", &rates, count).await;
        if model_secs > 0.0 {
            let run = closed_loop(&http, &r.base, "m1", MODEL_DECIDED, 1, model_secs).await;
            report("model-decided, 1 client", &run);
            let run = closed_loop(&http, &r.base, "m4", MODEL_DECIDED, 4, model_secs).await;
            report("model-decided, 4 clients (queue 4)", &run);
            let run = closed_loop(&http, &r.base, "ex16", EXAMPLE_DECIDED, 16, 10.0).await;
            report("example-decided, 16 clients closed loop", &run);
        }
        sampler.abort();
        println!(
            "embedded replica: peak RSS {:.0} MB, idle after load {:.0} MB",
            peak.load(Ordering::Relaxed) as f64 / 1024.0,
            rss_kb(r.pid()) as f64 / 1024.0
        );
        stopped("embedded replica", r).await;
        let records = embedded_records(&dir);
        rows.extend(runs.iter().map(|(rate, run)| Row::new("embedded", 1, *rate, run, &records)));
        println!("load average after the embedded store: {}", load_average());

        match &pg {
            Err(why) => println!("PostgreSQL: not measured, the cluster did not start: {why}"),
            Ok(pg) => {
                let url = pg.url();
                let r = Replica::start(&root.join("postgres"), Some(&url)).await;
                let (sampler, peak) = sample_rss(r.pid());
                let runs = rate_steps(&http, &r, "postgres", &rates, count).await;
                sampler.abort();
                println!("postgres replica: peak RSS {:.0} MB", peak.load(Ordering::Relaxed) as f64 / 1024.0);
                stopped("postgres replica", r).await;

                let (a, b) =
                    (Replica::start(&root.join("pair-a"), Some(&url)).await, Replica::start(&root.join("pair-b"), Some(&url)).await);
                let pair = open_loop(&http, &[a.base.clone(), b.base.clone()], "pair", EXAMPLE_DECIDED, pair_rate, count).await;
                report(&format!("two replicas, one PostgreSQL: example-decided, open loop {pair_rate} req/s"), &pair);
                stopped("replica a", a).await;
                stopped("replica b", b).await;

                let db = pg.client().await;
                let records = postgres_records(&db).await;
                rows.extend(runs.iter().map(|(rate, run)| Row::new("PostgreSQL", 1, *rate, run, &records)));
                rows.push(Row::new("PostgreSQL", 2, pair_rate, &pair, &records));
                println!("load average after PostgreSQL: {}", load_average());
            }
        }
        rows
    });

    println!();
    println!("| store | replicas | rate | sent | answered | non-200 | p50 | p95 | p99 | max | records | lost | duplicated |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let [p50, p95, p99, max] = r.ms;
        println!(
            "| {} | {} | {} req/s | {} | {} | {} | {p50:.1} ms | {p95:.1} ms | {p99:.1} ms | {max:.1} ms | {} | {} | {} |",
            r.store, r.replicas, r.rate, r.sent, r.answered, r.non_200, r.records, r.lost, r.duplicated
        );
    }
    println!();
    for r in &rows {
        println!(
            "{} x{} at {} req/s: decided by {:?}; client behind schedule by {:.1} ms at most",
            r.store, r.replicas, r.rate, r.paths, r.lag_ms
        );
    }
    for store in ["embedded", "PostgreSQL"] {
        let steps: Vec<&Row> = rows.iter().filter(|r| r.store == store && r.replicas == 1).collect();
        match steps.iter().find(|r| r.ms[2] > 50.0) {
            Some(r) => println!("{store}: p99 first passes 50 ms at {} req/s ({:.1} ms)", r.rate, r.ms[2]),
            None if !steps.is_empty() => println!("{store}: p99 stays under 50 ms up to {} req/s", steps.last().unwrap().rate),
            None => {}
        }
    }
    drop(pg);
    let _ = std::fs::remove_dir_all(&root);
}
