//! `strictly coverage`: the compiler against a MaskBench-format file.
//!
//! For each schema: does it compile, how fast, does the automaton reject
//! every invalid instance (false accepts must be 0), how many valid ones it
//! accepts, and are seeded random walks over a real vocabulary valid
//! according to the independent `jsonschema` crate (must be 100%).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::automaton::{canonical_value, Grammar};
use crate::constraint::{Constraint, TokenAutomaton};
use crate::schema::{self, CompileOptions, Ir, Node, NodeId, RefusalClass, UnknownKeywords};
use crate::vocab::Vocabulary;

/// One MaskBench record.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// The record's identifier, used to name the schema in the report.
    pub id: String,
    /// The record's category; the report totals per category (empty when the file has none).
    #[serde(default)]
    pub category: String,
    /// The JSON Schema to compile.
    pub schema: Value,
    /// The labelled instances to check against the compiled grammar (empty when the file has none).
    #[serde(default)]
    pub tests: Vec<TestCase>,
}

/// One labelled instance.
#[derive(Debug, Clone, Deserialize)]
pub struct TestCase {
    /// Whether the instance is valid against the schema.
    pub valid: bool,
    /// The instance itself.
    pub data: Value,
}

/// Errors reading a MaskBench file.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a valid MaskBench record; `line` counts from 1.
    #[error("{path}:{line}: {why}")]
    Parse {
        /// The file's path.
        path: String,
        /// The line's number, from 1.
        line: usize,
        /// The JSON parser's message.
        why: String,
    },
}

/// Reads a `.jsonl` or `.jsonl.gz` MaskBench file.
pub fn read_records(path: &Path) -> Result<Vec<Record>, CoverageError> {
    let io = |source| CoverageError::Io { path: path.display().to_string(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line).map_err(|e| CoverageError::Parse {
            path: path.display().to_string(),
            line: i + 1,
            why: e.to_string(),
        })?;
        out.push(record);
    }
    Ok(out)
}

/// Settings of a coverage run.
#[derive(Debug, Clone)]
pub struct CoverageConfig {
    /// The options every schema is compiled with.
    pub options: CompileOptions,
    /// Random walks per accepted schema.
    pub walks: usize,
    /// Token budget of each walk.
    pub walk_tokens: usize,
    /// Base seed of the random walks; each walk's seed also mixes in the schema's index and the walk's number.
    pub seed: u64,
    /// Worker threads checking schemas in parallel.
    pub threads: usize,
}

impl Default for CoverageConfig {
    fn default() -> Self {
        Self { options: CompileOptions::default(), walks: 1, walk_tokens: 300, seed: 0, threads: 2 }
    }
}

/// What happened to one schema.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaOutcome {
    /// The record's identifier.
    pub id: String,
    /// The record's category.
    pub category: String,
    /// The compile error's message; None when the schema compiled.
    pub error: Option<String>,
    /// The compile error's label, the key the report counts refusals by; None when the schema compiled.
    pub error_label: Option<String>,
    /// The kind of refusal; None when the schema compiled.
    pub error_class: Option<RefusalClass>,
    /// Time to compile the schema to a grammar, in ms (also measured when it failed).
    pub compile_ms: f64,
    /// Labelled valid instances checked.
    pub valid_tests: usize,
    /// Valid instances the grammar accepts (in at least one serialization).
    pub valid_accepted: usize,
    /// Labelled invalid instances checked.
    pub invalid_tests: usize,
    /// The invalid instances the grammar accepts, as JSON text (empty when there are none, as there should be).
    pub false_accepts: Vec<String>,
    /// Random walks run.
    pub walks: usize,
    /// Walks whose output the `jsonschema` crate finds valid.
    pub walks_valid: usize,
    /// Walks that finished but could not be checked, because `jsonschema` cannot build a validator for the schema.
    pub walks_unchecked: usize,
    /// Why each failed walk failed: invalid or unparseable output (truncated to 300 bytes), or the walk's own error.
    pub walk_failures: Vec<String>,
    /// Time of each mask computed during the walks, in microseconds.
    pub mask_us: Vec<f64>,
}

/// Totals for a category (or for everything).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Schemas in the group.
    pub schemas: usize,
    /// Schemas that compiled.
    pub accepted: usize,
    /// Share of schemas that compiled, in percent (100 for an empty group).
    pub accepted_pct: f64,
    /// Median compile time of the compiled schemas, in ms.
    pub compile_ms_p50: f64,
    /// 99th-percentile compile time of the compiled schemas, in ms.
    pub compile_ms_p99: f64,
    /// Longest compile time of the compiled schemas, in ms.
    pub compile_ms_max: f64,
    /// Invalid instances checked against the compiled schemas.
    pub invalid_tests: usize,
    /// Invalid instances accepted (must be 0).
    pub false_accepts: usize,
    /// Valid instances checked against the compiled schemas.
    pub valid_tests: usize,
    /// Share of valid instances accepted, in percent (100 when there are none).
    pub valid_accepted_pct: f64,
    /// Random walks run.
    pub walks: usize,
    /// Walks whose output is valid.
    pub walks_valid: usize,
    /// Walks that could not be checked (no `jsonschema` validator for the schema).
    pub walks_unchecked: usize,
    /// Share of the checked walks whose output is valid, in percent (must be 100).
    pub walk_valid_pct: f64,
    /// Mean time of one mask during the walks, in microseconds (0 when none was computed).
    pub mask_us_mean: f64,
    /// 99th-percentile time of one mask, in microseconds.
    pub mask_us_p99: f64,
    /// Longest time of one mask, in microseconds.
    pub mask_us_max: f64,
}

/// A whole coverage report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The compile options' unknown-keyword mode (the report's headline says which).
    pub unknown_keywords: UnknownKeywords,
    /// Totals per record category.
    pub categories: BTreeMap<String, Summary>,
    /// Totals over all schemas.
    pub total: Summary,
    /// Refused schemas by error label.
    pub refusals: BTreeMap<String, usize>,
    /// Refused schemas by kind of refusal.
    pub refusal_classes: BTreeMap<RefusalClass, usize>,
    /// Up to 20 accepted invalid instances, each as `id: instance`.
    pub false_accept_examples: Vec<String>,
    /// Up to 20 failed walks, each as `id: why`.
    pub walk_failure_examples: Vec<String>,
    /// Peak resident memory of the run, in MiB (0 when `/proc` cannot tell).
    pub peak_rss_mb: f64,
    /// Wall-clock time of the run, in seconds.
    pub seconds: f64,
}

/// Runs coverage over records with a vocabulary for the walks.
pub fn run(records: &[Record], vocab: Arc<Vocabulary>, config: &CoverageConfig) -> Report {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<(usize, SchemaOutcome)>> = Mutex::new(Vec::with_capacity(records.len()));
    let progress = indicatif::ProgressBar::new(records.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} schemas {elapsed} (eta {eta}) {msg}").expect("valid template"),
    );
    std::thread::scope(|scope| {
        for _ in 0..config.threads.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(record) = records.get(i) else { break };
                let t0 = Instant::now();
                let outcome = check_schema(record, i, &vocab, config);
                if t0.elapsed().as_secs_f64() > 20.0 {
                    progress.println(format!("slow: {} took {:.0} s", record.id, t0.elapsed().as_secs_f64()));
                }
                outcomes.lock().expect("no panics while holding the lock").push((i, outcome));
                progress.inc(1);
            });
        }
    });
    progress.finish_and_clear();
    let mut outcomes = outcomes.into_inner().expect("threads joined");
    outcomes.sort_by_key(|(i, _)| *i);
    let outcomes: Vec<SchemaOutcome> = outcomes.into_iter().map(|(_, o)| o).collect();
    let mut report = summarise(&outcomes, started.elapsed().as_secs_f64());
    report.unknown_keywords = config.options.unknown_keywords;
    report
}

fn summarise(outcomes: &[SchemaOutcome], seconds: f64) -> Report {
    let mut by_cat: BTreeMap<String, Vec<&SchemaOutcome>> = BTreeMap::new();
    for o in outcomes {
        by_cat.entry(o.category.clone()).or_default().push(o);
    }
    let categories = by_cat.iter().map(|(c, os)| (c.clone(), summary(os))).collect();
    let all: Vec<&SchemaOutcome> = outcomes.iter().collect();
    let mut refusals = BTreeMap::new();
    let mut refusal_classes = BTreeMap::new();
    for o in outcomes {
        if let Some(label) = &o.error_label {
            *refusals.entry(label.clone()).or_insert(0) += 1;
        }
        if let Some(class) = o.error_class {
            *refusal_classes.entry(class).or_insert(0) += 1;
        }
    }
    Report {
        unknown_keywords: UnknownKeywords::default(),
        categories,
        refusal_classes,
        total: summary(&all),
        refusals,
        false_accept_examples: outcomes.iter().flat_map(|o| o.false_accepts.iter().map(move |f| format!("{}: {f}", o.id))).take(20).collect(),
        walk_failure_examples: outcomes.iter().flat_map(|o| o.walk_failures.iter().map(move |f| format!("{}: {f}", o.id))).take(20).collect(),
        peak_rss_mb: peak_rss_mb(),
        seconds,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 { 100.0 } else { 100.0 * a as f64 / b as f64 }
}

fn summary(os: &[&SchemaOutcome]) -> Summary {
    let accepted: Vec<&&SchemaOutcome> = os.iter().filter(|o| o.error.is_none()).collect();
    let mut compile: Vec<f64> = accepted.iter().map(|o| o.compile_ms).collect();
    compile.sort_by(f64::total_cmp);
    let mut masks: Vec<f64> = accepted.iter().flat_map(|o| o.mask_us.iter().copied()).collect();
    masks.sort_by(f64::total_cmp);
    let sum = |f: fn(&SchemaOutcome) -> usize| accepted.iter().map(|o| f(o)).sum::<usize>();
    let (walks, walks_valid, unchecked) = (sum(|o| o.walks), sum(|o| o.walks_valid), sum(|o| o.walks_unchecked));
    Summary {
        schemas: os.len(),
        accepted: accepted.len(),
        accepted_pct: pct(accepted.len(), os.len()),
        compile_ms_p50: percentile(&compile, 0.5),
        compile_ms_p99: percentile(&compile, 0.99),
        compile_ms_max: compile.last().copied().unwrap_or(0.0),
        invalid_tests: sum(|o| o.invalid_tests),
        false_accepts: sum(|o| o.false_accepts.len()),
        valid_tests: sum(|o| o.valid_tests),
        valid_accepted_pct: pct(sum(|o| o.valid_accepted), sum(|o| o.valid_tests)),
        walks,
        walks_valid,
        walks_unchecked: unchecked,
        walk_valid_pct: pct(walks_valid, walks - unchecked),
        mask_us_mean: if masks.is_empty() { 0.0 } else { masks.iter().sum::<f64>() / masks.len() as f64 },
        mask_us_p99: percentile(&masks, 0.99),
        mask_us_max: masks.last().copied().unwrap_or(0.0),
    }
}

/// Peak resident memory of this process, from `/proc/self/status`.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}


fn check_schema(record: &Record, index: usize, vocab: &Arc<Vocabulary>, config: &CoverageConfig) -> SchemaOutcome {
    let mut out = SchemaOutcome {
        id: record.id.clone(),
        category: record.category.clone(),
        error: None,
        error_label: None,
        error_class: None,
        compile_ms: 0.0,
        valid_tests: 0,
        valid_accepted: 0,
        invalid_tests: 0,
        false_accepts: Vec::new(),
        walks: 0,
        walks_valid: 0,
        walks_unchecked: 0,
        walk_failures: Vec::new(),
        mask_us: Vec::new(),
    };
    let started = Instant::now();
    let compiled = schema::compile(&record.schema, &config.options)
        .and_then(|ir| Grammar::from_ir(&ir, &config.options, started).map(|g| (ir, g)));
    out.compile_ms = started.elapsed().as_secs_f64() * 1e3;
    let (ir, grammar) = match compiled {
        Ok(x) => x,
        Err(e) => {
            out.error_label = Some(e.label());
            out.error_class = Some(e.class());
            out.error = Some(e.to_string());
            return out;
        }
    };
    for test in &record.tests {
        let accepted = serializations(&ir, &test.data).iter().any(|text| grammar.matches(text.as_bytes()));
        if test.valid {
            out.valid_tests += 1;
            out.valid_accepted += accepted as usize;
        } else {
            out.invalid_tests += 1;
            if accepted {
                out.false_accepts.push(serde_json::to_string(&test.data).unwrap_or_default());
            }
        }
    }
    if config.walks > 0 {
        let validator = crate::schema::validator(&record.schema);
        let automaton = Arc::new(TokenAutomaton::new(grammar, vocab.clone()));
        for w in 0..config.walks {
            let seed = config.seed ^ ((index as u64) << 16) ^ w as u64;
            out.walks += 1;
            match random_walk(&automaton, config.walk_tokens, seed, &mut out.mask_us) {
                Ok(text) => match &validator {
                    Ok(v) => match serde_json::from_str::<Value>(&text) {
                        Ok(value) if v.is_valid(&value) => out.walks_valid += 1,
                        Ok(_) => out.walk_failures.push(format!("invalid: {}", truncate(&text))),
                        Err(e) => out.walk_failures.push(format!("unparseable ({e}): {}", truncate(&text))),
                    },
                    Err(_) => out.walks_unchecked += 1,
                },
                Err(e) => out.walk_failures.push(format!("walk failed: {e}")),
            }
        }
    }
    out
}

fn truncate(s: &str) -> String {
    if s.len() <= 300 {
        return s.to_string();
    }
    let mut end = 300;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// One seeded walk: uniform choice among the allowed tokens, finishing
/// within `budget` tokens. Records each mask's time in microseconds.
pub fn random_walk(automaton: &Arc<TokenAutomaton>, budget: usize, seed: u64, mask_us: &mut Vec<f64>) -> Result<String, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut c = Constraint::new(automaton.clone());
    let eos = automaton.vocab().eos();
    // A schema whose shortest instance is longer than the budget gets the
    // room it needs (one token per byte, plus slack), so every walk can finish.
    let budget = budget.max(c.distance_to_accept() as usize + 64);
    // The same cap check as decoding: a walk that could not finish is an
    // error, never a cut-off value.
    c.check_room(budget, budget).map_err(|e| e.to_string())?;
    for used in 0..=budget {
        let remaining = budget - used;
        let t0 = Instant::now();
        let mask = c.mask().map_err(|e| e.to_string())?;
        mask_us.push(t0.elapsed().as_secs_f64() * 1e6);
        // Nothing but EOS can follow: the value is complete.
        if mask.count() == 1 && eos.is_some_and(|e| mask.contains(e)) {
            break;
        }
        c.check_room(remaining, budget).map_err(|e| e.to_string())?;
        if remaining == 0 {
            break;
        }
        let allowed: Vec<u32> = mask.iter().collect();
        if allowed.is_empty() {
            return Err("empty mask before acceptance".into());
        }
        let mut token = allowed[rng.random_range(0..allowed.len())];
        if !c.fits_budget(token, remaining).map_err(|e| e.to_string())? {
            let within: Vec<u32> = c.mask_within_budget(remaining).map_err(|e| e.to_string())?.iter().collect();
            if within.is_empty() {
                return Err("no token fits the budget".into());
            }
            token = within[rng.random_range(0..within.len())];
        }
        if Some(token) == eos {
            c.advance(token).map_err(|e| e.to_string())?;
            break;
        }
        c.advance(token).map_err(|e| e.to_string())?;
    }
    String::from_utf8(c.bytes().to_vec()).map_err(|e| format!("not UTF-8: {e}"))
}

/// The serializations of an instance the automaton should accept: compact
/// JSON in the instance's own key order, and in schema order. Integral floats
/// are written as integers (`1.0` → `1`) only where the draft makes them
/// integers (not draft-04, where `1.0` is not an integer).
pub fn serializations(ir: &Ir, value: &Value) -> Vec<String> {
    let value = if ir.integral_floats_are_integers() { canonical_value(value) } else { value.clone() };
    let mut out = vec![serde_json::to_string(&value).unwrap_or_default()];
    let ordered = serde_json::to_string(&schema_order(ir, ir.root(), &value, 0)).unwrap_or_default();
    if ordered != out[0] {
        out.push(ordered);
    }
    out
}

/// Reorders object keys to the schema's property order (best effort through unions).
fn schema_order(ir: &Ir, id: NodeId, value: &Value, depth: usize) -> Value {
    if depth > 64 {
        return value.clone();
    }
    match ir.node(id) {
        Node::Ref(target) => schema_order(ir, *target, value, depth + 1),
        Node::AnyOf(branches) => {
            let fits = |b: &NodeId| branch_fits(ir, *b, value, 0);
            match branches.iter().find(|b| fits(b)) {
                Some(b) => schema_order(ir, *b, value, depth + 1),
                None => value.clone(),
            }
        }
        Node::Typed(t) => match value {
            Value::Object(map) => {
                let Some(rule) = &t.object else { return value.clone() };
                let mut ordered = serde_json::Map::new();
                for p in &rule.properties {
                    if let Some(v) = map.get(&p.name) {
                        ordered.insert(p.name.clone(), schema_order(ir, p.node, v, depth + 1));
                    }
                }
                for (k, v) in map {
                    if !ordered.contains_key(k) {
                        let v = match rule.additional {
                            Some(a) => schema_order(ir, a, v, depth + 1),
                            None => v.clone(),
                        };
                        ordered.insert(k.clone(), v);
                    }
                }
                Value::Object(ordered)
            }
            Value::Array(items) => {
                let Some(rule) = &t.array else { return value.clone() };
                Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| match rule.prefix.get(i).copied().or(rule.items) {
                            Some(n) => schema_order(ir, n, v, depth + 1),
                            None => v.clone(),
                        })
                        .collect(),
                )
            }
            _ => value.clone(),
        },
        _ => value.clone(),
    }
}

/// Whether a union branch plausibly describes a value (type and required keys).
fn branch_fits(ir: &Ir, id: NodeId, value: &Value, depth: usize) -> bool {
    if depth > 16 {
        return false;
    }
    match ir.node(id) {
        Node::Any => true,
        Node::Never => false,
        Node::Literals(vs) => vs.contains(value),
        Node::Ref(t) => branch_fits(ir, *t, value, depth + 1),
        Node::AnyOf(bs) => bs.iter().any(|b| branch_fits(ir, *b, value, depth + 1)),
        Node::Typed(t) => match value {
            Value::Null => t.null,
            Value::Bool(_) => t.boolean,
            Value::Number(_) => t.number.is_some(),
            Value::String(_) => t.string.is_some(),
            Value::Array(_) => t.array.is_some(),
            Value::Object(map) => t.object.as_ref().is_some_and(|o| {
                o.properties.iter().all(|p| !p.required || map.contains_key(&p.name))
                    && (o.additional.is_some()
                        || !o.patterns.is_empty()
                        || map.keys().all(|k| o.properties.iter().any(|p| &p.name == k)))
            }),
        },
    }
}

/// The refusal class of an error label (see [`SchemaError::label`]).
fn label_class(label: &str) -> Option<RefusalClass> {
    let head = label.split(':').next().unwrap_or(label);
    Some(match head {
        "unsupported" | "unknown-keyword" => RefusalClass::UnsupportedKeyword,
        "inexact" => RefusalClass::Inexact,
        "too-large" => RefusalClass::TooLarge,
        "malformed" | "bad-ref" | "unsatisfiable" => RefusalClass::InvalidSchema,
        _ => return None,
    })
}

/// The plain-text report: the acceptance under the options used first, its
/// last line the `TOTAL` summary.
pub fn render(report: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let t = &report.total;
    let mode = match report.unknown_keywords {
        UnknownKeywords::Ignore => "default options: unknown keywords are annotations",
        UnknownKeywords::Deny => "--deny-unknown-keywords",
    };
    let _ = writeln!(s, "accepted {:.2}% of {} schemas ({mode}); false accepts {}; walks valid {:.2}% of {}\n",
        t.accepted_pct, t.schemas, t.false_accepts, t.walk_valid_pct, t.walks);
    let _ = writeln!(
        s,
        "{:<16} {:>7} {:>8} {:>8} {:>8} {:>9} {:>7} {:>9} {:>7} {:>8} {:>9} {:>9}",
        "category", "schemas", "accept%", "c_p50ms", "c_p99ms", "invalid", "falseA", "validAcc%", "walks", "walkOK%", "mask_us", "mask_p99"
    );
    let row = |s: &mut String, name: &str, t: &Summary| {
        let _ = writeln!(
            s,
            "{:<16} {:>7} {:>8.2} {:>8.3} {:>8.2} {:>9} {:>7} {:>9.2} {:>7} {:>8.2} {:>9.1} {:>9.1}",
            name, t.schemas, t.accepted_pct, t.compile_ms_p50, t.compile_ms_p99, t.invalid_tests, t.false_accepts,
            t.valid_accepted_pct, t.walks, t.walk_valid_pct, t.mask_us_mean, t.mask_us_p99
        );
    };
    for (name, t) in &report.categories {
        row(&mut s, name, t);
    }
    row(&mut s, "ALL", &report.total);
    let _ = writeln!(s, "\nrefusals by kind, then the most common reasons of each:");
    let mut refusals: Vec<_> = report.refusals.iter().collect();
    refusals.sort_by(|a, b| b.1.cmp(a.1));
    for class in RefusalClass::ALL {
        let n = report.refusal_classes.get(&class).copied().unwrap_or(0);
        let _ = writeln!(s, "  {n:>6}  {} ({:.2}% of schemas)", class.as_str(), pct(n, t.schemas));
        for (label, n) in refusals.iter().filter(|(label, _)| label_class(label) == Some(class)).take(8) {
            let _ = writeln!(s, "  {n:>14}  {label}");
        }
    }
    for f in &report.false_accept_examples {
        let _ = writeln!(s, "FALSE ACCEPT {f}");
    }
    for f in &report.walk_failure_examples {
        let _ = writeln!(s, "WALK FAILURE {f}");
    }
    let _ = writeln!(
        s,
        "\ncompile max {:.1} ms; mask max {:.0} us; walks unchecked (validator could not build) {}; peak RSS {:.0} MB; {:.1} s",
        t.compile_ms_max, t.mask_us_max, t.walks_unchecked, report.peak_rss_mb, report.seconds
    );
    let _ = writeln!(
        s,
        "TOTAL accepted={:.2}% false_accepts={} walk_valid={:.2}% walks={}",
        t.accepted_pct, t.false_accepts, t.walk_valid_pct, t.walks
    );
    s
}
