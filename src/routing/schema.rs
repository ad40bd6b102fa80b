//! The deployment schema: the JSON Schema the decoder enforces, derived from the config.
//!
//! The seed schema (`grammars/support_classification.schema.json`) uses free strings for the
//! targets. Here the targets become enums of the configured ids, so a constrained model can only
//! name teams and agents that exist, and each action gets its own branch so that the targets
//! always fit the action:
//!
//! | branch | `action` | `assignTo` | `assignTeam` |
//! |---|---|---|---|
//! | 1 | `"answer"` | `null` | `null` |
//! | 2 | `"handoff_agent"` | agent email | `null` |
//! | 3 | `"handoff_team"` | `null` | team id |
//! | 4 | `"default_fallback"` | `null` | `null` |
//! | 5 | refusal object `{"refusal": "..."}` | | |
//!
//! (Branch 2 is left out when the config has no agents.) `action` is the first property of
//! every classification branch, so the decoder's branch point between the actions is one token
//! position, and the probabilities there are the model's confidence in each action.
//!
//! **`customerMessage` is dropped.** The seed schema makes the model echo the message. For a
//! 135M model that costs one generated token per message token (a 2,000-character message is
//! about 500 tokens, i.e. seconds on a CPU, against ~30 for the rest of the object), adds nothing
//! the caller does not already have, and the copy can drift or be truncated. It would also make
//! the model repeat injected text into its own output.
//!
//! Only these keywords are used: `type`, `enum`, `const`, `properties`, `required`,
//! `additionalProperties`, `anyOf`, `minLength`, `maxLength`, `minimum`, `maximum`.

use serde_json::{json, Value};

use super::classification::{keys, Action, Target, REASON_MAX_CHARS, REFUSAL_MAX_CHARS};
use super::config::RoutingConfig;

/// The schema every model output must match for this deployment (draft 2020-12).
///
/// ```
/// use strictly::routing::{deployment_schema, RoutingConfig};
///
/// let cfg = RoutingConfig::load("config/routing.example.toml")?;
/// let schema = deployment_schema(&cfg);
/// let team_branch = &schema["anyOf"][2]["properties"];
/// assert_eq!(team_branch["action"]["const"], "handoff_team");
/// assert_eq!(team_branch["assignTeam"]["enum"][0], "54515931");
/// # Ok::<(), strictly::routing::ConfigError>(())
/// ```
pub fn deployment_schema(cfg: &RoutingConfig) -> Value {
    schema_over(cfg, |_| true)
}

/// The deployment schema narrowed to some routes: only the listed teams, agents and (when
/// [`Target::None`] is listed) the answer. Default routing and the refusal stay, whatever the
/// list, so the model can always say the message is none of them. Unknown ids are ignored.
///
/// ```
/// use strictly::routing::{shortlist_schema, RoutingConfig};
/// use strictly::routing::Target;
///
/// let cfg = RoutingConfig::load("config/routing.example.toml")?;
/// let schema = shortlist_schema(&cfg, &[Target::Team("77120034".into()), Target::None]);
/// let actions: Vec<&str> = schema["anyOf"].as_array().unwrap().iter()
///     .filter_map(|b| b["properties"]["action"]["const"].as_str()).collect();
/// assert_eq!(actions, ["answer", "handoff_team", "default_fallback"]);
/// assert_eq!(schema["anyOf"][1]["properties"]["assignTeam"]["enum"], serde_json::json!(["77120034"]));
/// # Ok::<(), strictly::routing::ConfigError>(())
/// ```
pub fn shortlist_schema(cfg: &RoutingConfig, routes: &[Target]) -> Value {
    schema_over(cfg, |t| routes.contains(t))
}

fn schema_over(cfg: &RoutingConfig, keep: impl Fn(&Target) -> bool) -> Value {
    let null = json!({ "type": "null" });
    let team_ids: Vec<&str> = cfg.teams.iter().map(|t| t.id.as_str()).filter(|id| keep(&Target::Team((*id).into()))).collect();
    let emails: Vec<&str> = cfg.agents.iter().map(|a| a.email.as_str()).filter(|e| keep(&Target::Agent((*e).into()))).collect();
    let teams = json!({ "type": "string", "enum": team_ids });
    let agents = json!({ "type": "string", "enum": emails });

    let mut branches: Vec<Value> = Action::ALL
        .into_iter()
        .filter(|&action| match action {
            Action::HandoffAgent => !emails.is_empty(),
            Action::HandoffTeam => !team_ids.is_empty(),
            Action::Answer => keep(&Target::None),
            Action::DefaultFallback => true,
        })
        .map(|action| {
            let (assign_to, assign_team) = match action {
                Action::HandoffAgent => (&agents, &null),
                Action::HandoffTeam => (&null, &teams),
                Action::Answer | Action::DefaultFallback => (&null, &null),
            };
            json!({
                "type": "object",
                "properties": {
                    keys::ACTION: { "const": action.as_str() },
                    keys::ASSIGN_TO: assign_to,
                    keys::ASSIGN_TEAM: assign_team,
                    keys::REASON: { "type": "string", "minLength": 1, "maxLength": REASON_MAX_CHARS },
                    keys::CONFIDENCE: { "type": "number", "minimum": 0, "maximum": 1 }
                },
                "required": keys::CLASSIFICATION,
                "additionalProperties": false
            })
        })
        .collect();
    branches.push(json!({
        "type": "object",
        "properties": { keys::REFUSAL: { "type": "string", "minLength": 1, "maxLength": REFUSAL_MAX_CHARS } },
        "required": [keys::REFUSAL],
        "additionalProperties": false
    }));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "SupportRouting",
        "anyOf": branches
    })
}
