//! A deployment's routing: its configuration, and the schema and prompt derived from it.
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

pub mod config;
pub mod prompt;
pub(crate) mod retrieve;
pub mod schema;
#[cfg(feature = "local")]
pub(crate) mod semantic;

use serde::{Deserialize, Serialize};

pub use config::{
    Agent, ConfigError, ExampleRoute, Replies, RoutingConfig, RuleSwitches, Team, VoteSettings,
};
pub use prompt::{sanitize_message, ChatMessage, PromptBuilder, Role};
pub use schema::{deployment_schema, shortlist_schema};

/// What the bot does with a message: the four actions of the classification schema.
///
/// Serialized in `snake_case`, exactly as the model writes it:
///
/// ```
/// use strictly::routing::Action;
/// assert_eq!(Action::HandoffTeam.as_str(), "handoff_team");
/// assert_eq!("default_fallback".parse(), Ok(Action::DefaultFallback));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The bot replies itself.
    Answer,
    /// A named agent takes over (`KM_ASSIGN_TO: <email>`).
    HandoffAgent,
    /// A team takes over (`KM_ASSIGN_TEAM: <id>`).
    HandoffTeam,
    /// The platform's routing rules pick a human (`KM_ASSIGN_TO: ""`).
    DefaultFallback,
}

impl Action {
    /// All actions, in the order the schema and prompt list them.
    pub const ALL: [Action; 4] = [
        Action::Answer,
        Action::HandoffAgent,
        Action::HandoffTeam,
        Action::DefaultFallback,
    ];

    /// The wire name, e.g. `"handoff_agent"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Answer => "answer",
            Action::HandoffAgent => "handoff_agent",
            Action::HandoffTeam => "handoff_team",
            Action::DefaultFallback => "default_fallback",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Action {
    type Err = ();

    /// Parses a wire name; anything else (case differs, unknown verb) is `Err(())`.
    fn from_str(s: &str) -> Result<Self, ()> {
        Action::ALL.into_iter().find(|a| a.as_str() == s).ok_or(())
    }
}
