//! Criterion benches of compile time for the seed schemas.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;

use crate::engines::Engines;
use crate::sample::{probe_outlines, seed_schemas};

/// Criterion compile benches for the seed schemas. Returns each seed's
/// outlines probe (child-process build time, or why it was refused).
pub fn compile_benches(c: &mut Criterion, e: &Engines, timeout: Duration) -> BTreeMap<String, Result<f64, String>> {
    let mut probes = BTreeMap::new();
    for cand in seed_schemas() {
        let name = cand.id.trim_start_matches("seed/");
        match e.strictly(&cand.schema) {
            Ok(_) => {
                c.bench_function(&format!("compile/{name}/strictly"), |b| b.iter(|| black_box(e.strictly(&cand.schema).unwrap())));
            }
            Err(why) => eprintln!("compile/{name}/strictly: refused: {why}"),
        };
        match e.llguidance(&cand.schema) {
            Ok(_) => {
                c.bench_function(&format!("compile/{name}/llguidance"), |b| b.iter(|| black_box(e.llguidance(&cand.schema).unwrap())));
            }
            Err(why) => eprintln!("compile/{name}/llguidance: refused: {why}"),
        };
        // A child process first: an index build that blows up is killed there.
        let probe = probe_outlines(&cand.schema, timeout);
        probes.insert(cand.id.clone(), probe.clone());
        match probe {
            // Criterion runs at least 10 builds: a slow one is timed once, in the table.
            Ok(t) if t > 2_000.0 => {
                eprintln!("compile/{name}/outlines-core: {:.1} s per build, too slow for criterion (single build in the table)", t / 1e3)
            }
            Ok(_) => {
                c.bench_function(&format!("compile/{name}/outlines-core"), |b| b.iter(|| black_box(e.outlines(&cand.schema).unwrap())));
            }
            Err(why) => eprintln!("compile/{name}/outlines-core: refused: {why}"),
        };
    }
    probes
}
