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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::hint::black_box;

use criterion::Criterion;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use outlines_core::index::Index;
use outlines_core::json_schema::regex_from_value;
use outlines_core::vocabulary::Vocabulary as OVocabulary;

use strictly::automaton::Grammar;
use strictly::constraint::TokenAutomaton;
use strictly::schema::{CompileOptions, UnknownKeywords};
use strictly::tokenizer::GgufTokenizer;
use strictly::vocab::Vocabulary;

/// Token cap of one walk.
const CAP: usize = 200;
/// Base seed of the walks and of nothing else (the sample is a stride).
const SEED: u64 = 0x5eed_0001;
const ENGINES: [&str; 3] = ["strictly", "llguidance", "outlines-core"];
const PROBE_ENV: &str = "STRICTLY_MASK_BENCH_PROBE";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------- engines

/// llguidance's view of strictly's vocabulary.
struct VocabEnv {
    trie: TokTrie,
}

impl TokenizerEnv for VocabEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.greedy_tokenize(s)
    }
    // Greedy tokenization is not the model's: no token forcing, full masks.
    fn tokenize_is_canonical(&self) -> bool {
        false
    }
}

struct Engines {
    vocab: Arc<Vocabulary>,
    eos: u32,
    factory: ParserFactory,
    outlines_vocab: OVocabulary,
    /// One-off per-tokenizer setup, in ms (not part of any compile time).
    setup_ms: BTreeMap<&'static str, f64>,
}

impl Engines {
    fn load() -> Self {
        let path = strictly::model::resolve::resolve(None).expect("SmolLM2 GGUF (strictly::model::resolve)");
        let t0 = Instant::now();
        let tokenizer = GgufTokenizer::from_gguf(&path).expect("GGUF tokenizer");
        let vocab = tokenizer.vocab().clone();
        let strictly_ms = t0.elapsed().as_secs_f64() * 1e3;
        let eos = vocab.eos().expect("EOS");
        let n = vocab.len();

        let t0 = Instant::now();
        let words: Vec<Vec<u8>> = (0..n as u32)
            .map(|id| {
                if vocab.is_special(id) {
                    let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    w.extend_from_slice(format!("<|special_{id}|>").as_bytes());
                    w
                } else {
                    vocab.token_bytes(id).to_vec()
                }
            })
            .collect();
        let trie = TokTrie::from(&TokRxInfo::new(n as u32, eos), &words);
        let env: TokEnv = Arc::new(VocabEnv { trie });
        let mut factory = ParserFactory::new_simple(&env).expect("llguidance factory");
        factory.quiet();
        let llg_ms = t0.elapsed().as_secs_f64() * 1e3;

        let t0 = Instant::now();
        let mut outlines_vocab = OVocabulary::new(eos);
        for id in 0..n as u32 {
            let bytes = vocab.token_bytes(id);
            if id != eos && !vocab.is_special(id) && !bytes.is_empty() {
                outlines_vocab.try_insert(bytes.to_vec(), id).expect("outlines vocabulary");
            }
        }
        let outlines_ms = t0.elapsed().as_secs_f64() * 1e3;

        let setup_ms = BTreeMap::from([("strictly", strictly_ms), ("llguidance", llg_ms), ("outlines-core", outlines_ms)]);
        Self { vocab, eos, factory, outlines_vocab, setup_ms }
    }

    fn strictly(&self, schema: &Value) -> Result<Arc<TokenAutomaton>, String> {
        let grammar = Grammar::compile(schema, &CompileOptions::default()).map_err(|e| e.to_string())?;
        Ok(Arc::new(TokenAutomaton::new(grammar, self.vocab.clone())))
    }

    fn llguidance(&self, schema: &Value) -> Result<Matcher, String> {
        let m = Matcher::new(self.factory.create_parser(TopLevelGrammar::from_json_schema(llg_schema(schema))));
        match m.get_error() {
            Some(e) => Err(e),
            None => Ok(m),
        }
    }

    fn outlines(&self, schema: &Value) -> Result<Index, String> {
        let regex = regex_from_value(schema, Some(""), None).map_err(|e| e.to_string())?;
        Index::new(&regex, &self.outlines_vocab).map_err(|e| e.to_string())
    }
}

/// The schema with llguidance's compact-output option.
fn llg_schema(schema: &Value) -> Value {
    let mut s = schema.clone();
    if let Some(o) = s.as_object_mut() {
        o.insert("x-guidance".into(), json!({"whitespace_flexible": false}));
    }
    s
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------- walks

/// One walk's mask times (µs) and token count, or the error that ended it.
struct Walk {
    mask_us: Vec<f64>,
    /// Allowed-token counts (llguidance and outlines only: strictly's walk is `coverage::random_walk`).
    mask_sizes: Vec<usize>,
    tokens: usize,
    error: Option<String>,
    first_mask_size: usize,
}

impl Walk {
    /// Records one step's allowed tokens and picks the next token uniformly;
    /// `None` ends the walk (EOS, or a dead end recorded as an error).
    fn pick(&mut self, allowed: Vec<u32>, step: usize, eos: u32, rng: &mut SmallRng) -> Option<u32> {
        self.mask_sizes.push(allowed.len());
        if step == 0 {
            self.first_mask_size = allowed.len();
        }
        if allowed.is_empty() {
            self.error = Some(format!("empty mask after {} tokens (dead end)", self.tokens));
            return None;
        }
        let token = allowed[rng.random_range(0..allowed.len())];
        (token != eos).then_some(token)
    }
}

fn ids_of_words(words: &[u64]) -> Vec<u32> {
    let mut out = Vec::new();
    for (i, &w) in words.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            out.push(i as u32 * 64 + w.trailing_zeros());
            w &= w - 1;
        }
    }
    out
}

fn walk_strictly(e: &Engines, schema: &Value, seed: u64) -> (f64, Walk) {
    let t0 = Instant::now();
    let automaton = e.strictly(schema).expect("accepted before");
    let compile = ms(t0.elapsed());
    let first_mask_size = strictly::constraint::Constraint::new(automaton.clone()).mask().map_or(0, |m| m.count());
    // The first mask above warmed the start state: rebuild so the walk's first visit counts.
    let automaton = e.strictly(schema).expect("accepted before");
    let mut mask_us = Vec::new();
    let r = strictly::coverage::random_walk(&automaton, CAP, seed, &mut mask_us);
    let tokens = mask_us.len();
    (compile, Walk { mask_us, mask_sizes: Vec::new(), tokens, error: r.err(), first_mask_size })
}

fn walk_llguidance(e: &Engines, schema: &Value, seed: u64) -> (f64, Walk) {
    let t0 = Instant::now();
    let mut m = e.llguidance(schema).expect("accepted before");
    let compile = ms(t0.elapsed());
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut w = Walk { mask_us: Vec::new(), mask_sizes: Vec::new(), tokens: 0, error: None, first_mask_size: 0 };
    for step in 0..CAP {
        if m.is_stopped() {
            break;
        }
        let t0 = Instant::now();
        let mask = match m.compute_mask() {
            Ok(mask) => mask,
            Err(err) => {
                w.error = Some(err.to_string());
                break;
            }
        };
        w.mask_us.push(t0.elapsed().as_secs_f64() * 1e6);
        let Some(token) = w.pick(mask.to_list(), step, e.eos, &mut rng) else { break };
        if let Err(err) = m.consume_token(token) {
            w.error = Some(err.to_string());
            break;
        }
        w.tokens += 1;
    }
    (compile, w)
}

fn walk_outlines(e: &Engines, index: &Index, seed: u64) -> Walk {
    let n = e.vocab.len();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut w = Walk { mask_us: Vec::new(), mask_sizes: Vec::new(), tokens: 0, error: None, first_mask_size: 0 };
    let mut state = index.initial_state();
    for step in 0..CAP {
        let t0 = Instant::now();
        let mut words = vec![0u64; n.div_ceil(64)];
        if let Some(it) = index.allowed_tokens_iter(&state) {
            for &t in it {
                words[t as usize / 64] |= 1 << (t % 64);
            }
        }
        let words = black_box(words);
        w.mask_us.push(t0.elapsed().as_secs_f64() * 1e6);
        let Some(token) = w.pick(ids_of_words(&words), step, e.eos, &mut rng) else { break };
        match index.next_state(&state, &token) {
            Some(s) => state = s,
            None => {
                w.error = Some(format!("no transition for allowed token {token}"));
                break;
            }
        }
        w.tokens += 1;
    }
    w
}

// ---------------------------------------------------------------- sample

struct Candidate {
    id: String,
    schema: Value,
}

fn seed_schemas() -> Vec<Candidate> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["support_classification", "search_products"]
        .iter()
        .map(|name| {
            let path = root.join(format!("grammars/{name}.schema.json"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Candidate { id: format!("seed/{name}"), schema: serde_json::from_str(&text).expect("seed schema JSON") }
        })
        .collect()
}

fn maskbench_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/maskbench/maskbench-dev.jsonl.gz")
}

/// Builds the outlines index in a child process (this binary, re-run with
/// `PROBE_ENV`), so that a build that blows up can be killed. Returns the
/// child's build time in ms, or why it was refused.
fn probe_outlines(schema: &Value, timeout: Duration) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(PROBE_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(schema.to_string().as_bytes()).map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let mut out = String::new();
            use std::io::Read;
            child.stdout.take().expect("stdout").read_to_string(&mut out).map_err(|e| e.to_string())?;
            let out = out.trim();
            return match out.strip_prefix("ok ") {
                Some(t) if status.success() => t.parse().map_err(|_| out.to_string()),
                _ => Err(out.strip_prefix("err ").unwrap_or(out).chars().take(160).collect()),
            };
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("index build over {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The child side of [`probe_outlines`].
fn probe_child() -> ! {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).expect("schema on stdin");
    let schema: Value = serde_json::from_str(&text).expect("schema JSON");
    let e = Engines::load();
    let t0 = Instant::now();
    match e.outlines(&schema) {
        Ok(index) => {
            black_box(index);
            println!("ok {}", ms(t0.elapsed()));
            std::process::exit(0)
        }
        Err(err) => {
            println!("err {}", err.replace('\n', " "));
            std::process::exit(1)
        }
    }
}

/// Walks the MaskBench file with a fixed stride and keeps the first `want`
/// schemas that all three engines accept. Also returns the refusals.
fn sample(e: &Engines, want: usize, stride: usize, timeout: Duration) -> (Vec<Candidate>, Vec<(String, &'static str, String)>) {
    let records = strictly::coverage::read_records(&maskbench_path()).expect("MaskBench file");
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for record in records.iter().step_by(stride) {
        if kept.len() == want {
            break;
        }
        let verdict = if !record.schema.is_object() {
            Err(("all", "not an object schema".to_string()))
        } else if let Err(why) = e.strictly(&record.schema) {
            Err(("strictly", why))
        } else if let Err(why) = e.llguidance(&record.schema) {
            Err(("llguidance", why))
        } else if let Err(why) = probe_outlines(&record.schema, timeout) {
            Err(("outlines-core", why))
        } else {
            Ok(())
        };
        match verdict {
            Ok(()) => kept.push(Candidate { id: record.id.clone(), schema: record.schema.clone() }),
            Err((engine, why)) => {
                let why: String = why.replace('\n', " ").chars().take(160).collect();
                eprintln!("  refused {} by {engine}: {why}", record.id);
                refused.push((record.id.clone(), engine, why));
            }
        }
    }
    (kept, refused)
}

/// `MASK_BENCH_ACCEPTANCE=1`: instead of the timing study, compile every MaskBench schema
/// with strictly (by default, and with unknown keywords denied) and with llguidance, in one
/// run, and count what each accepts. Writes `bench-out/acceptance.json`.
fn acceptance(e: &Engines) {
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

// ---------------------------------------------------------------- stats

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[derive(Default)]
struct EngineStats {
    /// Per schema: median compile ms over its fresh compiles.
    compile_ms: Vec<f64>,
    mask_us: Vec<f64>,
    walks: usize,
    tokens: usize,
    errors: Vec<String>,
}

// ---------------------------------------------------------------- criterion

/// Criterion compile benches for the seed schemas. Returns each seed's
/// outlines probe (child-process build time, or why it was refused).
fn compile_benches(c: &mut Criterion, e: &Engines, timeout: Duration) -> BTreeMap<String, Result<f64, String>> {
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
            Ok(t) if t > 2_000.0 => eprintln!("compile/{name}/outlines-core: {:.1} s per build, too slow for criterion (single build in the table)", t / 1e3),
            Ok(_) => {
                c.bench_function(&format!("compile/{name}/outlines-core"), |b| b.iter(|| black_box(e.outlines(&cand.schema).unwrap())));
            }
            Err(why) => eprintln!("compile/{name}/outlines-core: refused: {why}"),
        };
    }
    probes
}

// ---------------------------------------------------------------- main

fn main() {
    if std::env::var_os(PROBE_ENV).is_some() {
        probe_child();
    }
    let started = Instant::now();
    let e = Engines::load();
    eprintln!("vocabulary: {} tokens, eos {}; setup ms {:?}", e.vocab.len(), e.eos, e.setup_ms);
    if std::env::var_os("MASK_BENCH_ACCEPTANCE").is_some() {
        acceptance(&e);
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

    let seed_probes = compile_benches(&mut c, &e, timeout);
    c.final_summary();

    eprintln!("sampling {want} MaskBench schemas (stride {stride}) accepted by all three engines…");
    let t0 = Instant::now();
    let (sampled, refused) = sample(&e, want, stride, timeout);
    eprintln!("  kept {} after {} refusals in {:.1} s", sampled.len(), refused.len(), t0.elapsed().as_secs_f64());

    let mut schemas = seed_schemas();
    schemas.extend(sampled);

    let mut stats: BTreeMap<&str, EngineStats> = ENGINES.iter().map(|&n| (n, EngineStats::default())).collect();
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

    // Summary.
    let mut summary = serde_json::Map::new();
    let mut table = String::new();
    let seeds_pooled = rows.iter().filter(|r| r["id"].as_str().is_some_and(|id| id.starts_with("seed/")) && r["in_summary"] == json!(true)).count();
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
