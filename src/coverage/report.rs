//! Totals per category (compile rate, false accepts, walks, timings) and the
//! plain-text report.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{SchemaOutcome, SlowMask};

/// How many of the slowest masks a report names.
pub const SLOWEST_MASKS: usize = 10;
use crate::schema::{RefusalClass, UnknownKeywords};

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
    /// The slowest masks of the run, slowest first: each schema's slowest, the
    /// [`SLOWEST_MASKS`] slowest of those.
    pub slowest_masks: Vec<SlowMask>,
    /// Peak resident memory of the run, in MiB (0 when `/proc` cannot tell).
    pub peak_rss_mb: f64,
    /// Wall-clock time of the run, in seconds.
    pub seconds: f64,
}

pub(super) fn summarise(outcomes: &[SchemaOutcome], seconds: f64) -> Report {
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
        false_accept_examples: outcomes
            .iter()
            .flat_map(|o| o.false_accepts.iter().map(move |f| format!("{}: {f}", o.id)))
            .take(20)
            .collect(),
        walk_failure_examples: outcomes
            .iter()
            .flat_map(|o| o.walk_failures.iter().map(move |f| format!("{}: {f}", o.id)))
            .take(20)
            .collect(),
        slowest_masks: slowest(outcomes),
        peak_rss_mb: peak_rss_mb(),
        seconds,
    }
}

/// Each schema's slowest mask, the slowest [`SLOWEST_MASKS`] of them, slowest first.
fn slowest(outcomes: &[SchemaOutcome]) -> Vec<SlowMask> {
    let mut all: Vec<SlowMask> = outcomes.iter().filter_map(|o| o.slowest_mask.clone()).collect();
    all.sort_by(|a, b| b.us.total_cmp(&a.us));
    all.truncate(SLOWEST_MASKS);
    all
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        100.0
    } else {
        100.0 * a as f64 / b as f64
    }
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
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
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
    let _ = writeln!(
        s,
        "accepted {:.2}% of {} schemas ({mode}); false accepts {}; walks valid {:.2}% of {}\n",
        t.accepted_pct, t.schemas, t.false_accepts, t.walk_valid_pct, t.walks
    );
    let _ = writeln!(
        s,
        "{:<16} {:>7} {:>8} {:>8} {:>8} {:>9} {:>7} {:>9} {:>7} {:>8} {:>9} {:>9}",
        "category", "schemas", "accept%", "c_p50ms", "c_p99ms", "invalid", "falseA", "validAcc%", "walks", "walkOK%", "mask_us", "mask_p99"
    );
    let row = |s: &mut String, name: &str, t: &Summary| {
        let _ = writeln!(
            s,
            "{:<16} {:>7} {:>8.2} {:>8.3} {:>8.2} {:>9} {:>7} {:>9.2} {:>7} {:>8.2} {:>9.1} {:>9.1}",
            name,
            t.schemas,
            t.accepted_pct,
            t.compile_ms_p50,
            t.compile_ms_p99,
            t.invalid_tests,
            t.false_accepts,
            t.valid_accepted_pct,
            t.walks,
            t.walk_valid_pct,
            t.mask_us_mean,
            t.mask_us_p99
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
    if !report.slowest_masks.is_empty() {
        let _ = writeln!(s, "slowest masks (schema, walk, token index):");
        for m in &report.slowest_masks {
            let _ = writeln!(s, "  {:>9.0} us  {} walk {} token {}", m.us, m.id, m.walk, m.token);
        }
    }
    let _ = writeln!(
        s,
        "TOTAL accepted={:.2}% false_accepts={} walk_valid={:.2}% walks={}",
        t.accepted_pct, t.false_accepts, t.walk_valid_pct, t.walks
    );
    s
}
