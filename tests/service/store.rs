//! The store (src/store): the embedded files (repair at open, whole appends under a failing
//! writer, keys that survive a restart) and PostgreSQL (a real server started here:
//! migrations, claims across two pools, exactly-once records, the spool over an outage, and
//! clear errors for bad input). What the store wrote is read back with the test's own SQL or by
//! parsing the files.

use crate::common;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use strictly::routing::audit::{AuditFile, AuditLog, AuditRecord};
use strictly::routing::{Router, RoutingConfig};
use strictly::store::spool::Spool;
use strictly::store::{Claim, EmbeddedStore, Finished, Health, Outcome, Recorder, Row, Store, StoreConfig, StoreError};

use common::pg::{Postgres, PASSWORD};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn router() -> Router<strictly::backend::NoModel> {
    let config = RoutingConfig::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml")).unwrap();
    Router::builder(config).backend(strictly::backend::NoModel).words_only().no_audit().build().unwrap()
}

/// A real decision's record (the example phrases decide it).
fn record(router: &Router<strictly::backend::NoModel>, id: &str) -> AuditRecord {
    let message = "I want a refund for order 1234, it was broken";
    router.conclude(message, Some(id), router.screen(message), None).1
}

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "the file ends in a partial line");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a whole JSON line ({e}): {l}"))).collect()
}

#[test]
fn a_partial_last_line_is_moved_aside_and_counted_at_open() {
    let dir = common::temp_dir("store", "partial");
    let audit = dir.join("audit.jsonl");
    let whole = r#"{"id":"before","text":"whole"}"#;
    let cut = r#"{"id":"old","text":"cut"#;
    std::fs::write(&audit, format!("{whole}\n{cut}")).unwrap();
    let store = EmbeddedStore::open(&audit, None, 100).unwrap();
    assert_eq!(store.repaired_bytes(), cut.len() as u64);
    assert_eq!(std::fs::read_to_string(dir.join("audit.jsonl.partial")).unwrap(), format!("{cut}\n"));
    let r = router();
    rt().block_on(store.append(&Row::new(&record(&r, "after")).unwrap())).unwrap();
    let got = lines(&audit);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["id"], "before");
    assert_eq!(got[1]["id"], "after");
    assert_eq!(got[1]["v"], 1);
    // A whole file is left alone.
    drop(store);
    let again = EmbeddedStore::open(&audit, None, 100).unwrap();
    assert_eq!(again.repaired_bytes(), 0);
}

/// A file that writes the first `budget` bytes it is given, then fails like a full disk.
#[derive(Debug)]
struct FailingFile {
    file: std::fs::File,
    budget: Arc<AtomicUsize>,
    armed: Arc<AtomicBool>,
}

impl Write for FailingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.armed.load(Ordering::SeqCst) {
            return self.file.write(buf);
        }
        let left = self.budget.load(Ordering::SeqCst);
        if left == 0 {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let n = self.file.write(&buf[..buf.len().min(left)])?;
        self.budget.fetch_sub(n, Ordering::SeqCst);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl AuditFile for FailingFile {
    fn len(&mut self) -> std::io::Result<u64> {
        AuditFile::len(&mut self.file)
    }
    fn cut(&mut self, len: u64) -> std::io::Result<()> {
        self.file.cut(len)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync()
    }
}

#[test]
fn a_write_that_fails_part_way_leaves_the_file_whole() {
    let dir = common::temp_dir("store", "failing");
    let path = dir.join("audit.jsonl");
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    let budget = Arc::new(AtomicUsize::new(0));
    let armed = Arc::new(AtomicBool::new(false));
    let log = AuditLog::with_file(&path, Box::new(FailingFile { file, budget: budget.clone(), armed: armed.clone() }));
    let r = router();
    log.append(&record(&r, "one")).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    // The disk fills 40 bytes into the next line.
    budget.store(40, Ordering::SeqCst);
    armed.store(true, Ordering::SeqCst);
    let err = log.append(&record(&r, "two")).unwrap_err();
    assert!(err.to_string().contains("No space left"), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), before, "the partial line was cut off");
    // Room again: the next append lands whole.
    armed.store(false, Ordering::SeqCst);
    log.append(&record(&r, "three")).unwrap();
    let ids: Vec<Value> = lines(&path).iter().map(|l| l["id"].clone()).collect();
    assert_eq!(ids, [json!("one"), json!("three")]);
}

#[test]
fn embedded_keys_survive_a_restart_and_stay_bounded() {
    let dir = common::temp_dir("store", "keys");
    let audit = dir.join("audit.jsonl");
    let r = router();
    let runtime = rt();
    let reply = json!([{"message": "first answer"}]);
    {
        let store = runtime.block_on(Store::open(&StoreConfig::default(), &audit, 3)).unwrap();
        assert_eq!(runtime.block_on(store.claim("k-0", Duration::from_secs(1))).unwrap(), Claim::Mine);
        let row = Row::new(&record(&r, "k-0")).unwrap();
        assert_eq!(runtime.block_on(store.finish("k-0", &row, &reply)).unwrap(), Finished::Stored);
    }
    let store = runtime.block_on(Store::open(&StoreConfig::default(), &audit, 3)).unwrap();
    assert_eq!(runtime.block_on(store.claim("k-0", Duration::from_secs(1))).unwrap(), Claim::Done(reply.clone()));
    // Ten more keys: only the newest three are remembered, and the file is compacted.
    for i in 1..=10 {
        let key = format!("k-{i}");
        let row = Row::new(&record(&r, &key)).unwrap();
        runtime.block_on(store.finish(&key, &row, &json!([{"message": key}]))).unwrap();
    }
    drop(store);
    let keys_file = dir.join("audit.keys.jsonl");
    assert!(lines(&keys_file).len() <= 6, "the key file is compacted: {} lines", lines(&keys_file).len());
    let store = runtime.block_on(Store::open(&StoreConfig::default(), &audit, 3)).unwrap();
    assert_eq!(runtime.block_on(store.claim("k-10", Duration::from_secs(1))).unwrap(), Claim::Done(json!([{"message": "k-10"}])));
    assert_eq!(runtime.block_on(store.claim("k-2", Duration::from_secs(1))).unwrap(), Claim::Mine);
    assert_eq!(lines(&audit).len(), 11, "one record per decision");
}

fn pg_config(url: &str) -> StoreConfig {
    StoreConfig { url: Some(url.to_owned()), connect_timeout: Duration::from_secs(3), ..StoreConfig::default() }
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[test]
fn postgres_migrates_once_refuses_a_newer_schema_and_bad_input_is_clear() {
    let pg = Postgres::start("migrate");
    let runtime = rt();
    let dir = common::temp_dir("store", "migrate");
    runtime.block_on(async {
        // Two replicas starting together migrate once.
        let config = pg_config(&pg.url());
        let (path_a, path_b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
        let (a, b) = tokio::join!(Store::open(&config, &path_a, 10), Store::open(&config, &path_b, 10));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.kind(), "postgres");
        assert!(!a.location().contains(PASSWORD), "{}", a.location());
        let client = pg.client().await;
        assert_eq!(count(&client, "SELECT count(*) FROM schema_migrations").await, strictly::store::MIGRATIONS.len() as i64);
        drop((a, b));

        // A wrong password: the server's refusal, without the password.
        let wrong = "not-the-password-7x";
        let err = Store::open(&pg_config(&pg.url_with(wrong)), &dir.join("c.jsonl"), 10).await.err().expect("a wrong password fails");
        let msg = err.to_string();
        assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
        assert!(msg.contains("password authentication failed"), "{msg}");
        assert!(!msg.contains(wrong) && msg.contains("***"), "{msg}");

        // Nobody listening.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("postgres://strictly:{PASSWORD}@127.0.0.1:{closed}/postgres");
        let err = Store::open(&pg_config(&url), &dir.join("d.jsonl"), 10).await.err().expect("no server fails");
        assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
        assert!(!err.to_string().contains(PASSWORD), "{err}");

        // Not a URL PostgreSQL understands.
        let err = Store::open(&pg_config("postgres://strictly:pw@127.0.0.1:notaport/db"), &dir.join("e.jsonl"), 10)
            .await
            .err()
            .expect("a bad URL fails");
        assert!(matches!(err, StoreError::Url { .. }), "{err:?}");
        assert!(err.to_string().starts_with("store URL postgres://strictly:***@"), "{err}");

        // A database from a newer version.
        client.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')", &[]).await.unwrap();
        let err = Store::open(&config, &dir.join("f.jsonl"), 10).await.err().expect("a newer schema fails");
        assert!(matches!(err, StoreError::NewerSchema { found: 999, .. }), "{err:?}");
        assert!(err.to_string().contains("schema version 999, newer than this binary's"), "{err}");
    });
}

#[test]
fn postgres_claims_records_once_and_takes_over_a_dead_claim() {
    let pg = Postgres::start("claims");
    let runtime = rt();
    let dir = common::temp_dir("store", "claims");
    let r = router();
    runtime.block_on(async {
        let config = pg_config(&pg.url());
        let a = Store::open(&config, &dir.join("a.jsonl"), 10).await.unwrap();
        let b = Store::open(&config, &dir.join("b.jsonl"), 10).await.unwrap();
        let client = pg.client().await;
        let lease = Duration::from_secs(30);

        // First claimant decides; the other waits, then gets the reply.
        assert_eq!(a.claim("key-1", lease).await.unwrap(), Claim::Mine);
        assert_eq!(b.claim("key-1", lease).await.unwrap(), Claim::Busy);
        let row = Row::new(&record(&r, "key-1")).unwrap();
        let reply = json!([{"message": "hello from a"}]);
        assert_eq!(a.finish("key-1", &row, &reply).await.unwrap(), Finished::Stored);
        assert_eq!(b.claim("key-1", lease).await.unwrap(), Claim::Done(reply.clone()));
        assert_eq!(a.claim("key-1", lease).await.unwrap(), Claim::Done(reply));

        // The same record written again (a replay) stays one row.
        a.append(&row).await.unwrap();
        b.append(&row).await.unwrap();
        assert_eq!(count(&client, "SELECT count(*) FROM decisions WHERE message_id = 'key-1'").await, 1);
        let stored: Value = client.query_one("SELECT record FROM decisions WHERE message_id = 'key-1'", &[]).await.unwrap().get(0);
        assert_eq!(stored, row.line);

        // A claimant that dies: after its lease, another replica takes the key over, and the
        // first one's late answer is refused.
        let short = Duration::from_millis(200);
        assert_eq!(a.claim("key-2", short).await.unwrap(), Claim::Mine);
        assert_eq!(b.claim("key-2", short).await.unwrap(), Claim::Busy);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(b.claim("key-2", short).await.unwrap(), Claim::Mine);
        let late = Row::new(&record(&r, "key-2")).unwrap();
        assert_eq!(a.finish("key-2", &late, &json!(["late"])).await.unwrap(), Finished::Lost);
        let row = Row::new(&record(&r, "key-2")).unwrap();
        assert_eq!(b.finish("key-2", &row, &json!(["b"])).await.unwrap(), Finished::Stored);
        assert_eq!(count(&client, "SELECT count(*) FROM decisions WHERE message_id = 'key-2'").await, 1);
        assert_eq!(a.claim("key-2", short).await.unwrap(), Claim::Done(json!(["b"])));

        // Corrections go in and come back.
        let c = strictly::store::Correction {
            id: strictly::store::new_correction_id(),
            decision_id: Some("d-1".into()),
            time: "2026-01-02T03:04:05.000Z".into(),
            message_id: "key-1".into(),
            action: serde_json::from_value(json!("handoff_team")).unwrap(),
            target: json!({"kind": "team", "id": "77120034"}),
            note: Some("billing, not support".into()),
            author: None,
        };
        a.add_correction(&c).await.unwrap();
        assert_eq!(b.corrections(None).await.unwrap(), vec![c]);
    });
}

#[test]
fn the_spool_holds_records_through_an_outage_and_replays_them_once() {
    let pg = Postgres::start("spool");
    let runtime = rt();
    let dir = common::temp_dir("store", "spool");
    let r = router();
    runtime.block_on(async {
        let store = Store::open(&pg_config(&pg.url()), &dir.join("audit.jsonl"), 10).await.unwrap();
        let recorder = Recorder::start(store, Spool::open(&dir.join("spool.jsonl"), 100).unwrap());
        let first = Row::new(&record(&r, "before")).unwrap();
        assert_eq!(recorder.write(first, None, false).await.unwrap(), Outcome::Stored);
        assert_eq!(recorder.health(), Health::Ok);

        pg.stop_server();
        let mut ids = Vec::new();
        for i in 0..5 {
            let row = Row::new(&record(&r, &format!("down-{i}"))).unwrap();
            ids.push(row.decision_id.clone());
            let keyed = (i % 2 == 0).then(|| format!("down-{i}"));
            let reply = json!([{"message": i}]);
            let out = recorder.write(row, keyed.as_deref().map(|k| (k, &reply)), true).await.unwrap();
            assert_eq!(out, Outcome::Spooled);
        }
        assert_eq!(recorder.spool_depth(), 5);
        assert_eq!(lines(&dir.join("spool.jsonl")).len(), 5, "the spool is on disk");
        assert!(matches!(recorder.health(), Health::Degraded(_)), "{:?}", recorder.health());

        pg.start_server();
        let mut waited = 0;
        while recorder.spool_depth() > 0 {
            assert!(waited < 200, "the spool did not drain");
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
        assert_eq!(recorder.health(), Health::Ok);
        assert_eq!(std::fs::metadata(dir.join("spool.jsonl")).unwrap().len(), 0);
        let client = pg.client().await;
        let rows = client.query("SELECT id FROM decisions WHERE message_id LIKE 'down-%' ORDER BY time", &[]).await.unwrap();
        let got: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(got, ids, "every spooled record once, in order");
        let reply: Value = client.query_one("SELECT reply FROM webhook_keys WHERE key = 'down-2'", &[]).await.unwrap().get(0);
        assert_eq!(reply, json!([{"message": 2}]));
    });
}
