//! Exact error messages for what strictly refuses: keyword and JSON pointer.

use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::{CompileOptions, UnknownKeywords};

/// Refusals with unknown keywords denied (the default ignores them: see
/// `unknown_keywords_are_annotations_by_default`).
fn error(schema: serde_json::Value) -> String {
    let options = CompileOptions { unknown_keywords: UnknownKeywords::Deny, ..CompileOptions::default() };
    Grammar::compile(&schema, &options).expect_err("must be refused").to_string()
}

#[test]
fn unsupported_keywords_name_keyword_and_pointer() {
    let cases = [
        (json!({"not": {"pattern": "^a"}}), "unsupported keyword `not` at `#`: the negation of `pattern` is not supported"),
        (
            json!({"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": true}}}),
            "cannot enforce `uniqueItems` exactly at `#/properties/tags`: `uniqueItems` is supported only over a small finite set of item values (enum, const, null, booleans, bounded integers), not any value",
        ),
        (
            json!({"$defs": {"a/b": {"if": {"pattern": "^a"}, "then": {"minLength": 2}, "else": {"maxLength": 1}}}, "$ref": "#/$defs/a~1b"}),
            "unsupported keyword `if` at `#/$defs/a~1b`: `else` needs the complement of `if`, which cannot be built: the negation of `pattern` is not supported",
        ),
        (
            json!({"type": "object", "patternProperties": {"^(?=x)": {}}}),
            "cannot enforce `patternProperties` exactly at `#`: lookaround is not regular",
        ),
        (
            json!({"allOf": [{"patternProperties": {"^x-": {}}}, {"patternProperties": {"^y-": {}}}]}),
            "cannot enforce `allOf` exactly at `#`: it intersects `patternProperties` with other constraints on undeclared keys",
        ),
        (
            json!({"type": "string", "format": "uri-template"}),
            "unsupported keyword `format` at `#`: format \"uri-template\" is not supported",
        ),
        (
            json!({"type": "object", "x-order": 3}),
            "unknown keyword `x-order` at `#`: not part of JSON Schema, so strictly cannot tell whether it constrains the value",
        ),
        (
            json!({"oneOf": [{"type": "string", "pattern": "a"}, {"type": "string", "pattern": "b"}]}),
            "unsupported keyword `oneOf` at `#`: branches 0 and 1 may both match one value, and exclusivity cannot be enforced (use anyOf, or the lenient option)",
        ),
        (
            json!({"type": "string", "pattern": "^(?=a)b$"}),
            "cannot enforce `pattern` exactly at `#`: lookaround is not regular",
        ),
        (
            json!({"type": "number", "multipleOf": 0.5}),
            "cannot enforce `multipleOf` exactly at `#`: `multipleOf` with a decimal divisor over decimals needs both `minimum` and `maximum`",
        ),
        (json!({"$ref": "https://example.com/s.json"}), "cannot resolve `$ref` \"https://example.com/s.json\" at `#`: only local references (`#...`) are supported"),
        (json!({"$ref": "#/$defs/missing"}), "cannot resolve `$ref` \"#/$defs/missing\" at `#`: no schema at that pointer"),
        (json!({"type": "strnig"}), "malformed `type` at `#`: unknown type \"strnig\""),
        (json!(false), "schema at `#` is unsatisfiable: the schema admits no value"),
        (
            json!({"type": "object", "required": ["id"], "additionalProperties": false}),
            "schema at `#` is unsatisfiable: \"id\" is required but additionalProperties is false",
        ),
    ];
    for (schema, expected) in cases {
        assert_eq!(error(schema.clone()), expected, "for {schema}");
    }
}

#[test]
fn lenient_options_are_explicit() {
    let schema = json!({"x-order": 3, "oneOf": [{"type": "string", "pattern": "a"}, {"type": "string", "pattern": "b"}]});
    let mut options = CompileOptions::default();
    assert!(Grammar::compile(&schema, &options).is_err(), "oneOf stays refused without lenient_one_of");
    options.lenient_one_of = true;
    assert!(Grammar::compile(&schema, &options).is_ok());
}

#[test]
fn size_limit_is_a_clean_error() {
    let schema = json!({"type": "array", "items": {"type": "string", "maxLength": 1000}, "minItems": 100});
    let options = CompileOptions { max_nfa_states: 10_000, ..CompileOptions::default() };
    let e = Grammar::compile(&schema, &options).expect_err("too large");
    assert!(e.to_string().contains("too large"), "{e}");
}

#[test]
fn malformed_input_never_panics() {
    for schema in [
        json!(null),
        json!(3),
        json!("x"),
        json!([]),
        json!({"type": 5}),
        json!({"properties": []}),
        json!({"enum": 1}),
        json!({"anyOf": []}),
        json!({"minLength": -1}),
        json!({"pattern": "("}),
        json!({"$ref": 7}),
        json!({"multipleOf": 0}),
    ] {
        assert!(Grammar::compile(&schema, &CompileOptions::default()).is_err(), "{schema} must be an error");
    }
}

#[test]
fn unknown_keywords_are_annotations_by_default() {
    let schema = json!({
        "type": "object", "x-order": 3,
        "properties": {"a": {"type": "string", "markdownDescription": "x", "format": "color"}, "b": {"type": "integer", "format": "int32"}},
        "required": ["a"], "additionalProperties": false
    });
    let g = Grammar::compile(&schema, &CompileOptions::default()).expect("annotations are ignored");
    let ignored: Vec<String> = g.ignored_keywords().iter().map(ToString::to_string).collect();
    assert_eq!(ignored, ["`x-order` at `#`", "`format` \"color\" at `#/properties/a`", "`markdownDescription` at `#/properties/a`"]);
    assert!(g.matches(br#"{"a":"z"}"#) && !g.matches(br#"{"a":1}"#) && !g.matches(br#"{"b":1}"#));
    // Nothing is listed when nothing is ignored, and denying restores the refusal.
    let plain = Grammar::compile(&json!({"type": "string", "title": "t"}), &CompileOptions::default()).unwrap();
    assert!(plain.ignored_keywords().is_empty());
    assert_eq!(
        error(json!({"properties": {"a": {"markdownDescription": "x"}}})),
        "unknown keyword `markdownDescription` at `#/properties/a`: not part of JSON Schema, so strictly cannot tell whether it constrains the value"
    );
    // Keywords a draft defines and strictly cannot enforce stay errors by default.
    let err = Grammar::compile(&json!({"type": "array", "x-y": 1, "uniqueItems": true}), &CompileOptions::default()).unwrap_err();
    assert_eq!(err.keyword(), Some("uniqueItems"));
    // The old option name still reads.
    let options: CompileOptions = serde_json::from_value(json!({"unknown_keywords": "reject"})).unwrap();
    assert_eq!(options.unknown_keywords, UnknownKeywords::Deny);
}
