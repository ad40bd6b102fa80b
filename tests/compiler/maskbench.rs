//! MaskBench (8,494 real-world schemas): the automaton rejects every invalid
//! instance of every schema it accepts, and seeded random walks over the real
//! SmolLM2 vocabulary produce values the independent `jsonschema` crate accepts.

use crate::common;
use std::sync::Arc;

use strictly::automaton::Grammar;
use strictly::constraint::TokenAutomaton;
use strictly::coverage::{self, parse_records, serializations};
use strictly::schema::{self, CompileOptions, UnknownKeywords};

/// Accepted schemas, in tenths of a percent, by unknown-keyword mode (the
/// default ignores them as annotations; `Deny` refuses them).
const DEFAULT_FLOOR: usize = 890;
const DENY_FLOOR: usize = 610;

pub(crate) fn records() -> Vec<coverage::Record> {
    let path = common::shared().join("data/maskbench/maskbench-dev.jsonl.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_records(std::io::BufReader::new(flate2::read::GzDecoder::new(file)), &path).expect("maskbench readable")
}

/// Compiles every schema: (which were accepted, invalid instances checked, false accepts). The
/// schemas are shared out over the machine's cores (each worker takes every n-th one); the
/// results do not depend on how many there are.
fn reject_invalid_instances(records: &[coverage::Record], options: &CompileOptions) -> (Vec<bool>, usize, Vec<String>) {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let parts: Vec<(Vec<usize>, usize, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..workers).map(|k| scope.spawn(move || reject_some(records.iter().enumerate().skip(k).step_by(workers), options))).collect();
        handles.into_iter().map(|h| h.join().expect("worker finished")).collect()
    });
    let mut accepted = vec![false; records.len()];
    let (mut invalid, mut false_accepts) = (0, Vec::new());
    for (a, i, f) in parts {
        a.into_iter().for_each(|k| accepted[k] = true);
        invalid += i;
        false_accepts.extend(f);
    }
    (accepted, invalid, false_accepts)
}

fn reject_some<'a>(
    records: impl Iterator<Item = (usize, &'a coverage::Record)>,
    options: &CompileOptions,
) -> (Vec<usize>, usize, Vec<String>) {
    let (mut accepted, mut invalid, mut false_accepts) = (Vec::new(), 0, Vec::new());
    for (k, r) in records {
        let started = std::time::Instant::now();
        let Ok((ir, grammar)) = schema::compile(&r.schema, options).and_then(|ir| Grammar::from_ir(&ir, options, started).map(|g| (ir, g)))
        else {
            continue;
        };
        accepted.push(k);
        for t in r.tests.iter().filter(|t| !t.valid) {
            invalid += 1;
            if serializations(&ir, &t.data).iter().any(|s| grammar.matches(s.as_bytes())) {
                false_accepts.push(format!("{}: {}", r.id, t.data));
            }
        }
    }
    (accepted, invalid, false_accepts)
}

#[test]
fn every_invalid_instance_of_an_accepted_schema_is_rejected() {
    let records = records();
    let (accepted, invalid, false_accepts) = reject_invalid_instances(&records, &CompileOptions::default());
    assert!(false_accepts.is_empty(), "{} false accepts:\n{}", false_accepts.len(), false_accepts.join("\n"));
    // A floor against silent coverage loss (the coverage command reports the exact share).
    let n = accepted.iter().filter(|&&a| a).count();
    assert!(n * 1000 >= records.len() * DEFAULT_FLOOR, "only {n} of {} schemas accepted", records.len());
    assert!(invalid > 8_000, "only {invalid} invalid instances were checked");

    // `Deny` only refuses more: on every fourth schema (the full run is `strictly coverage
    // --deny-unknown-keywords`), what it reads is the default's IR, so it compiles to the same
    // automaton, whose invalid instances were checked above.
    let deny = CompileOptions { unknown_keywords: UnknownKeywords::Deny, ..CompileOptions::default() };
    let (mut sampled, mut deny_accepted) = (0, 0);
    for (k, r) in records.iter().enumerate().step_by(4) {
        sampled += 1;
        let Ok(ir) = schema::compile(&r.schema, &deny) else { continue };
        let default_ir = schema::compile(&r.schema, &CompileOptions::default()).expect("what Deny reads, the default reads");
        assert_eq!(format!("{ir:?}"), format!("{default_ir:?}"), "{}: Deny read another IR", r.id);
        deny_accepted += accepted[k] as usize;
    }
    assert!(deny_accepted * 1000 >= sampled * DENY_FLOOR, "only {deny_accepted} of {sampled} schemas accepted under Deny");
}

#[test]
fn random_walks_on_a_fixed_sample_are_valid() {
    let vocab = common::tokenizer().vocab().clone();
    let options = CompileOptions::default();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (i, r) in records().iter().enumerate().filter(|(i, _)| i % 40 == 0) {
        let Ok(grammar) = Grammar::compile(&r.schema, &options) else { continue };
        let Ok(validator) = crate::oracle::validator(&r.schema) else { continue };
        let automaton = Arc::new(TokenAutomaton::new(grammar, vocab.clone()));
        match coverage::random_walk(&automaton, 200, i as u64, &mut Vec::new()) {
            Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) if validator.is_valid(&v) => checked += 1,
                _ => failures.push(format!("{}: {text}", r.id)),
            },
            Err(e) => failures.push(format!("{}: {e}", r.id)),
        }
    }
    assert!(failures.is_empty(), "invalid walks:\n{}", failures.join("\n"));
    assert!(checked >= 100, "only {checked} walks were checked");
}
