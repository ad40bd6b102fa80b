//! The routing layer: one support message in, one Kommunicate action out.
//!
//! Its files, bottom-up (each imports only the ones above it):
//! - [`classification`]: the [`Action`], the [`Target`] and the output object's keys;
//! - [`decision`]: what the model said ([`ModelVerdict`]) and what the rules made of it
//!   ([`Decision`], [`Rule`]);
//! - [`kommunicate`]: the payload and webhook bodies; [`audit`]: the append-only log;
//! - [`config`]: the deployment ([`RoutingConfig`]); [`learning`]: phrases learned from
//!   corrections, added to the configured ones; [`schema`] and [`prompt`]: what the model
//!   may say and is told; [`injection`]: the prompt-injection screen;
//! - `retrieve`, `semantic` and [`vote`]: the example phrases' vote by words and by meaning;
//! - `branches`: the model's confidence in each action, from the decoder's branch points;
//! - [`decide`]: the rules; [`router`]: the [`Router`] that runs them all for one message.
//!
//! Everything the model sees and may say comes from one [`RoutingConfig`]:
//! - [`deployment_schema`] turns the teams and agents into enums, so the decoder can only
//!   emit ids that exist;
//! - [`PromptBuilder`] writes a system prompt that depends only on the config (so it can be
//!   prefix-cached), then adds the few-shot examples nearest to the incoming message.
//!
//! ```
//! use strictly::routing::{deployment_schema, PromptBuilder, RoutingConfig};
//!
//! let cfg = RoutingConfig::load("config/routing.example.toml")?;
//! let schema = deployment_schema(&cfg);
//! let messages = PromptBuilder::new(&cfg).build("I was charged twice for my order");
//! assert_eq!(schema["anyOf"].as_array().unwrap().len(), 5);
//! assert_eq!(messages.last().unwrap().content, "I was charged twice for my order");
//! # Ok::<(), strictly::routing::ConfigError>(())
//! ```

pub mod audit;
pub(crate) mod branches;
pub mod classification;
pub mod config;
pub mod decide;
pub mod decision;
pub mod injection;
pub mod kommunicate;
pub mod learning;
pub mod prompt;
pub(crate) mod retrieve;
pub mod router;
pub mod schema;
#[cfg(feature = "local")]
pub(crate) mod semantic;
pub mod vote;

pub use classification::{keys, Action, Classification, Target};
pub use config::{Agent, ConfigError, ExampleRoute, Replies, RoutingConfig, RuleSwitches, Team, VoteSettings};
pub use decide::{decide, decide_with, examples_route, rule_before_vote};
pub use decision::{Decision, ModelAnswer, ModelVerdict, Rule};
pub use injection::looks_like_injection;
pub use prompt::{sanitize_message, ChatMessage, PromptBuilder, Role};
pub use router::{AuditTarget, NoBackend, RouteError, Routed, Router, RouterBuilder};
pub use schema::{deployment_schema, shortlist_schema};
pub use vote::{Ballot, ExampleVote, Similarities, Tally};
