//! Numbers: bounds that are not integers, against the `jsonschema` crate
//! (see `tests/oracle`).

mod oracle;

use oracle::check;
use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::CompileOptions;

#[test]
fn decimal_bounds_are_enforced_exactly() {
    check(
        json!({"type": "number", "minimum": 0.1, "maximum": 0.2}),
        &CompileOptions::default(),
        &[json!(0.1), json!(0.15), json!(0.2), json!(0.199)],
        &[json!(0.09), json!(0.2001), json!(1), json!(0), json!(-0.15)],
    );
    check(
        json!({"type": "number", "exclusiveMinimum": -1.5, "exclusiveMaximum": 2.25}),
        &CompileOptions::default(),
        &[json!(-1.49), json!(0), json!(2.2), json!(2)],
        &[json!(-1.5), json!(2.25), json!(3), json!(-2)],
    );
}

#[test]
fn decimal_bounds_with_nothing_between_admit_no_number() {
    let e = Grammar::compile(&json!({"type": "number", "exclusiveMinimum": 0.5, "maximum": 0.5}), &CompileOptions::default()).unwrap_err();
    assert!(e.to_string().contains("unsatisfiable"), "{e}");
}

#[test]
fn exclusive_bounds_past_two_to_the_53_are_refused() {
    let e = Grammar::compile(&json!({"type": "number", "exclusiveMinimum": 1e17}), &CompileOptions::default()).unwrap_err();
    assert_eq!(e.keyword(), Some("minimum"), "{e}");
}
