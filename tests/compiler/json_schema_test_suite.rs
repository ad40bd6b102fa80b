//! The official JSON-Schema-Test-Suite (draft 2020-12) against a baseline.
//!
//! For every group strictly compiles, every invalid instance must be
//! rejected (no exceptions, no baseline). The baseline records which groups
//! compile and how many valid instances are accepted; fewer is a regression.
//! `STRICTLY_BLESS=1 cargo test --test json_schema_test_suite` rewrites it.

use crate::common;
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use strictly::automaton::Grammar;
use strictly::coverage::serializations;
use strictly::schema::{self, CompileOptions};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct GroupResult {
    compiles: bool,
    valid_accepted: usize,
    valid_total: usize,
}

fn run_suite() -> (BTreeMap<String, GroupResult>, Vec<String>) {
    let dir = common::shared().join("data/json-schema-test-suite/tests/draft2020-12");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("suite present")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut results = BTreeMap::new();
    let mut false_accepts = Vec::new();
    let options = CompileOptions::default();
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let groups: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for (i, group) in groups.iter().enumerate() {
            let key = format!("{name}#{i} {}", group["description"].as_str().unwrap_or(""));
            let tests = group["tests"].as_array().cloned().unwrap_or_default();
            let started = std::time::Instant::now();
            let compiled =
                schema::compile(&group["schema"], &options).and_then(|ir| Grammar::from_ir(&ir, &options, started).map(|g| (ir, g)));
            let mut result = GroupResult { compiles: compiled.is_ok(), valid_accepted: 0, valid_total: 0 };
            if let Ok((ir, grammar)) = &compiled {
                for t in &tests {
                    let accepted = serializations(ir, &t["data"]).iter().any(|s| grammar.matches(s.as_bytes()));
                    if t["valid"].as_bool() == Some(true) {
                        result.valid_total += 1;
                        result.valid_accepted += accepted as usize;
                    } else if accepted {
                        false_accepts.push(format!("{key}: {} ({})", t["data"], t["description"]));
                    }
                }
            }
            results.insert(key, result);
        }
    }
    (results, false_accepts)
}

#[test]
fn suite_has_no_false_accepts_and_no_regressions() {
    let (results, false_accepts) = run_suite();
    assert!(false_accepts.is_empty(), "invalid instances accepted:\n{}", false_accepts.join("\n"));
    let baseline_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jsts-2020-12-baseline.json");
    if std::env::var_os("STRICTLY_BLESS").is_some() {
        std::fs::write(&baseline_path, serde_json::to_string_pretty(&results).unwrap() + "\n").unwrap();
        return;
    }
    let baseline: BTreeMap<String, GroupResult> =
        serde_json::from_str(&std::fs::read_to_string(&baseline_path).expect("baseline exists")).unwrap();
    let mut regressions = Vec::new();
    for (key, before) in &baseline {
        let Some(now) = results.get(key) else {
            regressions.push(format!("{key}: missing"));
            continue;
        };
        if before.compiles && !now.compiles {
            regressions.push(format!("{key}: no longer compiles"));
        }
        if now.valid_accepted < before.valid_accepted {
            regressions.push(format!("{key}: valid accepted {} < {}", now.valid_accepted, before.valid_accepted));
        }
    }
    assert!(regressions.is_empty(), "regressions against the baseline:\n{}", regressions.join("\n"));
    let compiled = results.values().filter(|r| r.compiles).count();
    eprintln!("{compiled} of {} groups compile", results.len());
}
