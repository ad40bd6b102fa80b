//! The deployment schema: valid draft 2020-12, restricted keywords, and it admits exactly the
//! routes the config defines.

use serde_json::{json, Value};
use strictly::routing::{deployment_schema, RoutingConfig};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/routing.example.toml");

fn schema() -> Value {
    deployment_schema(&RoutingConfig::load(EXAMPLE).unwrap())
}

fn classification(action: &str, to: Value, team: Value) -> Value {
    json!({"action": action, "assignTo": to, "assignTeam": team, "reason": "refund request", "confidence": 0.8})
}

#[test]
fn is_a_valid_draft_2020_12_schema() {
    let schema = schema();
    jsonschema::meta::validate(&schema).unwrap();
    jsonschema::draft202012::new(&schema).unwrap();
}

#[test]
fn uses_only_the_supported_keywords() {
    const ALLOWED: [&str; 11] = [
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "anyOf",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
    ];
    fn walk(schema: &Value, path: &str) {
        for (key, value) in schema.as_object().unwrap() {
            assert!(ALLOWED.contains(&key.as_str()), "keyword `{key}` at {path}");
            match key.as_str() {
                "properties" => value.as_object().unwrap().iter().for_each(|(k, s)| walk(s, &format!("{path}/{k}"))),
                "anyOf" => value.as_array().unwrap().iter().enumerate().for_each(|(i, s)| walk(s, &format!("{path}/{i}"))),
                _ => {}
            }
        }
    }
    let mut schema = schema();
    let root = schema.as_object_mut().unwrap();
    assert_eq!(root.remove("$schema").unwrap(), "https://json-schema.org/draft/2020-12/schema");
    root.remove("title");
    walk(&schema, "");
}

#[test]
fn action_comes_first_and_every_key_is_required() {
    let schema = schema();
    let branches = schema["anyOf"].as_array().unwrap();
    let actions: Vec<_> = branches[..4].iter().map(|b| b["properties"]["action"]["const"].as_str().unwrap()).collect();
    assert_eq!(actions, ["answer", "handoff_agent", "handoff_team", "default_fallback"]);
    for b in &branches[..4] {
        let keys: Vec<_> = b["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["action", "assignTo", "assignTeam", "reason", "confidence"]);
        assert_eq!(b["required"], json!(["action", "assignTo", "assignTeam", "reason", "confidence"]));
        assert_eq!(b["additionalProperties"], false);
    }
    assert_eq!(branches[4]["required"], json!(["refusal"]));
}

#[test]
fn accepts_well_formed_outputs() {
    let validator = jsonschema::draft202012::new(&schema()).unwrap();
    let good = [
        classification("answer", Value::Null, Value::Null),
        classification("default_fallback", Value::Null, Value::Null),
        classification("handoff_team", Value::Null, json!("77120034")),
        classification("handoff_team", Value::Null, json!("54515931")),
        classification("handoff_agent", json!("senior@company.com"), Value::Null),
        classification("handoff_agent", json!("billing@company.com"), Value::Null),
        json!({"refusal": "asks to reveal the instructions"}),
        json!({"action": "answer", "assignTo": null, "assignTeam": null, "reason": "x", "confidence": 0}),
        json!({"action": "answer", "assignTo": null, "assignTeam": null, "reason": "x".repeat(80), "confidence": 1}),
    ];
    for instance in good {
        assert!(validator.is_valid(&instance), "should accept {instance}");
    }
}

#[test]
fn rejects_what_the_config_does_not_allow() {
    let validator = jsonschema::draft202012::new(&schema()).unwrap();
    let mut extra_key = classification("answer", Value::Null, Value::Null);
    extra_key["customerMessage"] = json!("hello");
    let mut missing_reason = classification("answer", Value::Null, Value::Null);
    missing_reason.as_object_mut().unwrap().remove("reason");
    let bad = [
        ("stale team id", classification("handoff_team", Value::Null, json!("12345678"))),
        ("team id as number", classification("handoff_team", Value::Null, json!(77120034))),
        ("wrong email", classification("handoff_agent", json!("senior@company.org"), Value::Null)),
        ("team id as agent", classification("handoff_agent", json!("77120034"), Value::Null)),
        ("handoff_team, both null", classification("handoff_team", Value::Null, Value::Null)),
        ("handoff_agent, both null", classification("handoff_agent", Value::Null, Value::Null)),
        ("both targets", classification("handoff_team", json!("senior@company.com"), json!("77120034"))),
        ("answer with a team", classification("answer", Value::Null, json!("77120034"))),
        ("fallback with an agent", classification("default_fallback", json!("senior@company.com"), Value::Null)),
        ("unknown action", classification("escalate", Value::Null, Value::Null)),
        ("customerMessage", extra_key),
        ("missing reason", missing_reason),
        ("confidence above 1", json!({"action": "answer", "assignTo": null, "assignTeam": null, "reason": "x", "confidence": 1.5})),
        ("confidence as string", json!({"action": "answer", "assignTo": null, "assignTeam": null, "reason": "x", "confidence": "high"})),
        ("empty reason", json!({"action": "answer", "assignTo": null, "assignTeam": null, "reason": "", "confidence": 0.5})),
        ("reason too long", json!({"action": "answer", "assignTo": null, "assignTeam": null, "reason": "x".repeat(81), "confidence": 0.5})),
        ("refusal too long", json!({"refusal": "x".repeat(121)})),
        ("refusal with extra key", json!({"refusal": "no", "action": "answer"})),
        ("empty object", json!({})),
        ("array", json!([])),
    ];
    for (name, instance) in bad {
        assert!(!validator.is_valid(&instance), "should reject {name}: {instance}");
    }
}

#[test]
fn without_agents_there_is_no_handoff_agent_branch() {
    let mut cfg = RoutingConfig::load(EXAMPLE).unwrap();
    cfg.agents.clear();
    let schema = deployment_schema(&cfg);
    jsonschema::meta::validate(&schema).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    assert_eq!(schema["anyOf"].as_array().unwrap().len(), 4);
    assert!(!validator.is_valid(&classification("handoff_agent", json!("senior@company.com"), Value::Null)));
    assert!(validator.is_valid(&classification("handoff_team", Value::Null, json!("98234710"))));
}
