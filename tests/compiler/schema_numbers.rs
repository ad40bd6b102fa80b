//! Numbers: bounds that are not integers and `multipleOf` (integer or
//! decimal), against the `jsonschema` crate
//! (see `tests/oracle`).

use crate::oracle;
use oracle::check;
use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::{CompileOptions, RefusalClass};

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

/// Every number `n / 100` for `n` in `range`, written in its shortest form
/// (and integers also as `n.0` where they are whole): the automaton accepts
/// exactly what the oracle accepts.
fn agrees_on_hundredths(schema: serde_json::Value, range: std::ops::RangeInclusive<i64>) {
    let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap_or_else(|e| panic!("{schema}: {e}"));
    let oracle = crate::oracle::validator(&schema).unwrap();
    let mut accepted = 0;
    for n in range {
        let text = format!("{}", n as f64 / 100.0);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let valid = oracle.is_valid(&value);
        assert_eq!(g.matches(text.as_bytes()), valid, "{schema} on {text}");
        accepted += valid as usize;
    }
    assert!(accepted > 0, "{schema}: nothing valid in the range");
}

#[test]
fn decimal_multiple_of_between_bounds_is_exact() {
    let opts = CompileOptions::default();
    check(
        json!({"type": "number", "multipleOf": 0.01, "minimum": 0, "maximum": 5}),
        &opts,
        &[json!(0), json!(0.3), json!(1.23), json!(5)],
        &[json!(1.234), json!(-0.01), json!(5.01)],
    );
    check(
        json!({"type": "number", "multipleOf": 2.5, "exclusiveMinimum": -10, "exclusiveMaximum": 10}),
        &opts,
        &[json!(-7.5), json!(0), json!(2.5), json!(5)],
        &[json!(-10), json!(10), json!(1), json!(3.75)],
    );
    agrees_on_hundredths(json!({"type": "number", "multipleOf": 0.05, "minimum": -1.1, "maximum": 2.37}), -300..=300);
    agrees_on_hundredths(json!({"type": "number", "multipleOf": 0.5, "exclusiveMinimum": 0.25, "maximum": 3}), -100..=500);
    // Integer divisors with bounds, and integers under a decimal divisor.
    agrees_on_hundredths(json!({"type": "integer", "multipleOf": 3, "minimum": -20, "maximum": 20}), -3000..=3000);
    agrees_on_hundredths(json!({"type": "integer", "multipleOf": 2.5, "minimum": -50, "maximum": 50}), -6000..=6000);
}

#[test]
fn integers_under_a_decimal_divisor_need_no_bounds() {
    check(
        json!({"type": "integer", "multipleOf": 0.5}),
        &CompileOptions::default(),
        &[json!(0), json!(7), json!(-12)],
        &[json!(0.5), json!("1")],
    );
    check(
        json!({"type": "integer", "multipleOf": 2.5}),
        &CompileOptions::default(),
        &[json!(0), json!(5), json!(-15)],
        &[json!(2.5), json!(7)],
    );
}

#[test]
fn decimal_multiple_of_that_is_not_exact_is_refused_with_its_pointer() {
    let opts = CompileOptions::default();
    for (schema, class) in [
        (json!({"type": "number", "multipleOf": 0.01}), RefusalClass::Inexact),
        (json!({"type": "number", "multipleOf": 0.01, "minimum": 0}), RefusalClass::Inexact),
        (json!({"type": "number", "multipleOf": 3, "maximum": 0}), RefusalClass::Inexact),
        (json!({"type": "number", "multipleOf": 0.0001, "minimum": 0, "maximum": 1000}), RefusalClass::TooLarge),
    ] {
        let e = Grammar::compile(&json!({"properties": {"price": schema}}), &opts).unwrap_err();
        assert_eq!(e.pointer(), "/properties/price", "{schema}: {e}");
        assert_eq!(e.class(), class, "{schema}: {e}");
    }
}
