//! The compile limit is in work (`CompileOptions::max_work`), not time: a schema compiles, or is
//! refused with the same error, whether the machine is idle or busy. And the 55-deep nested
//! `anyOf` compiles to an automaton that walks like any other.

use crate::common;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use strictly::automaton::Grammar;
use strictly::constraint::TokenAutomaton;
use strictly::schema::CompileOptions;

/// `anyOf: [the level below, a string of at most i + 1 characters]`, `depth` times over an integer.
pub(crate) fn nested_any_of(depth: usize) -> Value {
    let mut s = json!({"type": "integer"});
    for i in 0..depth {
        s = json!({"anyOf": [s, {"type": "string", "maxLength": i + 1}]});
    }
    s
}

/// Schemas near and past the work limit, and ordinary ones: what each compiles to.
fn outcomes(options: &CompileOptions) -> Vec<Result<usize, String>> {
    let schemas = [
        nested_any_of(55),
        // Intersections the reader has to work through.
        json!({"allOf": (0..40).map(|i| json!({"anyOf": [{"type": "string", "minLength": i}, {"type": "integer", "minimum": i}]})).collect::<Vec<_>>()}),
        // Many optional properties.
        json!({"type": "object", "properties": (0..300).map(|i| (format!("p{i}"), json!({"type": "string", "maxLength": 20}))).collect::<serde_json::Map<_, _>>()}),
        json!({"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 100}),
        json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}),
    ];
    schemas.iter().map(|s| Grammar::compile(s, options).map(|g| g.nfa_states()).map_err(|e| e.to_string())).collect()
}

/// Runs `f` with four threads spinning beside it, so every core is busy, and stops them after.
pub(crate) fn beside_busy_cores<T>(f: impl FnOnce() -> T) -> T {
    let stop = Arc::new(AtomicBool::new(false));
    let burners: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let out = f();
    stop.store(true, Ordering::Relaxed);
    burners.into_iter().for_each(|b| b.join().unwrap());
    out
}

#[test]
fn the_same_schema_gives_the_same_result_under_load() {
    // A tight budget, so that some of the schemas above run out of it.
    let tight = CompileOptions { max_work: 20_000, ..CompileOptions::default() };
    let idle = (outcomes(&CompileOptions::default()), outcomes(&tight));
    assert!(idle.1.iter().any(Result::is_err), "no schema ran out of the tight budget: {:?}", idle.1);
    assert!(idle.1.iter().any(Result::is_ok), "every schema ran out of the tight budget: {:?}", idle.1);
    let busy = beside_busy_cores(|| (outcomes(&CompileOptions::default()), outcomes(&tight)));
    assert_eq!(idle, busy);
    // What the default budget compiles and the tight one refuses ran out of steps.
    for (default, tight) in idle.0.iter().zip(&idle.1) {
        if let (Ok(_), Err(e)) = (default, tight) {
            assert!(e.contains("steps"), "{e}");
        }
    }
    eprintln!("default budget: {:?}\ntight budget: {:?}", idle.0, idle.1);
}

/// The 55-deep nested `anyOf`: compiled, and 32 tokens of a random walk stay valid.
#[test]
fn the_55_deep_any_of_compiles_and_walks() {
    let schema = nested_any_of(55);
    let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
    let nfa = g.nfa_states();
    let a = Arc::new(TokenAutomaton::new(g, common::tokenizer().vocab().clone()));
    let validator = crate::oracle::validator(&schema).unwrap();
    for seed in 0..3 {
        let mut times = Vec::new();
        let started = Instant::now();
        let text = strictly::coverage::random_walk(&a, 32, seed, &mut times).unwrap();
        let max = times.iter().cloned().fold(0.0, f64::max);
        eprintln!("55-deep anyOf: {nfa} NFA states; walk {seed}: {} masks in {:?}, worst {max:.0} µs", times.len(), started.elapsed());
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(validator.is_valid(&value), "{text}");
    }
}
