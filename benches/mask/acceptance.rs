//! `MASK_BENCH_ACCEPTANCE=1`: how many MaskBench schemas each engine accepts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde_json::json;
use strictly::automaton::Grammar;
use strictly::schema::{CompileOptions, UnknownKeywords};

use crate::engines::Engines;
use crate::sample::maskbench_path;

/// `MASK_BENCH_ACCEPTANCE=1`: instead of the timing study, compile every MaskBench schema
/// with strictly (by default, and with unknown keywords denied) and with llguidance, in one
/// run, and count what each accepts. Writes `bench-out/acceptance.json`.
pub fn acceptance(e: &Engines) {
    let records = strictly::coverage::read_records(&maskbench_path()).expect("MaskBench file");
    let deny = CompileOptions { unknown_keywords: UnknownKeywords::Deny, ..CompileOptions::default() };
    let started = Instant::now();
    // Per schema: [strictly denying unknown keywords, strictly by default (ignoring them), llguidance].
    let mut verdicts: Vec<[bool; 3]> = Vec::with_capacity(records.len());
    let mut llg_refusals: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        let strict = Grammar::compile(&r.schema, &deny).is_ok();
        let lenient = strict || Grammar::compile(&r.schema, &CompileOptions::default()).is_ok();
        let llg = match e.llguidance(&r.schema) {
            Ok(_) => true,
            Err(why) => {
                // The first words of the error, as a rough reason.
                let reason: String = why.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
                *llg_refusals.entry(reason).or_default() += 1;
                false
            }
        };
        verdicts.push([strict, lenient, llg]);
        if (i + 1) % 1000 == 0 {
            eprintln!("  {} / {} schemas, {:.0} s", i + 1, records.len(), started.elapsed().as_secs_f64());
        }
    }
    let n = verdicts.len();
    let count = |f: &dyn Fn(&[bool; 3]) -> bool| verdicts.iter().filter(|v| f(v)).count();
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    let rows = [
        ("strictly --deny-unknown-keywords", count(&|v| v[0])),
        ("strictly (default: unknown keywords are annotations)", count(&|v| v[1])),
        ("llguidance", count(&|v| v[2])),
        ("strictly denying unknown keywords and llguidance", count(&|v| v[0] && v[2])),
        ("strictly by default, not llguidance", count(&|v| v[1] && !v[2])),
        ("llguidance, not strictly by default", count(&|v| v[2] && !v[1])),
    ];
    println!("## accepted schemas, MaskBench ({n} schemas, one run, {:.0} s)\n", started.elapsed().as_secs_f64());
    println!("| engine | accepted | share |\n|---|---:|---:|");
    for (name, k) in &rows {
        println!("| {name} | {k} | {:.2}% |", pct(*k));
    }
    let mut top: Vec<(&String, &usize)> = llg_refusals.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1));
    println!("\nllguidance's most common refusals (first words of the error):");
    for (reason, k) in top.iter().take(8) {
        println!("  {k:5}  {reason}");
    }
    let report = json!({
        "schemas": n,
        "accepted": rows.iter().map(|(name, k)| json!({"engine": name, "count": k, "pct": pct(*k)})).collect::<Vec<_>>(),
        "llguidance_refusals": llg_refusals,
        "seconds": started.elapsed().as_secs_f64(),
    });
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-out");
    std::fs::create_dir_all(&out).expect("bench-out");
    std::fs::write(out.join("acceptance.json"), serde_json::to_string_pretty(&report).expect("JSON")).expect("write");
}
