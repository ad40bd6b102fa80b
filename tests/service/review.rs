//! The review page (`GET /review`) in a real headless Chromium, over WebDriver: sign in with
//! the form, read the decisions, see that a customer's markup is shown as text, correct a
//! misrouted decision with a click, and see the next identical message routed the corrected
//! way. The server is the real binary (`strictly serve`, the examples' vote with the real
//! sentence encoder, the example config).
#![cfg(unix)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::rt;
use fantoccini::Locator;
use serde_json::{json, Value};

const KEY: &str = "review-test-key";

/// A customer message carrying markup: the page must show it as text and run none of it.
const MARKUP: &str = r#"<script>window.injected = true</script><img src=x onerror="window.injected = true"> where is my refund?"#;

/// A direct debit the customer does not recognise: billing (team 54515931) by the routing
/// policy of `../shared/data/support` (banking77's `direct_debit_payment_not_recognised`,
/// row banking77-train-4658 of routing-human-dev.csv); the example config's vote sends it to
/// returns.
const MISROUTED: &str = "I need a refund on a direct debit that shows in the app because I did not make it.";
const RIGHT_TEAM: &str = "54515931";
const RIGHT_LABEL: &str = "team billing (54515931)";

/// `strictly serve` in a folder of its own, killed on drop.
struct Service {
    child: Child,
    base: String,
    dir: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(name: &str) -> Service {
    let dir = std::env::temp_dir().join(format!("strictly-review-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = common::strictly_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--backend", "examples", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml"))
        .env("STRICTLY_API_KEYS", KEY)
        .env("RUST_LOG", "warn")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
    Service { child, base, dir }
}

async fn ready(http: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while http.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(120), "the server did not get ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn route(http: &reqwest::Client, base: &str, message: &str, id: &str) -> Value {
    let res = http.post(format!("{base}/v1/route")).bearer_auth(KEY).json(&json!({"message": message, "id": id})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn team(routed: &Value) -> Option<&str> {
    (routed["decision"]["target"]["kind"] == "team").then(|| routed["decision"]["target"]["id"].as_str()).flatten()
}

/// The row of a decision, by its message id.
fn row(id: &str) -> String {
    format!("tr.decision[data-id='{id}']")
}

#[test]
fn review_page_in_chromium() {
    let service = serve("page");
    let base = service.base.clone();
    let service = &service;
    rt().block_on(async move {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        ready(&http, &base).await;

        let before = route(&http, &base, MISROUTED, "misrouted-1").await;
        assert_ne!(team(&before), Some(RIGHT_TEAM), "the example config should get this message wrong: {before}");
        route(&http, &base, MARKUP, "markup-1").await;
        // The record keeps the vote's confidence and its three nearest phrases.
        let audit = std::fs::read_to_string(service.dir.join("logs/audit.jsonl")).unwrap();
        let line: Value = audit.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|l| l["id"] == "misrouted-1").unwrap();
        assert!(line["examples_confidence"].is_f64(), "{line}");
        let nearest = line["nearest"].as_array().unwrap();
        assert_eq!(nearest.len(), 3, "{line}");
        assert!(nearest.iter().all(|n| n["phrase"].is_string() && n["target"]["kind"].is_string() && n["similarity"].is_f64()));

        // Without the key: the sign-in form, not the record.
        let res = http.get(format!("{base}/review")).send().await.unwrap();
        assert_eq!(res.status(), 401);
        let login = res.text().await.unwrap();
        assert!(login.contains("action=\"/review/login\"") && !login.contains("misrouted-1"));
        // The page's cost is bounded.
        let res = http.get(format!("{base}/review?limit=501")).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(res.status(), 400);
        let res = http.get(format!("{base}/review")).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));

        let browser = Browser::start().await;
        let c = &browser.client;
        c.goto(&format!("{base}/review")).await.unwrap();
        c.find(Locator::Css("#key")).await.unwrap().send_keys(KEY).await.unwrap();
        c.find(Locator::Css("#sign-in")).await.unwrap().click().await.unwrap();
        c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("table#decisions")).await.unwrap();
        // The cookie is HttpOnly: the page's script cannot read it.
        assert_eq!(c.execute("return document.cookie", vec![]).await.unwrap(), json!(""));

        // The markup is shown as text, and none of it ran or entered the DOM.
        let shown = c.find(Locator::Css(&format!("{} td.message", row("markup-1")))).await.unwrap().text().await.unwrap();
        assert_eq!(shown, MARKUP);
        let probe = c
            .execute("return [document.scripts.length, typeof window.injected, document.querySelectorAll('td.message img').length]", vec![])
            .await
            .unwrap();
        assert_eq!(probe, json!([1, "undefined", 0]));
        assert!(c.get_alert_text().await.is_err(), "no alert is open");

        // The misrouted decision is listed with the vote's nearest phrases; correct it.
        let misrouted = row("misrouted-1");
        let nearest = c.find_all(Locator::Css(&format!("{misrouted} td.nearest li"))).await.unwrap();
        assert!(!nearest.is_empty(), "the record keeps the vote's nearest phrases");
        c.find(Locator::Css(&format!("{misrouted} select"))).await.unwrap().select_by_label(RIGHT_LABEL).await.unwrap();
        c.find(Locator::Css(&format!("{misrouted} button.correct"))).await.unwrap().click().await.unwrap();
        let answered = format!("{misrouted} output.result.ok, {misrouted} output.result.err");
        let result = c.wait().at_most(Duration::from_secs(30)).for_element(Locator::Css(&answered)).await.unwrap();
        let text = result.text().await.unwrap();
        assert!(text.starts_with(&format!("corrected to handoff_team → {RIGHT_TEAM}; learned")), "the page says {text:?}");

        // The same message again: routed the corrected way.
        let after = route(&http, &base, MISROUTED, "misrouted-2").await;
        assert_eq!(team(&after), Some(RIGHT_TEAM), "after the correction: {after}");

        // The page, reloaded, shows the correction and counts it.
        c.refresh().await.unwrap();
        let corrected = c.find(Locator::Css(&format!("{misrouted} td.correct p.ok"))).await.unwrap().text().await.unwrap();
        assert_eq!(corrected, format!("corrected to {RIGHT_LABEL}"));
        let cells = c
            .execute("return [...document.querySelectorAll('#accuracy tbody tr')].map(r => [...r.cells].map(td => td.textContent))", vec![])
            .await
            .unwrap();
        let rows = cells.as_array().unwrap();
        assert!(rows.iter().any(|r| r[2] != "0" && r[3] == "1"), "one corrected decision is counted: {cells}");
        browser.close().await;
    });
}
