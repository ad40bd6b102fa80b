//! Routing config: the example deployment loads, and every validation error names its item.

use strictly::routing::audit::Redaction;
use strictly::routing::{Action, ConfigError, RoutingConfig};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/routing.example.toml");

/// A small valid config; the cases below each break one thing.
const BASE: &str = r#"
company = "a bike shop"
bot_handles = "opening hours"
low_confidence_team = "1"

[replies]
answer = "a"
handoff_agent = "b"
handoff_team = "c"
default_fallback = "d"

[audit]
path = "logs/audit.jsonl"

[[teams]]
id = "1"
name = "workshop"
handles = "repairs"

[[teams]]
id = "2"
name = "sales"
handles = "new bikes"

[[agents]]
email = "boss@bikes.example"
role = "owner"

[[examples]]
action = "handoff_team"
target = "1"
reason = "repair"
phrases = ["my chain snapped"]
"#;

fn error(toml: &str) -> String {
    RoutingConfig::from_toml_str(toml).expect_err("config should be rejected").to_string()
}

#[test]
fn example_config_loads() {
    let cfg = RoutingConfig::load(EXAMPLE).unwrap();
    let ids: Vec<_> = cfg.teams.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["54515931", "98234710", "77120034"]);
    let emails: Vec<_> = cfg.agents.iter().map(|a| a.email.as_str()).collect();
    assert_eq!(emails, ["billing@company.com", "senior@company.com"]);
    assert_eq!(cfg.confidence_threshold, 0.7);
    assert_eq!(cfg.team(&cfg.low_confidence_team).unwrap().name, "technical support");
    assert_eq!(cfg.audit.redact, Redaction::Digits);
    // Every route of the policy has examples: one entry per intent of the policy table (27),
    // seven for concepts of the teams' remits that customers phrase their own way (unrecognised charges, balances,
    // payment status, currencies, returns, app problems, identity checks), 8 to 32 phrases each, and the out-of-scope
    // entry.
    let mut routes: Vec<(Action, Option<&str>, usize)> = Vec::new();
    for ex in &cfg.examples {
        match routes.iter_mut().find(|r| r.0 == ex.action && r.1 == ex.target.as_deref()) {
            Some(r) => r.2 += ex.phrases.len(),
            None => routes.push((ex.action, ex.target.as_deref(), ex.phrases.len())),
        }
    }
    let names: Vec<_> = routes.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        names,
        [
            (Action::HandoffTeam, Some("54515931")),
            (Action::HandoffTeam, Some("77120034")),
            (Action::HandoffTeam, Some("98234710")),
            (Action::HandoffAgent, Some("senior@company.com")),
            (Action::Answer, None),
            (Action::DefaultFallback, None),
        ]
    );
    let (in_scope, out_of_scope): (Vec<_>, Vec<_>) = cfg.examples.iter().partition(|ex| ex.action != Action::DefaultFallback);
    assert_eq!(in_scope.len(), 34);
    assert!(
        in_scope.iter().all(|ex| (8..=32).contains(&ex.phrases.len())),
        "{:?}",
        in_scope.iter().map(|ex| ex.phrases.len()).collect::<Vec<_>>()
    );
    assert!(out_of_scope.iter().map(|ex| ex.phrases.len()).sum::<usize>() >= 20);
}

#[test]
fn defaults_apply_when_sections_are_omitted() {
    let cfg = RoutingConfig::from_toml_str(BASE).unwrap();
    assert_eq!(cfg.confidence_threshold, 0.7);
    assert!(cfg.rules.prompt_injection && cfg.rules.prefer_token_probability && cfg.rules.agent_missing_uses_team);
    assert_eq!((cfg.vote.k, cfg.vote.min_support), (5, 0.0));
    assert_eq!((cfg.prompt.few_shot, cfg.prompt.max_message_chars), (5, 2000));
    assert_eq!(cfg.audit.redact, Redaction::Digits);
    assert_eq!(cfg.agent("BOSS@bikes.example").unwrap().email, "boss@bikes.example");
    assert!(cfg.team("3").is_none());
}

#[test]
fn validation_errors_name_the_offending_item() {
    let cases: Vec<(&str, String, String)> = vec![
        ("duplicate team", BASE.replace(r#"id = "2""#, r#"id = "1""#), "duplicate team id `1`".into()),
        ("empty team id", BASE.replace(r#"id = "2""#, r#"id = " ""#), "team `sales` has an empty id".into()),
        (
            "duplicate agent, other case",
            format!("{BASE}\n[[agents]]\nemail = \"Boss@Bikes.example\"\nrole = \"again\"\n"),
            "duplicate agent email `Boss@Bikes.example`".into(),
        ),
        (
            "threshold above 1",
            BASE.replace("low_confidence_team", "confidence_threshold = 1.5\nlow_confidence_team"),
            "confidence_threshold 1.5 is outside [0, 1]".into(),
        ),
        (
            "threshold below 0",
            BASE.replace("low_confidence_team", "confidence_threshold = -0.1\nlow_confidence_team"),
            "confidence_threshold -0.1 is outside [0, 1]".into(),
        ),
        (
            "threshold NaN",
            BASE.replace("low_confidence_team", "confidence_threshold = nan\nlow_confidence_team"),
            "confidence_threshold NaN is outside [0, 1]".into(),
        ),
        (
            "vote of no phrases",
            format!("{BASE}\n[vote]\nk = 0\n"),
            "[vote] needs k >= 1 and min_support in [0, 1], got k = 0, min_support = 0".into(),
        ),
        (
            "similarity above 1",
            format!("{BASE}\n[vote]\nmin_support = 1.2\n"),
            "[vote] needs k >= 1 and min_support in [0, 1], got k = 5, min_support = 1.2".into(),
        ),
        ("cascade support above 1", format!("{BASE}\n[vote]\ndecide_at = 1.5\n"), "[vote] decide_at 1.5 is outside [0, 1]".into()),
        ("empty shortlist", format!("{BASE}\n[vote]\nshortlist = 0\n"), "[vote] shortlist must be at least 1".into()),
        (
            "unknown low-confidence team",
            BASE.replace(r#"low_confidence_team = "1""#, r#"low_confidence_team = "9""#),
            "low_confidence_team `9` is not a defined team id".into(),
        ),
        (
            "example targets unknown team",
            BASE.replace(r#"target = "1""#, r#"target = "54515931""#),
            "example for handoff_team targets `54515931`, which is not a defined team id".into(),
        ),
        (
            "example targets unknown agent",
            BASE.replace(
                r#"action = "handoff_team"
target = "1""#,
                r#"action = "handoff_agent"
target = "owner@bikes.example""#,
            ),
            "example for handoff_agent targets `owner@bikes.example`, which is not a defined agent email".into(),
        ),
        ("handoff example without target", BASE.replace("target = \"1\"\n", ""), "example for handoff_team needs a target".into()),
        (
            "answer example with target",
            BASE.replace(r#"action = "handoff_team""#, r#"action = "answer""#),
            "example for answer takes no target, got `1`".into(),
        ),
        ("empty reason", BASE.replace(r#"reason = "repair""#, r#"reason = """#), "example reason `` must be 1 to 80 characters".into()),
        (
            "reason too long",
            BASE.replace(r#"reason = "repair""#, &format!("reason = \"{}\"", "x".repeat(81))),
            format!("example reason `{}` must be 1 to 80 characters", "x".repeat(81)),
        ),
    ];
    for (name, toml, expected) in cases {
        assert_eq!(error(&toml), expected, "case: {name}");
    }
}

#[test]
fn malformed_agent_emails_are_rejected() {
    for bad in [
        "boss.bikes.example",
        "@bikes.example",
        "boss@",
        "boss@bikes",
        "boss@@bikes.example",
        "boss@bikes..example",
        "bo ss@bikes.example",
        "boss@bikes.example.",
    ] {
        let toml = BASE.replace("boss@bikes.example", bad);
        assert_eq!(error(&toml), format!("agent email `{bad}` is malformed"));
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_parse_errors() {
    let cases = [
        (BASE.replace("company =", "colour = \"red\"\ncompany ="), "unknown field `colour`"),
        (BASE.replace("[audit]\n", "[audit]\nredcat = \"full\"\n"), "unknown field `redcat`"),
        (BASE.replace("role = \"owner\"", "role = \"owner\"\nphone = \"1\""), "unknown field `phone`"),
        (format!("{BASE}\n[rules]\nprompt_injections = false\n"), "unknown field `prompt_injections`"),
        (BASE.replace(r#"path = "logs/audit.jsonl""#, "path = \"a\"\nredact = \"some\""), "unknown variant `some`"),
        (BASE.replace(r#"action = "handoff_team""#, r#"action = "escalate""#), "unknown variant `escalate`"),
        (BASE.replace(r#"id = "2""#, "id = 2"), "invalid type: integer `2`, expected a string"),
        (BASE.replace("company = \"a bike shop\"\n", ""), "missing field `company`"),
    ];
    for (toml, expected) in cases {
        let err = RoutingConfig::from_toml_str(&toml).unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with("invalid routing config: ") && msg.contains(expected), "expected {expected:?} in:\n{msg}");
    }
}

#[test]
fn unreadable_file_is_a_read_error() {
    let err = RoutingConfig::load("/nonexistent/routing.toml").unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().starts_with("cannot read routing config /nonexistent/routing.toml: "), "{err}");
}
