//! Refusals, reported the OpenAI way (`message.refusal`, a `refusal` content part,
//! `delta.refusal`) and never ambiguous with the caller's schema.
//!
//! Two ways to a refusal:
//! - **The screen.** When the latest user message trips the same prompt-injection screen the
//!   router uses ([`crate::routing::looks_like_injection`]: chat-template role tags, "ignore all
//!   previous instructions", "you are now", ...), the server refuses without asking the model,
//!   as the router refuses such a message locally. This is a policy, not a model judgement, so
//!   it is deterministic.
//! - **The model** (when the server enables it: `model_refusals` in the server config; off by
//!   default, because SmolLM2-135M took the branch for ordinary requests). The output schema is `anyOf: [caller's schema, {"refusal": string}]` (for
//!   `json_schema`, plain text and tools), so the model may pick the refusal object. A decoded
//!   value that validates against the caller's schema is content, whatever its keys; only a
//!   value that does not is a refusal. The caller's schema is therefore exactly enforced on
//!   every `content`. `json_object` gets no refusal branch (any object is valid content).

use serde_json::{json, Map, Value};

use crate::chat::{ChatMessage, Role};
use crate::routing::classification::REFUSAL_MAX_CHARS;
use crate::schema::SchemaError;

/// How every refusal object starts, as the compiler writes it (no whitespace).
pub(super) const OPENING: &str = "{\"refusal\":\"";

/// The refusal the screen gives.
pub(super) const SCREENED: &str =
    "I can't help with that: the message looks like an attempt to override my instructions (prompt injection suspected).";

/// The instruction added to JSON answers.
pub(super) const INSTRUCTION: &str = "If you must refuse, answer {\"refusal\": \"<why, in one sentence>\"} instead.";

/// The refusal object's schema.
pub(super) fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {"refusal": {"type": "string", "minLength": 1, "maxLength": REFUSAL_MAX_CHARS}},
        "required": ["refusal"],
        "additionalProperties": false
    })
}

/// The refusal the screen gives for these messages, if the latest user message trips it.
pub(super) fn screen(messages: &[ChatMessage]) -> Option<&'static str> {
    let last = messages.iter().rev().find(|m| m.role == Role::User)?;
    crate::routing::looks_like_injection(&last.content).then_some(SCREENED)
}

/// Where the caller's schema sits inside [`with_refusal`]'s wrapper.
const NESTED: &str = "#/anyOf/0";

/// `anyOf: [schema, refusal]`, with the schema's `$defs`/`definitions` lifted to the root
/// under their own names (so `#/$defs/x` still resolves) and every other local `$ref`
/// (`#`, `#/properties/...`) pointed into the nested copy. `None` when the schema is
/// identified by `$id` or anchors, whose resolution nesting could change: it is then used
/// as it is, without a refusal branch.
pub(super) fn with_refusal(schema: &Value) -> Option<Value> {
    let root = schema.as_object()?;
    if ["$id", "$anchor", "$dynamicAnchor"].iter().any(|k| root.contains_key(*k)) {
        return None;
    }
    let mut wrapper = Map::new();
    let mut body = Map::new();
    for (k, v) in root {
        match k.as_str() {
            "$defs" | "definitions" => {
                wrapper.insert(k.clone(), rewrite(v));
            }
            "$schema" => {
                wrapper.insert(k.clone(), v.clone());
            }
            _ => {
                body.insert(k.clone(), rewrite(v));
            }
        }
    }
    wrapper.insert("anyOf".into(), json!([Value::Object(body), self::schema()]));
    Some(Value::Object(wrapper))
}

/// Local `$ref`s that do not go through `$defs`/`definitions`, pointed into the nested copy.
fn rewrite(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        // Data, not schemas.
                        ("const" | "enum" | "default" | "examples", _) => v.clone(),
                        ("$ref", Value::String(r)) if r == "#" => Value::String(NESTED.into()),
                        ("$ref", Value::String(r))
                            if r.starts_with("#/") && !r.starts_with("#/$defs/") && !r.starts_with("#/definitions/") =>
                        {
                            Value::String(format!("{NESTED}{}", &r[1..]))
                        }
                        _ => rewrite(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(rewrite).collect()),
        other => other.clone(),
    }
}

/// A compile error of the wrapper, with its JSON pointer as the caller wrote the schema.
pub(super) fn unnest_error(e: SchemaError) -> SchemaError {
    // Error pointers have no leading `#` (the root is "").
    match e.pointer().strip_prefix(&NESTED[1..]) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => SchemaError::new(e.kind().clone(), rest),
        _ => e,
    }
}

/// The refusal text, when a decoded value is a refusal object the caller's schema rejects
/// (`caller`: a validator of the caller's schema; `None` when any refusal object is a
/// refusal, as under tools or plain text, where no branch has a `refusal` key).
pub(super) fn refusal_of(value: &Value, caller: Option<&jsonschema::Validator>) -> Option<String> {
    let m = value.as_object()?;
    if m.len() != 1 {
        return None;
    }
    let text = m.get("refusal")?.as_str()?;
    if caller.is_some_and(|v| v.is_valid(value)) {
        return None;
    }
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_keeps_references_meaning_the_same() {
        let schema = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": {"a": {"$ref": "#/$defs/a"}, "self": {"$ref": "#"}, "b": {"$ref": "#/properties/a"}, "c": {"const": {"$ref": "#"}}},
            "$defs": {"a": {"type": "string", "x": {"$ref": "#/properties/b"}}}});
        let w = with_refusal(&schema).unwrap();
        assert_eq!(w["$schema"], schema["$schema"]);
        assert_eq!(w["$defs"]["a"]["x"]["$ref"], "#/anyOf/0/properties/b");
        let body = &w["anyOf"][0];
        assert_eq!(body["properties"]["a"]["$ref"], "#/$defs/a");
        assert_eq!(body["properties"]["self"]["$ref"], "#/anyOf/0");
        assert_eq!(body["properties"]["b"]["$ref"], "#/anyOf/0/properties/a");
        assert_eq!(body["properties"]["c"]["const"], json!({"$ref": "#"}));
        assert!(body.get("$defs").is_none());
        assert_eq!(w["anyOf"][1], super::schema());
        assert!(with_refusal(&json!({"$id": "urn:x", "type": "object"})).is_none());
        let e = crate::automaton::Grammar::compile(
            &with_refusal(&json!({"properties": {"t": {"uniqueItems": true}}})).unwrap(),
            &Default::default(),
        )
        .unwrap_err();
        assert_eq!(unnest_error(e).pointer(), "/properties/t");
    }

    #[test]
    fn a_value_the_callers_schema_accepts_is_content() {
        let open = crate::schema::validator(&json!({"type": "object"})).unwrap();
        let closed = crate::schema::validator(&json!({"type": "object", "required": ["team"]})).unwrap();
        let r = json!({"refusal": "no"});
        assert_eq!(refusal_of(&r, Some(&open)), None);
        assert_eq!(refusal_of(&r, Some(&closed)).as_deref(), Some("no"));
        assert_eq!(refusal_of(&r, None).as_deref(), Some("no"));
        assert_eq!(refusal_of(&json!({"refusal": "no", "team": "x"}), None), None);
    }
}
