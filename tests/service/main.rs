//! The service: `strictly serve` over HTTP (webhook, /v1/route, OpenAI-compatible endpoints
//! with the official SDKs), its limits, the store (embedded and a real PostgreSQL), several
//! replicas, and the llama.cpp anchor.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/llamacpp.rs"]
mod llamacpp;

mod ab;
mod error_sources;
mod fleet;
mod fleet_failures;
mod learn;
mod llamacpp_logits;
mod openai;
mod openai_backend;
mod openai_llamacpp;
mod openai_types;
mod review;
mod serve;
mod serve_limits;
mod store;
