//! The strict-subset lint: every rule of a target's structured-output subset that a schema
//! breaks, each with its JSON pointer and what the target does about it.
//!
//! The only target is OpenAI's strict mode (`strict: true` in `text.format`,
//! `response_format` or a function tool). Its rules, from OpenAI's structured-outputs guide
//! ("Supported schemas") and the request schemas of the OpenAPI spec in
//! `../shared/reference/openai/`:
//!
//! | rule | what OpenAI does |
//! |---|---|
//! | `root-object`: the root is `type: "object"` | rejects (400) |
//! | `root-any-of`: the root is not an `anyOf` | rejects |
//! | `additional-properties`: every object sets `additionalProperties: false` | rejects |
//! | `required`: every property is in `required` (optional = a union with `null`) | rejects |
//! | `unsupported-keyword`: `allOf`, `oneOf`, `not`, `if`/`then`/`else`, `dependent*`, `patternProperties`, ... | rejects |
//! | `format`: a `format` outside date-time, time, date, duration, email, hostname, ipv4, ipv6, uuid | narrows in silence (the format is not enforced) |
//! | `nesting`: at most 10 levels of nested objects | rejects |
//! | `property-count`: at most 5,000 object properties in all | rejects |
//! | `enum-count`: at most 1,000 enum values in all | rejects |
//! | `enum-length`: a string enum of more than 250 values totals at most 15,000 characters | rejects |
//! | `string-length`: property names, `$defs` names, enum and const values total at most 120,000 characters | rejects |
//!
//! The lint knows no backend: it reads a schema and returns findings. `$ref`s are not followed
//! (each `$defs` entry is checked where it is defined), so nesting through a `$ref` is not counted.
//!
//! ```
//! use serde_json::json;
//! use strictly::schema::lint::{lint, Rule, Target};
//!
//! let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
//! let rules: Vec<(Rule, String)> = lint(&schema, Target::OpenAi).into_iter().map(|f| (f.rule, f.pointer)).collect();
//! assert_eq!(rules, [(Rule::AdditionalProperties, String::new()), (Rule::Required, "/properties/a".to_string())]);
//! ```

use serde::Serialize;
use serde_json::Value;

/// Whose subset to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// OpenAI's strict structured outputs.
    #[default]
    OpenAi,
}

/// OpenAI's published limits.
pub const MAX_NESTING: usize = 10;
/// Object properties in the whole schema.
pub const MAX_PROPERTIES: usize = 5_000;
/// Enum values in the whole schema.
pub const MAX_ENUM_VALUES: usize = 1_000;
/// A string enum with more values than this has [`MAX_LARGE_ENUM_CHARS`] in all.
pub const LARGE_ENUM: usize = 250;
/// Characters of a large string enum's values.
pub const MAX_LARGE_ENUM_CHARS: usize = 15_000;
/// Characters of all property names, definition names, enum and const values.
pub const MAX_TOTAL_CHARS: usize = 120_000;

/// `format` names OpenAI enforces.
const FORMATS: &[&str] = &["date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"];

/// JSON Schema keywords outside the subset. The subset is `type`, `properties`, `required`,
/// `additionalProperties`, `items`, `enum`, `const`, `anyOf`, `$ref`, `$defs`, the string,
/// number and array bounds, and annotations; names no draft defines are vendor annotations.
const UNSUPPORTED: &[&str] = &[
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "patternProperties",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "minProperties",
    "maxProperties",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
    "prefixItems",
    "additionalItems",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

/// A rule of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// `root-object`: the root schema is `type: "object"`.
    RootObject,
    /// `root-any-of`: the root schema is not an `anyOf`.
    RootAnyOf,
    /// `additional-properties`: every object sets `additionalProperties: false`.
    AdditionalProperties,
    /// `required`: every property is listed in `required`.
    Required,
    /// `unsupported-keyword`: no keyword outside the subset (`allOf`, `oneOf`, `not`, ...).
    UnsupportedKeyword,
    /// `format`: only the formats the target enforces.
    Format,
    /// `nesting`: at most [`MAX_NESTING`] levels of nested objects.
    Nesting,
    /// `property-count`: at most [`MAX_PROPERTIES`] object properties in all.
    PropertyCount,
    /// `enum-count`: at most [`MAX_ENUM_VALUES`] enum values in all.
    EnumCount,
    /// `enum-length`: a string enum of more than [`LARGE_ENUM`] values totals at most [`MAX_LARGE_ENUM_CHARS`] characters.
    EnumLength,
    /// `string-length`: names, enum and const values total at most [`MAX_TOTAL_CHARS`] characters.
    StringLength,
}

impl Rule {
    /// The rule's name, as in the table above.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::RootObject => "root-object",
            Rule::RootAnyOf => "root-any-of",
            Rule::AdditionalProperties => "additional-properties",
            Rule::Required => "required",
            Rule::UnsupportedKeyword => "unsupported-keyword",
            Rule::Format => "format",
            Rule::Nesting => "nesting",
            Rule::PropertyCount => "property-count",
            Rule::EnumCount => "enum-count",
            Rule::EnumLength => "enum-length",
            Rule::StringLength => "string-length",
        }
    }

    /// What the target does with a schema that breaks the rule.
    pub fn effect(self) -> Effect {
        match self {
            Rule::Format => Effect::Narrows,
            _ => Effect::Rejects,
        }
    }
}

/// What the target does with a schema that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The request fails with a 400.
    Rejects,
    /// The request goes through, but the output is not held to that part of the schema.
    Narrows,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule broken.
    pub rule: Rule,
    /// JSON pointer of the schema object concerned (`""` is the root).
    pub pointer: String,
    /// What breaks the rule, in a sentence.
    pub message: String,
    /// What the target does about it: rejects the schema or narrows it.
    pub effect: Effect,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pointer = if self.pointer.is_empty() { "(root)" } else { &self.pointer };
        let effect = match self.effect {
            Effect::Rejects => "OpenAI rejects the schema",
            Effect::Narrows => "OpenAI accepts it but does not enforce this",
        };
        write!(f, "{pointer}: [{}] {} ({effect})", self.rule.as_str(), self.message)
    }
}

/// Every rule of `target`'s subset that `schema` breaks, in document order, then the limits.
pub fn lint(schema: &Value, target: Target) -> Vec<Finding> {
    let Target::OpenAi = target;
    let mut l = Linter::default();
    match schema.get("type") {
        _ if schema.get("anyOf").is_some() => l.push(Rule::RootAnyOf, "", "the root is an `anyOf`; wrap it in an object property".into()),
        Some(Value::String(t)) if t == "object" => {}
        _ => l.push(Rule::RootObject, "", "the root must be `\"type\": \"object\"`".into()),
    }
    l.visit(schema, String::new(), 0);
    l.limits();
    l.findings
}

#[derive(Default)]
struct Linter {
    findings: Vec<Finding>,
    properties: usize,
    enum_values: usize,
    chars: usize,
    /// The first object past the nesting limit, reported once.
    too_deep: bool,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn is_object_schema(s: &serde_json::Map<String, Value>) -> bool {
    match s.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => s.contains_key("properties"),
    }
}

impl Linter {
    fn push(&mut self, rule: Rule, pointer: &str, message: String) {
        self.findings.push(Finding { rule, pointer: pointer.to_owned(), message, effect: rule.effect() });
    }

    /// Checks one schema object at `pointer`, `depth` objects deep (the root object is 1).
    fn visit(&mut self, schema: &Value, pointer: String, depth: usize) {
        let Some(s) = schema.as_object() else { return };
        let depth = depth + is_object_schema(s) as usize;
        if is_object_schema(s) {
            if depth > MAX_NESTING && !self.too_deep {
                self.too_deep = true;
                self.push(Rule::Nesting, &pointer, format!("objects nest {depth} deep here; the limit is {MAX_NESTING}"));
            }
            if s.get("additionalProperties") != Some(&Value::Bool(false)) {
                self.push(Rule::AdditionalProperties, &pointer, "an object without `\"additionalProperties\": false`".into());
            }
        }
        for (k, v) in s {
            if UNSUPPORTED.contains(&k.as_str()) {
                self.push(Rule::UnsupportedKeyword, &pointer, format!("`{k}` is not in the strict subset"));
            } else if let Some(f) = v.as_str().filter(|f| k == "format" && !FORMATS.contains(f)) {
                self.push(Rule::Format, &pointer, format!("format `{f}` is not one OpenAI enforces"));
            }
        }
        if let Some(Value::Object(props)) = s.get("properties") {
            let required: Vec<&str> = s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            self.properties += props.len();
            for (name, sub) in props {
                self.chars += name.chars().count();
                let p = format!("{pointer}/properties/{}", escape(name));
                if !required.contains(&name.as_str()) {
                    self.push(Rule::Required, &p, format!("property `{name}` is not in `required`; make it required and nullable instead"));
                }
                self.visit(sub, p, depth);
            }
        }
        self.values(s, &pointer);
        for key in ["$defs", "definitions"] {
            if let Some(Value::Object(defs)) = s.get(key) {
                for (name, sub) in defs {
                    self.chars += name.chars().count();
                    // A definition is checked on its own: where it is used is not known here.
                    self.visit(sub, format!("{pointer}/{key}/{}", escape(name)), 0);
                }
            }
        }
        for key in [
            "items",
            "additionalProperties",
            "not",
            "if",
            "then",
            "else",
            "contains",
            "propertyNames",
            "unevaluatedProperties",
            "unevaluatedItems",
            "additionalItems",
        ] {
            if let Some(sub @ Value::Object(_)) = s.get(key) {
                self.visit(sub, format!("{pointer}/{key}"), depth);
            }
        }
        for key in ["anyOf", "allOf", "oneOf", "prefixItems", "items"] {
            if let Some(Value::Array(subs)) = s.get(key) {
                for (i, sub) in subs.iter().enumerate() {
                    self.visit(sub, format!("{pointer}/{key}/{i}"), depth);
                }
            }
        }
        for key in ["patternProperties", "dependentSchemas"] {
            if let Some(Value::Object(subs)) = s.get(key) {
                for (name, sub) in subs {
                    self.visit(sub, format!("{pointer}/{key}/{}", escape(name)), depth);
                }
            }
        }
    }

    /// `enum` and `const`: counted, and a large string enum's length checked.
    fn values(&mut self, s: &serde_json::Map<String, Value>, pointer: &str) {
        let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
        if let Some(c) = s.get("const") {
            self.chars += len(c);
        }
        if let Some(Value::Array(values)) = s.get("enum") {
            self.enum_values += values.len();
            let chars: usize = values.iter().map(len).sum();
            self.chars += chars;
            if values.len() > LARGE_ENUM && values.iter().all(Value::is_string) && chars > MAX_LARGE_ENUM_CHARS {
                self.push(
                    Rule::EnumLength,
                    pointer,
                    format!(
                        "{} string values totalling {chars} characters; above {LARGE_ENUM} values the limit is {MAX_LARGE_ENUM_CHARS}",
                        values.len()
                    ),
                );
            }
        }
    }

    fn limits(&mut self) {
        if self.properties > MAX_PROPERTIES {
            let m = format!("{} object properties in all; the limit is {MAX_PROPERTIES}", self.properties);
            self.push(Rule::PropertyCount, "", m);
        }
        if self.enum_values > MAX_ENUM_VALUES {
            let m = format!("{} enum values in all; the limit is {MAX_ENUM_VALUES}", self.enum_values);
            self.push(Rule::EnumCount, "", m);
        }
        if self.chars > MAX_TOTAL_CHARS {
            let m = format!(
                "property names, definition names, enum and const values total {} characters; the limit is {MAX_TOTAL_CHARS}",
                self.chars
            );
            self.push(Rule::StringLength, "", m);
        }
    }
}
