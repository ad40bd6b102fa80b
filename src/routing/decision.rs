//! What the rules decided for one message, and what the model said: the types the router,
//! the Kommunicate payload and the audit log share. They know nothing of the configuration.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::classification::{Action, Target};
use crate::backend::{Billing, Usage};

/// What a backend returned for one message: the constrained output plus decoder statistics.
///
/// Fields a backend cannot provide are `None` or empty; e.g. a free-text API has no
/// `action_probability`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelVerdict {
    /// The parsed JSON (classification or refusal object); `None` if the backend returned a
    /// refusal string instead.
    pub output: Option<Value>,
    /// Backend-level refusal (e.g. OpenAI `message.refusal`).
    pub refusal: Option<String>,
    /// Model probability of the chosen action, from token probabilities under the mask.
    pub action_probability: Option<f32>,
    /// Probability of each action alternative at its branch points.
    pub action_alternatives: Vec<(String, f32)>,
    /// The same for the chosen target (team id or email), if any.
    pub target_probability: Option<f32>,
    /// Backend name, e.g. `"local"` or `"openai"`.
    pub backend: String,
    /// Model name.
    pub model: String,
    /// Time spent in the backend.
    pub latency_ms: f64,
}

/// What the model said about one message: the answer a backend's reply becomes, which the
/// rules read and the routed result carries. A message the model was not asked about has a
/// verdict without output; a failed call has the backend's error.
///
/// It serializes (inside [`Routed`](super::Routed)) as the output, the action alternatives,
/// the error and the call's token counts and bill.
#[derive(Debug, Clone, Default)]
pub struct ModelAnswer {
    /// The model's answer as the rules see it (a failed call gives a verdict without output).
    pub verdict: ModelVerdict,
    /// The backend's error, when it failed.
    pub backend_error: Option<String>,
    /// The error's [`BackendError::kind`](crate::backend::BackendError::kind), when the backend
    /// returned one.
    pub error_kind: Option<&'static str>,
    /// Token counts, when the backend gave an output.
    pub usage: Option<Usage>,
    /// What a remote backend billed, when it gave an output.
    pub billing: Option<Billing>,
}

impl From<ModelVerdict> for ModelAnswer {
    fn from(verdict: ModelVerdict) -> Self {
        ModelAnswer { verdict, ..ModelAnswer::default() }
    }
}

impl Serialize for ModelAnswer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ModelAnswer", 6)?;
        s.serialize_field("output", &self.verdict.output)?;
        s.serialize_field("action_alternatives", &self.verdict.action_alternatives)?;
        s.serialize_field("backend_error", &self.backend_error)?;
        match self.error_kind {
            Some(kind) => s.serialize_field("backend_error_kind", kind)?,
            None => s.skip_field("backend_error_kind")?,
        }
        match &self.usage {
            Some(usage) => s.serialize_field("usage", usage)?,
            None => s.skip_field("usage")?,
        }
        match &self.billing {
            Some(billing) => s.serialize_field("billing", billing)?,
            None => s.skip_field("billing")?,
        }
        s.end()
    }
}

/// A rule that changed or explained a decision. The `snake_case` names are stable: they go
/// into audit logs and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// The message looks like a prompt injection.
    PromptInjection,
    /// The backend or the model refused.
    Refusal,
    /// The output is missing or not a well-formed classification.
    MalformedOutput,
    /// Confidence below the threshold.
    LowConfidence,
    /// `handoff_agent` without an agent.
    AgentMissing,
    /// `handoff_team` without a team.
    TeamMissing,
    /// An agent email that is not configured.
    UnknownAgent,
    /// A team id that is not configured.
    UnknownTeam,
    /// Both `assignTo` and `assignTeam` set; the agent won.
    BothTargets,
    /// `answer` with a target; the target was ignored.
    AnswerWithTarget,
    /// The model chose `default_fallback`.
    DefaultFallback,
    /// The nearest example phrases chose the route.
    ExamplesVote,
    /// The examples were asked, and no phrase is similar enough to the message.
    OutOfScope,
    /// `strictly serve`: routing could not finish before the webhook's deadline; default routing.
    Deadline,
    /// `strictly serve`: the model queue was full; the webhook got default routing at once.
    Overloaded,
    /// `strictly serve`: a conversation event (e.g. Kommunicate's `WELCOME`) got the configured reply.
    Event,
    /// `strictly serve`: a message without text (attachment, location, ...) got the configured reply.
    NotText,
}

impl Rule {
    /// The stable name, e.g. `"low_confidence"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::PromptInjection => "prompt_injection",
            Rule::Refusal => "refusal",
            Rule::MalformedOutput => "malformed_output",
            Rule::LowConfidence => "low_confidence",
            Rule::AgentMissing => "agent_missing",
            Rule::TeamMissing => "team_missing",
            Rule::UnknownAgent => "unknown_agent",
            Rule::UnknownTeam => "unknown_team",
            Rule::BothTargets => "both_targets",
            Rule::AnswerWithTarget => "answer_with_target",
            Rule::DefaultFallback => "default_fallback",
            Rule::ExamplesVote => "examples_vote",
            Rule::OutOfScope => "out_of_scope",
            Rule::Deadline => "deadline",
            Rule::Overloaded => "overloaded",
            Rule::Event => "event",
            Rule::NotText => "not_text",
        }
    }
}

/// The outcome for one message: what the bot does, and what the model said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The final action, always `target.action()`.
    pub action: Action,
    /// The final target.
    pub target: Target,
    /// The model's `action`, verbatim (may be invalid).
    pub model_action: Option<String>,
    /// The model's `assignTo`, verbatim.
    pub model_assign_to: Option<String>,
    /// The model's `assignTeam`, verbatim.
    pub model_assign_team: Option<String>,
    /// The model's `reason`, or the refusal text.
    pub reason: Option<String>,
    /// Confidence from token probabilities (the verdict's `action_probability`).
    pub model_confidence: Option<f32>,
    /// The model's self-reported `confidence`.
    pub reported_confidence: Option<f32>,
    /// The examples' vote: the winner's support in `[0, 1]`, when the examples were asked.
    pub examples_support: Option<f32>,
    /// The examples' vote: the winner's share of the nearest phrases' weight.
    pub examples_confidence: Option<f32>,
    /// The rules that fired, in order.
    pub rules: Vec<Rule>,
    /// The bot's message for the final action, from the config's `[replies]`.
    pub reply: String,
}

impl Decision {
    /// A decision on `target` that the model and the examples took no part in: the rules that
    /// chose it and the bot's reply; every model and examples field is `None`. [`decide_with`]
    /// fills those in; the service makes its own decisions (events, deadlines) with this alone.
    ///
    /// [`decide_with`]: super::decide_with
    ///
    /// ```
    /// use strictly::routing::{Action, Decision, Rule, Target};
    ///
    /// let d = Decision::new(Target::DefaultRouting, vec![Rule::Deadline], "One moment please".into());
    /// assert_eq!(d.action, Action::DefaultFallback);
    /// assert!(d.model_action.is_none() && d.examples_support.is_none());
    /// ```
    pub fn new(target: Target, rules: Vec<Rule>, reply: String) -> Self {
        Decision {
            action: target.action(),
            target,
            model_action: None,
            model_assign_to: None,
            model_assign_team: None,
            reason: None,
            model_confidence: None,
            reported_confidence: None,
            examples_support: None,
            examples_confidence: None,
            rules,
            reply,
        }
    }
}
