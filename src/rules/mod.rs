//! The rule layer: turns what the model said into what the bot does.
//!
//! [`decide`] applies these rules, in this order; each one that fires is recorded in
//! [`Decision::rules`] by a stable [`Rule`] name:
//!
//! 1. `prompt_injection` — the message trips [`looks_like_injection`] (if enabled): default routing.
//!    (1b) `out_of_scope` — with [`decide_with`]'s ballot and `out_of_scope_uses_examples` on: no
//!    route's example phrases are near the message (the vote's support is below
//!    `[vote] min_support`): default routing, whatever the model said.
//! 2. `refusal` — the backend refused, or the output is a `{"refusal": ...}` object: default routing.
//! 3. `malformed_output` — no output, or an object that is not a well-formed classification
//!    (missing key, wrong type, unknown action, confidence outside `[0, 1]`): default routing.
//! 4. `low_confidence` — the confidence is below the threshold: the low-confidence team, or,
//!    when [`decide_with`] is given the examples' [`Ballot`] and `low_confidence_uses_examples` is
//!    on, the examples' vote (below). The confidence is the decoder's probability of the
//!    chosen action when the backend reports it (and `prefer_token_probability` is on), else
//!    the self-reported `confidence`.
//! 5. By action:
//!    - `answer`: the bot replies; a target, if any, is ignored (`answer_with_target`);
//!    - `default_fallback`: default routing (`default_fallback`);
//!    - both `assignTo` and `assignTeam` set on a handoff: the agent wins, as `KM_ASSIGN_TO`
//!      does on the platform (`both_targets`);
//!    - `handoff_agent` without an agent: the team in `assignTeam` if any (and
//!      `agent_missing_uses_team` is on), else default routing (`agent_missing`);
//!    - `handoff_team` without a team: default routing (`team_missing`);
//!    - a team or agent that is not configured: default routing (`unknown_team`, `unknown_agent`).
//!
//! The examples' vote, when it is asked (low confidence as above, or no model at all:
//! [`decide_with`] without a verdict, after rule 1):
//! - `out_of_scope` — the vote's support is below `[vote] min_support`: default routing;
//! - `examples_vote` — the route the nearest phrases vote for.
//!
//! "Default routing" is `KM_ASSIGN_TO: ""`: Kommunicate's conversation rules pick a human.
//! Empty or blank `assignTo`/`assignTeam` strings count as null (free-string backends use them).

mod examples;
mod injection;

use serde::Serialize;
use serde_json::Value;

use crate::routing::{Action, RoutingConfig};
pub use examples::{Ballot, ExampleVote};
pub use injection::looks_like_injection;

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
}

/// A rule that changed or explained a decision. The `snake_case` names are stable: they go
/// into audit logs and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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

/// A well-formed classification object.
struct Classification<'a> {
    action: Action,
    assign_to: Option<&'a str>,
    assign_team: Option<&'a str>,
    confidence: f32,
}

/// Applies the rules (see the [module docs](self)) to one verdict. Never panics, whatever the
/// verdict holds.
///
/// ```
/// use serde_json::json;
/// use strictly::routing::{Action, RoutingConfig};
/// use strictly::rules::{decide, ModelVerdict, Rule, Target};
///
/// let cfg = RoutingConfig::load("config/routing.example.toml")?;
/// let verdict = ModelVerdict {
///     output: Some(json!({"action": "handoff_team", "assignTo": null, "assignTeam": "54515931",
///                         "reason": "double charge", "confidence": 0.9})),
///     action_probability: Some(0.55),
///     ..Default::default()
/// };
/// let d = decide(&cfg, "I was charged twice", &verdict);
/// assert_eq!(d.target, Target::Team(cfg.low_confidence_team.clone()));
/// assert_eq!(d.rules, [Rule::LowConfidence]);
/// # Ok::<(), strictly::routing::ConfigError>(())
/// ```
pub fn decide(cfg: &RoutingConfig, message: &str, verdict: &ModelVerdict) -> Decision {
    decide_with(cfg, message, Some(verdict), None)
}

/// [`decide`], with the examples' vote on this message ([`ExampleVote::vote`], taken once by
/// the caller): the ballot screens out-of-scope messages (when `out_of_scope_uses_examples` is
/// on), decides low-confidence ones (when `low_confidence_uses_examples` is on), and decides
/// every message when no model was asked (`verdict` is `None`). Without a verdict or a
/// ballot, the decision is `malformed_output`.
///
/// ```
/// use strictly::routing::RoutingConfig;
/// use strictly::rules::{decide_with, ExampleVote, Rule, Target};
///
/// let cfg = RoutingConfig::load("config/routing.example.toml")?;
/// let examples = ExampleVote::new(&cfg);
/// let message = "my password reset link never arrives";
/// let d = decide_with(&cfg, message, None, examples.vote(message).as_ref());
/// assert_eq!(d.target, Target::Team("98234710".into()));
/// assert_eq!(d.rules, [Rule::ExamplesVote]);
/// let message = "who painted the Mona Lisa?";
/// let d = decide_with(&cfg, message, None, examples.vote(message).as_ref());
/// assert_eq!(d.target, Target::DefaultRouting);
/// # Ok::<(), strictly::routing::ConfigError>(())
/// ```
pub fn decide_with(
    cfg: &RoutingConfig,
    message: &str,
    verdict: Option<&ModelVerdict>,
    ballot: Option<&Ballot>,
) -> Decision {
    let mut rules = Vec::new();
    let target = route(cfg, message, verdict, ballot, &mut rules).unwrap_or_else(|rule| {
        rules.push(rule);
        Target::DefaultRouting
    });
    let none = ModelVerdict::default();
    let verdict = verdict.unwrap_or(&none);
    let output = verdict.output.as_ref();
    let field = |key: &str| {
        output
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let action = target.action();
    Decision {
        action,
        target,
        model_action: field("action"),
        model_assign_to: field("assignTo"),
        model_assign_team: field("assignTeam"),
        reason: verdict
            .refusal
            .clone()
            .or_else(|| field("reason"))
            .or_else(|| field("refusal")),
        model_confidence: verdict.action_probability,
        reported_confidence: output
            .and_then(|o| o.get("confidence"))
            .and_then(Value::as_f64)
            .map(|c| c as f32),
        examples_support: ballot.map(|b| b.support),
        examples_confidence: ballot.map(|b| b.confidence),
        rules,
        reply: cfg.replies.for_action(action).to_owned(),
    }
}

/// The target, or the rule that sends the message to default routing. Rules that only
/// annotate the decision are pushed onto `rules`.
fn route(
    cfg: &RoutingConfig,
    message: &str,
    verdict: Option<&ModelVerdict>,
    ballot: Option<&Ballot>,
    rules: &mut Vec<Rule>,
) -> Result<Target, Rule> {
    if cfg.rules.prompt_injection && looks_like_injection(message) {
        return Err(Rule::PromptInjection);
    }
    let Some(verdict) = verdict else {
        return ballot.map_or(Err(Rule::MalformedOutput), |b| vote(b, rules));
    };
    if cfg.rules.out_of_scope_uses_examples && ballot.is_some_and(|b| b.out_of_scope) {
        return Err(Rule::OutOfScope);
    }
    let output = verdict.output.as_ref();
    if verdict.refusal.is_some()
        || output
            .and_then(|o| o.get("refusal"))
            .is_some_and(Value::is_string)
    {
        return Err(Rule::Refusal);
    }
    let c = output
        .and_then(classification)
        .ok_or(Rule::MalformedOutput)?;
    let confidence = match verdict.action_probability {
        Some(p) if cfg.rules.prefer_token_probability => p,
        _ => c.confidence,
    };
    if confidence.is_nan() || confidence < cfg.confidence_threshold {
        rules.push(Rule::LowConfidence);
        return match ballot {
            Some(b) if cfg.rules.low_confidence_uses_examples => vote(b, rules),
            _ => Ok(Target::Team(cfg.low_confidence_team.clone())),
        };
    }
    let agent = |email: &str| {
        cfg.agent(email)
            .map(|a| Target::Agent(a.email.clone()))
            .ok_or(Rule::UnknownAgent)
    };
    let team = |id: &str| {
        cfg.team(id)
            .map(|t| Target::Team(t.id.clone()))
            .ok_or(Rule::UnknownTeam)
    };
    match (c.action, c.assign_to, c.assign_team) {
        (Action::Answer, None, None) => Ok(Target::None),
        (Action::Answer, ..) => {
            rules.push(Rule::AnswerWithTarget);
            Ok(Target::None)
        }
        (Action::DefaultFallback, ..) => Err(Rule::DefaultFallback),
        (Action::HandoffAgent | Action::HandoffTeam, Some(email), Some(_)) => {
            rules.push(Rule::BothTargets);
            agent(email)
        }
        (Action::HandoffAgent, Some(email), None) => agent(email),
        (Action::HandoffAgent, None, Some(id)) if cfg.rules.agent_missing_uses_team => {
            rules.push(Rule::AgentMissing);
            team(id)
        }
        (Action::HandoffAgent, None, _) => Err(Rule::AgentMissing),
        (Action::HandoffTeam, None, Some(id)) => team(id),
        (Action::HandoffTeam, _, None) => Err(Rule::TeamMissing),
    }
}

/// The examples' verdict: out of scope (default routing), or the route they vote for (a vote
/// for default routing is an `Err` too, like every rule that ends in default routing).
fn vote(ballot: &Ballot, rules: &mut Vec<Rule>) -> Result<Target, Rule> {
    match &ballot.target {
        _ if ballot.out_of_scope => Err(Rule::OutOfScope),
        Target::DefaultRouting => Err(Rule::ExamplesVote),
        target => {
            rules.push(Rule::ExamplesVote);
            Ok(target.clone())
        }
    }
}

/// Reads a classification object strictly: every key present with the right type. Extra keys
/// (e.g. the seed schema's `customerMessage`) are ignored.
fn classification(output: &Value) -> Option<Classification<'_>> {
    let target = |key| match output.get(key)? {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.as_str()).filter(|s| !s.trim().is_empty())),
        _ => None,
    };
    let confidence = output
        .get("confidence")?
        .as_f64()
        .filter(|c| (0.0..=1.0).contains(c))?;
    output.get("reason")?.as_str()?;
    Some(Classification {
        action: output.get("action")?.as_str()?.parse().ok()?,
        assign_to: target("assignTo")?,
        assign_team: target("assignTeam")?,
        confidence: confidence as f32,
    })
}
