//! The classification a model writes, as types: the [`Action`], the [`Target`] it carries
//! out, and the output object's keys ([`keys`]). The deployment schema, the prompt's examples,
//! the rules and the router all name the keys through this module, so no file spells
//! `"assignTeam"` on its own.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Maximum length of `reason`, in characters.
pub const REASON_MAX_CHARS: usize = 80;
/// Maximum length of a refusal's text, in characters.
pub const REFUSAL_MAX_CHARS: usize = 120;

/// The keys of the classification object (and of the refusal object) the model writes.
pub mod keys {
    /// The [`Action`](super::Action), by its wire name.
    pub const ACTION: &str = "action";
    /// The agent's email, or null.
    pub const ASSIGN_TO: &str = "assignTo";
    /// The team's id, or null.
    pub const ASSIGN_TEAM: &str = "assignTeam";
    /// One short sentence saying why.
    pub const REASON: &str = "reason";
    /// The self-reported confidence in `[0, 1]`.
    pub const CONFIDENCE: &str = "confidence";
    /// The only key of the refusal object.
    pub const REFUSAL: &str = "refusal";
    /// Every key of the classification object, in the order the schema requires them.
    pub const CLASSIFICATION: [&str; 5] = [ACTION, ASSIGN_TO, ASSIGN_TEAM, REASON, CONFIDENCE];
}

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
#[non_exhaustive]
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
    pub const ALL: [Action; 4] = [Action::Answer, Action::HandoffAgent, Action::HandoffTeam, Action::DefaultFallback];

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

/// Where a conversation goes. Serializes as `{"kind":"team","id":"54515931"}`, `{"kind":"none"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    /// Nobody: the bot answers.
    None,
    /// A configured agent, by email.
    Agent(String),
    /// A configured team, by id.
    Team(String),
    /// Kommunicate's conversation rules pick a human.
    DefaultRouting,
}

impl Target {
    /// The action this target carries out.
    pub fn action(&self) -> Action {
        match self {
            Target::None => Action::Answer,
            Target::Agent(_) => Action::HandoffAgent,
            Target::Team(_) => Action::HandoffTeam,
            Target::DefaultRouting => Action::DefaultFallback,
        }
    }

    /// The target of `action` naming `target` (a team id or an agent's email), as a config's
    /// example, a correction or a learned phrase spells it. A handoff without a name (which
    /// validation rules out) is default routing.
    pub fn from_parts(action: Action, target: Option<&str>) -> Target {
        match (action, target) {
            (Action::HandoffTeam, Some(id)) => Target::Team(id.to_owned()),
            (Action::HandoffAgent, Some(email)) => Target::Agent(email.to_owned()),
            (Action::Answer, _) => Target::None,
            _ => Target::DefaultRouting,
        }
    }

    /// The team id or the agent's email; none for the bot's answer and default routing.
    pub fn name(&self) -> Option<&str> {
        match self {
            Target::Team(id) | Target::Agent(id) => Some(id),
            Target::None | Target::DefaultRouting => None,
        }
    }
}

/// A well-formed classification object, borrowed from the model's output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classification<'a> {
    /// The action.
    pub action: Action,
    /// `assignTo`; a blank string counts as null (free-string backends write them).
    pub assign_to: Option<&'a str>,
    /// `assignTeam`; a blank string counts as null.
    pub assign_team: Option<&'a str>,
    /// `reason`.
    pub reason: &'a str,
    /// The self-reported `confidence`, within `[0, 1]`.
    pub confidence: f32,
}

impl<'a> Classification<'a> {
    /// Reads a classification object strictly: every key present with the right type, the
    /// confidence within `[0, 1]`. Extra keys (e.g. the seed schema's `customerMessage`) are
    /// ignored. `None` for anything else.
    ///
    /// ```
    /// use strictly::routing::{Action, Classification};
    /// let out = serde_json::json!({"action": "handoff_team", "assignTo": " ", "assignTeam": "54515931",
    ///                              "reason": "double charge", "confidence": 0.9});
    /// let c = Classification::from_output(&out).unwrap();
    /// assert_eq!((c.action, c.assign_to, c.assign_team), (Action::HandoffTeam, None, Some("54515931")));
    /// assert!(Classification::from_output(&serde_json::json!({"action": "answer"})).is_none());
    /// ```
    pub fn from_output(output: &'a Value) -> Option<Self> {
        let target = |key| match output.get(key)? {
            Value::Null => Some(None),
            Value::String(s) => Some(Some(s.as_str()).filter(|s| !s.trim().is_empty())),
            _ => None,
        };
        let confidence = output.get(keys::CONFIDENCE)?.as_f64().filter(|c| (0.0..=1.0).contains(c))?;
        Some(Classification {
            action: output.get(keys::ACTION)?.as_str()?.parse().ok()?,
            assign_to: target(keys::ASSIGN_TO)?,
            assign_team: target(keys::ASSIGN_TEAM)?,
            reason: output.get(keys::REASON)?.as_str()?,
            confidence: confidence as f32,
        })
    }
}
