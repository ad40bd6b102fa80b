//! The work of a token mask is bounded at compile (`CompileOptions::max_mask_work`): the
//! largest NFA state set among the first DFA states, counted, not timed. A schema past it
//! is refused with the pointer of the subschema whose alternatives stay alive side by side;
//! one at the bound compiles and its walks are valid by the `jsonschema` crate.

use crate::common;
use crate::compile_work::{beside_busy_cores, nested_any_of};
use std::sync::Arc;

use serde_json::{json, Value};
use strictly::automaton::cost::PROBE_SETS;
use strictly::automaton::Grammar;
use strictly::constraint::TokenAutomaton;
use strictly::schema::{CompileOptions, SchemaErrorKind};

/// The largest set the probe finds in a schema compiled with no mask bound.
fn largest_set(schema: &Value) -> usize {
    let unbounded = CompileOptions { max_mask_work: usize::MAX, ..CompileOptions::default() };
    let g = Grammar::compile(schema, &unbounded).unwrap();
    g.mask_work(PROBE_SETS, unbounded.max_work).largest
}

fn bounded(max_mask_work: usize) -> CompileOptions {
    CompileOptions { max_mask_work, ..CompileOptions::default() }
}

#[test]
fn the_55_deep_any_of_is_within_the_default_bound() {
    let schema = nested_any_of(55);
    let largest = largest_set(&schema);
    eprintln!("55-deep anyOf: largest set {largest} NFA states, bound {}", CompileOptions::default().max_mask_work);
    // The 55 strings are alive side by side inside the string: each holds a set of its own.
    assert!(largest > 55, "{largest}");
    assert!(largest <= CompileOptions::default().max_mask_work, "{largest}");
    Grammar::compile(&schema, &CompileOptions::default()).unwrap();
}

#[test]
fn past_the_bound_the_schema_is_refused_at_the_subschema_responsible() {
    let inner = nested_any_of(55);
    let largest = largest_set(&inner);
    // At the root.
    let e = Grammar::compile(&inner, &bounded(largest - 1)).unwrap_err();
    assert!(matches!(e.kind(), SchemaErrorKind::TooLarge { .. }), "{e}");
    assert_eq!(e.pointer(), "", "{e}");
    assert!(e.to_string().contains("max_mask_work") && e.to_string().contains(&largest.to_string()), "{e}");
    // Under a property, beside small ones: the pointer names the anyOf, not the object.
    let schema = json!({
        "type": "object",
        "properties": {"id": {"type": "integer"}, "deep": inner, "tag": {"enum": ["a", "b"]}},
        "required": ["id", "deep", "tag"],
        "additionalProperties": false
    });
    let e = Grammar::compile(&schema, &bounded(largest - 1)).unwrap_err();
    assert_eq!(e.pointer(), "/properties/deep", "{e}");
    // A level down the chain of anyOf: the largest set is the deepest level's alternatives.
    let schema = json!({"anyOf": [{"type": "boolean"}, {"anyOf": [inner, {"type": "null"}]}]});
    let e = Grammar::compile(&schema, &bounded(largest - 1)).unwrap_err();
    assert_eq!(e.pointer(), "/anyOf/1/anyOf/0", "{e}");
}

/// A schema at the bound compiles, and seeded walks of its token masks are valid.
#[test]
fn at_the_bound_the_schema_compiles_and_walks_validly() {
    let schema = json!({
        "type": "object",
        "properties": {"deep": nested_any_of(30), "n": {"type": "integer", "minimum": 0}},
        "required": ["deep", "n"],
        "additionalProperties": false
    });
    let largest = largest_set(&schema);
    assert!(Grammar::compile(&schema, &bounded(largest - 1)).is_err());
    let g = Grammar::compile(&schema, &bounded(largest)).unwrap();
    let a = Arc::new(TokenAutomaton::new(g, common::tokenizer().vocab().clone()));
    let validator = crate::oracle::validator(&schema).unwrap();
    for seed in 0..4 {
        let text = strictly::coverage::random_walk(&a, 64, seed, &mut Vec::new()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(validator.is_valid(&value), "{text}");
    }
}

/// Every schema's verdict, with a bound that refuses some of them.
fn verdicts(options: &CompileOptions) -> Vec<Result<(), String>> {
    [nested_any_of(55), nested_any_of(20), nested_any_of(5), json!({"type": "array", "items": nested_any_of(40)})]
        .iter()
        .map(|s| Grammar::compile(s, options).map(|_| ()).map_err(|e| e.to_string()))
        .collect()
}

#[test]
fn the_mask_bound_gives_the_same_verdict_beside_a_cpu_burner() {
    let tight = bounded(largest_set(&nested_any_of(20)));
    let idle = verdicts(&tight);
    assert!(idle.iter().any(Result::is_ok) && idle.iter().any(Result::is_err), "{idle:?}");
    let busy = beside_busy_cores(|| verdicts(&tight));
    assert_eq!(idle, busy);
}
