//! `strictly coverage`: the compiler against a MaskBench-format file. The engine alone: it
//! needs no model runtime, only reading `.gz` files needs the `harness` feature.
//!
//! For each schema: does it compile, how fast, does the automaton reject
//! every invalid instance (false accepts must be 0), how many valid ones it
//! accepts, and are seeded random walks over a real vocabulary valid
//! according to the independent `jsonschema` crate (must be 100%).
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | the records, the run and one schema's checks |
//! | `walk.rs` | one seeded random walk over the token mask |
//! | `order.rs` | the serializations an instance is checked in |
//! | `report.rs` | totals per category and the plain-text report |

mod order;
mod report;
mod walk;

pub use order::serializations;
use report::summarise;
pub use report::{peak_rss_mb, render, Report, Summary};
pub use walk::random_walk;

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::automaton::Grammar;
use crate::constraint::TokenAutomaton;
use crate::schema::{self, CompileOptions, RefusalClass};
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
#[cfg(feature = "harness")]
pub fn read_records(path: &Path) -> Result<Vec<Record>, CoverageError> {
    let io = |source| CoverageError::Io { path: path.display().to_string(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    if path.extension().is_some_and(|e| e == "gz") {
        parse_records(std::io::BufReader::new(flate2::read::GzDecoder::new(file)), path)
    } else {
        parse_records(std::io::BufReader::new(file), path)
    }
}

/// Parses MaskBench records, one JSON object a line, from `reader` (`path` names it in errors).
pub fn parse_records(reader: impl BufRead, path: &Path) -> Result<Vec<Record>, CoverageError> {
    let io = |source| CoverageError::Io { path: path.display().to_string(), source };
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
    /// The slowest of them: where it was and how long it took.
    pub slowest_mask: Option<SlowMask>,
}

/// Where one mask was computed, and its time: the schema, the walk and the token index
/// within the walk (0 is the first mask, before any token).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SlowMask {
    /// The record's identifier.
    pub id: String,
    /// The walk (0 for the first).
    pub walk: usize,
    /// The token index within the walk.
    pub token: usize,
    /// The mask's time, in microseconds.
    pub us: f64,
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
        slowest_mask: None,
    };
    let started = Instant::now();
    let compiled =
        schema::compile(&record.schema, &config.options).and_then(|ir| Grammar::from_ir(&ir, &config.options, started).map(|g| (ir, g)));
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
        // Without the `validate` feature (no `jsonschema`), walks are counted as unchecked.
        #[cfg(feature = "validate")]
        let validator = crate::schema::validator(&record.schema);
        #[cfg(not(feature = "validate"))]
        let validator: Result<Unchecked, ()> = Err(());
        let automaton = Arc::new(TokenAutomaton::new(grammar, vocab.clone()));
        for w in 0..config.walks {
            let seed = config.seed ^ ((index as u64) << 16) ^ w as u64;
            out.walks += 1;
            let from = out.mask_us.len();
            let walked = random_walk(&automaton, config.walk_tokens, seed, &mut out.mask_us);
            for (token, &us) in out.mask_us[from..].iter().enumerate() {
                if out.slowest_mask.as_ref().is_none_or(|s| us > s.us) {
                    out.slowest_mask = Some(SlowMask { id: record.id.clone(), walk: w, token, us });
                }
            }
            match walked {
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

/// Stands in for the validator when the `validate` feature is off: never built.
#[cfg(not(feature = "validate"))]
enum Unchecked {}

#[cfg(not(feature = "validate"))]
impl Unchecked {
    fn is_valid(&self, _: &Value) -> bool {
        match *self {}
    }
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
