//! Scoring routed rows: exact routing, out-of-scope recall, validity,
//! latency, the confusion table and calibration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::routing::Action;

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

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
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
