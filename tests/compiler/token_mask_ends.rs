//! The token mask at the end of a value: no allowed token reads past a complete value
//! (the lazy DFA reports a match one byte late, so the byte after the end does not lead
//! to its dead state), and a value that can go on (a top-level number) still can. The
//! `jsonschema` crate is the oracle for what is valid (`tests/oracle`, `tests/token_oracle`).

use crate::token_oracle;
use std::sync::Arc;

use serde_json::json;
use strictly::automaton::Grammar;
use strictly::constraint::{Constraint, TokenAutomaton};
use strictly::schema::CompileOptions;
use token_oracle::{check, Vocab};

/// Pieces that cross the end of a value into what a model often writes next.
const ENDS: [&str; 10] = ["\",", "\"}", "},", "}}", "],", "]}", "1,", "1}", "e,", "l,"];

#[test]
fn no_token_reads_past_the_end_of_a_value() {
    check(json!({"enum": ["ab", "cd"]}), &ENDS, &[json!("ab"), json!("cd")], &[json!("ab,"), json!("a")]);
    check(
        json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false}),
        &ENDS,
        &[json!({"a": 1}), json!({"a": 11})],
        &[json!({}), json!({"a": "1"})],
    );
    check(json!({"type": "array", "items": {"type": "boolean"}, "maxItems": 2}), &ENDS, &[json!([]), json!([true, false])], &[json!([1])]);
    check(json!({"type": "null"}), &ENDS, &[json!(null)], &[json!(false)]);
}

#[test]
fn a_top_level_number_goes_on_after_a_complete_prefix() {
    check(json!({"type": "integer", "minimum": 0}), &ENDS, &[json!(1), json!(11), json!(111)], &[json!(-1), json!(1.5)]);
    check(json!({"type": "number"}), &ENDS, &[json!(1), json!(1.5), json!(1e5)], &[json!("1")]);
}

#[test]
fn the_mask_after_a_complete_value_is_the_end_only() {
    let grammar = Grammar::compile(&json!({"enum": ["ab"]}), &CompileOptions::default()).unwrap();
    let vocab = Vocab::new(&ENDS);
    let automaton = Arc::new(TokenAutomaton::new(grammar, vocab.vocab.clone()));
    let mut c = Constraint::new(automaton);
    for t in vocab.encode(b"\"ab") {
        c.advance(t).unwrap();
    }
    // `"` closes the value; `",` and `"}` would read past it, and no JSON text starts
    // with `"ab",` or `"ab"}`.
    let allowed: Vec<String> = c.mask().unwrap().iter().map(|t| String::from_utf8_lossy(vocab.vocab.token_bytes(t)).into_owned()).collect();
    assert_eq!(allowed, ["\""]);
    for bad in ["\"ab\",", "\"ab\"}"] {
        assert!(serde_json::from_str::<serde_json::Value>(bad).is_err(), "{bad}");
    }
    let quote_comma = vocab.encode(b"\",")[0];
    assert!(c.advance(quote_comma).is_err());
}
