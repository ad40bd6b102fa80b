//! `strictly serve`: the router as an HTTP service (axum on tokio).
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /kommunicate/webhook` | Kommunicate's custom-bot contract: an array of `{message, metadata}` |
//! | `POST /v1/route` | `{"message", "id"}` → the decision, the payload and the explanation |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (model warmed up, not shutting down) |
//! | `GET /metrics` | Prometheus (OpenMetrics text) |
//!
//! The request path: the cheap stage ([`Router::screen`]: injection check, the examples' vote)
//! runs on a blocking thread; only messages it cannot settle queue for the model
//! ([`worker::ModelQueue`], one dedicated thread, bounded, with a lane of its own for routing
//! that a generation of the OpenAI endpoints lets in between its tokens). Every decision, whichever path made
//! it (examples, model, deadline, overload, refusal, injection, error, event), is appended to the
//! audit log and synced before the reply. The webhook never gets a 429/5xx for load: a full
//! queue (or one that cannot answer before the deadline, counting the routing work ahead) or a
//! passed deadline becomes default routing (`KM_ASSIGN_TO: ""`), audited with the
//! rule `overloaded` or `deadline`. A retried delivery (same `key`) gets the first answer again
//! and writes no second line.
//!
//! | file | job |
//! |---|---|
//! | `config.rs` | [`ServeConfig`]: TOML and environment |
//! | `error.rs` | [`ApiError`] and the body checks every endpoint shares |
//! | `auth.rs` | bearer keys and the webhook secret |
//! | `app.rs` | [`App`]: the shared state, the cheap stage, the queue, the audited record |
//! | `webhook.rs` | `POST /kommunicate/webhook` and retried deliveries |
//! | `route.rs` | `POST /v1/route` |
//! | `http.rs` | [`routes`], probes, `/metrics`, the request log |
//! | `limits.rs` | what a request may cost before a handler sees it: URI, headers, body (size, time) |
//! | `logs.rs` | text logs with control characters escaped |
//! | `server.rs` | [`start`], [`run`]: the accept loop, the connection cap, graceful shutdown |
//! | `worker.rs`, `metrics.rs`, `openai/` | the model thread, Prometheus, the OpenAI-compatible endpoints |

mod app;
mod auth;
mod config;
mod error;
mod http;
mod limits;
mod logs;
pub mod metrics;
pub mod openai;
mod route;
mod server;
mod webhook;
pub mod worker;

pub use app::App;
pub use config::ServeConfig;
pub use error::ApiError;
pub use http::routes;
pub use logs::{escape_controls, text_fields};
pub use server::{run, start, start_with, Server};

use error::{body_bytes, internal, parse_json};

use crate::backend::Backend;
use crate::routing::router::{RouteError, Router};
use crate::routing::RoutingConfig;


/// The one place the service builds its [`Router`]: every server (the command, the tests)
/// goes through here, so a change to the router's inputs is made once.
pub fn build_router<B: Backend>(config: RoutingConfig, backend: B) -> Result<Router<B>, RouteError> {
    Router::new(config, backend, true)
}
