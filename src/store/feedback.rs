//! Corrections from reviewers (`POST /v1/feedback`, `strictly feedback add`): what a decision
//! should have been, checked against the routing config and stored beside the decision.
//!
//! A correction names its decision by `decision_id` (or by message id: the newest decision of
//! that message) and the expected route: an action and, for a handoff, the team id (or its
//! name) or the agent's email as the config spells them. [`correct`] refuses
//! - an id that is no decision ([`FeedbackError::UnknownDecision`]), or is a correction's own
//!   id ([`FeedbackError::IsCorrection`]);
//! - an action that is none of the four, a team or agent the config does not name, a handoff
//!   without a target or an answer with one ([`FeedbackError::Invalid`]);
//! - a correction equal to the decision's latest one ([`FeedbackError::AlreadyCorrected`]).
//!
//! A later correction to something else is kept beside the first: the latest one counts.

use std::path::PathBuf;

use serde_json::Value;

use super::{new_correction_id, phrases, Correction, EmbeddedStore, Store, StoreError};
use crate::backend::Backend;
use crate::routing::learning::{plan, LearnedPhrase, LearningSettings};
use crate::routing::{Action, Router, RoutingConfig, Target};

/// Why a correction was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedbackError {
    /// No decision has this id.
    #[error("no decision with id {0:?}")]
    UnknownDecision(String),
    /// The id is a correction's: a correction is not corrected (correct its decision).
    #[error("{0:?} is a correction, not a decision; correct the decision it names")]
    IsCorrection(String),
    /// The decision's latest correction already says this.
    #[error("decision {decision} is already corrected to this ({correction})")]
    AlreadyCorrected {
        /// The decision's id.
        decision: String,
        /// The correction that says so.
        correction: String,
    },
    /// The expected route is not one the config has.
    #[error("{0}")]
    Invalid(String),
    /// The store cannot be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The route `action` and `target` name under `config`: a team by id (or by its name when no
/// id matches), an agent by email (any case; the config's spelling is kept), no target for
/// `answer` and `default_fallback`.
///
/// ```
/// use strictly::routing::{RoutingConfig, Target};
/// use strictly::store::feedback::expected_route;
/// let cfg = RoutingConfig::load("config/routing.example.toml")?;
/// assert_eq!(expected_route(&cfg, "handoff_team", Some("54515931")).unwrap(), Target::Team("54515931".into()));
/// assert!(expected_route(&cfg, "handoff_team", Some("nobody")).is_err());
/// assert!(expected_route(&cfg, "answer", Some("54515931")).is_err());
/// # Ok::<(), strictly::routing::ConfigError>(())
/// ```
pub fn expected_route(config: &RoutingConfig, action: &str, target: Option<&str>) -> Result<Target, FeedbackError> {
    let invalid = |m: String| Err(FeedbackError::Invalid(m));
    let Ok(action) = action.parse::<Action>() else {
        return invalid(format!("unknown action {action:?}; expected answer, handoff_agent, handoff_team or default_fallback"));
    };
    let target = target.map(str::trim).filter(|t| !t.is_empty());
    match (action, target) {
        (Action::Answer, None) => Ok(Target::None),
        (Action::DefaultFallback, None) => Ok(Target::DefaultRouting),
        (Action::Answer | Action::DefaultFallback, Some(t)) => invalid(format!("{action} takes no target, got {t:?}")),
        (Action::HandoffTeam | Action::HandoffAgent, None) => invalid(format!("{action} needs a target")),
        (Action::HandoffTeam, Some(t)) => {
            let team = config.team(t).or_else(|| {
                let mut named = config.teams.iter().filter(|team| team.name == t);
                named.next().filter(|_| named.next().is_none())
            });
            match team {
                Some(team) => Ok(Target::Team(team.id.clone())),
                None => invalid(format!("no team {t:?} in the routing config")),
            }
        }
        (Action::HandoffAgent, Some(t)) => match config.agent(t) {
            Some(agent) => Ok(Target::Agent(agent.email.clone())),
            None => invalid(format!("no agent {t:?} in the routing config")),
        },
    }
}

/// Where decisions are looked up and corrections kept: an open [`Store`], or the embedded
/// store's files read and appended to while a server may have them open ([`Files`]).
#[allow(async_fn_in_trait)]
pub trait Corrections {
    /// The decision record with this `decision_id`, else the newest with this message id.
    async fn record(&self, id: &str) -> Result<Option<Value>, StoreError>;
    /// Every correction, oldest first.
    async fn all_corrections(&self) -> Result<Vec<Correction>, StoreError>;
    /// Stores a correction.
    async fn add(&self, correction: &Correction) -> Result<(), StoreError>;
    /// The learned phrases, oldest first, and their generation.
    async fn phrases(&self) -> Result<(Vec<LearnedPhrase>, u64), StoreError>;
    /// Removes the learned phrases `remove` and adds `add`.
    async fn change_phrases(&self, add: Option<&LearnedPhrase>, remove: &[String]) -> Result<(), StoreError>;
}

impl Corrections for Store {
    async fn record(&self, id: &str) -> Result<Option<Value>, StoreError> {
        Store::record(self, id).await
    }
    async fn all_corrections(&self) -> Result<Vec<Correction>, StoreError> {
        self.corrections(None).await
    }
    async fn add(&self, correction: &Correction) -> Result<(), StoreError> {
        self.add_correction(correction).await
    }
    async fn phrases(&self) -> Result<(Vec<LearnedPhrase>, u64), StoreError> {
        Store::phrases(self).await
    }
    async fn change_phrases(&self, add: Option<&LearnedPhrase>, remove: &[String]) -> Result<(), StoreError> {
        Store::change_phrases(self, add, remove).await
    }
}

/// The embedded store's files beside the audit file at `audit`, without opening the store.
pub struct Files {
    /// The audit file.
    pub audit: PathBuf,
}

impl Corrections for Files {
    async fn record(&self, id: &str) -> Result<Option<Value>, StoreError> {
        EmbeddedStore::find_record(&self.audit, id)
    }
    async fn all_corrections(&self) -> Result<Vec<Correction>, StoreError> {
        EmbeddedStore::read_corrections(&self.audit, None)
    }
    async fn add(&self, correction: &Correction) -> Result<(), StoreError> {
        EmbeddedStore::append_correction(&self.audit, correction)
    }
    async fn phrases(&self) -> Result<(Vec<LearnedPhrase>, u64), StoreError> {
        phrases::read_embedded(&self.audit)
    }
    async fn change_phrases(&self, add: Option<&LearnedPhrase>, remove: &[String]) -> Result<(), StoreError> {
        phrases::change_embedded(&self.audit, add, remove)
    }
}

/// Whether a correction is about this decision (by its `decision_id`, or by message id for a
/// correction that names none).
fn concerns(c: &Correction, decision_id: &str, message_id: &str) -> bool {
    match &c.decision_id {
        Some(d) => d == decision_id,
        None => c.message_id == message_id,
    }
}

/// Corrects the decision `id` to `expected` (see the [module docs](self)); returns the stored
/// correction and the decision's record.
pub async fn correct(
    store: &impl Corrections,
    id: &str,
    expected: &Target,
    note: Option<String>,
    author: Option<String>,
) -> Result<(Correction, Value), FeedbackError> {
    let Some(record) = store.record(id).await? else {
        let corrections = store.all_corrections().await?;
        return Err(if corrections.iter().any(|c| c.id == id) {
            FeedbackError::IsCorrection(id.to_owned())
        } else {
            FeedbackError::UnknownDecision(id.to_owned())
        });
    };
    let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (decision_id, message_id) = (text("decision_id"), text("id"));
    let target = serde_json::to_value(expected).map_err(StoreError::query)?;
    let corrections = store.all_corrections().await?;
    if let Some(last) = corrections.iter().rev().find(|c| concerns(c, &decision_id, &message_id)) {
        if last.action == expected.action() && last.target == target {
            return Err(FeedbackError::AlreadyCorrected { decision: decision_id, correction: last.id.clone() });
        }
    }
    let correction = Correction {
        id: new_correction_id(),
        time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        message_id,
        decision_id: Some(decision_id),
        action: expected.action(),
        target,
        note,
        author,
    };
    store.add(&correction).await?;
    Ok((correction, record))
}

/// The route a stored correction names.
pub fn corrected_route(c: &Correction) -> Target {
    Target::from_parts(c.action, c.target.get("id").and_then(Value::as_str))
}

/// Makes a correction a learned phrase when `settings` enable learning: the decision's text as
/// the audit kept it (none when the audit keeps only a hash), for the corrected route, after
/// removing the phrases [`plan`] says it replaces, as near as `router` judges them
/// ([`Router::similarity_to`]: the encoder's cosine, or words). Returns the phrase, or `None`
/// when nothing was learned.
pub async fn learn(
    store: &impl Corrections,
    settings: &LearningSettings,
    correction: &Correction,
    record: &Value,
    router: &Router<impl Backend>,
) -> Result<Option<LearnedPhrase>, StoreError> {
    if !settings.enabled {
        return Ok(None);
    }
    let Some(text) = record.get("text").and_then(Value::as_str).filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let phrase = LearnedPhrase::new(&corrected_route(correction), text, Some(&correction.id), correction.decision_id.as_deref());
    let (existing, _) = store.phrases().await?;
    let removed = plan(&existing, &phrase, settings, router.similarity_to(text));
    store.change_phrases(Some(&phrase), &removed).await?;
    Ok(Some(phrase))
}
