//! `strictly serve`: the router as an HTTP service (axum on tokio).
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /kommunicate/webhook` | Kommunicate's custom-bot contract: an array of `{message, metadata}` |
//! | `POST /v1/route` | `{"message", "id"}` → the decision, the payload and the explanation |
//! | `POST /v1/feedback` | `{"id", "expected"}`: a correction of a decision, stored beside it |
//! | `POST /admin/reload` | reload the routing config and the learned phrases (as SIGHUP does) |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (model warmed up, not shutting down) |
//! | `GET /metrics` | Prometheus (OpenMetrics text) |
//! | `GET /review` | the review page: recent decisions, one-click corrections, accuracy by route ([`review`]) |
//!
//! The request path: the cheap stage ([`Router::screen`]: injection check, the examples' vote)
//! runs on a blocking thread; only messages it cannot settle queue for the model
//! ([`worker::ModelQueue`], one dedicated thread, bounded, with a lane of its own for routing
//! that a generation of the OpenAI endpoints lets in between its tokens). Every decision, whichever
//! path made it (examples, model, deadline, overload, refusal, injection, error, event), is
//! committed to the [store](crate::store) (the audit log, synced, or PostgreSQL) before the reply;
//! when the store cannot be written it goes to the spool, replayed when the store is back, and
//! `/readyz` says `degraded`. The webhook never gets a 429/5xx for load: a full
//! queue (or one that cannot answer before the deadline, counting the routing work ahead) or a
//! passed deadline becomes default routing (`KM_ASSIGN_TO: ""`), audited with the
//! rule `overloaded` or `deadline`. A retried delivery (same `key`) gets the first answer again
//! and writes no second record, on any replica sharing the store and after a restart: the key
//! is claimed in the store before the message is routed.
//!
//! | file | job |
//! |---|---|
//! | `config.rs` | [`ServeConfig`]: TOML and environment |
//! | `error.rs` | [`ApiError`] and the body checks every endpoint shares |
//! | `auth.rs` | bearer keys and the webhook secret |
//! | `app.rs` | [`App`]: the shared state, the cheap stage, the queue, the audited record |
//! | `webhook.rs` | `POST /kommunicate/webhook` and retried deliveries |
//! | `route.rs` | `POST /v1/route` |
//! | `review/` | `GET /review`, its sign-in, its script and style |
//! | `feedback.rs` | `POST /v1/feedback` |
//! | `reload.rs` | reloading the routing config and learned phrases: SIGHUP, `POST /admin/reload` |
//! | `http.rs` | [`routes`], probes, `/metrics`, the request log |
//! | `limits.rs` | what a request may cost before a handler sees it: URI, headers, body (size, time) |
//! | `logs.rs` | text logs with control characters escaped |
//! | `server.rs` | [`start`], [`run`]: the accept loop, the connection cap, graceful shutdown |
//! | `alloc.rs` | the allocator's `mmap` threshold held fixed, so dropped schemas give their memory back |
//! | `worker.rs`, `metrics.rs`, `openai/` | the model thread, Prometheus, the OpenAI-compatible endpoints |

mod alloc;
mod app;
mod auth;
mod config;
mod error;
mod feedback;
mod http;
mod limits;
mod logs;
pub mod metrics;
pub mod openai;
mod reload;
pub mod review;
mod route;
mod server;
mod webhook;
pub mod worker;

pub use app::App;
pub use config::ServeConfig;
pub use error::ApiError;
pub use http::routes;
pub use limits::{MAX_DISCARD_BYTES, MAX_HEADERS, MAX_HEADER_BYTES, MAX_URI_BYTES};
pub use logs::{escape_controls, text_fields};
pub use reload::Reloaded;
pub use review::escape_html;
pub use server::{run, start, start_with, Server};

use error::{body_bytes, internal, parse_json};

use crate::backend::Backend;
use crate::routing::router::{Router, RouterBuilder};
use crate::routing::RoutingConfig;
use crate::store::spool::Spool;
use crate::store::{Recorder, Store, StoreError};

/// The one place the service starts its [`Router`]'s builder: every server (the command, the
/// tests) goes through here. The router writes no audit of its own (the server's
/// [store](crate::store) keeps the record); the caller chooses how the phrases are matched
/// ([`RouterBuilder::encoder`] or [`RouterBuilder::words_only`]) and builds it.
pub fn router_builder<B: Backend>(config: RoutingConfig, backend: B) -> RouterBuilder<B> {
    Router::builder(config).backend(backend).no_audit()
}

/// Opens the configured store (the embedded one over the routing config's audit path, or
/// PostgreSQL) and its spool, and starts the spool's replay.
pub async fn open_recorder(config: &ServeConfig, routing: &RoutingConfig) -> Result<std::sync::Arc<Recorder>, StoreError> {
    let audit = &routing.audit.path;
    let store = Store::open(&config.store, audit, config.recent_keys).await?;
    let stem = audit.file_stem().map_or_else(|| "audit".into(), |s| s.to_string_lossy().into_owned());
    let spool_path = config.store.spool_path.clone().unwrap_or_else(|| audit.with_file_name(format!("{stem}.spool.jsonl")));
    let max = config.store.spool_max;
    let spool = tokio::task::spawn_blocking(move || Spool::open(&spool_path, max)).await.map_err(StoreError::query)??;
    Ok(Recorder::start(store, spool))
}
