//! Property-based tests of the compiler over generated schemas (nested
//! combinators, local and recursive `$ref`, bounds, patterns, formats,
//! `contains`, unknown keywords), with the `jsonschema` crate as the oracle:
//! - every schema compiles or fails with an error, never panics, and
//!   finishes within the compile limits;
//! - every accepted schema's seeded random walks are valid;
//! - for a family of schemas strictly enforces exactly, generated instances
//!   are accepted by the automaton exactly when the validator accepts them.
//!
//! `cargo test` runs 128 cases per property (about 2 s); `STRICTLY_PROPTEST_CASES=N`
//! runs N.

use crate::oracle;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::oracle::validator;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use strictly::automaton::Grammar;
use strictly::coverage::serializations;
use strictly::schema::{self, CompileOptions};

fn config() -> Config {
    let cases = std::env::var("STRICTLY_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Scalars every family shares.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"type": "null"})),
        Just(json!({"type": "boolean"})),
        (-5i64..5, 0i64..8).prop_map(|(lo, w)| json!({"type": "integer", "minimum": lo, "maximum": lo + w})),
        (-5i64..5).prop_map(|lo| json!({"type": "integer", "exclusiveMinimum": lo})),
        (0usize..3, 0usize..4).prop_map(|(lo, w)| json!({"type": "string", "minLength": lo, "maxLength": lo + w})),
        prop::sample::select(vec!["^[ab]*$", "^a", "b$", "^(ab|c)+$"])
            .prop_map(|p| json!({"type": "string", "pattern": p, "maxLength": 4})),
        prop::collection::vec(small_scalar(), 1..4).prop_map(|vs| json!({"enum": vs})),
        small_scalar().prop_map(|v| json!({"const": v})),
    ]
}

/// Every generated construct, exact or not.
fn any_schema() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        6 => scalar(),
        1 => prop::sample::select(vec!["date", "email", "uuid", "ipv4", "date-time", "hostname", "no-such-format"])
            .prop_map(|f| json!({"type": "string", "format": f})),
        1 => Just(json!(true)),
        1 => Just(json!({"$ref": "#/$defs/node"})),
        1 => Just(json!({"$ref": "#"})),
        1 => Just(json!({"type": "number", "minimum": 0.5, "x-unknown": {"deep": [1]}})),
        1 => Just(json!({"type": "integer", "multipleOf": 3})),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), 0usize..4).prop_map(|(s, n)| json!({"type": "array", "items": s, "maxItems": n})),
            (inner.clone(), inner.clone(), 0usize..3).prop_map(|(s, c, n)| json!({"type": "array", "items": s, "contains": c, "maxContains": n + 1})),
            (inner.clone(), inner.clone(), any::<bool>()).prop_map(|(a, b, req)| {
                json!({"type": "object", "properties": {"a": a, "b": b}, "required": if req { vec!["a"] } else { vec![] }, "additionalProperties": false})
            }),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| json!({"type": "object", "patternProperties": {"^x": a}, "additionalProperties": b, "maxProperties": 2})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"anyOf": v})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"allOf": v})),
            prop::collection::vec(inner.clone(), 2..3).prop_map(|v| json!({"oneOf": v})),
            inner.clone().prop_map(|s| json!({"not": s})),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(i, t, e)| json!({"if": i, "then": t, "else": e})),
            (inner.clone(), any::<bool>()).prop_map(|(s, u)| json!({"type": "object", "properties": {"a": s}, "unevaluatedProperties": u, "x-order": 1})),
        ]
    })
}

/// A root with `$defs/node`, which may refer to itself or to the root.
fn rooted(body: impl Strategy<Value = Value>, node: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    (body, node).prop_map(|(body, node)| {
        let mut root = match body {
            Value::Object(map) => map,
            other => {
                let mut map = serde_json::Map::new();
                map.insert("allOf".into(), json!([other]));
                map
            }
        };
        root.insert("$defs".into(), json!({"node": node}));
        Value::Object(root)
    })
}

fn small_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-6i64..10).prop_map(|n| json!(n)),
        "[abc]{0,4}".prop_map(Value::String),
    ]
}

/// Small JSON values, the instances of the exactness property.
fn small_value() -> impl Strategy<Value = Value> {
    small_scalar().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(vec!["a", "b", "xa"]), inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// Schemas strictly enforces exactly (no free values, recursion, formats,
/// patterns beside other keys, or complements of numbers).
fn exact_schema() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            (inner.clone(), 0usize..4).prop_map(|(s, n)| json!({"type": "array", "items": s, "maxItems": n})),
            (inner.clone(), inner.clone(), 0usize..3, 0usize..2)
                .prop_map(|(s, c, lo, w)| json!({"type": "array", "items": s, "contains": c, "minContains": lo, "maxContains": lo + w, "maxItems": 3})),
            (inner.clone(), inner.clone(), any::<bool>()).prop_map(|(a, b, req)| {
                json!({"type": "object", "properties": {"a": a, "b": b}, "required": if req { vec!["a"] } else { vec![] }, "additionalProperties": false})
            }),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| json!({"type": "object", "properties": {"a": a}, "unevaluatedProperties": b, "x-note": 1})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"anyOf": v})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"allOf": v})),
        ]
    })
}

/// Compiles within the limits, or fails with an error.
fn compile(schema: &Value) -> Result<Option<(schema::Ir, Grammar)>, TestCaseError> {
    let options = CompileOptions::default();
    let started = Instant::now();
    let compiled = schema::compile(schema, &options).and_then(|ir| Grammar::from_ir(&ir, &options, Instant::now()).map(|g| (ir, g)));
    // Reading and lowering each stop at `max_work` steps, which a debug build on a loaded
    // machine does far within this.
    let limit = Duration::from_secs(30);
    prop_assert!(started.elapsed() < limit, "{schema}: compiling took {:?}", started.elapsed());
    Ok(compiled.ok())
}

/// Runs `property` over `strategy`, and fails unless at least a quarter of
/// the cases compiled (so that the property is not vacuous).
fn run<S: Strategy>(strategy: S, property: impl Fn(S::Value) -> Result<bool, TestCaseError>) {
    let compiled = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config());
    let cases = runner.config().cases as usize;
    let outcome = runner.run(&strategy, |value| {
        if property(value)? {
            compiled.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let compiled = compiled.into_inner();
    eprintln!("{compiled} of {cases} generated schemas compiled");
    assert!(compiled * 4 >= cases, "only {compiled} of {cases} generated schemas compiled");
}

#[test]
fn schemas_compile_or_fail_cleanly_and_walks_are_valid() {
    run(rooted(any_schema(), any_schema()), |schema| {
        let Some((_, grammar)) = compile(&schema)? else { return Ok(false) };
        let oracle = validator(&schema).map_err(TestCaseError::fail)?;
        let mut rng = SmallRng::seed_from_u64(11);
        for _ in 0..16 {
            let Some(text) = oracle::walk(&grammar, &mut rng) else { continue };
            let value: Value =
                serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{schema}: unparseable walk {text}: {e}")))?;
            prop_assert!(oracle.is_valid(&value), "{schema}: invalid walk {text}");
        }
        Ok(true)
    });
}

#[test]
fn exact_schemas_accept_exactly_the_valid_instances() {
    run((exact_schema(), prop::collection::vec(small_value(), 16)), |(schema, values)| {
        let Some((ir, grammar)) = compile(&schema)? else { return Ok(false) };
        let oracle = validator(&schema).map_err(TestCaseError::fail)?;
        for value in &values {
            let accepted = serializations(&ir, value).iter().any(|s| grammar.matches(s.as_bytes()));
            prop_assert_eq!(accepted, oracle.is_valid(value), "{} on {}", schema, value);
        }
        Ok(true)
    });
}
