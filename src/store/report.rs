//! [`Stats`]: what the record says, from either store (`strictly audit stats`).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::Correction;

/// Decisions counted by action, route, rule and path, with latency percentiles, the model's
/// share and the correction rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Decision records.
    pub decisions: usize,
    /// By final action.
    pub by_action: BTreeMap<String, usize>,
    /// By route: the target's kind and id (`team:77120034`, `agent:...`, `default_routing`, `none`).
    pub by_route: BTreeMap<String, usize>,
    /// By rule that fired (a decision counts once per rule).
    pub by_rule: BTreeMap<String, usize>,
    /// By what decided: `examples`, `model`, `event`, ... (`unknown` for lines without `path`).
    pub by_path: BTreeMap<String, usize>,
    /// Share of decisions the model made (path `model`).
    pub model_share: f64,
    /// Median latency in ms.
    pub p50_ms: f64,
    /// 95th percentile latency in ms.
    pub p95_ms: f64,
    /// Corrections whose message is among these decisions.
    pub corrected: usize,
    /// `corrected / decisions`.
    pub correction_rate: f64,
}

/// The route of a record: its target's kind, and id when it has one.
pub fn route_of(record: &Value) -> String {
    let target = &record["target"];
    let kind = target["kind"].as_str().unwrap_or("unknown");
    match target.get("id").and_then(Value::as_str) {
        Some(id) => format!("{kind}:{id}"),
        None => kind.to_owned(),
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Stats {
    /// The stats of `records` (audit lines) and the `corrections` made to them.
    ///
    /// ```
    /// use serde_json::json;
    /// let records = [
    ///     json!({"id": "a", "action": "handoff_team", "target": {"kind": "team", "id": "7"}, "rules": ["examples"], "path": "examples", "latency_ms": 2.0}),
    ///     json!({"id": "b", "action": "answer", "target": {"kind": "none"}, "rules": [], "path": "model", "latency_ms": 800.0}),
    /// ];
    /// let s = strictly::store::report::Stats::new(&records, &[]);
    /// assert_eq!((s.decisions, s.model_share, s.p50_ms, s.p95_ms), (2, 0.5, 2.0, 800.0));
    /// assert_eq!(s.by_route["team:7"], 1);
    /// ```
    pub fn new(records: &[Value], corrections: &[Correction]) -> Stats {
        let mut stats = Stats {
            decisions: records.len(),
            by_action: BTreeMap::new(),
            by_route: BTreeMap::new(),
            by_rule: BTreeMap::new(),
            by_path: BTreeMap::new(),
            model_share: 0.0,
            p50_ms: 0.0,
            p95_ms: 0.0,
            corrected: 0,
            correction_rate: 0.0,
        };
        let mut latencies = Vec::with_capacity(records.len());
        let mut ids = HashSet::new();
        for r in records {
            *stats.by_action.entry(r["action"].as_str().unwrap_or("unknown").to_owned()).or_default() += 1;
            *stats.by_route.entry(route_of(r)).or_default() += 1;
            for rule in r["rules"].as_array().into_iter().flatten() {
                *stats.by_rule.entry(rule.as_str().unwrap_or("unknown").to_owned()).or_default() += 1;
            }
            *stats.by_path.entry(r["path"].as_str().unwrap_or("unknown").to_owned()).or_default() += 1;
            if let Some(ms) = r["latency_ms"].as_f64() {
                latencies.push(ms);
            }
            if let Some(id) = r["id"].as_str() {
                ids.insert(id);
            }
        }
        latencies.sort_by(f64::total_cmp);
        stats.p50_ms = percentile(&latencies, 0.5);
        stats.p95_ms = percentile(&latencies, 0.95);
        let corrected: HashSet<&str> = corrections.iter().map(|c| c.message_id.as_str()).filter(|id| ids.contains(id)).collect();
        stats.corrected = corrected.len();
        if stats.decisions > 0 {
            let n = stats.decisions as f64;
            stats.model_share = stats.by_path.get("model").copied().unwrap_or(0) as f64 / n;
            stats.correction_rate = stats.corrected as f64 / n;
        }
        stats
    }
}
