//! Arrays: `contains` with `minContains`/`maxContains`, `unevaluatedItems`
//! beside no applicator, and what is still refused, against the
//! `jsonschema` crate (see `tests/oracle`).

mod oracle;

use oracle::check;
use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::CompileOptions;

#[test]
fn contains_needs_one_matching_item() {
    check(
        json!({"type": "array", "items": {"type": "integer"}, "contains": {"minimum": 5}}),
        &CompileOptions::default(),
        &[json!([5]), json!([1, 7]), json!([9, 2, 3]), json!([5, 6])],
        &[json!([]), json!([1]), json!([1, 2, 4]), json!(["a", 6])],
    );
}

#[test]
fn min_and_max_contains_bound_the_count() {
    check(
        json!({"type": "array", "items": {"enum": [1, 2]}, "contains": {"const": 1}, "minContains": 2, "maxContains": 3}),
        &CompileOptions::default(),
        &[json!([1, 1]), json!([2, 1, 2, 1]), json!([1, 1, 1, 2])],
        &[json!([1]), json!([1, 2, 2]), json!([1, 1, 1, 1]), json!([])],
    );
}

#[test]
fn contains_beside_prefix_and_item_bounds() {
    check(
        json!({"prefixItems": [{"type": "string"}], "items": {"type": "integer"}, "contains": {"type": "string"}, "maxItems": 3, "type": "array"}),
        &CompileOptions::default(),
        &[json!(["a"]), json!(["a", 1, 2])],
        &[json!([]), json!(["a", "b"]), json!(["a", 1, 2, 3])],
    );
}

#[test]
fn max_contains_zero_forbids_matches() {
    check(
        json!({"type": "array", "items": {"type": "boolean"}, "contains": {"const": true}, "minContains": 0, "maxContains": 0}),
        &CompileOptions::default(),
        &[json!([]), json!([false, false])],
        &[json!([true]), json!([false, true])],
    );
}

#[test]
fn contains_through_all_of_is_split_again() {
    check(
        json!({"allOf": [{"type": "array", "contains": {"type": "string"}}, {"items": {"enum": ["a", 1, null]}}]}),
        &CompileOptions::default(),
        &[json!(["a"]), json!([1, "a", null])],
        &[json!([]), json!([1, null]), json!(["b"])],
    );
}

#[test]
fn contains_without_an_exact_complement_is_refused() {
    let e = Grammar::compile(&json!({"type": "array", "contains": {"multipleOf": 3}}), &CompileOptions::default()).unwrap_err();
    assert_eq!(e.keyword(), Some("contains"), "{e}");
    let e = Grammar::compile(&json!({"allOf": [{"contains": {"type": "string"}}, {"contains": {"type": "null"}}]}), &CompileOptions::default())
        .unwrap_err();
    assert_eq!(e.keyword(), Some("contains"), "{e}");
}

#[test]
fn unevaluated_items_beside_no_applicator_reads_as_items() {
    check(
        json!({"type": "array", "prefixItems": [{"type": "string"}], "unevaluatedItems": {"type": "integer"}}),
        &CompileOptions::default(),
        &[json!([]), json!(["a"]), json!(["a", 1, 2])],
        &[json!([1]), json!(["a", "b"])],
    );
    let e = Grammar::compile(&json!({"allOf": [{"prefixItems": [true]}], "unevaluatedItems": false}), &CompileOptions::default()).unwrap_err();
    assert_eq!(e.keyword(), Some("unevaluatedItems"), "{e}");
}
