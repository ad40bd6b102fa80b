//! Arrays: `contains` with `minContains`/`maxContains`, `unevaluatedItems`
//! beside no applicator, and what is still refused, against the
//! `jsonschema` crate (see `tests/oracle`).

use crate::oracle;
use oracle::check;
use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::{CompileOptions, RefusalClass};

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
    let e =
        Grammar::compile(&json!({"allOf": [{"contains": {"type": "string"}}, {"contains": {"type": "null"}}]}), &CompileOptions::default())
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
    let e =
        Grammar::compile(&json!({"allOf": [{"prefixItems": [true]}], "unevaluatedItems": false}), &CompileOptions::default()).unwrap_err();
    assert_eq!(e.keyword(), Some("unevaluatedItems"), "{e}");
}

/// Every array of up to `len` items drawn from `pool`: the automaton
/// accepts exactly those the oracle accepts.
fn agrees_on_all_arrays(schema: serde_json::Value, pool: &[serde_json::Value], len: usize) {
    let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap_or_else(|e| panic!("{schema}: {e}"));
    let oracle = crate::oracle::validator(&schema).unwrap();
    let mut arrays: Vec<Vec<serde_json::Value>> = vec![vec![]];
    let mut checked = 0;
    for _ in 0..=len {
        let mut longer = Vec::new();
        for a in &arrays {
            let v = serde_json::Value::Array(a.clone());
            assert_eq!(g.matches(oracle::text(&v).as_bytes()), oracle.is_valid(&v), "{schema} on {v}");
            checked += 1;
            for item in pool {
                let mut b = a.clone();
                b.push(item.clone());
                longer.push(b);
            }
        }
        arrays = longer;
    }
    assert!(checked > 1, "{schema}: nothing checked");
}

#[test]
fn unique_items_over_an_enum_are_exact() {
    let schema = json!({"type": "array", "items": {"enum": ["a", "b", 1, null]}, "uniqueItems": true});
    check(
        schema.clone(),
        &CompileOptions::default(),
        &[json!([]), json!(["a"]), json!(["b", "a", null, 1])],
        &[json!(["a", "a"]), json!([1, "b", 1]), json!([null, null]), json!(["c"])],
    );
    agrees_on_all_arrays(schema, &[json!("a"), json!("b"), json!(1), json!(null), json!("c")], 5);
}

#[test]
fn unique_items_over_booleans_and_bounded_integers_with_bounds() {
    check(
        json!({"type": "array", "items": {"type": ["integer", "boolean"], "minimum": -2, "exclusiveMaximum": 3}, "uniqueItems": true, "minItems": 2, "maxItems": 4}),
        &CompileOptions::default(),
        &[json!([true, false]), json!([-2, 2, true, 0])],
        &[json!([1]), json!([1, 1]), json!([true, 1, true]), json!([0, 1, 2, -1, -2]), json!([3, 0])],
    );
    agrees_on_all_arrays(
        json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 3}, "uniqueItems": true, "minItems": 1}),
        &[json!(0), json!(1), json!(2), json!(3), json!(4)],
        5,
    );
}

#[test]
fn unique_items_with_prefix_items_and_equal_literals() {
    // 1 and 1.0 are one value to JSON Schema: the automaton spells it once.
    let schema = json!({"type": "array", "prefixItems": [{"const": 1}], "items": {"enum": [1.0, 2, true]}, "uniqueItems": true});
    check(schema.clone(), &CompileOptions::default(), &[json!([1]), json!([1, 2, true])], &[json!([1, 1]), json!([2]), json!([1, 2, 2])]);
    assert!(!Grammar::compile(&schema, &CompileOptions::default()).unwrap().matches(b"[1,1.0]"));
    agrees_on_all_arrays(schema, &[json!(1), json!(2), json!(true), json!(false)], 4);
}

#[test]
fn unique_items_through_all_of_and_refs() {
    check(
        json!({"$defs": {"c": {"enum": ["x", "y", "z"]}}, "allOf": [{"type": "array", "items": {"$ref": "#/$defs/c"}}, {"uniqueItems": true}]}),
        &CompileOptions::default(),
        &[json!(["x", "z", "y"])],
        &[json!(["x", "x"]), json!(["x", "y", "z", "x"])],
    );
}

#[test]
fn unique_items_over_infinite_or_large_item_sets_are_refused() {
    let opts = CompileOptions::default();
    for (schema, class) in [
        (json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true}), RefusalClass::Inexact),
        (json!({"type": "array", "uniqueItems": true}), RefusalClass::Inexact),
        (json!({"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "uniqueItems": true}), RefusalClass::Inexact),
        (json!({"type": "array", "items": {"type": "integer", "minimum": 0}, "uniqueItems": true}), RefusalClass::Inexact),
        (
            json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 1000}, "uniqueItems": true}),
            RefusalClass::TooLarge,
        ),
        (json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 40}, "uniqueItems": true}), RefusalClass::TooLarge),
    ] {
        let e = Grammar::compile(&json!({"properties": {"tags": schema}}), &opts).unwrap_err();
        assert_eq!(e.pointer(), "/properties/tags", "{e}");
        let text = e.to_string();
        assert!(text.contains("uniqueItems"), "{schema}: {text}");
        assert_eq!(e.class(), class, "{schema}: {text}");
    }
    // One item is always unique; `false` asks nothing.
    check(
        json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 1}),
        &opts,
        &[json!(["a"])],
        &[json!(["a", "b"])],
    );
    check(json!({"type": "array", "items": {"type": "string"}, "uniqueItems": false}), &opts, &[json!(["a", "a"])], &[json!([1])]);
}

#[test]
fn contains_of_integers_is_a_subset_beside_decimals_and_exact_beside_integers() {
    let opts = CompileOptions::default();
    // Items that are numbers: non-integral misses are left out (a sound subset).
    let schema = json!({"type": "array", "items": {"type": "number"}, "contains": {"type": "integer"}});
    check(schema.clone(), &opts, &[json!([1]), json!([2, 3])], &[json!([]), json!([1.5])]);
    let g = Grammar::compile(&schema, &opts).unwrap();
    assert!(crate::oracle::validator(&schema).unwrap().is_valid(&json!([1, 2.5])));
    assert!(!g.matches(b"[1,2.5]"), "the subset leaves out non-integral misses");
    // Items that cannot be non-integral: exact.
    check(
        json!({"type": "array", "items": {"type": ["integer", "string"]}, "contains": {"type": "integer"}, "maxContains": 2}),
        &opts,
        &[json!([1]), json!(["a", 2, "b", 3])],
        &[json!([]), json!(["a"]), json!([1, 2, 3])],
    );
}
