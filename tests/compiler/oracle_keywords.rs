//! Keywords and shapes accepted beyond the core, checked against the
//! independent `jsonschema` crate (format assertions on): every instance the
//! automaton accepts must be valid, the valid instances listed are accepted
//! where strictly claims exactness, and random byte-level walks through the
//! automaton produce only valid values.

use crate::oracle;
use oracle::check;
use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::{CompileOptions, UnknownKeywords};

fn ignore() -> CompileOptions {
    CompileOptions { unknown_keywords: UnknownKeywords::Ignore, ..CompileOptions::default() }
}

fn deny() -> CompileOptions {
    CompileOptions { unknown_keywords: UnknownKeywords::Deny, ..CompileOptions::default() }
}

#[test]
fn pattern_properties_with_declared_names() {
    let schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "x-id": {"type": "integer"}},
        "patternProperties": {"^x-": {"minimum": 0}},
        "additionalProperties": false
    });
    check(
        schema,
        &CompileOptions::default(),
        &[json!({}), json!({"name": "a", "x-id": 3}), json!({"name": "a", "x-a": 1}), json!({"x-b": "s", "x-c": null})],
        &[json!({"x-id": -1}), json!({"x-a": -2}), json!({"y": 1}), json!({"x-id": "s"}), json!({"name": 1})],
    );
}

#[test]
fn pattern_keys_never_repeat_a_declared_name() {
    // "ab" is declared as a string and matches the integer pattern: no value fits.
    let schema = json!({
        "type": "object",
        "properties": {"ab": {"type": "string"}},
        "patternProperties": {"^a": {"type": "integer"}}
    });
    check(
        schema,
        &CompileOptions::default(),
        &[json!({"a": 1}), json!({"abc": 2})],
        &[json!({"ab": 1}), json!({"ab": "s"}), json!({"a": "s"})],
    );
}

#[test]
fn several_patterns_take_every_matching_schema() {
    let schema = json!({
        "type": "object",
        "patternProperties": {"^a": {"type": "integer"}, "b$": {"minimum": 5}},
        "additionalProperties": false
    });
    check(
        schema,
        &CompileOptions::default(),
        &[json!({"a": 1}), json!({"ab": 7}), json!({"b": 5}), json!({"b": "x"})],
        &[json!({"ab": 3}), json!({"ab": "x"}), json!({"a": "x"}), json!({"c": 1}), json!({"b": 1})],
    );
}

#[test]
fn pattern_keys_are_json_escaped() {
    let schema = json!({
        "type": "object",
        "patternProperties": {"^q\"": {"type": "null"}, "\\\\$": {"type": "boolean"}},
        "additionalProperties": false
    });
    check(schema, &CompileOptions::default(), &[json!({"q\"x": null}), json!({"a\\": true})], &[json!({"qx": null}), json!({"q\"": 1})]);
}

#[test]
fn pattern_properties_beside_additional_properties() {
    // Keys matching no pattern take `additionalProperties`; strictly emits only
    // declared and pattern keys (a sound subset), and never an invalid one.
    let schema = json!({
        "type": "object",
        "required": ["id", "n1"],
        "properties": {"id": {"type": "integer"}},
        "patternProperties": {"^n[0-9]+$": {"type": "number"}},
        "additionalProperties": {"type": "string"}
    });
    check(
        schema,
        &CompileOptions::default(),
        &[json!({"id": 1, "n1": 2}), json!({"id": 1, "n1": 2.5, "n22": 3})],
        &[json!({"id": 1}), json!({"id": 1, "n1": "x"}), json!({"id": "1", "n1": 2}), json!({"id": 1, "n1": 1, "other": 2})],
    );
}

#[test]
fn pattern_properties_intersect_with_plain_objects() {
    let schema = json!({
        "$defs": {"map": {"type": "object", "patternProperties": {"^[a-z]+$": {"type": "string", "maxLength": 3}}, "additionalProperties": false}},
        "allOf": [{"$ref": "#/$defs/map"}, {"required": ["abc"], "properties": {"abc": {"minLength": 2}}}]
    });
    check(
        schema,
        &CompileOptions::default(),
        &[json!({"abc": "xy"}), json!({"abc": "xyz", "d": ""})],
        &[json!({"abc": "x"}), json!({"abc": "xyzw"}), json!({"d": "x"}), json!({"abc": "xy", "D": "x"})],
    );
}

#[test]
fn unknown_format_names_are_annotations_unless_denied() {
    let schema = json!({"type": "object", "properties": {"c": {"type": "string", "format": "color", "maxLength": 4}}, "required": ["c"]});
    check(schema.clone(), &ignore(), &[json!({"c": "red"})], &[json!({"c": 1}), json!({"c": "orange"})]);
    let err = Grammar::compile(&schema, &deny()).unwrap_err();
    assert_eq!(err.to_string(), "unsupported keyword `format` at `#/properties/c`: format \"color\" is not supported");
    // Formats that JSON Schema defines are never ignored.
    let err = Grammar::compile(&json!({"type": "string", "format": "uri-template"}), &ignore()).unwrap_err();
    assert_eq!(err.keyword(), Some("format"));
}

#[test]
fn int32_is_enforced_as_its_range() {
    let schema = json!({"type": "integer", "format": "int32"});
    check(schema, &CompileOptions::default(), &[json!(0), json!(2147483647), json!(-2147483648)], &[json!(1.5)]);
    let g = Grammar::compile(&json!({"type": "number", "format": "int32"}), &CompileOptions::default()).unwrap();
    for t in ["2147483648", "-2147483649", "1.5", "1e3"] {
        assert!(!g.matches(t.as_bytes()), "{t}");
    }
}

#[test]
fn standard_formats_are_sound_subsets() {
    for format in ["uri-reference", "iri", "iri-reference", "json-pointer", "regex", "duration"] {
        let schema = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "string", "format": format});
        check(schema, &CompileOptions::default(), &[], &[json!(1)]);
    }
}

#[test]
fn pattern_with_length_bounds_is_an_intersection() {
    let schema = json!({"type": "string", "pattern": "^[a-z]+(-[a-z]+)*$", "minLength": 3, "maxLength": 6});
    check(
        schema,
        &CompileOptions::default(),
        &[json!("abc"), json!("ab-cd"), json!("abcdef")],
        &[json!("ab"), json!("abcdefg"), json!("ab-"), json!("a-b-c-d")],
    );
    // Unanchored, with characters that need escapes and multi-byte ones.
    let schema = json!({"type": "string", "pattern": "\"", "maxLength": 3});
    check(schema, &CompileOptions::default(), &[json!("\""), json!("é\"\n")], &[json!("abc"), json!("\"abc")]);
}

#[test]
fn pattern_with_format_is_an_intersection() {
    let schema = json!({"type": "string", "format": "date", "pattern": "^2024-"});
    check(schema, &CompileOptions::default(), &[json!("2024-02-29"), json!("2024-12-31")], &[json!("2023-01-01"), json!("2024-13-01")]);
    let schema = json!({"type": "string", "format": "email", "maxLength": 12});
    check(schema, &CompileOptions::default(), &[json!("ab@cd.org")], &[json!("abcdefgh@example.org")]);
}

#[test]
fn not_of_type_enum_and_const() {
    let d = CompileOptions::default();
    check(json!({"not": {"type": ["string", "object"]}}), &d, &[json!(1), json!(null), json!([1])], &[json!("a"), json!({})]);
    check(
        json!({"type": "string", "not": {"enum": ["intramural", "a\"b"]}}),
        &d,
        &[json!("intra"), json!("intramurals"), json!("")],
        &[json!("intramural"), json!("a\"b"), json!(3)],
    );
    check(
        json!({"not": {"enum": [1, 2.5, true, null, "x"]}}),
        &d,
        &[json!(0), json!(2), json!(3), json!(false), json!("y"), json!([])],
        &[json!(1), json!(2.5), json!(true), json!(null), json!("x")],
    );
    check(json!({"type": "integer", "not": {"const": 0}}), &d, &[json!(-1), json!(1)], &[json!(0)]);
    assert!(Grammar::compile(&json!({"not": {"enum": [[1]]}}), &d).is_err());
}

#[test]
fn not_required_and_not_properties() {
    let d = CompileOptions::default();
    check(
        json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "not": {"required": ["a", "b"]}}),
        &d,
        &[json!({}), json!({"a": 1}), json!({"b": 2, "c": 3})],
        &[json!({"a": 1, "b": 2}), json!({"a": "x"})],
    );
    // Values that are not objects satisfy `required`, so its complement lacks them.
    check(json!({"not": {"required": ["a"]}}), &d, &[json!({}), json!({"b": 1})], &[json!(5), json!("s"), json!([]), json!({"a": 1})]);
    check(
        json!({"type": "object", "not": {"anyOf": [{"required": ["x"]}, {"required": ["y"]}]}}),
        &d,
        &[json!({}), json!({"z": 1})],
        &[json!({"x": 1}), json!({"y": 1}), json!({"x": 1, "y": 2})],
    );
    check(
        json!({"not": {"properties": {"kind": {"const": "a"}}}}),
        &d,
        &[json!({"kind": "b"}), json!({"kind": 1})],
        &[json!({"kind": "a"}), json!({}), json!(3), json!("s")],
    );
}

#[test]
fn not_of_bounds_double_negation_and_refs() {
    let d = CompileOptions::default();
    check(json!({"type": "number", "not": {"minimum": 3}}), &d, &[json!(2), json!(2.5)], &[json!(3), json!(4)]);
    check(json!({"type": "string", "not": {"maxLength": 2}}), &d, &[json!("abc")], &[json!("ab"), json!("")]);
    check(json!({"type": "array", "not": {"minItems": 2}}), &d, &[json!([]), json!([1])], &[json!([1, 2])]);
    check(json!({"not": {"not": {"type": "boolean"}}}), &d, &[json!(true)], &[json!(1), json!("x")]);
    check(json!({"$defs": {"s": {"type": "string"}}, "not": {"$ref": "#/$defs/s"}}), &d, &[json!(1), json!(null)], &[json!("x")]);
    check(
        json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "number", "not": {"minimum": 3, "exclusiveMinimum": true}}),
        &d,
        &[json!(3), json!(2)],
        &[json!(3.5), json!(4)],
    );
    check(json!({"not": false}), &d, &[json!(1), json!("s")], &[]);
    assert!(Grammar::compile(&json!({"not": {}}), &d).is_err(), "`not: {{}}` admits nothing");
}

#[test]
fn overlapping_one_of_branches_are_made_exclusive() {
    let d = CompileOptions::default();
    // Objects told apart by which key is present: exact.
    check(
        json!({"oneOf": [{"type": "object", "required": ["a"]}, {"type": "object", "required": ["b"]}]}),
        &d,
        &[json!({"a": 1}), json!({"b": 1}), json!({"a": 1, "c": 2})],
        &[json!({"a": 1, "b": 2}), json!({}), json!(1)],
    );
    // Branches without `type`: every non-object matches both, so none is emitted.
    check(
        json!({"oneOf": [
            {"properties": {"first": {"type": "string"}}, "required": ["first"]},
            {"properties": {"price": {"type": "integer"}}, "additionalProperties": false}
        ]}),
        &d,
        &[json!({"first": "a", "price": "x"}), json!({"price": 1}), json!({})],
        &[json!("s"), json!(1), json!(null), json!({"first": 1})],
    );
    // A string branch and a pattern branch: the overlap is left out.
    check(
        json!({"oneOf": [{"type": "string", "maxLength": 3}, {"type": "string", "minLength": 2}]}),
        &d,
        &[json!("a"), json!("abcd")],
        &[json!("ab"), json!("abc"), json!(1)],
    );
    // Branches without a complement strictly can build are still refused.
    let err =
        Grammar::compile(&json!({"oneOf": [{"type": "string", "pattern": "a"}, {"type": "string", "pattern": "b"}]}), &d).unwrap_err();
    assert_eq!(err.keyword(), Some("oneOf"));
}

#[test]
fn dependent_required_and_dependencies_are_exact_unions() {
    let props = json!({"card": {"type": "string", "maxLength": 3}, "billing": {"type": "integer"}, "name": {"type": "boolean"}});
    for schema in [
        json!({"type": "object", "properties": props, "additionalProperties": false, "dependentRequired": {"card": ["billing"]}}),
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": props, "additionalProperties": false, "dependencies": {"card": ["billing"]}}),
    ] {
        check(
            schema,
            &CompileOptions::default(),
            &[json!({}), json!({"card": "a", "billing": 1}), json!({"billing": 2}), json!({"name": true})],
            &[json!({"card": "a"}), json!({"card": "a", "name": false})],
        );
    }
    let schema = json!({
        "type": "object",
        "properties": {"kind": {"enum": ["a", "b"]}, "x": {"type": "integer"}},
        "dependentSchemas": {"x": {"properties": {"kind": {"const": "a"}}, "required": ["kind"]}}
    });
    check(
        schema,
        &CompileOptions::default(),
        &[json!({"kind": "b"}), json!({"kind": "a", "x": 1})],
        &[json!({"x": 1}), json!({"kind": "b", "x": 1}), json!([1])],
    );
}

#[test]
fn property_counts_are_counted_states() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "minProperties": 1, "maxProperties": 2});
    check(
        schema,
        &CompileOptions::default(),
        &[json!({"a": 1}), json!({"a": 1, "b": 2}), json!({"b": 2, "c": null})],
        &[json!({}), json!({"a": 1, "b": 2, "c": 3})],
    );
    let schema = json!({"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "boolean"}, "propertyNames": {"maxLength": 2}, "minProperties": 2});
    check(
        schema,
        &CompileOptions::default(),
        &[json!({"a": 1, "y": false})],
        &[json!({"a": true}), json!({}), json!({"a": true, "abc": true})],
    );
    // Other keys may repeat (`{"x":1,"x":1}` has one member), so they count
    // once towards a minimum: two of them are never relied on.
    let g = Grammar::compile(
        &json!({"type": "object", "additionalProperties": {"type": "boolean"}, "minProperties": 2}),
        &CompileOptions::default(),
    );
    assert!(g.is_err(), "would count a repeated key twice");
    let g = Grammar::compile(&json!({"type": "object", "required": ["a", "b"], "maxProperties": 1}), &CompileOptions::default());
    assert!(g.is_err(), "two required properties never fit in one");
}

#[test]
fn if_then_else_is_a_union_over_the_complement_of_if() {
    let schema = json!({
        "type": "object",
        "properties": {"country": {"enum": ["US", "CA"]}, "zip": {"type": "string", "maxLength": 6}},
        "required": ["country", "zip"],
        "if": {"properties": {"country": {"const": "US"}}},
        "then": {"properties": {"zip": {"pattern": "^[0-9]{5}$"}}},
        "else": {"properties": {"zip": {"pattern": "^[A-Z][0-9][A-Z]"}}}
    });
    check(
        schema,
        &CompileOptions::default(),
        &[json!({"country": "US", "zip": "12345"}), json!({"country": "CA", "zip": "K1A0B1"})],
        &[json!({"country": "US", "zip": "K1A0B1"}), json!({"country": "CA", "zip": "12345"})],
    );
    // `if` without `else` needs no complement; with one whose complement
    // cannot be built, the refusal names `if`.
    check(
        json!({"if": {"type": "string"}, "then": {"maxLength": 2}}),
        &CompileOptions::default(),
        &[json!("ab"), json!(5)],
        &[json!("abc")],
    );
    let err = Grammar::compile(
        &json!({"if": {"pattern": "^a"}, "then": {"maxLength": 2}, "else": {"type": "integer"}}),
        &CompileOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.keyword(), Some("if"), "{err}");
}

#[test]
fn property_names_constrain_every_key() {
    let schema =
        json!({"type": "object", "propertyNames": {"pattern": "^[a-z]+$", "maxLength": 4}, "additionalProperties": {"type": "integer"}});
    check(schema, &CompileOptions::default(), &[json!({}), json!({"ab": 1, "cd": 2})], &[json!({"AB": 1}), json!({"abcde": 1})]);
    let schema = json!({"type": "object", "properties": {"Bad": {"type": "integer"}, "ok": {"type": "integer"}}, "propertyNames": {"enum": ["ok", "fine"]}});
    check(
        schema,
        &CompileOptions::default(),
        &[json!({"ok": 1}), json!({"ok": 1, "fine": [2]})],
        &[json!({"Bad": 1}), json!({"other": 1})],
    );
    let schema = json!({"type": "object", "properties": {"Bad": {}}, "required": ["Bad"], "propertyNames": {"pattern": "^[a-z]+$"}});
    assert!(Grammar::compile(&schema, &CompileOptions::default()).is_err());
}
