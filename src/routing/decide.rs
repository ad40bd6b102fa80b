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

use serde_json::Value;

use super::classification::{keys, Action, Classification, Target};
use super::config::RoutingConfig;
use super::decision::{Decision, ModelVerdict, Rule};
use super::injection::looks_like_injection;
use super::vote::Ballot;

/// Applies the rules (see the [module docs](self)) to one verdict. Never panics, whatever the
/// verdict holds.
///
/// ```
/// use serde_json::json;
/// use strictly::routing::{Action, RoutingConfig};
/// use strictly::routing::{decide, ModelVerdict, Rule, Target};
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
/// use strictly::routing::{decide_with, ExampleVote, Rule, Target};
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
pub fn decide_with(cfg: &RoutingConfig, message: &str, verdict: Option<&ModelVerdict>, ballot: Option<&Ballot>) -> Decision {
    let mut rules = Vec::new();
    let target = route(cfg, message, verdict, ballot, &mut rules).unwrap_or_else(|rule| {
        rules.push(rule);
        Target::DefaultRouting
    });
    let none = ModelVerdict::default();
    let verdict = verdict.unwrap_or(&none);
    let output = verdict.output.as_ref();
    let field = |key: &str| output.and_then(|o| o.get(key)).and_then(Value::as_str).map(str::to_owned);
    let action = target.action();
    let reply = cfg.replies.for_action(action).to_owned();
    Decision {
        model_action: field(keys::ACTION),
        model_assign_to: field(keys::ASSIGN_TO),
        model_assign_team: field(keys::ASSIGN_TEAM),
        reason: verdict.refusal.clone().or_else(|| field(keys::REASON)).or_else(|| field(keys::REFUSAL)),
        model_confidence: verdict.action_probability,
        reported_confidence: output.and_then(|o| o.get(keys::CONFIDENCE)).and_then(Value::as_f64).map(|c| c as f32),
        examples_support: ballot.map(|b| b.support),
        examples_confidence: ballot.map(|b| b.confidence),
        ..Decision::new(target, rules, reply)
    }
}

/// The rule that sends a message to default routing before the examples' vote or the model
/// is looked at (rule 1, `prompt_injection`, when enabled), if one does. [`decide_with`]
/// applies it first; a caller that replays many ballots for one message (`strictly tune`)
/// applies it once.
pub fn rule_before_vote(cfg: &RoutingConfig, message: &str) -> Option<Rule> {
    (cfg.rules.prompt_injection && looks_like_injection(message)).then_some(Rule::PromptInjection)
}

/// The target [`decide_with`] gives a message that no model was asked about and that
/// [`rule_before_vote`] let through: the route the ballot votes for, or default routing when
/// the ballot is out of scope or votes for it.
///
/// ```
/// use strictly::routing::{decide_with, examples_route, ExampleVote, RoutingConfig};
///
/// let cfg = RoutingConfig::load("config/routing.example.toml")?;
/// let message = "my password reset link never arrives";
/// let ballot = ExampleVote::new(&cfg).vote(message).unwrap();
/// assert_eq!(examples_route(&ballot), decide_with(&cfg, message, None, Some(&ballot)).target);
/// # Ok::<(), strictly::routing::ConfigError>(())
/// ```
pub fn examples_route(ballot: &Ballot) -> Target {
    vote(ballot, &mut Vec::new()).unwrap_or(Target::DefaultRouting)
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
    if let Some(rule) = rule_before_vote(cfg, message) {
        return Err(rule);
    }
    let Some(verdict) = verdict else {
        return ballot.map_or(Err(Rule::MalformedOutput), |b| vote(b, rules));
    };
    if cfg.rules.out_of_scope_uses_examples && ballot.is_some_and(|b| b.out_of_scope) {
        return Err(Rule::OutOfScope);
    }
    let output = verdict.output.as_ref();
    if verdict.refusal.is_some() || output.and_then(|o| o.get(keys::REFUSAL)).is_some_and(Value::is_string) {
        return Err(Rule::Refusal);
    }
    let c = output.and_then(Classification::from_output).ok_or(Rule::MalformedOutput)?;
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
    let agent = |email: &str| cfg.agent(email).map(|a| Target::Agent(a.email.clone())).ok_or(Rule::UnknownAgent);
    let team = |id: &str| cfg.team(id).map(|t| Target::Team(t.id.clone())).ok_or(Rule::UnknownTeam);
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
