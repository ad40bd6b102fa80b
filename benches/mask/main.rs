//! Compile time and per-token mask time: strictly against llguidance and
//! outlines-core, on the same SmolLM2 vocabulary (49,152 tokens, EOS 2).
//!
//! `cargo bench --features anchors --bench mask`
//!
//! 1. Criterion benches of compile time for the two seed schemas
//!    (`compile/<schema>/<engine>`).
//! 2. A custom study over the seed schemas plus a deterministic sample of
//!    MaskBench schemas that all three engines accept: per schema, compile
//!    times, and seeded uniform random walks (≤ `CAP` tokens) with a fresh
//!    compiled matcher per walk, each mask computation timed, first visits
//!    included. Prints a markdown table and writes `bench-out/mask.json`.
//!
//! Knobs (environment): `MASK_BENCH_SAMPLE` (MaskBench schemas, default 30),
//! `MASK_BENCH_WALKS` (walks per schema and engine, default 3),
//! `MASK_BENCH_STRIDE` (default 97), `MASK_BENCH_OUTLINES_TIMEOUT_S`
//! (default 60: an outlines index build that takes longer counts as refused; a
//! safety net against blow-ups, set well above the slowest build in the sample
//! so that the sample does not depend on machine load).
//!
//! How each engine is driven, so that the work compared is the same:
//! - all three get the token bytes of strictly's `Vocabulary` (raw bytes, not
//!   GPT-2 unicode strings); special tokens are `0xFF<|special_N|>` for
//!   llguidance (its special-token convention) and left out of outlines;
//! - all three compile compact JSON (no optional whitespace): strictly by
//!   default, llguidance with `x-guidance: {whitespace_flexible: false}`,
//!   outlines with whitespace pattern `""`;
//! - llguidance's tokenizer env says it is *not* canonical, so `compute_mask`
//!   returns every allowed token instead of a singleton forced token;
//! - a "mask" is the full allowed-token bitset of the state: strictly
//!   `Constraint::mask`, llguidance `Matcher::compute_mask`, outlines a
//!   49,152-bit set filled from `Index::allowed_tokens_iter`.

mod acceptance;
mod compile;
mod engines;
mod report;
mod sample;
mod stats;
mod study;
mod walks;

use std::time::{Duration, Instant};

use criterion::Criterion;

use engines::Engines;
use sample::{probe_child, sample, seed_schemas};

/// Token cap of one walk.
const CAP: usize = 200;
/// Base seed of the walks and of nothing else (the sample is a stride).
const SEED: u64 = 0x5eed_0001;
const ENGINES: [&str; 3] = ["strictly", "llguidance", "outlines-core"];
const PROBE_ENV: &str = "STRICTLY_MASK_BENCH_PROBE";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    if std::env::var_os(PROBE_ENV).is_some() {
        probe_child();
    }
    let started = Instant::now();
    let e = Engines::load();
    eprintln!("vocabulary: {} tokens, eos {}; setup ms {:?}", e.vocab.len(), e.eos, e.setup_ms);
    if std::env::var_os("MASK_BENCH_ACCEPTANCE").is_some() {
        acceptance::acceptance(&e);
        return;
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let want = env_usize("MASK_BENCH_SAMPLE", 30);
    let walks = env_usize("MASK_BENCH_WALKS", 3);
    let stride = env_usize("MASK_BENCH_STRIDE", 97);
    let timeout = Duration::from_secs(env_usize("MASK_BENCH_OUTLINES_TIMEOUT_S", 60) as u64);

    let seed_probes = compile::compile_benches(&mut c, &e, timeout);
    c.final_summary();

    eprintln!("sampling {want} MaskBench schemas (stride {stride}) accepted by all three engines…");
    let t0 = Instant::now();
    let (sampled, refused) = sample(&e, want, stride, timeout);
    eprintln!("  kept {} after {} refusals in {:.1} s", sampled.len(), refused.len(), t0.elapsed().as_secs_f64());

    let mut schemas = seed_schemas();
    schemas.extend(sampled);

    let study = study::run(&e, &schemas, walks, timeout, &seed_probes);
    report::write(&e, &study, walks, stride, &refused, started);
}
