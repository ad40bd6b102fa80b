//! Objects: `unevaluatedProperties` beside no applicator, against the
//! `jsonschema` crate (see `tests/oracle`).

use crate::oracle;
use oracle::check;
use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::CompileOptions;

#[test]
fn unevaluated_properties_beside_no_applicator_reads_as_additional() {
    check(
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "patternProperties": {"^x": {"type": "null"}}, "unevaluatedProperties": {"type": "integer"}}),
        &CompileOptions::default(),
        // Beside patterns, other keys are left out (a subset, as with
        // `additionalProperties`); invalid ones are still rejected.
        &[json!({}), json!({"xy": null}), json!({"a": "s", "xy": null})],
        &[json!({"b": "s"}), json!({"x": 1}), json!({"a": 1})],
    );
    check(
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "unevaluatedProperties": {"type": "integer"}}),
        &CompileOptions::default(),
        &[json!({}), json!({"a": "s", "b": 3}), json!({"b": 3})],
        &[json!({"b": "s"}), json!({"a": 1})],
    );
}

#[test]
fn unevaluated_properties_leave_other_types_free() {
    check(
        json!({"unevaluatedProperties": false}),
        &CompileOptions::default(),
        &[json!({}), json!(1), json!("s"), json!([1])],
        &[json!({"a": 1})],
    );
}

#[test]
fn unevaluated_properties_beside_an_applicator_are_refused() {
    let schema = json!({"properties": {"a": true}, "anyOf": [{"properties": {"b": true}}], "unevaluatedProperties": false});
    let e = Grammar::compile(&schema, &CompileOptions::default()).unwrap_err();
    assert_eq!(e.keyword(), Some("unevaluatedProperties"), "{e}");
    // Beside `additionalProperties` it evaluates nothing, applicators or not.
    let schema = json!({"type": "object", "additionalProperties": {"type": "null"}, "allOf": [true], "unevaluatedProperties": false});
    check(schema, &CompileOptions::default(), &[json!({"a": null})], &[json!({"a": 1})]);
}
