//! Combinators: `anyOf`, `oneOf`, `allOf`, `not` and `if`/`then`/`else`,
//! against the `jsonschema` crate, at the byte level (`tests/oracle`) and
//! through the token mask over a small hand-made vocabulary
//! (`tests/token_oracle`).

use crate::{oracle, token_oracle};
use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::CompileOptions;
use token_oracle::check;

#[test]
fn any_of_admits_each_branch() {
    check(
        json!({"anyOf": [{"type": "integer", "minimum": 10}, {"type": "string", "maxLength": 2}]}),
        &["10", "\"ab\""],
        &[json!(10), json!(12345), json!(""), json!("ab")],
        &[json!(9), json!(-1), json!("abc"), json!(null), json!(10.5)],
    );
}

#[test]
fn one_of_with_disjoint_branches() {
    check(
        json!({"oneOf": [{"type": "boolean"}, {"type": "object", "properties": {"a": {"type": "null"}}, "required": ["a"], "additionalProperties": false}]}),
        &["{\"a\":", "null}", "true"],
        &[json!(true), json!(false), json!({"a": null})],
        &[json!({}), json!({"a": 1}), json!(null), json!("true")],
    );
}

/// The complement of `type: integer` holds the non-integral numbers, which the IR leaves out
/// (a sound subset). `oneOf` must still count them when it asks whether two branches share a
/// value: 0.9 matches both branches here, so it is not an output.
#[test]
fn one_of_counts_the_numbers_a_negated_integer_leaves_out() {
    check(
        json!({"oneOf": [{"not": {"type": "integer", "exclusiveMinimum": -1}}, {"type": "number", "minimum": 0.5}]}),
        &["0.", "-5"],
        &[json!(null), json!(-5), json!(2), json!("x")],
        &[json!(0.9), json!(1.5), json!(0.5)],
    );
    check(
        json!({"oneOf": [{"not": {"type": "integer"}}, {"const": 0.5}]}),
        &["0.", "null"],
        &[json!(null), json!("x"), json!(true)],
        &[json!(0.5), json!(3)],
    );
}

/// A format's regex is a subset of its RFC: an upper-case address is an email to the
/// validator, so it matches both branches and is not an output.
#[test]
fn one_of_counts_the_strings_a_format_leaves_out() {
    check(
        json!({"oneOf": [{"type": "string", "format": "email"}, {"const": "A@B.COM"}]}),
        &["A@", "B.COM"],
        &[json!("a@b.com")],
        &[json!("A@B.COM")],
    );
}

#[test]
fn one_of_with_overlapping_branches_excludes_the_overlap() {
    check(
        json!({"oneOf": [{"enum": [1, 2, 3]}, {"enum": [3, 4]}]}),
        &[],
        &[json!(1), json!(2), json!(4)],
        &[json!(3), json!(5), json!("1")],
    );
}

#[test]
fn all_of_intersects() {
    check(
        json!({"allOf": [{"type": "string", "minLength": 2}, {"maxLength": 3}, {"pattern": "^a"}]}),
        &["\"a", "ab"],
        &[json!("ab"), json!("abc"), json!("a日")],
        &[json!("a"), json!("abcd"), json!("ba"), json!(1)],
    );
    check(
        json!({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"a": {"minimum": 0, "maximum": 9}}, "additionalProperties": false}]}),
        &["{\"a\":"],
        &[json!({"a": 0}), json!({"a": 9})],
        &[json!({"a": 10}), json!({"a": -1}), json!({}), json!({"a": 1, "b": 2})],
    );
}

#[test]
fn not_removes_values() {
    check(
        json!({"type": "integer", "not": {"enum": [1, 2]}, "minimum": 0, "maximum": 5}),
        &[],
        &[json!(0), json!(3), json!(5)],
        &[json!(1), json!(2), json!(6), json!(-1)],
    );
    check(json!({"type": ["string", "null"], "not": {"type": "string"}}), &["null"], &[json!(null)], &[json!("a"), json!(""), json!(0)]);
}

#[test]
fn if_then_else_picks_a_branch() {
    check(
        json!({"type": ["integer", "string"], "if": {"type": "integer"}, "then": {"minimum": 0}, "else": {"maxLength": 1}}),
        &["\"a\""],
        &[json!(0), json!(42), json!(""), json!("a")],
        &[json!(-1), json!("ab"), json!(null)],
    );
    check(
        json!({
            "type": "object",
            "properties": {"kind": {"enum": ["a", "b"]}, "x": {"type": "integer"}},
            "required": ["kind"],
            "additionalProperties": false,
            "if": {"properties": {"kind": {"const": "a"}}},
            "then": {"required": ["x"]}
        }),
        &["{\"kind\":", "\"a\"", ",\"x\":"],
        &[json!({"kind": "a", "x": 1}), json!({"kind": "b"}), json!({"kind": "b", "x": 2})],
        &[json!({"kind": "a"}), json!({"kind": "c"}), json!({"x": 1})],
    );
}

#[test]
fn refused_combinations_name_keyword_and_pointer() {
    // A string `not` beside a pattern: its complement is not exact here.
    let schema = json!({"properties": {"p": {"type": "string", "not": {"pattern": "a"}}}});
    match Grammar::compile(&schema, &CompileOptions::default()) {
        // Either enforced exactly (then the oracle agrees on these) ...
        Ok(_) => oracle::check(schema, &CompileOptions::default(), &[json!({"p": "xyz"})], &[json!({"p": "xaz"})]),
        // ... or refused, naming `not` where it stands.
        Err(e) => {
            assert_eq!(e.keyword(), Some("not"), "{e}");
            assert!(e.pointer().starts_with("/properties/p"), "{e}");
        }
    }
    let e = Grammar::compile(&json!({"anyOf": []}), &CompileOptions::default()).unwrap_err();
    assert_eq!(e.keyword(), Some("anyOf"), "{e}");
    let e = Grammar::compile(&json!({"allOf": [{"type": "string"}, {"type": "integer"}]}), &CompileOptions::default()).unwrap_err();
    assert!(e.to_string().contains("unsatisfiable"), "{e}");
}
