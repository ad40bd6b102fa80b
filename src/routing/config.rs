//! The deployment's routing configuration, read from TOML and validated on load.
//!
//! See `config/routing.example.toml` for a complete, commented example. Unknown keys are
//! errors (`deny_unknown_fields` everywhere), so a typo never silently falls back to a default.
//!
//! ```
//! use strictly::routing::{ConfigError, RoutingConfig};
//!
//! let toml = r#"
//!     company = "a bike shop"
//!     bot_handles = "opening hours"
//!     low_confidence_team = "7"
//!     teams = [{ id = "7", name = "workshop", handles = "repairs" }]
//!     agents = [{ email = "boss@bikes.example", role = "owner" }]
//!     [replies]
//!     answer = "Happy to help."
//!     handoff_agent = "Connecting you to the owner."
//!     handoff_team = "Connecting you to the workshop."
//!     default_fallback = "Someone will get back to you."
//!     [audit]
//!     path = "logs/audit.jsonl"
//! "#;
//! let cfg = RoutingConfig::from_toml_str(toml)?;
//! assert_eq!(cfg.confidence_threshold, 0.7);
//!
//! let bad = toml.replace(r#"low_confidence_team = "7""#, r#"low_confidence_team = "8""#);
//! let err = RoutingConfig::from_toml_str(&bad).unwrap_err();
//! assert_eq!(err.to_string(), "low_confidence_team `8` is not a defined team id");
//! # Ok::<(), ConfigError>(())
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::audit::Redaction;
use super::classification::{Action, REASON_MAX_CHARS};

/// A validated routing configuration. Build it with [`RoutingConfig::load`] or
/// [`RoutingConfig::from_toml_str`]; both reject an inconsistent config with a [`ConfigError`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// How the system prompt names the business, e.g. `"an e-commerce company"`.
    pub company: String,
    /// What the bot answers itself, for the `answer` action in the prompt,
    /// e.g. `"delivery times, payment methods"`.
    pub bot_handles: String,
    /// Below this confidence the message goes to [`low_confidence_team`](Self::low_confidence_team).
    /// In `[0, 1]`; default `0.7`.
    #[serde(default = "default_threshold")]
    pub confidence_threshold: f32,
    /// Team id that takes messages the model is unsure about. Must be one of [`teams`](Self::teams).
    pub low_confidence_team: String,
    /// Teams, addressed by `KM_ASSIGN_TEAM`.
    pub teams: Vec<Team>,
    /// Agents, addressed by `KM_ASSIGN_TO`.
    #[serde(default)]
    pub agents: Vec<Agent>,
    /// The bot's message for each final action.
    pub replies: Replies,
    /// Switches for the rule layer.
    #[serde(default)]
    pub rules: RuleSwitches,
    /// Prompt construction settings.
    #[serde(default)]
    pub prompt: PromptSettings,
    /// Where and how decisions are logged.
    pub audit: AuditSettings,
    /// How the example phrases vote on a route.
    #[serde(default)]
    pub vote: VoteSettings,
    /// Example phrases per route: few-shot examples for the model, and the voters of the
    /// examples' vote.
    #[serde(default)]
    pub examples: Vec<ExampleRoute>,
    /// Whether corrections become learned phrases (`[learning]`, default off; see
    /// [`learning`](crate::routing::learning)).
    #[serde(default)]
    pub learning: super::learning::LearningSettings,
    /// Which backend routes (`[backend]`, default local) and the OpenAI backend's settings
    /// (`[backend.openai]`); `--backend` overrides the kind.
    #[serde(default)]
    pub backend: crate::backend::BackendSettings,
}

/// A team that conversations can be assigned to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    /// Kommunicate team id, as a string (e.g. `"54515931"`).
    pub id: String,
    /// Short name for the prompt, e.g. `"billing"`.
    pub name: String,
    /// What the team handles, in a few words, for the prompt.
    pub handles: String,
}

/// A human agent that conversations can be assigned to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// The address the agent logs in with; Kommunicate's agent user id.
    pub email: String,
    /// Role and what the agent takes, for the prompt.
    pub role: String,
}

/// The bot's message for each final action: what the customer sees.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replies {
    /// Sent when the bot answers itself.
    pub answer: String,
    /// Sent on handoff to a named agent.
    pub handoff_agent: String,
    /// Sent on handoff to a team (including the low-confidence team).
    pub handoff_team: String,
    /// Sent whenever the platform's default routing takes over: fallback, refusals,
    /// unknown targets and malformed model output.
    pub default_fallback: String,
}

impl Replies {
    /// The message for a final action.
    pub fn for_action(&self, action: Action) -> &str {
        match action {
            Action::Answer => &self.answer,
            Action::HandoffAgent => &self.handoff_agent,
            Action::HandoffTeam => &self.handoff_team,
            Action::DefaultFallback => &self.default_fallback,
        }
    }
}

/// Switches for the rule layer; every one defaults to `true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSwitches {
    /// Treat messages matching the injection heuristics as refusals.
    pub prompt_injection: bool,
    /// Judge confidence by the decoder's probability of the chosen action when the backend
    /// reports it; otherwise (or when `false`) by the model's self-reported `confidence`.
    pub prefer_token_probability: bool,
    /// `handoff_agent` without an agent goes to the team in `assignTeam` if that is valid;
    /// when `false` it goes straight to default routing.
    pub agent_missing_uses_team: bool,
    /// Below the confidence threshold, take the route that the configured
    /// example phrases most similar to the message vote for (see [`VoteSettings`])
    /// instead of `low_confidence_team`. Default `false`.
    pub low_confidence_uses_examples: bool,
    /// When the example phrases' vote finds the message out of scope (support below
    /// [`VoteSettings::min_support`]), route it by default routing without asking the model,
    /// whatever the model would say. Default `false`.
    pub out_of_scope_uses_examples: bool,
}

impl RuleSwitches {
    /// Whether any rule asks the examples' vote.
    pub fn uses_examples(&self) -> bool {
        self.low_confidence_uses_examples || self.out_of_scope_uses_examples
    }
}

impl Default for RuleSwitches {
    fn default() -> Self {
        RuleSwitches {
            prompt_injection: true,
            prefer_token_probability: true,
            agent_missing_uses_team: true,
            low_confidence_uses_examples: false,
            out_of_scope_uses_examples: false,
        }
    }
}

/// Prompt construction settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptSettings {
    /// How many retrieved examples to show; default 5.
    pub few_shot: usize,
    /// Longer customer messages are cut to this many characters; default 2000.
    pub max_message_chars: usize,
}

impl Default for PromptSettings {
    fn default() -> Self {
        PromptSettings { few_shot: 5, max_message_chars: 2000 }
    }
}

/// How the example phrases vote (`[vote]`): the `k` phrases most similar to the message add
/// their similarities, raised to `power`, to their routes' tallies, and the heaviest route
/// wins. See [`ExampleVote`](crate::routing::ExampleVote).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoteSettings {
    /// How many of the nearest phrases vote; at least 1, default 5.
    pub k: usize,
    /// When the winner's tally over `k` (its support, in `[0, 1]`) is below this, the message
    /// is out of scope: default routing instead of the winner. Default `0`, never.
    pub min_support: f32,
    /// The similarity to raise each voter's similarity to before adding it up: higher lets the
    /// closest phrases outweigh looser ones. At least 1; default 2.
    pub power: i32,
    /// When even the nearest phrase is less similar than this, nothing the deployment handles
    /// is near: out of scope. Default `0`, never.
    pub min_similarity: f32,
    /// With a sentence encoder, the share of the word-and-trigram similarity in each phrase's
    /// similarity (the rest is the embeddings' cosine). Default 0: meaning alone.
    pub lexical_weight: f32,
    /// When the vote's confidence (the winner's share of the nearest phrases' weight) is at
    /// least this, the vote routes the message and the model is not asked: a cascade, where the model decides what the examples leave open. Unset
    /// (the default): the model is asked about every in-scope message.
    pub decide_at: Option<f32>,
    /// When the model is asked, its schema offers only the routes of the `shortlist` heaviest
    /// in the vote (plus default routing and the refusal), so the examples narrow what the
    /// model chooses between. Unset (the default): every configured route.
    pub shortlist: Option<usize>,
}

impl Default for VoteSettings {
    fn default() -> Self {
        VoteSettings { k: 5, min_support: 0.0, power: 2, min_similarity: 0.0, lexical_weight: 0.0, decide_at: None, shortlist: None }
    }
}

/// Audit log settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// JSON-lines file, relative to the working directory; parent directories are created.
    pub path: PathBuf,
    /// How much of the customer's text is stored; default [`Redaction::Digits`].
    #[serde(default)]
    pub redact: Redaction,
}

/// A route (action plus target) and phrases a customer might write for it.
///
/// Several entries may share a route, e.g. one per intent, each with its own reason.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleRoute {
    /// The action the phrases should produce.
    pub action: Action,
    /// Team id for `handoff_team`, agent email for `handoff_agent`, absent otherwise.
    #[serde(default)]
    pub target: Option<String>,
    /// The `reason` the example answers carry (at most 80 characters).
    pub reason: String,
    /// Customer messages for this route.
    pub phrases: Vec<String>,
}

/// Why a routing config was rejected. Each message names the offending item.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read routing config {}: {source}", path.display())]
    Read {
        /// The path given to [`RoutingConfig::load`].
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Not valid TOML, a wrong type, a missing key or an unknown key.
    #[error("invalid routing config: {0}")]
    Parse(#[from] toml::de::Error),
    /// `confidence_threshold` is not in `[0, 1]`.
    #[error("confidence_threshold {0} is outside [0, 1]")]
    ThresholdOutOfRange(f32),
    /// `[vote] power` is outside 1..=8, or `min_similarity` or `lexical_weight` outside `[0, 1]`.
    #[error("[vote] needs power in 1..=8 and min_similarity, lexical_weight in [0, 1], got {power}, {min_similarity}, {lexical_weight}")]
    BadVoteWeights {
        /// The configured `power`.
        power: i32,
        /// The configured `min_similarity`.
        min_similarity: f32,
        /// The configured `lexical_weight`.
        lexical_weight: f32,
    },
    /// `[vote] shortlist` is 0: the model would have no route to choose.
    #[error("[vote] shortlist must be at least 1")]
    EmptyShortlist,
    /// `[vote] decide_at` is outside `[0, 1]`.
    #[error("[vote] decide_at {0} is outside [0, 1]")]
    BadDecideAt(f32),
    /// `[vote] k` is 0 or `min_support` is outside `[0, 1]`.
    #[error("[vote] needs k >= 1 and min_support in [0, 1], got k = {k}, min_support = {min_support}")]
    BadVote {
        /// The configured `k`.
        k: usize,
        /// The configured `min_support`.
        min_support: f32,
    },
    /// A team has an empty or blank id.
    #[error("team `{0}` has an empty id")]
    EmptyTeamId(String),
    /// Two teams share an id.
    #[error("duplicate team id `{0}`")]
    DuplicateTeam(String),
    /// An agent email is not of the form `local@domain.tld`.
    #[error("agent email `{0}` is malformed")]
    MalformedEmail(String),
    /// Two agents share an email (compared case-insensitively).
    #[error("duplicate agent email `{0}`")]
    DuplicateAgent(String),
    /// `low_confidence_team` names no team.
    #[error("low_confidence_team `{0}` is not a defined team id")]
    UnknownLowConfidenceTeam(String),
    /// A `handoff_team` example names no team.
    #[error("example for handoff_team targets `{0}`, which is not a defined team id")]
    UnknownExampleTeam(String),
    /// A `handoff_agent` example names no agent.
    #[error("example for handoff_agent targets `{0}`, which is not a defined agent email")]
    UnknownExampleAgent(String),
    /// A handoff example without a target.
    #[error("example for {0} needs a target")]
    MissingTarget(Action),
    /// An `answer` or `default_fallback` example with a target.
    #[error("example for {action} takes no target, got `{target}`")]
    UnexpectedTarget {
        /// The example's action.
        action: Action,
        /// The target it should not have.
        target: String,
    },
    /// `[learning]` values out of range.
    #[error("{0}")]
    BadLearning(String),
    /// An example reason the schema would not allow.
    #[error("example reason `{0}` must be 1 to {max} characters", max = REASON_MAX_CHARS)]
    BadReason(String),
}

fn default_threshold() -> f32 {
    0.7
}

impl RoutingConfig {
    /// Reads and validates a TOML file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml_str(&text)
    }

    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let cfg: RoutingConfig = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The team with this exact id.
    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    /// The agent with this email, compared case-insensitively (email addresses are, in practice).
    pub fn agent(&self, email: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.email.eq_ignore_ascii_case(email))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.confidence_threshold) {
            return Err(ConfigError::ThresholdOutOfRange(self.confidence_threshold));
        }
        let VoteSettings { k, min_support, power, min_similarity, lexical_weight, decide_at, shortlist } = self.vote;
        if k == 0 || !(0.0..=1.0).contains(&min_support) {
            return Err(ConfigError::BadVote { k, min_support });
        }
        if !(1..=8).contains(&power) || !(0.0..=1.0).contains(&min_similarity) || !(0.0..=1.0).contains(&lexical_weight) {
            return Err(ConfigError::BadVoteWeights { power, min_similarity, lexical_weight });
        }
        if shortlist == Some(0) {
            return Err(ConfigError::EmptyShortlist);
        }
        if let Some(at) = decide_at.filter(|at| !(0.0..=1.0).contains(at)) {
            return Err(ConfigError::BadDecideAt(at));
        }
        self.learning.check().map_err(ConfigError::BadLearning)?;
        let mut ids = HashSet::new();
        for team in &self.teams {
            if team.id.trim().is_empty() {
                return Err(ConfigError::EmptyTeamId(team.name.clone()));
            }
            if !ids.insert(team.id.as_str()) {
                return Err(ConfigError::DuplicateTeam(team.id.clone()));
            }
        }
        let mut emails = HashSet::new();
        for agent in &self.agents {
            if !is_email(&agent.email) {
                return Err(ConfigError::MalformedEmail(agent.email.clone()));
            }
            if !emails.insert(agent.email.to_ascii_lowercase()) {
                return Err(ConfigError::DuplicateAgent(agent.email.clone()));
            }
        }
        if self.team(&self.low_confidence_team).is_none() {
            return Err(ConfigError::UnknownLowConfidenceTeam(self.low_confidence_team.clone()));
        }
        self.examples.iter().try_for_each(|ex| self.validate_example(ex))
    }

    fn validate_example(&self, ex: &ExampleRoute) -> Result<(), ConfigError> {
        let reason_len = ex.reason.chars().count();
        if reason_len == 0 || reason_len > REASON_MAX_CHARS {
            return Err(ConfigError::BadReason(ex.reason.clone()));
        }
        match (ex.action, &ex.target) {
            (Action::HandoffTeam | Action::HandoffAgent, None) => Err(ConfigError::MissingTarget(ex.action)),
            (Action::HandoffTeam, Some(id)) if self.team(id).is_none() => Err(ConfigError::UnknownExampleTeam(id.clone())),
            // Exact spelling: the example's target is copied into few-shot answers, which must
            // use the configured email the schema's enum allows.
            (Action::HandoffAgent, Some(email)) if !self.agents.iter().any(|a| &a.email == email) => {
                Err(ConfigError::UnknownExampleAgent(email.clone()))
            }
            (Action::Answer | Action::DefaultFallback, Some(target)) => {
                Err(ConfigError::UnexpectedTarget { action: ex.action, target: target.clone() })
            }
            _ => Ok(()),
        }
    }
}

/// A deliberately simple shape check: one `@`, a non-empty local part, a dotted domain
/// whose labels are non-empty, and no whitespace or control characters.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}
