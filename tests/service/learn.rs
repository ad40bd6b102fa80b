//! Corrections that teach, learned phrases and reloading without a restart, end to end: a real
//! server on a loopback port, the real sentence encoder, the examples' vote (no model is asked,
//! so every decision here is the vote's), the embedded store and, in one test, PostgreSQL.

use crate::common;
use common::rt;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strictly::backend::NoModel;
use strictly::routing::audit::{AuditLog, AuditRecord};
use strictly::routing::learning::LearningSettings;
use strictly::routing::{Router, RoutingConfig};
use strictly::serve::{router_builder, start, ServeConfig, Server};
use strictly::store::feedback::{correct, expected_route, learn, Corrections, Files};
use strictly::store::StoreConfig;

/// Returns (`77120034`) by the shop's policy (a refund), in words the example phrases send to
/// the bot's answer (they read it as a delivery question).
const MISROUTED: &str = "can I get the money back for the delivery fee";
/// The same request in other words, misrouted the same way.
const PARAPHRASE: &str = "is it possible to get back what I paid for shipping";
const RETURNS: &str = "77120034";
const BILLING: &str = "54515931";

fn example_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml")).unwrap()
}

/// The example config with its audit in `dir` and `[learning]` as given, written to
/// `dir/routing.toml`.
fn write_config(dir: &Path, learning: &str) -> PathBuf {
    let audit = dir.join("audit.jsonl");
    let mut text = example_text();
    let at = text.find("[audit]").expect("the example has [audit]");
    let end = at + text[at..].find("\n[").unwrap();
    text.replace_range(at..end, &format!("[audit]\npath = {}\n", toml::Value::String(audit.display().to_string())));
    let text = match text.find("[learning]") {
        Some(at) => {
            let end = at + text[at..].find("\n[").unwrap();
            format!("{}{learning}\n{}", &text[..at], &text[end..])
        }
        None => format!("{learning}\n\n{text}"),
    };
    let path = dir.join("routing.toml");
    std::fs::write(&path, text).unwrap();
    RoutingConfig::load(&path).unwrap_or_else(|e| panic!("the test config loads: {e}"));
    path
}

const LEARNING: &str = "[learning]\nenabled = true\nmax_per_route = 50\nnear_duplicate = 0.95";

/// An examples-only server (with the encoder) over the config file at `config`.
fn server(config: &Path, url: Option<&str>) -> Server {
    let routing = RoutingConfig::load(config).unwrap();
    let serve = ServeConfig {
        listen: "127.0.0.1:0".into(),
        api_keys: vec!["key-1".into()],
        routing_config: Some(config.to_owned()),
        store: StoreConfig { url: url.map(str::to_owned), ..StoreConfig::default() },
        ..ServeConfig::default()
    };
    let router = router_builder(routing, NoModel).encoder(common::encoder()).build().unwrap();
    let server = rt().block_on(start(router, serve)).unwrap();
    let base = format!("http://{}", server.addr);
    rt().block_on(async {
        let started = Instant::now();
        while reqwest::get(format!("{base}/readyz")).await.map(|r| r.status().as_u16()).ok() != Some(200) {
            assert!(started.elapsed() < Duration::from_secs(60), "{base} never got ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    server
}

fn client() -> reqwest::Client {
    // The runtime installs the TLS crypto provider reqwest's builder asks for.
    let _ = rt();
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

async fn post(http: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let r = http.post(url).bearer_auth("key-1").json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `/v1/route`: the decision's id and its route (`team:ID`, `agent:EMAIL`, `none`, `default_routing`).
async fn route(http: &reqwest::Client, base: &str, message: &str) -> (String, String) {
    let (status, v) = post(http, format!("{base}/v1/route"), &json!({"message": message})).await;
    assert_eq!(status, 200, "{v}");
    let d = &v["decision"]["target"];
    let name = match d["id"].as_str() {
        Some(id) => format!("{}:{id}", d["kind"].as_str().unwrap()),
        None => d["kind"].as_str().unwrap().to_owned(),
    };
    (v["decision_id"].as_str().expect("the reply names its decision").to_owned(), name)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' ')).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

async fn metrics(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap()
}

#[test]
fn a_correction_teaches_the_router_the_message_and_its_paraphrase() {
    let dir = common::temp_dir("learn", "feedback");
    let config = write_config(&dir, LEARNING);
    let server = server(&config, None);
    let base = format!("http://{}", server.addr);
    let http = client();
    rt().block_on(async {
        let (decision, before) = route(&http, &base, MISROUTED).await;
        assert_ne!(before, format!("team:{RETURNS}"), "the example config must misroute the test's message");
        let (_, paraphrase_before) = route(&http, &base, PARAPHRASE).await;
        assert_ne!(paraphrase_before, format!("team:{RETURNS}"), "the example config must misroute the paraphrase");
        assert_eq!(metric(&metrics(&http, &base).await, "strictly_config_generation"), Some(1.0));

        let expected = json!({"action": "handoff_team", "target": RETURNS});
        let (status, reply) = post(&http, format!("{base}/v1/feedback"), &json!({"id": decision, "expected": expected})).await;
        assert_eq!(status, 201, "{reply}");
        assert_eq!(reply["decision"], json!(decision));
        assert_eq!(reply["expected"], expected);
        assert_eq!(reply["learned"], json!(true));
        let correction = reply["id"].as_str().unwrap().to_owned();

        // The server learned at once: the message and a paraphrase now go to billing.
        assert_eq!(route(&http, &base, MISROUTED).await.1, format!("team:{RETURNS}"));
        assert_eq!(route(&http, &base, PARAPHRASE).await.1, format!("team:{RETURNS}"));
        let m = metrics(&http, &base).await;
        assert_eq!(metric(&m, "strictly_config_generation"), Some(2.0));
        assert_eq!(metric(&m, "strictly_learned_phrases"), Some(1.0));

        // The record links the correction to its decision, and the stats count it.
        let audit = dir.join("audit.jsonl");
        let corrections = strictly::store::EmbeddedStore::read_corrections(&audit, None).unwrap();
        assert_eq!(corrections.len(), 1);
        assert_eq!((corrections[0].id.as_str(), corrections[0].decision_id.as_deref()), (correction.as_str(), Some(decision.as_str())));
        let records = strictly::store::EmbeddedStore::read_records(&audit, None, None).unwrap();
        let corrected = records.iter().find(|r| r["decision_id"] == json!(decision)).expect("the decision is recorded");
        assert_eq!(corrected["id"].as_str(), Some(corrections[0].message_id.as_str()));
        let stats = strictly::store::report::Stats::new(&records, &corrections);
        assert_eq!(stats.corrected, 1);

        // The refusals, each in the service's error shape.
        let refused = |status: u16, v: &Value| {
            assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
            status
        };
        let (s, v) = post(&http, format!("{base}/v1/feedback"), &json!({"id": "no-such-decision", "expected": expected})).await;
        assert_eq!(refused(s, &v), 404);
        let (s, v) =
            post(&http, format!("{base}/v1/feedback"), &json!({"id": decision, "expected": {"action": "handoff_team", "target": "12345"}}))
                .await;
        assert_eq!(refused(s, &v), 422);
        let (s, v) = post(&http, format!("{base}/v1/feedback"), &json!({"id": decision, "expected": {"action": "escalate"}})).await;
        assert_eq!(refused(s, &v), 422);
        let (s, v) =
            post(&http, format!("{base}/v1/feedback"), &json!({"id": decision, "expected": {"action": "answer", "target": RETURNS}})).await;
        assert_eq!(refused(s, &v), 422);
        let (s, v) = post(&http, format!("{base}/v1/feedback"), &json!({"id": correction, "expected": expected})).await;
        assert_eq!(refused(s, &v), 409);
        let (s, v) = post(&http, format!("{base}/v1/feedback"), &json!({"id": decision, "expected": expected})).await;
        assert_eq!(refused(s, &v), 409);
        // The team id as a number names the same route: already corrected so.
        let (s, v) = post(
            &http,
            format!("{base}/v1/feedback"),
            &json!({"id": decision, "expected": {"action": "handoff_team", "target": 77120034}}),
        )
        .await;
        assert_eq!(refused(s, &v), 409);
        let (s, v) = post(&http, format!("{base}/v1/feedback"), &json!({"id": decision})).await;
        assert_eq!(refused(s, &v), 400);
        let (s, v) = post(
            &http,
            format!("{base}/v1/feedback"),
            &json!({"id": decision, "expected": {"action": "handoff_team", "target": [RETURNS]}}),
        )
        .await;
        assert_eq!(refused(s, &v), 400);
        let r = http.post(format!("{base}/v1/feedback")).json(&json!({"id": decision, "expected": expected})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        // Nothing refused was stored.
        assert_eq!(strictly::store::EmbeddedStore::read_corrections(&audit, None).unwrap().len(), 1);
    });
    rt().block_on(server.shutdown()).unwrap();
}

/// Records of `messages` (as the vote routes them) written to an audit file: decisions to correct.
fn recorded(audit: &Path, router: &Router<NoModel>, messages: &[&str]) -> Vec<String> {
    let log = AuditLog::open(audit).unwrap();
    messages
        .iter()
        .map(|m| {
            let screened = router.screen(m);
            let (_, record): (_, AuditRecord) = router.conclude(m, None, screened, None);
            log.append(&record).unwrap();
            record.decision_id
        })
        .collect()
}

#[test]
fn learned_phrases_are_capped_per_route_and_near_duplicates_replace_them() {
    let dir = common::temp_dir("learn", "cap");
    let config = RoutingConfig::load(write_config(&dir, "[learning]\nenabled = true\nmax_per_route = 2\nnear_duplicate = 0.95")).unwrap();
    let router = Router::builder(config.clone()).backend(NoModel).encoder(common::encoder()).no_audit().build().unwrap();
    let store = Files { audit: config.audit.path.clone() };
    let texts = [
        "my card payment went through at the wrong exchange rate",
        "a direct debit I don't recognise was taken from my account",
        "my card payment has been pending for days",
        // A near-duplicate of the one before (a question mark and a capital letter).
        "My card payment has been pending for days?",
    ];
    let ids = recorded(&config.audit.path, &router, &texts);
    let billing = expected_route(&config, "handoff_team", Some(BILLING)).unwrap();
    rt().block_on(async {
        let mut learned = Vec::new();
        for id in &ids {
            let (c, record) = correct(&store, id, &billing, None, None).await.unwrap();
            learned.push(learn(&store, &config.learning, &c, &record, &router).await.unwrap().expect("learning is on"));
        }
        let (kept, generation) = store.phrases().await.unwrap();
        let kept: Vec<&str> = kept.iter().map(|p| p.text.as_str()).collect();
        // The third pushed the first out (cap 2); the fourth replaced the third.
        assert_eq!(kept, vec![texts[1], texts[3]]);
        // Four adds and two removals.
        assert_eq!(generation, 6);
        assert!(router.similarity_to(texts[3])(texts[2]) >= 0.95);
        assert!(router.similarity_to(texts[1])(texts[2]) < 0.95);

        // With learning off, a correction is stored and nothing is learned.
        let off = LearningSettings { enabled: false, ..config.learning.clone() };
        let more = recorded(&config.audit.path, &router, &["I was charged twice for one card payment"]);
        let (c, record) = correct(&store, &more[0], &billing, None, None).await.unwrap();
        assert!(learn(&store, &off, &c, &record, &router).await.unwrap().is_none());
        assert_eq!(store.phrases().await.unwrap().0.len(), 2);

        // Under `[audit] redact = "full"` the record keeps no text, so nothing is learned.
        let text = "the card payment was taken twice";
        let (_, mut hashed) = router.conclude(text, None, router.screen(text), None);
        hashed.text = strictly::routing::audit::Redaction::Full.apply(text);
        AuditLog::open(&config.audit.path).unwrap().append(&hashed).unwrap();
        let (c, record) = correct(&store, &hashed.decision_id, &billing, None, None).await.unwrap();
        assert!(learn(&store, &config.learning, &c, &record, &router).await.unwrap().is_none());
        assert_eq!(store.phrases().await.unwrap().0.len(), 2);
    });
}

/// The config at `path` with a new route's phrases appended: `message` and two paraphrases go
/// to the senior agent.
fn with_phrases_for_senior(path: &Path, phrases: &[&str]) {
    let mut text = std::fs::read_to_string(path).unwrap();
    let list: Vec<String> = phrases.iter().map(|p| toml::Value::String((*p).to_owned()).to_string()).collect();
    text.push_str(&format!(
        "\n[[examples]]\naction = \"handoff_agent\"\ntarget = \"senior@company.com\"\nreason = \"asks for the senior agent by name\"\nphrases = [{}]\n",
        list.join(", ")
    ));
    std::fs::write(path, &text).unwrap();
    RoutingConfig::load(path).unwrap_or_else(|e| panic!("the edited config loads: {e}"));
}

#[test]
fn a_reload_under_load_swaps_the_router_and_a_broken_config_is_refused() {
    const MESSAGE: &str = "can i pay for my order with apple pay";
    const NEW: [&str; 3] = [MESSAGE, "is apple pay accepted for orders", "paying with apple pay, is that possible"];
    const SENIOR: &str = "agent:senior@company.com";
    let dir = common::temp_dir("learn", "reload");
    let config = write_config(&dir, "[learning]\nenabled = false");
    let server = server(&config, None);
    let base = format!("http://{}", server.addr);
    let http = client();
    rt().block_on(async {
        let (_, before) = route(&http, &base, MESSAGE).await;
        assert_ne!(before, SENIOR);

        // A bounded load: 4 clients, each until it has sent 10 requests after the swap (at most
        // 300 in all); each answer is marked with whether the swap was done when it was sent.
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        let done = std::sync::Arc::new(AtomicUsize::new(0));
        let swapped = std::sync::Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..4 {
            let (http, base, done, swapped) = (http.clone(), base.clone(), done.clone(), swapped.clone());
            clients.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut after = 0;
                for _ in 0..75 {
                    let after_swap = swapped.load(SeqCst);
                    let r =
                        http.post(format!("{base}/v1/route")).bearer_auth("key-1").json(&json!({"message": MESSAGE})).send().await.unwrap();
                    let status = r.status().as_u16();
                    let v: Value = r.json().await.unwrap();
                    let t = &v["decision"]["target"];
                    let name = format!("{}:{}", t["kind"].as_str().unwrap_or("?"), t["id"].as_str().unwrap_or(""));
                    answers.push((after_swap, status, name.trim_end_matches(':').to_owned()));
                    done.fetch_add(1, SeqCst);
                    after += usize::from(after_swap);
                    if after == 10 {
                        break;
                    }
                }
                answers
            }));
        }
        while done.load(SeqCst) < 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        with_phrases_for_senior(&config, &NEW);
        let (status, reloaded) = post(&http, format!("{base}/admin/reload"), &json!({})).await;
        swapped.store(true, SeqCst);
        assert_eq!(status, 200, "{reloaded}");
        assert_eq!(reloaded["generation"], json!(2));
        // Only the three new phrases were embedded; the others' embeddings were kept.
        assert_eq!(reloaded["embedded"], json!(3));
        let mut answers = Vec::new();
        for c in clients {
            answers.extend(c.await.unwrap());
        }
        assert!(answers.iter().all(|(_, status, _)| *status == 200), "every request is answered 200");
        let after: Vec<_> = answers.iter().filter(|(after_swap, _, _)| *after_swap).collect();
        assert_eq!(after.len(), 40, "each client sent 10 requests after the swap");
        assert!(after.iter().all(|(_, _, r)| r == SENIOR), "requests sent after the swap follow the new phrases: {after:?}");
        assert!(answers.iter().any(|(_, _, r)| *r == before), "requests before the swap followed the old ones");
        assert_eq!(route(&http, &base, MESSAGE).await.1, SENIOR);

        // A broken config is refused with its error; the old router keeps answering.
        let good = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, good.replace("[replies]", "[replies\n")).unwrap();
        let (status, v) = post(&http, format!("{base}/admin/reload"), &json!({})).await;
        assert_eq!(status, 422, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("invalid routing config"), "{v}");
        std::fs::write(
            &config,
            good.replace("target = \"senior@company.com\"\nreason = \"asks", "target = \"nobody@company.com\"\nreason = \"asks"),
        )
        .unwrap();
        let (status, v) = post(&http, format!("{base}/admin/reload"), &json!({})).await;
        assert_eq!(status, 422, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("nobody@company.com"), "{v}");
        assert_eq!(route(&http, &base, MESSAGE).await.1, SENIOR);
        assert_eq!(metric(&metrics(&http, &base).await, "strictly_config_generation"), Some(2.0));
        // Reloading is keyed.
        let r = http.post(format!("{base}/admin/reload")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
    });
    rt().block_on(server.shutdown()).unwrap();
}

#[test]
fn with_postgresql_a_correction_on_one_replica_teaches_the_other_on_reload() {
    let pg = common::pg::Postgres::start("learn");
    let url = pg.url();
    let dir = common::temp_dir("learn", "pg");
    let (dir_a, dir_b, dir_c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    for d in [&dir_a, &dir_b, &dir_c] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (a, b) = (server(&write_config(&dir_a, LEARNING), Some(&url)), server(&write_config(&dir_b, LEARNING), Some(&url)));
    // A third replica asks the store for the phrases' generation every 100 ms.
    let c = server(&write_config(&dir_c, &format!("{LEARNING}\ncheck_every = \"100ms\"")), Some(&url));
    let (base_a, base_b, base_c) = (format!("http://{}", a.addr), format!("http://{}", b.addr), format!("http://{}", c.addr));
    let http = client();
    rt().block_on(async {
        let (decision, before) = route(&http, &base_a, MISROUTED).await;
        assert_ne!(before, format!("team:{RETURNS}"));
        let expected = json!({"action": "handoff_team", "target": RETURNS});
        // The other replica finds the decision in the shared store.
        let (status, reply) = post(&http, format!("{base_b}/v1/feedback"), &json!({"id": decision, "expected": expected})).await;
        assert_eq!(status, 201, "{reply}");
        assert_eq!(reply["learned"], json!(true));
        let correction = reply["id"].as_str().unwrap().to_owned();
        assert_eq!(route(&http, &base_b, PARAPHRASE).await.1, format!("team:{RETURNS}"));
        // Replica a has not reloaded yet; after a reload it has learned too.
        assert_eq!(route(&http, &base_a, MISROUTED).await.1, before);
        let (status, reloaded) = post(&http, format!("{base_a}/admin/reload"), &json!({})).await;
        assert_eq!((status, &reloaded["learned_phrases"]), (200, &json!(1)), "{reloaded}");
        assert_eq!(route(&http, &base_a, MISROUTED).await.1, format!("team:{RETURNS}"));
        assert_eq!(route(&http, &base_a, PARAPHRASE).await.1, format!("team:{RETURNS}"));
        let (s, _) = post(&http, format!("{base_a}/v1/feedback"), &json!({"id": correction, "expected": expected})).await;
        assert_eq!(s, 409);
        // Replica c picked the phrase up by itself.
        let mut learned_by_c = false;
        for _ in 0..100 {
            if metric(&metrics(&http, &base_c).await, "strictly_learned_phrases") == Some(1.0) {
                learned_by_c = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(learned_by_c, "the replica with check_every loads the new phrase");
        assert_eq!(route(&http, &base_c, PARAPHRASE).await.1, format!("team:{RETURNS}"));

        // In the database: the correction names its decision, the phrase its correction.
        let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let row = db.query_one("SELECT decision_id, message_id FROM corrections WHERE correction_id = $1", &[&correction]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), decision);
        let linked: i64 = db
            .query_one("SELECT count(*) FROM decisions d JOIN corrections c ON c.decision_id = d.id AND c.message_id = d.message_id", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(linked, 1);
        let phrase = db.query_one("SELECT action, target, correction_id FROM learned_phrases", &[]).await.unwrap();
        assert_eq!(
            (phrase.get::<_, String>(0), phrase.get::<_, Option<String>>(1), phrase.get::<_, Option<String>>(2)),
            ("handoff_team".to_owned(), Some(RETURNS.to_owned()), Some(correction.clone()))
        );
        let generation: i64 = db.query_one("SELECT generation FROM phrase_generation", &[]).await.unwrap().get(0);
        assert_eq!(generation, 1);
    });
    for s in [a, b, c] {
        rt().block_on(s.shutdown()).unwrap();
    }
}

fn strictly(args: &[&str]) -> std::process::Output {
    let out = common::strictly_command().args(args).output().unwrap();
    assert!(out.status.success(), "strictly {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

async fn generation(http: &reqwest::Client, base: &str, at_least: f64) -> f64 {
    for _ in 0..200 {
        let g = metric(&metrics(http, base).await, "strictly_config_generation").unwrap_or(0.0);
        if g >= at_least {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    metric(&metrics(http, base).await, "strictly_config_generation").unwrap_or(0.0)
}

#[test]
fn the_commands_correct_list_and_promote_and_sighup_reloads_the_server() {
    use std::io::BufRead;
    let dir = common::temp_dir("learn", "cli");
    let config = write_config(&dir, LEARNING);
    let cfg = config.to_str().unwrap();
    let mut child = common::strictly_command()
        .args(["serve", "--backend", "examples", "--config", cfg, "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("no address in {line:?}")).to_owned();
    let pid = child.id().to_string();
    let http = client();
    rt().block_on(async {
        let (decision, before) = route(&http, &base, MISROUTED).await;
        assert_ne!(before, format!("team:{RETURNS}"));

        // The command writes the correction and the phrase into the server's (embedded) store.
        let out = strictly(&["feedback", "add", &decision, "--team", "returns", "--config", cfg]);
        let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!((&reply["decision"], &reply["learned"]), (&json!(decision), &json!(true)), "{reply}");
        assert_eq!(reply["expected"], json!({"action": "handoff_team", "target": RETURNS}));
        // The server learns it on SIGHUP.
        assert_eq!(route(&http, &base, MISROUTED).await.1, before);
        std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        assert_eq!(generation(&http, &base, 2.0).await, 2.0);
        assert_eq!(route(&http, &base, MISROUTED).await.1, format!("team:{RETURNS}"));

        // Listed with its origin, then promoted into the config file (a backup kept).
        let out = strictly(&["phrases", "list", "--learned", "--json", "--config", cfg]);
        let listed: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!((&listed[0]["text"], &listed[0]["correction_id"]), (&json!(MISROUTED), &reply["id"]));
        let out = strictly(&["phrases", "list", "--config", cfg]);
        assert!(String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with("config\t") && l.contains(&format!("handoff_team:{RETURNS}"))));
        let original = std::fs::read_to_string(&config).unwrap();
        strictly(&["phrases", "promote", listed[0]["id"].as_str().unwrap(), "--config", cfg]);
        assert_eq!(std::fs::read_to_string(dir.join("routing.toml.bak")).unwrap(), original);
        let promoted = RoutingConfig::load(&config).unwrap();
        assert!(promoted.examples.iter().any(|e| e.target.as_deref() == Some(RETURNS) && e.phrases.iter().any(|p| p == MISROUTED)));
        let out = strictly(&["phrases", "list", "--learned", "--json", "--config", cfg]);
        assert!(out.stdout.is_empty(), "the promoted phrase is no longer a learned one");
        std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        assert_eq!(generation(&http, &base, 3.0).await, 3.0);
        assert_eq!(route(&http, &base, MISROUTED).await.1, format!("team:{RETURNS}"));

        // A broken config on SIGHUP: logged, refused, the old router answers.
        std::fs::write(&config, "company = \"half a config\"\n").unwrap();
        std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        for _ in 0..100 {
            if std::fs::read_to_string(dir.join("stderr.log")).unwrap().contains("reload refused") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(route(&http, &base, MISROUTED).await.1, format!("team:{RETURNS}"));
        assert_eq!(metric(&metrics(&http, &base).await, "strictly_config_generation"), Some(3.0));
    });
    std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    let refused = log.lines().find(|l| l.contains("reload refused")).expect("the refused reload is logged");
    assert!(refused.contains("ERROR") && refused.contains("missing field"), "{refused}");
}
