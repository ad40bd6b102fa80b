//! Several `strictly serve` replicas over one store: a real PostgreSQL started here, real
//! servers on loopback ports (in-process, or the spawned binary where a process must die), a
//! real HTTP client. Routing is examples-only (the example phrases decide every message), so
//! no model is needed. What was recorded is checked with the test's own SQL. Every load here is
//! bounded in requests and stops by itself.

use crate::common;
use common::rt;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strictly::backend::NoModel;
use strictly::routing::RoutingConfig;
use strictly::serve::{router_builder, start, ServeConfig, Server};
use strictly::store::StoreConfig;

use common::load::{load_then_signal, wait_ready};
use common::pg::Postgres;

/// Messages the example phrases route to different places.
const MESSAGES: [&str; 3] =
    ["I want a refund for order 1234, it was broken", "how do i reset my password", "where is my package, it has not arrived"];

fn body(key: &str, message: &str) -> Value {
    json!({"key": key, "message": message, "from": "customer-1", "groupId": "g-1", "applicationId": "app"})
}

/// An in-process examples-only server with its audit at `audit` and the store at `url`.
fn server(audit: &Path, url: Option<&str>, tweak: impl FnOnce(&mut ServeConfig)) -> Server {
    let mut routing = RoutingConfig::load(common::example_config()).unwrap();
    routing.audit.path = audit.to_owned();
    let mut config = ServeConfig {
        listen: "127.0.0.1:0".into(),
        store: StoreConfig { url: url.map(str::to_owned), ..StoreConfig::default() },
        ..ServeConfig::default()
    };
    tweak(&mut config);
    let server = rt().block_on(start(router_builder(routing, NoModel).words_only().build().unwrap(), config)).unwrap();
    rt().block_on(wait_ready(&format!("http://{}", server.addr)));
    server
}

async fn webhook(http: &reqwest::Client, base: &str, key: &str, message: &str) -> Option<(u16, Value)> {
    let r = http.post(format!("{base}/kommunicate/webhook")).json(&body(key, message)).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn rows_for(db: &tokio_postgres::Client, key: &str) -> i64 {
    db.query_one("SELECT count(*) FROM decisions WHERE message_id = $1", &[&key]).await.unwrap().get(0)
}

async fn duplicated(db: &tokio_postgres::Client) -> Vec<String> {
    let rows = db.query("SELECT message_id FROM decisions GROUP BY message_id HAVING count(*) > 1", &[]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[test]
fn the_same_key_sent_to_two_replicas_at_once_is_decided_once() {
    let pg = Postgres::start("two");
    let dir = common::temp_dir("fleet", "two");
    let a = server(&dir.join("a/audit.jsonl"), Some(&pg.url()), |_| {});
    let b = server(&dir.join("b/audit.jsonl"), Some(&pg.url()), |_| {});
    let (base_a, base_b) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
    rt().block_on(async {
        let http = client();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let key = format!("both-{i}");
            for base in [&base_a, &base_b] {
                let (http, base, key) = (http.clone(), base.clone(), key.clone());
                tasks.push(tokio::spawn(async move { (key.clone(), webhook(&http, &base, &key, MESSAGES[i % 3]).await) }));
            }
        }
        let mut replies: std::collections::HashMap<String, Vec<Value>> = Default::default();
        for t in tasks {
            let (key, answer) = t.await.unwrap();
            let (status, reply) = answer.expect("answered");
            assert_eq!(status, 200, "{reply}");
            replies.entry(key).or_default().push(reply);
        }
        let db = pg.client().await;
        for (key, r) in &replies {
            assert_eq!(r[0], r[1], "{key}: both replicas give the first answer");
            assert_eq!(rows_for(&db, key).await, 1, "{key}: one decision row");
        }
        let keys: i64 = db.query_one("SELECT count(*) FROM webhook_keys WHERE reply IS NOT NULL", &[]).await.unwrap().get(0);
        assert_eq!(keys, 20);
        assert!(duplicated(&db).await.is_empty());
    });
    rt().block_on(async { (a.shutdown().await, b.shutdown().await) }).0.unwrap();
}

/// A restarted replica answers a retried key with the first answer, even when the retry's
/// message would route elsewhere; for both stores.
#[test]
fn a_restarted_replica_answers_a_retried_key_with_the_first_answer() {
    let pg = Postgres::start("restart");
    for url in [None, Some(pg.url())] {
        let dir = common::temp_dir("fleet", if url.is_some() { "restart-pg" } else { "restart-embedded" });
        let audit = dir.join("audit.jsonl");
        let first = server(&audit, url.as_deref(), |_| {});
        let base = format!("http://{}", first.addr);
        let (_, reply) = rt().block_on(webhook(&client(), &base, "retried-1", MESSAGES[0])).unwrap();
        rt().block_on(first.shutdown()).unwrap();

        let second = server(&audit, url.as_deref(), |_| {});
        let base = format!("http://{}", second.addr);
        let (status, again) = rt().block_on(webhook(&client(), &base, "retried-1", MESSAGES[1])).unwrap();
        assert_eq!(status, 200);
        assert_eq!(again, reply, "store {url:?}: the retry gets the first answer");
        let (_, other) = rt().block_on(webhook(&client(), &base, "fresh-1", MESSAGES[1])).unwrap();
        assert_ne!(other, reply, "the two messages route differently, so the check above means something");
        let metrics = rt().block_on(async { reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap() });
        assert!(metrics.contains("strictly_webhook_replays_total 1"), "{metrics}");
        rt().block_on(second.shutdown()).unwrap();
        match &url {
            None => {
                let text = std::fs::read_to_string(&audit).unwrap();
                let ids: Vec<Value> = text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].clone()).collect();
                assert_eq!(ids, [json!("retried-1"), json!("fresh-1")]);
            }
            Some(_) => rt().block_on(async {
                let db = pg.client().await;
                assert_eq!(rows_for(&db, "retried-1").await, 1);
                assert!(!audit.exists(), "with PostgreSQL no audit file is written");
            }),
        }
    }
}

/// Spawns `strictly serve` (examples only) over the store; its base URL.
fn spawn_replica(dir: &Path, url: &str) -> (std::process::Child, String) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("serve.toml"), "deadline = \"3s\"\n[store]\nlease = \"1s\"\n").unwrap();
    let config = common::example_config();
    let args = ["--backend", "examples", "--words-only", "--listen", "127.0.0.1:0", "--server-config", "serve.toml", "--config"];
    let mut args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    args.push(config.as_os_str());
    common::load::spawn_serve(dir, &args, &[("STRICTLY_STORE_URL", std::ffi::OsStr::new(url))])
}

#[cfg(unix)]
#[test]
fn kill_9_of_a_replica_mid_load_loses_no_answered_decision() {
    let pg = Postgres::start("kill");
    let dir = common::temp_dir("fleet", "kill");
    let (mut a, base_a) = spawn_replica(&dir.join("a"), &pg.url());
    let (mut b, base_b) = spawn_replica(&dir.join("b"), &pg.url());
    let n = 120;
    let http = client();
    let send = |i: usize| {
        let (http, base) = (http.clone(), if i % 2 == 0 { base_a.clone() } else { base_b.clone() });
        async move {
            let key = format!("kill-{i}");
            let answer = webhook(&http, &base, &key, MESSAGES[i % 3]).await;
            (key, answer)
        }
    };
    let results = rt().block_on(load_then_signal(n, Duration::from_millis(5), send, Duration::from_millis(300), a.id(), "-9"));
    let _ = a.wait();
    let answered: Vec<&String> = results.iter().filter(|(_, a)| matches!(a, Some((200, _)))).map(|(k, _)| k).collect();
    let unanswered: Vec<&String> = results.iter().filter(|(_, a)| !matches!(a, Some((200, _)))).map(|(k, _)| k).collect();
    assert!(answered.len() > n / 2, "replica b answers its half: {} of {n}", answered.len());
    assert!(!unanswered.is_empty(), "the kill came mid-load");
    rt().block_on(async {
        let db = pg.client().await;
        for key in &answered {
            assert_eq!(rows_for(&db, key).await, 1, "{key} answered 200 but not recorded once");
        }
        // Kommunicate retries what got no answer; the survivor answers every one, taking over
        // claims the dead replica left (their lease is 1 s).
        let http = client();
        for key in &unanswered {
            let i: usize = key.trim_start_matches("kill-").parse().unwrap();
            let (status, _) = webhook(&http, &base_b, key, MESSAGES[i % 3]).await.expect("the survivor answers");
            assert_eq!(status, 200);
            assert_eq!(rows_for(&db, key).await, 1, "{key} retried but not recorded once");
        }
        assert!(duplicated(&db).await.is_empty(), "duplicates: {:?}", duplicated(&db).await);
        let total: i64 = db.query_one("SELECT count(*) FROM decisions", &[]).await.unwrap().get(0);
        assert_eq!(total, n as i64);
        eprintln!("kill -9: {} answered before, {} retried on the survivor, {total} rows, 0 duplicates", answered.len(), unanswered.len());
    });
    let _ = b.kill();
    let _ = b.wait();
}

#[test]
fn a_store_outage_mid_load_is_spooled_and_replayed_once() {
    let pg = Postgres::start("outage");
    let dir = common::temp_dir("fleet", "outage");
    let s = server(&dir.join("audit.jsonl"), Some(&pg.url()), |c| c.store.connect_timeout = Duration::from_secs(1));
    let base = format!("http://{}", s.addr);
    let n = 80;
    let http = client();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(rt().spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i as u64)).await;
            let key = format!("outage-{i}");
            (key.clone(), webhook(&http, &base, &key, MESSAGES[i % 3]).await)
        }));
    }
    std::thread::sleep(Duration::from_millis(400));
    pg.stop_server();
    std::thread::sleep(Duration::from_millis(500));
    let degraded: Value = rt().block_on(async { http.get(format!("{base}/readyz")).send().await.unwrap().json().await.unwrap() });
    std::thread::sleep(Duration::from_millis(300));
    pg.start_server();
    let results: Vec<_> = rt().block_on(async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(degraded["status"], "degraded", "{degraded}");
    assert!(degraded["reason"].as_str().unwrap().contains("wait in the spool"), "{degraded}");
    for (key, answer) in &results {
        assert!(matches!(answer, Some((200, _))), "{key}: {answer:?}");
    }
    rt().block_on(async {
        let http = client();
        let started = Instant::now();
        loop {
            let ready: Value = http.get(format!("{base}/readyz")).send().await.unwrap().json().await.unwrap();
            if ready["status"] == "ready" {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the spool never drained: {ready}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("strictly_spool_depth 0"), "{metrics}");
        let spooled =
            metrics.lines().find(|l| l.starts_with("strictly_record_writes_total{outcome=\"spooled\"}")).expect("some writes were spooled");
        let db = pg.client().await;
        for (key, _) in &results {
            assert_eq!(rows_for(&db, key).await, 1, "{key} answered but not recorded once");
        }
        assert!(duplicated(&db).await.is_empty());
        eprintln!("outage: {n} answered, {spooled}, every one recorded once");
    });
    rt().block_on(s.shutdown()).unwrap();
}

#[test]
fn route_answers_503_with_retry_after_when_nothing_can_record() {
    let pg = Postgres::start("full");
    let dir = common::temp_dir("fleet", "full");
    let s = server(&dir.join("audit.jsonl"), Some(&pg.url()), |c| {
        c.store.spool_max = 2;
        c.store.connect_timeout = Duration::from_secs(1);
    });
    let base = format!("http://{}", s.addr);
    pg.stop_server();
    rt().block_on(async {
        let http = client();
        let route = |i: usize| {
            let http = http.clone();
            let url = format!("{base}/v1/route");
            async move { http.post(url).json(&json!({"message": MESSAGES[0], "id": format!("r-{i}")})).send().await.unwrap() }
        };
        assert_eq!(route(0).await.status(), 200);
        assert_eq!(route(1).await.status(), 200);
        let full = route(2).await;
        assert_eq!(full.status(), 503);
        assert!(full.headers().get("retry-after").is_some());
        let err: Value = full.json().await.unwrap();
        assert!(err["error"]["message"].as_str().unwrap().contains("spool is full"), "{err}");
        // The webhook still answers, and keeps the decision in memory; readiness fails.
        let (status, _) = webhook(&http, &base, "held-1", MESSAGES[1]).await.unwrap();
        assert_eq!(status, 200);
        let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["status"], "failing", "{ready}");
    });
    pg.start_server();
    rt().block_on(async {
        let http = client();
        let started = Instant::now();
        while http.get(format!("{base}/readyz")).send().await.unwrap().json::<Value>().await.unwrap()["status"] != "ready" {
            assert!(started.elapsed() < Duration::from_secs(30), "the spool never drained");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let db = pg.client().await;
        for key in ["r-0", "r-1", "held-1"] {
            assert_eq!(rows_for(&db, key).await, 1, "{key}");
        }
        assert_eq!(rows_for(&db, "r-2").await, 0, "the refused request left no record");
    });
    rt().block_on(s.shutdown()).unwrap();
}

/// `strictly audit` reads what the replicas recorded, from PostgreSQL and from the files.
#[test]
fn audit_stats_and_export_read_either_store() {
    let pg = Postgres::start("audit");
    let dir = common::temp_dir("fleet", "audit");
    for url in [Some(pg.url()), None] {
        let audit = dir.join(if url.is_some() { "pg/audit.jsonl" } else { "files/audit.jsonl" });
        let s = server(&audit, url.as_deref(), |_| {});
        let base = format!("http://{}", s.addr);
        rt().block_on(async {
            let http = client();
            for (i, m) in MESSAGES.iter().enumerate() {
                assert_eq!(webhook(&http, &base, &format!("audit-{i}"), m).await.unwrap().0, 200);
            }
        });
        rt().block_on(s.shutdown()).unwrap();
        let run = |args: &[&str]| {
            let mut cmd = common::strictly_command();
            cmd.arg("audit").args(args).arg("--audit").arg(&audit).env_remove("STRICTLY_STORE_URL");
            if let Some(u) = &url {
                cmd.args(["--store-url", u]);
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        let stats: Value = serde_json::from_str(&run(&["stats", "--json", "--since", "1h"])).unwrap();
        assert_eq!(stats["decisions"], 3, "{stats}");
        assert_eq!(stats["by_path"]["examples"], 3, "{stats}");
        assert_eq!(stats["model_share"], 0.0);
        let exported: Vec<Value> = run(&["export"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let ids: Vec<&str> = exported.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["audit-0", "audit-1", "audit-2"]);
        assert_eq!(run(&["tail", "-n", "1"]).lines().count(), 1);
    }
}
