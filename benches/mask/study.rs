//! The timing study: per schema and engine, fresh compiles and seeded walks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::engines::{ms, Engines};
use crate::sample::{probe_outlines, Candidate};
use crate::stats::{mean, quantile, sorted, EngineStats};
use crate::walks::{walk_llguidance, walk_outlines, walk_strictly};
use crate::{ENGINES, SEED};

/// What the study found: the pooled stats, one JSON row per schema, and the
/// first-mask agreement.
pub struct Study {
    pub stats: BTreeMap<&'static str, EngineStats>,
    pub rows: Vec<Value>,
    pub pooled_schemas: usize,
    pub first_mask_agree: usize,
    pub first_mask_compared: usize,
}

/// Times every schema with every engine that accepts it.
pub fn run(
    e: &Engines,
    schemas: &[Candidate],
    walks: usize,
    timeout: Duration,
    seed_probes: &BTreeMap<String, Result<f64, String>>,
) -> Study {
    let mut stats: BTreeMap<&'static str, EngineStats> = ENGINES.iter().map(|&n| (n, EngineStats::default())).collect();
    let mut rows = Vec::new();
    let mut first_mask_agree = 0usize;
    let mut first_mask_compared = 0usize;
    let mut pooled_schemas = 0usize;
    for (si, cand) in schemas.iter().enumerate() {
        let t_schema = Instant::now();
        let mut row = json!({"id": cand.id});
        let mut firsts: BTreeMap<&str, usize> = BTreeMap::new();
        // outlines: one eager build (the index is immutable: nothing for a walk to
        // warm). Seed schemas were not probed yet: probe them in a child first.
        let probed = match seed_probes.get(&cand.id) {
            Some(p) => p.clone().map(|_| ()),
            None if cand.id.starts_with("seed/") => probe_outlines(&cand.schema, timeout).map(|_| ()),
            None => Ok(()),
        };
        let t0 = Instant::now();
        let index = match probed.and_then(|()| e.outlines(&cand.schema)) {
            Ok(i) => Some(i),
            Err(why) => {
                row["outlines-core"] = json!({"refused": why});
                None
            }
        };
        let outlines_compile = ms(t0.elapsed());
        // Per engine: (compile p50 ms, mask µs, walks, tokens, errors).
        let mut results: BTreeMap<&str, (f64, Vec<f64>, usize, usize, Vec<String>)> = BTreeMap::new();
        for &engine in &ENGINES {
            if engine == "outlines-core" && index.is_none() {
                continue;
            }
            let refusal = match engine {
                "strictly" => e.strictly(&cand.schema).err(),
                "llguidance" => e.llguidance(&cand.schema).err(),
                _ => None,
            };
            if let Some(why) = refusal {
                row[engine] = json!({"refused": why});
                continue;
            }
            let mut compiles = Vec::new();
            let mut schema_us = Vec::new();
            let mut tokens = 0;
            let mut errors = Vec::new();
            let mut sizes = Vec::new();
            for w in 0..walks {
                let seed = SEED ^ ((si as u64) << 16) ^ w as u64;
                let (compile, walk) = match engine {
                    "strictly" => walk_strictly(&e, &cand.schema, seed),
                    "llguidance" => walk_llguidance(&e, &cand.schema, seed),
                    _ => (outlines_compile, walk_outlines(&e, index.as_ref().unwrap(), seed)),
                };
                if engine != "outlines-core" || w == 0 {
                    compiles.push(compile);
                }
                if w == 0 {
                    firsts.insert(engine, walk.first_mask_size);
                }
                if let Some(err) = &walk.error {
                    errors.push(format!("{} walk {w}: {}", cand.id, err.chars().take(200).collect::<String>()));
                }
                tokens += walk.tokens;
                sizes.extend(walk.mask_sizes.iter().map(|&n| n as f64));
                schema_us.extend_from_slice(&walk.mask_us);
            }
            let compile_p50 = quantile(&sorted(compiles), 0.5);
            let sorted_us = sorted(schema_us.clone());
            row[engine] = json!({
                "compile_ms": compile_p50,
                "masks": schema_us.len(),
                "tokens": tokens,
                "mask_mean_us": mean(&schema_us),
                "mask_p99_us": quantile(&sorted_us, 0.99),
                "first_mask_size": firsts.get(engine),
                "mean_mask_size": (!sizes.is_empty()).then(|| mean(&sizes)),
                "errors": errors,
            });
            results.insert(engine, (compile_p50, schema_us, walks, tokens, errors));
        }
        // Only schemas that all three engines ran enter the pooled summary.
        let pooled = results.len() == ENGINES.len();
        row["in_summary"] = json!(pooled);
        if pooled {
            pooled_schemas += 1;
            for (engine, (compile_p50, us, w, tokens, errors)) in results {
                let s = stats.get_mut(engine).unwrap();
                s.compile_ms.push(compile_p50);
                s.mask_us.extend(us);
                s.walks += w;
                s.tokens += tokens;
                s.errors.extend(errors);
            }
            first_mask_compared += 1;
            let v: Vec<usize> = firsts.values().copied().collect();
            first_mask_agree += (v[0] == v[1] && v[1] == v[2]) as usize;
        }
        eprintln!(
            "  [{:>2}/{}] {:<40} {:>6.1} s  first-mask sizes {:?}{}",
            si + 1,
            schemas.len(),
            cand.id,
            t_schema.elapsed().as_secs_f64(),
            firsts,
            if pooled { "" } else { "  (not in summary: refused by an engine)" }
        );
        rows.push(row);
    }
    Study { stats, rows, pooled_schemas, first_mask_agree, first_mask_compared }
}
