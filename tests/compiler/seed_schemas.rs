//! The seed's two schemas: the support classification and the recursive
//! product filter that OpenAI's strict mode does not keep.

use crate::common;
use std::sync::Arc;

use crate::oracle::validator;
use serde_json::json;
use strictly::automaton::Grammar;
use strictly::constraint::TokenAutomaton;
use strictly::coverage::random_walk;
use strictly::schema::CompileOptions;

fn accepts(g: &Grammar, v: serde_json::Value) -> bool {
    g.matches(serde_json::to_string(&v).unwrap().as_bytes())
}

#[test]
fn support_schema_accepts_exactly_the_valid_shapes() {
    let schema = common::grammar("support_classification.schema.json");
    let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
    let ok = json!({"action": "handoff_team", "customerMessage": "I was charged twice", "assignTo": null, "assignTeam": "54515931", "reason": "billing", "confidence": 0.92});
    assert!(accepts(&g, ok.clone()));
    let mut bad = vec![];
    for (k, v) in [("action", json!("escalate")), ("assignTo", json!(3)), ("confidence", json!("high")), ("reason", json!(null))] {
        let mut x = ok.clone();
        x[k] = v;
        bad.push(x);
    }
    let mut missing = ok.clone();
    missing.as_object_mut().unwrap().remove("reason");
    bad.push(missing);
    let mut extra = ok.clone();
    extra["extra"] = json!(1);
    bad.push(extra);
    let v = validator(&schema).unwrap();
    for b in bad {
        assert!(!v.is_valid(&b), "the fixture must be invalid: {b}");
        assert!(!accepts(&g, b.clone()), "accepted invalid {b}");
    }
}

#[test]
fn recursive_filter_tree_is_enforced() {
    let schema = common::grammar("search_products.schema.json");
    let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
    let home = json!({"field": "homeClub", "operator": "eq", "value": "Manchester United"});
    let away = json!({"field": "guestClub", "operator": "eq", "value": "Liverpool"});
    let nested = json!({"q": null, "filters": {"or": [{"and": [home, away]}, {"and": [
        {"field": "homeClub", "operator": "eq", "value": "Liverpool"},
        {"field": "guestClub", "operator": "eq", "value": "Manchester United"}]}]}});
    let v = validator(&schema).unwrap();
    assert!(v.is_valid(&nested));
    assert!(accepts(&g, nested));
    for bad in [
        json!({"q": null, "filters": {"field": "colour", "operator": "eq", "value": "red"}}),
        json!({"q": null, "filters": {"field": "price", "operator": "eq", "value": "cheap"}}),
        json!({"q": null, "filters": {"and": [{"field": "name", "operator": "gt", "value": "x"}]}}),
        json!({"q": null, "filters": {"and": [], "or": []}}),
        json!({"q": "x", "filters": {"not": []}}),
    ] {
        assert!(!v.is_valid(&bad), "the fixture must be invalid: {bad}");
        assert!(!accepts(&g, bad.clone()), "accepted invalid {bad}");
    }
}

#[test]
fn walks_over_the_real_vocabulary_are_valid() {
    let vocab = common::tokenizer().vocab().clone();
    for name in ["support_classification.schema.json", "search_products.schema.json"] {
        let schema = common::grammar(name);
        let v = validator(&schema).unwrap();
        let automaton = Arc::new(TokenAutomaton::new(Grammar::compile(&schema, &CompileOptions::default()).unwrap(), vocab.clone()));
        for seed in 0..20 {
            let text = random_walk(&automaton, 120, seed, &mut Vec::new()).unwrap_or_else(|e| panic!("{name} seed {seed}: {e}"));
            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(v.is_valid(&value), "{name} seed {seed}: {text}");
        }
    }
}

/// A plain recognizer over the grammar's DFA, with none of the constraint's
/// shortcuts (no loop skipping, no caching, no NFA sets).
pub(crate) struct PlainDfa<'a> {
    pub(crate) walker: strictly::automaton::Walker<'a>,
}

impl strictly::vocab::ByteRecognizer for PlainDfa<'_> {
    type State = strictly::automaton::GrammarState;
    fn step(&mut self, s: Self::State, b: u8) -> Option<Self::State> {
        let next = self.walker.step(s, b)?;
        // The DFA reports a match one byte late: the byte after a complete value leads to a
        // match state from which nothing is accepted, neither the end of input nor any byte.
        // That byte reads past the value's end, so it is rejected here too.
        if next.follows_match() && !self.walker.is_accepting(next) {
            let goes_on = (0..=255u8).any(|b| self.walker.step(next, b).is_some());
            return goes_on.then_some(next);
        }
        Some(next)
    }
}

#[test]
fn cached_masks_equal_a_plain_trie_walk() {
    let vocab = common::tokenizer().vocab().clone();
    let bounded = json!({"type": "object", "properties": {
        // Far from its end (room for more characters than any token holds) a bounded
        // string's positions share one mask; near the end each has its own.
        "essay": {"type": "string", "minLength": 3, "maxLength": 300},
        "reason": {"type": "string", "minLength": 2, "maxLength": 12},
        "code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{0,3}$"}, "n": {"type": "integer", "maximum": 99},
        "note": {"type": "string", "maxLength": 40}, "long": {"type": "string", "maxLength": 100},
        "lower": {"type": "string", "pattern": "^[a-z ]{0,50}$"}},
        "required": ["reason", "code", "n", "note", "long", "lower", "essay"], "additionalProperties": false});
    let schemas = [
        ("support_classification", common::grammar("support_classification.schema.json")),
        ("search_products", common::grammar("search_products.schema.json")),
        ("bounded strings", bounded),
        // Any key allowed beside the declared ones: after `{"` most key bytes lead into a
        // loop (the constraint's head-then-loop path), the declared names' first bytes do not.
        ("open keys", json!({"type": "object", "properties": {"site": {"type": "string"}, "url": {"type": "string", "maxLength": 20}}})),
    ];
    for (name, schema) in schemas {
        let grammar = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
        let automaton = Arc::new(TokenAutomaton::new(grammar.clone(), vocab.clone()));
        for seed in 0..6 {
            let text = random_walk(&automaton, 200, seed, &mut Vec::new()).unwrap();
            // Replay the walk's text byte by byte, comparing masks at each token boundary we can reach.
            let mut c = strictly::constraint::Constraint::new(automaton.clone());
            let ids = common::tokenizer().encode_plain(&text).unwrap();
            let mut plain = PlainDfa { walker: grammar.walker() };
            let mut state = plain.walker.start();
            for id in ids {
                let mask = c.mask().unwrap();
                // Bit sets, not ordered sets: this runs for every token of 24 walks over 49,152 tokens.
                let mut expected = vec![false; vocab.len()];
                vocab.trie().walk(&mut plain, state, |t, _| expected[t as usize] = true);
                let mut got = vec![false; vocab.len()];
                mask.iter().filter(|&t| Some(t) != vocab.eos()).for_each(|t| got[t as usize] = true);
                if got != expected {
                    let differ = |a: &[bool], b: &[bool]| (0..a.len()).filter(|&t| a[t] && !b[t]).take(5).collect::<Vec<_>>();
                    let extra: Vec<_> =
                        differ(&got, &expected).into_iter().map(|t| format!("{:x?}", vocab.token_bytes(t as u32))).collect();
                    let missing: Vec<_> = differ(&expected, &got)
                        .into_iter()
                        .map(|t| String::from_utf8_lossy(vocab.token_bytes(t as u32)).into_owned())
                        .collect();
                    panic!("{name}: masks differ after {:?}: extra {extra:?}, missing {missing:?}", String::from_utf8_lossy(c.bytes()));
                }
                if c.advance(id).is_err() {
                    break;
                }
                for &b in vocab.token_bytes(id) {
                    state = plain.walker.step(state, b).unwrap();
                }
            }
        }
    }
}
