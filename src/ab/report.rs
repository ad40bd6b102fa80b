//! The A/B report: both sides' figures, how often they agree, the paired test, the rows where
//! they disagree; as Markdown and JSON, with pictures ([`super::svg`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::stats::{Paired, PairedTest};
use super::{AbError, SideRow};
use crate::eval::{quantile, EvalReport, Row};

/// One side's rows, in the CSV's order, with what names it.
pub struct SideRows<'a> {
    /// What the report calls the side.
    pub label: &'a str,
    /// The side's backend name, for its eval report.
    pub backend: &'a str,
    /// The side's model, for its eval report.
    pub model: &'a str,
    /// The side's finished rows.
    pub rows: Vec<SideRow>,
}

/// One side's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SideReport {
    /// What the report calls the side.
    pub label: String,
    /// Rows routed exactly (action and target).
    pub correct: usize,
    /// 99th-percentile routing latency, in ms.
    pub latency_p99_ms: f64,
    /// Answers that broke the schema: invalid output, or an error of a violation kind.
    pub schema_violations: usize,
    /// Rows whose model call failed, by [`crate::backend::BackendError::kind`].
    pub errors_by_kind: BTreeMap<String, usize>,
    /// Rows whose model call failed, all kinds together.
    pub errors: usize,
    /// Prompt tokens per 1,000 messages (averaged over all rows).
    pub prompt_tokens_per_1k: f64,
    /// Output tokens per 1,000 messages (averaged over all rows).
    pub completion_tokens_per_1k: f64,
    /// Cost per 1,000 messages in US dollars, when the backend prices its usage.
    pub cost_per_1k_usd: Option<f64>,
    /// Everything `strictly eval` reports for this side (its `results` are the rows).
    pub eval: EvalReport,
}

/// A row the two sides routed differently.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    /// The row's id.
    pub id: String,
    /// The row's source.
    pub source: String,
    /// The row's labelled intent.
    pub intent: String,
    /// The customer's message (empty when the row is not in the CSV).
    pub text: String,
    /// The expected `action target`.
    pub expected: String,
    /// What side A decided, as `action target`.
    pub a: String,
    /// What side B decided, as `action target`.
    pub b: String,
    /// `a`, `b` or `neither`.
    pub right: &'static str,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct AbReport {
    /// Rows compared.
    pub rows: usize,
    /// The run's key (its rows are in `rows-KEY.jsonl`).
    pub key: String,
    /// Side A's figures.
    pub a: SideReport,
    /// Side B's figures.
    pub b: SideReport,
    /// Rows both sides routed the same way (action and target), in percent.
    pub agreement_pct: f64,
    /// McNemar's test and the interval for the difference in exact routing.
    pub paired: PairedTest,
    /// The rows the sides routed differently, in the CSV's order.
    pub disagreements: Vec<Disagreement>,
}

fn decided(r: &crate::eval::RowResult) -> String {
    format!("{} {}", r.action, r.target)
}

fn side(s: SideRows<'_>) -> SideReport {
    let n = s.rows.len().max(1) as f64;
    let mut latencies: Vec<f64> = s.rows.iter().map(|r| r.result.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let mut errors_by_kind = BTreeMap::new();
    for r in &s.rows {
        if let Some(k) = &r.error_kind {
            *errors_by_kind.entry(k.clone()).or_insert(0) += 1;
        }
    }
    let costs: Vec<f64> = s.rows.iter().filter_map(|r| r.cost_usd).collect();
    SideReport {
        label: s.label.into(),
        correct: s.rows.iter().filter(|r| r.result.exact).count(),
        latency_p99_ms: quantile(&latencies, 0.99),
        schema_violations: s.rows.iter().filter(|r| r.violation).count(),
        errors: errors_by_kind.values().sum(),
        errors_by_kind,
        prompt_tokens_per_1k: 1000.0 * s.rows.iter().map(|r| r.prompt_tokens).sum::<usize>() as f64 / n,
        completion_tokens_per_1k: 1000.0 * s.rows.iter().map(|r| r.completion_tokens).sum::<usize>() as f64 / n,
        cost_per_1k_usd: (!costs.is_empty()).then(|| 1000.0 * costs.iter().sum::<f64>() / n),
        eval: crate::eval::score(s.rows.into_iter().map(|r| r.result).collect(), s.backend, s.model),
    }
}

/// Scores both sides (rows in the same order as `rows`) and compares them.
pub fn build(rows: &[Row], a: SideRows<'_>, b: SideRows<'_>, key: &str) -> AbReport {
    let (a, b) = (side(a), side(b));
    let pairs = a.eval.results.iter().zip(&b.eval.results);
    let paired = PairedTest::new(Paired::from_pairs(pairs.clone().map(|(x, y)| (x.exact, y.exact))));
    let text: BTreeMap<&str, &str> = rows.iter().map(|r| (r.id.as_str(), r.text.as_str())).collect();
    let disagreements: Vec<Disagreement> = pairs
        .filter(|(x, y)| decided(x) != decided(y))
        .map(|(x, y)| Disagreement {
            id: x.id.clone(),
            source: x.source.clone(),
            intent: x.intent.clone(),
            text: text.get(x.id.as_str()).copied().unwrap_or_default().to_string(),
            expected: format!("{} {}", x.expected_action, x.expected_target),
            a: decided(x),
            b: decided(y),
            right: if x.exact {
                "a"
            } else if y.exact {
                "b"
            } else {
                "neither"
            },
        })
        .collect();
    let n = a.eval.rows;
    AbReport {
        rows: n,
        key: key.into(),
        agreement_pct: if n == 0 { 0.0 } else { 100.0 * (n - disagreements.len()) as f64 / n as f64 },
        a,
        b,
        paired,
        disagreements,
    }
}

/// A Markdown table cell: no pipes or line breaks, at most `max` characters.
fn cell(s: &str, max: usize) -> String {
    let s: String = s.chars().map(|c| if c == '|' || c.is_control() { ' ' } else { c }).collect();
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// The Markdown report.
pub fn markdown(r: &AbReport) -> String {
    let (a, b) = (&r.a, &r.b);
    let mut s = String::new();
    let _ = writeln!(s, "# A/B: {} against {}\n\n{} messages, run `{}`\n", a.label, b.label, r.rows, r.key);
    let _ = writeln!(s, "## Side by side\n\n| | A: {} | B: {} |\n|---|---|---|", a.label, b.label);
    let mut line = |name: &str, f: &dyn Fn(&SideReport) -> String| {
        let _ = writeln!(s, "| {name} | {} | {} |", f(a), f(b));
    };
    line("exact routing (action and target)", &|x| format!("{:.1}% ({}/{})", x.eval.exact_pct, x.correct, x.eval.rows));
    line("exact routing, in-scope rows", &|x| format!("{:.1}%", x.eval.in_scope_exact_pct));
    let oos = a.eval.out_of_scope_rows;
    line(&format!("out-of-scope recall ({oos} rows)"), &|x| {
        if oos == 0 {
            "-".into()
        } else {
            format!("{:.1}%", x.eval.out_of_scope_recall_pct)
        }
    });
    line("schema violations", &|x| x.schema_violations.to_string());
    line("refusals", &|x| x.eval.refusals.to_string());
    line("errors", &|x| x.errors.to_string());
    line("model asked", &|x| x.eval.model_asked.to_string());
    line("latency p50 / p95 / p99", &|x| {
        format!("{:.0} / {:.0} / {:.0} ms", x.eval.latency_p50_ms, x.eval.latency_p95_ms, x.latency_p99_ms)
    });
    line("tokens per 1,000 messages (prompt / output)", &|x| format!("{:.0} / {:.0}", x.prompt_tokens_per_1k, x.completion_tokens_per_1k));
    line("cost per 1,000 messages", &|x| x.cost_per_1k_usd.map_or("not priced".into(), |c| format!("${c:.4}")));
    let _ = writeln!(s, "\nThe two agree on {:.1}% of the messages ({} of {}).\n", r.agreement_pct, r.rows - r.disagreements.len(), r.rows);

    let p = &r.paired;
    let t = &p.table;
    let _ = writeln!(s, "## Paired test\n\n| | B right | B wrong |\n|---|---|---|");
    let _ = writeln!(s, "| **A right** | {} | {} |\n| **A wrong** | {} | {} |\n", t.both_right, t.a_only, t.b_only, t.both_wrong);
    let verdict = if p.mcnemar_p < 0.05 { "significant at the 5% level" } else { "not significant at the 5% level" };
    let _ = writeln!(
        s,
        "Accuracy of A minus B: {:+.1} points, 95% CI {:+.1} to {:+.1} ({}). McNemar's exact test on the {} discordant rows: p = {:.4}, {verdict}.\n",
        p.difference_pct, p.ci95_pct.0, p.ci95_pct.1, p.interval, t.a_only + t.b_only, p.mcnemar_p
    );

    for (title, get) in [
        (
            "source",
            (|x: &SideReport| x.eval.exact_by_source.iter().map(|(k, v)| (k.clone(), *v, None)).collect::<Vec<_>>())
                as fn(&SideReport) -> Vec<(String, f64, Option<usize>)>,
        ),
        ("intent", |x: &SideReport| x.eval.exact_by_intent.iter().map(|(k, (v, n))| (k.clone(), *v, Some(*n))).collect()),
    ] {
        let _ = writeln!(s, "## Exact routing per {title}\n\n| {title} | rows | A | B |\n|---|---|---|---|");
        let bv: BTreeMap<String, f64> = get(b).into_iter().map(|(k, v, _)| (k, v)).collect();
        for (k, v, n) in get(a) {
            let rows = n.unwrap_or_else(|| r.a.eval.results.iter().filter(|x| x.source == k).count());
            let _ = writeln!(
                s,
                "| {} | {rows} | {v:.1}% | {:.1}% |",
                if k.is_empty() { "(none)" } else { &k },
                bv.get(&k).copied().unwrap_or(0.0)
            );
        }
        s.push('\n');
    }

    let _ = writeln!(s, "## Errors by kind\n");
    if a.errors + b.errors == 0 {
        let _ = writeln!(s, "None on either side.\n");
    } else {
        let _ = writeln!(s, "| kind | A | B |\n|---|---|---|");
        let kinds: std::collections::BTreeSet<&String> = a.errors_by_kind.keys().chain(b.errors_by_kind.keys()).collect();
        for k in kinds {
            let _ = writeln!(s, "| {k} | {} | {} |", a.errors_by_kind.get(k).unwrap_or(&0), b.errors_by_kind.get(k).unwrap_or(&0));
        }
        s.push('\n');
    }

    let count = |who: &str| r.disagreements.iter().filter(|d| d.right == who).count();
    let _ = writeln!(
        s,
        "## Where they disagree\n\n{} rows: A right on {}, B right on {}, neither on {}.\n",
        r.disagreements.len(),
        count("a"),
        count("b"),
        count("neither")
    );
    if !r.disagreements.is_empty() {
        let _ = writeln!(s, "| id | expected | A | B | right | message |\n|---|---|---|---|---|---|");
        for d in &r.disagreements {
            let _ = writeln!(s, "| {} | {} | {} | {} | {} | {} |", d.id, d.expected, d.a, d.b, d.right, cell(&d.text, 80));
        }
        s.push('\n');
    }
    let _ = writeln!(s, "## Pictures\n\n![accuracy](accuracy.svg) ![latency](latency.svg) ![cost](cost.svg)\n");
    let _ = writeln!(s, "![confusion A](confusion-a.svg) ![confusion B](confusion-b.svg)");
    s
}

/// Writes `report.md`, `report.json` and the pictures into `dir`.
pub fn write(r: &AbReport, dir: &Path) -> Result<(), AbError> {
    let json = serde_json::to_string_pretty(r).map_err(|e| AbError::io(&dir.join("report.json"), e.to_string(), e))?;
    let files = [
        ("report.md", markdown(r)),
        ("report.json", json),
        ("confusion-a.svg", crate::eval::confusion_svg_titled(&r.a.eval, &format!("A: {}", r.a.label))),
        ("confusion-b.svg", crate::eval::confusion_svg_titled(&r.b.eval, &format!("B: {}", r.b.label))),
        ("accuracy.svg", super::svg::accuracy(r)),
        ("latency.svg", super::svg::latency(r)),
        ("cost.svg", super::svg::cost(r)),
    ];
    for (name, body) in files {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(|e| AbError::io(&path, e.to_string(), e))?;
    }
    Ok(())
}
