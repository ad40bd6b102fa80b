//! The strict-subset lint (`strictly::schema::lint`): the seed's schemas and the schema the
//! router sends to OpenAI pass; each broken rule is found with its pointer; the CLI agrees.

use crate::common;
use std::path::Path;

use serde_json::{json, Value};
use strictly::schema::lint::{lint, Effect, Rule, Target, MAX_NESTING};

fn findings(schema: &Value) -> Vec<(Rule, String)> {
    lint(schema, Target::OpenAi).into_iter().map(|f| (f.rule, f.pointer)).collect()
}

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A strict object with the given properties, all required.
fn object(props: Value) -> Value {
    let required: Vec<String> = props.as_object().unwrap().keys().cloned().collect();
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

#[test]
fn the_seed_schemas_pass() {
    for path in ["grammars/support_classification.schema.json", "grammars/search_products.schema.json"] {
        assert_eq!(findings(&read(path)), [], "{path}");
    }
}

#[cfg(feature = "openai")]
#[test]
fn the_deployment_schema_passes_as_the_openai_backend_sends_it() {
    use strictly::backend::openai::wire::wire_schema;
    let cfg = strictly::routing::RoutingConfig::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml")).unwrap();
    let schema = strictly::routing::deployment_schema(&cfg);
    // As the router builds it, the root is an anyOf, which OpenAI refuses ...
    assert_eq!(findings(&schema), [(Rule::RootAnyOf, String::new())]);
    // ... so the backend sends it wrapped, and that passes every rule.
    let sent = wire_schema(&schema).expect("a root anyOf is wrapped");
    assert_eq!(findings(&sent), []);
    // A shortlisted schema too.
    let short = strictly::routing::shortlist_schema(&cfg, &[strictly::routing::Target::Team(cfg.teams[0].id.clone())]);
    assert_eq!(findings(&wire_schema(&short).unwrap()), []);
}

#[test]
fn an_object_without_additional_properties_false_fails_at_its_pointer() {
    let inner = json!({"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]});
    let schema = object(json!({"a": inner, "b": {"type": "string"}}));
    assert_eq!(findings(&schema), [(Rule::AdditionalProperties, "/properties/a".to_string())]);
    // `additionalProperties: true` or a schema is no better.
    let mut loose = schema.clone();
    loose["properties"]["a"]["additionalProperties"] = json!({"type": "string"});
    assert_eq!(findings(&loose), [(Rule::AdditionalProperties, "/properties/a".to_string())]);
}

#[test]
fn an_optional_property_fails_at_its_pointer() {
    let mut schema = object(json!({"name": {"type": "string"}, "nick/name": {"type": "string"}}));
    schema["required"] = json!(["name"]);
    let f = lint(&schema, Target::OpenAi);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].rule, f[0].pointer.as_str(), f[0].effect), (Rule::Required, "/properties/nick~1name", Effect::Rejects));
    assert!(f[0].to_string().contains("nick/name"), "{}", f[0]);
}

#[test]
fn a_root_any_of_and_a_root_that_is_not_an_object_fail() {
    let branch = object(json!({"a": {"type": "string"}}));
    assert_eq!(findings(&json!({"anyOf": [branch.clone(), branch]})), [(Rule::RootAnyOf, String::new())]);
    assert_eq!(findings(&json!({"type": "array", "items": {"type": "string"}})), [(Rule::RootObject, String::new())]);
}

#[test]
fn past_the_nesting_limit_fails_at_the_first_object_too_deep() {
    let nest = |levels: usize| {
        let mut s = object(json!({"leaf": {"type": "string"}}));
        for _ in 1..levels {
            s = object(json!({"child": s}));
        }
        s
    };
    assert_eq!(findings(&nest(MAX_NESTING)), []);
    let deep = nest(MAX_NESTING + 1);
    let pointer = "/properties/child".repeat(MAX_NESTING);
    assert_eq!(findings(&deep), [(Rule::Nesting, pointer)]);
}

#[test]
fn unsupported_keywords_formats_and_limits() {
    let schema = object(json!({
        "a": {"allOf": [{"type": "string"}]},
        "b": {"type": "string", "format": "uri"},
        "c": {"type": "string", "format": "date-time"},
    }));
    let f = lint(&schema, Target::OpenAi);
    let got: Vec<(Rule, &str, Effect)> = f.iter().map(|f| (f.rule, f.pointer.as_str(), f.effect)).collect();
    assert_eq!(got, [(Rule::UnsupportedKeyword, "/properties/a", Effect::Rejects), (Rule::Format, "/properties/b", Effect::Narrows)]);

    // 1,001 enum values in all.
    let many: Vec<String> = (0..1001).map(|i| format!("v{i}")).collect();
    assert_eq!(findings(&object(json!({"e": {"enum": many}}))), [(Rule::EnumCount, String::new())]);
    // 300 string values of 60 characters: 18,000 > 15,000.
    let long: Vec<String> = (0..300).map(|i| format!("{i:060}")).collect();
    assert_eq!(findings(&object(json!({"e": {"enum": long}}))), [(Rule::EnumLength, "/properties/e".to_string())]);
    // 5,001 properties.
    let props: serde_json::Map<String, Value> = (0..5001).map(|i| (format!("p{i}"), json!({"type": "null"}))).collect();
    assert_eq!(findings(&object(Value::Object(props))), [(Rule::PropertyCount, String::new())]);
}

#[test]
fn the_cli_prints_each_rule_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("strictly-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("loose.json");
    std::fs::write(&path, r#"{"type": "object", "properties": {"a": {"type": "string"}}}"#).unwrap();
    let out = common::strictly_command().args(["lint", "--target", "openai"]).arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("(root): [additional-properties]"), "{stdout}");
    assert!(stdout.contains("/properties/a: [required]") && stdout.contains("OpenAI rejects the schema"), "{stdout}");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammars/support_classification.schema.json");
    let ok = common::strictly_command().arg("lint").arg(&seed).output().unwrap();
    assert_eq!(ok.status.code(), Some(0));
}
