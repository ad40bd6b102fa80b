//! A replica that dies or cannot start: the real `strictly serve` binary on a loopback port,
//! examples-only routing (no model), a real HTTP client.
//!
//! - The embedded store under `kill -9` mid-load: every request answered 200 has exactly one
//!   whole audit line; a partial last line is moved aside at the next start and counted in
//!   `/metrics`; a retried key gets the first answer.
//! - A PostgreSQL store that cannot be used (a malformed URL, nobody listening, a wrong
//!   password, a database migrated by a newer version): `strictly serve` exits 2 at start with
//!   an error that says which, and never shows the password.

use crate::common;
use common::load::{load_then_signal, spawn_serve};
use common::pg::{Postgres, PASSWORD};
use common::rt;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

/// `serve` flags for an examples-only replica on a free loopback port.
fn replica_args(config: &Path) -> Vec<&OsStr> {
    let mut args: Vec<&OsStr> =
        ["--backend", "examples", "--words-only", "--listen", "127.0.0.1:0", "--config"].iter().map(OsStr::new).collect();
    args.push(config.as_os_str());
    args
}

/// Messages the example phrases route to different places.
const MESSAGES: [&str; 3] =
    ["I want a refund for order 1234, it was broken", "how do i reset my password", "where is my package, it has not arrived"];

async fn webhook(http: &reqwest::Client, base: &str, key: &str, message: &str) -> Option<(u16, Value)> {
    let body = json!({"key": key, "message": message, "from": "customer-1", "groupId": "g-1", "applicationId": "app"});
    let r = http.post(format!("{base}/kommunicate/webhook")).json(&body).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

/// The audit file's whole lines (each must parse) and the bytes after its last newline.
fn audit_file(path: &Path) -> (Vec<Value>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let lines = std::str::from_utf8(&bytes[..whole])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("an audit line is not whole JSON ({e}): {l}")))
        .collect();
    (lines, bytes[whole..].to_vec())
}

fn lines_per_id(lines: &[Value]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for l in lines {
        *out.entry(l["id"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    out
}

fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn kill_9_of_an_embedded_replica_mid_load_keeps_every_answered_decision_whole() {
    let dir = common::temp_dir("fleet-failures", "kill-embedded");
    let config = common::example_config();
    let audit = dir.join("logs/audit.jsonl");
    let (mut child, base) = spawn_serve(&dir, &replica_args(&config), &[]);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let n = 150;
    let send = |i: usize| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let key = format!("kill-{i}");
            let answer = webhook(&http, &base, &key, MESSAGES[i % 3]).await;
            (key, answer)
        }
    };
    let results = rt().block_on(load_then_signal(n, Duration::from_millis(5), send, Duration::from_millis(300), child.id(), "-9"));
    let _ = child.wait();
    let answered: HashMap<&str, &Value> = results
        .iter()
        .filter_map(|(k, a)| match a {
            Some((200, reply)) => Some((k.as_str(), reply)),
            _ => None,
        })
        .collect();
    let unanswered: Vec<&str> = results.iter().map(|(k, _)| k.as_str()).filter(|k| !answered.contains_key(k)).collect();
    assert!(!answered.is_empty() && !unanswered.is_empty(), "the kill came mid-load: {} answered of {n}", answered.len());

    // What the kill left: every answered request has exactly one whole line.
    let (lines, tail) = audit_file(&audit);
    let per_id = lines_per_id(&lines);
    for key in answered.keys() {
        assert_eq!(per_id.get(*key), Some(&1), "{key} answered 200 without exactly one whole audit line");
    }
    // A kill inside a write leaves the start of a line. The kill rarely lands there, so when it
    // did not, the file is given one: the first half of a record, as a cut write leaves it.
    let cut_by_kill = !tail.is_empty();
    let torn = if tail.is_empty() {
        let line = serde_json::to_vec(&lines[0]).unwrap();
        let half = line[..line.len() / 2].to_vec();
        std::fs::OpenOptions::new().append(true).open(&audit).unwrap().write_all(&half).unwrap();
        half
    } else {
        tail.clone()
    };

    // The restart moves the partial line aside, counts it, and answers retries as before.
    let (mut child, base) = spawn_serve(&dir, &replica_args(&config), &[]);
    let (lines_after_start, tail_after_start) = audit_file(&audit);
    assert!(tail_after_start.is_empty(), "the partial line is gone from the audit file");
    assert_eq!(lines_after_start, lines, "the whole lines are untouched");
    let aside = std::fs::read(dir.join("logs/audit.jsonl.partial")).unwrap();
    assert_eq!(aside, [torn.as_slice(), b"\n"].concat(), "the partial line is kept aside, whole");
    rt().block_on(async {
        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        assert_eq!(metric(&metrics, "strictly_record_repairs_total"), Some(1.0), "{metrics}");
        // Kommunicate retries every delivery: answered keys get their first answer (even with
        // a message that would route elsewhere), the others are decided now.
        for (i, (key, _)) in results.iter().enumerate() {
            let (status, reply) = webhook(&http, &base, key, MESSAGES[(i + 1) % 3]).await.expect("the restarted replica answers");
            assert_eq!(status, 200, "{key}: {reply}");
            if let Some(first) = answered.get(key.as_str()) {
                assert_eq!(&&reply, first, "{key}: a retry after the restart gets the first answer");
            }
        }
        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        // Replays: every answered key, and any key whose reply was stored but not yet sent.
        let replays = metric(&metrics, "strictly_webhook_replays_total").expect("the replay counter");
        assert!(replays >= answered.len() as f64 && replays <= n as f64, "{replays} replays: {metrics}");
    });
    signal_and_wait(&mut child);

    let (lines, tail) = audit_file(&audit);
    assert!(tail.is_empty());
    let per_id = lines_per_id(&lines);
    for key in answered.keys() {
        assert_eq!(per_id.get(*key), Some(&1), "{key}: the retry wrote nothing new");
    }
    // An unanswered delivery is recorded once when the kill came before its record, and twice
    // when it came between its record and its key (the store's documented order: the record
    // first, so a crash can repeat a decision but never lose one).
    let mut twice = 0;
    for key in &unanswered {
        match per_id.get(*key).copied().unwrap_or(0) {
            1 => {}
            2 => twice += 1,
            c => panic!("{key}: {c} records after its retry"),
        }
    }
    assert_eq!(lines.len(), n + twice, "no record beyond one per delivery (and the repeated ones)");
    eprintln!(
        "embedded kill -9: {} answered before the kill, {} retried after it, {twice} recorded twice, {} bytes of a partial line moved aside ({})",
        answered.len(),
        unanswered.len(),
        torn.len(),
        if cut_by_kill { "left by the kill" } else { "a cut write added after it" },
    );
}

fn signal_and_wait(child: &mut std::process::Child) {
    common::load::signal(child.id(), "-TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// `strictly serve` over the PostgreSQL store at `url`: its exit code and its stderr. It must
/// exit by itself, within 60 s, without getting as far as listening.
fn start_with_store(dir: &Path, url: &str) -> (Option<i32>, String) {
    let config = common::example_config();
    let mut child = common::strictly_command()
        .arg("serve")
        .args(replica_args(&config))
        .env("STRICTLY_STORE_URL", url)
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strictly serve over {url} neither started nor failed within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("listening on"), "it started: {stdout}");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_store_that_cannot_be_used_is_a_clear_start_up_error() {
    let pg = Postgres::start("startup");
    let dir = common::temp_dir("fleet-failures", "startup");

    let (code, err) = start_with_store(&dir, "postgres://strictly:pw-in-url@127.0.0.1:notaport/postgres");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("error: store URL postgres://strictly:***@127.0.0.1:notaport/postgres"), "{err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (code, err) = start_with_store(&dir, &format!("postgres://strictly:{PASSWORD}@127.0.0.1:{closed}/postgres"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("error: cannot connect to the store at postgres://strictly:***@127.0.0.1:{closed}/postgres")), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");

    let wrong = "not-the-password-4q";
    let (code, err) = start_with_store(&dir, &pg.url_with(wrong));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot connect to the store") && err.contains("password authentication failed"), "{err}");
    assert!(!err.contains(wrong), "{err}");

    // A database a newer strictly migrated: a replica of this version migrates it first.
    let known = strictly::store::MIGRATIONS.last().unwrap().0;
    let (mut child, _) =
        spawn_serve(&dir.join("first"), &replica_args(&common::example_config()), &[("STRICTLY_STORE_URL", OsStr::new(&pg.url()))]);
    signal_and_wait(&mut child);
    rt().block_on(async {
        let db = pg.client().await;
        let newest: i64 = db.query_one("SELECT max(version) FROM schema_migrations", &[]).await.unwrap().get(0);
        assert_eq!(newest, known);
        db.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from a newer strictly')", &[&(newest + 1)]).await.unwrap();
    });
    let (code, err) = start_with_store(&dir, &pg.url());
    assert_eq!(code, Some(2), "{err}");
    let newer = format!("is at schema version {}, newer than this binary's {known}; upgrade strictly", known + 1);
    assert!(err.contains(&newer), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}
