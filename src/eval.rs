//! `strictly eval`: routing accuracy on a labelled CSV.
//!
//! The CSV has the columns `id,source,text,intent,category,expected_action,
//! expected_team,expected_agent`. Every message goes through the same
//! [`Router`] a deployment uses (its audit log goes to the output folder), and
//! every model output is checked against the deployment schema by the
//! independent `jsonschema` crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::routing::Router;
use crate::routing::Action;
use crate::routing::Target;

/// One labelled row.
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    /// The row's identifier, also the conversation id given to the router.
    pub id: String,
    /// Where the message comes from; the report breaks exact routing down by it.
    pub source: String,
    /// The customer's message.
    pub text: String,
    /// The labelled intent (empty when the CSV leaves it out).
    #[serde(default)]
    pub intent: String,
    /// The labelled category (empty when the CSV leaves it out).
    #[serde(default)]
    pub category: String,
    /// The action the message should get, e.g. `handoff_team` or `default_fallback`.
    pub expected_action: String,
    /// The team for a `handoff_team` row (empty otherwise).
    #[serde(default)]
    pub expected_team: String,
    /// The agent for a `handoff_agent` row (empty otherwise).
    #[serde(default)]
    pub expected_agent: String,
}

impl Row {
    /// The expected target in the rules' terms.
    pub fn expected_target(&self) -> String {
        match self.expected_action.as_str() {
            "handoff_team" => format!("team:{}", self.expected_team),
            "handoff_agent" => format!("agent:{}", self.expected_agent),
            "default_fallback" => "default".into(),
            _ => "none".into(),
        }
    }
}

/// Errors of an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The CSV cannot be read or a row does not parse.
    #[error("cannot read {path}: {why}")]
    Read {
        /// The CSV's path.
        path: String,
        /// The CSV reader's message.
        why: String,
    },
    /// An output file cannot be written.
    #[error("cannot write {path}: {why}")]
    Write {
        /// The output file's path.
        path: String,
        /// The I/O error's message.
        why: String,
    },
    /// The router failed on a message.
    #[error("routing failed: {0}")]
    Route(#[from] crate::routing::RouteError),
}

/// Reads the labelled CSV.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, EvalError> {
    let err = |why: String| EvalError::Read { path: path.display().to_string(), why };
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    reader.deserialize().collect::<Result<Vec<Row>, _>>().map_err(|e| err(e.to_string()))
}

/// One half of a file's rows, by position: tune on one, check on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Half {
    /// Rows 0, 2, 4, ... (the first data row is row 0).
    Even,
    /// Rows 1, 3, 5, ...
    Odd,
}

/// The rows of one half (all of them for `None`).
pub fn half(rows: Vec<Row>, half: Option<Half>) -> Vec<Row> {
    let Some(half) = half else { return rows };
    let parity = (half == Half::Odd) as usize;
    rows.into_iter().enumerate().filter(|(i, _)| i % 2 == parity).map(|(_, r)| r).collect()
}

/// `n` rows spread evenly over the file (all of them when `n` is larger).
pub fn sample(rows: Vec<Row>, n: Option<usize>) -> Vec<Row> {
    match n {
        Some(n) if n < rows.len() => (0..n).map(|i| rows[i * rows.len() / n].clone()).collect(),
        _ => rows,
    }
}

/// What happened to one row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowResult {
    /// The row's identifier.
    pub id: String,
    /// The row's source.
    pub source: String,
    /// The row's labelled intent.
    pub intent: String,
    /// The labelled action.
    pub expected_action: String,
    /// The labelled target, as `team:<name>`, `agent:<name>`, `none` or `default`.
    pub expected_target: String,
    /// The action the router decided.
    pub action: String,
    /// The target the router decided, in the same terms as `expected_target`.
    pub target: String,
    /// Whether both action and target match the labels.
    pub exact: bool,
    /// Whether the model's output is valid against the deployment schema; without output, whether no backend error occurred (a refusal answered first).
    pub valid: bool,
    /// Whether a refusal or prompt-injection rule fired.
    pub refused: bool,
    /// Names of the rules that fired, in order.
    pub rules: Vec<String>,
    /// Whether the model was asked (it produced output or failed).
    pub model_asked: bool,
    /// The model's confidence from token probabilities; None when the model did not decide.
    pub model_confidence: Option<f32>,
    /// The confidence behind the decision: the model's (from token probabilities) when it
    /// decided, else the examples' vote confidence.
    pub confidence: Option<f32>,
    /// Time to route the message, in ms.
    pub latency_ms: f64,
}

/// Precision and recall of one action.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActionScore {
    /// Rows labelled with this action.
    pub support: usize,
    /// Rows the router gave this action.
    pub predicted: usize,
    /// Share of the predicted rows that are labelled with it, in percent (0 when none was predicted).
    pub precision: f64,
    /// Share of the labelled rows that got it, in percent (0 when none is labelled).
    pub recall: f64,
}

/// The evaluation's figures.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Rows evaluated.
    pub rows: usize,
    /// Rows routed exactly (action and target), in percent.
    pub exact_pct: f64,
    /// Exact routing per source, in percent.
    pub exact_by_source: BTreeMap<String, f64>,
    /// `(exact %, rows)` per labelled intent.
    pub exact_by_intent: BTreeMap<String, (f64, usize)>,
    /// Exact routing over the rows whose expected action is not `default_fallback`.
    pub in_scope_exact_pct: f64,
    /// Out-of-scope recall: the share of rows expected at `default_fallback` that got it.
    pub out_of_scope_recall_pct: f64,
    /// Rows expected at `default_fallback`.
    pub out_of_scope_rows: usize,
    /// Rows whose model output is valid against the deployment schema, in percent.
    pub valid_pct: f64,
    /// Rows where a refusal or prompt-injection rule fired.
    pub refusals: usize,
    /// Median routing latency over all rows, in ms.
    pub latency_p50_ms: f64,
    /// 95th-percentile routing latency over all rows, in ms.
    pub latency_p95_ms: f64,
    /// Latency of the messages the examples decided without the model.
    pub examples_p50_ms: f64,
    /// 95th-percentile latency of the messages the examples decided, in ms.
    pub examples_p95_ms: f64,
    /// Latency of the messages the model was asked about.
    pub model_p50_ms: f64,
    /// 95th-percentile latency of the messages the model was asked about, in ms.
    pub model_p95_ms: f64,
    /// How many messages the model was asked about.
    pub model_asked: usize,
    /// Confidence against accuracy, in ten bins of width 0.1.
    pub reliability: Vec<ReliabilityBin>,
    /// Expected calibration error over the bins: the row-weighted mean |accuracy − confidence|.
    pub calibration_error: f64,
    /// `confusion_targets[expected][decided]` over targets (team, agent, none, default).
    pub confusion_targets: BTreeMap<String, BTreeMap<String, usize>>,
    /// Precision and recall per action.
    pub per_action: BTreeMap<String, ActionScore>,
    /// `confusion[expected][predicted]`.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    /// How many times each rule fired.
    pub rules_fired: BTreeMap<String, usize>,
    /// Name of the backend that routed.
    pub backend: String,
    /// The backend's model.
    pub model: String,
    /// Each row's result, in the order of the rows.
    pub results: Vec<RowResult>,
}

/// One bin of the reliability table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReliabilityBin {
    /// Lower edge of the bin (width 0.1; the last bin includes 1.0).
    pub from: f64,
    /// Rows whose confidence falls in the bin.
    pub rows: usize,
    /// Mean confidence of those rows.
    pub mean_confidence: f64,
    /// Share of those rows routed exactly, from 0 to 1.
    pub accuracy: f64,
}

fn target_label(t: &Target) -> String {
    match t {
        Target::None => "none".into(),
        Target::Agent(a) => format!("agent:{a}"),
        Target::Team(id) => format!("team:{id}"),
        Target::DefaultRouting => "default".into(),
    }
}

/// Routes every row and scores the decisions. `on_row` sees each result.
pub async fn evaluate<B: Backend>(
    router: &Router<B>,
    rows: &[Row],
    mut on_row: impl FnMut(usize, &RowResult),
) -> Result<EvalReport, EvalError> {
    let validator = crate::schema::validator(&router.schema().schema).ok();
    let mut results = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let (result, _) = route_row(router, validator.as_ref(), row).await?;
        on_row(i, &result);
        results.push(result);
    }
    Ok(score(results, router.backend().name(), router.backend().model()))
}

/// Routes one row and scores its decision; `validator` checks the model's output against the
/// deployment schema (build it once with [`crate::schema::validator`]). The routing record
/// comes back too, for callers that want more than the score (usage, the backend's error).
pub async fn route_row<B: Backend>(
    router: &Router<B>,
    validator: Option<&jsonschema::Validator>,
    row: &Row,
) -> Result<(RowResult, crate::routing::Routed), EvalError> {
    let routed = router.route(&row.text, Some(&row.id)).await?;
    let d = &routed.decision;
    let refused = d.rules.iter().any(|r| matches!(r.as_str(), "refusal" | "prompt_injection"));
    let valid = match (&routed.output, validator) {
        (Some(v), Some(val)) => val.is_valid(v),
        // A refusal short-circuited before the model produced output.
        (None, _) => routed.backend_error.is_none(),
        (Some(_), None) => false,
    };
    let action = d.action.as_str().to_string();
    let target = target_label(&d.target);
    let result = RowResult {
        id: row.id.clone(),
        source: row.source.clone(),
        intent: row.intent.clone(),
        expected_action: row.expected_action.clone(),
        expected_target: row.expected_target(),
        exact: action == row.expected_action && target == row.expected_target(),
        action,
        target,
        valid,
        refused,
        rules: d.rules.iter().map(|r| r.as_str().to_string()).collect(),
        model_asked: routed.output.is_some() || routed.backend_error.is_some(),
        model_confidence: d.model_confidence,
        confidence: d.model_confidence.or(d.examples_confidence),
        latency_ms: routed.latency_ms,
    };
    Ok((result, routed))
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 }
}

/// Aggregates row results into a report.
pub fn score(results: Vec<RowResult>, backend: &str, model: &str) -> EvalReport {
    let n = results.len();
    let (mut by_source, mut by_intent) = (BTreeMap::new(), BTreeMap::new());
    for r in &results {
        for (map, key) in [(&mut by_source, &r.source), (&mut by_intent, &r.intent)] {
            let e: &mut (usize, usize) = map.entry(key.clone()).or_default();
            e.0 += r.exact as usize;
            e.1 += 1;
        }
    }
    let oos: Vec<&RowResult> = results.iter().filter(|r| r.expected_action == Action::DefaultFallback.as_str()).collect();
    let in_scope: Vec<&RowResult> = results.iter().filter(|r| r.expected_action != Action::DefaultFallback.as_str()).collect();
    let mut confusion_targets: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in &results {
        *confusion_targets.entry(r.expected_target.clone()).or_default().entry(r.target.clone()).or_default() += 1;
    }
    let mut per_action = BTreeMap::new();
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for a in Action::ALL {
        let name = a.as_str().to_string();
        let support = results.iter().filter(|r| r.expected_action == name).count();
        let predicted = results.iter().filter(|r| r.action == name).count();
        let hits = results.iter().filter(|r| r.action == name && r.expected_action == name).count();
        per_action.insert(name.clone(), ActionScore { support, predicted, precision: pct(hits, predicted), recall: pct(hits, support) });
        let row = confusion.entry(name.clone()).or_default();
        for b in Action::ALL {
            row.insert(b.as_str().into(), results.iter().filter(|r| r.expected_action == name && r.action == b.as_str()).count());
        }
    }
    let mut rules_fired = BTreeMap::new();
    for r in &results {
        for rule in &r.rules {
            *rules_fired.entry(rule.clone()).or_insert(0) += 1;
        }
    }
    let quantiles = |keep: &dyn Fn(&RowResult) -> bool| {
        let mut l: Vec<f64> = results.iter().filter(|r| keep(r)).map(|r| r.latency_ms).collect();
        l.sort_by(f64::total_cmp);
        (quantile(&l, 0.5), quantile(&l, 0.95))
    };
    let (p50, p95) = quantiles(&|_| true);
    let (examples_p50, examples_p95) = quantiles(&|r| !r.model_asked);
    let (model_p50, model_p95) = quantiles(&|r| r.model_asked);
    let (reliability, calibration_error) = reliability(&results);
    EvalReport {
        rows: n,
        exact_pct: pct(results.iter().filter(|r| r.exact).count(), n),
        exact_by_source: by_source.into_iter().map(|(k, (a, b))| (k, pct(a, b))).collect(),
        exact_by_intent: by_intent.into_iter().map(|(k, (a, b))| (k, (pct(a, b), b))).collect(),
        in_scope_exact_pct: pct(in_scope.iter().filter(|r| r.exact).count(), in_scope.len()),
        out_of_scope_recall_pct: pct(oos.iter().filter(|r| r.action == Action::DefaultFallback.as_str()).count(), oos.len()),
        out_of_scope_rows: oos.len(),
        valid_pct: pct(results.iter().filter(|r| r.valid).count(), n),
        refusals: results.iter().filter(|r| r.refused).count(),
        latency_p50_ms: p50,
        latency_p95_ms: p95,
        examples_p50_ms: examples_p50,
        examples_p95_ms: examples_p95,
        model_p50_ms: model_p50,
        model_p95_ms: model_p95,
        model_asked: results.iter().filter(|r| r.model_asked).count(),
        reliability,
        calibration_error,
        confusion_targets,
        per_action,
        confusion,
        rules_fired,
        backend: backend.into(),
        model: model.into(),
        results,
    }
}

/// The `p` quantile of sorted values (nearest rank, rounded; 0 when there are none).
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0.0)
}

/// Ten bins of confidence against accuracy, and the expected calibration error.
fn reliability(results: &[RowResult]) -> (Vec<ReliabilityBin>, f64) {
    let mut bins: Vec<ReliabilityBin> = (0..10).map(|i| ReliabilityBin { from: i as f64 / 10.0, ..Default::default() }).collect();
    for r in results {
        let Some(c) = r.confidence.filter(|c| c.is_finite()) else { continue };
        let b = &mut bins[((c.clamp(0.0, 1.0) * 10.0) as usize).min(9)];
        b.rows += 1;
        b.mean_confidence += c as f64;
        b.accuracy += r.exact as u8 as f64;
    }
    let total: usize = bins.iter().map(|b| b.rows).sum();
    let mut ece = 0.0;
    for b in &mut bins {
        if b.rows > 0 {
            b.mean_confidence /= b.rows as f64;
            b.accuracy /= b.rows as f64;
            ece += b.rows as f64 / total as f64 * (b.accuracy - b.mean_confidence).abs();
        }
    }
    (bins, ece)
}

/// The closing summary line.
pub fn total_line(r: &EvalReport) -> String {
    format!(
        "TOTAL exact={:.1}% in_scope_exact={:.1}% oos_recall={:.1}% valid={:.1}% p50_ms={:.0} p95_ms={:.0} examples_p50_ms={:.0} model_asked={}",
        r.exact_pct, r.in_scope_exact_pct, r.out_of_scope_recall_pct, r.valid_pct, r.latency_p50_ms, r.latency_p95_ms, r.examples_p50_ms, r.model_asked
    )
}

/// The Markdown report.
pub fn markdown(r: &EvalReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Routing evaluation\n\nbackend `{}`, model `{}`, {} messages\n", r.backend, r.model, r.rows);
    let _ = writeln!(s, "| metric | value |\n|---|---|");
    let _ = writeln!(s, "| exact routing (action and target) | {:.1}% |", r.exact_pct);
    for (src, v) in &r.exact_by_source {
        let _ = writeln!(s, "| exact routing, {src} rows | {v:.1}% |");
    }
    let _ = writeln!(s, "| exact routing, in-scope rows | {:.1}% |", r.in_scope_exact_pct);
    let _ = writeln!(s, "| out-of-scope recall ({} rows expected at default_fallback) | {:.1}% |", r.out_of_scope_rows, r.out_of_scope_recall_pct);
    let _ = writeln!(s, "| schema-valid outputs | {:.1}% |", r.valid_pct);
    let _ = writeln!(s, "| refusals | {} |", r.refusals);
    let _ = writeln!(s, "| latency p50 / p95 | {:.0} / {:.0} ms |", r.latency_p50_ms, r.latency_p95_ms);
    let _ = writeln!(s, "| decided by the examples: p50 / p95 | {:.1} / {:.1} ms |", r.examples_p50_ms, r.examples_p95_ms);
    let _ = writeln!(s, "| model asked: messages, p50 / p95 | {}, {:.0} / {:.0} ms |\n", r.model_asked, r.model_p50_ms, r.model_p95_ms);
    let _ = writeln!(s, "| action | support | predicted | precision | recall |\n|---|---|---|---|---|");
    for (a, sc) in &r.per_action {
        let _ = writeln!(s, "| {a} | {} | {} | {:.1}% | {:.1}% |", sc.support, sc.predicted, sc.precision, sc.recall);
    }
    let _ = writeln!(s, "\n| intent | rows | exact |\n|---|---|---|");
    for (intent, (v, n)) in &r.exact_by_intent {
        let _ = writeln!(s, "| {intent} | {n} | {v:.1}% |");
    }
    let _ = writeln!(s, "\nConfusion (rows: expected, columns: decided)\n");
    let names: Vec<&String> = r.confusion.keys().collect();
    let _ = writeln!(s, "| | {} |\n|---|{}", names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" | "), "---|".repeat(names.len()));
    for (e, row) in &r.confusion {
        let _ = writeln!(s, "| {e} | {} |", names.iter().map(|n| row[*n].to_string()).collect::<Vec<_>>().join(" | "));
    }
    let _ = writeln!(s, "\nConfusion by target (rows: expected, columns: decided)\n");
    let decided: Vec<&String> = {
        let mut d: Vec<&String> = r.confusion_targets.values().flat_map(|row| row.keys()).collect();
        d.sort();
        d.dedup();
        d
    };
    let _ = writeln!(s, "| | {} |\n|---|{}", decided.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" | "), "---|".repeat(decided.len()));
    for (e, row) in &r.confusion_targets {
        let _ = writeln!(s, "| {e} | {} |", decided.iter().map(|n| row.get(*n).copied().unwrap_or(0).to_string()).collect::<Vec<_>>().join(" | "));
    }
    let _ = writeln!(s, "\nReliability: the decision's confidence (the model's when it decided, else the examples' vote) against exact routing; expected calibration error {:.3}\n", r.calibration_error);
    let _ = writeln!(s, "| confidence | rows | mean confidence | accuracy |\n|---|---|---|---|");
    for b in r.reliability.iter().filter(|b| b.rows > 0) {
        let _ = writeln!(s, "| {:.1}–{:.1} | {} | {:.3} | {:.3} |", b.from, b.from + 0.1, b.rows, b.mean_confidence, b.accuracy);
    }
    let _ = writeln!(s, "\n![reliability](reliability.svg)");
    let _ = writeln!(s, "\nRules fired: {}", r.rules_fired.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));
    let _ = writeln!(s, "\n![confusion matrix](confusion.svg)");
    s
}

/// The confusion matrix as an SVG heat map.
pub fn confusion_svg(r: &EvalReport) -> String {
    confusion_svg_titled(r, "Confusion")
}

/// The confusion matrix as an SVG heat map, its title starting with `title`.
pub fn confusion_svg_titled(r: &EvalReport, title: &str) -> String {
    let names: Vec<&String> = r.confusion.keys().collect();
    let cell = 90;
    let (left, top) = (150, 110);
    let size = names.len() * cell;
    let max = r.confusion.values().flat_map(|row| row.values()).copied().max().unwrap_or(1).max(1);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        left + size + 20,
        top + size + 40
    );
    let _ = writeln!(s, "<text x=\"{}\" y=\"20\" font-size=\"14\">{}: rows expected, columns decided ({} messages)</text>", 10, title.replace('&', "&amp;").replace('<', "&lt;"), r.rows);
    for (j, n) in names.iter().enumerate() {
        let x = left + j * cell + cell / 2;
        let _ = writeln!(s, "<text x=\"{x}\" y=\"{}\" text-anchor=\"end\" transform=\"rotate(-35 {x} {})\">{n}</text>", top - 8, top - 8);
    }
    for (i, e) in names.iter().enumerate() {
        let y = top + i * cell;
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{e}</text>", left - 8, y + cell / 2 + 4);
        for (j, p) in names.iter().enumerate() {
            let v = r.confusion[*e][*p];
            let shade = 255 - (200 * v / max) as u32;
            let colour = if i == j { format!("rgb({shade},255,{shade})") } else { format!("rgb(255,{shade},{shade})") };
            let x = left + j * cell;
            let _ = writeln!(s, "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"{colour}\" stroke=\"#999\"/>");
            let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"16\">{v}</text>", x + cell / 2, y + cell / 2 + 5);
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The reliability diagram: accuracy per confidence bin against the diagonal, bar width by rows.
pub fn reliability_svg(r: &EvalReport) -> String {
    let (left, top, size) = (60.0, 40.0, 400.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        left + size + 30.0,
        top + size + 50.0
    );
    let _ = writeln!(s, "<text x=\"10\" y=\"20\" font-size=\"14\">Reliability: accuracy per confidence bin (ECE {:.3})</text>", r.calibration_error);
    let _ = writeln!(s, "<rect x=\"{left}\" y=\"{top}\" width=\"{size}\" height=\"{size}\" fill=\"none\" stroke=\"#999\"/>");
    let _ = writeln!(s, "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{top}\" stroke=\"#bbb\" stroke-dasharray=\"4\"/>", top + size, left + size);
    let most = r.reliability.iter().map(|b| b.rows).max().unwrap_or(1).max(1) as f64;
    for b in r.reliability.iter().filter(|b| b.rows > 0) {
        let w = size / 10.0;
        let x = left + b.from * size;
        let h = b.accuracy * size;
        let opacity = 0.25 + 0.75 * (b.rows as f64 / most);
        let _ = writeln!(s, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"steelblue\" fill-opacity=\"{opacity:.2}\" stroke=\"white\"/>", x, top + size - h, w);
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{}</text>", x + w / 2.0, top + size - h - 4.0, b.rows);
    }
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{v:.1}</text>", left + v * size, top + size + 14.0);
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">{v:.1}</text>", left - 4.0, top + size - v * size + 3.0);
    }
    let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">confidence (bar labels: rows)</text>", left + size / 2.0, top + size + 34.0);
    let _ = writeln!(s, "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">accuracy</text>", top + size / 2.0, top + size / 2.0);
    s.push_str("</svg>\n");
    s
}

/// Writes `report.md`, `report.json`, `confusion.svg` and `reliability.svg` into `dir`.
pub fn write_reports(r: &EvalReport, dir: &Path) -> Result<(), EvalError> {
    let err = |p: &Path, e: std::io::Error| EvalError::Write { path: p.display().to_string(), why: e.to_string() };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let files = [
        ("report.md", markdown(r)),
        ("report.json", serde_json::to_string_pretty(r).expect("reports serialise")),
        ("confusion.svg", confusion_svg(r)),
        ("reliability.svg", reliability_svg(r)),
    ];
    for (name, body) in files {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(|e| err(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: &str, expected: &str, action: &str, confidence: Option<f32>) -> RowResult {
        let target = |a: &str| if a == "default_fallback" { "default".to_string() } else { "none".to_string() };
        RowResult {
            id: String::new(),
            source: source.into(),
            intent: String::new(),
            expected_action: expected.into(),
            expected_target: target(expected),
            action: action.into(),
            target: target(action),
            exact: expected == action,
            valid: true,
            refused: false,
            rules: Vec::new(),
            model_asked: false,
            model_confidence: None,
            confidence,
            latency_ms: 1.0,
        }
    }

    /// Out-of-scope recall counts the rows expected at default_fallback, whatever their source:
    /// in-scope CLINC rows are not misses.
    #[test]
    fn out_of_scope_recall_is_over_rows_expected_at_default_fallback() {
        let r = score(
            vec![
                row("clinc150", "default_fallback", "default_fallback", Some(0.95)),
                row("clinc150", "default_fallback", "answer", Some(0.55)),
                row("clinc150-inscope", "answer", "answer", Some(0.92)),
                row("bitext", "answer", "answer", Some(0.58)),
            ],
            "examples",
            "none",
        );
        assert_eq!((r.out_of_scope_rows, r.out_of_scope_recall_pct), (2, 50.0));
        assert_eq!(r.in_scope_exact_pct, 100.0);
        // Two rows in 0.9–1.0 (both right), two in 0.5–0.6 (one right).
        let bins: Vec<(f64, usize, f64)> = r.reliability.iter().filter(|b| b.rows > 0).map(|b| (b.from, b.rows, b.accuracy)).collect();
        assert_eq!(bins, [(0.5, 2, 0.5), (0.9, 2, 1.0)]);
        let expected_ece = 0.5 * (0.565f64 - 0.5).abs() + 0.5 * (1.0 - 0.935f64).abs();
        assert!((r.calibration_error - expected_ece).abs() < 1e-6, "{}", r.calibration_error);
        assert_eq!(r.confusion_targets["default"]["none"], 1);
    }
}
