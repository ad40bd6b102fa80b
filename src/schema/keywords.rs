//! The keyword vocabulary: the drafts strictly tells apart, which keywords
//! only annotate, which it enforces, which it refuses and why, which apply
//! to one type only, and when a refused keyword is a no-op.

use serde_json::{Map, Value};

/// JSON Schema drafts, oldest first; only the differences strictly cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Draft {
    D4,
    D6,
    D7,
    D2019,
    D2020,
}

impl Draft {
    pub(super) fn detect(root: &Value) -> Self {
        let uri = root.get("$schema").and_then(Value::as_str).unwrap_or("");
        if uri.contains("draft-04") {
            Draft::D4
        } else if uri.contains("draft-06") {
            Draft::D6
        } else if uri.contains("draft-07") {
            Draft::D7
        } else if uri.contains("2019-09") {
            Draft::D2019
        } else {
            Draft::D2020
        }
    }
}

/// Keywords that only annotate: ignored.
pub(super) const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "examples",
    "default",
    "$comment",
    "$schema",
    "$id",
    "deprecated",
    "readOnly",
    "writeOnly",
    // Containers for definitions; their contents are read when referenced.
    "$defs",
    "definitions",
    // The content vocabulary is annotation-only in drafts 7 and 2020-12.
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    "$anchor",
];

/// Keywords strictly enforces.
pub(super) const SUPPORTED: &[&str] = &[
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "patternProperties",
    "not",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "minProperties",
    "maxProperties",
    "if",
    "then",
    "else",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
];

/// Keywords of the JSON Schema vocabularies that strictly refuses, and why.
pub(super) const REFUSED: &[(&str, &str)] = &[
    ("unevaluatedProperties", "unevaluated properties are supported only where no in-place applicator (`allOf`, `anyOf`, `oneOf`, `not`, `if`, `$ref`, `dependentSchemas`) stands beside them"),
    ("unevaluatedItems", "unevaluated items are supported only where no in-place applicator (`allOf`, `anyOf`, `oneOf`, `not`, `if`, `$ref`, `dependentSchemas`) nor `contains` stands beside them"),
    ("$dynamicRef", "dynamic references are not supported"),
    ("$dynamicAnchor", "dynamic references are not supported"),
    ("$recursiveRef", "recursive references (2019-09) are not supported"),
    ("$recursiveAnchor", "recursive references (2019-09) are not supported"),
    ("$vocabulary", "custom vocabularies are not supported"),
];

/// Keywords that constrain a value (as opposed to annotations), used to tell
/// whether `$ref` has constraining siblings.
pub(super) fn constrains(keyword: &str) -> bool {
    SUPPORTED.contains(&keyword) || REFUSED.iter().any(|(k, _)| *k == keyword)
}

/// Keywords that only apply to one type, so that a schema without `type`
/// that uses them still admits every other type.
pub(super) const TYPE_KEYWORDS: &[(&str, &str)] = &[
    ("minimum", "number"),
    ("maximum", "number"),
    ("exclusiveMinimum", "number"),
    ("exclusiveMaximum", "number"),
    ("multipleOf", "number"),
    ("minLength", "string"),
    ("maxLength", "string"),
    ("pattern", "string"),
    ("format", "string"),
    ("items", "array"),
    ("prefixItems", "array"),
    ("additionalItems", "array"),
    ("minItems", "array"),
    ("maxItems", "array"),
    ("contains", "array"),
    ("uniqueItems", "array"),
    ("properties", "object"),
    ("required", "object"),
    ("additionalProperties", "object"),
    ("patternProperties", "object"),
    ("minProperties", "object"),
    ("maxProperties", "object"),
    ("propertyNames", "object"),
    ("unevaluatedProperties", "object"),
    ("unevaluatedItems", "array"),
];

/// Refused keywords whose value makes them a no-op.
pub(super) fn is_no_op(keyword: &str, value: &Value, map: &Map<String, Value>) -> bool {
    match keyword {
        "uniqueItems" => value == &Value::Bool(false) || map.get("maxItems").and_then(Value::as_u64).is_some_and(|m| m <= 1),
        // `additionalProperties` (or `items` past the prefix) evaluates every
        // member the other keywords leave, so nothing is left unevaluated.
        "unevaluatedProperties" => value == &Value::Bool(true) || map.contains_key("additionalProperties"),
        "unevaluatedItems" => {
            value == &Value::Bool(true)
                || match map.get("items") {
                    Some(Value::Array(_)) => map.contains_key("additionalItems"),
                    Some(_) => true,
                    None => false,
                }
        }
        "$vocabulary" | "$dynamicAnchor" | "$recursiveAnchor" => true,
        // `then`/`else` without `if` have no effect, nor `if` without them.
        "then" | "else" => !map.contains_key("if"),
        "if" => !map.contains_key("then") && !map.contains_key("else"),
        _ => false,
    }
}

/// Keywords that apply other schemas to the same instance: the members or
/// items those evaluate count as evaluated for `unevaluated*` beside them.
pub(super) const IN_PLACE_APPLICATORS: &[&str] =
    &["allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "$recursiveRef", "dependentSchemas", "dependencies"];

/// Whether `unevaluatedProperties` / `unevaluatedItems` sees only the
/// keywords of its own schema object (no in-place applicator beside it, and
/// for items no `contains`). Then the members it applies to are exactly those
/// `additionalProperties` (or `items` past the prefix) would take, and it is
/// read as that keyword: an exact rewrite (see `Reader::read_object` in `rules.rs`).
pub(super) fn unevaluated_is_local(keyword: &str, map: &Map<String, Value>) -> bool {
    let local = !map.keys().any(|k| IN_PLACE_APPLICATORS.contains(&k.as_str()));
    match keyword {
        "unevaluatedProperties" => local,
        "unevaluatedItems" => local && !map.contains_key("contains"),
        _ => false,
    }
}
