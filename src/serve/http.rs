//! The HTTP routes over an [`App`], the probes, the metrics endpoint and the request log.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};

use super::feedback::feedback;
use super::review;
use super::route::route;
use super::webhook::webhook;
use super::{openai, ApiError, App};
use crate::backend::Backend;
use crate::store::Health;

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz<B: Backend + Send + Sync + 'static>(State(app): State<Arc<App<B>>>) -> Response {
    if app.stopping.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "shutting_down"}))).into_response()
    } else if !app.ready.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "starting"}))).into_response()
    } else {
        let router = app.router();
        let model = router.backend().model();
        match app.recorder.health() {
            Health::Ok => Json(json!({"status": "ready", "model": model})).into_response(),
            // Decisions are safe in the spool: keep serving, and say so.
            Health::Degraded(reason) => Json(json!({"status": "degraded", "reason": reason, "model": model})).into_response(),
            Health::Failing(reason) => {
                (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "failing", "reason": reason, "model": model}))).into_response()
            }
        }
    }
}

async fn metrics_text<B: Backend + Send + Sync + 'static>(State(app): State<Arc<App<B>>>) -> Response {
    app.metrics.set_spool_depth(app.recorder.spool_depth());
    let mut res = app.metrics.encode().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    res
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::method_not_allowed(&method)
}

/// Counts and logs every request (endpoint = the matched route, so unknown paths share one label).
async fn observe<B: Backend + Send + Sync + 'static>(State(app): State<Arc<App<B>>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let endpoint = req.extensions().get::<MatchedPath>().map_or("other".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().clone();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    app.metrics.request(&endpoint, status, seconds);
    tracing::info!(target: "strictly::http", method = %method, endpoint, status, latency_ms = seconds * 1e3, "request");
    res
}

/// The HTTP routes over a state.
pub fn routes<B: Backend + Send + Sync + 'static>(app: Arc<App<B>>) -> axum::Router {
    let limit = app.config.max_body_bytes;
    axum::Router::new()
        .route("/kommunicate/webhook", post(webhook::<B>))
        .route("/v1/route", post(route::<B>))
        .route("/review", get(review::page::<B>))
        .route("/review/login", post(review::login::<B>))
        .route("/review/logout", post(review::logout))
        .route("/review.js", get(review::script))
        .route("/review.css", get(review::style))
        .route("/v1/feedback", post(feedback::<B>))
        .route("/admin/reload", post(super::reload::admin_reload::<B>))
        .route("/v1/models", get(openai::models::<B>))
        .route("/v1/chat/completions", post(openai::chat_completions::<B>))
        .route("/v1/responses", post(openai::responses::<B>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<B>))
        .route("/metrics", get(metrics_text::<B>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), super::limits::limits::<B>))
        .layer(middleware::from_fn_with_state(app.clone(), observe::<B>))
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::internal("internal error").into_response()
        }))
        .with_state(app)
}
