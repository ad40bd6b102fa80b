//! The oracle check shared by the tests by schema area: the `jsonschema`
//! crate judges listed instances and seeded random walks of the automaton.

// Each test crate uses the part it needs.
#![allow(dead_code)]

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use strictly::automaton::Grammar;
use strictly::schema::CompileOptions;

/// The `jsonschema` crate's validator for `schema`, formats checked: the oracle, used
/// directly so that the compiler's tests need none of strictly's features.
pub fn validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options().should_validate_formats(true).build(schema).map_err(|e| e.to_string())
}

pub fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

/// A random complete text of the automaton: uniform over the bytes that keep
/// it alive, stopping with probability 1/3 wherever it accepts.
pub fn walk(g: &Grammar, rng: &mut SmallRng) -> Option<String> {
    let mut w = g.walker();
    let mut state = w.start();
    let mut out = Vec::new();
    for _ in 0..400 {
        if w.is_accepting(state) && (rng.random_range(0..3) == 0) {
            return String::from_utf8(out).ok();
        }
        let live: Vec<(u8, _)> = (0..=255u8).filter_map(|b| w.step(state, b).map(|s| (b, s))).collect();
        if live.is_empty() {
            return w.is_accepting(state).then(|| String::from_utf8(out).ok()).flatten();
        }
        let (b, s) = live[rng.random_range(0..live.len())];
        out.push(b);
        state = s;
    }
    None
}

/// Checks a schema against the oracle: `valid` must be valid and accepted,
/// `invalid` must be invalid and rejected, and walks must be valid.
pub fn check(schema: Value, options: &CompileOptions, valid: &[Value], invalid: &[Value]) {
    let g = Grammar::compile(&schema, options).unwrap_or_else(|e| panic!("{schema}: {e}"));
    let oracle = validator(&schema).unwrap();
    for v in valid {
        assert!(oracle.is_valid(v), "fixture must be valid under {schema}: {v}");
        assert!(g.matches(text(v).as_bytes()), "{schema} rejected valid {v}");
    }
    for v in invalid {
        assert!(!oracle.is_valid(v), "fixture must be invalid under {schema}: {v}");
        assert!(!g.matches(text(v).as_bytes()), "{schema} accepted invalid {v}");
    }
    let mut rng = SmallRng::seed_from_u64(7);
    let mut done = 0;
    for _ in 0..400 {
        let Some(t) = walk(&g, &mut rng) else { continue };
        let value: Value = serde_json::from_str(&t).unwrap_or_else(|e| panic!("{schema}: unparseable walk {t}: {e}"));
        assert!(oracle.is_valid(&value), "{schema}: invalid walk {t}");
        done += 1;
    }
    assert!(done >= 50, "{schema}: only {done} walks finished");
}
