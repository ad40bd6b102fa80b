//! `GET /review`: recent decisions for a person to check, lowest confidence first, each with
//! the vote's nearest phrases and a one-click correction (which posts `/v1/feedback`), and the
//! per-route accuracy that the corrections give, by day.
//!
//! The page is rendered here ([`html`]), with every value from the record escaped; its script
//! and style are two small files served by the binary (`/review.js`, `/review.css`), so the
//! page runs under `Content-Security-Policy: default-src 'self'` with no inline code at all.
//!
//! Who may see it: the service's API keys, as for `/v1/*`. A browser signs in once with the
//! form at `/review` (`POST /review/login`), which sets an `HttpOnly`, `SameSite=Strict`
//! cookie holding a SHA-256 digest of the key (not the key itself); the page's own requests
//! carry that cookie. `Authorization: Bearer` works as everywhere. No keys configured: open.
//!
//! Cost: one read of the record since `?days=` (default 14, at most 90), capped at the last
//! [`MAX_RECORDS`] decisions; the page lists the last `?limit=` of them (default 100, at
//! most [`MAX_LIMIT`]).

mod html;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

pub use html::escape_html;

use super::auth::{Access, REVIEW_COOKIE};
use super::{ApiError, App};
use crate::backend::Backend;
use crate::routing::RoutingConfig;
use crate::store::report::route_of;
use crate::store::Correction;

/// Most decisions the page lists (`?limit=`).
pub const MAX_LIMIT: usize = 500;
/// Default `?limit=`.
pub const DEFAULT_LIMIT: usize = 100;
/// Most decisions read for the accuracy table.
pub const MAX_RECORDS: usize = 20_000;
/// Most days back (`?days=`).
pub const MAX_DAYS: u64 = 90;
/// Default `?days=`.
pub const DEFAULT_DAYS: u64 = 14;
/// How long the sign-in cookie lasts, in seconds.
const COOKIE_MAX_AGE: u64 = 8 * 3600;

const SCRIPT: &str = include_str!("review.js");
const STYLE: &str = include_str!("review.css");

/// One listed decision, ready to render (the values are escaped when rendered).
pub(super) struct Entry {
    decision_id: String,
    id: String,
    time: String,
    text: String,
    decided: String,
    rules: Vec<String>,
    path: String,
    /// The confidence the page sorts by, and whose it is (`model`, `vote`, `support`).
    confidence: Option<(f64, &'static str)>,
    /// `(phrase, route, similarity)`, nearest first, as the record keeps them.
    nearest: Vec<(String, String, f64)>,
    /// The last correction's route, when the decision was corrected.
    corrected: Option<String>,
}

/// One choice of the correction select: the `expected` object as JSON, and its label.
pub(super) struct RouteOption {
    value: String,
    label: String,
}

/// One row of the accuracy table.
pub(super) struct Accuracy {
    day: String,
    route: String,
    decisions: usize,
    corrected: usize,
}

impl Accuracy {
    fn accuracy(&self) -> f64 {
        if self.decisions == 0 {
            return 1.0;
        }
        1.0 - self.corrected as f64 / self.decisions as f64
    }
}

/// The page's query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReviewQuery {
    limit: Option<usize>,
    days: Option<u64>,
}

/// The route of a target (`{"kind": "team", "id": "..."}`) as a person reads it: the team's
/// name from the config when it has one.
fn route_label(config: &RoutingConfig, target: &Value) -> String {
    let id = target.get("id").and_then(Value::as_str);
    match (target.get("kind").and_then(Value::as_str), id) {
        (Some("team"), Some(id)) => match config.teams.iter().find(|t| t.id == id) {
            Some(t) => format!("team {} ({id})", t.name),
            None => format!("team {id}"),
        },
        (Some("agent"), Some(email)) => format!("agent {email}"),
        (Some("none"), _) => "the bot answers".into(),
        (Some("default_routing"), _) => "default routing".into(),
        _ => route_of(&json!({ "target": target })),
    }
}

/// The routes a correction can name: the config's teams and agents, the bot's answer and
/// default routing.
fn route_options(config: &RoutingConfig) -> Vec<RouteOption> {
    let mut out = Vec::new();
    for t in &config.teams {
        let value = json!({"action": "handoff_team", "target": t.id}).to_string();
        out.push(RouteOption { value, label: format!("team {} ({})", t.name, t.id) });
    }
    for a in &config.agents {
        let value = json!({"action": "handoff_agent", "target": a.email}).to_string();
        out.push(RouteOption { value, label: format!("agent {}", a.email) });
    }
    out.push(RouteOption { value: json!({"action": "answer"}).to_string(), label: "the bot answers".into() });
    out.push(RouteOption { value: json!({"action": "default_fallback"}).to_string(), label: "default routing".into() });
    out
}

/// The text as the record keeps it: the (redacted) text, or a note of the hash and length.
fn record_text(record: &Value) -> String {
    match &record["text"] {
        Value::String(s) => s.clone(),
        v => match (v["chars"].as_u64(), v["fnv1a64"].as_str()) {
            (Some(n), Some(h)) => format!("[redacted: {n} characters, fnv1a64 {h}]"),
            _ => "[no text]".into(),
        },
    }
}

/// The confidence that decided: the model's when it was asked, else the vote's.
fn confidence(record: &Value) -> Option<(f64, &'static str)> {
    let field = |k: &str| record.get(k).and_then(Value::as_f64);
    match record["path"].as_str() {
        Some("model") => field("model_confidence").map(|c| (c, "model")),
        _ => None,
    }
    .or_else(|| field("examples_confidence").map(|c| (c, "vote")))
    .or_else(|| field("model_confidence").map(|c| (c, "model")))
    .or_else(|| field("examples_support").map(|c| (c, "support")))
}

/// The corrections by what they name: the decision's `decision_id`, or for corrections that
/// name none, its message id.
struct Corrections<'a>(HashMap<&'a str, &'a Correction>);

impl<'a> Corrections<'a> {
    fn new(corrections: &'a [Correction]) -> Self {
        Corrections(corrections.iter().map(|c| (c.decision_id.as_deref().unwrap_or(&c.message_id), c)).collect())
    }

    /// The last correction of a record.
    fn of(&self, record: &Value) -> Option<&'a Correction> {
        let key = |k: &str| record[k].as_str().and_then(|v| self.0.get(v).copied());
        key("decision_id").or_else(|| key("id").filter(|c| c.decision_id.is_none()))
    }
}

fn entry(config: &RoutingConfig, record: &Value, corrections: &Corrections) -> Entry {
    let text = |k: &str| record[k].as_str().unwrap_or("").to_owned();
    let nearest = record["nearest"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            (n["phrase"].as_str().unwrap_or("").to_owned(), route_label(config, &n["target"]), n["similarity"].as_f64().unwrap_or(0.0))
        })
        .collect();
    let id = text("id");
    Entry {
        corrected: corrections.of(record).map(|c| route_label(config, &c.target)),
        decision_id: text("decision_id"),
        time: text("time"),
        text: record_text(record),
        decided: format!("{} → {}", text("action"), route_label(config, &record["target"])),
        rules: record["rules"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect(),
        path: record["path"].as_str().unwrap_or("unknown").to_owned(),
        confidence: confidence(record),
        nearest,
        id,
    }
}

/// The listed decisions: the last `limit` records, lowest confidence first (those without
/// one last), newest first among equals.
pub(super) fn entries(config: &RoutingConfig, records: &[Value], corrections: &[Correction], limit: usize) -> Vec<Entry> {
    let by_id = Corrections::new(corrections);
    let recent = &records[records.len().saturating_sub(limit)..];
    let mut out: Vec<Entry> = recent.iter().rev().map(|r| entry(config, r, &by_id)).collect();
    // A stable sort keeps the newest first among equal confidences.
    out.sort_by(|a, b| match (a.confidence, b.confidence) {
        (Some((x, _)), Some((y, _))) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    out
}

/// Decisions and corrected decisions per day (UTC) and route, newest day first.
pub(super) fn accuracy(config: &RoutingConfig, records: &[Value], corrections: &[Correction]) -> Vec<Accuracy> {
    let corrected = Corrections::new(corrections);
    let mut table: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for r in records {
        let day = r["time"].as_str().and_then(|t| t.get(..10)).unwrap_or("unknown").to_owned();
        let cell = table.entry((day, route_label(config, &r["target"]))).or_default();
        cell.0 += 1;
        if corrected.of(r).is_some() {
            cell.1 += 1;
        }
    }
    let mut rows: Vec<Accuracy> =
        table.into_iter().map(|((day, route), (decisions, corrected))| Accuracy { day, route, decisions, corrected }).collect();
    rows.sort_by(|a, b| b.day.cmp(&a.day).then_with(|| a.route.cmp(&b.route)));
    rows
}

/// The security headers of every page and file served here.
fn secured(mut res: Response, content_type: &'static str) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn html(status: StatusCode, body: String) -> Response {
    secured((status, body).into_response(), "text/html; charset=utf-8")
}

fn see_review(cookie: String) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/review"));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    secured(res, "text/plain; charset=utf-8")
}

/// `GET /review`.
pub(super) async fn page<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
    query: Result<Query<ReviewQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let access = match app.check_key(&headers) {
        Ok(a) => a,
        Err(_) => return Ok(html(StatusCode::UNAUTHORIZED, html::login_page(None))),
    };
    let bad = |m: String| ApiError::invalid_request(m);
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(format!("limit must be between 1 and {MAX_LIMIT}; it is {limit}")).param("limit"));
    }
    let days = q.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(bad(format!("days must be between 1 and {MAX_DAYS}; it is {days}")).param("days"));
    }
    let since = SystemTime::now() - Duration::from_secs(days * 86_400);
    let unavailable = |e: crate::store::StoreError| ApiError::unavailable(format!("the record cannot be read: {e}")).retry_after(5);
    let store = app.recorder.store();
    let records = store.records(Some(since), Some(MAX_RECORDS)).await.map_err(unavailable)?;
    let corrections = store.corrections(Some(since)).await.map_err(unavailable)?;
    let router = app.router();
    let config = router.config();
    let mut notes = Vec::new();
    if records.len() == MAX_RECORDS {
        notes.push(format!("The accuracy table counts the last {MAX_RECORDS} decisions of the last {days} days."));
    }
    let listed = entries(config, &records, &corrections, limit);
    let table = accuracy(config, &records, &corrections);
    Ok(html(StatusCode::OK, html::review_page(&listed, &route_options(config), &table, &notes, access == Access::Cookie)))
}

/// `POST /review/login` body.
#[derive(Deserialize)]
pub(super) struct Login {
    key: String,
}

/// `POST /review/login`: a right key sets the cookie and goes back to the page.
pub(super) async fn login<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    form: Result<Form<Login>, FormRejection>,
) -> Response {
    let Ok(Form(Login { key })) = form else {
        return html(StatusCode::BAD_REQUEST, html::login_page(Some("The form needs an API key.")));
    };
    if app.config.api_keys.is_empty() {
        return see_review(format!("{REVIEW_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"));
    }
    match app.cookie_for(key.trim()) {
        Some(token) => see_review(format!("{REVIEW_COOKIE}={token}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Strict")),
        None => html(StatusCode::UNAUTHORIZED, html::login_page(Some("That key is not valid."))),
    }
}

/// `POST /review/logout`: clears the cookie.
pub(super) async fn logout() -> Response {
    see_review(format!("{REVIEW_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"))
}

/// `GET /review.js`.
pub(super) async fn script() -> Response {
    secured(SCRIPT.into_response(), "text/javascript; charset=utf-8")
}

/// `GET /review.css`.
pub(super) async fn style() -> Response {
    secured(STYLE.into_response(), "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RoutingConfig {
        RoutingConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/config/routing.example.toml")).unwrap()
    }

    fn record(id: &str, time: &str, team: &str, confidence: Option<f64>) -> Value {
        json!({"id": id, "decision_id": format!("d-{id}"), "time": time, "path": "examples", "text": "<b>hi</b>",
               "action": "handoff_team", "target": {"kind": "team", "id": team}, "rules": ["examples"],
               "examples_confidence": confidence})
    }

    fn correction(id: &str) -> Correction {
        Correction {
            id: format!("c-{id}"),
            time: "2026-12-06T10:00:00Z".into(),
            message_id: id.into(),
            decision_id: Some(format!("d-{id}")),
            action: crate::routing::Action::Answer,
            target: json!({"kind": "none"}),
            note: None,
            author: None,
        }
    }

    #[test]
    fn lowest_confidence_first_and_limit_takes_the_newest() {
        let records = [
            record("a", "2026-12-05T10:00:00Z", "54515931", Some(0.9)),
            record("b", "2026-12-05T11:00:00Z", "54515931", None),
            record("c", "2026-12-06T10:00:00Z", "54515931", Some(0.3)),
            record("d", "2026-12-06T11:00:00Z", "54515931", Some(0.6)),
        ];
        let ids = |es: Vec<Entry>| es.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(entries(&config(), &records, &[], 10)), ["c", "d", "a", "b"]);
        assert_eq!(ids(entries(&config(), &records, &[], 2)), ["c", "d"]);
    }

    #[test]
    fn accuracy_counts_corrected_decisions_per_day_and_route() {
        let records = [
            record("a", "2026-12-05T10:00:00Z", "54515931", Some(0.9)),
            record("b", "2026-12-05T11:00:00Z", "54515931", Some(0.2)),
            record("c", "2026-12-06T10:00:00Z", "54515931", Some(0.3)),
        ];
        let rows = accuracy(&config(), &records, &[correction("b")]);
        let got: Vec<(&str, usize, usize, f64)> = rows.iter().map(|r| (r.day.as_str(), r.decisions, r.corrected, r.accuracy())).collect();
        assert_eq!(got, [("2026-12-06", 1, 0, 1.0), ("2026-12-05", 2, 1, 0.5)]);
        assert_eq!(rows[0].route, "team billing (54515931)");
    }

    #[test]
    fn the_page_escapes_what_the_record_holds() {
        let records = [record("<script>alert(1)</script>", "2026-12-05T10:00:00Z", "54515931", Some(0.5))];
        let page = html::review_page(&entries(&config(), &records, &[], 10), &route_options(&config()), &[], &[], false);
        assert!(page.contains("&lt;b&gt;hi&lt;/b&gt;") && page.contains("data-id=\"&lt;script&gt;alert(1)&lt;/script&gt;\""));
        assert!(!page.contains("<b>hi") && !page.contains("<script>alert"));
        assert_eq!(page.matches("<script").count(), 1, "only the page's own script tag");
    }
}
