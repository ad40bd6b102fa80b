//! The seed's two schemas: the support classification and the recursive
//! product filter that OpenAI's strict mode does not keep.

mod common;

use std::sync::Arc;

use serde_json::json;
use strictly::automaton::Grammar;
use strictly::constraint::TokenAutomaton;
use strictly::coverage::{random_walk, validator};
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
