//! The summary: a markdown table on stdout and `bench-out/mask.json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::engines::Engines;
use crate::stats::{mean, quantile, sorted};
use crate::study::Study;
use crate::{CAP, ENGINES, SEED};

/// Prints the table and writes the JSON report.
pub fn write(e: &Engines, study: &Study, walks: usize, stride: usize, refused: &[(String, &'static str, String)], started: Instant) {
    let Study { stats, rows, pooled_schemas, first_mask_agree, first_mask_compared } = study;
    let (pooled_schemas, first_mask_agree, first_mask_compared) = (*pooled_schemas, *first_mask_agree, *first_mask_compared);
    let mut summary = serde_json::Map::new();
    let mut table = String::new();
    let seeds_pooled =
        rows.iter().filter(|r| r["id"].as_str().is_some_and(|id| id.starts_with("seed/")) && r["in_summary"] == json!(true)).count();
    table.push_str(&format!(
        "{pooled_schemas} schemas accepted by all three engines ({seeds_pooled} seed + {} MaskBench), {walks} walks each, cap {CAP} tokens, SmolLM2 vocabulary ({} tokens)\n\n",
        pooled_schemas - seeds_pooled,
        e.vocab.len()
    ));
    table.push_str("| engine | compile p50 (ms) | compile p90 (ms) | masks timed | mask mean (µs) | mask p50 (µs) | mask p99 (µs) | mask max (µs) | walk errors |\n");
    table.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut means = BTreeMap::new();
    let mut p99s = BTreeMap::new();
    let mut compile_p50s = BTreeMap::new();
    for &engine in &ENGINES {
        let s = &stats[engine];
        let c = sorted(s.compile_ms.clone());
        let m = sorted(s.mask_us.clone());
        let (mu, p50, p99, max) = (mean(&m), quantile(&m, 0.5), quantile(&m, 0.99), m.last().copied().unwrap_or(f64::NAN));
        means.insert(engine, mu);
        p99s.insert(engine, p99);
        compile_p50s.insert(engine, quantile(&c, 0.5));
        table.push_str(&format!(
            "| {engine} | {:.2} | {:.2} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} |\n",
            quantile(&c, 0.5),
            quantile(&c, 0.9),
            m.len(),
            mu,
            p50,
            p99,
            max,
            s.errors.len()
        ));
        summary.insert(
            engine.into(),
            json!({
                "schemas": s.compile_ms.len(),
                "compile_ms_p50": quantile(&c, 0.5),
                "compile_ms_p90": quantile(&c, 0.9),
                "compile_ms_mean": mean(&c),
                "walks": s.walks,
                "tokens": s.tokens,
                "masks": m.len(),
                "mask_us_mean": mu,
                "mask_us_p50": p50,
                "mask_us_p99": p99,
                "mask_us_max": max,
                "errors": s.errors,
            }),
        );
    }
    let ratio = |a: &BTreeMap<&str, f64>, b: &str| a["strictly"] / a[b];
    table.push_str(&format!(
        "\nstrictly / llguidance: mask mean {:.2}×, mask p99 {:.2}×, compile p50 {:.2}×\n",
        ratio(&means, "llguidance"),
        ratio(&p99s, "llguidance"),
        ratio(&compile_p50s, "llguidance")
    ));
    table.push_str(&format!(
        "strictly / outlines-core: mask mean {:.2}×, mask p99 {:.2}×, compile p50 {:.3}×\n",
        ratio(&means, "outlines-core"),
        ratio(&p99s, "outlines-core"),
        ratio(&compile_p50s, "outlines-core")
    ));
    table.push_str(&format!("first masks of equal size in all three engines: {first_mask_agree}/{first_mask_compared} schemas\n"));

    println!("\n## mask bench\n\n{table}");
    for &engine in &ENGINES {
        for err in stats[engine].errors.iter().take(5) {
            println!("{engine} walk error: {err}");
        }
    }

    let out = json!({
        "vocabulary_tokens": e.vocab.len(),
        "eos": e.eos,
        "cap_tokens": CAP,
        "walks_per_schema": walks,
        "stride": stride,
        "seed": SEED,
        "setup_ms": e.setup_ms,
        "summary": summary,
        "ratios": {
            "strictly_over_llguidance": {"mask_mean": ratio(&means, "llguidance"), "mask_p99": ratio(&p99s, "llguidance"), "compile_p50": ratio(&compile_p50s, "llguidance")},
            "strictly_over_outlines_core": {"mask_mean": ratio(&means, "outlines-core"), "mask_p99": ratio(&p99s, "outlines-core"), "compile_p50": ratio(&compile_p50s, "outlines-core")},
        },
        "first_mask_size_agreement": {"agree": first_mask_agree, "compared": first_mask_compared},
        "refused": refused.iter().map(|(id, engine, why)| json!({"id": id, "engine": engine, "why": why})).collect::<Vec<_>>(),
        "schemas": rows,
        "table_markdown": table,
        "total_s": started.elapsed().as_secs_f64(),
    });
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-out");
    std::fs::create_dir_all(&dir).expect("bench-out/");
    let path = dir.join("mask.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).expect("write bench-out/mask.json");
    eprintln!("wrote {} ({:.0} s total)", path.display(), started.elapsed().as_secs_f64());
}
