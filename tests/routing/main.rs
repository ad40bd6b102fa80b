//! Routing: the configuration, the examples' vote, the prompt and schema the model decodes
//! under, the rules, the Kommunicate payload and audit line, the sentence encoder, the local
//! decoder, the CLI's `route`, `lint` and `tune`.

#[path = "../common/mod.rs"]
mod common;

mod decode;
mod encoder;
mod kommunicate_audit;
mod route;
mod router_api;
mod routing_config;
mod routing_meaning;
mod routing_prompt;
mod routing_schema;
mod rules;
mod schema_lint;
mod tune;
